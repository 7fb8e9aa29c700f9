//! The `[ssd]` section: which detector to build (architecture, classes, input size, extra-layer widths,
//! priors, box coding, matching, hard-negative mining).
//!
//! Default widths follow the backbone's width multiplier `w` (SkipblockNet-M is 1.0):
//! * SSDLite: MobileNetV2-SSDLite's extras 512, 256, 256, 64 (expansion ratios 0.2, 0.25, 0.5, 0.25 on
//!   each extra's input) scaled by `w`;
//! * SSD: the two backbone taps lifted by 1×1 conv → BN → ReLU to 1376 (19×19) and 800 (10×10) channels,
//!   then extras 512, 256, 256, 128 (1×1 reduce to half), sized at `w` = 0.7 (SkipblockNet-S) to land on
//!   Table 6's 9.4 M parameters / 1.4 B multiply-adds and scaled by `w / 0.7` for the other backbones.

use crate::anchors::PriorConfig;
use crate::box_coder::BoxCoder;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use skipblock_core::model::{layers::make_divisible, Arch, SsdVariant};
use skipblock_core::Task;

/// SSDLite extras at width 1.0 and their expansion ratios (MobileNetV2-SSDLite's).
const LITE_EXTRAS: [i64; 4] = [512, 256, 256, 64];
const LITE_RATIOS: [f64; 4] = [0.2, 0.25, 0.5, 0.25];
/// SSD extras and tap widths at width 0.7 (SkipblockNet-S).
const FULL_EXTRAS: [i64; 4] = [512, 256, 256, 128];
const FULL_SOURCES: [i64; 2] = [1376, 800];
const FULL_REFERENCE_WIDTH: f64 = 0.7;

/// The `[ssd]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SsdConfig {
    /// The detector: `ssdlite-skipblocknet-xs|s|m|l` or `ssd-skipblocknet-xs|s|m|l`.
    pub arch: Arch,
    /// Including the background (21 for VOC); set from the class list by `detect train`.
    pub num_classes: i64,
    /// Square input side in pixels.
    pub input_size: i64,
    /// Output widths of the extra layers (one head each). Empty: the variant's default for the backbone.
    pub extras: Vec<i64>,
    /// Widths the two backbone taps are lifted to (1×1 conv → BN → ReLU) before their heads and the
    /// extras; 0 keeps a tap as it is. Empty: the variant's default (SSD: lifted, SSDLite: as they are).
    pub sources: Vec<i64>,
    pub priors: PriorConfig,
    pub box_coder: BoxCoder,
    /// IoU from which a prior is a positive for a ground truth.
    pub match_iou: f64,
    /// Hard-negative mining: background priors kept per positive, per image (3 in SSD).
    pub neg_pos_ratio: i64,
}

impl Default for SsdConfig {
    fn default() -> Self {
        SsdConfig {
            arch: Arch::SsdliteSkipblocknetS,
            num_classes: 21,
            input_size: 300,
            extras: Vec::new(),
            sources: Vec::new(),
            priors: PriorConfig::default(),
            box_coder: BoxCoder::default(),
            match_iou: 0.5,
            neg_pos_ratio: 3,
        }
    }
}

impl SsdConfig {
    /// The configuration of a named detector, widths filled in.
    pub fn for_arch(arch: Arch, num_classes: i64) -> Result<SsdConfig> {
        SsdConfig { arch, num_classes, ..Default::default() }.resolved()
    }

    /// SSD or SSDLite, and the classifier backbone.
    pub fn parts(&self) -> Result<(SsdVariant, Arch)> {
        self.arch.expect(Task::Detect, "ssd.arch")?.detector_parts().context("ssd.arch is not a detector")
    }

    /// Checks the values and fills in the default `extras` and `sources` for the backbone.
    pub fn resolved(&self) -> Result<SsdConfig> {
        let (variant, backbone) = self.parts()?;
        if self.num_classes < 2 {
            bail!("ssd.num_classes counts the background and must be at least 2, got {}", self.num_classes);
        }
        if !(32..=4096).contains(&self.input_size) {
            bail!("ssd.input_size must be in 32..=4096, got {}", self.input_size);
        }
        if !(self.match_iou > 0.0 && self.match_iou <= 1.0) {
            bail!("ssd.match_iou must be in (0, 1], got {}", self.match_iou);
        }
        if self.neg_pos_ratio < 0 {
            bail!("ssd.neg_pos_ratio must be >= 0, got {}", self.neg_pos_ratio);
        }
        if !(self.box_coder.center_variance > 0.0 && self.box_coder.size_variance > 0.0) {
            bail!("ssd.box_coder: variances must be positive");
        }
        if let Some(w) = self.extras.iter().find(|&&w| w <= 0) {
            bail!("ssd.extras: widths must be positive, got {w}");
        }
        if !self.sources.is_empty() && (self.sources.len() != 2 || self.sources.iter().any(|&w| w < 0)) {
            bail!("ssd.sources needs two widths >= 0 (19x19 tap, 10x10 tap; 0 keeps a tap), got {:?}", self.sources);
        }
        let mut cfg = self.clone();
        let w = backbone.config().width;
        let scale = |v: i64, f: f64| make_divisible(v as f64 * f, 8);
        if cfg.extras.is_empty() {
            cfg.extras = match variant {
                SsdVariant::Lite => LITE_EXTRAS.iter().map(|&v| scale(v, w)).collect(),
                SsdVariant::Full => FULL_EXTRAS.iter().map(|&v| scale(v, w / FULL_REFERENCE_WIDTH)).collect(),
            };
        }
        if cfg.sources.is_empty() {
            cfg.sources = match variant {
                SsdVariant::Lite => vec![0, 0],
                SsdVariant::Full => FULL_SOURCES.iter().map(|&v| scale(v, w / FULL_REFERENCE_WIDTH)).collect(),
            };
        }
        Ok(cfg)
    }

    /// Hidden width of SSDLite extra `i` on `cin` input channels.
    pub fn lite_hidden(i: usize, cin: i64) -> i64 {
        make_divisible(cin as f64 * LITE_RATIOS.get(i).copied().unwrap_or(0.25), 8)
    }

    /// Reduced width of SSD extra `i` producing `cout` channels.
    pub fn full_mid(cout: i64) -> i64 {
        make_divisible(cout as f64 / 2.0, 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_detectors_resolve_their_widths() {
        let lite = SsdConfig::for_arch(Arch::SsdliteSkipblocknetM, 21).unwrap();
        assert_eq!(lite.parts().unwrap(), (SsdVariant::Lite, Arch::SkipblocknetM));
        assert_eq!(lite.extras, vec![512, 256, 256, 64]);
        assert_eq!(lite.sources, vec![0, 0]);
        let full = SsdConfig::for_arch(Arch::SsdSkipblocknetS, 11).unwrap();
        assert_eq!((full.parts().unwrap().0, full.num_classes), (SsdVariant::Full, 11));
        assert_eq!(full.extras, FULL_EXTRAS.to_vec());
        assert_eq!(full.sources, FULL_SOURCES.to_vec());
        for arch in Arch::detectors() {
            assert_eq!(SsdConfig::for_arch(arch, 21).unwrap().arch, arch);
        }
        let err = SsdConfig::for_arch(Arch::SkipblocknetS, 21).unwrap_err().to_string();
        assert!(err.contains("ssd.arch") && err.contains("ssdlite-skipblocknet-xs"), "{err}");
    }

    #[test]
    fn the_section_parses_with_defaults_and_checks_values() {
        let cfg: SsdConfig =
            toml::from_str("arch = \"ssd-skipblocknet-xs\"\nneg_pos_ratio = 5\n[priors]\nclip = false").unwrap();
        assert_eq!(cfg.parts().unwrap(), (SsdVariant::Full, Arch::SkipblocknetXs));
        assert_eq!(cfg.neg_pos_ratio, 5);
        assert!(!cfg.priors.clip);
        assert_eq!(cfg.input_size, 300);
        assert!(toml::from_str::<SsdConfig>("extra = [1]").is_err());
        assert!(toml::from_str::<SsdConfig>("variant = \"lite\"").is_err(), "variant/backbone are gone: arch");
        let bad = |c: SsdConfig| c.resolved().unwrap_err().to_string();
        assert!(bad(SsdConfig { num_classes: 1, ..Default::default() }).contains("num_classes"));
        assert!(bad(SsdConfig { arch: Arch::Mobilenetv3Large, ..Default::default() }).contains("ssd.arch"));
        assert!(bad(SsdConfig { sources: vec![1], ..Default::default() }).contains("ssd.sources"));
        assert!(bad(SsdConfig { extras: vec![64, 0], ..Default::default() }).contains("ssd.extras"));
        assert!(bad(SsdConfig { neg_pos_ratio: -1, ..Default::default() }).contains("neg_pos_ratio"));
    }
}

//! The `[ssd]` section: which detector to build (variant, backbone, classes, input size, extra-layer
//! widths, priors, box coding, matching), and the named detector architectures.
//!
//! Default widths follow the backbone's width multiplier `w` (SkipblockNet-M is 1.0):
//! * SSDLite: qfgaohao's MobileNetV2-SSDLite extras 512, 256, 256, 64 (expansion ratios 0.2, 0.25, 0.5,
//!   0.25 on each extra's input) scaled by `w`;
//! * SSD: the two backbone taps lifted by 1×1 conv → BN → ReLU to 1376 (19×19) and 800 (10×10) channels,
//!   then extras 512, 256, 256, 128 (1×1 reduce to half), sized at `w` = 0.7 (SkipblockNet-S) to land on
//!   Table 6's 9.4 M parameters / 1.4 B multiply-adds and scaled by `w / 0.7` for the other backbones.

use crate::anchors::PriorConfig;
use crate::box_coder::BoxCoder;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use skipblock_core::model::{self, layers::make_divisible};

/// SSDLite (separable heads, inverted-residual extras) or regular SSD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Lite,
    Full,
}

/// The named detectors: `{ssdlite,ssd}-skipblocknet-{xs,s,m,l}`.
pub const DETECTOR_ARCHS: [&str; 8] = [
    "ssdlite-skipblocknet-xs",
    "ssdlite-skipblocknet-s",
    "ssdlite-skipblocknet-m",
    "ssdlite-skipblocknet-l",
    "ssd-skipblocknet-xs",
    "ssd-skipblocknet-s",
    "ssd-skipblocknet-m",
    "ssd-skipblocknet-l",
];

/// SSDLite extras at width 1.0 and their expansion ratios (qfgaohao's mobilenetv2-ssd-lite).
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
    pub variant: Variant,
    /// A classifier architecture (`skipblocknet-xs|s|m|l`, `mobilenetv3-large`).
    pub backbone: String,
    /// Including the background (21 for VOC).
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
}

impl Default for SsdConfig {
    fn default() -> Self {
        SsdConfig {
            variant: Variant::Lite,
            backbone: "skipblocknet-s".into(),
            num_classes: 21,
            input_size: 300,
            extras: Vec::new(),
            sources: Vec::new(),
            priors: PriorConfig::default(),
            box_coder: BoxCoder::default(),
            match_iou: 0.5,
        }
    }
}

/// The configuration of a named detector (`ssdlite-skipblocknet-s`, …), widths filled in.
pub fn config_by_name(name: &str, num_classes: i64) -> Result<SsdConfig> {
    let lower = name.to_ascii_lowercase();
    let (variant, backbone) = match (lower.strip_prefix("ssdlite-"), lower.strip_prefix("ssd-")) {
        (Some(b), _) => (Variant::Lite, b),
        (_, Some(b)) => (Variant::Full, b),
        _ => bail!("unknown detector '{name}' (known: {})", DETECTOR_ARCHS.join(", ")),
    };
    if !DETECTOR_ARCHS.contains(&lower.as_str()) {
        bail!("unknown detector '{name}' (known: {})", DETECTOR_ARCHS.join(", "));
    }
    SsdConfig { variant, backbone: backbone.to_string(), num_classes, ..Default::default() }.resolved()
}

impl SsdConfig {
    /// The detector's name when it is one of [`DETECTOR_ARCHS`]' patterns.
    pub fn arch_name(&self) -> String {
        let prefix = match self.variant {
            Variant::Lite => "ssdlite",
            Variant::Full => "ssd",
        };
        format!("{prefix}-{}", self.backbone.to_ascii_lowercase())
    }

    /// Checks the values and fills in the default `extras` and `sources` for the backbone.
    pub fn resolved(&self) -> Result<SsdConfig> {
        let net = model::by_name(&self.backbone).with_context(|| format!("ssd.backbone = '{}'", self.backbone))?;
        if self.num_classes < 2 {
            bail!("ssd.num_classes counts the background and must be at least 2, got {}", self.num_classes);
        }
        if !(32..=4096).contains(&self.input_size) {
            bail!("ssd.input_size must be in 32..=4096, got {}", self.input_size);
        }
        if !(self.match_iou > 0.0 && self.match_iou <= 1.0) {
            bail!("ssd.match_iou must be in (0, 1], got {}", self.match_iou);
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
        let w = net.width;
        let scale = |v: i64, f: f64| make_divisible(v as f64 * f, 8);
        if cfg.extras.is_empty() {
            cfg.extras = match cfg.variant {
                Variant::Lite => LITE_EXTRAS.iter().map(|&v| scale(v, w)).collect(),
                Variant::Full => FULL_EXTRAS.iter().map(|&v| scale(v, w / FULL_REFERENCE_WIDTH)).collect(),
            };
        }
        if cfg.sources.is_empty() {
            cfg.sources = match cfg.variant {
                Variant::Lite => vec![0, 0],
                Variant::Full => FULL_SOURCES.iter().map(|&v| scale(v, w / FULL_REFERENCE_WIDTH)).collect(),
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
        let lite = config_by_name("ssdlite-skipblocknet-m", 21).unwrap();
        assert_eq!((lite.variant, lite.backbone.as_str()), (Variant::Lite, "skipblocknet-m"));
        assert_eq!(lite.extras, vec![512, 256, 256, 64]);
        assert_eq!(lite.sources, vec![0, 0]);
        let full = config_by_name("SSD-skipblocknet-s", 11).unwrap();
        assert_eq!((full.variant, full.num_classes), (Variant::Full, 11));
        assert_eq!(full.extras, FULL_EXTRAS.to_vec());
        assert_eq!(full.sources, FULL_SOURCES.to_vec());
        assert_eq!(full.arch_name(), "ssd-skipblocknet-s");
        for name in DETECTOR_ARCHS {
            assert_eq!(config_by_name(name, 21).unwrap().arch_name(), name);
        }
        let err = config_by_name("ssd-vgg16", 21).unwrap_err().to_string();
        assert!(err.contains("unknown detector 'ssd-vgg16'") && err.contains("ssdlite-skipblocknet-xs"), "{err}");
    }

    #[test]
    fn the_section_parses_with_defaults_and_checks_values() {
        let cfg: SsdConfig = toml::from_str("variant = \"full\"\nbackbone = \"skipblocknet-xs\"\n[priors]\nclip = false").unwrap();
        assert_eq!(cfg.variant, Variant::Full);
        assert!(!cfg.priors.clip);
        assert_eq!(cfg.input_size, 300);
        assert!(toml::from_str::<SsdConfig>("extra = [1]").is_err());
        let bad = |c: SsdConfig| c.resolved().unwrap_err().to_string();
        assert!(bad(SsdConfig { num_classes: 1, ..Default::default() }).contains("num_classes"));
        assert!(bad(SsdConfig { backbone: "resnet".into(), ..Default::default() }).contains("ssd.backbone"));
        assert!(bad(SsdConfig { sources: vec![1], ..Default::default() }).contains("ssd.sources"));
        assert!(bad(SsdConfig { extras: vec![64, 0], ..Default::default() }).contains("ssd.extras"));
    }
}

//! Network configurations: the block table of each architecture (as tch's `mobilenet.rs` and
//! `efficientnet.rs` do), plus the family of named models.
//!
//! Only SkipblockNet-M is published (paper §4, Table 1). XS, S and L are ours, designed to land on the paper's
//! Table 1 budgets at 224×224 with the same block table: a width multiplier on every stage, the last conv
//! and head widths, and skip blocks whose expansion follows the base block's (scaled) width.

use super::arch::Arch;
use super::layers::{make_divisible, Act};
use serde::{Deserialize, Serialize};

/// One inverted residual: kernel, expansion ratio, output channels (before width scaling), SE,
/// activation, stride.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlockCfg {
    pub kernel: i64,
    pub expansion: f64,
    pub out: i64,
    pub se: bool,
    pub act: Act,
    pub stride: i64,
}

const fn b(kernel: i64, expansion: f64, out: i64, se: bool, hs: bool, stride: i64) -> BlockCfg {
    BlockCfg { kernel, expansion, out, se, act: if hs { Act::Hswish } else { Act::Relu }, stride }
}

/// A skip block: expansion ratio on the base block's width and depthwise kernel. Its output width is
/// that of the stage output it is added to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SkipCfg {
    pub expansion: f64,
    pub kernel: i64,
}

/// A whole network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    pub arch: Arch,
    pub width: f64,
    /// Stem conv 3×3 stride 2 output channels (before width scaling).
    pub stem: i64,
    /// First block at the stem's resolution (SkipblockNet's "base block", MobileNetV3's first block).
    pub base: BlockCfg,
    /// Whether the base block keeps its 1×1 expand conv at ratio 1 (SkipblockNet yes, MobileNetV3 no).
    pub base_expand: bool,
    /// Four stages of inverted residuals.
    pub stages: Vec<Vec<BlockCfg>>,
    /// Skip block added after stage 0 and after stage 1 (none for MobileNetV3).
    pub skip1: Option<SkipCfg>,
    pub skip2: Option<SkipCfg>,
    /// Last 1×1 conv: this multiple of the last stage's output width (6 → 960 for M).
    pub last_conv_ratio: f64,
    /// Hidden width of the classifier (1280 for M).
    pub head: i64,
    pub dropout: f64,
}

impl NetConfig {
    pub fn scaled(&self, channels: i64) -> i64 {
        make_divisible(channels as f64 * self.width, 8)
    }
    pub fn stem_channels(&self) -> i64 {
        self.scaled(self.stem)
    }
    pub fn last_stage_channels(&self) -> i64 {
        self.scaled(self.stages.last().and_then(|s| s.last()).map_or(self.base.out, |b| b.out))
    }
    pub fn last_conv_channels(&self) -> i64 {
        make_divisible(self.last_stage_channels() as f64 * self.last_conv_ratio, 8)
    }
}

/// MobileNetV3-Large's stage table with SkipblockNet's change: the last block of stage 0 expands ×6
/// with hard-swish (paper §4).
fn skipblocknet_stages() -> Vec<Vec<BlockCfg>> {
    vec![
        vec![
            b(3, 4.0, 24, false, false, 2),
            b(3, 3.0, 24, false, false, 1),
            b(5, 3.0, 40, true, false, 2),
            b(5, 3.0, 40, true, false, 1),
            b(5, 6.0, 40, true, true, 1),
        ],
        vec![
            b(3, 6.0, 80, false, true, 2),
            b(3, 2.5, 80, false, true, 1),
            b(3, 2.3, 80, false, true, 1),
            b(3, 2.3, 80, false, true, 1),
        ],
        vec![b(3, 6.0, 112, true, true, 1), b(3, 6.0, 112, true, true, 1)],
        vec![b(5, 6.0, 160, true, true, 2), b(5, 6.0, 160, true, true, 1), b(5, 6.0, 160, true, true, 1)],
    ]
}

pub(super) fn skipblocknet(arch: Arch, width: f64, head: i64, last_conv_ratio: f64) -> NetConfig {
    NetConfig {
        arch,
        width,
        stem: 16,
        base: b(3, 1.0, 16, false, true, 1),
        base_expand: true,
        stages: skipblocknet_stages(),
        skip1: Some(SkipCfg { expansion: 6.0, kernel: 5 }),
        skip2: Some(SkipCfg { expansion: 2.3, kernel: 3 }),
        last_conv_ratio,
        head,
        dropout: 0.2,
    }
}

/// MobileNetV3-Large 1.0 (Howard et al. 2019), the Table 3 baseline, from the same blocks.
pub(super) fn mobilenetv3_large() -> NetConfig {
    NetConfig {
        arch: Arch::Mobilenetv3Large,
        width: 1.0,
        stem: 16,
        base: b(3, 1.0, 16, false, false, 1),
        base_expand: false,
        stages: vec![
            vec![
                b(3, 4.0, 24, false, false, 2),
                b(3, 3.0, 24, false, false, 1),
                b(5, 3.0, 40, true, false, 2),
                b(5, 3.0, 40, true, false, 1),
                b(5, 3.0, 40, true, false, 1),
            ],
            skipblocknet_stages()[1].clone(),
            skipblocknet_stages()[2].clone(),
            skipblocknet_stages()[3].clone(),
        ],
        skip1: None,
        skip2: None,
        last_conv_ratio: 6.0,
        head: 1280,
        dropout: 0.2,
    }
}

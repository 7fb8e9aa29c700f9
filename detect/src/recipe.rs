//! The detection recipe: `configs/voc-ssdlite-skipblocknet-*.toml`, `configs/voc-ssd-skipblocknet-s.toml`.

use crate::config::SsdConfig;
use crate::postprocess::PostprocessConfig;
use serde::{Deserialize, Serialize};
use skipblock_core::loss::LossConfig;
use skipblock_core::recipe::{ModelSection, OptimSection, ScheduleSection, TrainSection};
use std::path::PathBuf;

/// VOC07 11-point AP or VOC2010+ area under the precision envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricName {
    Voc07,
    Voc12,
}

impl From<MetricName> for crate::eval::Metric {
    fn from(m: MetricName) -> Self {
        match m {
            MetricName::Voc07 => crate::eval::Metric::Voc07,
            MetricName::Voc12 => crate::eval::Metric::Voc12,
        }
    }
}

/// `[data]`: PASCAL VOC roots and splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetDataSection {
    /// `VOCdevkit/VOC2012`-style folders combined for training; `--data` (repeatable) overrides.
    pub roots: Vec<PathBuf>,
    pub train_split: String,
    /// Validation folders (default: the training roots) and split.
    pub val_roots: Vec<PathBuf>,
    pub val_split: String,
    /// Class names, one per line (default: the 20 VOC classes).
    pub labels: Option<PathBuf>,
    /// A problem in the data (unknown class, box outside its image, missing file) is an error instead of
    /// a warning and a skip.
    pub strict: bool,
    /// SSD augmentation for training; each step can be switched off on its own.
    pub augment: bool,
    pub photometric: bool,
    /// Zoom-out: the image placed on a canvas up to 4× its size (helps small objects, slows learning).
    pub expand: bool,
    /// IoU-constrained random crop.
    pub crop: bool,
    pub flip: bool,
    pub workers: usize,
    pub prefetch: usize,
}

impl Default for DetDataSection {
    fn default() -> Self {
        DetDataSection {
            roots: Vec::new(),
            train_split: "trainval".into(),
            val_roots: Vec::new(),
            val_split: "test".into(),
            labels: None,
            strict: false,
            augment: true,
            photometric: true,
            expand: true,
            crop: true,
            flip: true,
            workers: 0,
            prefetch: 4,
        }
    }
}

/// `[eval]`: validation during training and `detect eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    pub metric: MetricName,
    pub iou_threshold: f32,
    /// Evaluate on at most this many validation images during training (0 = all).
    pub max_images: usize,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection { metric: MetricName::Voc07, iou_threshold: 0.5, max_images: 0 }
    }
}

/// `[backbone]`: starting from an ImageNet classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackboneSection {
    /// Classifier checkpoint whose weights initialise the backbone; `--backbone` overrides.
    pub weights: Option<PathBuf>,
    /// Keep the backbone frozen for this many epochs.
    pub freeze_epochs: usize,
    /// Learning-rate multiplier of the backbone's parameters.
    pub lr_mult: f64,
}

impl Default for BackboneSection {
    fn default() -> Self {
        BackboneSection { weights: None, freeze_epochs: 0, lr_mult: 1.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectRecipe {
    /// `detect`.
    pub task: String,
    pub name: String,
    /// BN settings of the whole detector (`arch` and `input_size` are taken from `[ssd]`).
    pub model: ModelSection,
    pub ssd: SsdConfig,
    /// `ce` or `bias` for the classification term of the multibox loss.
    pub loss: LossConfig,
    pub data: DetDataSection,
    pub backbone: BackboneSection,
    pub optim: OptimSection,
    pub schedule: ScheduleSection,
    pub train: TrainSection,
    pub eval: EvalSection,
    /// Post-processing for evaluation (score threshold 0.01, NMS 0.45, top 200).
    pub postprocess: PostprocessConfig,
}

impl Default for DetectRecipe {
    fn default() -> Self {
        DetectRecipe {
            task: "detect".into(),
            name: "detect".into(),
            model: ModelSection { bn_momentum: 0.1, ..ModelSection::default() },
            ssd: SsdConfig::default(),
            loss: LossConfig::default(),
            data: DetDataSection::default(),
            backbone: BackboneSection::default(),
            optim: OptimSection { lr: 0.01, momentum: 0.9, weight_decay: 5e-4, ..OptimSection::default() },
            schedule: ScheduleSection::default(),
            train: TrainSection { epochs: 200, batch_size: 32, ..TrainSection::default() },
            eval: EvalSection::default(),
            postprocess: PostprocessConfig::default(),
        }
    }
}

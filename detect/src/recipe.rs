//! The detection recipe: `configs/voc-ssdlite-skipblocknet-*.toml`, `configs/voc-ssd-skipblocknet-s.toml`.

use crate::config::SsdConfig;
use crate::postprocess::PostprocessConfig;
use crate::voc_map::Metric;
use serde::{Deserialize, Serialize};
use skipblock_core::loss::LossConfig;
use skipblock_core::model::BlockOptions;
use skipblock_core::recipe::{OptimSection, ScheduleSection, TrainSection};
use skipblock_core::train::RecipeSections;
use skipblock_core::Task;
use std::path::PathBuf;

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
    /// Random horizontal flip (p = 0.5); switch it off when direction matters for the classes (arrows,
    /// text, left/right signs).
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
    pub metric: Metric,
    pub iou_threshold: f32,
    /// Evaluate on at most this many validation images during training (0 = all).
    pub max_images: usize,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection { metric: Metric::Voc07, iou_threshold: 0.5, max_images: 0 }
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
    pub task: Task,
    pub name: String,
    /// Batch-norm settings of the whole detector (`bn_momentum`, `bn_eps`); the architecture and the
    /// input size are `[ssd]`'s.
    pub model: BlockOptions,
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
            task: Task::Detect,
            name: "detect".into(),
            model: BlockOptions::default(),
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

impl DetectRecipe {
    /// The sections the training loop reads.
    pub fn sections(&self) -> RecipeSections<'_> {
        RecipeSections { optim: &self.optim, schedule: &self.schedule, train: &self.train }
    }
}

//! The classification recipe: `configs/imagenet-*.toml`, `cifar100-*.toml`, `food101-finetune.toml`.

use serde::{Deserialize, Serialize};
use skipblock_core::loss::LossConfig;
use skipblock_core::recipe::{ModelSection, OptimSection, ScheduleSection, TrainSection};
use skipblock_core::train::RecipeSections;
use skipblock_core::Task;
use std::path::PathBuf;

pub use skipblock_data::classification::{Augment, Layout};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    pub layout: Layout,
    /// Dataset root; `--data` overrides it.
    pub root: Option<PathBuf>,
    pub augment: Augment,
    /// Inception: smallest area fraction of the random resized crop (0.08 as in the paper).
    pub crop_scale_min: f64,
    /// CIFAR rotation range in degrees.
    pub rotation: f64,
    /// CIFAR: pad 4 pixels and crop back at random.
    pub pad_crop: bool,
    /// Random horizontal flip (p = 0.5) in the training augmentation. Switch it off when direction
    /// matters for the classes (arrows, text, left/right signs).
    pub flip: bool,
    /// Evaluation: shorter side resized to `input_size · resize_ratio` before the centre crop (256/224).
    pub resize_ratio: f64,
    /// Image folder layout: fraction held out for evaluation.
    pub val_fraction: f64,
    /// Decoding threads (0 = one per core).
    pub workers: usize,
    /// Batches decoded ahead of the training step.
    pub prefetch: usize,
    /// An unreadable image is an error (otherwise skipped with a warning).
    pub strict: bool,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            layout: Layout::Auto,
            root: None,
            augment: Augment::Inception,
            crop_scale_min: 0.08,
            rotation: 15.0,
            pad_crop: false,
            flip: true,
            resize_ratio: 256.0 / 224.0,
            val_fraction: 0.1,
            workers: 0,
            prefetch: 4,
            strict: false,
        }
    }
}

/// `[finetune]`: transfer learning from a checkpoint onto a new class set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneSection {
    /// Checkpoint to start from (`classify finetune` without `--from`); `--from` overrides it.
    pub from: Option<PathBuf>,
    /// Train only the new head for this many epochs, then everything.
    pub freeze_backbone_epochs: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyRecipe {
    /// `classify` (a recipe says which pipeline it is for).
    pub task: Task,
    /// Run name: outputs go to `runs/<name>/`.
    pub name: String,
    pub model: ModelSection,
    pub loss: LossConfig,
    pub data: DataSection,
    pub optim: OptimSection,
    pub schedule: ScheduleSection,
    pub train: TrainSection,
    pub finetune: FinetuneSection,
}

impl Default for ClassifyRecipe {
    fn default() -> Self {
        ClassifyRecipe {
            task: Task::Classify,
            name: "classify".into(),
            model: ModelSection::default(),
            loss: LossConfig::default(),
            data: DataSection::default(),
            optim: OptimSection::default(),
            schedule: ScheduleSection::default(),
            train: TrainSection::default(),
            finetune: FinetuneSection::default(),
        }
    }
}

impl ClassifyRecipe {
    /// The sections the training loop reads.
    pub fn sections(&self) -> RecipeSections<'_> {
        RecipeSections { optim: &self.optim, schedule: &self.schedule, train: &self.train }
    }
}

/// The evaluation preprocessing a checkpoint was trained with: (input size, resize ratio) from the
/// recipe stored in its record, else the release's 224 and 256/224.
pub fn eval_geometry(meta: &skipblock_core::checkpoint::CheckpointMeta) -> (u32, f64) {
    let recipe = meta.config.as_deref().and_then(|text| toml::from_str::<ClassifyRecipe>(text).ok());
    let input = if meta.input_size > 0 { meta.input_size as u32 } else { 224 };
    (input, recipe.map_or(256.0 / 224.0, |r| r.data.resize_ratio))
}

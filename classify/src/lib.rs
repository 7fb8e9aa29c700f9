//! skipblock-classify: the classification pipeline.
//!
//! * [`recipe`]: the typed recipe (`configs/imagenet-*.toml`, `cifar100-*.toml`, `food101-finetune.toml`);
//! * [`task`]: classification as a task of the shared training loop;
//! * [`compare`]: `classify compare`, a grid of architectures × losses × seeds and its summary;
//! * [`pipeline`]: `classify train` / `classify finetune` (transfer learning with a new head);
//! * [`evaluator`]: top-1, top-5, loss, per-class accuracy and the confusion matrix ([`confusion`]) of a
//!   network on a dataset split; [`plots`]: their pictures;
//! * [`classifier`]: a trained classifier from its checkpoint, on images (top-k).

pub mod classifier;
pub mod compare;
pub mod confusion;
pub mod evaluator;
pub mod pipeline;
pub mod plots;
pub mod recipe;
pub mod task;

pub use classifier::{Classifier, TopK};
pub use recipe::ClassifyRecipe;

//! skipblock-classify: the classification pipeline.
//!
//! * [`recipe`]: the typed recipe (`configs/imagenet-*.toml`, `cifar100-*.toml`, `food101-finetune.toml`);
//! * [`task`]: classification as a task of the shared training loop;
//! * [`pipeline`]: `classify train` / `classify finetune` (transfer learning with a new head);
//! * [`evaluate`]: top-1, top-5, loss and per-class accuracy on a split.

pub mod evaluate;
pub mod pipeline;
pub mod recipe;
pub mod task;

pub use recipe::ClassifyRecipe;

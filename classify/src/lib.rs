//! skipblock-classify: the classification pipeline.
//!
//! * [`recipe`]: the typed recipe (`configs/imagenet-*.toml`, `cifar100-*.toml`, `food101-finetune.toml`).
//!
//! To come (classification issue): the `classify train / finetune / eval` logic on top of the shared core
//! (models, bias loss, training loop, checkpoints) and the data crate (datasets, augmentation, loaders).

pub mod recipe;

pub use recipe::ClassifyRecipe;

//! skipblock-classify: the classification pipeline.
//!
//! Will hold (classification issue): the recipes (ImageNet, CIFAR-100, Food-101 fine-tuning), the
//! `classify train / finetune / eval / predict` commands' logic on top of the shared core (models, bias
//! loss, training loop, checkpoints) and the data crate (datasets, augmentation, loaders).

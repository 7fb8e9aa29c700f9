//! The three CIFAR-100 networks of the authors' bias-loss release (`bias_loss/models/` of
//! `lusinlu/biasloss_skipblocknet`, trained there with the bias loss in its global mode for the
//! published ResNet-18 75.51 / DenseNet-121 77.83 / ShuffleNetV2 72.00 top-1): the same layer structure
//! and state-dict keys, so their `.pth` checkpoints load as they are and give the same logits.
//!
//! Their model code follows the CIFAR-100 models of `weiaicunzai/pytorch-cifar100` (whose training and
//! test scripts theirs are built on): 32×32 inputs, a 3×3 stride-1 stem, no max-pool. Each network
//! returns the logits and the feature map the bias loss reads (b×c×h×w, 4×4 at 32×32 input):
//!
//! * [`ResNet18`]: the output of the last residual block (`conv5_x`, after its ReLU), 512 channels;
//! * [`DenseNet121`]: the last dense block after the final batch norm and ReLU (`features.bn`), 1024
//!   channels;
//! * [`ShuffleNetV2`] (0.5×): the 1×1 `conv5` after its batch norm and ReLU, 1024 channels.
//!
//! Global average pooling precedes each classifier (the release pools 4×4 maps, the same at 32×32; the
//! adaptive pool keeps other input sizes working). Layers beyond [`super::layers`] live in [`layers`].

pub mod densenet121;
pub mod layers;
pub mod resnet18;
pub mod shufflenetv2;

pub use densenet121::DenseNet121;
pub use resnet18::ResNet18;
pub use shufflenetv2::ShuffleNetV2;

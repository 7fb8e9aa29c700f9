//! Models: the named architectures ([`Arch`]), the layers, the configurations of the SkipblockNet family
//! and MobileNetV3-Large, the network itself, the authors' CIFAR-100 release models ([`release`]), and the tracing behind `model summary` and `model variance`.

pub mod arch;
pub mod config;
pub mod layers;
pub mod release;
pub mod skipblocknet;
pub mod summary;
pub mod trace;

pub use arch::{Arch, SsdVariant};
pub use config::NetConfig;
pub use layers::BlockOptions;
pub use skipblocknet::{BackboneFeatures, Output, SkipblockNet};

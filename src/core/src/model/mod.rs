//! Models: the layers, the configurations of the SkipblockNet family and MobileNetV3-Large, the network
//! itself, and the tracing behind `model summary` and `model variance`.

pub mod config;
pub mod layers;
pub mod loader;
pub mod skipblocknet;
pub mod summary;
pub mod trace;

pub use config::{by_name, NetConfig, ARCHS};
pub use layers::BlockOptions;
pub use skipblocknet::{BackboneFeatures, Output, SkipblockNet};

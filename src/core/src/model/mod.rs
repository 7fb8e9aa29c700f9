//! Models: the named architectures ([`Arch`]), the layers, the configurations of the SkipblockNet family
//! and MobileNetV3-Large, the model zoo of Table 4 ([`zoo`]), the authors' CIFAR-100 release networks
//! ([`release`]), the classifier abstraction over all of them ([`net`]), and the tracing behind
//! `model summary` and `model variance`.

pub mod arch;
pub mod config;
pub mod layers;
pub mod net;
pub mod release;
pub mod skipblocknet;
pub mod summary;
pub mod trace;
pub mod zoo;

pub use arch::{Arch, Source, SsdVariant, Stem, Table4Params};
pub use config::NetConfig;
pub use layers::BlockOptions;
pub use net::{build_classifier, ClassifierNet, NetInfo, NetOptions};
pub use skipblocknet::{BackboneFeatures, Output, SkipblockNet};

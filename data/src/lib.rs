//! skipblock-data: getting pixels and labels in.
//!
//! * [`image_io`]: read / write / resize / crop RGB images; OpenCV when the `opencv` feature is on, the
//!   pure-Rust `image` crate otherwise (the headless build for GPU servers);
//! * [`transforms`]: deterministic preprocessing (the release's evaluation transform);
//! * [`draw`]: shapes, noise, outlines and labels (synthetic datasets, annotated detections);
//! * [`folder`]: finding image files;
//! * [`plot`]: line charts to PNG (precision–recall curves, training curves);
//! * [`loader`]: re-export of the core's parallel batch loader, whose [`loader::Dataset`] the datasets
//!   here implement.
//!
//! To come here (see the classification and detection issues): datasets in their native layouts
//! (ImageNet folders, Food-101, CIFAR-100 binary, PASCAL VOC XML), augmentation, parallel loaders and the
//! synthetic dataset generators used by the tests and the demo.

pub mod draw;
pub mod folder;
pub mod image_io;
pub mod plot;
pub use skipblock_core::loader;
pub mod transforms;

pub use image_io::{read_image, write_image, RgbImage};

//! skipblock-data: getting pixels and labels in.
//!
//! * [`image_io`]: read / write / resize / crop RGB images; OpenCV when the `opencv` feature is on, the
//!   pure-Rust `image` crate otherwise (the headless build for GPU servers);
//! * [`transforms`]: deterministic preprocessing (the release's evaluation transform);
//! * [`draw`]: shapes, noise, outlines and labels (synthetic datasets, annotated detections);
//! * [`folder`]: finding image files;
//! * [`loader`]: the parallel, reproducible batch loader both pipelines use ([`loader::Dataset`]);
//! * [`voc`]: PASCAL VOC detection data (XML annotations, splits, checks), SSD augmentation, [`voc::DetDataset`];
//! * [`synth_voc`]: a synthetic dataset of shapes in VOC's layout, for tests and the demo.
//!
//! To come here (see the classification and detection issues): datasets in their native layouts
//! (ImageNet folders, Food-101, CIFAR-100 binary), classification augmentation and the
//! synthetic dataset generators used by the tests and the demo.

pub mod draw;
pub mod folder;
pub mod image_io;
pub mod loader;
pub mod synth_voc;
pub mod transforms;
pub mod voc;

pub use image_io::{read_image, write_image, RgbImage};

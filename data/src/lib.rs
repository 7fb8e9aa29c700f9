//! skipblock-data: getting pixels and labels in.
//!
//! * [`image_io`]: read / write / resize / crop RGB images; OpenCV when the `opencv` feature is on, the
//!   pure-Rust `image` crate otherwise (the headless build for GPU servers);
//! * [`transforms`]: deterministic preprocessing (the release's evaluation transform);
//! * [`draw`]: shapes, noise, outlines, lines and class colours (synthetic datasets, annotations, charts);
//! * [`text`]: anti-aliased text in an embedded TrueType font (DejaVu Sans);
//! * [`annotate`]: boxes with labels over images, sized to the image (annotated detections);
//! * [`folder`]: finding image files;
//! * [`plot`]: charts to PNG with plotters (training curves, PR/F1 curves, confusion matrices, bars);
//! * [`loader`]: re-export of the core's parallel batch loader, whose [`loader::Dataset`] the datasets
//!   here implement;
//! * [`classification`]: classification datasets in their native layouts (ImageNet folders, Food-101,
//!   CIFAR-100 binary, image folders), their augmentation and the loader dataset;
//! * [`synth_cls`]: synthetic classification datasets written in those layouts;
//! * [`voc`]: PASCAL VOC detection data (XML annotations, splits, checks), SSD augmentation, [`voc::DetDataset`];
//! * [`video`]: video files, webcams and preview windows (OpenCV);
//! * [`synth_voc`]: a synthetic dataset of shapes in VOC's layout, for tests and the demo.

pub mod annotate;
pub mod classification;
pub mod draw;
pub mod folder;
pub mod image_io;
pub mod plot;
pub mod synth_cls;
pub mod synth_voc;
pub mod text;
pub mod transforms;
pub mod video;
pub mod voc;

pub use image_io::{read_image, write_image, RgbImage};
pub use skipblock_core::loader;
/// What the predictors answer (top-k classes, detections, their `--json` lines), from `skipblock-pixels`.
pub use skipblock_pixels::predictions;

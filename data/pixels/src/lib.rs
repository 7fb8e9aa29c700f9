//! skipblock-pixels: images without libtorch or OpenCV, the one implementation shared by the libtorch
//! predictors (through `skipblock-data`, which re-exports these modules under the same paths) and the
//! libtorch-free predictor `skipblock-edge`.
//!
//! * [`image_io`]: decode (the `image` crate, `zune-jpeg`, EXIF orientation), encode, resize, crop;
//! * [`transforms`]: the deterministic preprocessing (classifiers' resize + centre crop, detectors'
//!   resize), planar images and the host normalisation;
//! * [`folder`]: finding image files (command-line sources, folders);
//! * [`boxes`]: boxes, IoU and greedy NMS;
//! * [`predictions`]: what the predictors answer (top-k classes, detections, their `--json` lines) and
//!   the host postprocessing of detections.

pub mod boxes;
pub mod folder;
pub mod image_io;
pub mod predictions;
pub mod transforms;

pub use image_io::{read_image, write_image, RgbImage};

//! The network input of an image, from the metadata: exactly the libtorch predictors' preprocessing
//! (the same functions, from `skipblock-pixels`), normalised on the host.

use crate::meta::{ExportMeta, Task};
use skipblock_pixels::transforms::{detect_preprocess, eval_preprocess, normalize_chw, ChwImage};
use skipblock_pixels::RgbImage;

/// The `3×S×S` planes of `img` before normalisation: classifiers resize the shorter side and centre-crop
/// (`eval_preprocess`), detectors resize to S×S (`detect_preprocess`).
pub fn planes(meta: &ExportMeta, img: &RgbImage) -> ChwImage {
    match meta.task {
        Task::Classify => {
            let (resize, crop) = meta.classify_geometry();
            eval_preprocess(img, resize, crop)
        }
        Task::Detect => detect_preprocess(img, meta.input),
    }
}

/// The normalised `3×S×S` network input of `img`, row-major (what `skipblock … predict` feeds its network).
pub fn input_tensor(meta: &ExportMeta, img: &RgbImage) -> Vec<f32> {
    normalize_chw(&planes(meta, img), meta.mean, meta.std)
}

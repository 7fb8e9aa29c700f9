//! A trained detector ready to run: built from a checkpoint's record (its `[ssd]` section), weights
//! loaded, batch norms folded; images in, boxes in pixel coordinates out.

use crate::config::SsdConfig;
use crate::postprocess::{Detection, PostprocessConfig};
use crate::ssd::Ssd;
use anyhow::{Context, Result};
use serde::Serialize;
use skipblock_core::boxes::BBox;
use skipblock_core::checkpoint::{self, CheckpointMeta};
use skipblock_core::Task;
use skipblock_data::draw::{class_color, draw_label, draw_rect};
use skipblock_data::image_io::resize;
use skipblock_data::transforms::{normalize, IMAGENET_MEAN, IMAGENET_STD};
use skipblock_data::RgbImage;
use std::path::Path;
use tch::{nn::VarStore, Device, Tensor};

/// One object found in an image, in its pixel coordinates.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PixelDetection {
    /// `[xmin, ymin, xmax, ymax]`, 0-based continuous pixels.
    pub bbox: [f32; 4],
    /// 0-based index into the class names.
    pub class: usize,
    pub name: String,
    pub score: f32,
}

pub struct Detector {
    pub vs: VarStore,
    pub ssd: Ssd,
    pub meta: CheckpointMeta,
    pub device: Device,
}

/// The detector's `[ssd]` section as stored in a checkpoint record.
pub fn ssd_config_of(meta: &CheckpointMeta, path: &Path) -> Result<SsdConfig> {
    meta.expect_task(Task::Detect, path)?;
    serde_json::from_value(meta.model.clone())
        .with_context(|| format!("'{}': its record has no usable [ssd] section", path.display()))
}

impl Detector {
    /// Loads a detector checkpoint written by `detect train`, built with the block options it was
    /// trained with, every batch norm folded.
    pub fn load(path: &Path, device: Device) -> Result<Detector> {
        let meta = checkpoint::load_meta(path)?;
        let config = ssd_config_of(&meta, path)?;
        let vs = VarStore::new(device);
        let mut ssd = Ssd::new(&vs.root(), &config, meta.block)?;
        checkpoint::load_weights(&vs, path)?;
        ssd.fuse_bn();
        Ok(Detector { vs, ssd, meta, device })
    }

    pub fn input_size(&self) -> u32 {
        self.ssd.config.input_size as u32
    }

    /// The network input of an image: resized to S×S, normalised, `3×S×S`.
    pub fn preprocess(&self, img: &RgbImage) -> Tensor {
        let s = self.input_size();
        normalize(&resize(img, s, s), IMAGENET_MEAN, IMAGENET_STD)
    }

    /// Detections of a batch of preprocessed images, scaled to each image's (width, height).
    pub fn detect_batch(
        &self,
        inputs: &[Tensor],
        sizes: &[(u32, u32)],
        post: &PostprocessConfig,
    ) -> Result<Vec<Vec<PixelDetection>>> {
        let xs = Tensor::stack(inputs, 0).to_device(self.device);
        let dets = self.ssd.detect(&xs, post)?;
        Ok(dets.into_iter().zip(sizes).map(|(d, &(w, h))| to_pixels(d, w, h, &self.meta.class_names)).collect())
    }

    /// Detections of one image.
    pub fn detect(&self, img: &RgbImage, post: &PostprocessConfig) -> Result<Vec<PixelDetection>> {
        Ok(self.detect_batch(&[self.preprocess(img)], &[(img.width, img.height)], post)?.remove(0))
    }
}

/// Post-processed detections (normalised boxes, 1-based labels) in the pixels of a `width`×`height`
/// image, with 0-based classes named from `class_names` (`classN` when a name is missing).
pub fn to_pixels(dets: Vec<Detection>, width: u32, height: u32, class_names: &[String]) -> Vec<PixelDetection> {
    let (w, h) = (width as f32, height as f32);
    dets.into_iter()
        .map(|det| {
            let class = det.label.saturating_sub(1);
            PixelDetection {
                bbox: det.bbox.scale(w, h).clip(w, h).to_array(),
                class,
                name: class_names.get(class).cloned().unwrap_or_else(|| format!("class{class}")),
                score: det.score,
            }
        })
        .collect()
}

/// The image with each detection drawn: a box in its class colour and a "name 0.87" label.
pub fn annotate(img: &RgbImage, dets: &[PixelDetection]) -> RgbImage {
    let mut out = img.clone();
    let thickness = (img.width.max(img.height) / 300).max(2);
    let scale = (img.width.max(img.height) / 500).max(1);
    for d in dets {
        let b = BBox::new(d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]);
        let color = class_color(d.class);
        draw_rect(&mut out, b.xmin, b.ymin, b.xmax - 1.0, b.ymax - 1.0, thickness, color);
        let label_y = (b.ymin as i64 - 9 * scale as i64).max(0);
        draw_label(
            &mut out,
            b.xmin as i64,
            label_y,
            &format!("{} {:.2}", d.name, d.score),
            scale,
            [255, 255, 255],
            color,
        );
    }
    out
}

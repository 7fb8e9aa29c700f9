//! A trained detector ready to run: built from a checkpoint's record (its `[ssd]` section), weights
//! loaded, batch norms folded; images in, boxes in pixel coordinates out.

use crate::config::SsdConfig;
use crate::postprocess::PostprocessConfig;
use crate::ssd::Ssd;
use anyhow::{Context, Result};
use skipblock_core::checkpoint::{self, CheckpointMeta};
use skipblock_core::Task;
use skipblock_data::annotate::{draw_box, draw_box_label, Style};
use skipblock_data::draw::class_color;
use skipblock_data::transforms::{detect_preprocess, network_input, ChwImage};
use skipblock_data::RgbImage;
use std::path::Path;
use tch::{nn::VarStore, Device};

pub use skipblock_pixels::predictions::{to_pixels, PixelDetection};

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

    /// An image prepared on the host: resized to S×S, `3×S×S` (normalised on the device with the batch,
    /// [`network_input`]).
    pub fn preprocess(&self, img: &RgbImage) -> ChwImage {
        detect_preprocess(img, self.input_size())
    }

    /// Detections of a batch of preprocessed images, scaled to each image's (width, height).
    pub fn detect_batch(
        &self,
        inputs: &[ChwImage],
        sizes: &[(u32, u32)],
        post: &PostprocessConfig,
    ) -> Result<Vec<Vec<PixelDetection>>> {
        let xs = network_input(inputs, self.device)?;
        let dets = self.ssd.detect(&xs, post)?;
        Ok(dets.into_iter().zip(sizes).map(|(d, &(w, h))| to_pixels(&d, w, h, &self.meta.class_names)).collect())
    }

    /// Detections of one image.
    pub fn detect(&self, img: &RgbImage, post: &PostprocessConfig) -> Result<Vec<PixelDetection>> {
        Ok(self.detect_batch(&[self.preprocess(img)], &[(img.width, img.height)], post)?.remove(0))
    }
}

/// The image with each detection drawn ([`annotate`](skipblock_data::annotate)): a box in its class colour
/// and a "name 0.87" label on it. Labels are drawn after every box, the most confident last (on top,
/// detections come most confident first).
pub fn annotate(img: &RgbImage, dets: &[PixelDetection]) -> RgbImage {
    let mut out = img.clone();
    let style = Style::for_image(img.width, img.height);
    for d in dets {
        draw_box(&mut out, d.bbox, class_color(d.class), &style);
    }
    for d in dets.iter().rev() {
        draw_box_label(&mut out, d.bbox, &format!("{} {:.2}", d.name, d.score), class_color(d.class), &style);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use skipblock_data::annotate::label_size;
    use skipblock_data::draw::text_color_on;

    const GREY: [u8; 3] = [128, 128, 128];

    /// Pixels of the `size` box at `at` closer to the text colour on `color` than to `color`.
    fn text_pixels(img: &RgbImage, at: (u32, u32), size: (u32, u32), color: [u8; 3]) -> usize {
        let ink = text_color_on(color);
        let dist = |a: [u8; 3], b: [u8; 3]| (0..3).map(|c| (a[c] as i32 - b[c] as i32).abs()).sum::<i32>();
        (at.1..at.1 + size.1)
            .flat_map(|y| (at.0..at.0 + size.0).map(move |x| (x, y)))
            .filter(|&(x, y)| dist(img.pixel(x, y), ink) < dist(img.pixel(x, y), color))
            .count()
    }

    fn det(bbox: [f32; 4], class: usize, name: &str, score: f32) -> PixelDetection {
        PixelDetection { bbox, class, name: name.into(), score }
    }

    #[test]
    fn annotations_draw_each_box_and_its_label_in_the_class_colour() {
        let img = RgbImage::filled(320, 240, GREY);
        let dets = [det([40.0, 60.0, 200.0, 220.0], 11, "dog", 0.873), det([0.0, 0.0, 100.0, 50.0], 14, "person", 0.5)];
        let out = annotate(&img, &dets);
        let style = Style::for_image(320, 240);
        let (dog, person) = (class_color(11), class_color(14));
        assert_ne!(dog, person);
        // The dog's box: its four edges in its colour, its inside untouched.
        for t in 0..style.line_width {
            for y in 60..220 {
                assert_eq!((out.pixel(40 + t, y), out.pixel(199 - t, y)), (dog, dog), "sides at y {y}");
            }
            for x in 40..200 {
                assert_eq!((out.pixel(x, 60 + t), out.pixel(x, 219 - t)), (dog, dog), "top and bottom at x {x}");
            }
        }
        assert_eq!(out.pixel(120, 140), GREY);
        // Its label sits on the box's top edge from its left edge: a box of "dog 0.87"'s size in the
        // class colour (the padding row on top is plain), with text in black or white in it.
        let (w, h) = label_size("dog 0.87", &style);
        let top = 60 - h;
        assert!((0..w).all(|dx| out.pixel(40 + dx, top) == dog), "the label's top row");
        assert_eq!(out.pixel(40 + w, top), GREY, "the label ends after the text");
        assert_eq!(out.pixel(40, top - 1), GREY, "nothing above the label");
        assert!(text_pixels(&out, (40, top), (w, h), dog) > 20, "text on the dog's label");
        // The person's box starts at the top of the image: its label is inside it.
        let (w, h) = label_size("person 0.50", &style);
        assert_eq!(out.pixel(0, 0), person);
        assert_eq!(out.pixel(w - 1, h - 1), person, "the label's bottom-right corner");
        assert!(text_pixels(&out, (0, 0), (w, h), person) > 20, "text on the person's label");
        // The input is left as it was; no detections, no drawing.
        assert_eq!(img, RgbImage::filled(320, 240, GREY));
        assert_eq!(annotate(&img, &[]), img);
    }

    #[test]
    fn annotating_tiny_images_and_odd_boxes_does_not_panic() {
        for (w, h) in [(1, 1), (2, 3), (12, 7)] {
            let img = RgbImage::filled(w, h, GREY);
            let dets = [
                det([0.0, 0.0, w as f32, h as f32], 0, "aeroplane", 0.99),
                det([-10.0, -10.0, 50.0, 50.0], 3, "boat", 0.4),
                det([5.0, 5.0, 5.0, 5.0], 19, "", 0.0),
            ];
            let out = annotate(&img, &dets);
            assert_eq!((out.width, out.height), (w, h));
        }
    }
}

//! [`DetDataset`]: a [`VocDataset`] as the loader sees it — each sample a `uint8` `3×S×S` tensor with
//! its boxes in [0, 1] and 1-based labels (0 is the background).
//!
//! Training (`train = true`) drops difficult objects (ssd.pytorch's `keep_difficult=False`) and applies
//! [`SsdAugment`]; evaluation keeps every object, flagged, and only resizes.

use super::augment::{resize_normalised, Annotated, SsdAugment};
use super::dataset::VocDataset;
use crate::image_io::read_image_fast;
use crate::loader::{Dataset, Rng};
use crate::transforms::{to_chw, ChwImage};
use anyhow::{bail, Result};
use skipblock_core::boxes::BBox;

/// One detection sample.
#[derive(Debug)]
pub struct DetSample {
    /// `3×S×S` `uint8` (the augmentation's pixels; [`crate::transforms::network_input`] normalises the
    /// batch on the device).
    pub image: ChwImage,
    /// Normalised to [0, 1] by the network input size.
    pub boxes: Vec<BBox>,
    /// 1-based class labels: 0 is the background.
    pub labels: Vec<i64>,
    pub difficult: Vec<bool>,
    /// Index of the record in [`DetDataset::voc`].
    pub index: usize,
    /// Size of the original image.
    pub width: u32,
    pub height: u32,
}

/// A VOC split prepared for SSD training or evaluation.
pub struct DetDataset {
    voc: VocDataset,
    augment: SsdAugment,
    train: bool,
}

impl DetDataset {
    /// `size`×`size` samples; `train` selects the full SSD augmentation, otherwise a plain resize.
    pub fn new(voc: VocDataset, size: u32, train: bool) -> Self {
        DetDataset { voc, augment: SsdAugment::new(size), train }
    }

    /// With a chosen augmentation (used when `train`); its `size` is the sample size either way.
    pub fn with_augment(voc: VocDataset, augment: SsdAugment, train: bool) -> Self {
        DetDataset { voc, augment, train }
    }

    pub fn voc(&self) -> &VocDataset {
        &self.voc
    }

    pub fn size(&self) -> u32 {
        self.augment.size
    }

    /// The decoded image of record `index` with its objects in pixels (difficult ones dropped when
    /// training); errors name the image file.
    pub fn annotated(&self, index: usize) -> Result<Annotated> {
        let Some(record) = self.voc.records.get(index) else {
            bail!("sample {index} is out of range: the dataset has {} images", self.voc.len());
        };
        let image = read_image_fast(&record.image)?;
        if (image.width, image.height) != (record.width, record.height) {
            bail!(
                "image '{}' is {}x{} but its annotation '{}' says {}x{}",
                record.image.display(),
                image.width,
                image.height,
                record.annotation.display(),
                record.width,
                record.height
            );
        }
        let objects = record.objects.iter().filter(|o| !(self.train && o.difficult));
        let (mut boxes, mut labels, mut difficult) = (Vec::new(), Vec::new(), Vec::new());
        for o in objects {
            boxes.push(o.bbox);
            labels.push(o.class as i64 + 1);
            difficult.push(o.difficult);
        }
        Ok(Annotated { image, boxes, labels, difficult })
    }
}

impl Dataset for DetDataset {
    type Item = DetSample;

    fn len(&self) -> usize {
        self.voc.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> Result<DetSample> {
        let a = self.annotated(index)?;
        let (width, height) = (a.image.width, a.image.height);
        let a = if self.train { self.augment.apply(a, rng) } else { resize_normalised(a, self.augment.size) };
        Ok(DetSample {
            image: to_chw(&a.image),
            boxes: a.boxes,
            labels: a.labels,
            difficult: a.difficult,
            index,
            width,
            height,
        })
    }
}

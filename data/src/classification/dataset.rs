//! [`ClsDataset`]: a [`ClassificationSet`] and its [`ClsTransform`] as a loader [`Dataset`] of
//! `(3×S×S uint8 image, label)` pairs. Training augmentation applies only to the training split of a
//! transform whose kind is not `None`; everything else gets the evaluation transform.

use super::{Augment, ClassificationSet, ClsTransform, Split};
use crate::loader::{Dataset, Rng};
use crate::transforms::ChwImage;
use anyhow::{Context, Result};

pub struct ClsDataset {
    pub set: ClassificationSet,
    pub transform: ClsTransform,
}

impl ClsDataset {
    pub fn new(set: ClassificationSet, transform: ClsTransform) -> Self {
        ClsDataset { set, transform }
    }

    /// Whether samples get the training augmentation.
    pub fn augments(&self) -> bool {
        self.set.split == Split::Train && self.transform.kind != Augment::None
    }

    pub fn class_names(&self) -> &[String] {
        &self.set.class_names
    }
}

impl Dataset for ClsDataset {
    type Item = (ChwImage, i64);

    fn len(&self) -> usize {
        self.set.len()
    }

    fn get(&self, index: usize, rng: &mut Rng) -> Result<(ChwImage, i64)> {
        let (source, label) = self
            .set
            .samples
            .get(index)
            .with_context(|| format!("sample {index} is out of range ({} samples)", self.set.len()))?;
        let img = source.load()?;
        if img.width == 0 || img.height == 0 {
            anyhow::bail!("image '{source}' is empty");
        }
        Ok((self.transform.apply(&img, self.augments(), rng), *label as i64))
    }
}

//! ImageNet-style folders: `train/<class>/*`, `val/<class>/*`. Class order is the sorted names of the
//! training class folders (stable, stored in checkpoints); a validation class unknown to `train/` is an
//! error naming it.

use super::{class_folders, images_below, Listing, Source, Split};
use anyhow::{bail, Result};
use std::path::Path;

/// Class names and samples of `split` (`train/` or `val/`).
pub fn list(root: &Path, split: Split) -> Result<Listing> {
    let train_dir = root.join("train");
    if !train_dir.is_dir() {
        bail!("ImageNet layout: '{}' is not a folder", train_dir.display());
    }
    let classes: Vec<String> = class_folders(&train_dir)?.into_iter().map(|(name, _)| name).collect();
    if classes.is_empty() {
        bail!("ImageNet layout: no class folders in '{}'", train_dir.display());
    }
    let dir = match split {
        Split::Train => train_dir,
        Split::Val => root.join("val"),
    };
    if !dir.is_dir() {
        bail!("ImageNet layout: '{}' is not a folder", dir.display());
    }
    let mut samples = Vec::new();
    for (name, path) in class_folders(&dir)? {
        let Ok(label) = classes.binary_search(&name) else {
            bail!(
                "ImageNet layout: class folder '{}' has no counterpart in '{}'",
                path.display(),
                root.join("train").display()
            );
        };
        samples.extend(images_below(&path)?.into_iter().map(|p| (Source::File(p), label)));
    }
    Ok((classes, samples))
}

//! PASCAL VOC detection data in its native layout, and SSD's training augmentation.
//!
//! A *root* is a `VOCdevkit/VOC2007`-style folder holding `Annotations/<id>.xml`, `JPEGImages/<id>.jpg`
//! and `ImageSets/Main/<split>.txt`; several roots combine into one dataset (VOC2007 + VOC2012 trainval),
//! each image known by its root and id, so equal ids in two roots stay two images.
//!
//! * [`annotation`]: reading one XML file (tolerant of third-party extra fields, VOC's `part`s) and writing one;
//! * [`dataset`]: [`VocDataset::open`] — the images of a split with their boxes, and the [`Problem`]s met;
//! * [`check`]: the whole-dataset audit behind `check` (counts per class and split, every problem);
//! * [`augment`]: ssd.pytorch's `SSDAugmentation` (photometric distortion, zoom out, IoU-constrained crop,
//!   flip, resize);
//! * [`det`]: [`DetDataset`], the loader-facing dataset giving normalised tensors and boxes;
//! * [`split`]: writing `ImageSets/Main` lists (train, val, trainval, test) for exports without them.
//!
//! Boxes are [`skipblock_core::boxes::BBox`]es in 0-based continuous pixel coordinates (VOC's 1-based
//! inclusive `xmin..xmax` becomes `[xmin − 1, xmax)`), class indices are 0-based into the class list;
//! [`DetSample`] labels are 1-based, 0 being the background.
//!
//! Problems and the `strict` flag ([`ProblemKind`]): an object that cannot be read (no name, a missing or
//! garbled `<bndbox>`, a coordinate that is not a number), an unknown class name, a box with `xmin ≥ xmax`
//! or `ymin ≥ ymax` (in the file or once clipped), a box far outside the image (beyond an edge by more
//! than [`dataset::clip_tolerance`]: 2 % of the side, at least 2 pixels), an id listed in the split whose
//! XML or image is missing, and an XML file that cannot be parsed are problems, each naming the file and,
//! for an object, its number (1-based, in file order) and class. With `strict` the first problem is an
//! error; without, the object at fault — or the whole image when its XML is missing or malformed or its
//! image missing — is left out and the problem returned. Two kinds are *warnings*, where the data is
//! corrected and kept, never errors: a box a little outside the image (within the tolerance: 0-based
//! `xmin = 0`, `xmax` one past the width) is clipped ([`ProblemKind::ClippedBox`]), and an annotation
//! without a usable `<size>` takes the image's, read from its header ([`ProblemKind::MissingSize`]).
//! Sizes are the displayed ones: EXIF orientation applied (see [`crate::image_io`]).
//! A split file that is missing or lists no image is always an error.

pub mod annotation;
pub mod augment;
pub mod check;
pub mod dataset;
pub mod det;
pub mod sizes;
pub mod split;

pub use annotation::{parse_annotation, read_annotation, write_annotation, SkippedObject, VocAnnotation, VocObject};
pub use augment::{Annotated, SsdAugment};
pub use check::{check, check_inferring_classes, infer_classes, CheckReport, ProblemGroup};
pub use dataset::{ImageFiles, Problem, ProblemKind, VocBox, VocDataset, VocRecord};
pub use det::{DetDataset, DetSample};
pub use split::{write_splits, SplitOptions, SplitSummary};

use anyhow::{bail, Context, Result};
use std::path::Path;

/// The twenty PASCAL VOC classes, in the devkit's order (class index 0 = aeroplane).
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// [`VOC_CLASSES`] as owned strings.
pub fn voc_classes() -> Vec<String> {
    VOC_CLASSES.iter().map(|s| s.to_string()).collect()
}

/// Reads a labels file: one class name per line (surrounding spaces and blank lines ignored). An empty
/// list or a repeated name is an error naming the file.
pub fn read_labels(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read labels file '{}'", path.display()))?;
    let labels: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if labels.is_empty() {
        bail!("labels file '{}' lists no class", path.display());
    }
    for (i, name) in labels.iter().enumerate() {
        if labels[..i].contains(name) {
            bail!("labels file '{}' lists class '{name}' twice", path.display());
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests;

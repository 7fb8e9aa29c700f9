//! Classification datasets read in their native layouts (no conversion step), their augmentation and the
//! [`ClsDataset`] the loader draws from.
//!
//! * [`open`] lists a split of a dataset: ImageNet folders ([`imagenet`]), Food-101 ([`food101`]),
//!   CIFAR-100 binary ([`cifar100`]) or any `<class>/*` folder ([`imagefolder`]); [`Layout::Auto`] detects
//!   which from the folder's contents;
//! * [`augment`]: [`ClsTransform`], the Inception / CIFAR training augmentation and the evaluation transform;
//! * [`dataset`]: [`ClsDataset`], a split plus its transform, as a [`crate::loader::Dataset`].

pub mod augment;
pub mod cifar100;
pub mod dataset;
pub mod food101;
pub mod imagefolder;
pub mod imagenet;

pub use augment::ClsTransform;
pub use dataset::ClsDataset;

use crate::image_io::{read_image_fast, RgbImage};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Dataset layouts read in place (no conversion step). Named in lowercase (`auto`, `imagenet`, `food101`,
/// `cifar100`, `imagefolder`) alike in recipes (serde), on the command line (clap), by [`std::str::FromStr`]
/// and by [`std::fmt::Display`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lower")]
pub enum Layout {
    /// Decide from the folder's contents.
    Auto,
    /// `train/<class>/*`, `val/<class>/*`.
    Imagenet,
    /// `images/<class>/<id>.jpg`, `meta/classes.txt`, `meta/train.txt`, `meta/test.txt`.
    Food101,
    /// `train.bin`, `test.bin` (binary version, fine labels), `fine_label_names.txt` when present.
    Cifar100,
    /// `<class>/*` with no split: a held-out fraction is used for evaluation.
    Imagefolder,
}

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    /// Inception random resized crop (scale 0.08–1, ratio 3/4–4/3) + horizontal flip.
    Inception,
    /// Horizontal flip + rotation in [−rotation, rotation] (+ optional pad-crop), for 32×32 images.
    Cifar,
    /// Evaluation preprocessing only.
    None,
}

impl Layout {
    /// The lowercase name (as in recipes and on the command line).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Auto => "auto",
            Layout::Imagenet => "imagenet",
            Layout::Food101 => "food101",
            Layout::Cifar100 => "cifar100",
            Layout::Imagefolder => "imagefolder",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Layout {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_value("layout", s)
    }
}

/// A split as a reader lists it: the class names, then every sample's source and class index.
pub type Listing = (Vec<String>, Vec<(Source, usize)>);

/// Which part of a dataset: `Val` is the held-out split (`val/`, Food-101's and CIFAR's test set, or the
/// held-out fraction of an image folder). Named `train` and `val`; `test` is accepted for `val`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
#[value(rename_all = "lower")]
pub enum Split {
    Train,
    #[value(alias = "test")]
    Val,
}

impl Split {
    /// The lowercase name: `train` or `val`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_value("split", s)
    }
}

/// Parses `s` as one of `T`'s command-line names or aliases (surrounding spaces and case ignored); the
/// error names `what`, the value and the accepted names.
fn parse_value<T: clap::ValueEnum>(what: &str, s: &str) -> Result<T> {
    T::from_str(s.trim(), true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        anyhow!("unknown {what} '{s}' (expected one of: {})", names.join(", "))
    })
}

/// Where a sample's pixels come from: an image file, or a record decoded in memory (CIFAR binaries).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File(PathBuf),
    /// Record `record` of the binary file `file`, already decoded.
    Record {
        file: Arc<PathBuf>,
        record: usize,
        image: Arc<RgbImage>,
    },
}

impl Source {
    /// The sample's pixels; a file that cannot be read or decoded is an error naming it.
    pub fn load(&self) -> Result<RgbImage> {
        match self {
            Source::File(path) => read_image_fast(path),
            Source::Record { image, .. } => Ok(RgbImage::clone(image)),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Record { file, record, .. } => write!(f, "{} record {record}", file.display()),
        }
    }
}

/// One split of a classification dataset: class names in label order and `(source, label)` samples.
#[derive(Debug, Clone)]
pub struct ClassificationSet {
    /// Label `i` is `class_names[i]` (the order checkpoints store).
    pub class_names: Vec<String>,
    pub samples: Vec<(Source, usize)>,
    /// The layout read (never `Auto`).
    pub layout: Layout,
    pub split: Split,
    pub root: PathBuf,
}

impl ClassificationSet {
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
    /// Samples per class, in label order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for (_, label) in &self.samples {
            counts[*label] += 1;
        }
        counts
    }
}

/// Decides the layout of `root` from its contents: `meta/classes.txt` + `images/` → Food-101;
/// `train.bin` (or `cifar-100-binary/train.bin`) → CIFAR-100; `train/` and `val/` → ImageNet; otherwise
/// an image folder.
pub fn detect_layout(root: &Path) -> Result<Layout> {
    if !root.is_dir() {
        bail!("dataset folder '{}' does not exist", root.display());
    }
    Ok(if root.join("meta/classes.txt").is_file() && root.join("images").is_dir() {
        Layout::Food101
    } else if cifar100::find_dir(root).is_some() {
        Layout::Cifar100
    } else if root.join("train").is_dir() && root.join("val").is_dir() {
        Layout::Imagenet
    } else {
        Layout::Imagefolder
    })
}

/// Lists `split` of the dataset at `root`. `val_fraction` and `seed` only matter for image folders (the
/// held-out fraction and the seed of the per-file split). Errors name the path at fault: a missing root,
/// an empty split, a class without training images, a malformed list or binary file.
pub fn open(root: &Path, layout: Layout, split: Split, val_fraction: f64, seed: u64) -> Result<ClassificationSet> {
    let layout = match layout {
        Layout::Auto => detect_layout(root)?,
        other => {
            if !root.is_dir() {
                bail!("dataset folder '{}' does not exist", root.display());
            }
            other
        }
    };
    let (class_names, samples) = match layout {
        Layout::Imagenet => imagenet::list(root, split)?,
        Layout::Food101 => food101::list(root, split)?,
        Layout::Cifar100 => cifar100::list(root, split)?,
        Layout::Imagefolder => imagefolder::list(root, split, val_fraction, seed)?,
        Layout::Auto => unreachable!("resolved above"),
    };
    let set = ClassificationSet { class_names, samples, layout, split, root: root.to_path_buf() };
    check(&set)?;
    Ok(set)
}

/// The checks every layout shares: classes exist, the split is not empty, every class has training data.
fn check(set: &ClassificationSet) -> Result<()> {
    let what = format!("{:?} dataset '{}' ({} split)", set.layout, set.root.display(), set.split.name());
    if set.class_names.is_empty() {
        bail!("{what} has no classes");
    }
    if set.samples.is_empty() {
        bail!("{what} has no images");
    }
    if set.split == Split::Train {
        if let Some(c) = set.class_counts().iter().position(|&n| n == 0) {
            bail!("{what}: class '{}' has no training images", set.class_names[c]);
        }
    }
    Ok(())
}

/// The sub-folders of `dir` (not hidden), sorted by name.
pub(crate) fn class_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    use anyhow::Context;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list '{}'", dir.display()))? {
        let path = entry.with_context(|| format!("cannot list '{}'", dir.display()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).map(str::to_string);
        if let Some(name) = name.filter(|n| !n.starts_with('.')) {
            if path.is_dir() {
                out.push((name, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every image below `dir` (recursively, sorted); empty when there is none.
pub(crate) fn images_below(dir: &Path) -> Result<Vec<PathBuf>> {
    use anyhow::Context;
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot list '{}'", d.display()))? {
            let path = entry.with_context(|| format!("cannot list '{}'", d.display()))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if crate::folder::is_image(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests;

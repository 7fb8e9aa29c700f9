//! Writing `ImageSets/Main` split lists for a VOC folder that has none (labelImg, CVAT and Roboflow
//! exports): `train.txt`, `val.txt`, `trainval.txt` and `test.txt` from the annotations present, drawn at
//! random but the same for the same seed ([`write_splits`]).
//!
//! Only ids with both their XML and their image count (the image found as the dataset finds it:
//! [`find_image`]). The ids are sorted, shuffled with the seed, the first `round(n · test)` go to test, the
//! next `round(n · val)` to val and the rest to train; each list is written sorted, one id a line, and
//! trainval is train and val together. Existing lists are never overwritten unless `force` is set.

use super::annotation::read_annotation;
use super::dataset::{find_image, split_file};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use skipblock_core::loader::Rng;
use skipblock_core::tensors::write_atomic;
use std::path::{Path, PathBuf};

/// The lists [`write_splits`] writes, in this order.
pub const SPLIT_NAMES: [&str; 4] = ["train", "val", "trainval", "test"];

/// How to split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitOptions {
    /// Fraction of the images for val (0 ≤ val, val + test < 1).
    pub val: f64,
    /// Fraction of the images for test.
    pub test: f64,
    pub seed: u64,
    /// Overwrite existing lists.
    pub force: bool,
}

/// What [`write_splits`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitSummary {
    pub train: usize,
    pub val: usize,
    pub test: usize,
    /// Annotations left out because their image is missing.
    pub without_image: usize,
    /// The files written, in [`SPLIT_NAMES`] order.
    pub files: Vec<PathBuf>,
}

/// The ids of `root`'s `Annotations/*.xml` with an image in `JPEGImages/`, sorted, and how many XML files
/// have none.
fn annotated_ids(root: &Path) -> Result<(Vec<String>, usize)> {
    let annotations = root.join("Annotations");
    let entries = std::fs::read_dir(&annotations)
        .with_context(|| format!("cannot list '{}' (is '{}' a VOC folder?)", annotations.display(), root.display()))?;
    let mut ids = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list '{}'", annotations.display()))?.path();
        let is_xml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"));
        if let (true, Some(stem)) = (is_xml && path.is_file(), path.file_stem().and_then(|s| s.to_str())) {
            ids.push(stem.to_string());
        }
    }
    ids.sort();
    let images = root.join("JPEGImages");
    let total = ids.len();
    // The image by id first; only when that fails is the XML read for its `filename`.
    ids.retain(|id| {
        find_image(&images, id, "").is_some()
            || read_annotation(&annotations.join(format!("{id}.xml")))
                .is_ok_and(|a| find_image(&images, id, &a.filename).is_some())
    });
    Ok((ids.clone(), total - ids.len()))
}

/// Writes the four split lists of `root` (see the [module docs](self)). An existing list is an error
/// naming it unless `opts.force`; nothing is written then.
pub fn write_splits(root: &Path, opts: &SplitOptions) -> Result<SplitSummary> {
    for (flag, v) in [("--val", opts.val), ("--test", opts.test)] {
        if !(v.is_finite() && (0.0..1.0).contains(&v)) {
            bail!("{flag} {v} is not a fraction in [0, 1)");
        }
    }
    if opts.val + opts.test >= 1.0 {
        bail!("--val {} and --test {} leave no image for train", opts.val, opts.test);
    }
    let files: Vec<PathBuf> = SPLIT_NAMES.iter().map(|s| split_file(root, s)).collect();
    if !opts.force {
        if let Some(existing) = files.iter().find(|f| f.exists()) {
            bail!("split file '{}' exists (--force overwrites the split lists)", existing.display());
        }
    }
    let (mut ids, without_image) = annotated_ids(root)?;
    let n = ids.len();
    if n == 0 {
        bail!("no annotation in '{}' has its image in JPEGImages/", root.join("Annotations").display());
    }
    let n_test = (n as f64 * opts.test).round() as usize;
    let n_val = (n as f64 * opts.val).round() as usize;
    if n_test + n_val >= n {
        bail!("{n} images are too few for --val {} and --test {}: none left for train", opts.val, opts.test);
    }
    ids.shuffle(&mut Rng::seed_from_u64(opts.seed));
    let sorted = |part: &[String]| {
        let mut part = part.to_vec();
        part.sort();
        part
    };
    let test = sorted(&ids[..n_test]);
    let val = sorted(&ids[n_test..n_test + n_val]);
    let train = sorted(&ids[n_test + n_val..]);
    let trainval = sorted(&ids[n_test..]);
    let dir = root.join("ImageSets").join("Main");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create folder '{}'", dir.display()))?;
    for (file, list) in files.iter().zip([&train, &val, &trainval, &test]) {
        let text: String = list.iter().map(|id| format!("{id}\n")).collect();
        write_atomic(file, text.as_bytes())?;
    }
    Ok(SplitSummary { train: train.len(), val: val.len(), test: test.len(), without_image, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A root of `n` annotated images (`img000`…), empty image files standing in for the images: most as
    /// `<id>.jpg`, one as `<id>.png`, one only under the name its XML gives; plus two XML files without
    /// any image.
    fn export(dir: &Path, n: usize) -> PathBuf {
        let root = dir.join("export");
        std::fs::create_dir_all(root.join("Annotations")).unwrap();
        std::fs::create_dir_all(root.join("JPEGImages")).unwrap();
        for i in 0..n + 2 {
            let id = format!("img{i:03}");
            let named = format!("photo {i}.jpeg");
            let xml = crate::voc::VocAnnotation::new(if i == 1 { named.as_str() } else { "x.jpg" }, 8, 8).to_xml();
            std::fs::write(root.join(format!("Annotations/{id}.xml")), xml).unwrap();
            let image = match i {
                0 => format!("{id}.png"),
                1 => named,
                i if i >= n => continue,
                _ => format!("{id}.jpg"),
            };
            std::fs::write(root.join("JPEGImages").join(image), b"").unwrap();
        }
        std::fs::write(root.join("Annotations/notes.txt"), "not an annotation").unwrap();
        root
    }

    fn list(root: &Path, split: &str) -> Vec<String> {
        std::fs::read_to_string(split_file(root, split)).unwrap().lines().map(String::from).collect()
    }

    #[test]
    fn splits_are_disjoint_complete_sorted_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let root = export(dir.path(), 40);
        let opts = SplitOptions { val: 0.1, test: 0.2, seed: 7, force: false };
        let s = write_splits(&root, &opts).unwrap();
        assert_eq!((s.train, s.val, s.test, s.without_image), (28, 4, 8, 2));
        assert_eq!(s.files, SPLIT_NAMES.map(|n| root.join(format!("ImageSets/Main/{n}.txt"))));
        let [train, val, trainval, test] = SPLIT_NAMES.map(|n| list(&root, n));
        assert_eq!((train.len(), val.len(), trainval.len(), test.len()), (28, 4, 32, 8));
        let all: HashSet<&String> = train.iter().chain(&val).chain(&test).collect();
        assert_eq!(all.len(), 40, "train, val and test are disjoint and cover every id");
        assert!(all.contains(&"img000".to_string()) && all.contains(&"img001".to_string()), "png and named images");
        assert!(!all.contains(&"img040".to_string()) && !all.contains(&"img041".to_string()), "XML without image");
        let mut expected_trainval: Vec<String> = train.iter().chain(&val).cloned().collect();
        expected_trainval.sort();
        assert_eq!(trainval, expected_trainval);
        assert!([&train, &val, &trainval, &test].iter().all(|l| l.windows(2).all(|w| w[0] < w[1])), "sorted");
        // The lists are what the dataset reads.
        assert_eq!(super::super::dataset::read_split(&root, "trainval").unwrap(), trainval);
        // The same seed gives the same lists; another seed other ones.
        let again = write_splits(&root, &SplitOptions { force: true, ..opts.clone() }).unwrap();
        assert_eq!(again, s);
        assert_eq!((list(&root, "test"), list(&root, "val")), (test.clone(), val.clone()));
        write_splits(&root, &SplitOptions { seed: 8, force: true, ..opts }).unwrap();
        assert_ne!(list(&root, "test"), test);
    }

    #[test]
    fn existing_lists_are_kept_without_force_and_bad_fractions_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = export(dir.path(), 5);
        std::fs::create_dir_all(root.join("ImageSets/Main")).unwrap();
        std::fs::write(split_file(&root, "val"), "mine\n").unwrap();
        let opts = SplitOptions { val: 0.2, test: 0.2, seed: 0, force: false };
        let err = format!("{:#}", write_splits(&root, &opts).unwrap_err());
        assert!(err.contains("val.txt") && err.contains("exists") && err.contains("--force"), "{err}");
        assert_eq!(list(&root, "val"), ["mine"], "untouched");
        assert!(!split_file(&root, "train").exists(), "nothing written");
        let s = write_splits(&root, &SplitOptions { force: true, ..opts.clone() }).unwrap();
        assert_eq!((s.train, s.val, s.test), (3, 1, 1));
        for (val, test, what) in
            [(0.5, 0.5, "no image for train"), (-0.1, 0.1, "--val -0.1"), (0.1, f64::NAN, "--test")]
        {
            let err =
                format!("{:#}", write_splits(&root, &SplitOptions { val, test, seed: 0, force: true }).unwrap_err());
            assert!(err.contains(what), "{err}");
        }
        let err = format!(
            "{:#}",
            write_splits(&root, &SplitOptions { val: 0.4, test: 0.5, seed: 0, force: true }).unwrap_err()
        );
        assert!(err.contains("too few"), "{err}");
        let err = format!("{:#}", write_splits(&dir.path().join("nowhere"), &opts).unwrap_err());
        assert!(err.contains("nowhere/Annotations"), "{err}");
    }
}

//! Any image folder `<class>/*` without a split: each file goes to `Val` with probability `val_fraction`,
//! decided by a hash of its path relative to the root and the seed, so the split is stable per file
//! (adding images does not move the others) and Train / Val are disjoint.

use super::{class_folders, images_below, Listing, Source, Split};
use crate::loader::mix;
use anyhow::{bail, Result};
use std::path::Path;

/// FNV-1a of the bytes of a string: a hash that does not change between runs or builds.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Whether the file at `relative` (a path under the root, `/`-separated) is held out for evaluation.
pub fn is_held_out(relative: &str, val_fraction: f64, seed: u64) -> bool {
    let u = (mix(&[seed, fnv1a(relative)]) >> 11) as f64 / (1u64 << 53) as f64;
    u < val_fraction
}

/// Class names (sorted folder names) and samples of `split`.
pub fn list(root: &Path, split: Split, val_fraction: f64, seed: u64) -> Result<Listing> {
    if !(0.0..1.0).contains(&val_fraction) {
        bail!("image folder '{}': val_fraction must be in [0, 1), got {val_fraction}", root.display());
    }
    let folders = class_folders(root)?;
    if folders.is_empty() {
        bail!("image folder '{}' has no class folders (expected <class>/<image>)", root.display());
    }
    let mut classes = Vec::with_capacity(folders.len());
    let mut samples = Vec::new();
    for (label, (name, path)) in folders.into_iter().enumerate() {
        classes.push(name);
        for image in images_below(&path)? {
            let relative = image.strip_prefix(root).unwrap_or(&image);
            let key: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            let held_out = is_held_out(&key.join("/"), val_fraction, seed);
            if held_out == (split == Split::Val) {
                samples.push((Source::File(image), label));
            }
        }
    }
    Ok((classes, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_fraction_is_close_to_the_request_and_depends_on_the_seed() {
        let names: Vec<String> = (0..4000).map(|i| format!("class_{}/img_{i}.jpg", i % 7)).collect();
        let held = |seed| names.iter().filter(|n| is_held_out(n, 0.2, seed)).count();
        let n0 = held(0);
        assert!((700..900).contains(&n0), "{n0} of 4000 held out for a fraction of 0.2");
        let differ = names.iter().filter(|n| is_held_out(n, 0.2, 0) != is_held_out(n, 0.2, 1)).count();
        assert!(differ > 400, "another seed, another split ({differ} files moved)");
        assert!(names.iter().all(|n| !is_held_out(n, 0.0, 5)));
    }
}

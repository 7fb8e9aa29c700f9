//! CIFAR-100, binary version: `train.bin` and `test.bin`, records of 3074 bytes (coarse label, fine label,
//! then 1024 R, 1024 G and 1024 B bytes of a 32×32 image, row-major). Labels are the fine labels; class
//! names come from `fine_label_names.txt` (one per line) when present, otherwise `class_000`…`class_099`.
//! The root may also be the folder holding `cifar-100-binary/`.

use super::{Listing, Source, Split};
use crate::image_io::RgbImage;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes of one record.
pub const RECORD_BYTES: usize = 2 + PIXELS * 3;
const PIXELS: usize = 32 * 32;
/// Classes assumed when no `fine_label_names.txt` is present.
pub const DEFAULT_CLASSES: usize = 100;

/// The folder holding `train.bin`: `root` itself or `root/cifar-100-binary`.
pub fn find_dir(root: &Path) -> Option<PathBuf> {
    [root.to_path_buf(), root.join("cifar-100-binary")].into_iter().find(|d| d.join("train.bin").is_file())
}

/// An image from the planar record pixels (1024 R, 1024 G, 1024 B).
pub fn record_image(planes: &[u8]) -> RgbImage {
    let data = (0..PIXELS).flat_map(|i| [planes[i], planes[PIXELS + i], planes[2 * PIXELS + i]]).collect();
    RgbImage::new(32, 32, data).expect("a CIFAR record is 32x32x3")
}

/// The planar record pixels of a 32×32 image (the inverse of [`record_image`]).
pub fn record_planes(img: &RgbImage) -> Result<Vec<u8>> {
    if (img.width, img.height) != (32, 32) {
        bail!("a CIFAR record holds a 32x32 image, got {}x{}", img.width, img.height);
    }
    Ok((0..3).flat_map(|c| img.data.iter().skip(c).step_by(3).copied()).collect())
}

/// The class names: `fine_label_names.txt` in `dir` when present, otherwise `class_000`….
fn class_names(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("fine_label_names.txt");
    if !path.is_file() {
        return Ok((0..DEFAULT_CLASSES).map(|i| format!("class_{i:03}")).collect());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("CIFAR-100 layout: cannot read '{}'", path.display()))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if names.is_empty() {
        bail!("CIFAR-100 layout: '{}' lists no classes", path.display());
    }
    Ok(names)
}

/// Class names and the decoded records of `split` (`train.bin` or `test.bin`).
pub fn list(root: &Path, split: Split) -> Result<Listing> {
    let Some(dir) = find_dir(root) else {
        bail!(
            "CIFAR-100 layout: no train.bin in '{}' or '{}'",
            root.display(),
            root.join("cifar-100-binary").display()
        );
    };
    let classes = class_names(&dir)?;
    let file = dir.join(match split {
        Split::Train => "train.bin",
        Split::Val => "test.bin",
    });
    let bytes = std::fs::read(&file).with_context(|| format!("CIFAR-100 layout: cannot read '{}'", file.display()))?;
    if bytes.len() % RECORD_BYTES != 0 {
        bail!(
            "CIFAR-100 layout: '{}' has {} bytes, not a multiple of the {RECORD_BYTES}-byte record",
            file.display(),
            bytes.len()
        );
    }
    let shared = Arc::new(file.clone());
    let mut samples = Vec::with_capacity(bytes.len() / RECORD_BYTES);
    for (record, chunk) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = chunk[1] as usize;
        if label >= classes.len() {
            bail!(
                "CIFAR-100 layout: '{}' record {record} has fine label {label}, but there are {} classes",
                file.display(),
                classes.len()
            );
        }
        let image = Arc::new(record_image(&chunk[2..]));
        samples.push((Source::Record { file: shared.clone(), record, image }, label));
    }
    Ok((classes, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_and_images_round_trip() {
        let planes: Vec<u8> = (0..3 * PIXELS).map(|i| (i * 7 % 251) as u8).collect();
        let img = record_image(&planes);
        assert_eq!(img.pixel(1, 0), [planes[1], planes[PIXELS + 1], planes[2 * PIXELS + 1]]);
        assert_eq!(img.pixel(0, 1), [planes[32], planes[PIXELS + 32], planes[2 * PIXELS + 32]]);
        assert_eq!(record_planes(&img).unwrap(), planes);
        assert!(record_planes(&RgbImage::filled(8, 8, [0, 0, 0])).is_err());
    }

    #[test]
    fn a_file_of_the_wrong_size_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.bin"), vec![0u8; RECORD_BYTES * 2 + 5]).unwrap();
        let err = format!("{:#}", list(dir.path(), Split::Train).unwrap_err());
        assert!(err.contains("train.bin") && err.contains("3074"), "{err}");
        let mut record = vec![0u8; RECORD_BYTES];
        record[1] = 100;
        std::fs::write(dir.path().join("train.bin"), &record).unwrap();
        let err = format!("{:#}", list(dir.path(), Split::Train).unwrap_err());
        assert!(err.contains("record 0") && err.contains("label 100"), "{err}");
        let err = format!("{:#}", list(dir.path(), Split::Val).unwrap_err());
        assert!(err.contains("test.bin"), "{err}");
    }
}

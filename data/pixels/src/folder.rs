//! Finding image files.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// File extensions treated as images.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "webp", "ppm"];

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Every image below `dir` (recursively), sorted by path. A missing folder or one without images is an
/// error naming it.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("'{}' is not a folder", dir.display());
    }
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot list '{}'", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_image(&path) {
                found.push(path);
            }
        }
    }
    if found.is_empty() {
        bail!("no images ({}) found in '{}'", IMAGE_EXTENSIONS.join(", "), dir.display());
    }
    found.sort();
    Ok(found)
}

/// Expands command-line sources: files are kept, folders replaced by their images.
pub fn expand_sources(sources: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in sources {
        if s.is_dir() {
            out.extend(list_images(s)?);
        } else if s.exists() {
            out.push(s.clone());
        } else {
            bail!("'{}' does not exist", s.display());
        }
    }
    Ok(out)
}

//! Food-101: `images/<class>/<id>.jpg`, `meta/classes.txt` (class order), `meta/train.txt` and
//! `meta/test.txt` (lines `apple_pie/1005649`, no extension). `Val` is the test list. A line whose class
//! is not in `classes.txt`, or whose image is missing, is an error naming the list file and line number.

use super::{Listing, Source, Split};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

/// Extensions tried for a listed id (Food-101 ships `.jpg`).
const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "JPG"];

fn read_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("Food-101 layout: cannot read '{}'", path.display()))?;
    Ok(text.lines().enumerate().map(|(i, l)| (i + 1, l.trim().to_string())).filter(|(_, l)| !l.is_empty()).collect())
}

/// Class names (`meta/classes.txt` order) and samples of `split`.
pub fn list(root: &Path, split: Split) -> Result<Listing> {
    let classes_file = root.join("meta/classes.txt");
    let classes: Vec<String> = read_lines(&classes_file)?.into_iter().map(|(_, l)| l).collect();
    if classes.is_empty() {
        bail!("Food-101 layout: '{}' lists no classes", classes_file.display());
    }
    let index: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    if index.len() != classes.len() {
        bail!("Food-101 layout: '{}' lists a class twice", classes_file.display());
    }
    let list_file = root.join(match split {
        Split::Train => "meta/train.txt",
        Split::Val => "meta/test.txt",
    });
    let images = root.join("images");
    let mut samples = Vec::new();
    for (number, line) in read_lines(&list_file)? {
        let at = || format!("'{}' line {number} ('{line}')", list_file.display());
        let Some((class, _id)) = line.split_once('/') else {
            bail!("Food-101 layout: {}: expected <class>/<id>", at());
        };
        let Some(&label) = index.get(class) else {
            bail!("Food-101 layout: {}: class '{class}' is not in '{}'", at(), classes_file.display());
        };
        let found = EXTENSIONS.iter().map(|e| images.join(format!("{line}.{e}"))).find(|p| p.is_file());
        let Some(path) = found else {
            bail!("Food-101 layout: {}: image '{}' is missing", at(), images.join(format!("{line}.jpg")).display());
        };
        samples.push((Source::File(path), label));
    }
    Ok((classes, samples))
}

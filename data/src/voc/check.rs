//! Auditing VOC folders: counts per class and split, and every problem found — it never stops at the
//! first. Beyond what [`VocDataset::open`](super::VocDataset::open) checks, each image's header is read
//! and its size compared with the annotation's.

use super::dataset::{load_record, read_split, split_file, ImageFiles, Problem, ProblemKind};
use serde::Serialize;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Counts of one class in one split (usable objects only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCounts {
    pub class: String,
    /// Images with at least one object of the class.
    pub images: usize,
    pub objects: usize,
    /// Of `objects`, those marked difficult.
    pub difficult: usize,
}

/// One split over all roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitReport {
    pub split: String,
    /// Ids the split files list.
    pub listed: usize,
    /// Usable images (listed, with their XML and JPEG, XML parsed).
    pub images: usize,
    pub objects: usize,
    pub difficult: usize,
    pub classes: Vec<ClassCounts>,
}

/// The result of [`check`]; serialises to JSON with serde.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub roots: Vec<PathBuf>,
    pub classes: Vec<String>,
    pub splits: Vec<SplitReport>,
    /// Every problem, each once, in the order found.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// True when no problem was found but warnings (corrected data: [`ProblemKind::is_warning`]).
    pub fn is_ok(&self) -> bool {
        self.problems.iter().all(|p| p.kind.is_warning())
    }

    /// A table of counts per split and class, then the problems, one per line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        let _ = writeln!(out, "VOC data in {}", roots.join(", "));
        let width = self.classes.iter().map(String::len).max().unwrap_or(5).max(5);
        for s in &self.splits {
            let _ = writeln!(
                out,
                "\nsplit {}: {} images listed, {} usable, {} objects ({} difficult)",
                s.split, s.listed, s.images, s.objects, s.difficult
            );
            let _ = writeln!(out, "  {:<width$} {:>7} {:>8} {:>9}", "class", "images", "objects", "difficult");
            for c in &s.classes {
                let _ = writeln!(out, "  {:<width$} {:>7} {:>8} {:>9}", c.class, c.images, c.objects, c.difficult);
            }
        }
        if self.problems.is_empty() {
            let _ = writeln!(out, "\nno problems found");
        } else {
            let _ = writeln!(out, "\n{} problems:", self.problems.len());
            for p in &self.problems {
                let _ = writeln!(out, "  {p}");
            }
        }
        out
    }
}

/// Checks `splits` of every root against `classes`, collecting every problem.
pub fn check(roots: &[PathBuf], splits: &[String], classes: &[String]) -> CheckReport {
    let mut problems: Vec<Problem> = Vec::new();
    let mut reports = Vec::new();
    let mut checked_images: HashSet<PathBuf> = HashSet::new();
    for split in splits {
        let mut report = SplitReport {
            split: split.clone(),
            listed: 0,
            images: 0,
            objects: 0,
            difficult: 0,
            classes: classes
                .iter()
                .map(|c| ClassCounts { class: c.clone(), images: 0, objects: 0, difficult: 0 })
                .collect(),
        };
        for root in roots {
            let ids = match read_split(root, split) {
                Ok(ids) => ids,
                Err(e) => {
                    let message = format!("{:#}", e.root_cause());
                    problems.push(Problem::file(ProblemKind::MissingSplit, &split_file(root, split), message));
                    continue;
                }
            };
            report.listed += ids.len();
            for id in ids {
                let mut found = Vec::new();
                let Some(record) = load_record(root, &id, classes, ImageFiles::Required, &mut found) else {
                    problems.extend(found);
                    continue;
                };
                if checked_images.insert(record.image.clone()) {
                    found.extend(image_problem(&record.image, record.width, record.height));
                }
                problems.extend(found);
                report.images += 1;
                let mut seen = vec![false; classes.len()];
                for o in &record.objects {
                    let c = &mut report.classes[o.class];
                    c.objects += 1;
                    c.difficult += o.difficult as usize;
                    if !seen[o.class] {
                        c.images += 1;
                        seen[o.class] = true;
                    }
                    report.objects += 1;
                    report.difficult += o.difficult as usize;
                }
            }
        }
        reports.push(report);
    }
    // A file listed in two splits reports its problems once.
    let mut seen = HashSet::new();
    let unique: Vec<Problem> = problems.into_iter().filter(|p| seen.insert(p.to_string())).collect();
    CheckReport { roots: roots.to_vec(), classes: classes.to_vec(), splits: reports, problems: unique }
}

/// A problem with the image file itself: unreadable header, or a size other than the annotation's. The
/// size is the displayed one (EXIF orientation applied, as the decoders do); an annotation giving the
/// stored size of a 90°-rotated JPEG was made in a tool that ignores the orientation (labelImg).
fn image_problem(image: &Path, width: u32, height: u32) -> Option<Problem> {
    match crate::image_io::image_size(image) {
        Err(e) => Some(Problem::file(ProblemKind::BadImage, image, format!("{:#}", e.root_cause()))),
        Ok((w, h)) if w != h && (w, h) == (height, width) => Some(Problem::file(
            ProblemKind::BadImage,
            image,
            format!(
                "image is {w}x{h} as displayed (EXIF orientation applied) but its annotation says {width}x{height}: \
                 if the JPEG has a 90° EXIF orientation it was annotated unrotated (labelImg ignores EXIF); \
                 `exiftran -ai` turns the file"
            ),
        )),
        Ok((w, h)) if (w, h) != (width, height) => Some(Problem::file(
            ProblemKind::BadImage,
            image,
            format!("image is {w}x{h} but its annotation says {width}x{height}"),
        )),
        Ok(_) => None,
    }
}

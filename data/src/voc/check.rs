//! Auditing VOC folders: counts per class and split, and every problem found — it never stops at the
//! first. Beyond what [`VocDataset::open`](super::VocDataset::open) checks, each image's header is read
//! and its size compared with the annotation's.

use super::annotation::read_annotation;
use super::dataset::{load_record, read_split, split_file, ImageFiles, Problem, ProblemKind, VocRecord};
use super::sizes::{object_sizes, ClassSizes};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitReport {
    pub split: String,
    /// Ids the split files list.
    pub listed: usize,
    /// Usable images (listed, with their XML and JPEG, XML parsed).
    pub images: usize,
    pub objects: usize,
    pub difficult: usize,
    pub classes: Vec<ClassCounts>,
    /// The usable images (for size statistics, prior coverage, …); not serialised.
    #[serde(skip)]
    pub records: Vec<VocRecord>,
}

/// The result of [`check`]; serialises to JSON with serde.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub roots: Vec<PathBuf>,
    pub classes: Vec<String>,
    /// Whether `classes` were read off the annotations (no labels file given).
    pub classes_inferred: bool,
    pub splits: Vec<SplitReport>,
    /// Object sizes per class over every checked split, then over all classes (`all`).
    pub sizes: Vec<ClassSizes>,
    /// Every problem, each once, in the order found.
    pub problems: Vec<Problem>,
}

/// Problems of one kind: how many, and the first few.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProblemGroup {
    pub kind: ProblemKind,
    pub count: usize,
    pub examples: Vec<Problem>,
}

/// Examples shown per kind of problem unless every problem is asked for.
pub const EXAMPLES_PER_KIND: usize = 3;

impl CheckReport {
    /// True when no problem was found but warnings (corrected data: [`ProblemKind::is_warning`]).
    pub fn is_ok(&self) -> bool {
        self.problems.iter().all(|p| p.kind.is_warning())
    }

    /// The problems grouped by kind, kinds in the order first met, each with its first
    /// [`EXAMPLES_PER_KIND`] problems.
    pub fn problem_groups(&self) -> Vec<ProblemGroup> {
        let mut groups: Vec<ProblemGroup> = Vec::new();
        for p in &self.problems {
            let i = match groups.iter().position(|g| g.kind == p.kind) {
                Some(i) => i,
                None => {
                    groups.push(ProblemGroup { kind: p.kind, count: 0, examples: Vec::new() });
                    groups.len() - 1
                }
            };
            groups[i].count += 1;
            if groups[i].examples.len() < EXAMPLES_PER_KIND {
                groups[i].examples.push(p.clone());
            }
        }
        groups
    }

    /// The usable records of every checked split, each image once.
    pub fn records(&self) -> impl Iterator<Item = &VocRecord> {
        let mut seen = HashSet::new();
        self.splits.iter().flat_map(|s| &s.records).filter(move |r| seen.insert(&r.image))
    }

    /// Counts per split and class, object sizes per class, then the problems: grouped by kind with
    /// their first few examples, or (`all`) every one.
    pub fn to_text(&self, all: bool) -> String {
        let mut out = String::new();
        let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        let _ = writeln!(out, "VOC data in {}", roots.join(", "));
        if self.classes_inferred {
            let _ = writeln!(
                out,
                "{} classes read off the annotations (no labels file given): {}",
                self.classes.len(),
                self.classes.join(", ")
            );
        }
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
        if !self.sizes.is_empty() {
            let _ = writeln!(
                out,
                "\nobject sizes, √(w·h): pixels | share of the image side  (5th / 50th / 95th percentile)"
            );
            let width = width.max(3);
            for c in &self.sizes {
                let (p, f) = (&c.pixels, &c.fraction);
                let _ = writeln!(
                    out,
                    "  {:<width$} {:>6} objects  {:>5.0} {:>5.0} {:>5.0} px | {:>5.1}% {:>5.1}% {:>5.1}%",
                    c.class,
                    c.objects,
                    p.p5,
                    p.p50,
                    p.p95,
                    f.p5 * 100.0,
                    f.p50 * 100.0,
                    f.p95 * 100.0
                );
            }
        }
        if self.problems.is_empty() {
            let _ = writeln!(out, "\nno problems found");
        } else if all {
            let _ = writeln!(out, "\n{} problems:", self.problems.len());
            for p in &self.problems {
                let _ = writeln!(out, "  {p}");
            }
        } else {
            let groups = self.problem_groups();
            let warnings = self.problems.iter().filter(|p| p.kind.is_warning()).count();
            let corrected = if warnings > 0 { format!(" ({warnings} corrected: warnings)") } else { String::new() };
            let _ = writeln!(out, "\n{} problems{corrected} of {} kinds:", self.problems.len(), groups.len());
            for g in &groups {
                let note = if g.kind.is_warning() { " (corrected, warning)" } else { "" };
                let _ = writeln!(out, "  {} × {}{note}", g.count, g.kind.describe());
                for p in &g.examples {
                    let _ = writeln!(out, "    {p}");
                }
                if g.count > g.examples.len() {
                    let _ = writeln!(out, "    … and {} more (--all lists every one)", g.count - g.examples.len());
                }
            }
        }
        out
    }
}

/// How often a class name occurs in one split's annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameCount {
    pub split: String,
    pub images: usize,
    pub objects: usize,
}

/// The class names the annotations of `splits` use, sorted, each with its counts per split (for exports
/// without a labels file). Unreadable files are left for [`check`] to report.
pub fn infer_classes(roots: &[PathBuf], splits: &[String]) -> BTreeMap<String, Vec<NameCount>> {
    let mut names: BTreeMap<String, Vec<NameCount>> = BTreeMap::new();
    let mut seen_files = HashSet::new();
    for split in splits {
        for root in roots {
            let Ok(ids) = read_split(root, split) else { continue };
            for id in ids {
                let path = root.join("Annotations").join(format!("{id}.xml"));
                let Ok(annotation) = read_annotation(&path) else { continue };
                let first_time = seen_files.insert((split.clone(), path));
                let mut in_image = HashSet::new();
                for o in &annotation.objects {
                    let name = o.name.trim();
                    if name.is_empty() || !first_time {
                        continue;
                    }
                    let counts = names.entry(name.to_string()).or_default();
                    if counts.last().is_none_or(|c| c.split != *split) {
                        counts.push(NameCount { split: split.clone(), images: 0, objects: 0 });
                    }
                    let c = counts.last_mut().expect("pushed above");
                    c.objects += 1;
                    if in_image.insert(name.to_string()) {
                        c.images += 1;
                    }
                }
            }
        }
    }
    names
}

/// [`check`] against the class names the annotations use ([`infer_classes`]).
pub fn check_inferring_classes(roots: &[PathBuf], splits: &[String]) -> CheckReport {
    let classes: Vec<String> = infer_classes(roots, splits).into_keys().collect();
    CheckReport { classes_inferred: true, ..check(roots, splits, &classes) }
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
            records: Vec::new(),
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
                report.records.push(record);
            }
        }
        reports.push(report);
    }
    // A file listed in two splits reports its problems once.
    let mut seen = HashSet::new();
    let unique: Vec<Problem> = problems.into_iter().filter(|p| seen.insert(p.to_string())).collect();
    let mut report = CheckReport {
        roots: roots.to_vec(),
        classes: classes.to_vec(),
        classes_inferred: false,
        splits: reports,
        sizes: Vec::new(),
        problems: unique,
    };
    report.sizes = object_sizes(report.records(), classes);
    report
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

impl ProblemKind {
    /// Its name in words: `MissingImage` → `missing image`.
    pub fn describe(self) -> String {
        let mut out = String::new();
        for (i, ch) in format!("{self:?}").chars().enumerate() {
            if ch.is_uppercase() && i > 0 {
                out.push(' ');
            }
            out.extend(ch.to_lowercase());
        }
        out
    }
}

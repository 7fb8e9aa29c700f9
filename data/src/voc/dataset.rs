//! The images of a VOC split and their boxes ([`VocDataset::open`]), and the [`Problem`]s found on the
//! way (see the [module docs](super) for what counts as a problem and what `strict` does).

use super::annotation::read_annotation;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use skipblock_core::boxes::BBox;
use std::fmt;
use std::path::{Path, PathBuf};

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// `ImageSets/Main/<split>.txt` is missing or lists no image (an error for [`VocDataset::open`]).
    MissingSplit,
    MissingAnnotation,
    MissingImage,
    /// The image header cannot be read, or its size differs from the annotation's (found by `check`).
    BadImage,
    MalformedXml,
    UnknownClass,
    /// `xmin ≥ xmax` or `ymin ≥ ymax`.
    InvalidBox,
    OutsideImage,
}

/// One problem: the file, the object (1-based number in the file, and its class name) when it concerns
/// one, and a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub file: PathBuf,
    /// 1-based number of the object in its file.
    pub object: Option<usize>,
    pub class: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn file(kind: ProblemKind, file: &Path, message: impl Into<String>) -> Self {
        Problem { kind, file: file.to_path_buf(), object: None, class: None, message: message.into() }
    }
    fn object(kind: ProblemKind, file: &Path, number: usize, class: &str, message: impl Into<String>) -> Self {
        Problem {
            kind,
            file: file.to_path_buf(),
            object: Some(number),
            class: Some(class.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}': ", self.file.display())?;
        if let Some(n) = self.object {
            write!(f, "object #{n} '{}': ", self.class.as_deref().unwrap_or(""))?;
        }
        write!(f, "{}", self.message)
    }
}

/// One ground-truth object.
#[derive(Debug, Clone, PartialEq)]
pub struct VocBox {
    /// 0-based continuous pixel coordinates, inside the image.
    pub bbox: BBox,
    /// 0-based index into the dataset's classes.
    pub class: usize,
    pub difficult: bool,
    pub truncated: bool,
    pub pose: String,
}

/// One image of a split.
#[derive(Debug, Clone, PartialEq)]
pub struct VocRecord {
    /// The `VOC2007`-style folder it comes from.
    pub root: PathBuf,
    pub id: String,
    pub image: PathBuf,
    pub annotation: PathBuf,
    pub width: u32,
    pub height: u32,
    pub objects: Vec<VocBox>,
}

/// The usable images of a split over one or more roots.
#[derive(Debug, Clone)]
pub struct VocDataset {
    pub roots: Vec<PathBuf>,
    pub split: String,
    pub classes: Vec<String>,
    pub records: Vec<VocRecord>,
}

/// The path of a split file.
pub fn split_file(root: &Path, split: &str) -> PathBuf {
    root.join("ImageSets").join("Main").join(format!("{split}.txt"))
}

/// The ids a split file lists (first token of each non-blank line); a missing file or one listing no id
/// is an error naming it.
pub fn read_split(root: &Path, split: &str) -> Result<Vec<String>> {
    let path = split_file(root, split);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("cannot read split file '{}' (is '{}' a VOC2007-style folder?)", path.display(), root.display())
    })?;
    let ids: Vec<String> = text.lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect();
    if ids.is_empty() {
        bail!("split file '{}' lists no image", path.display());
    }
    Ok(ids)
}

/// Loads the record of `id` in `root`, pushing every problem met onto `problems`. `None` when the whole
/// image is unusable (XML missing or malformed, JPEG missing); objects at fault are left out.
pub fn load_record(root: &Path, id: &str, classes: &[String], problems: &mut Vec<Problem>) -> Option<VocRecord> {
    let annotation = root.join("Annotations").join(format!("{id}.xml"));
    if !annotation.is_file() {
        problems.push(Problem::file(
            ProblemKind::MissingAnnotation,
            &annotation,
            format!("annotation of '{id}' is missing"),
        ));
        return None;
    }
    let parsed = match read_annotation(&annotation) {
        Ok(a) => a,
        Err(e) => {
            let message = format!("{:#}", e.root_cause());
            problems.push(Problem::file(ProblemKind::MalformedXml, &annotation, message));
            return None;
        }
    };
    let images = root.join("JPEGImages");
    let mut image = images.join(format!("{id}.jpg"));
    if !image.is_file() && !parsed.filename.is_empty() {
        // Third-party files may name a .png or .jpeg; the file name alone, never the (foreign) path.
        let named = Path::new(&parsed.filename).file_name().map(|n| images.join(n));
        if let Some(named) = named.filter(|p| p.is_file()) {
            image = named;
        }
    }
    if !image.is_file() {
        problems.push(Problem::file(ProblemKind::MissingImage, &image, format!("image of '{id}' is missing")));
        return None;
    }
    let (w, h) = (parsed.width as f32, parsed.height as f32);
    let mut objects = Vec::with_capacity(parsed.objects.len());
    for (i, o) in parsed.objects.iter().enumerate() {
        let number = i + 1;
        let Some(class) = classes.iter().position(|c| *c == o.name) else {
            let known = if classes.len() <= 25 { format!(" (classes: {})", classes.join(", ")) } else { String::new() };
            problems.push(Problem::object(
                ProblemKind::UnknownClass,
                &annotation,
                number,
                &o.name,
                format!("unknown class{known}"),
            ));
            continue;
        };
        let [xmin, ymin, xmax, ymax] = o.bndbox;
        if xmin >= xmax || ymin >= ymax {
            let message = format!("empty box: xmin {xmin} ≥ xmax {xmax} or ymin {ymin} ≥ ymax {ymax}");
            problems.push(Problem::object(ProblemKind::InvalidBox, &annotation, number, &o.name, message));
            continue;
        }
        if xmin < 1.0 || ymin < 1.0 || xmax > w + 1.0 || ymax > h + 1.0 {
            let message = format!(
                "box ({xmin}, {ymin}, {xmax}, {ymax}) lies outside the {}x{} image",
                parsed.width, parsed.height
            );
            problems.push(Problem::object(ProblemKind::OutsideImage, &annotation, number, &o.name, message));
            continue;
        }
        let bbox = BBox::from_voc(xmin, ymin, xmax, ymax).clip(w, h);
        objects.push(VocBox { bbox, class, difficult: o.difficult, truncated: o.truncated, pose: o.pose.clone() });
    }
    Some(VocRecord {
        root: root.to_path_buf(),
        id: id.to_string(),
        image,
        annotation,
        width: parsed.width,
        height: parsed.height,
        objects,
    })
}

impl VocDataset {
    /// The images of `split` in each of `roots`, with `classes` naming the class indices.
    /// Returns the dataset and the problems met (none with `strict`, where the first is an error).
    pub fn open(
        roots: &[PathBuf],
        split: &str,
        classes: &[String],
        strict: bool,
    ) -> Result<(VocDataset, Vec<Problem>)> {
        if roots.is_empty() {
            bail!("no VOC folder given");
        }
        if classes.is_empty() {
            bail!("no class names given");
        }
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for root in roots {
            for id in read_split(root, split)? {
                let record = load_record(root, &id, classes, &mut problems);
                if strict {
                    if let Some(first) = problems.first() {
                        bail!("{first}");
                    }
                }
                records.extend(record);
            }
        }
        if records.is_empty() {
            bail!(
                "split '{split}' has no usable image in {} ({} problems, the first: {})",
                list(roots),
                problems.len(),
                problems.first().map_or_else(String::new, |p| p.to_string())
            );
        }
        Ok((
            VocDataset { roots: roots.to_vec(), split: split.to_string(), classes: classes.to_vec(), records },
            problems,
        ))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Total number of objects (difficult ones included).
    pub fn num_objects(&self) -> usize {
        self.records.iter().map(|r| r.objects.len()).sum()
    }
}

fn list(roots: &[PathBuf]) -> String {
    roots.iter().map(|r| format!("'{}'", r.display())).collect::<Vec<_>>().join(", ")
}

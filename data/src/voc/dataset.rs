//! The images of a VOC split and their boxes ([`VocDataset::open`]), and the [`Problem`]s found on the
//! way (see the [module docs](super) for what counts as a problem and what `strict` does).

use super::annotation::read_annotation;
use crate::image_io::image_size;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use skipblock_core::boxes::BBox;
use std::fmt;
use std::path::{Path, PathBuf};

/// What is wrong. Most kinds leave something out (an object, or the whole image); the *warnings*
/// ([`ProblemKind::is_warning`]) were corrected and the data used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// `ImageSets/Main/<split>.txt` is missing or lists no image (an error for [`VocDataset::open`]).
    MissingSplit,
    MissingAnnotation,
    MissingImage,
    /// The image header cannot be read, or its size differs from the annotation's (found by `check`).
    BadImage,
    MalformedXml,
    /// An object that cannot be read: no `<name>`, a missing or garbled `<bndbox>`, a coordinate that is
    /// not a number (the object is left out).
    BadObject,
    UnknownClass,
    /// `xmin ≥ xmax` or `ymin ≥ ymax`, in the file or once clipped to the image.
    InvalidBox,
    /// A box beyond the image by more than [`clip_tolerance`] (left out).
    OutsideImage,
    /// Warning: a box beyond the image by at most [`clip_tolerance`] (0-based coordinates, `xmax` one past
    /// the width, rounding), clipped to the image and kept.
    ClippedBox,
    /// Warning: the annotation has no usable `<size>` (missing, not a number, zero); the image's size, read
    /// from its header, is used — or, when only annotations are read and the image is absent, the boxes
    /// are kept unchecked.
    MissingSize,
}

impl ProblemKind {
    /// Every kind, in declaration order (for counts per kind).
    pub const ALL: [ProblemKind; 11] = [
        ProblemKind::MissingSplit,
        ProblemKind::MissingAnnotation,
        ProblemKind::MissingImage,
        ProblemKind::BadImage,
        ProblemKind::MalformedXml,
        ProblemKind::BadObject,
        ProblemKind::UnknownClass,
        ProblemKind::InvalidBox,
        ProblemKind::OutsideImage,
        ProblemKind::ClippedBox,
        ProblemKind::MissingSize,
    ];

    /// True for the kinds where the data was corrected and used (a clipped box, a size taken from the
    /// image): never an error, even with `strict`.
    pub fn is_warning(self) -> bool {
        matches!(self, ProblemKind::ClippedBox | ProblemKind::MissingSize)
    }
}

/// How far a box may lie outside its image and still be clipped and kept (with a
/// [`ProblemKind::ClippedBox`] warning): 2 % of the image's side, at least 2 pixels, on each edge. A VOC
/// `xmin` of 0 (a 0-based coordinate) is one pixel out.
pub fn clip_tolerance(side: f32) -> f32 {
    (side * CLIP_TOLERANCE).max(CLIP_TOLERANCE_PIXELS)
}

/// The fraction of the image's side of [`clip_tolerance`].
pub const CLIP_TOLERANCE: f32 = 0.02;
/// The least tolerance of [`clip_tolerance`], in pixels.
pub const CLIP_TOLERANCE_PIXELS: f32 = 2.0;

/// Whether a split's images must be present ([`VocDataset::open_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFiles {
    /// An id whose image is missing is a [`ProblemKind::MissingImage`] and left out (training,
    /// evaluating a detector).
    Required,
    /// Annotations alone suffice (scoring result files): an absent image is no problem; the size comes
    /// from the XML, or is unknown (0 × 0).
    Optional,
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
    pub fn object(kind: ProblemKind, file: &Path, number: usize, class: &str, message: impl Into<String>) -> Self {
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
    /// The image file (with [`ImageFiles::Optional`], where it would be: it may not exist).
    pub image: PathBuf,
    pub annotation: PathBuf,
    /// The image's displayed size (EXIF orientation applied), from the XML or else the image header;
    /// 0 × 0 only when neither is available ([`ImageFiles::Optional`]).
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

/// The image of `id` in `images` (a `JPEGImages` folder): `<id>.jpg`, else the file the annotation's
/// `filename` names (its file name alone, never the often foreign path), else `<id>` with another image
/// extension.
pub fn find_image(images: &Path, id: &str, filename: &str) -> Option<PathBuf> {
    let by_id = |ext: &str| images.join(format!("{id}.{ext}"));
    let named = Path::new(filename).file_name().filter(|_| !filename.is_empty()).map(|n| images.join(n));
    std::iter::once(by_id("jpg"))
        .chain(named)
        .chain(["jpeg", "png", "bmp", "JPG", "JPEG", "PNG"].map(by_id))
        .find(|p| p.is_file())
}

/// Loads the record of `id` in `root`, pushing every problem met onto `problems`. `None` when the whole
/// image is unusable (XML missing or malformed, image missing while [`ImageFiles::Required`]); objects at
/// fault are left out, boxes a little outside the image clipped.
pub fn load_record(
    root: &Path,
    id: &str,
    classes: &[String],
    images: ImageFiles,
    problems: &mut Vec<Problem>,
) -> Option<VocRecord> {
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
    for s in &parsed.skipped {
        problems.push(Problem::object(ProblemKind::BadObject, &annotation, s.number, &s.name, s.reason.clone()));
    }
    let image = find_image(&root.join("JPEGImages"), id, &parsed.filename);
    if image.is_none() && images == ImageFiles::Required {
        let expected = root.join("JPEGImages").join(format!("{id}.jpg"));
        problems.push(Problem::file(ProblemKind::MissingImage, &expected, format!("image of '{id}' is missing")));
        return None;
    }
    let (mut width, mut height) = (parsed.width, parsed.height);
    if !parsed.has_size() {
        match image.as_deref().map(image_size) {
            Some(Ok((w, h))) => {
                (width, height) = (w, h);
                let message = format!("no usable <size>: the image's {w}x{h} is used");
                problems.push(Problem::file(ProblemKind::MissingSize, &annotation, message));
            }
            Some(Err(e)) => {
                let message = format!("no usable <size> in the annotation, and {:#}", e);
                problems.push(Problem::file(ProblemKind::BadImage, image.as_deref().unwrap_or(&annotation), message));
                return None;
            }
            None => {
                let message = "no usable <size> and no image: the boxes are kept as written";
                problems.push(Problem::file(ProblemKind::MissingSize, &annotation, message));
            }
        }
    }
    let mut objects = Vec::with_capacity(parsed.objects.len());
    for (o, number) in parsed.objects.iter().zip(object_numbers(&parsed)) {
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
        let mut problem =
            |kind, message: String| problems.push(Problem::object(kind, &annotation, number, &o.name, message));
        let [xmin, ymin, xmax, ymax] = o.bndbox;
        if xmin >= xmax || ymin >= ymax {
            problem(
                ProblemKind::InvalidBox,
                format!("empty box: xmin {xmin} ≥ xmax {xmax} or ymin {ymin} ≥ ymax {ymax}"),
            );
            continue;
        }
        let mut bbox = BBox::from_voc(xmin, ymin, xmax, ymax);
        if width > 0 && height > 0 {
            let (w, h) = (width as f32, height as f32);
            let over_x = (-bbox.xmin).max(bbox.xmax - w).max(0.0);
            let over_y = (-bbox.ymin).max(bbox.ymax - h).max(0.0);
            if over_x > clip_tolerance(w) || over_y > clip_tolerance(h) {
                let message = format!("box ({xmin}, {ymin}, {xmax}, {ymax}) lies outside the {width}x{height} image");
                problem(ProblemKind::OutsideImage, message);
                continue;
            }
            if over_x > 0.0 || over_y > 0.0 {
                bbox = bbox.clip(w, h);
                if !(bbox.xmin < bbox.xmax && bbox.ymin < bbox.ymax) {
                    let message = format!(
                        "box ({xmin}, {ymin}, {xmax}, {ymax}) is empty once clipped to the {width}x{height} image"
                    );
                    problem(ProblemKind::InvalidBox, message);
                    continue;
                }
                let [cx1, cy1, cx2, cy2] = bbox.to_voc();
                let message = format!(
                    "box ({xmin}, {ymin}, {xmax}, {ymax}) overhangs the {width}x{height} image: clipped to \
                     ({cx1}, {cy1}, {cx2}, {cy2})"
                );
                problem(ProblemKind::ClippedBox, message);
            }
        }
        objects.push(VocBox { bbox, class, difficult: o.difficult, truncated: o.truncated, pose: o.pose.clone() });
    }
    let image = image.unwrap_or_else(|| root.join("JPEGImages").join(format!("{id}.jpg")));
    Some(VocRecord { root: root.to_path_buf(), id: id.to_string(), image, annotation, width, height, objects })
}

/// The 1-based file-order numbers of an annotation's readable objects (the skipped ones hold the gaps).
fn object_numbers(parsed: &super::VocAnnotation) -> Vec<usize> {
    let total = parsed.objects.len() + parsed.skipped.len();
    (1..=total).filter(|n| !parsed.skipped.iter().any(|s| s.number == *n)).collect()
}

impl VocDataset {
    /// The images of `split` in each of `roots`, with `classes` naming the class indices.
    /// Returns the dataset and the problems met (only warnings with `strict`, where the first other
    /// problem is an error).
    pub fn open(
        roots: &[PathBuf],
        split: &str,
        classes: &[String],
        strict: bool,
    ) -> Result<(VocDataset, Vec<Problem>)> {
        Self::open_with(roots, split, classes, strict, ImageFiles::Required)
    }

    /// [`VocDataset::open`], with the images required or not.
    pub fn open_with(
        roots: &[PathBuf],
        split: &str,
        classes: &[String],
        strict: bool,
        images: ImageFiles,
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
                let record = load_record(root, &id, classes, images, &mut problems);
                if strict {
                    if let Some(first) = problems.iter().find(|p| !p.kind.is_warning()) {
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

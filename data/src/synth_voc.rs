//! A synthetic PASCAL VOC dataset: coloured shapes on cluttered backgrounds, written in VOC's own layout
//! (`VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main}` plus a `labels.txt`), so that the whole
//! detection pipeline — parsing, augmentation, training, evaluation — runs end to end in minutes on a CPU.
//!
//! Five classes, named by shape ([`SYNTH_CLASSES`]); each image holds 1–5 objects, mostly 40–190 px on a
//! 300×300 image, in random colours (colour says nothing of the class), some overlapping a little, some cut
//! by the border (`truncated = 1`), a few tiny ones (under 12 px: `difficult = 1`), over a gradient with
//! faint clutter and pixel noise. Boxes are the tight extent of each shape's painted pixels, written as
//! VOC's 1-based inclusive integers. Everything follows from the seed.

use crate::draw::{add_noise, background, fill_shape, Shape};
use crate::image_io::{write_image, RgbImage};
use crate::loader::mix;
use crate::voc::{write_annotation, VocAnnotation, VocObject};
use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The class names, in label order.
pub const SYNTH_CLASSES: [&str; 5] = ["ellipse", "rectangle", "triangle", "cross", "ring"];
const SHAPES: [Shape; 5] = [Shape::Ellipse, Shape::Rectangle, Shape::Triangle, Shape::Cross, Shape::Ring];

/// Objects whose visible box is narrower or lower than this are marked difficult (or than ¾ of the
/// smallest object side asked for, when that is less: a small-object set keeps most of its objects).
pub const DIFFICULT_BELOW: u32 = 12;

#[derive(Debug, Clone, PartialEq)]
pub struct SynthVocOptions {
    /// Images in `trainval` (a fifth of them also listed in `val`, the rest in `train`).
    pub train: usize,
    /// Images in `test`.
    pub test: usize,
    pub seed: u64,
    /// Images are `size`×`size`.
    pub size: u32,
    /// Side range of the (non-tiny) objects in pixels, drawn log-uniformly; default 36–190 px at 300 px,
    /// scaled with `size`. A small-object set: `Some((10.0, 30.0))`.
    pub object_sizes: Option<(f32, f32)>,
    /// Objects drawn per image: 1 to this many (fewer when they do not fit).
    pub max_objects: usize,
}

impl Default for SynthVocOptions {
    fn default() -> Self {
        SynthVocOptions { train: 200, test: 50, seed: 0, size: 300, object_sizes: None, max_objects: 5 }
    }
}

impl SynthVocOptions {
    /// The side range of the objects in pixels.
    pub fn sides(&self) -> (f32, f32) {
        self.object_sizes.unwrap_or((36.0 * self.size as f32 / 300.0, 190.0 * self.size as f32 / 300.0))
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The `VOCdevkit/VOC2007` folder.
    pub root: PathBuf,
    pub labels: PathBuf,
    pub classes: Vec<String>,
    pub trainval: usize,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    pub objects: usize,
    pub difficult: usize,
    pub truncated: usize,
}

/// One drawn object: class index and VOC box (1-based inclusive).
#[derive(Debug, Clone, PartialEq)]
struct SynthObject {
    class: usize,
    voc: [u32; 4],
    truncated: bool,
    difficult: bool,
}

/// Writes the dataset under `out_root/VOCdevkit/VOC2007`.
pub fn generate(out_root: &Path, opts: SynthVocOptions) -> Result<Summary> {
    if opts.size < 64 {
        bail!("synthetic VOC images must be at least 64 pixels wide (got {})", opts.size);
    }
    let (lo, hi) = opts.sides();
    if !(lo >= 4.0 && hi >= lo && hi <= 0.9 * opts.size as f32) {
        bail!("object sizes must satisfy 4 <= min <= max <= 0.9 x the image size ({}), got {lo}-{hi}", opts.size);
    }
    if opts.max_objects == 0 {
        bail!("at least one object per image is needed (max_objects = 0)");
    }
    if opts.train == 0 {
        bail!("the synthetic VOC dataset needs at least one training image");
    }
    let root = out_root.join("VOCdevkit").join("VOC2007");
    for dir in ["JPEGImages", "Annotations", "ImageSets/Main"] {
        let d = root.join(dir);
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create folder '{}'", d.display()))?;
    }
    let total = opts.train + opts.test;
    let ids: Vec<String> = (1..=total).map(|i| format!("{i:06}")).collect();
    let objects: Vec<Vec<SynthObject>> = ids
        .par_iter()
        .enumerate()
        .map(|(i, id)| {
            let (image, objects) = render(&opts, i);
            write_image(&root.join("JPEGImages").join(format!("{id}.jpg")), &image)?;
            let xml_path = root.join("Annotations").join(format!("{id}.xml"));
            write_annotation(&xml_path, &annotation(id, opts.size, opts.seed, &objects))?;
            Ok(objects)
        })
        .collect::<Result<_>>()?;
    let (trainval, test) = ids.split_at(opts.train);
    let is_val = |i: usize| opts.train >= 2 && ((i + 1).is_multiple_of(5) || (opts.train < 5 && i + 1 == opts.train));
    let val: Vec<&String> = trainval.iter().enumerate().filter(|(i, _)| is_val(*i)).map(|(_, id)| id).collect();
    let train: Vec<&String> = trainval.iter().enumerate().filter(|(i, _)| !is_val(*i)).map(|(_, id)| id).collect();
    let lists: [(&str, Vec<&String>); 4] =
        [("trainval", trainval.iter().collect()), ("train", train), ("val", val), ("test", test.iter().collect())];
    for (name, list) in &lists {
        let path = root.join("ImageSets/Main").join(format!("{name}.txt"));
        let text: String = list.iter().map(|id| format!("{id}\n")).collect();
        std::fs::write(&path, text).with_context(|| format!("cannot write '{}'", path.display()))?;
    }
    let labels = root.join("labels.txt");
    std::fs::write(&labels, SYNTH_CLASSES.join("\n") + "\n")
        .with_context(|| format!("cannot write '{}'", labels.display()))?;
    let all = objects.iter().flatten();
    Ok(Summary {
        root: root.clone(),
        labels,
        classes: SYNTH_CLASSES.iter().map(|s| s.to_string()).collect(),
        trainval: opts.train,
        train: lists[1].1.len(),
        val: lists[2].1.len(),
        test: opts.test,
        objects: all.clone().count(),
        difficult: all.clone().filter(|o| o.difficult).count(),
        truncated: all.filter(|o| o.truncated).count(),
    })
}

/// Draws image `index`: the picture and its objects.
fn render(opts: &SynthVocOptions, index: usize) -> (RgbImage, Vec<SynthObject>) {
    let size = opts.size;
    let (lo, hi) = opts.sides();
    let difficult_below = (DIFFICULT_BELOW as f32).min(0.75 * lo).round() as u32;
    let mut rng = rand::rngs::StdRng::seed_from_u64(mix(&[opts.seed, index as u64, 0x5f0c]));
    let s = size as f32;
    let mut img = background(size, size, &mut rng, 6);
    let mut placed: Vec<[f32; 4]> = Vec::new(); // visible boxes so far, continuous pixels
    let mut objects = Vec::new();
    let count = rng.gen_range(1..=opts.max_objects);
    for _ in 0..count {
        let class = rng.gen_range(0..SHAPES.len());
        let tiny = rng.gen_bool(0.06);
        let side = if tiny { rng.gen_range(6.0..11.5) } else { rng.gen_range(lo.ln()..=hi.ln()).exp() };
        let aspect: f32 = rng.gen_range(0.6f32..1.6).sqrt();
        let (w, h) = ((side * aspect).round().clamp(4.0, 0.9 * s), (side / aspect).round().clamp(4.0, 0.9 * s));
        let cut = !tiny && rng.gen_bool(0.12);
        let Some(full) = (0..30).find_map(|_| {
            // A cut object may lie up to 40% outside the image, on any side.
            let (mx, my) = if cut { (0.4 * w, 0.4 * h) } else { (0.0, 0.0) };
            let x0 = rng.gen_range(-mx..=s - w + mx).round();
            let y0 = rng.gen_range(-my..=s - h + my).round();
            let b = [x0, y0, x0 + w, y0 + h];
            let vis = [b[0].max(0.0), b[1].max(0.0), b[2].min(s), b[3].min(s)];
            placed.iter().all(|p| acceptable_overlap(p, &vis)).then_some(b)
        }) else {
            continue;
        };
        let colour = (0..20)
            .map(|_| [rng.gen::<u8>(), rng.gen::<u8>(), rng.gen::<u8>()])
            .find(|c| contrast(c, &img, &full) >= 120)
            .unwrap_or([255, 255, 255]);
        fill_shape(&mut img, SHAPES[class], full[0], full[1], full[2], full[3], colour);
        let Some([xs, ys, xe, ye]) = painted_extent(SHAPES[class], &full, size) else { continue };
        placed.push([xs as f32, ys as f32, xe as f32 + 1.0, ye as f32 + 1.0]);
        let (vw, vh) = (xe - xs + 1, ye - ys + 1);
        objects.push(SynthObject {
            class,
            voc: [xs + 1, ys + 1, xe + 1, ye + 1],
            truncated: full[0] < 0.0 || full[1] < 0.0 || full[2] > s || full[3] > s,
            difficult: vw < difficult_below || vh < difficult_below,
        });
    }
    add_noise(&mut img, 6, &mut rng);
    (img, objects)
}

/// Overlap allowed between an earlier visible box `p` and a new one `b` (which is painted over `p`).
fn acceptable_overlap(p: &[f32; 4], b: &[f32; 4]) -> bool {
    let iw = (p[2].min(b[2]) - p[0].max(b[0])).max(0.0);
    let ih = (p[3].min(b[3]) - p[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / area(p) < 0.25 && inter / area(b) < 0.5
}

/// Sum of absolute channel differences between `c` and the background at the centre of `b`.
fn contrast(c: &[u8; 3], img: &RgbImage, b: &[f32; 4]) -> u32 {
    let x = ((b[0] + b[2]) / 2.0).clamp(0.0, img.width as f32 - 1.0) as u32;
    let y = ((b[1] + b[3]) / 2.0).clamp(0.0, img.height as f32 - 1.0) as u32;
    let p = img.pixel(x, y);
    (0..3).map(|k| (c[k] as i32 - p[k] as i32).unsigned_abs()).sum()
}

/// The first and last painted column and row (0-based, inclusive) of `shape` filled in box `b`, with
/// the same pixel test as [`fill_shape`]; `None` when no pixel of it lies in the image.
fn painted_extent(shape: Shape, b: &[f32; 4], size: u32) -> Option<[u32; 4]> {
    let (w, h) = ((b[2] - b[0]).max(1e-3), (b[3] - b[1]).max(1e-3));
    let (xs, xe) = (b[0].floor().max(0.0) as u32, b[2].ceil().min(size as f32) as u32);
    let (ys, ye) = (b[1].floor().max(0.0) as u32, b[3].ceil().min(size as f32) as u32);
    let mut ext: Option<[u32; 4]> = None;
    for y in ys..ye {
        for x in xs..xe {
            let (u, v) = ((x as f32 + 0.5 - b[0]) / w, (y as f32 + 0.5 - b[1]) / h);
            if (0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v) && shape.contains(u, v) {
                ext = Some(match ext {
                    None => [x, y, x, y],
                    Some(e) => [e[0].min(x), e[1].min(y), e[2].max(x), e[3].max(y)],
                });
            }
        }
    }
    ext
}

/// The annotation of one image.
fn annotation(id: &str, size: u32, seed: u64, objects: &[SynthObject]) -> VocAnnotation {
    let mut a = VocAnnotation::new(format!("{id}.jpg"), size, size);
    a.folder = "VOC2007".into();
    a.database = format!("skipblock synthetic VOC, seed {seed}");
    a.objects = objects
        .iter()
        .map(|o| VocObject {
            truncated: o.truncated,
            difficult: o.difficult,
            ..VocObject::new(SYNTH_CLASSES[o.class], o.voc.map(|v| v as f32))
        })
        .collect();
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_is_deterministic_and_boxes_are_tight() {
        let opts = |seed| SynthVocOptions { seed, ..Default::default() };
        let (a, oa) = render(&opts(7), 3);
        let (b, ob) = render(&opts(7), 3);
        assert_eq!(a, b);
        assert_eq!(oa, ob);
        assert_ne!(render(&opts(8), 3).0, a, "another seed, another image");
        let mut sizes = Vec::new();
        for i in 0..40 {
            let (_, objects) = render(&opts(1), i);
            assert!((1..=5).contains(&objects.len()), "{}", objects.len());
            for o in objects {
                let [x0, y0, x1, y1] = o.voc;
                assert!(1 <= x0 && x0 <= x1 && x1 <= 300 && 1 <= y0 && y0 <= y1 && y1 <= 300, "{o:?}");
                sizes.push((x1 - x0 + 1).max(y1 - y0 + 1));
            }
        }
        let mid = sizes.iter().filter(|&&s| (30..=210).contains(&s)).count();
        assert!(mid * 10 >= sizes.len() * 8, "most objects 40–200 px: {sizes:?}");
    }

    #[test]
    fn small_object_scenes_hold_many_small_objects() {
        let opts = SynthVocOptions { object_sizes: Some((10.0, 30.0)), max_objects: 12, ..Default::default() };
        let mut sides = Vec::new();
        let mut most = 0;
        for i in 0..30 {
            let (_, objects) = render(&opts, i);
            most = most.max(objects.len());
            sides.extend(objects.iter().map(|o| (o.voc[2] - o.voc[0] + 1).max(o.voc[3] - o.voc[1] + 1)));
        }
        assert!(most > 5, "up to 12 objects an image: {most}");
        assert!(sides.iter().all(|&s| s <= 40), "{sides:?}");
        let bad = SynthVocOptions { object_sizes: Some((30.0, 10.0)), ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        assert!(generate(dir.path(), bad).unwrap_err().to_string().contains("object sizes"));
    }

    #[test]
    fn painted_extent_matches_the_drawn_pixels() {
        let mut img = RgbImage::filled(50, 50, [0, 0, 0]);
        let b = [10.0, 5.0, 30.0, 45.0];
        fill_shape(&mut img, Shape::Triangle, b[0], b[1], b[2], b[3], [255, 255, 255]);
        let [xs, ys, xe, ye] = painted_extent(Shape::Triangle, &b, 50).unwrap();
        let lit: Vec<(u32, u32)> =
            (0..50).flat_map(|y| (0..50).map(move |x| (x, y))).filter(|&(x, y)| img.pixel(x, y)[0] == 255).collect();
        assert_eq!(xs, lit.iter().map(|p| p.0).min().unwrap());
        assert_eq!(xe, lit.iter().map(|p| p.0).max().unwrap());
        assert_eq!(ys, lit.iter().map(|p| p.1).min().unwrap());
        assert_eq!(ye, lit.iter().map(|p| p.1).max().unwrap());
        assert_eq!(painted_extent(Shape::Ellipse, &[60.0, 60.0, 80.0, 80.0], 50), None);
    }
}

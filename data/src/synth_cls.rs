//! Synthetic classification datasets written in the native layouts the readers take (ImageNet folders,
//! Food-101, image folder, CIFAR-100 binary), for tests and the demo.
//!
//! A class is a shape ([`draw::SHAPES`]) combined with a second cue: a fill pattern (plain, striped,
//! checkered) and a count (one object or a pair); 6 × 6 = 36 classes, named like `ellipse_striped` or
//! `ring_checkered_pair`. Colours (background gradient, object and pattern colours), scale, aspect,
//! position, stripe orientation, clutter and noise are drawn at random for every image, so colour never
//! identifies a class. The output depends only on the options: the same options give the same bytes.

use crate::classification::cifar100::{record_planes, RECORD_BYTES};
use crate::classification::Layout;
use crate::draw::{self, Shape, SHAPES};
use crate::image_io::{encode_image, resize, RgbImage};
use crate::loader::{mix, Rng};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng as _, SeedableRng};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// What [`generate`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthClsOptions {
    /// The layout written (not [`Layout::Auto`]):
    /// * `Imagenet`: `train/<class>/<class>_<id>.JPEG`, `val/<class>/ILSVRC2012_val_<n>.JPEG`;
    /// * `Food101`: `images/<class>/<id>.jpg`, `meta/{classes,labels,train,test}.txt`;
    /// * `Imagefolder`: `<class>/<id>.jpg`, training and test images together (no split);
    /// * `Cifar100`: `train.bin`, `test.bin`, `fine_label_names.txt`, `coarse_label_names.txt`; always 32×32.
    pub layout: Layout,
    pub classes: usize,
    pub train_per_class: usize,
    pub test_per_class: usize,
    pub seed: u64,
    /// Image side in pixels (ignored by `Cifar100`, which is 32×32 by format).
    pub size: u32,
}

impl Default for SynthClsOptions {
    fn default() -> Self {
        SynthClsOptions {
            layout: Layout::Food101,
            classes: 6,
            train_per_class: 20,
            test_per_class: 5,
            seed: 0,
            size: 128,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthClsSummary {
    pub root: PathBuf,
    pub layout: Layout,
    /// Class names, sorted: label `i` is `class_names[i]` in every layout.
    pub class_names: Vec<String>,
    pub train: usize,
    pub test: usize,
}

impl std::fmt::Display for SynthClsSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} classes, {} training and {} test images ({} layout) in '{}'",
            self.class_names.len(),
            self.train,
            self.test,
            self.layout,
            self.root.display()
        )
    }
}

/// How an object is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Plain,
    Striped,
    Checkered,
}

/// What makes a class: a shape, a fill pattern and a number of objects (1 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassSpec {
    pub shape: Shape,
    pub pattern: Pattern,
    pub count: u32,
}

const CUES: [(Pattern, u32); 6] = [
    (Pattern::Plain, 1),
    (Pattern::Striped, 1),
    (Pattern::Checkered, 1),
    (Pattern::Plain, 2),
    (Pattern::Striped, 2),
    (Pattern::Checkered, 2),
];

/// The most classes the cue combinations give.
pub const MAX_CLASSES: usize = SHAPES.len() * CUES.len();

fn shape_name(shape: Shape) -> String {
    format!("{shape:?}").to_ascii_lowercase()
}

impl ClassSpec {
    /// A readable class name: `ellipse_striped`, `cross_plain_pair`.
    pub fn name(&self) -> String {
        let pattern = format!("{:?}", self.pattern).to_ascii_lowercase();
        let pair = if self.count == 2 { "_pair" } else { "" };
        format!("{}_{pattern}{pair}", shape_name(self.shape))
    }
}

/// The first `n` class specs (every shape with the first cue, then the next cue, …), sorted by name.
pub fn class_specs(n: usize) -> Result<Vec<ClassSpec>> {
    if n == 0 || n > MAX_CLASSES {
        bail!(
            "synthetic classification data has 1 to {MAX_CLASSES} classes ({} shapes x {} cues), got {n}",
            SHAPES.len(),
            CUES.len()
        );
    }
    let mut specs: Vec<ClassSpec> = (0..n)
        .map(|i| {
            let (pattern, count) = CUES[i / SHAPES.len()];
            ClassSpec { shape: SHAPES[i % SHAPES.len()], pattern, count }
        })
        .collect();
    specs.sort_by_key(|s| s.name());
    Ok(specs)
}

fn random_color(rng: &mut Rng) -> [u8; 3] {
    [rng.gen(), rng.gen(), rng.gen()]
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    (0..3).map(|c| (a[c] as i32 - b[c] as i32).unsigned_abs()).sum()
}

/// A random colour at least `min` (sum of channel differences) away from `other`.
fn contrasting(other: [u8; 3], min: u32, rng: &mut Rng) -> [u8; 3] {
    for _ in 0..32 {
        let c = random_color(rng);
        if distance(c, other) >= min {
            return c;
        }
    }
    other.map(|v| 255 - v)
}

/// Paints one object: `shape` in the box (x0, y0, side w×h) with its fill pattern.
#[allow(clippy::too_many_arguments)]
fn paint(img: &mut RgbImage, spec: &ClassSpec, x0: f32, y0: f32, w: f32, h: f32, colors: [[u8; 3]; 2], rng: &mut Rng) {
    if spec.pattern == Pattern::Plain {
        draw::fill_shape(img, spec.shape, x0, y0, x0 + w, y0 + h, colors[0]);
        return;
    }
    let period = (w.min(h) / rng.gen_range(3.0..5.0)).max(3.0);
    let orientation = rng.gen_range(0..3); // stripes: horizontal, vertical, diagonal
    let (xs, xe) = (x0.floor().max(0.0) as u32, ((x0 + w).ceil().max(0.0) as u32).min(img.width));
    let (ys, ye) = (y0.floor().max(0.0) as u32, ((y0 + h).ceil().max(0.0) as u32).min(img.height));
    for y in ys..ye {
        for x in xs..xe {
            let (lx, ly) = (x as f32 + 0.5 - x0, y as f32 + 0.5 - y0);
            let (u, v) = (lx / w, ly / h);
            if !((0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v) && spec.shape.contains(u, v)) {
                continue;
            }
            let band = |t: f32| (t / (period / 2.0)).floor() as i64;
            let second = match (spec.pattern, orientation) {
                (Pattern::Striped, 0) => band(ly) % 2 == 1,
                (Pattern::Striped, 1) => band(lx) % 2 == 1,
                (Pattern::Striped, _) => band((lx + ly) * std::f32::consts::FRAC_1_SQRT_2).rem_euclid(2) == 1,
                _ => (band(lx) + band(ly)) % 2 == 1,
            };
            let i = (y as usize * img.width as usize + x as usize) * 3;
            img.data[i..i + 3].copy_from_slice(&colors[second as usize]);
        }
    }
}

/// One image of class `spec`, `size`×`size` (drawn at twice the size below 64 pixels, then reduced).
pub fn render(spec: &ClassSpec, size: u32, rng: &mut Rng) -> RgbImage {
    let work = if size < 64 { size * 2 } else { size };
    let s = work as f32;
    let blobs = rng.gen_range(2..7);
    let mut img = draw::background(work, work, rng, blobs);
    let mid = img.pixel(work / 2, work / 2);
    let fg = contrasting(mid, 160, rng);
    let colors = [fg, contrasting(fg, 200, rng)];
    // Regions the objects are placed in: the whole image, or its two halves (side by side or stacked).
    let (side, regions) = if spec.count == 1 {
        (s * rng.gen_range(0.4..0.75), vec![(0.0, 0.0, s, s)])
    } else if rng.gen_bool(0.5) {
        (s * rng.gen_range(0.28..0.42), vec![(0.0, 0.0, s / 2.0, s), (s / 2.0, 0.0, s / 2.0, s)])
    } else {
        (s * rng.gen_range(0.28..0.42), vec![(0.0, 0.0, s, s / 2.0), (0.0, s / 2.0, s, s / 2.0)])
    };
    for (rx, ry, rw, rh) in regions {
        let (w, h) = (side * rng.gen_range(0.85..1.15), side * rng.gen_range(0.85..1.15));
        let x0 = rx + rng.gen_range(0.0..=(rw - w).max(0.0));
        let y0 = ry + rng.gen_range(0.0..=(rh - h).max(0.0));
        paint(&mut img, spec, x0, y0, w, h, colors, rng);
    }
    let mut img = if work != size { resize(&img, size, size) } else { img };
    let amount = rng.gen_range(3..14);
    draw::add_noise(&mut img, amount, rng);
    img
}

/// One image to write: its label, split (0 train, 1 test) and index within the class and split.
struct Item {
    label: usize,
    split: u64,
    index: usize,
}

fn items(classes: usize, train: usize, test: usize) -> Vec<Item> {
    let mut out = Vec::new();
    for label in 0..classes {
        out.extend((0..train).map(|index| Item { label, split: 0, index }));
        out.extend((0..test).map(|index| Item { label, split: 1, index }));
    }
    out
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder '{}'", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write '{}'", path.display()))
}

fn lines(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().map(|l| l + "\n").collect()
}

/// Writes a synthetic dataset at `out` (created; it must not hold files already) in `opts.layout`.
pub fn generate(out: &Path, opts: &SynthClsOptions) -> Result<SynthClsSummary> {
    let specs = class_specs(opts.classes)?;
    if opts.layout == Layout::Auto {
        bail!("synthetic data is written in a given layout (imagenet, food101, cifar100 or imagefolder), not 'auto'");
    }
    if opts.train_per_class == 0 {
        bail!("synthetic classification data needs at least one training image per class");
    }
    let size = if opts.layout == Layout::Cifar100 { 32 } else { opts.size };
    if size < 16 {
        bail!("synthetic images must be at least 16 pixels wide, got {size}");
    }
    if out.is_dir()
        && std::fs::read_dir(out).with_context(|| format!("cannot list '{}'", out.display()))?.next().is_some()
    {
        bail!("'{}' is not empty: choose a new folder for the synthetic dataset", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create folder '{}'", out.display()))?;
    let names: Vec<String> = specs.iter().map(ClassSpec::name).collect();
    let items = items(specs.len(), opts.train_per_class, opts.test_per_class);
    let images: Vec<RgbImage> = items
        .par_iter()
        .map(|it| {
            render(
                &specs[it.label],
                size,
                &mut Rng::seed_from_u64(mix(&[opts.seed, it.label as u64, it.split, it.index as u64])),
            )
        })
        .collect();
    match opts.layout {
        Layout::Cifar100 => write_cifar100(out, opts.seed, &specs, &names, &items, &images)?,
        layout => {
            if layout == Layout::Imagenet {
                // Both split folders exist even without test images: they are what identifies the layout.
                for dir in [out.join("train"), out.join("val")] {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create folder '{}'", dir.display()))?;
                }
            }
            let paths: Vec<PathBuf> = items.iter().map(|it| image_path(out, layout, &names, opts, it)).collect();
            write_images(&paths, &images)?;
            if layout == Layout::Food101 {
                write_food101_meta(out, &names, opts, &items)?;
            }
        }
    }
    Ok(SynthClsSummary {
        root: out.to_path_buf(),
        layout: opts.layout,
        class_names: names,
        train: specs.len() * opts.train_per_class,
        test: specs.len() * opts.test_per_class,
    })
}

/// The number in an image's file name: 100000 + its index among the images of its class (training first).
fn file_id(opts: &SynthClsOptions, it: &Item) -> usize {
    100_000 + it.split as usize * opts.train_per_class + it.index
}

/// Where image `it` goes under `out` in a file-per-image `layout` (ImageNet, Food-101, image folder).
fn image_path(out: &Path, layout: Layout, names: &[String], opts: &SynthClsOptions, it: &Item) -> PathBuf {
    let class = &names[it.label];
    let id = file_id(opts, it);
    match (layout, it.split) {
        (Layout::Food101, _) => out.join("images").join(class).join(format!("{id}.jpg")),
        (Layout::Imagenet, 0) => out.join("train").join(class).join(format!("{class}_{id}.JPEG")),
        (Layout::Imagenet, _) => {
            // Validation images are numbered across classes, like ILSVRC2012_val_00000001.JPEG.
            let n = it.label * opts.test_per_class + it.index + 1;
            out.join("val").join(class).join(format!("ILSVRC2012_val_{n:08}.JPEG"))
        }
        _ => out.join(class).join(format!("{id}.jpg")),
    }
}

/// Encodes `images[i]` in the format of `paths[i]` (in parallel) and writes it there.
fn write_images(paths: &[PathBuf], images: &[RgbImage]) -> Result<()> {
    let encoded: Vec<Result<Vec<u8>>> =
        paths.par_iter().zip(images).map(|(path, img)| encode_image(img, path)).collect();
    for (path, bytes) in paths.iter().zip(encoded) {
        write(path, &bytes.with_context(|| format!("cannot encode '{}'", path.display()))?)?;
    }
    Ok(())
}

/// Food-101's `meta/`: `classes.txt`, `labels.txt` (readable names) and the `train.txt` / `test.txt`
/// lists of `<class>/<id>`.
fn write_food101_meta(out: &Path, names: &[String], opts: &SynthClsOptions, items: &[Item]) -> Result<()> {
    let meta = out.join("meta");
    write(&meta.join("classes.txt"), lines(names.iter().cloned()).as_bytes())?;
    let readable = names.iter().map(|n| {
        let words = n.replace('_', " ");
        words[..1].to_ascii_uppercase() + &words[1..]
    });
    write(&meta.join("labels.txt"), lines(readable).as_bytes())?;
    let relative = |it: &Item| format!("{}/{}", names[it.label], file_id(opts, it));
    for (split, file) in [(0, "train.txt"), (1, "test.txt")] {
        write(&meta.join(file), lines(items.iter().filter(|it| it.split == split).map(relative)).as_bytes())?;
    }
    Ok(())
}

/// CIFAR-100's binary version: `train.bin` and `test.bin` (records shuffled, coarse label = the shape),
/// `fine_label_names.txt` and `coarse_label_names.txt`.
fn write_cifar100(
    out: &Path,
    seed: u64,
    specs: &[ClassSpec],
    names: &[String],
    items: &[Item],
    images: &[RgbImage],
) -> Result<()> {
    let mut shapes: Vec<String> = SHAPES.iter().map(|&s| shape_name(s)).collect();
    shapes.sort();
    for (split, file) in [(0, "train.bin"), (1, "test.bin")] {
        let mut order: Vec<usize> = (0..items.len()).filter(|&i| items[i].split == split).collect();
        order.shuffle(&mut Rng::seed_from_u64(mix(&[seed, split, 7])));
        let mut bytes = Vec::with_capacity(order.len() * RECORD_BYTES);
        for i in order {
            let label = items[i].label;
            let shape = shape_name(specs[label].shape);
            let coarse = shapes.iter().position(|s| *s == shape).expect("every shape is named");
            bytes.extend_from_slice(&[coarse as u8, label as u8]);
            bytes.extend(record_planes(&images[i])?);
        }
        write(&out.join(file), &bytes)?;
    }
    write(&out.join("fine_label_names.txt"), lines(names.iter().cloned()).as_bytes())?;
    write(&out.join("coarse_label_names.txt"), lines(shapes).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_specs_are_distinct_named_and_bounded() {
        let specs = class_specs(MAX_CLASSES).unwrap();
        let mut names: Vec<String> = specs.iter().map(ClassSpec::name).collect();
        assert!(names.contains(&"ellipse_striped".to_string()) && names.contains(&"ring_checkered_pair".to_string()));
        names.dedup();
        assert_eq!(names.len(), 36);
        // Few classes differ by shape first.
        let four: Vec<Shape> = class_specs(4).unwrap().iter().map(|s| s.shape).collect();
        assert!(four.iter().all(|s| four.iter().filter(|t| *t == s).count() == 1));
        let err = class_specs(37).unwrap_err().to_string();
        assert!(err.contains("36") && err.contains("37"), "{err}");
        assert!(class_specs(0).is_err());
    }

    #[test]
    fn images_vary_within_a_class_and_colour_does_not_give_the_class_away() {
        let specs = class_specs(12).unwrap();
        // The mean colour of images of two classes: drawn from the same distribution, so class means are close.
        let mean = |spec: &ClassSpec| {
            let mut sum = [0f64; 3];
            for k in 0..40 {
                let img = render(spec, 32, &mut Rng::seed_from_u64(k));
                for (c, s) in sum.iter_mut().enumerate() {
                    *s += img.data.iter().skip(c).step_by(3).map(|&v| v as f64).sum::<f64>() / 1024.0 / 40.0;
                }
            }
            sum
        };
        let (a, b) = (mean(&specs[0]), mean(&specs[7]));
        assert!((0..3).all(|c| (a[c] - b[c]).abs() < 30.0), "{a:?} vs {b:?}");
        let x = render(&specs[0], 48, &mut Rng::seed_from_u64(1));
        assert_ne!(x, render(&specs[0], 48, &mut Rng::seed_from_u64(2)));
        assert_eq!(x, render(&specs[0], 48, &mut Rng::seed_from_u64(1)));
        assert_eq!((x.width, x.height), (48, 48));
    }

    #[test]
    fn generation_is_deterministic_and_refuses_bad_options() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SynthClsOptions {
            layout: Layout::Cifar100,
            classes: 5,
            train_per_class: 3,
            test_per_class: 2,
            seed: 4,
            size: 0,
        };
        let a = generate(&dir.path().join("a"), &opts).unwrap();
        generate(&dir.path().join("b"), &opts).unwrap();
        assert_eq!((a.train, a.test), (15, 10));
        for f in ["train.bin", "test.bin", "fine_label_names.txt"] {
            assert_eq!(
                std::fs::read(dir.path().join("a").join(f)).unwrap(),
                std::fs::read(dir.path().join("b").join(f)).unwrap()
            );
        }
        let other = generate(&dir.path().join("c"), &SynthClsOptions { seed: 5, ..opts.clone() }).unwrap();
        assert_eq!(other.class_names, a.class_names);
        assert_ne!(
            std::fs::read(dir.path().join("a/train.bin")).unwrap(),
            std::fs::read(dir.path().join("c/train.bin")).unwrap()
        );
        let err = generate(&dir.path().join("a"), &opts).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        assert!(generate(&dir.path().join("d"), &SynthClsOptions { classes: 40, ..opts.clone() }).is_err());
        let food = SynthClsOptions { layout: Layout::Food101, size: 24, ..opts.clone() };
        generate(&dir.path().join("f1"), &food).unwrap();
        generate(&dir.path().join("f2"), &food).unwrap();
        let files = crate::folder::list_images(&dir.path().join("f1")).unwrap();
        assert_eq!(files.len(), 25);
        for f in
            files.iter().map(|f| f.strip_prefix(dir.path().join("f1")).unwrap()).chain([Path::new("meta/train.txt")])
        {
            assert_eq!(
                std::fs::read(dir.path().join("f1").join(f)).unwrap(),
                std::fs::read(dir.path().join("f2").join(f)).unwrap()
            );
        }
        let small = SynthClsOptions { layout: Layout::Imagefolder, size: 8, ..opts.clone() };
        assert!(generate(&dir.path().join("e"), &small).unwrap_err().to_string().contains("16"));
        let auto = SynthClsOptions { layout: Layout::Auto, ..opts };
        let err = generate(&dir.path().join("g"), &auto).unwrap_err().to_string();
        assert!(err.contains("'auto'") && err.contains("imagenet"), "{err}");
        assert!(!dir.path().join("g").exists(), "nothing is written for a refused layout");
    }
}

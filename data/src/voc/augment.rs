//! SSD's training augmentation, after ssd.pytorch's `SSDAugmentation` (and torchvision's SSD recipe):
//! photometric distortion → zoom out (expand) → IoU-constrained random crop → horizontal flip → resize to
//! S×S, boxes moving with the pixels and finally normalised to [0, 1] by the output size.
//!
//! * photometric ([`photometric_distort`]): brightness ±32, then contrast ×U(0.5, 1.5) either first or
//!   last, saturation ×U(0.5, 1.5) and hue ±18° in HSV — each step with probability 0.5, values clamped
//!   to [0, 255] after each (ssd.pytorch's channel-swap "lighting noise" is left out);
//! * zoom out ([`expand`], p = 0.5): a canvas U(1, 4) times larger filled with the ImageNet mean colour,
//!   the image at a random place;
//! * crop ([`random_crop`]): ssd.pytorch's `RandomSampleCrop` — a minimum IoU drawn from {keep the whole
//!   image, 0.1, 0.3, 0.5, 0.7, 0.9, no constraint}, up to 50 tries of a crop with sides in
//!   [0.3, 1]·size and aspect h/w in [0.5, 2] whose IoU with some box reaches the minimum; boxes whose
//!   centre lies inside are kept and clipped;
//! * flip (p = 0.5) and a bilinear resize to S×S ([`crate::image_io::resize`]).
//!
//! Boxes narrower or lower than one pixel after clipping, or after the final resize, are dropped with
//! their labels and difficult flags. Every draw comes from the given generator: same generator state,
//! same result.

use crate::image_io::{crop, resize, RgbImage};
use crate::loader::Rng;
use rand::Rng as _;
use skipblock_core::boxes::BBox;

/// The ImageNet mean colour in 0–255 RGB (the zoom-out canvas).
pub const MEAN_RGB: [u8; 3] = [124, 116, 104];

/// An image with its boxes (pixels until [`resize_normalised`]), labels and difficult flags, kept
/// aligned: entry `i` of each list is the same object.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotated {
    pub image: RgbImage,
    pub boxes: Vec<BBox>,
    pub labels: Vec<i64>,
    pub difficult: Vec<bool>,
}

impl Annotated {
    /// Keeps the objects for which `keep(i, box)` gives a (possibly changed) box.
    fn filter_map(&mut self, keep: impl Fn(&BBox) -> Option<BBox>) {
        let mut k = 0;
        for i in 0..self.boxes.len() {
            if let Some(b) = keep(&self.boxes[i]) {
                self.boxes[k] = b;
                self.labels[k] = self.labels[i];
                self.difficult[k] = self.difficult[i];
                k += 1;
            }
        }
        self.boxes.truncate(k);
        self.labels.truncate(k);
        self.difficult.truncate(k);
    }
}

/// Which steps run, and the output size.
#[derive(Debug, Clone, PartialEq)]
pub struct SsdAugment {
    pub size: u32,
    pub photometric: bool,
    pub expand: bool,
    pub crop: bool,
    pub flip: bool,
    /// Colour of the zoom-out canvas.
    pub mean: [u8; 3],
}

impl SsdAugment {
    /// Every step on, output `size`×`size`.
    pub fn new(size: u32) -> Self {
        SsdAugment { size, photometric: true, expand: true, crop: true, flip: true, mean: MEAN_RGB }
    }

    /// Augments `a` (boxes in pixels); the result is `size`×`size` with boxes normalised to [0, 1].
    pub fn apply(&self, mut a: Annotated, rng: &mut Rng) -> Annotated {
        if self.photometric {
            photometric_distort(&mut a.image, rng);
        }
        if self.expand {
            a = expand(a, self.mean, rng);
        }
        if self.crop {
            a = random_crop(a, rng);
        }
        if self.flip && rng.gen_bool(0.5) {
            a = hflip(a);
        }
        let (s, w, h) = (self.size as f32, a.image.width as f32, a.image.height as f32);
        // At least one pixel in the network input.
        a.filter_map(|b| (b.width() * s / w >= 1.0 && b.height() * s / h >= 1.0).then_some(*b));
        resize_normalised(a, self.size)
    }
}

/// Resizes to `size`×`size` and divides the boxes by the image size (clipped to [0, 1]).
pub fn resize_normalised(mut a: Annotated, size: u32) -> Annotated {
    let (w, h) = (a.image.width as f32, a.image.height as f32);
    a.filter_map(|b| Some(b.scale(1.0 / w, 1.0 / h).clip(1.0, 1.0)));
    a.image = resize(&a.image, size, size);
    a
}

/// Mirrors the image and its boxes left–right.
pub fn hflip(mut a: Annotated) -> Annotated {
    let (w, h) = (a.image.width as usize, a.image.height as usize);
    for y in 0..h {
        let row = &mut a.image.data[y * w * 3..(y + 1) * w * 3];
        for x in 0..w / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
            }
        }
    }
    let wf = w as f32;
    a.filter_map(|b| Some(b.hflip(wf)));
    a
}

/// Random brightness, contrast, saturation and hue (see the module docs).
pub fn photometric_distort(img: &mut RgbImage, rng: &mut Rng) {
    let mut px: Vec<f32> = img.data.iter().map(|&v| v as f32).collect();
    if rng.gen_bool(0.5) {
        let delta = rng.gen_range(-32.0f32..32.0);
        px.iter_mut().for_each(|v| *v = (*v + delta).clamp(0.0, 255.0));
    }
    let contrast_first = rng.gen_bool(0.5);
    let contrast = |px: &mut [f32], rng: &mut Rng| {
        if rng.gen_bool(0.5) {
            let alpha = rng.gen_range(0.5f32..1.5);
            px.iter_mut().for_each(|v| *v = (*v * alpha).clamp(0.0, 255.0));
        }
    };
    if contrast_first {
        contrast(&mut px, rng);
    }
    let saturation = rng.gen_bool(0.5).then(|| rng.gen_range(0.5f32..1.5));
    let hue = rng.gen_bool(0.5).then(|| rng.gen_range(-18.0f32..18.0));
    if saturation.is_some() || hue.is_some() {
        for p in px.chunks_exact_mut(3) {
            let (mut h, mut s, v) = rgb_to_hsv(p[0], p[1], p[2]);
            if let Some(f) = saturation {
                s = (s * f).clamp(0.0, 1.0);
            }
            if let Some(d) = hue {
                h = (h + d).rem_euclid(360.0);
            }
            let (r, g, b) = hsv_to_rgb(h, s, v);
            p.copy_from_slice(&[r, g, b]);
        }
    }
    if !contrast_first {
        contrast(&mut px, rng);
    }
    for (d, v) in img.data.iter_mut().zip(&px) {
        *d = v.round().clamp(0.0, 255.0) as u8;
    }
}

/// RGB in 0–255 to (hue in degrees [0, 360), saturation [0, 1], value 0–255).
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let s = if max > 0.0 { d / max } else { 0.0 };
    let h = if d <= 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / d)
    } else if max == g {
        60.0 * ((b - r) / d) + 120.0
    } else {
        60.0 * ((r - g) / d) + 240.0
    };
    (h.rem_euclid(360.0), s, max)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let c = v * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp.rem_euclid(2.0) - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    (r + m, g + m, b + m)
}

/// Zoom out with probability 0.5: the image on a canvas U(1, 4) times larger filled with `mean`.
pub fn expand(mut a: Annotated, mean: [u8; 3], rng: &mut Rng) -> Annotated {
    if !rng.gen_bool(0.5) {
        return a;
    }
    let ratio = rng.gen_range(1.0f32..4.0);
    let (w, h) = (a.image.width, a.image.height);
    let (cw, ch) = (((w as f32 * ratio) as u32).max(w), ((h as f32 * ratio) as u32).max(h));
    let left = (rng.gen::<f32>() * (cw - w) as f32) as u32;
    let top = (rng.gen::<f32>() * (ch - h) as f32) as u32;
    let mut canvas = RgbImage::filled(cw, ch, mean);
    let row = w as usize * 3;
    for y in 0..h as usize {
        let dst = ((top as usize + y) * cw as usize + left as usize) * 3;
        canvas.data[dst..dst + row].copy_from_slice(&a.image.data[y * row..(y + 1) * row]);
    }
    a.image = canvas;
    a.filter_map(|b| Some(b.shift(left as f32, top as f32)));
    a
}

/// The minimum IoUs [`random_crop`] draws from: `None` keeps the whole image, −∞ is no constraint.
const CROP_MODES: [Option<f32>; 7] =
    [None, Some(0.1), Some(0.3), Some(0.5), Some(0.7), Some(0.9), Some(f32::NEG_INFINITY)];

/// ssd.pytorch's `RandomSampleCrop` (see the module docs). An image without boxes is left whole.
pub fn random_crop(mut a: Annotated, rng: &mut Rng) -> Annotated {
    if a.boxes.is_empty() {
        return a;
    }
    let (w, h) = (a.image.width as f32, a.image.height as f32);
    // ssd.pytorch loops until a mode succeeds; "keep" has probability 1/7, so this bound is never the end.
    for _ in 0..1000 {
        let Some(min_iou) = CROP_MODES[rng.gen_range(0..CROP_MODES.len())] else {
            return a;
        };
        for _ in 0..50 {
            let cw = rng.gen_range(0.3 * w..=w);
            let ch = rng.gen_range(0.3 * h..=h);
            if ch / cw < 0.5 || ch / cw > 2.0 {
                continue;
            }
            let left = rng.gen::<f32>() * (w - cw);
            let top = rng.gen::<f32>() * (h - ch);
            let (x0, y0) = (left.floor(), top.floor());
            let (x1, y1) = ((left + cw).floor().max(x0 + 1.0), (top + ch).floor().max(y0 + 1.0));
            let rect = BBox::new(x0, y0, x1, y1);
            let best = a.boxes.iter().map(|b| b.iou(&rect)).fold(f32::NEG_INFINITY, f32::max);
            if best < min_iou {
                continue;
            }
            let inside = |b: &BBox| {
                let (cx, cy) = b.center();
                x0 < cx && cx < x1 && y0 < cy && cy < y1
            };
            let moved = |b: &BBox| {
                let c = BBox::new(b.xmin.max(x0), b.ymin.max(y0), b.xmax.min(x1), b.ymax.min(y1)).shift(-x0, -y0);
                (inside(b) && c.width() >= 1.0 && c.height() >= 1.0).then_some(c)
            };
            if !a.boxes.iter().any(|b| moved(b).is_some()) {
                continue;
            }
            a.filter_map(moved);
            a.image = crop(&a.image, x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32);
            return a;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::{fill_shape, Shape};
    use rand::SeedableRng;

    const RED: [u8; 3] = [220, 30, 30];
    const BLUE: [u8; 3] = [30, 40, 220];

    /// A grey 200×150 picture with a red object (label 1) and a blue one (label 2).
    fn scene() -> Annotated {
        let mut image = RgbImage::filled(200, 150, [128, 128, 128]);
        let (red, blue) = (BBox::new(20.0, 30.0, 90.0, 100.0), BBox::new(130.0, 60.0, 190.0, 140.0));
        for (b, c) in [(red, RED), (blue, BLUE)] {
            fill_shape(&mut image, Shape::Rectangle, b.xmin, b.ymin, b.xmax, b.ymax, c);
        }
        Annotated { image, boxes: vec![red, blue], labels: vec![1, 2], difficult: vec![false, true] }
    }

    fn close(p: [u8; 3], c: [u8; 3]) -> bool {
        (0..3).all(|k| (p[k] as i32 - c[k] as i32).abs() < 60)
    }

    #[test]
    fn boxes_follow_the_pixels() {
        let aug = SsdAugment { photometric: false, ..SsdAugment::new(120) };
        let mut kept = 0;
        for seed in 0..150 {
            let out = aug.apply(scene(), &mut Rng::seed_from_u64(seed));
            assert_eq!((out.image.width, out.image.height), (120, 120));
            assert_eq!(out.boxes.len(), out.labels.len());
            assert_eq!(out.boxes.len(), out.difficult.len());
            assert!(!out.boxes.is_empty(), "seed {seed}: the crop keeps at least one box");
            for ((b, &label), &difficult) in out.boxes.iter().zip(&out.labels).zip(&out.difficult) {
                assert!(
                    b.is_valid() && b.xmin >= 0.0 && b.ymin >= 0.0 && b.xmax <= 1.0 && b.ymax <= 1.0,
                    "seed {seed}: {b:?}"
                );
                assert_eq!(difficult, label == 2, "flags move with their boxes");
                let colour = if label == 1 { RED } else { BLUE };
                let p = b.scale(120.0, 120.0);
                // Pixels well inside the box (one pixel of filter blur at the edges) have the object's colour.
                let (x0, y0, x1, y1) =
                    (p.xmin.ceil() as u32 + 1, p.ymin.ceil() as u32 + 1, p.xmax.floor() as u32, p.ymax.floor() as u32);
                let (mut inside, mut total) = (0, 0);
                for y in y0..y1.saturating_sub(1) {
                    for x in x0..x1.saturating_sub(1) {
                        total += 1;
                        inside += close(out.image.pixel(x, y), colour) as usize;
                    }
                }
                assert!(
                    total == 0 || inside * 10 >= total * 9,
                    "seed {seed}, label {label}: {inside}/{total} pixels of the colour"
                );
                // And the colour does not extend beyond the box (two pixels of slack).
                let outside = (0..120u32)
                    .flat_map(|y| (0..120u32).map(move |x| (x, y)))
                    .filter(|&(x, y)| {
                        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                        (fx < p.xmin - 2.0 || fx > p.xmax + 2.0 || fy < p.ymin - 2.0 || fy > p.ymax + 2.0)
                            && close(out.image.pixel(x, y), colour)
                    })
                    .count();
                assert_eq!(outside, 0, "seed {seed}, label {label}: object colour outside its box {p:?}");
                kept += 1;
            }
        }
        assert!(kept > 150, "boxes are mostly kept: {kept}");
    }

    #[test]
    fn full_augmentation_is_valid_and_deterministic() {
        let aug = SsdAugment::new(96);
        let mut changed_sizes = 0;
        for seed in 0..60 {
            let a = aug.apply(scene(), &mut Rng::seed_from_u64(seed));
            let b = aug.apply(scene(), &mut Rng::seed_from_u64(seed));
            assert_eq!(a, b, "seed {seed}: same generator, same result");
            for bx in &a.boxes {
                assert!(bx.is_valid() && bx.xmin >= 0.0 && bx.ymax <= 1.0 && bx.xmax <= 1.0 && bx.ymin >= 0.0);
                assert!(bx.width() * 96.0 >= 1.0 && bx.height() * 96.0 >= 1.0, "degenerate boxes are dropped");
            }
            changed_sizes += (a.boxes.len() != 2) as usize;
        }
        let a = aug.apply(scene(), &mut Rng::seed_from_u64(1));
        let c = aug.apply(scene(), &mut Rng::seed_from_u64(2));
        assert_ne!(a, c, "another seed, another sample");
        assert!(changed_sizes > 0, "crops sometimes leave an object out");
    }

    #[test]
    fn steps_do_what_they_say() {
        // Flip mirrors pixels and boxes.
        let f = hflip(scene());
        assert_eq!(f.boxes[0], BBox::new(110.0, 30.0, 180.0, 100.0));
        assert_eq!(f.image.pixel(179, 50), RED);
        // Expand keeps the picture intact at the box offset, the canvas in the mean colour.
        let e = (0..20)
            .map(|s| expand(scene(), MEAN_RGB, &mut Rng::seed_from_u64(s)))
            .find(|e| e.image.width > 200)
            .unwrap();
        let b = e.boxes[0];
        assert_eq!(e.image.pixel(b.xmin as u32 + 1, b.ymin as u32 + 1), RED);
        assert_eq!(e.image.pixel(b.xmin as u32 - 15, b.ymin as u32 - 25), [128, 128, 128]);
        assert!(e.image.data.chunks(3).any(|p| p == MEAN_RGB));
        // Colour conversions round-trip; a grey image stays grey under saturation and hue changes.
        for rgb in [[255.0, 0.0, 0.0], [10.0, 200.0, 90.0], [30.0, 40.0, 220.0], [77.0, 77.0, 77.0]] {
            let (h, s, v) = rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
            let (r, g, b) = hsv_to_rgb(h, s, v);
            assert!((r - rgb[0]).abs() < 0.01 && (g - rgb[1]).abs() < 0.01 && (b - rgb[2]).abs() < 0.01, "{rgb:?}");
        }
        let mut distorted = 0;
        for s in 0..20 {
            let mut grey = RgbImage::filled(8, 8, [100, 100, 100]);
            photometric_distort(&mut grey, &mut Rng::seed_from_u64(s));
            assert!(grey.data.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
            distorted += (grey.pixel(0, 0) != [100, 100, 100]) as usize;
        }
        assert!(distorted > 10, "brightness and contrast change most images: {distorted}");
    }

    #[test]
    fn the_flip_switch_decides_whether_images_are_ever_mirrored() {
        // Only the flip can move the red object (left half) to the right half.
        let only_flip = SsdAugment { photometric: false, expand: false, crop: false, ..SsdAugment::new(100) };
        let mirrored = |aug: &SsdAugment| {
            (0..64u64)
                .filter(|&seed| {
                    let out = aug.apply(scene(), &mut crate::loader::sample_rng(seed, 0, 0));
                    out.boxes[0].xmin > 0.5
                })
                .count()
        };
        assert_eq!(mirrored(&SsdAugment { flip: false, ..only_flip.clone() }), 0, "flip off: never mirrored");
        let on = mirrored(&only_flip);
        assert!((16..=48).contains(&on), "flip on: about half mirrored, got {on}/64");
    }
}

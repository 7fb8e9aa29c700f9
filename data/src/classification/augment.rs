//! Classification transforms: [`ClsTransform`] turns an image into a `uint8` `3×S×S` tensor, with the
//! training augmentation of its [`Augment`] kind or the evaluation transform; normalisation happens on the
//! device ([`crate::transforms::network_input`]). Every step produces 8-bit pixels (the CIFAR rotation
//! rounds its bilinear samples), so nothing is lost by leaving the host as `uint8`.
//!
//! * Inception: torchvision's `RandomResizedCrop` (scale 0.08–1, ratio 3/4–4/3, 10 attempts then a centre
//!   crop with the ratio clamped), bilinear resize to S, horizontal flip with p = 0.5;
//! * CIFAR: horizontal flip with p = 0.5, rotation uniform in [−rotation, rotation] degrees (bilinear about
//!   the centre, zero fill), optional 4-pixel zero pad then random crop back, resize to S if needed;
//! * the horizontal flip of both can be switched off ([`ClsTransform::with_flip`]) for classes whose
//!   direction matters;
//! * evaluation (`None`, and every validation split): shorter side to round(S·resize_ratio), centre crop S.
//!
//! All randomness comes from the [`Rng`] passed in, so a sample's augmentation is reproducible.

use super::Augment;
use crate::image_io::{resize, resized_crop, RgbImage};
use crate::loader::Rng;
use crate::transforms::{center_crop, resize_shorter, to_chw, ChwImage};
use anyhow::{bail, Result};
use rand::Rng as _;

/// `RandomResizedCrop`'s area range (fraction of the image).
pub const INCEPTION_SCALE: (f64, f64) = (0.08, 1.0);
/// `RandomResizedCrop`'s aspect-ratio range (width / height).
pub const INCEPTION_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);
/// Padding of the CIFAR pad-crop.
pub const CIFAR_PAD: u32 = 4;

/// How images become network inputs, for training and for evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ClsTransform {
    pub kind: Augment,
    /// Side S of the square output.
    pub input_size: u32,
    /// Evaluation: the shorter side is resized to round(S·resize_ratio) before the centre crop.
    pub resize_ratio: f64,
    /// CIFAR: rotation range in degrees.
    pub rotation: f64,
    /// CIFAR: pad 4 pixels and crop back at random.
    pub pad_crop: bool,
    /// Inception: area range of the random resized crop (default (0.08, 1)).
    pub crop_scale: (f64, f64),
    /// Inception and CIFAR: mirror left ↔ right with p = 0.5 (default true). Switched off for classes that a
    /// mirror image changes or makes impossible: arrows and signs pointing left or right, text and digits,
    /// left/right body parts.
    pub flip: bool,
}

impl ClsTransform {
    pub fn new(kind: Augment, input_size: u32, resize_ratio: f64, rotation: f64, pad_crop: bool) -> Result<Self> {
        if input_size == 0 {
            bail!("input size must be positive");
        }
        if !(resize_ratio.is_finite() && resize_ratio > 0.0) {
            bail!("resize_ratio must be a positive number, got {resize_ratio}");
        }
        if !(rotation.is_finite() && (0.0..=180.0).contains(&rotation)) {
            bail!("rotation must be in [0, 180] degrees, got {rotation}");
        }
        Ok(ClsTransform { kind, input_size, resize_ratio, rotation, pad_crop, crop_scale: INCEPTION_SCALE, flip: true })
    }

    /// The same transform with the horizontal flip on (`true`, the default) or off: with it off no training
    /// image is ever mirrored, for classes whose direction matters (arrows, text).
    pub fn with_flip(mut self, flip: bool) -> Self {
        self.flip = flip;
        self
    }

    /// The same transform with the random resized crop's smallest area fraction set to `min`.
    pub fn with_min_crop_scale(mut self, min: f64) -> Result<Self> {
        if !(min.is_finite() && min > 0.0 && min <= 1.0) {
            bail!("crop_scale_min must be in (0, 1], got {min}");
        }
        self.crop_scale = (min, 1.0);
        Ok(self)
    }

    /// The side the shorter image side is resized to before the evaluation centre crop.
    pub fn eval_resize(&self) -> u32 {
        ((self.input_size as f64 * self.resize_ratio).round() as u32).max(1)
    }

    /// The evaluation transform (deterministic): [`crate::transforms::eval_preprocess`] at
    /// round(S·resize_ratio) → S.
    pub fn eval(&self, img: &RgbImage) -> ChwImage {
        crate::transforms::eval_preprocess(img, self.eval_resize(), self.input_size)
    }

    /// The training augmentation as an image (`S×S`), before normalisation; `None` gives the eval crop.
    pub fn augment_image(&self, img: &RgbImage, rng: &mut Rng) -> RgbImage {
        let s = self.input_size;
        match self.kind {
            Augment::Inception => {
                let out = random_resized_crop(img, s, self.crop_scale, rng);
                if self.mirror(rng) {
                    hflip(&out)
                } else {
                    out
                }
            }
            Augment::Cifar => {
                let mut out = if self.mirror(rng) { hflip(img) } else { img.clone() };
                if self.rotation > 0.0 {
                    out = rotate(&out, rng.gen_range(-self.rotation..=self.rotation));
                }
                if self.pad_crop {
                    let span = 2 * CIFAR_PAD as i64;
                    let (dx, dy) =
                        (rng.gen_range(0..=span) - CIFAR_PAD as i64, rng.gen_range(0..=span) - CIFAR_PAD as i64);
                    out = shift(&out, dx, dy);
                }
                resize(&out, s, s)
            }
            Augment::None => center_crop(&resize_shorter(img, self.eval_resize()), s),
        }
    }

    /// Whether to mirror this sample: a fair coin when `flip` is on, never when it is off. The coin is drawn
    /// either way, so a seed gives the same crop, rotation and shift with the flip on or off.
    fn mirror(&self, rng: &mut Rng) -> bool {
        let heads = rng.gen_bool(0.5);
        heads && self.flip
    }

    /// The training augmentation: a `3×S×S` [`ChwImage`].
    pub fn train(&self, img: &RgbImage, rng: &mut Rng) -> ChwImage {
        match self.kind {
            Augment::None => self.eval(img),
            _ => to_chw(&self.augment_image(img, rng)),
        }
    }

    /// `train` when `training`, otherwise `eval`.
    pub fn apply(&self, img: &RgbImage, training: bool, rng: &mut Rng) -> ChwImage {
        if training {
            self.train(img, rng)
        } else {
            self.eval(img)
        }
    }
}

/// torchvision's `RandomResizedCrop.get_params`: `(x, y, width, height)` of the crop, always inside the
/// `width`×`height` image.
pub fn random_resized_crop_params(
    width: u32,
    height: u32,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut Rng,
) -> (u32, u32, u32, u32) {
    let area = width as f64 * height as f64;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.gen_range(scale.0..=scale.1);
        let aspect = rng.gen_range(log_lo..=log_hi).exp();
        let w = (target_area * aspect).sqrt().round_ties_even();
        let h = (target_area / aspect).sqrt().round_ties_even();
        if w > 0.0 && w <= width as f64 && h > 0.0 && h <= height as f64 {
            let (w, h) = (w as u32, h as u32);
            let y = rng.gen_range(0..=height - h);
            let x = rng.gen_range(0..=width - w);
            return (x, y, w, h);
        }
    }
    // Fallback: a centre crop with the ratio clamped to the range.
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < ratio.0 {
        (width, ((width as f64 / ratio.0).round_ties_even() as u32).clamp(1, height))
    } else if in_ratio > ratio.1 {
        (((height as f64 * ratio.1).round_ties_even() as u32).clamp(1, width), height)
    } else {
        (width, height)
    };
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// Inception crop: a random area and aspect ratio ([`random_resized_crop_params`]) resized to `size`².
pub fn random_resized_crop(img: &RgbImage, size: u32, scale: (f64, f64), rng: &mut Rng) -> RgbImage {
    let (x, y, w, h) = random_resized_crop_params(img.width, img.height, scale, INCEPTION_RATIO, rng);
    resized_crop(img, (x, y, w, h), size, size)
}

/// Mirror image (left ↔ right).
pub fn hflip(img: &RgbImage) -> RgbImage {
    let w = img.width as usize;
    let mut data = Vec::with_capacity(img.data.len());
    for row in img.data.chunks_exact(w * 3) {
        for px in row.chunks_exact(3).rev() {
            data.extend_from_slice(px);
        }
    }
    RgbImage { width: img.width, height: img.height, data }
}

/// Rotation by `degrees` (counter-clockwise as displayed) about the image centre, bilinear sampling,
/// black outside the source.
pub fn rotate(img: &RgbImage, degrees: f64) -> RgbImage {
    let (w, h) = (img.width as i64, img.height as i64);
    let (cx, cy) = ((w - 1) as f64 / 2.0, (h - 1) as f64 / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let at = |x: i64, y: i64, c: usize| -> f64 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0.0
        } else {
            img.data[((y * w + x) * 3) as usize + c] as f64
        }
    };
    let mut data = Vec::with_capacity(img.data.len());
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let (sx, sy) = (cx + dx * cos - dy * sin, cy + dx * sin + dy * cos);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for c in 0..3 {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
                let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
                data.push((top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    RgbImage { width: img.width, height: img.height, data }
}

/// The image moved by (`dx`, `dy`) pixels, black where nothing comes in: a zero pad of `p` then a crop at
/// offset (`p − dx`, `p − dy`).
pub fn shift(img: &RgbImage, dx: i64, dy: i64) -> RgbImage {
    let (w, h) = (img.width as i64, img.height as i64);
    let mut out = RgbImage::filled(img.width, img.height, [0, 0, 0]);
    for y in 0..h {
        let sy = y - dy;
        if !(0..h).contains(&sy) {
            continue;
        }
        for x in 0..w {
            let sx = x - dx;
            if (0..w).contains(&sx) {
                let (o, i) = (((y * w + x) * 3) as usize, ((sy * w + sx) * 3) as usize);
                out.data[o..o + 3].copy_from_slice(&img.data[i..i + 3]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn pattern(w: u32, h: u32) -> RgbImage {
        let data = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8]))
            .collect();
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    fn every_kind_gives_a_uint8_tensor_of_the_input_size() {
        let img = pattern(120, 90);
        for (kind, s) in [(Augment::Inception, 64), (Augment::Cifar, 32), (Augment::Cifar, 48), (Augment::None, 56)] {
            let t = ClsTransform::new(kind, s, 256.0 / 224.0, 15.0, true).unwrap();
            let mut rng = Rng::seed_from_u64(1);
            for out in [t.train(&pattern(32, 32), &mut rng), t.train(&img, &mut rng), t.eval(&img)] {
                assert_eq!(out.shape(), [3, s as i64, s as i64], "{kind:?}");
            }
        }
        assert!(ClsTransform::new(Augment::None, 0, 1.0, 0.0, false).is_err());
        assert!(ClsTransform::new(Augment::Cifar, 32, 1.0, f64::NAN, false).is_err());
    }

    #[test]
    fn evaluation_matches_the_shared_eval_preprocess() {
        let img = pattern(120, 90);
        let t = ClsTransform::new(Augment::Inception, 64, 1.2, 0.0, false).unwrap();
        let reference = crate::transforms::eval_preprocess(&img, 77, 64);
        assert_eq!(t.eval(&img), reference);
    }

    #[test]
    fn augmentation_is_determined_by_the_rng() {
        let img = pattern(100, 80);
        for kind in [Augment::Inception, Augment::Cifar] {
            let t = ClsTransform::new(kind, 40, 1.0, 15.0, true).unwrap();
            let run = |seed| t.train(&img, &mut Rng::seed_from_u64(seed));
            assert_eq!(run(7), run(7), "{kind:?}: same seed, same output");
            assert_ne!(run(7), run(8), "{kind:?}: another seed, another output");
        }
        let eval = ClsTransform::new(Augment::None, 40, 1.0, 0.0, false).unwrap();
        assert_eq!(eval.train(&img, &mut Rng::seed_from_u64(1)), eval.train(&img, &mut Rng::seed_from_u64(2)));
    }

    #[test]
    fn with_the_flip_off_no_image_is_mirrored() {
        // Asymmetric left to right; CIFAR at the image's own size without rotation or pad-crop: the flip is
        // the only random change.
        let img = pattern(32, 32);
        let mirrored = hflip(&img);
        assert_ne!(mirrored, img);
        let on = ClsTransform::new(Augment::Cifar, 32, 1.0, 0.0, false).unwrap();
        assert!(on.flip, "the flip is on by default");
        let off = on.clone().with_flip(false);
        let mut flips = 0;
        for seed in 0..100 {
            assert_eq!(off.augment_image(&img, &mut Rng::seed_from_u64(seed)), img, "seed {seed}");
            assert!(off.train(&img, &mut Rng::seed_from_u64(seed)) == to_chw(&img), "seed {seed}");
            let out = on.augment_image(&img, &mut Rng::seed_from_u64(seed));
            assert!(out == img || out == mirrored, "seed {seed}");
            flips += (out == mirrored) as usize;
        }
        assert!((25..=75).contains(&flips), "about half are mirrored with the flip on: {flips} of 100");
        // Inception: the same seed gives the same crop either way, mirrored or not.
        let on = ClsTransform::new(Augment::Inception, 24, 1.0, 0.0, false).unwrap();
        let off = on.clone().with_flip(false);
        let wide = pattern(60, 40);
        let differ = (0..40).filter(|&seed| {
            let a = on.augment_image(&wide, &mut Rng::seed_from_u64(seed));
            let b = off.augment_image(&wide, &mut Rng::seed_from_u64(seed));
            assert!(a == b || hflip(&a) == b, "seed {seed}");
            a != b
        });
        assert!(differ.count() > 0);
    }

    #[test]
    fn random_resized_crop_stays_inside_the_image() {
        let mut rng = Rng::seed_from_u64(3);
        for (w, h) in [(224, 224), (500, 375), (1000, 10), (10, 1000), (1, 1), (3, 2), (33, 700)] {
            let mut whole = 0;
            for _ in 0..300 {
                let (x, y, cw, ch) = random_resized_crop_params(w, h, INCEPTION_SCALE, INCEPTION_RATIO, &mut rng);
                assert!(cw >= 1 && ch >= 1 && x + cw <= w && y + ch <= h, "{w}x{h}: crop {x},{y} {cw}x{ch}");
                whole += (cw == w && ch == h) as usize;
            }
            if w == 500 {
                assert!(whole < 30, "crops vary in area ({whole} whole-image crops)");
            }
        }
        // Extreme aspect ratios fall back to a centre crop with the ratio clamped to 4/3.
        assert_eq!(random_resized_crop_params(1000, 10, INCEPTION_SCALE, INCEPTION_RATIO, &mut rng), (493, 0, 13, 10));
    }

    #[test]
    fn flips_rotations_and_shifts_move_pixels_where_expected() {
        let img = pattern(9, 7);
        assert_eq!(hflip(&img).pixel(0, 3), img.pixel(8, 3));
        assert_eq!(hflip(&hflip(&img)), img);
        assert_eq!(rotate(&img, 0.0), img);
        // 180° about the centre of an odd-sized image maps (x, y) to (w−1−x, h−1−y) exactly.
        assert_eq!(rotate(&img, 180.0).pixel(1, 2), img.pixel(7, 4));
        // 90° counter-clockwise: the pixel right of the centre comes from below it; corners fall outside.
        let sq = pattern(9, 9);
        assert_eq!(rotate(&sq, 90.0).pixel(6, 4), sq.pixel(4, 6));
        assert_eq!(rotate(&sq, 45.0).pixel(0, 0), [0, 0, 0]);
        let moved = shift(&img, 2, -1);
        assert_eq!(moved.pixel(2, 0), img.pixel(0, 1));
        assert_eq!(moved.pixel(0, 0), [0, 0, 0]);
        assert_eq!(moved.pixel(5, 6), [0, 0, 0]);
        assert_eq!(shift(&img, 0, 0), img);
    }
}

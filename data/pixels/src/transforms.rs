//! Deterministic image transforms on the host, without libtorch: the evaluation preprocessing of the
//! authors' release (resize the shorter side to 256 bilinear, centre-crop 224, scale to [0, 1], normalise
//! with the ImageNet mean and std), with torchvision's rounding rules.
//!
//! Images leave the loader workers as planar `uint8` [`ChwImage`]s, built in plain Rust (a worker that
//! made tensors would run libtorch's intra-op threads from every worker thread). `skipblock_data::transforms`
//! re-exports this module and adds the tensor side (batches normalised on the device); [`normalize_chw`]
//! is the same arithmetic on the host, in f32: `(x / 255 − mean[c]) / std[c]` (the input `skipblock-edge`
//! feeds an exported network).

use crate::image_io::{crop, resize, RgbImage};

pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Resizes so that the shorter side is `size` (torchvision: the longer side is `int(size·long/short)`).
pub fn resize_shorter(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = (img.width as u64, img.height as u64);
    let (nw, nh) =
        if w <= h { (size as u64, (size as u64 * h / w).max(1)) } else { ((size as u64 * w / h).max(1), size as u64) };
    resize(img, nw as u32, nh as u32)
}

/// Centre crop of `size`×`size` (torchvision's offsets: `round((h − size) / 2)`, ties to even).
/// An image smaller than `size` is first enlarged so the crop fits.
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    let img = if img.width < size || img.height < size { resize_shorter(img, size) } else { img.clone() };
    let top = ((img.height - size) as f64 / 2.0).round_ties_even() as u32;
    let left = ((img.width - size) as f64 / 2.0).round_ties_even() as u32;
    crop(&img, left, top, size, size)
}

/// An 8-bit image with its channels as planes (`3×H×W`, R then G then B): a network input before
/// normalisation.
#[derive(Clone, PartialEq, Eq)]
pub struct ChwImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for ChwImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChwImage(3x{}x{})", self.height, self.width)
    }
}

impl ChwImage {
    /// `[3, H, W]`.
    pub fn shape(&self) -> [i64; 3] {
        [3, self.height as i64, self.width as i64]
    }
}

/// The image with its channels as planes.
pub fn to_chw(img: &RgbImage) -> ChwImage {
    let plane = img.width as usize * img.height as usize;
    let mut out = vec![0u8; plane * 3];
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        r[i] = px[0];
        g[i] = px[1];
        b[i] = px[2];
    }
    ChwImage { width: img.width, height: img.height, data: out }
}

/// The planes scaled to [0, 1] and normalised per channel, `3×H×W` f32 values: `(x / 255 − mean[c]) /
/// std[c]` in f32, the arithmetic of the libtorch predictors' device normalisation.
pub fn normalize_chw(img: &ChwImage, mean: [f64; 3], std: [f64; 3]) -> Vec<f32> {
    let plane = img.width as usize * img.height as usize;
    let mut out = vec![0f32; plane * 3];
    for c in 0..3 {
        let (m, s) = (mean[c] as f32, std[c] as f32);
        for (o, &px) in out[c * plane..(c + 1) * plane].iter_mut().zip(&img.data[c * plane..(c + 1) * plane]) {
            *o = (px as f32 / 255.0 - m) / s;
        }
    }
    out
}

/// The release's evaluation preprocessing: shorter side → `resize`, centre crop `crop`, as a
/// `3×crop×crop` [`ChwImage`] (normalised afterwards: on the device by the libtorch predictors, with
/// [`normalize_chw`] on the host by `skipblock-edge`).
pub fn eval_preprocess(img: &RgbImage, resize: u32, crop: u32) -> ChwImage {
    to_chw(&center_crop(&resize_shorter(img, resize), crop))
}

/// The detectors' preprocessing: resized (both sides, the aspect ratio not kept) to `size`×`size`.
pub fn detect_preprocess(img: &RgbImage, size: u32) -> ChwImage {
    to_chw(&resize(img, size, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_preprocess_shapes_and_values() {
        let img = RgbImage::filled(500, 375, [124, 116, 104]);
        let r = resize_shorter(&img, 256);
        assert_eq!((r.width, r.height), (341, 256));
        let c = center_crop(&r, 224);
        assert_eq!((c.width, c.height), (224, 224));
        let t = eval_preprocess(&img, 256, 224);
        assert_eq!(t.shape(), [3, 224, 224]);
        let x = normalize_chw(&t, IMAGENET_MEAN, IMAGENET_STD);
        assert_eq!(x.len(), 3 * 224 * 224);
        // (124/255 − 0.485) / 0.229 ≈ 0.0016: the mean colour maps near zero.
        let v = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(v < 0.02, "{v}");
        let tall = RgbImage::filled(100, 300, [0, 0, 0]);
        let r = resize_shorter(&tall, 256);
        assert_eq!((r.width, r.height), (256, 768));
        // Smaller than the crop: enlarged first.
        assert_eq!(center_crop(&RgbImage::filled(10, 20, [1, 2, 3]), 16).width, 16);
        let d = detect_preprocess(&img, 96);
        assert_eq!(d.shape(), [3, 96, 96]);
    }

    #[test]
    fn center_crop_offsets_follow_torchvision() {
        // 7 − 4 = 3 → offset round(1.5) = 2 (ties to even).
        let mut data = Vec::new();
        for y in 0..7u8 {
            for x in 0..7u8 {
                data.extend_from_slice(&[x, y, 0]);
            }
        }
        let img = RgbImage::new(7, 7, data).unwrap();
        let c = center_crop(&img, 4);
        assert_eq!(c.pixel(0, 0), [2, 2, 0]);
    }

    #[test]
    fn planes_and_normalisation_follow_the_pixels() {
        let (w, h) = (37u32, 23u32);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 97 % 256) as u8).collect();
        let img = RgbImage::new(w, h, data).unwrap();
        let chw = to_chw(&img);
        assert_eq!(chw.shape(), [3, h as i64, w as i64]);
        let plane = (w * h) as usize;
        let (x, y, c) = (7usize, 5usize, 2usize);
        assert_eq!(chw.data[c * plane + y * w as usize + x], img.pixel(x as u32, y as u32)[c]);
        let norm = normalize_chw(&chw, IMAGENET_MEAN, IMAGENET_STD);
        let want = (img.pixel(x as u32, y as u32)[c] as f64 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        assert!((norm[c * plane + y * w as usize + x] as f64 - want).abs() < 1e-5);
    }
}

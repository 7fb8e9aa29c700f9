//! Deterministic image transforms: the evaluation preprocessing of the authors' release (resize the
//! shorter side to 256 bilinear, centre-crop 224, scale to [0, 1], normalise with the ImageNet mean and
//! std), with torchvision's rounding rules.

use crate::image_io::{crop, resize, RgbImage};
use tch::Tensor;

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

/// `3×H×W` float tensor scaled to [0, 1] and normalised per channel. Computed in plain Rust: tensor
/// ops here would start libtorch's intra-op threads inside every loader worker (several times slower).
pub fn normalize(img: &RgbImage, mean: [f64; 3], std: [f64; 3]) -> Tensor {
    let plane = img.width as usize * img.height as usize;
    let mut out = vec![0f32; plane * 3];
    for c in 0..3 {
        let (m, s) = (mean[c] as f32, std[c] as f32);
        for (o, px) in out[c * plane..(c + 1) * plane].iter_mut().zip(img.data.chunks_exact(3)) {
            *o = (px[c] as f32 / 255.0 - m) / s;
        }
    }
    Tensor::from_slice(&out).view([3, img.height as i64, img.width as i64])
}

/// The release's evaluation preprocessing: shorter side → `resize`, centre crop `crop`, ImageNet norm.
pub fn eval_preprocess(img: &RgbImage, resize: u32, crop: u32) -> Tensor {
    normalize(&center_crop(&resize_shorter(img, resize), crop), IMAGENET_MEAN, IMAGENET_STD)
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
        assert_eq!(t.size(), vec![3, 224, 224]);
        // (124/255 − 0.485) / 0.229 ≈ 0.0016: the mean colour maps near zero.
        let v = f64::try_from(t.abs().max()).unwrap();
        assert!(v < 0.02, "{v}");
        let tall = RgbImage::filled(100, 300, [0, 0, 0]);
        let r = resize_shorter(&tall, 256);
        assert_eq!((r.width, r.height), (256, 768));
        // Smaller than the crop: enlarged first.
        assert_eq!(center_crop(&RgbImage::filled(10, 20, [1, 2, 3]), 16).width, 16);
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
}

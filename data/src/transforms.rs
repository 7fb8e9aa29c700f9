//! Deterministic image transforms: the evaluation preprocessing of the authors' release (resize the
//! shorter side to 256 bilinear, centre-crop 224, scale to [0, 1], normalise with the ImageNet mean and
//! std), with torchvision's rounding rules.
//!
//! Images leave the host as `uint8` `3×H×W` tensors ([`to_chw`]); [`network_input`] stacks them and
//! scales and normalises them on the device (one place for both pipelines:
//! [`skipblock_core::batch::normalise_on_device`] with the ImageNet statistics). [`normalize`] is the host
//! float path the loaders used before, kept as the reference the device path is tested against.

use crate::image_io::{crop, resize, RgbImage};
use anyhow::Result;
use tch::{Device, Tensor};

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

/// The image as a `uint8` `3×H×W` tensor (channels first). The transpose is plain Rust: tensor ops here
/// would start libtorch's intra-op threads inside every loader worker (several times slower).
pub fn to_chw(img: &RgbImage) -> Tensor {
    let plane = img.width as usize * img.height as usize;
    let mut out = vec![0u8; plane * 3];
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        r[i] = px[0];
        g[i] = px[1];
        b[i] = px[2];
    }
    Tensor::from_slice(&out).view([3, img.height as i64, img.width as i64])
}

/// `uint8` images `3×H×W` (one size) → the network's input batch on `device`: stacked, copied (pinned
/// and non-blocking on CUDA), scaled to [0, 1] and normalised with the ImageNet statistics there.
pub fn network_input(images: &[Tensor], device: Device) -> Result<Tensor> {
    let batch = skipblock_core::batch::stack(images)?;
    skipblock_core::batch::normalise_on_device(&batch, IMAGENET_MEAN, IMAGENET_STD, device)
}

/// `3×H×W` float tensor scaled to [0, 1] and normalised per channel, on the host (the reference of
/// [`network_input`]). Computed in plain Rust, as [`to_chw`].
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

/// The release's evaluation preprocessing on the host: shorter side → `resize`, centre crop `crop`, as a
/// `uint8` `3×crop×crop` tensor; [`network_input`] normalises it (ImageNet statistics) on the device.
pub fn eval_preprocess(img: &RgbImage, resize: u32, crop: u32) -> Tensor {
    to_chw(&center_crop(&resize_shorter(img, resize), crop))
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
        assert_eq!(t.kind(), tch::Kind::Uint8);
        let t = network_input(&[t], Device::Cpu).unwrap();
        assert_eq!(t.size(), vec![1, 3, 224, 224]);
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

    #[test]
    fn the_device_path_gives_the_host_float_path_s_numbers() {
        let (w, h) = (37u32, 23u32);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 97 % 256) as u8).collect();
        let img = RgbImage::new(w, h, data).unwrap();
        let chw = to_chw(&img);
        assert_eq!(chw.size(), vec![3, h as i64, w as i64]);
        assert_eq!(chw.int64_value(&[2, 5, 7]), img.pixel(7, 5)[2] as i64);
        assert!(chw.equal(&crate::image_io::to_tensor(&img)));
        let device = network_input(&[chw.shallow_clone(), chw], Device::Cpu).unwrap();
        let host = normalize(&img, IMAGENET_MEAN, IMAGENET_STD);
        for i in 0..2 {
            let diff = f64::try_from((device.get(i) - &host).abs().max()).unwrap();
            assert!(diff <= 1e-5, "{diff}");
        }
    }
}

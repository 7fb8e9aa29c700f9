//! Deterministic image transforms: the evaluation preprocessing of the authors' release (resize the
//! shorter side to 256 bilinear, centre-crop 224, scale to [0, 1], normalise with the ImageNet mean and
//! std), with torchvision's rounding rules.
//!
//! Images leave the loader workers as planar `uint8` [`ChwImage`]s, built in plain Rust: a worker that
//! made tensors would run libtorch's intra-op (OpenMP) threads from every worker thread, each worker
//! with its own team of them (the old loader's poor scaling with cores). [`network_input`] copies a batch
//! of them into one tensor and scales and normalises it on the device (one place for both pipelines:
//! [`skipblock_core::batch::normalise_on_device`] with the ImageNet statistics). [`normalize`] is the host
//! float path the loaders used before, kept as the reference the device path is tested against.

use crate::image_io::{crop, resize, RgbImage};
use anyhow::{bail, Result};
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

/// An 8-bit image with its channels as planes (`3×H×W`, R then G then B): a network input before
/// normalisation, without libtorch.
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
    /// A `uint8` `3×H×W` tensor of the image.
    pub fn to_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.data).view(self.shape())
    }
}

/// The image with its channels as planes: plain Rust, no libtorch (see the module docs).
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

/// Images of one size → one `uint8` `B×3×H×W` tensor on the host (a single allocation, each image copied
/// once).
pub fn batch_tensor<'a>(images: impl IntoIterator<Item = &'a ChwImage>) -> Result<Tensor> {
    let images: Vec<&ChwImage> = images.into_iter().collect();
    let Some(first) = images.first() else { bail!("an empty batch of images") };
    if let Some(other) = images.iter().find(|i| i.shape() != first.shape()) {
        bail!("images of one batch differ in size: {:?} and {:?}", first.shape(), other.shape());
    }
    let mut data = Vec::with_capacity(first.data.len() * images.len());
    for img in &images {
        data.extend_from_slice(&img.data);
    }
    let [c, h, w] = first.shape();
    Ok(Tensor::from_slice(&data).view([images.len() as i64, c, h, w]))
}

/// Images of one size → the network's input batch on `device`: one `uint8` tensor copied there (pinned
/// and non-blocking on CUDA), scaled to [0, 1] and normalised with the ImageNet statistics there.
pub fn network_input<'a>(images: impl IntoIterator<Item = &'a ChwImage>, device: Device) -> Result<Tensor> {
    skipblock_core::batch::normalise_on_device(&batch_tensor(images)?, IMAGENET_MEAN, IMAGENET_STD, device)
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
/// `3×crop×crop` [`ChwImage`]; [`network_input`] normalises it (ImageNet statistics) on the device.
pub fn eval_preprocess(img: &RgbImage, resize: u32, crop: u32) -> ChwImage {
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
        assert_eq!(t.shape(), [3, 224, 224]);
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
        assert_eq!(chw.shape(), [3, h as i64, w as i64]);
        assert_eq!(chw.to_tensor().int64_value(&[2, 5, 7]), img.pixel(7, 5)[2] as i64);
        assert!(chw.to_tensor().equal(&crate::image_io::to_tensor(&img)));
        let small = to_chw(&RgbImage::filled(4, 4, [1, 2, 3]));
        assert!(batch_tensor(&[chw.clone(), small]).unwrap_err().to_string().contains("differ"));
        assert!(batch_tensor(std::iter::empty()).is_err());
        let device = network_input(&[chw.clone(), chw], Device::Cpu).unwrap();
        assert_eq!(device.size(), vec![2, 3, h as i64, w as i64]);
        let host = normalize(&img, IMAGENET_MEAN, IMAGENET_STD);
        for i in 0..2 {
            let diff = f64::try_from((device.get(i) - &host).abs().max()).unwrap();
            assert!(diff <= 1e-5, "{diff}");
        }
    }
}

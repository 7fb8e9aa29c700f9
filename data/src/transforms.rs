//! Deterministic image transforms: [`skipblock_pixels::transforms`] (re-exported here whole: the
//! release's evaluation preprocessing, [`ChwImage`], [`to_chw`], the host normalisation [`normalize_chw`])
//! with the tensor side added.
//!
//! Images leave the loader workers as planar `uint8` [`ChwImage`]s, built in plain Rust (see
//! [`skipblock_pixels::transforms`]). [`network_input`] copies a batch of them into one tensor and scales
//! and normalises it on the device (one place for both pipelines:
//! [`skipblock_core::batch::normalise_on_device`] with the ImageNet statistics). [`normalize`] is the host
//! float path ([`normalize_chw`]) as a tensor, kept as the reference the device path is tested against.

pub use skipblock_pixels::transforms::*;

use crate::image_io::RgbImage;
use anyhow::{bail, Result};
use tch::{Device, Tensor};

/// A `uint8` `3×H×W` tensor of a planar image.
pub fn chw_tensor(img: &ChwImage) -> Tensor {
    Tensor::from_slice(&img.data).view(img.shape())
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
    Tensor::from_slice(&normalize_chw(&to_chw(img), mean, std)).view([3, img.height as i64, img.width as i64])
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
    fn the_device_path_gives_the_host_float_path_s_numbers() {
        let (w, h) = (37u32, 23u32);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 97 % 256) as u8).collect();
        let img = RgbImage::new(w, h, data).unwrap();
        let chw = to_chw(&img);
        assert_eq!(chw.shape(), [3, h as i64, w as i64]);
        assert_eq!(chw_tensor(&chw).int64_value(&[2, 5, 7]), img.pixel(7, 5)[2] as i64);
        assert!(chw_tensor(&chw).equal(&crate::image_io::to_tensor(&img)));
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

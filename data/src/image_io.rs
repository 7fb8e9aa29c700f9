//! The one place images are decoded, encoded and resized: [`skipblock_pixels::image_io`] (re-exported
//! here whole: [`RgbImage`], encoding, [`resize`], [`crop`], [`image_size`], the `zune-jpeg` fast path)
//! with this build's decoder and the tensor conversions added.
//!
//! Decoding goes through OpenCV (`opencv` feature, the default) or the `image` crate (the headless build,
//! and `skipblock-edge`); resizing always uses the same antialiased bilinear filter, so every build
//! preprocesses identically. The loaders decode JPEGs with `zune-jpeg` in every build ([`read_image_fast`]).
//! Every failure is an error naming the file; nothing here panics on bad input. EXIF orientation is
//! applied by both decoders (see [`skipblock_pixels::image_io`] for the frame VOC boxes are read in).

pub use skipblock_pixels::image_io::*;

use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{Kind, Tensor};

/// Which decoder this build uses: `"opencv"` or `"image"`.
pub fn backend() -> &'static str {
    if cfg!(feature = "opencv") {
        "opencv"
    } else {
        "image"
    }
}

/// The OpenCV version this build links, if any.
pub fn opencv_version() -> Option<String> {
    #[cfg(feature = "opencv")]
    {
        opencv::core::get_version_string().ok()
    }
    #[cfg(not(feature = "opencv"))]
    {
        None
    }
}

/// Reads an image file (JPEG, PNG, BMP, …) into RGB with this build's decoder.
pub fn read_image(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read image '{}'", path.display()))?;
    decode_image(&bytes).with_context(|| format!("cannot decode image '{}'", path.display()))
}

/// Decodes encoded image bytes into RGB with this build's decoder (OpenCV or the `image` crate).
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        bail!("empty file");
    }
    decode_backend(bytes)
}

#[cfg(feature = "opencv")]
fn decode_backend(bytes: &[u8]) -> Result<RgbImage> {
    use anyhow::anyhow;
    use opencv::{core, imgcodecs, imgproc, prelude::*};
    let buf = core::Vector::<u8>::from_slice(bytes);
    // IMREAD_COLOR applies the EXIF orientation (IMREAD_IGNORE_ORIENTATION is not set), as the other build.
    let bgr = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR).map_err(|e| anyhow!("{e}"))?;
    if bgr.empty() || bgr.rows() <= 0 || bgr.cols() <= 0 {
        bail!("not a readable image (corrupt or unsupported format)");
    }
    let mut rgb = Mat::default();
    imgproc::cvt_color_def(&bgr, &mut rgb, imgproc::COLOR_BGR2RGB).map_err(|e| anyhow!("{e}"))?;
    let rgb = if rgb.is_continuous() { rgb } else { rgb.try_clone().map_err(|e| anyhow!("{e}"))? };
    let data = rgb.data_bytes().map_err(|e| anyhow!("{e}"))?.to_vec();
    RgbImage::new(rgb.cols() as u32, rgb.rows() as u32, data)
}

#[cfg(not(feature = "opencv"))]
fn decode_backend(bytes: &[u8]) -> Result<RgbImage> {
    skipblock_pixels::image_io::decode_image(bytes)
}

/// Reads an image file for the training and evaluation loaders: JPEGs through [`decode_jpeg_fast`], other
/// formats through [`read_image`]. Errors name the file.
pub fn read_image_fast(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read image '{}'", path.display()))?;
    decode_image_fast(&bytes).with_context(|| format!("cannot decode image '{}'", path.display()))
}

/// [`decode_image`] with JPEGs decoded by [`decode_jpeg_fast`].
pub fn decode_image_fast(bytes: &[u8]) -> Result<RgbImage> {
    match decode_jpeg_fast(bytes)? {
        Some(img) => Ok(img),
        None => decode_image(bytes),
    }
}

/// A `3×H×W` `u8` tensor of the image.
pub fn to_tensor(img: &RgbImage) -> Tensor {
    Tensor::from_slice(&img.data).view([img.height as i64, img.width as i64, 3]).permute([2, 0, 1]).contiguous()
}

/// The inverse of [`to_tensor`]: a `3×H×W` tensor (`u8`, or float in 0–255) to an image.
pub fn from_tensor(t: &Tensor) -> Result<RgbImage> {
    let size = t.size();
    if size.len() != 3 || size[0] != 3 {
        bail!("expected a 3xHxW tensor, got {size:?}");
    }
    let hwc = t.to_device(tch::Device::Cpu).permute([1, 2, 0]).contiguous();
    let hwc = if hwc.kind() == Kind::Uint8 { hwc } else { hwc.clamp(0.0, 255.0).round().to_kind(Kind::Uint8) };
    let mut data = vec![0u8; hwc.numel()];
    hwc.f_copy_data(&mut data, hwc.numel())?;
    RgbImage::new(size[2] as u32, size[1] as u32, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skipblock_pixels::image_io::checks::{self, gradient};

    /// The same checks in both builds (OpenCV's `imdecode` in the default one, the `image` crate in the
    /// headless one), with the same expected values.
    #[test]
    fn this_builds_decoder_passes_the_decoder_checks() {
        checks::all(&checks::Decoder { name: backend(), read: read_image, decode: decode_image });
    }

    #[test]
    fn tensor_conversions() {
        let img = gradient(64, 32);
        let t = to_tensor(&img);
        assert_eq!(t.size(), vec![3, 32, 64]);
        assert_eq!(t.int64_value(&[0, 2, 10]), img.pixel(10, 2)[0] as i64);
        assert_eq!(from_tensor(&t).unwrap(), img);
        assert_eq!(from_tensor(&t.to_kind(Kind::Float)).unwrap(), img);
        assert!(from_tensor(&Tensor::zeros([2, 2], (Kind::Uint8, tch::Device::Cpu))).is_err());
    }

    #[test]
    fn the_fast_jpeg_decoder_reads_what_the_default_decoder_reads() {
        let d = checks::Decoder { name: backend(), read: read_image, decode: decode_image };
        checks::fast_jpeg_decoder_reads_what_the_decoder_reads(&d, read_image_fast);
    }
}

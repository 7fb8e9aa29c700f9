//! The one place images are decoded (without OpenCV), encoded and resized.
//!
//! Pixels are RGB, 8 bits, row-major HWC. [`read_image`] / [`decode_image`] here are the `image` crate's
//! decoder: the headless build's and `skipblock-edge`'s; `skipblock_data::image_io` re-exports this module
//! and replaces those two with its build's decoder (OpenCV's `imdecode` with the `opencv` feature).
//! Resizing always uses the same antialiased bilinear filter (PIL's "bilinear", as torchvision's `Resize`
//! on PIL images), so every build preprocesses identically. The loaders decode JPEGs with `zune-jpeg` in
//! every build ([`decode_jpeg_fast`]).
//! Every failure is an error naming the file; nothing here panics on bad input.
//!
//! EXIF orientation is applied by every decoder: an image is what a viewer displays, a JPEG whose EXIF
//! says "rotate 90° clockwise" comes out rotated, with width and height swapped, and [`image_size`] (the
//! header-only size read) gives the same displayed size. VOC boxes are read in that frame: the frame of
//! CVAT (which applies EXIF orientation since its 2022 release, cvat-ai/cvat#4529 and #7162), of web-based
//! tools (browsers display images EXIF-rotated), of OpenCV's `imread` and of Roboflow exports (auto-orient
//! rotates the pixels and drops the tag). labelImg does not apply it (Qt's `QImage` without
//! `autoTransform`, HumanSignal/labelImg#198, #342, #376): its boxes on a rotated JPEG are in the stored
//! frame; `skipblock data check` reports such images as a size mismatch when the rotation is by 90°
//! (the annotation's size is the stored one), and `exiftran -ai` fixes the files.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// An 8-bit RGB image, HWC.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

impl RgbImage {
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self> {
        if data.len() != width as usize * height as usize * 3 {
            bail!("RGB buffer of {} bytes does not fit {width}x{height}x3", data.len());
        }
        Ok(RgbImage { width, height, data })
    }

    /// A solid-colour image.
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let data = rgb.iter().copied().cycle().take(width as usize * height as usize * 3).collect();
        RgbImage { width, height, data }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// The image as the `image` crate's buffer (a copy).
    pub fn to_image_crate(&self) -> image::RgbImage {
        image::RgbImage::from_raw(self.width, self.height, self.data.clone())
            .expect("RgbImage invariant: buffer length matches its size")
    }

    /// An image from the `image` crate's buffer (no copy).
    pub fn from_image_crate(img: image::RgbImage) -> Self {
        let (width, height) = img.dimensions();
        RgbImage { width, height, data: img.into_raw() }
    }
}

/// Reads an image file (JPEG, PNG, BMP, …) into RGB with the `image` crate (EXIF orientation applied).
pub fn read_image(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read image '{}'", path.display()))?;
    decode_image(&bytes).with_context(|| format!("cannot decode image '{}'", path.display()))
}

/// Decodes encoded image bytes into RGB with the `image` crate, EXIF orientation applied.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        bail!("empty file");
    }
    let decode = || -> image::ImageResult<image::DynamicImage> {
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
        let mut decoder = reader.into_decoder()?;
        let orientation = image::ImageDecoder::orientation(&mut decoder)?;
        let mut img = image::DynamicImage::from_decoder(decoder)?;
        img.apply_orientation(orientation);
        Ok(img)
    };
    let img = decode().map_err(|e| anyhow!("{e}"))?;
    Ok(RgbImage::from_image_crate(img.to_rgb8()))
}

/// The displayed size of an image file, `(width, height)`, from its header alone (no pixel decoding): the
/// stored size, swapped when the EXIF orientation turns the image by 90°, as [`read_image`] returns it.
pub fn image_size(path: &Path) -> Result<(u32, u32)> {
    let size = || -> image::ImageResult<(u32, u32)> {
        let mut decoder = image::ImageReader::open(path)?.with_guessed_format()?.into_decoder()?;
        let (w, h) = image::ImageDecoder::dimensions(&decoder);
        let orientation = image::ImageDecoder::orientation(&mut decoder)?;
        Ok(if swaps_sides(orientation) { (h, w) } else { (w, h) })
    };
    size().with_context(|| format!("cannot read the header of image '{}'", path.display()))
}

/// Whether an orientation turns the image by 90° (width and height swap).
fn swaps_sides(orientation: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation::*;
    matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
}

/// Writes an image; the format follows the extension (`.jpg`/`.jpeg` at quality 95, `.png`, `.bmp`).
pub fn write_image(path: &Path, img: &RgbImage) -> Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder '{}'", dir.display()))?;
    }
    let bytes = encode_image(img, path).with_context(|| format!("cannot encode image '{}'", path.display()))?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write image '{}'", path.display()))
}

fn format_of(path: &Path) -> Result<image::ImageFormat> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("jpg" | "jpeg") => Ok(image::ImageFormat::Jpeg),
        Some("png") => Ok(image::ImageFormat::Png),
        Some("bmp") => Ok(image::ImageFormat::Bmp),
        other => bail!("unsupported image extension {other:?} (use .jpg, .png or .bmp)"),
    }
}

/// Encodes an image to bytes in the format of `path`'s extension.
pub fn encode_image(img: &RgbImage, path: &Path) -> Result<Vec<u8>> {
    encode_as(img, format_of(path)?)
}

/// The PNG file of an image, in memory (the `image` crate's encoder in every build, so the bytes are the
/// same with and without OpenCV).
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>> {
    encode_as(img, image::ImageFormat::Png)
        .with_context(|| format!("cannot encode a {}x{} image as PNG", img.width, img.height))
}

/// Encodes with the `image` crate (JPEG at quality 95).
fn encode_as(img: &RgbImage, format: image::ImageFormat) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    if format == image::ImageFormat::Jpeg {
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
        img.to_image_crate().write_with_encoder(encoder)?;
    } else {
        img.to_image_crate().write_to(&mut out, format)?;
    }
    Ok(out.into_inner())
}

/// Resizes to `width`×`height` with an antialiased bilinear filter ([`resized_crop`] of the whole image).
pub fn resize(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    if img.width == width && img.height == height {
        return img.clone();
    }
    resized_crop(img, (0, 0, img.width, img.height), width, height)
}

/// The rectangle `(x, y, w, h)` of `img` (clipped to the image) resized to `width`×`height`, as
/// torchvision's PIL-based `resized_crop` does it: crop first (the filter sees no pixel outside the
/// rectangle), then Pillow's `resize(…, BILINEAR)`: one direction, rounded to 8 bits, then the other (in
/// Pillow 13's order), each a triangle kernel widened by the scale when shrinking (antialiased) with
/// fixed-point weights. Each pass is a SIMD convolution (SSE4.1/AVX2/NEON, chosen at run time) of
/// `fast_image_resize`, whose 16-bit weights round a tie differently from Pillow's 22-bit ones now and
/// then: torchvision's bytes to ±1 (`tests/pixels_reference.rs`).
pub fn resized_crop(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32), width: u32, height: u32) -> RgbImage {
    let cropped;
    let img = if (x, y, w, h) == (0, 0, img.width, img.height) {
        img
    } else {
        cropped = crop(img, x, y, w, h);
        &cropped
    };
    let (width, height) = (width.max(1), height.max(1));
    if img.width == 0 || img.height == 0 {
        return RgbImage { width, height, data: vec![0; width as usize * height as usize * 3] };
    }
    // Pillow's order of the passes (13.0: vertical first when the height shrinks by more than twice as
    // many pixels as the width; horizontal first otherwise), each rounded to 8 bits.
    let (dw, dh) = (img.width as i64 - width as i64, img.height as i64 - height as i64);
    let first = if dh > 0 && dh > 2 * dw { (img.width, height) } else { (width, img.height) };
    if first == (img.width, img.height) {
        return convolve(img, width, height); // one pass (or a copy)
    }
    let once = convolve(img, first.0, first.1);
    if (once.width, once.height) == (width, height) {
        return once;
    }
    convolve(&once, width, height)
}

/// One `fast_image_resize` bilinear convolution of the whole image (a resizer per thread keeps its
/// scratch buffers between the calls of a loader worker).
fn convolve(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    use fast_image_resize::{images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions};
    thread_local! {
        static RESIZER: std::cell::RefCell<fast_image_resize::Resizer> = Default::default();
    }
    let src = ImageRef::new(img.width, img.height, &img.data, PixelType::U8x3)
        .expect("an RgbImage holds width × height × 3 bytes");
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).use_alpha(false);
    RESIZER.with(|r| r.borrow_mut().resize(&src, &mut dst, &options)).expect("the same pixel type on both sides");
    RgbImage { width, height, data: dst.into_vec() }
}

/// Crops the rectangle at (`x`, `y`) of size `width`×`height` (clipped to the image).
pub fn crop(img: &RgbImage, x: u32, y: u32, width: u32, height: u32) -> RgbImage {
    let x = x.min(img.width.saturating_sub(1));
    let y = y.min(img.height.saturating_sub(1));
    let width = width.min(img.width - x).max(1);
    let height = height.min(img.height - y).max(1);
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for row in y..y + height {
        let start = (row as usize * img.width as usize + x as usize) * 3;
        data.extend_from_slice(&img.data[start..start + width as usize * 3]);
    }
    RgbImage { width, height, data }
}

/// (Tests) `img` as a JPEG carrying an EXIF APP1 segment whose only tag is `orientation` (1–8), placed after
/// the encoder's JFIF APP0 segment as cameras write it.
#[doc(hidden)]
pub fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Result<Vec<u8>> {
    let jpeg = encode_image(img, Path::new("x.jpg"))?;
    if !jpeg.starts_with(b"\xff\xd8") || jpeg.len() < 6 {
        bail!("the JPEG encoder wrote no SOI marker");
    }
    // Big-endian TIFF header, one IFD with one entry: tag 0x0112 (Orientation), type SHORT, count 1.
    let mut payload = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    payload.extend_from_slice(&orientation.to_be_bytes());
    payload.extend_from_slice(&[0; 6]); // value padding, then "no next IFD"
    let app0 = if jpeg[2..4] == [0xff, 0xe0] { 2 + u16::from_be_bytes([jpeg[4], jpeg[5]]) as usize } else { 0 };
    let split = 2 + app0;
    let mut out = jpeg[..split].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(&jpeg[split..]);
    Ok(out)
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

/// The loaders' JPEG decoder, the same in both builds: `zune-jpeg` (SIMD, pure Rust) straight into RGB,
/// without the `image` crate's intermediate buffers (see docs/BENCHMARKS.md for its speed next to OpenCV's
/// libjpeg-turbo and the `image` crate). `Ok(None)` for what it leaves to [`decode_image`]: anything but a
/// JPEG, and JPEGs whose EXIF orientation is not the identity (orientation is [`decode_image`]'s job).
pub fn decode_jpeg_fast(bytes: &[u8]) -> Result<Option<RgbImage>> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(None);
    }
    let options = DecoderOptions::new_fast().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| anyhow!("{e:?}"))?;
    if decoder.exif().is_some_and(|exif| exif_orientation(exif).is_some_and(|o| o != 1)) {
        return Ok(None);
    }
    let data = decoder.decode().map_err(|e| anyhow!("{e:?}"))?;
    let info = decoder.info().ok_or_else(|| anyhow!("no image information after decoding"))?;
    if decoder.output_colorspace() != Some(ColorSpace::RGB) {
        return Ok(None);
    }
    RgbImage::new(info.width as u32, info.height as u32, data).map(Some)
}

/// The orientation tag (0x0112) of IFD0 in an EXIF block (`Exif\0\0` and a TIFF header, or the TIFF
/// header alone), if present and readable.
fn exif_orientation(exif: &[u8]) -> Option<u16> {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    let le = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |i: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(i..i + 2)?.try_into().ok()?;
        Some(if le { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(i..i + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let ifd = u32_at(4)? as usize;
    (0..u16_at(ifd)? as usize)
        .map(|k| ifd + 2 + 12 * k)
        .find(|&e| u16_at(e) == Some(0x0112))
        .and_then(|e| u16_at(e + 8))
}

/// Checks every decoder of a build must pass, with the same expected values: run by this crate's tests on
/// the `image` crate's decoder and by `skipblock-data`'s on its build's (OpenCV's `imdecode` in the
/// default build). Behind the `decoder-checks` feature (a dev-dependency feature of skipblock-data).
#[cfg(any(test, feature = "decoder-checks"))]
pub mod checks {
    use super::*;

    /// A build's decoder: reading a file, decoding bytes.
    pub struct Decoder {
        pub name: &'static str,
        pub read: fn(&Path) -> Result<RgbImage>,
        pub decode: fn(&[u8]) -> Result<RgbImage>,
    }

    pub fn gradient(w: u32, h: u32) -> RgbImage {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            }
        }
        RgbImage::new(w, h, data).unwrap()
    }

    /// Every check above.
    pub fn all(d: &Decoder) {
        png_round_trip_is_lossless_and_jpeg_is_close(d);
        png_bytes_decode_to_the_same_pixels(d);
        corrupt_and_missing_files_are_errors_naming_the_path(d);
        exif_orientation_is_applied_and_the_header_size_agrees(d);
    }

    /// PNG is lossless, JPEG close, channels in RGB order.
    pub fn png_round_trip_is_lossless_and_jpeg_is_close(d: &Decoder) {
        let dir = tempfile::tempdir().unwrap();
        let img = gradient(40, 30);
        let png = dir.path().join("a/b.png");
        write_image(&png, &img).unwrap();
        assert_eq!((d.read)(&png).unwrap(), img);
        let jpg = dir.path().join("c.jpg");
        write_image(&jpg, &img).unwrap();
        let back = (d.read)(&jpg).unwrap();
        assert_eq!((back.width, back.height), (40, 30));
        let max_diff = back.data.iter().zip(&img.data).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
        assert!(max_diff < 24, "jpeg error {max_diff}");
        // Channel order is RGB, not OpenCV's BGR: the red channel grows with x.
        assert!(back.pixel(39, 0)[0] > 200 && back.pixel(39, 0)[2] < 160);
    }

    /// Encoded PNG bytes decode to the same pixels.
    pub fn png_bytes_decode_to_the_same_pixels(d: &Decoder) {
        let img = gradient(17, 9);
        let png = encode_png(&img).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!((d.decode)(&png).unwrap(), img);
        assert_eq!(png, encode_image(&img, Path::new("x.png")).unwrap());
    }

    /// Corrupt, empty and missing files are errors naming the file.
    pub fn corrupt_and_missing_files_are_errors_naming_the_path(d: &Decoder) {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("corrupt.jpg");
        std::fs::write(&bad, b"\xff\xd8\xff\xe0 this is not a jpeg").unwrap();
        let err = format!("{:#}", (d.read)(&bad).unwrap_err());
        assert!(err.contains("corrupt.jpg"), "{err}");
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        assert!(format!("{:#}", (d.read)(&empty).unwrap_err()).contains("empty.png"));
        let err = format!("{:#}", (d.read)(&dir.path().join("missing.jpg")).unwrap_err());
        assert!(err.contains("missing.jpg"), "{err}");
        let err = format!("{:#}", write_image(&dir.path().join("x.gifx"), &gradient(2, 2)).unwrap_err());
        assert!(err.contains("x.gifx"), "{err}");
    }

    /// EXIF orientations 1–8 are applied (EXIF's definition of each) and the header size agrees.
    pub fn exif_orientation_is_applied_and_the_header_size_agrees(d: &Decoder) {
        let (w, h) = (48u32, 32u32);
        let colour = |x: u32, y: u32| match (x >= w / 2, y >= h / 2) {
            (false, false) => [220u8, 30, 30],
            (true, false) => [30, 200, 30],
            (false, true) => [30, 30, 220],
            (true, true) => [230, 220, 40],
        };
        let data = (0..h).flat_map(|y| (0..w).flat_map(move |x| colour(x, y))).collect();
        let img = RgbImage::new(w, h, data).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for orientation in 1..=8u16 {
            // The stored pixel a viewer shows at (x, y).
            let stored = |x: u32, y: u32| match orientation {
                1 => (x, y),
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            };
            let (dw, dh) = if orientation >= 5 { (h, w) } else { (w, h) };
            let path = dir.path().join(format!("o{orientation}.jpg"));
            std::fs::write(&path, jpeg_with_orientation(&img, orientation).unwrap()).unwrap();
            let shown = (d.read)(&path).unwrap();
            let what = format!("orientation {orientation}, {} decoder", d.name);
            assert_eq!((shown.width, shown.height), (dw, dh), "{what}");
            assert_eq!(image_size(&path).unwrap(), (dw, dh), "header size, {what}");
            for (fx, fy) in [(1, 1), (3, 1), (1, 3), (3, 3)] {
                let (x, y) = (dw * fx / 4, dh * fy / 4);
                let (sx, sy) = stored(x, y);
                let (got, want) = (shown.pixel(x, y), colour(sx, sy));
                let diff = got.iter().zip(want).map(|(a, b)| (*a as i32 - b as i32).abs()).max().unwrap();
                assert!(diff < 30, "{what}: pixel ({x}, {y}) is {got:?}, expected {want:?}");
            }
        }
        let err = format!("{:#}", image_size(&dir.path().join("gone.jpg")).unwrap_err());
        assert!(err.contains("gone.jpg"), "{err}");
    }

    /// The loaders' fast path (`read_fast`) reads a JPEG as the build's decoder does (to IDCT rounding),
    /// leaves other formats to it, and names a corrupt file.
    pub fn fast_jpeg_decoder_reads_what_the_decoder_reads(d: &Decoder, read_fast: fn(&Path) -> Result<RgbImage>) {
        let dir = tempfile::tempdir().unwrap();
        let img = gradient(64, 48);
        let jpg = dir.path().join("g.jpg");
        write_image(&jpg, &img).unwrap();
        let fast = (read_fast)(&jpg).unwrap();
        let slow = (d.read)(&jpg).unwrap();
        assert_eq!((fast.width, fast.height), (64, 48));
        // Two JPEG decoders may differ by an IDCT rounding here and there, not more.
        let max_diff = fast.data.iter().zip(&slow.data).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
        assert!(max_diff <= 3, "{max_diff}");
        // Not a JPEG: left to decode_image; corrupt: an error naming the file.
        let png = dir.path().join("g.png");
        write_image(&png, &img).unwrap();
        assert_eq!(decode_jpeg_fast(&std::fs::read(&png).unwrap()).unwrap(), None);
        assert_eq!((read_fast)(&png).unwrap(), img);
        let bad = dir.path().join("bad.jpg");
        std::fs::write(&bad, b"\xff\xd8\xff\xe0 this is not a jpeg").unwrap();
        assert!(format!("{:#}", (read_fast)(&bad).unwrap_err()).contains("bad.jpg"));
    }
}

#[cfg(test)]
mod tests {
    use super::checks::gradient;
    use super::*;

    #[test]
    fn the_image_crate_decoder_passes_the_decoder_checks() {
        checks::all(&checks::Decoder { name: "the image crate's", read: read_image, decode: decode_image });
    }

    #[test]
    fn resize_and_crop() {
        let img = gradient(64, 32);
        let small = resize(&img, 16, 8);
        assert_eq!((small.width, small.height), (16, 8));
        // A solid image stays solid under the filter.
        let solid = resize(&RgbImage::filled(50, 50, [10, 20, 30]), 7, 9);
        assert!(solid.data.chunks(3).all(|p| p == [10, 20, 30]));
        let c = crop(&img, 10, 5, 8, 4);
        assert_eq!((c.width, c.height), (8, 4));
        assert_eq!(c.pixel(0, 0), img.pixel(10, 5));
        assert_eq!(c.pixel(7, 3), img.pixel(17, 8));
        // The crop is taken first: the box's pixels alone, resized; at its own size, the crop itself.
        assert_eq!(resized_crop(&img, (10, 5, 8, 4), 8, 4), c);
        for (w, h) in [(24, 12), (3, 2), (8, 9), (5, 4)] {
            assert_eq!(resized_crop(&img, (10, 5, 8, 4), w, h), resize(&c, w, h), "{w}x{h}");
        }
        // A box reaching past the image is clipped to it.
        assert_eq!(resized_crop(&img, (60, 30, 10, 10), 6, 3), resize(&crop(&img, 60, 30, 4, 2), 6, 3));
    }

    #[test]
    fn the_fast_jpeg_decoder_reads_what_the_default_decoder_reads() {
        let d = checks::Decoder { name: "the image crate's", read: read_image, decode: decode_image };
        checks::fast_jpeg_decoder_reads_what_the_decoder_reads(&d, read_image_fast);
        // EXIF orientation: read from either byte order; only the identity stays on the fast path.
        let exif = |le: bool, o: u16| {
            let mut v = b"Exif\0\0".to_vec();
            let w16 = |x: u16| if le { x.to_le_bytes() } else { x.to_be_bytes() };
            let w32 = |x: u32| if le { x.to_le_bytes() } else { x.to_be_bytes() };
            v.extend_from_slice(if le { b"II" } else { b"MM" });
            v.extend_from_slice(&w16(42));
            v.extend_from_slice(&w32(8));
            v.extend_from_slice(&w16(1));
            v.extend_from_slice(&w16(0x0112));
            v.extend_from_slice(&w16(3));
            v.extend_from_slice(&w32(1));
            v.extend_from_slice(&w16(o));
            v.extend_from_slice(&[0, 0]);
            v
        };
        assert_eq!(exif_orientation(&exif(true, 6)), Some(6));
        assert_eq!(exif_orientation(&exif(false, 1)), Some(1));
        assert_eq!(exif_orientation(b"Exif\0\0junk"), None);
    }
}

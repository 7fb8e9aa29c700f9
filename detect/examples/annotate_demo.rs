//! Writes annotated images at a few sizes (160², 300², 640×480, 1920×1080), with hand-made detections of
//! every class colour, to look at the boxes and labels:
//! `cargo run --release -p skipblock-detect --example annotate_demo -- OUT_DIR [IMAGE...]`.
//! Synthetic backgrounds, or the given images resized to each size.

use anyhow::{Context, Result};
use rand::SeedableRng;
use skipblock_data::draw::background;
use skipblock_data::image_io::resize;
use skipblock_data::{read_image, write_image, RgbImage};
use skipblock_detect::detector::{annotate, PixelDetection};

const NAMES: [&str; 20] = skipblock_data::voc::VOC_CLASSES;

/// Hand-made detections on a `w`×`h` image: boxes in fractions of the image, one near each corner.
fn detections(w: u32, h: u32, offset: usize) -> Vec<PixelDetection> {
    let boxes = [
        [0.0, 0.0, 0.35, 0.4],
        [0.3, 0.35, 0.7, 0.9],
        [0.75, 0.02, 1.0, 0.3],
        [0.05, 0.7, 0.3, 1.0],
        [0.55, 0.12, 0.85, 0.5],
        [0.8, 0.75, 1.0, 1.0],
    ];
    boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let class = (i * 7 + offset) % 20;
            PixelDetection {
                bbox: [b[0] * w as f32, b[1] * h as f32, b[2] * w as f32, b[3] * h as f32],
                class,
                name: NAMES[class].to_string(),
                score: 0.97 - i as f32 * 0.13,
            }
        })
        .collect()
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().context("usage: annotate_demo OUT_DIR [IMAGE...]")?);
    let photos: Vec<RgbImage> = args.map(|p| read_image(p.as_ref())).collect::<Result<_>>()?;
    std::fs::create_dir_all(&out)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for (i, (w, h)) in [(160, 160), (300, 300), (640, 480), (1920, 1080)].into_iter().enumerate() {
        for k in 0..4.max(photos.len()) {
            let img = match photos.get(k) {
                Some(photo) => resize(photo, w, h),
                None => background(w, h, &mut rng, 8),
            };
            let annotated = annotate(&img, &detections(w, h, k * 5 + i));
            write_image(&out.join(format!("annotated_{w}x{h}_{k}.png")), &annotated)?;
        }
    }
    Ok(())
}

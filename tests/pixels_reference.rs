//! The shared preprocessing against torchvision's PIL-based transforms (`tests/python/pixels_ref.py`):
//! the Inception crop's resize of a drawn box (`resized_crop`), the detectors' resize to S×S and the
//! classifiers' evaluation preprocessing (shorter side, centre crop), on photo-like images of several
//! shapes, upscaling and downscaling, with Pillow 13's order of the two passes. Both sides compute in
//! fixed point, Pillow with 22-bit weights, `fast_image_resize` with 16-bit ones, so a value that lands
//! on (or within ~0.02 of) a half rounds either way: a byte may differ by one, never more. Ties are
//! common at simple ratios (500×375 → 300×300: 5:3 and 5:4 give weights in tenths; 4% of the bytes);
//! a wrong pass order or crop shows as 20–25% of the bytes off by one, or as larger differences.

mod common;

use common::{decode, path_str, python, repo};
use skipblock_data::image_io::{encode_image, resize, resized_crop};
use skipblock_data::transforms::{detect_preprocess, eval_preprocess, to_chw};
use skipblock_data::RgbImage;
use std::process::Command;

/// Smooth gradients and shapes plus per-pixel noise: both flat areas and edges for the filter.
fn photo(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let noise = |c: u32| (((x * 73856093) ^ (y * 19349663) ^ (c * 83492791) ^ seed) >> 7) % 41;
            let disc =
                ((x as i32 - w as i32 / 3).pow(2) + (y as i32 - h as i32 / 2).pow(2)) < (w.min(h) as i32 / 4).pow(2);
            let base = [x * 200 / w, y * 200 / h, if disc { 180 } else { 30 }];
            for (c, b) in base.into_iter().enumerate() {
                data.push((b + noise(c as u32)).min(255) as u8);
            }
        }
    }
    RgbImage::new(w, h, data).unwrap()
}

/// What torchvision makes of `img` for each op: HWC bytes.
fn torchvision(img: &RgbImage, ops: &serde_json::Value) -> Vec<RgbImage> {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src.png"), dir.path().join("out.raw"));
    std::fs::write(&src, encode_image(img, &src).unwrap()).unwrap();
    let (ok, stdout, stderr) = decode(
        Command::new(python())
            .arg(repo().join("tests/python/pixels_ref.py"))
            .args([path_str(&src), path_str(&out), &ops.to_string()])
            .output()
            .expect("run python"),
    );
    assert!(ok, "pixels_ref.py failed: {stderr}");
    let sizes: Vec<[u32; 2]> = serde_json::from_str(&stdout).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let mut at = 0;
    sizes
        .into_iter()
        .map(|[w, h]| {
            let n = (w * h * 3) as usize;
            at += n;
            RgbImage::new(w, h, bytes[at - n..at].to_vec()).unwrap()
        })
        .collect()
}

/// At most this share of the bytes may differ (by one): rounding ties, see the top of the file.
const MAX_SHARE: f64 = 0.08;

/// (largest difference, share of bytes that differ)
fn compare(what: &str, ours: &[u8], theirs: &[u8]) -> (u8, f64) {
    assert_eq!(ours.len(), theirs.len(), "{what}: sizes differ");
    let diffs: Vec<u8> = ours.iter().zip(theirs).map(|(a, b)| a.abs_diff(*b)).collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let share = diffs.iter().filter(|d| **d > 0).count() as f64 / diffs.len().max(1) as f64;
    (max, share)
}

#[test]
fn resizing_and_cropping_give_torchvisions_pixels() {
    let mut worst = (0u8, 0f64);
    for (w, h, seed) in [(500, 375, 1), (256, 256, 2), (97, 211, 3)] {
        let img = photo(w, h, seed);
        // Inception boxes (small → upscaled, large → downscaled, thin), the detectors' resize, eval.
        let boxes = [(0, 0, w, h), (w / 5, h / 7, w / 3, h / 4), (3, 1, w - 5, h / 2), (w / 2, 0, w / 2, h)];
        let mut ops: Vec<serde_json::Value> = boxes
            .iter()
            .map(|&(x, y, bw, bh)| serde_json::json!({"op": "resized_crop", "box": [x, y, bw, bh], "size": [224, 224]}))
            .collect();
        ops.push(serde_json::json!({"op": "resize", "size": [300, 300]}));
        ops.push(serde_json::json!({"op": "resize", "size": [64, 48]}));
        ops.push(serde_json::json!({"op": "eval", "resize": 256, "crop": 224}));
        let theirs = torchvision(&img, &serde_json::Value::Array(ops));
        let mut ours: Vec<Vec<u8>> = boxes.iter().map(|&b| resized_crop(&img, b, 224, 224).data).collect();
        ours.push(resize(&img, 300, 300).data);
        ours.push(resize(&img, 64, 48).data);
        let chw = |i: &RgbImage| to_chw(i).data;
        for (k, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            let (max, share) = compare(&format!("{w}x{h} op {k}"), o, &t.data);
            assert!(max <= 1, "{w}x{h} op {k}: a pixel differs by {max} from torchvision's");
            assert!(share <= MAX_SHARE, "{w}x{h} op {k}: {:.2}% of the bytes differ", share * 100.0);
            worst = (worst.0.max(max), worst.1.max(share));
        }
        // The predictors' inputs, as planes.
        let eval = compare("eval", &eval_preprocess(&img, 256, 224).data, &chw(&theirs[6]));
        let det = compare("detect", &detect_preprocess(&img, 300).data, &chw(&theirs[4]));
        for (what, (max, share)) in [("eval_preprocess", eval), ("detect_preprocess", det)] {
            assert!(max <= 1 && share <= MAX_SHARE, "{w}x{h} {what}: max {max}, {:.2}% differ", share * 100.0);
        }
    }
    eprintln!("worst: max difference {}, {:.3}% of bytes differ", worst.0, worst.1 * 100.0);
}

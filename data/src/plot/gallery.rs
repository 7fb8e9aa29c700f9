//! The charts on synthetic data, written to `$SKIPBLOCK_CHARTS` (default `/tmp/skipblock-charts`) to
//! look at: `cargo test --release -p skipblock-data --lib gallery -- --ignored`. The pictures are the
//! same bytes in the OpenCV and the headless build (`--no-default-features`).

use super::{save_training_curves, BarChart, Heatmap};
use anyhow::Result;
use skipblock_core::train::{EpochRecord, Validation};
use std::path::PathBuf;

#[test]
#[ignore = "writes pictures to look at"]
fn gallery() {
    render_gallery().unwrap();
}

fn render_gallery() -> Result<()> {
    let out = PathBuf::from(std::env::var("SKIPBLOCK_CHARTS").unwrap_or_else(|_| "/tmp/skipblock-charts".into()));
    let history: Vec<EpochRecord> = (1..=40)
        .map(|e| {
            let t = e as f64;
            EpochRecord {
                epoch: e,
                train_loss: 4.0 * (-t / 8.0).exp() + 0.6,
                val: Validation {
                    val_loss: (e % 2 == 0).then_some(3.5 * (-t / 9.0).exp() + 0.8),
                    val_top1: (e % 2 == 0).then_some(0.72 * (1.0 - (-t / 7.0).exp())),
                    val_top5: (e % 2 == 0).then_some(0.93 * (1.0 - (-t / 5.0).exp())),
                    val_map: None,
                },
                lr: 0.4 * 0.5 * (1.0 + (std::f64::consts::PI * t / 40.0).cos()) + 1e-5,
                images_per_sec: 1450.0 + 30.0 * (t * 0.7).sin(),
                epoch_seconds: 60.0,
                skipped: 0,
            }
        })
        .collect();
    let run = out.join("imagenet-skipblocknet-m");
    save_training_curves(&run, &history)?;
    let classes: Vec<String> = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow"]
        .map(String::from)
        .to_vec();
    let n = classes.len();
    let values: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n).map(|j| if i == j { 0.5 + 0.05 * i as f64 } else { ((i * 7 + j * 3) % 5) as f64 * 0.03 }).collect()
        })
        .collect();
    Heatmap {
        title: "confusion matrix".into(),
        x_label: "predicted".into(),
        y_label: "true".into(),
        x_names: classes.clone(),
        y_names: classes.clone(),
        values,
        annotate: true,
    }
    .save(&out.join("heatmap.png"))?;
    let many: Vec<String> = (0..100).map(|i| format!("class_{i}")).collect();
    Heatmap {
        title: "confusion matrix (100 classes)".into(),
        x_label: "predicted".into(),
        y_label: "true".into(),
        x_names: many.clone(),
        y_names: many.clone(),
        values: (0..100)
            .map(|i| (0..100).map(|j| if i == j { 0.3 + 0.007 * i as f64 } else { 0.01 }).collect())
            .collect(),
        annotate: true,
    }
    .save(&out.join("heatmap100.png"))?;
    BarChart {
        title: "per-class accuracy".into(),
        x_label: "top-1 accuracy".into(),
        bars: classes.iter().enumerate().map(|(i, c)| (c.clone(), 1.0 - i as f64 * 0.09)).collect(),
        range: (0.0, 1.0),
        percent: true,
        color: [31, 119, 180],
        reference: Some(("mean".into(), 0.595)),
    }
    .save(&out.join("bars.png"))?;
    println!("charts in {}", out.display());
    Ok(())
}

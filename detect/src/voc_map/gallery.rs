//! The charts of `detect eval` for a synthetic 20-class evaluation (and a one-class one), written to
//! `$SKIPBLOCK_CHARTS` (default `/tmp/skipblock-charts`) to look at:
//! `cargo test --release -p skipblock-detect --lib gallery -- --ignored`.

use super::{
    mean_average_precision, save_confusion_matrix, save_f1_curve, save_pr_curves, DetectionConfusion, DetectionRecord,
    GroundTruth, Metric,
};
use anyhow::Result;
use std::path::PathBuf;

/// A deterministic pseudo-random number in 0–1.
fn noise(i: usize, salt: usize) -> f32 {
    let x = (i.wrapping_mul(2654435761) ^ salt.wrapping_mul(40503)).wrapping_mul(2246822519) % 10007;
    x as f32 / 10007.0
}

#[test]
#[ignore = "writes pictures to look at"]
fn gallery() {
    render_gallery().unwrap();
}

fn render_gallery() -> Result<()> {
    let out = PathBuf::from(std::env::var("SKIPBLOCK_CHARTS").unwrap_or_else(|_| "/tmp/skipblock-charts".into()));
    let classes: Vec<String> = skipblock_data::voc::VOC_CLASSES.map(String::from).to_vec();
    let (mut gts, mut dets) = (Vec::new(), Vec::new());
    for image in 0..300 {
        let id = format!("{image:06}");
        let class = image % classes.len();
        let skill = 0.35 + 0.6 * (class as f32 / classes.len() as f32);
        let bbox = [20.0, 30.0, 120.0, 160.0];
        gts.push(GroundTruth { image_id: id.clone(), class, bbox, difficult: false });
        let found = noise(image, 1) < skill;
        let score = if found { 0.3 + 0.7 * noise(image, 2) } else { 0.6 * noise(image, 3) };
        let predicted = if noise(image, 4) < 0.1 { (class + 1) % classes.len() } else { class };
        let bbox = if found { [22.0, 28.0, 118.0, 165.0] } else { [300.0, 300.0, 360.0, 380.0] };
        dets.push(DetectionRecord { image_id: id.clone(), class: predicted, score, bbox });
        if noise(image, 5) < 0.4 {
            let class = (class + 7) % classes.len();
            let bbox = [200.0, 10.0, 260.0, 90.0];
            dets.push(DetectionRecord { image_id: id, class, score: 0.5 * noise(image, 6), bbox });
        }
    }
    let result = mean_average_precision(&gts, &dets, &classes, Metric::Voc07, 0.5)?;
    save_pr_curves(&result, &out.join("pr_curves.png"))?;
    save_f1_curve(&result, &out.join("f1_curve.png"))?;
    let m = DetectionConfusion::compute(&gts, &dets, &classes, 0.25, 0.45)?;
    save_confusion_matrix(&m, &out.join("confusion_matrix.png"))?;
    let one = vec!["dog".to_string()];
    let dog_gts: Vec<GroundTruth> =
        gts.iter().filter(|g| g.class == 0).map(|g| GroundTruth { class: 0, ..g.clone() }).collect();
    let dog_dets: Vec<DetectionRecord> = dets.iter().filter(|d| d.class == 0).cloned().collect();
    let dog = mean_average_precision(&dog_gts, &dog_dets, &one, Metric::Voc12, 0.5)?;
    save_pr_curves(&dog, &out.join("one_class_pr_curves.png"))?;
    save_f1_curve(&dog, &out.join("one_class_f1_curve.png"))?;
    let m = DetectionConfusion::compute(&dog_gts, &dog_dets, &one, 0.25, 0.45)?;
    save_confusion_matrix(&m, &out.join("one_class_confusion_matrix.png"))?;
    println!("map {:.4}; charts in {}", result.map, out.display());
    Ok(())
}

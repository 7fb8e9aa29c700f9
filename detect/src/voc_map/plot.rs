//! Precision–recall curves of an [`EvalResult`]: recall on x, precision on y, one series per class
//! (legend: class name and AP), the mAP under the legend; drawn by the shared chart renderer.

use super::voc_ap::EvalResult;
use anyhow::Result;
use skipblock_data::plot::{Chart, Series};
use skipblock_data::RgbImage;
use std::path::Path;

pub use skipblock_data::plot::PlotArea;

/// The chart of every class's precision–recall curve.
pub fn pr_chart(result: &EvalResult) -> Chart {
    Chart {
        x_label: "recall".into(),
        y_label: "precision".into(),
        x_range: Some((0.0, 1.0)),
        y_range: Some((0.0, 1.0)),
        series: result
            .per_class
            .iter()
            .map(|c| Series {
                name: format!("{} {:.3}", c.name, c.ap),
                points: c.recall.iter().zip(&c.precision).map(|(&r, &p)| (r as f64, p as f64)).collect(),
            })
            .collect(),
        note: Some(format!("map {:.4}", result.map)),
    }
}

/// The curves on a white `width × height` canvas.
pub fn plot_pr_curves(result: &EvalResult, width: u32, height: u32) -> RgbImage {
    pr_chart(result).render(width, height)
}

/// Draws the curves on an 800×600 canvas and saves them (format by extension, e.g. `.png`).
pub fn save_pr_curves(result: &EvalResult, path: &Path) -> Result<()> {
    pr_chart(result).save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voc_map::voc_ap::{mean_average_precision, DetectionRecord, GroundTruth, Metric};
    use skipblock_data::draw::class_color;

    #[test]
    fn curves_of_every_class_are_drawn_and_saved() {
        let names: Vec<String> = ["cat", "dog", "bird"].iter().map(|s| s.to_string()).collect();
        let mut gts = Vec::new();
        let mut dets = Vec::new();
        for i in 0..10 {
            for c in 0..3 {
                let b = [10.0 + c as f32 * 100.0, 10.0, 60.0 + c as f32 * 100.0, 60.0];
                gts.push(GroundTruth { image_id: format!("im{i}"), class: c, bbox: b, difficult: false });
                // Classes get different hit rates, so the curves differ.
                let hit = (i + c) % (c + 2) != 0;
                let bbox = if hit { b } else { [500.0, 500.0, 520.0, 520.0] };
                dets.push(DetectionRecord { image_id: format!("im{i}"), class: c, score: 1.0 - i as f32 * 0.05, bbox });
            }
        }
        let result = mean_average_precision(&gts, &dets, &names, Metric::Voc12, 0.5).unwrap();
        let img = plot_pr_curves(&result, 800, 600);
        let area = pr_chart(&result).area(800, 600);
        for c in 0..3 {
            let inside = (area.top as u32..area.bottom as u32 + 2)
                .flat_map(|y| (area.left as u32..area.right as u32 + 2).map(move |x| (x, y)))
                .filter(|&(x, y)| img.pixel(x, y) == class_color(c))
                .count();
            assert!(inside > 20, "class {c}: only {inside} curve pixels");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pr/curves.png");
        save_pr_curves(&result, &path).unwrap();
        let back = skipblock_data::read_image(&path).unwrap();
        assert_eq!((back.width, back.height), (800, 600));
        assert_eq!(back, img);
        assert!(save_pr_curves(&result, &dir.path().join("curves.gif")).is_err());
    }
}

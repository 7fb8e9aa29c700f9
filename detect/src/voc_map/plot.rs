//! Pictures of a detection evaluation, drawn with the data crate's charts:
//!
//! * precision–recall curves ([`pr_chart`]): per class the interpolated precision (the best precision
//!   at any higher recall, what VOC's AP integrates) against recall, AP in the legend, the mean over
//!   classes as "all classes", the mAP and its metric in the title;
//! * F1–confidence curves ([`f1_chart`]): per class and their mean, the best mean F1 and its threshold
//!   marked and in the legend (as ultralytics draws them);
//! * the confusion matrix ([`confusion_heatmap`]): fractions of each true class (columns), background
//!   included.
//!
//! With more than [`MAX_COLORED`] classes the per-class curves are grey and only the mean is named.

use super::confusion::DetectionConfusion;
use super::f1::f1_curves;
use super::voc_ap::{ClassResult, EvalResult};
use anyhow::Result;
use skipblock_data::plot::{palette, Axis, Heatmap, LegendPlace, LineChart, Rgb, Series, MUTED, SUMMARY};
use std::path::Path;

/// Up to this many classes get their own colour and legend entry.
pub const MAX_COLORED: usize = 20;
/// Canvas of the curve charts.
pub const CURVES_SIZE: (u32, u32) = (1100, 720);
/// Thresholds of the F1 curves.
const F1_POINTS: usize = 1001;
/// Recall grid of the mean precision–recall curve.
const RECALL_POINTS: usize = 101;

/// `[i]`: the best precision at index `i` or later (the precision envelope).
fn envelope(c: &ClassResult) -> Vec<f64> {
    let mut best = 0.0f64;
    let mut out: Vec<f64> = c
        .precision
        .iter()
        .rev()
        .map(|&p| {
            best = best.max(p as f64);
            best
        })
        .collect();
    out.reverse();
    out
}

/// The interpolated precision–recall curve as a staircase: precision `envelope[i]` from the previous
/// recall up to `recall[i]`.
fn staircase(c: &ClassResult) -> Vec<(f64, f64)> {
    let env = envelope(c);
    let mut points = Vec::with_capacity(2 * env.len() + 1);
    if let Some(&first) = env.first() {
        points.push((0.0, first));
    }
    for (i, (&r, &p)) in c.recall.iter().zip(&env).enumerate() {
        points.push((r as f64, p));
        if let Some(&next) = env.get(i + 1) {
            points.push((r as f64, next));
        }
    }
    points
}

/// The interpolated precision of `c` at recall `r`: the best precision at recall `r` or more (0 when
/// the class never reaches `r`).
fn precision_at(c: &ClassResult, r: f64) -> f64 {
    c.recall.iter().zip(&c.precision).filter(|(&rec, _)| rec as f64 >= r).map(|(_, &p)| p as f64).fold(0.0, f64::max)
}

/// The per-class series' colour and legend text: coloured and named up to [`MAX_COLORED`] classes.
fn class_style(result: &EvalResult, index: usize, name: String) -> (Rgb, String) {
    if result.per_class.len() <= MAX_COLORED {
        (palette(index), name)
    } else {
        (MUTED, String::new())
    }
}

/// "mAP@0.5 (VOC07) 0.4394".
pub fn map_title(result: &EvalResult) -> String {
    format!("mAP@{} ({}) {:.4}", result.iou_threshold, result.metric.to_string().to_uppercase(), result.map)
}

/// The precision–recall chart: one staircase per class with ground truth, "class 0.873" (its AP) in the
/// legend, and the mean interpolated precision over those classes ("all classes", up to the recall
/// where it reaches 0; left out when only one class has ground truth).
pub fn pr_chart(result: &EvalResult) -> LineChart {
    let x = Axis::new("recall").range(0.0, 1.0);
    let mut chart = LineChart::new(map_title(result), x, Axis::new("precision").range(0.0, 1.01));
    chart.legend = LegendPlace::Right;
    let with_gt: Vec<&ClassResult> = result.per_class.iter().filter(|c| c.num_gt > 0).collect();
    for (i, c) in result.per_class.iter().enumerate().filter(|(_, c)| c.num_gt > 0) {
        let (color, name) = class_style(result, i, format!("{} {:.3}", c.name, c.ap));
        chart.series.push(Series::line(name, staircase(c), color).width(if color == MUTED { 1 } else { 2 }));
    }
    if with_gt.len() > 1 {
        let mut mean = Vec::new();
        for i in 0..RECALL_POINTS {
            let r = i as f64 / (RECALL_POINTS - 1) as f64;
            let p = with_gt.iter().map(|c| precision_at(c, r)).sum::<f64>() / with_gt.len() as f64;
            mean.push((r, p));
            if p == 0.0 {
                break;
            }
        }
        chart.series.push(Series::line(format!("all classes {:.3}", result.map), mean, SUMMARY).width(3));
    }
    chart
}

/// The F1–confidence chart: per class with ground truth, their mean ("all classes 0.62 at 0.341") and
/// a dot at the best mean F1. With one class only, its curve is the mean, named "class 0.62 at 0.341".
pub fn f1_chart(result: &EvalResult) -> LineChart {
    let curves = f1_curves(result, F1_POINTS);
    let (lo, hi) = (curves.thresholds[0] as f64, curves.thresholds[curves.thresholds.len() - 1] as f64);
    let title = format!("F1–confidence (IoU > {})", result.iou_threshold);
    let mut chart = LineChart::new(title, Axis::new("confidence").range(lo, hi), Axis::new("F1").range(0.0, 1.01));
    chart.legend = LegendPlace::Right;
    let xs = || curves.thresholds.iter().map(|&t| t as f64);
    let counted: Vec<usize> = (0..result.per_class.len()).filter(|&i| curves.per_class[i].is_some()).collect();
    if counted.len() > 1 {
        for &i in &counted {
            let (color, name) = class_style(result, i, result.per_class[i].name.clone());
            let points = xs().zip(curves.per_class[i].iter().flatten().copied()).collect();
            chart.series.push(Series::line(name, points, color).width(if color == MUTED { 1 } else { 2 }));
        }
    }
    if let Some((t, f)) = curves.best {
        let (name, color) = match counted.as_slice() {
            [only] => (result.per_class[*only].name.clone(), palette(*only)),
            _ => ("all classes".to_string(), SUMMARY),
        };
        let mean = xs().zip(curves.mean.iter().copied()).collect();
        chart.series.push(Series::line(format!("{name} {f:.2} at {t:.3}"), mean, color).width(3));
        chart.series.push(Series::line("", vec![(t as f64, f)], color).width(0).marker(6));
    }
    chart
}

/// The confusion matrix picture: predicted (rows) × true (columns), fractions of each true class, the
/// values written in the cells up to 30 classes.
pub fn confusion_heatmap(m: &DetectionConfusion) -> Heatmap {
    let labels = m.labels();
    Heatmap {
        title: format!("confusion matrix, per true class (conf > {}, IoU > {})", m.conf, m.iou),
        x_label: "true".into(),
        y_label: "predicted".into(),
        x_names: labels.clone(),
        y_names: labels,
        values: m.normalized(),
        annotate: m.classes.len() <= 30,
    }
}

/// Draws the precision–recall curves (1100×720) and saves them (PNG), atomically.
pub fn save_pr_curves(result: &EvalResult, path: &Path) -> Result<()> {
    pr_chart(result).save(path, CURVES_SIZE.0, CURVES_SIZE.1)
}

/// Draws the F1–confidence curves (1100×720) and saves them (PNG), atomically.
pub fn save_f1_curve(result: &EvalResult, path: &Path) -> Result<()> {
    f1_chart(result).save(path, CURVES_SIZE.0, CURVES_SIZE.1)
}

/// Draws the confusion matrix and saves it (PNG), atomically.
pub fn save_confusion_matrix(m: &DetectionConfusion, path: &Path) -> Result<()> {
    confusion_heatmap(m).save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voc_map::confusion::{DEFAULT_CONF, DEFAULT_IOU};
    use crate::voc_map::voc_ap::{mean_average_precision, DetectionRecord, GroundTruth, Metric};
    use skipblock_data::RgbImage;

    /// Three classes over ten images with different hit rates, and a fourth class without ground truth.
    fn evaluation() -> (Vec<GroundTruth>, Vec<DetectionRecord>, Vec<String>) {
        let names: Vec<String> = ["cat", "dog", "bird", "fish"].iter().map(|s| s.to_string()).collect();
        let mut gts = Vec::new();
        let mut dets = Vec::new();
        for i in 0..10 {
            for c in 0..3 {
                let b = [10.0 + c as f32 * 100.0, 10.0, 60.0 + c as f32 * 100.0, 60.0];
                gts.push(GroundTruth { image_id: format!("im{i}"), class: c, bbox: b, difficult: false });
                let hit = (i + c) % (c + 2) != 0;
                let bbox = if hit { b } else { [500.0, 500.0, 520.0, 520.0] };
                dets.push(DetectionRecord { image_id: format!("im{i}"), class: c, score: 1.0 - i as f32 * 0.07, bbox });
            }
        }
        dets.push(DetectionRecord { image_id: "im0".into(), class: 3, score: 0.5, bbox: [10.0, 10.0, 60.0, 60.0] });
        (gts, dets, names)
    }

    fn count(img: &RgbImage, c: Rgb) -> usize {
        img.data.chunks(3).filter(|p| *p == c).count()
    }

    #[test]
    fn pr_and_f1_curves_of_every_class_are_drawn_and_saved() {
        let (gts, dets, names) = evaluation();
        let result = mean_average_precision(&gts, &dets, &names, Metric::Voc07, 0.5).unwrap();
        let pr = pr_chart(&result);
        assert!(pr.title.starts_with("mAP@0.5 (VOC07) 0."), "{}", pr.title);
        assert_eq!(pr.series.len(), 4, "three classes with ground truth and the mean");
        assert!(pr.series[0].name.starts_with("cat 0."), "{}", pr.series[0].name);
        let f1 = f1_chart(&result);
        assert!(f1.series[3].name.starts_with("all classes "), "{}", f1.series[3].name);
        for chart in [pr, f1] {
            let img = chart.render(CURVES_SIZE.0, CURVES_SIZE.1).unwrap();
            for c in [palette(0), palette(1), palette(2)] {
                assert!(count(&img, c) > 100, "{}: {c:?} has {} pixels", chart.title, count(&img, c));
            }
            assert!(count(&img, SUMMARY) > 300);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eval/pr_curves.png");
        save_pr_curves(&result, &path).unwrap();
        save_f1_curve(&result, &dir.path().join("eval/f1_curve.png")).unwrap();
        let back = skipblock_data::read_image(&path).unwrap();
        assert_eq!((back.width, back.height), CURVES_SIZE);
        assert!(save_pr_curves(&result, &dir.path().join("curves.gif")).is_err());
    }

    #[test]
    fn the_precision_staircase_follows_the_envelope() {
        let c = ClassResult {
            name: "x".into(),
            ap: 0.0,
            num_gt: 4,
            num_det: 3,
            scores: vec![0.9, 0.8, 0.7],
            precision: vec![1.0, 0.5, 2.0 / 3.0],
            recall: vec![0.25, 0.25, 0.5],
            in_map: true,
        };
        let two_thirds = (2.0f32 / 3.0) as f64;
        let e = envelope(&c);
        assert_eq!(e, vec![1.0, two_thirds, two_thirds]);
        let s = staircase(&c);
        assert_eq!(s[0], (0.0, 1.0));
        assert_eq!(s.last().unwrap(), &(0.5, e[2]));
        assert_eq!(precision_at(&c, 0.3), two_thirds);
        assert_eq!(precision_at(&c, 0.6), 0.0);
    }

    #[test]
    fn empty_and_many_class_evaluations_draw() {
        let names: Vec<String> = (0..25).map(|i| format!("c{i}")).collect();
        let empty = mean_average_precision(&[], &[], &names, Metric::Voc12, 0.5).unwrap();
        pr_chart(&empty).render(400, 300).unwrap();
        f1_chart(&empty).render(400, 300).unwrap();
        let gts: Vec<GroundTruth> = (0..25)
            .map(|c| GroundTruth { image_id: "a".into(), class: c, bbox: [1.0, 1.0, 9.0, 9.0], difficult: false })
            .collect();
        let dets: Vec<DetectionRecord> = (0..25)
            .map(|c| DetectionRecord { image_id: "a".into(), class: c, score: 0.5, bbox: [1.0, 1.0, 9.0, 9.0] })
            .collect();
        let many = mean_average_precision(&gts, &dets, &names, Metric::Voc12, 0.5).unwrap();
        let chart = pr_chart(&many);
        assert_eq!(chart.series.iter().filter(|s| !s.name.is_empty()).count(), 1, "only the mean is named");
        assert!(chart.series[0].color == MUTED);
        chart.render(CURVES_SIZE.0, CURVES_SIZE.1).unwrap();
    }

    #[test]
    fn the_confusion_matrix_is_drawn_with_background() {
        let (gts, dets, names) = evaluation();
        let m = DetectionConfusion::compute(&gts, &dets, &names, DEFAULT_CONF, DEFAULT_IOU).unwrap();
        let h = confusion_heatmap(&m);
        assert_eq!(h.x_names.last().unwrap(), "background");
        assert!(h.annotate);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confusion_matrix.png");
        save_confusion_matrix(&m, &path).unwrap();
        let img = skipblock_data::read_image(&path).unwrap();
        assert_eq!((img.width, img.height), h.size().unwrap());
    }
}

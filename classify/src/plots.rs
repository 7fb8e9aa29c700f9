//! Pictures of a classifier evaluation ([`EvalReport`]): the confusion matrix, normalised per true
//! class (values in the cells up to [`MAX_ANNOTATED`] classes), and the per-class accuracy as sorted
//! horizontal bars (the best and the worst [`BARS_EACH_END`] when there are more than [`MAX_BARS`]).

use crate::evaluator::EvalReport;
use anyhow::Result;
use skipblock_data::plot::{palette, BarChart, Heatmap};
use std::path::Path;

/// Up to this many classes, the confusion matrix shows its values.
pub const MAX_ANNOTATED: usize = 30;
/// Up to this many classes, every class gets a bar.
pub const MAX_BARS: usize = 100;
/// Beyond [`MAX_BARS`], the bars of this many best and this many worst classes.
pub const BARS_EACH_END: usize = 50;

/// The confusion matrix: true classes as rows, predictions as columns, fractions of each true class.
pub fn confusion_heatmap(report: &EvalReport) -> Heatmap {
    let names: Vec<String> = report.per_class.iter().map(|c| c.class.clone()).collect();
    Heatmap {
        title: format!("confusion matrix, per true class (top-1 {:.1}%)", report.top1 * 100.0),
        x_label: "predicted".into(),
        y_label: "true".into(),
        x_names: names.clone(),
        y_names: names,
        values: report.confusion_matrix.normalized(),
        annotate: report.per_class.len() <= MAX_ANNOTATED,
    }
}

/// Per-class accuracy, best first (classes without samples last, marked "–"), with the mean over the
/// classes that have samples as a dashed line.
pub fn accuracy_bars(report: &EvalReport) -> BarChart {
    let mut bars: Vec<(String, f64)> =
        report.per_class.iter().map(|c| (c.class.clone(), if c.total == 0 { f64::NAN } else { c.accuracy })).collect();
    bars.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)),
        (x, y) => x.cmp(&y).then_with(|| a.0.cmp(&b.0)),
    });
    let measured: Vec<f64> = bars.iter().map(|b| b.1).filter(|v| !v.is_nan()).collect();
    let mean = if measured.is_empty() { f64::NAN } else { measured.iter().sum::<f64>() / measured.len() as f64 };
    let n = bars.len();
    let title = if n > MAX_BARS {
        let hidden = n - 2 * BARS_EACH_END;
        bars.drain(BARS_EACH_END..n - BARS_EACH_END);
        bars.insert(BARS_EACH_END, (format!("… {hidden} more …"), f64::NAN));
        format!("per-class accuracy: the {BARS_EACH_END} best and worst of {n} classes")
    } else {
        "per-class accuracy".to_string()
    };
    BarChart {
        title,
        x_label: "top-1 accuracy".into(),
        bars,
        range: (0.0, 1.0),
        percent: true,
        color: palette(0),
        reference: Some(("mean over classes".into(), mean)),
    }
}

/// Draws the confusion matrix and saves it (PNG), atomically.
pub fn save_confusion_matrix(report: &EvalReport, path: &Path) -> Result<()> {
    confusion_heatmap(report).save(path)
}

/// Draws the per-class accuracy bars and saves them (PNG), atomically.
pub fn save_per_class_accuracy(report: &EvalReport, path: &Path) -> Result<()> {
    accuracy_bars(report).save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confusion::ConfusionMatrix;
    use crate::evaluator::ClassAccuracy;

    /// `n` classes, class i right (n - i) times out of n, its errors predicted as the next class; the
    /// last class has no samples.
    fn report(n: usize) -> EvalReport {
        let mut m = ConfusionMatrix::new(n);
        for i in 0..n - 1 {
            for k in 0..n {
                m.add(i, if k < n - i { i } else { (i + 1) % n }).unwrap();
            }
        }
        let per_class = (0..n)
            .map(|i| {
                let (correct, total) = (m.correct(i), m.total(i));
                let accuracy = if total == 0 { 0.0 } else { correct as f64 / total as f64 };
                ClassAccuracy { class: format!("class {i}"), correct, total, accuracy }
            })
            .collect();
        EvalReport { samples: n * (n - 1), top1: 0.5, top5: 0.9, loss: 1.0, per_class, confusion_matrix: m, skipped: 0 }
    }

    #[test]
    fn bars_are_sorted_best_first_and_many_classes_are_cut() {
        let bars = accuracy_bars(&report(5));
        let names: Vec<&str> = bars.bars.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(names, ["class 0", "class 1", "class 2", "class 3", "class 4"]);
        assert!(bars.bars[4].1.is_nan(), "no samples: last, no bar");
        assert!((bars.reference.as_ref().unwrap().1 - (1.0 + 0.8 + 0.6 + 0.4) / 4.0).abs() < 1e-12);
        let many = accuracy_bars(&report(120));
        assert_eq!(many.bars.len(), 2 * BARS_EACH_END + 1);
        assert_eq!(many.bars[BARS_EACH_END].0, "… 20 more …");
        assert!(many.title.contains("of 120 classes"));
    }

    #[test]
    fn pictures_are_saved_and_show_the_diagonal() {
        let dir = tempfile::tempdir().unwrap();
        let r = report(6);
        let heatmap = confusion_heatmap(&r);
        assert!(heatmap.annotate);
        assert_eq!(heatmap.values[0][0], 1.0);
        save_confusion_matrix(&r, &dir.path().join("confusion_matrix.png")).unwrap();
        save_per_class_accuracy(&r, &dir.path().join("per_class_accuracy.png")).unwrap();
        let img = skipblock_data::read_image(&dir.path().join("per_class_accuracy.png")).unwrap();
        assert_eq!((img.width, img.height), accuracy_bars(&r).size().unwrap());
        assert!(img.data.chunks(3).filter(|p| *p == palette(0)).count() > 1000);
        let big = report(40);
        assert!(!confusion_heatmap(&big).annotate, "no numbers in a 40-class matrix");
        save_confusion_matrix(&big, &dir.path().join("big.png")).unwrap();
    }

    /// Writes the pictures of a 12-class and a 120-class report to `$SKIPBLOCK_CHARTS` (default
    /// `/tmp/skipblock-charts`) to look at: `cargo test --release -p skipblock-classify --lib gallery --
    /// --ignored`.
    #[test]
    #[ignore = "writes pictures to look at"]
    fn gallery() {
        let out = std::path::PathBuf::from(
            std::env::var("SKIPBLOCK_CHARTS").unwrap_or_else(|_| "/tmp/skipblock-charts".into()),
        );
        for n in [12, 120] {
            let r = report(n);
            save_confusion_matrix(&r, &out.join(format!("classify_{n}_confusion_matrix.png"))).unwrap();
            save_per_class_accuracy(&r, &out.join(format!("classify_{n}_per_class_accuracy.png"))).unwrap();
        }
    }
}

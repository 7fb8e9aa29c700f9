//! F1 against the score threshold (ultralytics' F1–confidence curve). Keeping a class's detections that
//! score at least `t` keeps a prefix of its PR sequence ([`ClassResult`]'s `scores`, `precision`,
//! `recall`, by decreasing score, VOC matching rules): precision and recall are those after the last
//! kept detection, F1 their harmonic mean. Keeping none is precision 1, recall 0, F1 0. The mean over
//! the classes with ground truth picks the best threshold: unsmoothed, the highest of equal maxima (the
//! end of the plateau, where the last kept detection scores).

use super::voc_ap::{ClassResult, EvalResult};

/// The harmonic mean of precision and recall (0 when both are 0).
pub fn f1_score(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// Precision, recall and F1 of `class` when only its detections scoring at least `threshold` are kept;
/// `None` for a class without ground truth (recall is undefined).
pub fn f1_at(class: &ClassResult, threshold: f32) -> Option<(f64, f64, f64)> {
    if class.num_gt == 0 {
        return None;
    }
    let kept = class.scores.partition_point(|&s| s >= threshold);
    if kept == 0 {
        return Some((1.0, 0.0, 0.0));
    }
    let (p, r) = (class.precision[kept - 1] as f64, class.recall[kept - 1] as f64);
    Some((p, r, f1_score(p, r)))
}

/// F1 of every class over a grid of score thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct F1Curves {
    /// Score thresholds, increasing: 0–1, widened to the scores when some fall outside.
    pub thresholds: Vec<f32>,
    /// F1 at each threshold, per class (`None`: the class has no ground truth).
    pub per_class: Vec<Option<Vec<f64>>>,
    /// Mean F1 over the classes with ground truth at each threshold (empty when there are none).
    pub mean: Vec<f64>,
    /// The highest threshold with the highest mean F1, and that F1.
    pub best: Option<(f32, f64)>,
}

/// F1 curves of every class of `result` at `points` thresholds (at least 2).
pub fn f1_curves(result: &EvalResult, points: usize) -> F1Curves {
    let scores = result.per_class.iter().flat_map(|c| c.scores.iter().copied());
    let (lo, hi) = scores.fold((0.0f32, 1.0f32), |(lo, hi), s| (lo.min(s), hi.max(s)));
    let n = points.max(2);
    let thresholds: Vec<f32> = (0..n).map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32).collect();
    let per_class: Vec<Option<Vec<f64>>> = result
        .per_class
        .iter()
        .map(|c| (c.num_gt > 0).then(|| thresholds.iter().map(|&t| f1_at(c, t).map_or(0.0, |v| v.2)).collect()))
        .collect();
    let counted: Vec<&Vec<f64>> = per_class.iter().flatten().collect();
    let mean: Vec<f64> = if counted.is_empty() {
        Vec::new()
    } else {
        (0..n).map(|i| counted.iter().map(|c| c[i]).sum::<f64>() / counted.len() as f64).collect()
    };
    let best = mean
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, f64)>, (i, &f)| match best {
            Some((_, b)) if b > f => best,
            _ => Some((i, f)),
        })
        .map(|(i, f)| (thresholds[i], f));
    F1Curves { thresholds, per_class, mean, best }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voc_map::voc_ap::{mean_average_precision, DetectionRecord, GroundTruth, Metric};

    const B: [f32; 4] = [10.0, 10.0, 50.0, 50.0];
    const FAR: [f32; 4] = [200.0, 200.0, 240.0, 240.0];

    fn det(image: &str, class: usize, score: f32, bbox: [f32; 4]) -> DetectionRecord {
        DetectionRecord { image_id: image.into(), class, score, bbox }
    }

    /// voc_ap_tests' sequence: scores .9 .8 .7 .6 .5 give precision 1 .5 2/3 .5 .6 and recall .25 .25 .5
    /// .5 .75 (four ground truths). Class 1 has no ground truth.
    fn result() -> EvalResult {
        let gts: Vec<GroundTruth> = ["a", "b", "c", "d"]
            .iter()
            .map(|i| GroundTruth { image_id: i.to_string(), class: 0, bbox: B, difficult: false })
            .collect();
        let dets = vec![
            det("c", 0, 0.5, B),
            det("a", 0, 0.9, B),
            det("z", 0, 0.8, B),
            det("b", 0, 0.7, B),
            det("c", 0, 0.6, FAR),
            det("a", 1, 0.95, B),
        ];
        let names = vec!["x".to_string(), "y".to_string()];
        mean_average_precision(&gts, &dets, &names, Metric::Voc07, 0.5).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn f1_at_a_threshold_keeps_the_detections_scoring_at_least_it() {
        let r = result();
        let c = &r.per_class[0];
        assert_eq!(c.scores, vec![0.9, 0.8, 0.7, 0.6, 0.5]);
        assert_eq!(f1_at(c, 0.95), Some((1.0, 0.0, 0.0)), "nothing kept");
        let (p, rec, f) = f1_at(c, 0.9).unwrap();
        assert!(close(p, 1.0) && close(rec, 0.25) && close(f, 0.4), "{p} {rec} {f}");
        assert!(close(f1_at(c, 0.75).unwrap().2, 1.0 / 3.0), "p .5, r .25");
        assert!(close(f1_at(c, 0.65).unwrap().2, 4.0 / 7.0), "p 2/3, r .5");
        assert!(close(f1_at(c, 0.0).unwrap().2, 2.0 / 3.0), "p .6, r .75");
        assert_eq!(f1_at(&r.per_class[1], 0.5), None, "no ground truth");
        assert_eq!(f1_score(0.0, 0.0), 0.0);
    }

    #[test]
    fn curves_average_the_classes_with_ground_truth_and_find_the_best_threshold() {
        let curves = f1_curves(&result(), 101);
        assert_eq!(curves.thresholds.len(), 101);
        assert_eq!((curves.thresholds[0], curves.thresholds[100]), (0.0, 1.0));
        assert!(curves.per_class[1].is_none());
        assert_eq!(curves.mean, *curves.per_class[0].as_ref().unwrap(), "one class counts");
        let (t, f) = curves.best.unwrap();
        assert!(close(f, 2.0 / 3.0) && t == 0.5, "all five kept up to 0.5: {t} {f}");

        let empty = EvalResult { per_class: vec![], map: 0.0, metric: Metric::Voc07, iou_threshold: 0.5 };
        let curves = f1_curves(&empty, 0);
        assert_eq!(curves.thresholds, vec![0.0, 1.0]);
        assert!(curves.mean.is_empty() && curves.best.is_none());
    }
}

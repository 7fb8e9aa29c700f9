//! PASCAL VOC average precision with the devkit's semantics (py-faster-rcnn's `voc_eval.py`).
//!
//! Boxes are VOC's 1-based inclusive pixel boxes `[xmin, ymin, xmax, ymax]`; overlaps use the devkit's
//! "+1 pixel" IoU ([`iou_voc`]). Per class:
//!
//! * detections are sorted by decreasing score with a **stable** sort: equal scores keep their input
//!   order (the devkit's `np.argsort(-confidence)` leaves tie order unspecified; we pin it);
//! * each detection is compared with every ground truth of its image and class, difficult ones included;
//!   the best overlap (first one on ties, like `np.argmax`) decides: IoU `> iou_threshold` (strictly)
//!   against an unmatched, non-difficult ground truth is a true positive (and matches it); the same
//!   against an already matched one is a false positive (a duplicate); against a difficult one it counts
//!   neither way; an IoU `<= iou_threshold`, or an image without ground truth of that class (including
//!   images the ground truth never mentions), is a false positive;
//! * recall = tp / npos (npos = non-difficult ground truths), precision = tp / max(tp + fp, eps), both
//!   cumulative in f64;
//! * AP by [`Metric::Voc07`] (11-point: mean over t = i·0.1, i = 0..10 — computed as `i as f64 * 0.1`
//!   like `np.arange(0, 1.1, 0.1)`, so t₃ = 0.30000000000000004 — of the best precision at recall ≥ t)
//!   or [`Metric::Voc12`] (area under the monotone precision envelope).
//!
//! Classes without ground truth: the devkit divides by npos = 0 (NaN recall, AP 0 or NaN). Here such a
//! class gets AP 0.0 and `num_gt: 0`; it counts in the mAP if it has any ground truth (difficult only)
//! or any detection, and is left out of the mAP when it has neither (it was simply not evaluated).
//! A class with ground truth but no detection has AP 0 and counts.

use anyhow::{bail, Result};
use skipblock_core::boxes::iou_voc;
use std::collections::HashMap;

/// One annotated object.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub image_id: String,
    /// Index into the class names.
    pub class: usize,
    /// VOC 1-based inclusive pixels `[xmin, ymin, xmax, ymax]`.
    pub bbox: [f32; 4],
    pub difficult: bool,
}

/// One detection, as in a `comp4_det_*` result file.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionRecord {
    pub image_id: String,
    /// Index into the class names.
    pub class: usize,
    pub score: f32,
    /// VOC 1-based inclusive pixels `[xmin, ymin, xmax, ymax]`.
    pub bbox: [f32; 4],
}

/// How AP summarises a precision–recall curve (`[eval] metric`, `--metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// VOC2007: 11-point interpolated AP.
    Voc07,
    /// VOC2010 and later: area under the monotone precision envelope.
    Voc12,
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Metric::Voc07 => "voc07",
            Metric::Voc12 => "voc12",
        })
    }
}

/// The evaluation of one class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassResult {
    pub name: String,
    pub ap: f64,
    /// Non-difficult ground truths.
    pub num_gt: usize,
    pub num_det: usize,
    /// The class's detection scores, decreasing (the order `precision` and `recall` follow).
    pub scores: Vec<f32>,
    /// Cumulative precision after each detection, by decreasing score.
    pub precision: Vec<f32>,
    /// Cumulative recall after each detection (empty when `num_gt` is 0).
    pub recall: Vec<f32>,
    /// Whether `ap` counts in the mAP (false only for a class with neither ground truth nor detections).
    pub in_map: bool,
}

/// Per-class results and their mean.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub per_class: Vec<ClassResult>,
    /// Mean AP over the classes with `in_map` (0 when there are none).
    pub map: f64,
    /// How AP was computed, and the IoU a true positive needs (more than this).
    pub metric: Metric,
    pub iou_threshold: f32,
}

/// AP of a precision/recall sequence, as the devkit's `voc_ap(rec, prec, use_07_metric)`.
pub fn voc_ap(recall: &[f64], precision: &[f64], metric: Metric) -> f64 {
    match metric {
        Metric::Voc07 => (0..11)
            .map(|i| {
                let t = i as f64 * 0.1;
                let p = recall
                    .iter()
                    .zip(precision)
                    .filter(|(r, _)| **r >= t)
                    .map(|(_, p)| *p)
                    .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))));
                p.unwrap_or(0.0) / 11.0
            })
            .sum(),
        Metric::Voc12 => {
            let mrec: Vec<f64> =
                std::iter::once(0.0).chain(recall.iter().copied()).chain(std::iter::once(1.0)).collect();
            let mut mpre: Vec<f64> =
                std::iter::once(0.0).chain(precision.iter().copied()).chain(std::iter::once(0.0)).collect();
            for i in (1..mpre.len()).rev() {
                mpre[i - 1] = mpre[i - 1].max(mpre[i]);
            }
            (0..mrec.len() - 1).filter(|&i| mrec[i + 1] != mrec[i]).map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1]).sum()
        }
    }
}

/// Evaluates `dets` against `gts` (see the module doc for the exact rules).
///
/// Errors on a class index outside `class_names` or a non-finite score or box.
pub fn mean_average_precision(
    gts: &[GroundTruth],
    dets: &[DetectionRecord],
    class_names: &[String],
    metric: Metric,
    iou_threshold: f32,
) -> Result<EvalResult> {
    let nc = class_names.len();
    for g in gts {
        if g.class >= nc {
            bail!("ground truth in image '{}' has class index {} but there are {nc} classes", g.image_id, g.class);
        }
        if !g.bbox.iter().all(|v| v.is_finite()) {
            bail!("ground truth in image '{}' has a non-finite box {:?}", g.image_id, g.bbox);
        }
    }
    for d in dets {
        if d.class >= nc {
            bail!("detection in image '{}' has class index {} but there are {nc} classes", d.image_id, d.class);
        }
        if !d.score.is_finite() || !d.bbox.iter().all(|v| v.is_finite()) {
            bail!("detection in image '{}' has a non-finite score {} or box {:?}", d.image_id, d.score, d.bbox);
        }
    }

    // Ground truths grouped by (image, class), in input order (the devkit's per-image object order).
    let mut groups: HashMap<(&str, usize), Vec<usize>> = HashMap::new();
    let mut npos = vec![0usize; nc];
    let mut any_gt = vec![false; nc];
    for (i, g) in gts.iter().enumerate() {
        groups.entry((g.image_id.as_str(), g.class)).or_default().push(i);
        any_gt[g.class] = true;
        if !g.difficult {
            npos[g.class] += 1;
        }
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); nc];
    for (i, d) in dets.iter().enumerate() {
        by_class[d.class].push(i);
    }

    let mut matched = vec![false; gts.len()];
    let mut per_class = Vec::with_capacity(nc);
    for (c, order) in by_class.iter_mut().enumerate() {
        // `sort_by` is stable: ties keep input order.
        order.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        let (mut rec, mut prec) = (Vec::with_capacity(order.len()), Vec::with_capacity(order.len()));
        for &di in order.iter() {
            let d = &dets[di];
            let mut best: Option<(f32, usize)> = None;
            if let Some(cands) = groups.get(&(d.image_id.as_str(), c)) {
                for &gi in cands {
                    let ov = iou_voc(&d.bbox, &gts[gi].bbox);
                    if best.is_none_or(|(b, _)| ov > b) {
                        best = Some((ov, gi));
                    }
                }
            }
            match best {
                Some((ov, gi)) if ov > iou_threshold => {
                    if !gts[gi].difficult {
                        if matched[gi] {
                            fp += 1.0;
                        } else {
                            matched[gi] = true;
                            tp += 1.0;
                        }
                    }
                }
                _ => fp += 1.0,
            }
            rec.push(tp / npos[c] as f64);
            prec.push(tp / (tp + fp).max(f64::EPSILON));
        }
        let ap = if npos[c] == 0 { 0.0 } else { voc_ap(&rec, &prec, metric) };
        per_class.push(ClassResult {
            name: class_names[c].clone(),
            ap,
            num_gt: npos[c],
            num_det: order.len(),
            scores: order.iter().map(|&di| dets[di].score).collect(),
            precision: prec.iter().map(|&p| p as f32).collect(),
            recall: if npos[c] == 0 { Vec::new() } else { rec.iter().map(|&r| r as f32).collect() },
            in_map: any_gt[c] || !order.is_empty(),
        });
    }
    let counted: Vec<f64> = per_class.iter().filter(|r| r.in_map).map(|r| r.ap).collect();
    let map = if counted.is_empty() { 0.0 } else { counted.iter().sum::<f64>() / counted.len() as f64 };
    Ok(EvalResult { per_class, map, metric, iou_threshold })
}

#[cfg(test)]
#[path = "voc_ap_tests.rs"]
mod tests;

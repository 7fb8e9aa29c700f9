//! The detection confusion matrix, as ultralytics draws it: (classes + background) × (classes +
//! background) counts at a confidence and an IoU threshold.
//!
//! Per image, the detections scoring above `conf` are matched to the ground truths greedily by IoU
//! (VOC's +1-pixel IoU, more than `iou`), one-to-one and whatever the classes: the highest IoU first.
//! A matched pair counts at (predicted class, true class), right or wrong; an unmatched ground truth at
//! (background, true class), a miss; an unmatched detection at (predicted class, background), a false
//! positive. Difficult ground truths are ignored as in VOC: they take part in the matching, but a
//! detection matched to one counts nowhere, and missing one is no miss.

use super::voc_ap::{DetectionRecord, GroundTruth};
use anyhow::{bail, Result};
use skipblock_core::boxes::iou_voc;
use std::collections::BTreeMap;

/// The confidence a detection needs (more than this) by default, as ultralytics.
pub const DEFAULT_CONF: f32 = 0.25;
/// The IoU a match needs (more than this) by default, as ultralytics.
pub const DEFAULT_IOU: f32 = 0.45;

/// Counts of (predicted, true) class pairs over a split.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DetectionConfusion {
    /// Class names; the background is index `classes.len()`.
    pub classes: Vec<String>,
    /// `counts[predicted][true]`, `classes.len() + 1` square, the background last.
    pub counts: Vec<Vec<usize>>,
    /// Detections count when they score more than this.
    pub conf: f32,
    /// A detection and a ground truth match when their IoU is more than this.
    pub iou: f32,
}

impl DetectionConfusion {
    /// Counts `dets` against `gts` (see the module doc). Errors on a class index outside `classes`.
    pub fn compute(
        gts: &[GroundTruth],
        dets: &[DetectionRecord],
        classes: &[String],
        conf: f32,
        iou: f32,
    ) -> Result<Self> {
        let nc = classes.len();
        if let Some(g) = gts.iter().find(|g| g.class >= nc) {
            bail!("ground truth in image '{}' has class index {} but there are {nc} classes", g.image_id, g.class);
        }
        if let Some(d) = dets.iter().find(|d| d.class >= nc) {
            bail!("detection in image '{}' has class index {} but there are {nc} classes", d.image_id, d.class);
        }
        type Image<'a> = (Vec<&'a GroundTruth>, Vec<&'a DetectionRecord>);
        let mut images: BTreeMap<&str, Image> = BTreeMap::new();
        for g in gts {
            images.entry(&g.image_id).or_default().0.push(g);
        }
        for d in dets.iter().filter(|d| d.score > conf) {
            images.entry(&d.image_id).or_default().1.push(d);
        }
        let mut counts = vec![vec![0usize; nc + 1]; nc + 1];
        for (gts, dets) in images.values() {
            let matches = match_greedily(gts, dets, iou);
            for (gi, g) in gts.iter().enumerate() {
                match matches.iter().find(|m| m.0 == gi) {
                    _ if g.difficult => {}
                    Some(&(_, di)) => counts[dets[di].class][g.class] += 1,
                    None => counts[nc][g.class] += 1,
                }
            }
            for (di, d) in dets.iter().enumerate() {
                if !matches.iter().any(|m| m.1 == di) {
                    counts[d.class][nc] += 1;
                }
            }
        }
        Ok(DetectionConfusion { classes: classes.to_vec(), counts, conf, iou })
    }

    /// Row and column names: the classes, then "background".
    pub fn labels(&self) -> Vec<String> {
        self.classes.iter().cloned().chain(std::iter::once("background".to_string())).collect()
    }

    /// `counts` as fractions of each true class (column): `[predicted][true]`; NaN in a column with no
    /// counts.
    pub fn normalized(&self) -> Vec<Vec<f64>> {
        let n = self.counts.len();
        let totals: Vec<usize> = (0..n).map(|t| self.counts.iter().map(|row| row[t]).sum()).collect();
        self.counts
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&totals)
                    .map(|(&c, &total)| if total == 0 { f64::NAN } else { c as f64 / total as f64 })
                    .collect()
            })
            .collect()
    }
}

/// One image's matches `(ground truth, detection)` (indices into the slices): pairs with IoU above
/// `iou`, the highest IoU first (ties: lower ground truth, then lower detection index), one-to-one.
fn match_greedily(gts: &[&GroundTruth], dets: &[&DetectionRecord], iou: f32) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (gi, g) in gts.iter().enumerate() {
        for (di, d) in dets.iter().enumerate() {
            let v = iou_voc(&d.bbox, &g.bbox);
            if v > iou {
                pairs.push((v, gi, di));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut gt_used, mut det_used) = (vec![false; gts.len()], vec![false; dets.len()]);
    let mut matches = Vec::new();
    for (_, gi, di) in pairs {
        if !gt_used[gi] && !det_used[di] {
            gt_used[gi] = true;
            det_used[di] = true;
            matches.push((gi, di));
        }
    }
    matches
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAT: usize = 0;
    const DOG: usize = 1;
    const BG: usize = 2;
    const B: [f32; 4] = [10.0, 10.0, 50.0, 50.0];
    /// IoU with `B`: 41·36 / (41·41 + 41·41 − 41·36) ≈ 0.78.
    const SHIFTED: [f32; 4] = [10.0, 15.0, 50.0, 55.0];
    const FAR: [f32; 4] = [200.0, 200.0, 240.0, 240.0];

    fn gt(image: &str, class: usize, bbox: [f32; 4], difficult: bool) -> GroundTruth {
        GroundTruth { image_id: image.into(), class, bbox, difficult }
    }
    fn det(image: &str, class: usize, score: f32, bbox: [f32; 4]) -> DetectionRecord {
        DetectionRecord { image_id: image.into(), class, score, bbox }
    }

    /// The counts as `(predicted, true, count)`, non-zero only.
    fn cells(gts: &[GroundTruth], dets: &[DetectionRecord]) -> Vec<(usize, usize, usize)> {
        let names = vec!["cat".to_string(), "dog".to_string()];
        let m = DetectionConfusion::compute(gts, dets, &names, DEFAULT_CONF, DEFAULT_IOU).unwrap();
        assert_eq!(m.counts.len(), 3);
        let mut out = Vec::new();
        for (p, row) in m.counts.iter().enumerate() {
            for (t, &c) in row.iter().enumerate() {
                if c > 0 {
                    out.push((p, t, c));
                }
            }
        }
        out
    }

    #[test]
    fn hand_worked_cells() {
        // A correct match.
        assert_eq!(cells(&[gt("a", CAT, B, false)], &[det("a", CAT, 0.9, SHIFTED)]), vec![(CAT, CAT, 1)]);
        // The right box with the wrong class counts as a confusion, not a miss and a false positive.
        assert_eq!(cells(&[gt("a", CAT, B, false)], &[det("a", DOG, 0.9, B)]), vec![(DOG, CAT, 1)]);
        // A miss.
        assert_eq!(cells(&[gt("a", CAT, B, false)], &[]), vec![(BG, CAT, 1)]);
        // A false positive: far away, or in another image.
        assert_eq!(
            cells(&[gt("a", CAT, B, false)], &[det("a", DOG, 0.9, FAR), det("b", CAT, 0.3, B)]),
            vec![(CAT, BG, 1), (DOG, BG, 1), (BG, CAT, 1)]
        );
        // Below the confidence threshold (0.25, strictly above needed): as if absent, the cat is missed.
        assert_eq!(cells(&[gt("a", CAT, B, false)], &[det("a", CAT, 0.25, B)]), vec![(BG, CAT, 1)]);
    }

    #[test]
    fn matching_is_one_to_one_by_highest_iou() {
        // The exact box wins over the higher-scoring shifted one, which is then a false positive.
        let dets = [det("a", DOG, 0.9, SHIFTED), det("a", CAT, 0.5, B)];
        assert_eq!(cells(&[gt("a", CAT, B, false)], &dets), vec![(CAT, CAT, 1), (DOG, BG, 1)]);
        // Two ground truths, two detections: each finds its own.
        let gts = [gt("a", CAT, B, false), gt("a", DOG, FAR, false)];
        let dets = [det("a", DOG, 0.8, FAR), det("a", CAT, 0.7, B)];
        assert_eq!(cells(&gts, &dets), vec![(CAT, CAT, 1), (DOG, DOG, 1)]);
    }

    #[test]
    fn difficult_ground_truths_count_nowhere() {
        assert_eq!(cells(&[gt("a", CAT, B, true)], &[det("a", DOG, 0.9, B)]), vec![]);
        assert_eq!(cells(&[gt("a", CAT, B, true)], &[]), vec![]);
    }

    #[test]
    fn columns_normalise_per_true_class() {
        let names = vec!["cat".to_string(), "dog".to_string()];
        let gts = [gt("a", CAT, B, false), gt("b", CAT, B, false), gt("c", CAT, B, false), gt("d", CAT, B, false)];
        let dets = [det("a", CAT, 0.9, B), det("b", CAT, 0.9, B), det("c", DOG, 0.9, B), det("e", DOG, 0.9, B)];
        let m = DetectionConfusion::compute(&gts, &dets, &names, DEFAULT_CONF, DEFAULT_IOU).unwrap();
        assert_eq!(m.labels(), ["cat", "dog", "background"]);
        let f = m.normalized();
        assert_eq!([f[CAT][CAT], f[DOG][CAT], f[BG][CAT]], [0.5, 0.25, 0.25]);
        assert!(f[CAT][DOG].is_nan(), "no dog in the ground truth");
        assert_eq!([f[CAT][BG], f[DOG][BG]], [0.0, 1.0], "the false positives");
        let bad = DetectionConfusion::compute(&gts, &[det("a", 2, 0.9, B)], &names, 0.25, 0.45);
        assert!(bad.is_err());
    }
}

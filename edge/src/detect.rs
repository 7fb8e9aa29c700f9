//! Detections from a detector's outputs (`boxes [1, P, 4]` normalised corners, `scores [1, P, C]` softmax
//! with column 0 the background), in the order and form `skipblock detect predict` reports them.
//!
//! A file exported with `--nms` has a `selected` output (ONNX `NonMaxSuppression`, rows `(batch, class,
//! box)`): [`from_selected`] gathers its scores, sorts them (score descending, ties the lower label
//! first) and keeps `max_det`. Otherwise, or when the command's thresholds are not reachable from the
//! baked ones, [`per_class_nms`] is the libtorch predictor's postprocessing in plain Rust: per class the
//! scores above the threshold on valid boxes (at most `candidates` of them, the best), greedy NMS, then
//! the same sort and cut.

use serde::Serialize;

/// One detection on the network's normalised frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in [0, 1].
    pub bbox: [f32; 4],
    /// 1-based (0 is the background).
    pub label: usize,
    pub score: f32,
}

/// A detection in the image's pixels (the fields of `skipblock_detect::detector::PixelDetection`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PixelDetection {
    /// `[xmin, ymin, xmax, ymax]`, 0-based continuous pixels.
    pub bbox: [f32; 4],
    /// 0-based index into the class names.
    pub class: usize,
    pub name: String,
    pub score: f32,
}

/// One `--json` line (the fields of `skipblock detect predict`'s record; `frame` is always null here).
#[derive(Serialize)]
pub struct Record<'a> {
    pub source: String,
    pub frame: Option<usize>,
    pub width: u32,
    pub height: u32,
    pub detections: &'a [PixelDetection],
    /// Preprocessing, inference and postprocessing of this image, in milliseconds.
    pub ms: f64,
}

/// The thresholds of a command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Scores at or below this are dropped.
    pub conf: f32,
    /// Per-class NMS IoU.
    pub iou: f32,
    /// Detections kept per image.
    pub max_det: usize,
}

impl Thresholds {
    /// Best-scoring candidates per class that enter NMS (as `detect predict`).
    pub fn candidates(&self) -> usize {
        self.max_det.max(200)
    }
}

fn sort_and_cut(dets: &mut Vec<Detection>, max_det: usize) {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.label.cmp(&b.label)));
    dets.truncate(max_det);
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Intersection over union of two corner boxes (0 for an empty union).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

fn is_valid(b: &[f32; 4]) -> bool {
    b[2] > b[0] && b[3] > b[1] && b.iter().all(|v| v.is_finite())
}

/// The detections of one image from `NonMaxSuppression`'s `selected` rows (`[M, 3]`, batch 0 only),
/// `boxes` `[P × 4]` and `scores` `[P × C]` row-major; scores at or below `t.conf` dropped.
pub fn from_selected(
    selected: &[i64],
    boxes: &[f32],
    scores: &[f32],
    num_classes: usize,
    t: &Thresholds,
) -> Vec<Detection> {
    let priors = boxes.len() / 4;
    let mut dets: Vec<Detection> = selected
        .chunks_exact(3)
        .filter(|row| row[0] == 0)
        .filter_map(|row| {
            let (label, p) = (row[1] as usize + 1, row[2] as usize);
            (label < num_classes && p < priors).then(|| Detection {
                bbox: [boxes[p * 4], boxes[p * 4 + 1], boxes[p * 4 + 2], boxes[p * 4 + 3]],
                label,
                score: scores[p * num_classes + label],
            })
        })
        .filter(|d| d.score > t.conf)
        .collect();
    sort_and_cut(&mut dets, t.max_det);
    dets
}

/// The libtorch predictor's postprocessing of one image in plain Rust: `boxes` `[P × 4]`, `scores`
/// `[P × C]` row-major.
pub fn per_class_nms(boxes: &[f32], scores: &[f32], num_classes: usize, t: &Thresholds) -> Vec<Detection> {
    let bx: Vec<[f32; 4]> = boxes.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
    let mut dets = Vec::new();
    for class in 1..num_classes {
        let mut cand: Vec<(usize, f32)> = (0..bx.len())
            .map(|p| (p, scores[p * num_classes + class]))
            .filter(|&(p, s)| s > t.conf && is_valid(&bx[p]))
            .collect();
        // Best first, ties the lower prior first (the order the greedy scan visits them).
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        cand.truncate(t.candidates());
        let mut suppressed = vec![false; cand.len()];
        for i in 0..cand.len() {
            if suppressed[i] {
                continue;
            }
            let (p, score) = cand[i];
            dets.push(Detection { bbox: bx[p], label: class, score });
            for j in i + 1..cand.len() {
                if !suppressed[j] && iou(&bx[p], &bx[cand[j].0]) > t.iou {
                    suppressed[j] = true;
                }
            }
        }
    }
    sort_and_cut(&mut dets, t.max_det);
    dets
}

/// Detections scaled to a `width`×`height` image, clipped to it, named (`class{i}` where the file has no
/// name), as `skipblock_detect::detector::to_pixels`.
pub fn to_pixels(dets: &[Detection], width: u32, height: u32, class_names: &[String]) -> Vec<PixelDetection> {
    let (w, h) = (width as f32, height as f32);
    dets.iter()
        .map(|d| {
            let class = d.label.saturating_sub(1);
            let b = d.bbox;
            PixelDetection {
                bbox: [
                    (b[0] * w).clamp(0.0, w),
                    (b[1] * h).clamp(0.0, h),
                    (b[2] * w).clamp(0.0, w),
                    (b[3] * h).clamp(0.0, h),
                ],
                class,
                name: class_names.get(class).cloned().unwrap_or_else(|| format!("class{class}")),
                score: d.score,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four boxes: two overlapping (IoU 0.905), one apart, one degenerate; three classes.
    fn fixture() -> (Vec<f32>, Vec<f32>) {
        let boxes = vec![
            0.1, 0.1, 0.5, 0.5, //
            0.12, 0.1, 0.52, 0.5, //
            0.6, 0.6, 0.9, 0.9, //
            0.3, 0.3, 0.3, 0.4,
        ];
        let scores = vec![
            0.1, 0.8, 0.1, //
            0.2, 0.7, 0.1, //
            0.3, 0.1, 0.6, //
            0.0, 0.9, 0.1,
        ];
        (boxes, scores)
    }

    #[test]
    fn greedy_nms_per_class_then_sorted_and_cut() {
        let (boxes, scores) = fixture();
        let t = Thresholds { conf: 0.25, iou: 0.45, max_det: 100 };
        let d = per_class_nms(&boxes, &scores, 3, &t);
        // The degenerate box is dropped, box 1 suppressed by box 0, box 2 is class 2.
        assert_eq!(d.iter().map(|d| (d.label, d.score)).collect::<Vec<_>>(), vec![(1, 0.8), (2, 0.6)]);
        let loose = Thresholds { iou: 0.95, ..t };
        assert_eq!(per_class_nms(&boxes, &scores, 3, &loose).len(), 3);
        assert_eq!(per_class_nms(&boxes, &scores, 3, &Thresholds { max_det: 1, ..t }).len(), 1);
        assert!(per_class_nms(&boxes, &scores, 3, &Thresholds { conf: 0.95, ..t }).is_empty());
    }

    #[test]
    fn selected_rows_are_gathered_like_the_predictor() {
        let (boxes, scores) = fixture();
        let t = Thresholds { conf: 0.25, iou: 0.45, max_det: 100 };
        // (batch, class index, box): class index 0 = label 1; another image's row is ignored.
        let selected = [0, 1, 2, 0, 0, 0, 1, 0, 3];
        let d = from_selected(&selected, &boxes, &scores, 3, &t);
        assert_eq!(d.iter().map(|d| (d.label, d.score)).collect::<Vec<_>>(), vec![(1, 0.8), (2, 0.6)]);
        assert_eq!(d[1].bbox, [0.6, 0.6, 0.9, 0.9]);
        let px = to_pixels(&d, 200, 100, &["cat".into()]);
        assert_eq!(px[0].bbox, [20.0, 10.0, 100.0, 50.0]);
        assert_eq!((px[0].name.as_str(), px[1].name.as_str(), px[1].class), ("cat", "class1", 1));
        assert_eq!(from_selected(&selected, &boxes, &scores, 3, &Thresholds { conf: 0.7, ..t }).len(), 1);
    }
}

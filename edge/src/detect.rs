//! Detections from a detector's outputs (`boxes [1, P, 4]` normalised corners, `scores [1, P, C]` softmax
//! with column 0 the background), in the order and form `skipblock detect predict` reports them.
//!
//! A file exported with `--nms` has a `selected` output (ONNX `NonMaxSuppression`, rows `(batch, class,
//! box)`): [`from_selected`] gathers its scores, sorts them (score descending, ties the lower label
//! first) and keeps `top_k`. Otherwise, or when the command's thresholds are not reachable from the
//! baked ones, [`per_class_nms`] runs the libtorch predictor's own host postprocessing
//! (`skipblock_pixels::predictions::postprocess_image`) on the outputs.

use skipblock_pixels::boxes::BBox;
use skipblock_pixels::predictions::{postprocess_image, sort_and_cut, Detection, PostprocessConfig};

fn corner_boxes(boxes: &[f32]) -> Vec<BBox> {
    boxes.chunks_exact(4).map(|c| BBox::new(c[0], c[1], c[2], c[3])).collect()
}

/// The detections of one image from `NonMaxSuppression`'s `selected` rows (`[M, 3]`, batch 0 only),
/// `boxes` `[P × 4]` and `scores` `[P × C]` row-major; scores at or below `cfg.score_threshold` dropped, and
/// boxes that clipping made degenerate (the predictor drops them before its NMS; ONNX's NMS keeps them).
pub fn from_selected(
    selected: &[i64],
    boxes: &[f32],
    scores: &[f32],
    num_classes: usize,
    cfg: &PostprocessConfig,
) -> Vec<Detection> {
    let boxes = corner_boxes(boxes);
    let mut dets: Vec<Detection> = selected
        .chunks_exact(3)
        .filter(|row| row[0] == 0)
        .filter_map(|row| {
            let (label, p) = (row[1] as usize + 1, row[2] as usize);
            (label < num_classes && p < boxes.len()).then(|| Detection {
                bbox: boxes[p],
                label,
                score: scores[p * num_classes + label],
            })
        })
        .filter(|d| d.score > cfg.score_threshold && d.bbox.is_valid())
        .collect();
    sort_and_cut(&mut dets, cfg.top_k);
    dets
}

/// The libtorch predictor's host postprocessing of one image: `boxes` `[P × 4]`, `scores` `[P × C]`
/// row-major.
pub fn per_class_nms(boxes: &[f32], scores: &[f32], num_classes: usize, cfg: &PostprocessConfig) -> Vec<Detection> {
    postprocess_image(&corner_boxes(boxes), scores, num_classes, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skipblock_pixels::predictions::to_pixels;

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
        let t = PostprocessConfig::for_predict(0.25, 0.45, 100);
        let d = per_class_nms(&boxes, &scores, 3, &t);
        // The degenerate box is dropped, box 1 suppressed by box 0, box 2 is class 2.
        assert_eq!(d.iter().map(|d| (d.label, d.score)).collect::<Vec<_>>(), vec![(1, 0.8), (2, 0.6)]);
        let loose = PostprocessConfig { nms_iou: 0.95, ..t };
        assert_eq!(per_class_nms(&boxes, &scores, 3, &loose).len(), 3);
        assert_eq!(per_class_nms(&boxes, &scores, 3, &PostprocessConfig { top_k: 1, ..t }).len(), 1);
        assert!(per_class_nms(&boxes, &scores, 3, &PostprocessConfig { score_threshold: 0.95, ..t }).is_empty());
    }

    #[test]
    fn selected_rows_are_gathered_like_the_predictor() {
        let (boxes, scores) = fixture();
        let t = PostprocessConfig::for_predict(0.25, 0.45, 100);
        // (batch, class index, box): class index 0 = label 1; another image's row is ignored.
        let selected = [0, 1, 2, 0, 0, 0, 1, 0, 3];
        let d = from_selected(&selected, &boxes, &scores, 3, &t);
        assert_eq!(d.iter().map(|d| (d.label, d.score)).collect::<Vec<_>>(), vec![(1, 0.8), (2, 0.6)]);
        assert_eq!(d[1].bbox, BBox::new(0.6, 0.6, 0.9, 0.9));
        let px = to_pixels(&d, 200, 100, &["cat".into()]);
        assert_eq!(px[0].bbox, [20.0, 10.0, 100.0, 50.0]);
        assert_eq!((px[0].name.as_str(), px[1].name.as_str(), px[1].class), ("cat", "class1", 1));
        assert_eq!(
            from_selected(&selected, &boxes, &scores, 3, &PostprocessConfig { score_threshold: 0.7, ..t }).len(),
            1
        );
    }
}

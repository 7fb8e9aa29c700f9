//! What the predictors answer, in plain Rust: the one definition of a prediction shared by the libtorch
//! predictors (`skipblock classify|detect predict`) and the libtorch-free one (`skipblock-edge`), so that
//! both print the same `--json` lines and postprocess detections the same way on the host.
//!
//! * classification: [`TopK`] and its `--json` line [`ClassPrediction`];
//! * detection: [`Detection`] (normalised box, 1-based label), [`PostprocessConfig`] and
//!   [`postprocess_image`] (per-class candidates and NMS, then the best `top_k`), [`PixelDetection`] and
//!   [`to_pixels`], and the `--json` line [`DetectionRecord`].

use crate::boxes::{self, BBox};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `k` most likely classes of one image, most likely first.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopK {
    pub classes: Vec<i64>,
    /// Class names where the model knows them.
    pub names: Vec<Option<String>>,
    pub probabilities: Vec<f64>,
}

/// One `classify predict --json` line: `{"image":…,"classes":[…],"names":[…],"probabilities":[…]}`.
#[derive(Serialize)]
pub struct ClassPrediction<'a> {
    pub image: &'a Path,
    #[serde(flatten)]
    pub top: &'a TopK,
}

impl ClassPrediction<'_> {
    /// The line without `--json`: `path: name 0.912, #3 0.051, …` (`#c` for an unnamed class).
    pub fn text(&self) -> String {
        let t = self.top;
        let tops: Vec<String> = (t.classes.iter().zip(&t.names).zip(&t.probabilities))
            .map(|((c, n), p)| format!("{} {p:.3}", n.clone().unwrap_or_else(|| format!("#{c}"))))
            .collect();
        format!("{}: {}", self.image.display(), tops.join(", "))
    }
}

/// The `[detect]`-time settings. Defaults: the usual SSD evaluation settings (score 0.01, NMS 0.45, 200 boxes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostprocessConfig {
    /// Class probabilities at or below this are dropped.
    pub score_threshold: f32,
    /// Per-class NMS IoU.
    pub nms_iou: f32,
    /// Detections kept per image.
    pub top_k: usize,
    /// Best-scoring candidates per class that enter NMS.
    pub candidates_per_class: usize,
}

impl Default for PostprocessConfig {
    fn default() -> Self {
        PostprocessConfig { score_threshold: 0.01, nms_iou: 0.45, top_k: 200, candidates_per_class: 200 }
    }
}

impl PostprocessConfig {
    /// The settings of `detect predict --conf --iou --max-det` (candidates per class: `max(max_det, 200)`).
    pub fn for_predict(conf: f32, iou: f32, max_det: usize) -> Self {
        PostprocessConfig {
            score_threshold: conf,
            nms_iou: iou,
            top_k: max_det,
            candidates_per_class: max_det.max(200),
        }
    }
}

/// One detected object: its box (normalised corners, clipped to [0, 1]), class (1-based), probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detection {
    pub bbox: BBox,
    pub label: usize,
    pub score: f32,
}

/// Sorts best first (ties: lower label first) and keeps `top_k`.
pub fn sort_and_cut(dets: &mut Vec<Detection>, top_k: usize) {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.label.cmp(&b.label)));
    dets.truncate(top_k);
}

/// The detections of one image on the host: `boxes` per prior (normalised corners), `scores` `[P × C]`
/// row-major softmax probabilities with column 0 the background. Per class the scores above the threshold
/// on valid boxes (at most `candidates_per_class`, the best), greedy NMS, then [`sort_and_cut`].
pub fn postprocess_image(
    boxes: &[BBox],
    scores: &[f32],
    num_classes: usize,
    cfg: &PostprocessConfig,
) -> Vec<Detection> {
    let mut dets = Vec::new();
    for class in 1..num_classes {
        let mut cand: Vec<(usize, f32)> = (0..boxes.len())
            .map(|p| (p, scores[p * num_classes + class]))
            .filter(|&(p, s)| s > cfg.score_threshold && boxes[p].is_valid())
            .collect();
        let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if cand.len() > cfg.candidates_per_class {
            if cfg.candidates_per_class == 0 {
                continue;
            }
            cand.select_nth_unstable_by(cfg.candidates_per_class - 1, by_score);
            cand.truncate(cfg.candidates_per_class);
        }
        let cb: Vec<BBox> = cand.iter().map(|&(p, _)| boxes[p]).collect();
        let cs: Vec<f32> = cand.iter().map(|&(_, s)| s).collect();
        for k in boxes::nms(&cb, &cs, cfg.nms_iou) {
            dets.push(Detection { bbox: cb[k], label: class, score: cs[k] });
        }
    }
    sort_and_cut(&mut dets, cfg.top_k);
    dets
}

/// One object found in an image, in its pixel coordinates.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PixelDetection {
    /// `[xmin, ymin, xmax, ymax]`, 0-based continuous pixels.
    pub bbox: [f32; 4],
    /// 0-based index into the class names.
    pub class: usize,
    pub name: String,
    pub score: f32,
}

/// Detections (normalised boxes, 1-based labels) in the pixels of a `width`×`height` image, with 0-based
/// classes named from `class_names` (`classN` when a name is missing).
pub fn to_pixels(dets: &[Detection], width: u32, height: u32, class_names: &[String]) -> Vec<PixelDetection> {
    let (w, h) = (width as f32, height as f32);
    dets.iter()
        .map(|det| {
            let class = det.label.saturating_sub(1);
            PixelDetection {
                bbox: det.bbox.scale(w, h).clip(w, h).to_array(),
                class,
                name: class_names.get(class).cloned().unwrap_or_else(|| format!("class{class}")),
                score: det.score,
            }
        })
        .collect()
}

/// One `detect predict --json` line (an image, or a frame of a video or webcam).
#[derive(Serialize)]
pub struct DetectionRecord<'a> {
    pub source: String,
    /// Frame index for videos and webcams.
    pub frame: Option<usize>,
    pub width: u32,
    pub height: u32,
    pub detections: &'a [PixelDetection],
    /// Preprocessing, inference and postprocessing of this image, in milliseconds.
    pub ms: f64,
}

impl DetectionRecord<'_> {
    /// The line without `--json`: `source: 2 object(s) cat 0.91, dog 0.40 (12.3 ms)`.
    pub fn text(&self) -> String {
        let names: Vec<String> = self.detections.iter().map(|d| format!("{} {:.2}", d.name, d.score)).collect();
        format!("{}: {} object(s) {} ({:.1} ms)", self.source, self.detections.len(), names.join(", "), self.ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(rows: &[[f32; 3]]) -> Vec<f32> {
        rows.iter().flatten().copied().collect()
    }

    #[test]
    fn per_class_nms_then_best_first_and_cut() {
        // Two overlapping boxes of class 1 (IoU 0.9), one of class 2 apart, one degenerate box.
        let boxes = [
            BBox::new(0.1, 0.1, 0.5, 0.5),
            BBox::new(0.1, 0.1, 0.48, 0.5),
            BBox::new(0.6, 0.6, 0.9, 0.9),
            BBox::new(0.3, 0.3, 0.3, 0.6),
        ];
        let s = scores(&[[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.3, 0.0, 0.7], [0.0, 0.0, 0.99]]);
        let cfg = PostprocessConfig::for_predict(0.25, 0.45, 100);
        let d = postprocess_image(&boxes, &s, 3, &cfg);
        assert_eq!(d.iter().map(|d| (d.label, d.score)).collect::<Vec<_>>(), vec![(1, 0.9), (2, 0.7)]);
        let loose = PostprocessConfig { nms_iou: 0.95, ..cfg };
        assert_eq!(postprocess_image(&boxes, &s, 3, &loose).len(), 3);
        assert_eq!(postprocess_image(&boxes, &s, 3, &PostprocessConfig { top_k: 1, ..cfg }).len(), 1);
        assert!(postprocess_image(&boxes, &s, 3, &PostprocessConfig { score_threshold: 0.95, ..cfg }).is_empty());
        let one = PostprocessConfig { candidates_per_class: 1, nms_iou: 0.95, ..cfg };
        assert_eq!(postprocess_image(&boxes, &s, 3, &one).len(), 2);
    }

    #[test]
    fn class_predictions_as_text_and_json() {
        let top = TopK { classes: vec![3, 0], names: vec![None, Some("cat".into())], probabilities: vec![0.75, 0.125] };
        let p = ClassPrediction { image: Path::new("a.jpg"), top: &top };
        assert_eq!(p.text(), "a.jpg: #3 0.750, cat 0.125");
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"image":"a.jpg","classes":[3,0],"names":[null,"cat"],"probabilities":[0.75,0.125]}"#
        );
    }

    #[test]
    fn pixels_are_scaled_clipped_and_named() {
        let d = [
            Detection { bbox: BBox::new(0.1, 0.2, 0.5, 1.2), label: 1, score: 0.9 },
            Detection { bbox: BBox::new(0.0, 0.0, 1.0, 1.0), label: 2, score: 0.5 },
        ];
        let px = to_pixels(&d, 200, 100, &["cat".into()]);
        assert_eq!(px[0].bbox, [20.0, 20.0, 100.0, 100.0]);
        assert_eq!((px[0].class, px[0].name.as_str()), (0, "cat"));
        assert_eq!(px[1].name, "class1");
        let record = DetectionRecord {
            source: "a.png".into(),
            frame: None,
            width: 200,
            height: 100,
            detections: &px[..1],
            ms: 1.5,
        };
        assert_eq!(record.text(), "a.png: 1 object(s) cat 0.90 (1.5 ms)");
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"source":"a.png","frame":null,"width":200,"height":100,"detections":[{"bbox":[20.0,20.0,100.0,100.0],"class":0,"name":"cat","score":0.9}],"ms":1.5}"#
        );
    }
}

//! The images `detect train` logs to TensorBoard after each evaluation: the precision–recall curves of
//! that evaluation and the first validation image with the detections it was scored with.

use crate::detector::{annotate, PixelDetection};
use crate::evaluator::image_id;
use crate::voc_map::plot::pr_chart;
use crate::voc_map::{DetectionRecord, EvalResult};
use anyhow::{Context, Result};
use skipblock_core::boxes::BBox;
use skipblock_core::train::RgbPng;
use skipblock_data::image_io::encode_png;
use skipblock_data::voc::{DetDataset, VocDataset};
use skipblock_data::RgbImage;

/// Tag of the precision–recall chart.
pub const PR_CURVES_TAG: &str = "val/pr_curves";
/// Tag of the annotated first validation image.
pub const PREDICTION_TAG: &str = "val/prediction";
/// Width and height of the precision–recall chart.
pub const PR_CURVES_SIZE: (u32, u32) = (640, 480);
/// Detections drawn on the sample image score at least this (`detect predict --conf`'s default).
pub const SAMPLE_MIN_SCORE: f32 = 0.25;
/// At most this many detections (the best) are drawn on the sample image.
pub const SAMPLE_MAX_DETECTIONS: usize = 10;

/// What an evaluation leaves for its images.
#[derive(Debug, Clone)]
pub struct EvalSnapshot {
    pub result: EvalResult,
    /// The best [`SAMPLE_MAX_DETECTIONS`] detections of validation image 0 scoring at least
    /// [`SAMPLE_MIN_SCORE`], in its pixels.
    pub sample: Vec<PixelDetection>,
}

impl EvalSnapshot {
    /// Keeps `result` and the sample image's detections out of the evaluation's `records`.
    pub fn new(result: EvalResult, records: &[DetectionRecord], voc: &VocDataset) -> Self {
        let sample = if voc.records.is_empty() { Vec::new() } else { detections_of(voc, 0, records) };
        EvalSnapshot { result, sample }
    }
}

/// The best [`SAMPLE_MAX_DETECTIONS`] records of image `index` scoring at least [`SAMPLE_MIN_SCORE`],
/// best first, back from VOC boxes to pixels.
pub fn detections_of(voc: &VocDataset, index: usize, records: &[DetectionRecord]) -> Vec<PixelDetection> {
    let id = image_id(voc, index);
    let mut kept: Vec<&DetectionRecord> =
        records.iter().filter(|r| r.image_id == id && r.score >= SAMPLE_MIN_SCORE).collect();
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept.truncate(SAMPLE_MAX_DETECTIONS);
    kept.into_iter()
        .map(|r| PixelDetection {
            bbox: BBox::from_voc(r.bbox[0], r.bbox[1], r.bbox[2], r.bbox[3]).to_array(),
            class: r.class,
            name: voc.classes.get(r.class).cloned().unwrap_or_else(|| format!("class{}", r.class)),
            score: r.score,
        })
        .collect()
}

/// The chart of the curves (the one place it is drawn for TensorBoard).
pub fn pr_curves(result: &EvalResult) -> Result<RgbImage> {
    let (w, h) = PR_CURVES_SIZE;
    pr_chart(result).render(w, h)
}

/// An image as PNG bytes with its size.
pub fn to_png(img: &RgbImage) -> Result<RgbPng> {
    Ok(RgbPng { png: encode_png(img)?, width: img.width, height: img.height })
}

/// (tag, PNG) of the curves and, when the split has images, of its first image annotated.
pub fn evaluation_images(snapshot: &EvalSnapshot, val: &DetDataset) -> Result<Vec<(String, RgbPng)>> {
    let mut images = vec![(PR_CURVES_TAG.to_string(), to_png(&pr_curves(&snapshot.result)?)?)];
    if !val.voc().records.is_empty() {
        let image = val.annotated(0).context("the sample validation image")?.image;
        images.push((PREDICTION_TAG.to_string(), to_png(&annotate(&image, &snapshot.sample))?));
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluator::ground_truths;
    use crate::voc_map::{mean_average_precision, Metric};
    use skipblock_data::image_io::decode_image;
    use skipblock_data::synth_voc::{generate, SynthVocOptions};

    #[test]
    fn the_curves_and_the_first_image_with_its_detections() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(dir.path(), SynthVocOptions { train: 2, test: 2, seed: 4, size: 96, ..Default::default() })
            .unwrap();
        let (voc, _) = VocDataset::open(std::slice::from_ref(&s.root), "test", &s.classes, true).unwrap();
        // Every ground truth detected (scores 0.9, 0.89, …), a weak detection and, beyond the number
        // drawn, confident ones on image 0.
        let mut records: Vec<DetectionRecord> = ground_truths(&voc, usize::MAX)
            .into_iter()
            .enumerate()
            .map(|(i, g)| DetectionRecord {
                image_id: g.image_id,
                class: g.class,
                score: 0.9 - 0.01 * i as f32,
                bbox: g.bbox,
            })
            .collect();
        let extra =
            |score| DetectionRecord { image_id: image_id(&voc, 0), class: 0, score, bbox: [1.0, 1.0, 9.0, 9.0] };
        records.push(extra(0.1));
        records.extend((0..SAMPLE_MAX_DETECTIONS).map(|_| extra(0.3)));
        let result =
            mean_average_precision(&ground_truths(&voc, usize::MAX), &records, &voc.classes, Metric::Voc07, 0.5)
                .unwrap();
        let snapshot = EvalSnapshot::new(result, &records, &voc);
        let objects = &voc.records[0].objects;
        assert_eq!(snapshot.sample.len(), SAMPLE_MAX_DETECTIONS, "image 0's best confident detections");
        assert_eq!(snapshot.sample[objects.len()].score, 0.3);
        for (d, o) in snapshot.sample.iter().zip(objects) {
            assert_eq!((d.class, d.name.as_str()), (o.class, voc.classes[o.class].as_str()));
            for (a, b) in d.bbox.iter().zip(o.bbox.to_array()) {
                assert!((a - b).abs() < 1e-4, "{:?} vs {:?}", d.bbox, o.bbox);
            }
        }

        let val = DetDataset::new(voc, 64, false);
        let images = evaluation_images(&snapshot, &val).unwrap();
        let tags: Vec<&str> = images.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tags, [PR_CURVES_TAG, PREDICTION_TAG]);
        let curves = decode_image(&images[0].1.png).unwrap();
        assert_eq!((curves.width, curves.height), PR_CURVES_SIZE);
        assert_eq!((images[0].1.width, images[0].1.height), PR_CURVES_SIZE);
        let prediction = decode_image(&images[1].1.png).unwrap();
        let raw = val.annotated(0).unwrap().image;
        assert_eq!((prediction.width, prediction.height, images[1].1.width), (96, 96, 96), "the original size");
        assert_ne!(prediction, raw, "the detections are drawn");
    }
}

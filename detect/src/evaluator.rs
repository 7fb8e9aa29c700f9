//! The evaluation runner: a detector over a VOC split, its detections scored with the devkit's mAP
//! ([`crate::voc_map`]).

use crate::detector::{to_pixels, PixelDetection};
use crate::postprocess::PostprocessConfig;
use crate::ssd::Ssd;
use crate::voc_map::{mean_average_precision, DetectionRecord, EvalResult, GroundTruth, Metric};
use anyhow::Result;
use skipblock_core::boxes::BBox;
use skipblock_core::loader::{load_epoch, LoaderConfig};
use skipblock_core::ui;
use skipblock_data::transforms::network_input;
use skipblock_data::voc::{DetDataset, VocDataset};
use std::sync::Arc;
use tch::Device;

/// The image id used in result files: `<id>`, or `<root folder>/<id>` when several roots are combined.
pub fn image_id(voc: &VocDataset, index: usize) -> String {
    let r = &voc.records[index];
    if voc.roots.len() > 1 {
        format!("{}/{}", r.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), r.id)
    } else {
        r.id.clone()
    }
}

/// Every ground-truth object of the split (VOC 1-based pixel boxes), difficult ones flagged.
pub fn ground_truths(voc: &VocDataset, limit: usize) -> Vec<GroundTruth> {
    voc.records
        .iter()
        .enumerate()
        .take(limit)
        .flat_map(|(i, r)| {
            let id = image_id(voc, i);
            r.objects.iter().map(move |o| GroundTruth {
                image_id: id.clone(),
                class: o.class,
                bbox: o.bbox.to_voc(),
                difficult: o.difficult,
            })
        })
        .collect()
}

/// Runs the detector (eval mode) over the first `limit` images of `data`; detections per record index.
pub fn detect_split(
    ssd: &Ssd,
    data: Arc<DetDataset>,
    device: Device,
    loader: &LoaderConfig,
    post: &PostprocessConfig,
    limit: usize,
    progress: bool,
) -> Result<Vec<(usize, Vec<PixelDetection>)>> {
    let config = LoaderConfig { shuffle: false, drop_last: false, strict: true, ..loader.clone() };
    let n = data.voc().records.len().min(limit);
    // With an evaluation shard (data-parallel training) the loader yields indices rank, rank + world, …:
    // this rank's images among the first n are the first `mine` of them.
    let mine = config.shard.map_or(n, |s| s.len_of(n));
    let batches = load_epoch(data.clone(), 0, &config)?;
    let total = batches.num_batches().min(mine.div_ceil(config.batch_size.max(1)));
    let bar = if progress { ui::progress_bar(total as u64, "detect") } else { indicatif::ProgressBar::hidden() };
    let mut out = Vec::with_capacity(n);
    for batch in batches.take(total) {
        let batch = batch?;
        let xs = network_input(batch.iter().map(|s| &s.image), device)?;
        let dets = ssd.detect(&xs, post)?;
        for (sample, d) in batch.iter().zip(dets) {
            out.push((sample.index, to_pixels(&d, sample.width, sample.height, &data.voc().classes)));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.truncate(mine);
    Ok(out)
}

/// Detections as devkit records (VOC 1-based boxes).
pub fn to_records(voc: &VocDataset, detections: &[(usize, Vec<PixelDetection>)]) -> Vec<DetectionRecord> {
    detections
        .iter()
        .flat_map(|(i, dets)| {
            let id = image_id(voc, *i);
            dets.iter().map(move |d| DetectionRecord {
                image_id: id.clone(),
                class: d.class,
                score: d.score,
                bbox: BBox::new(d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]).to_voc(),
            })
        })
        .collect()
}

/// mAP of the detector on (the first `limit` images of) a split.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_split(
    ssd: &Ssd,
    data: Arc<DetDataset>,
    device: Device,
    loader: &LoaderConfig,
    post: &PostprocessConfig,
    metric: Metric,
    iou: f32,
    limit: usize,
    progress: bool,
) -> Result<(EvalResult, Vec<DetectionRecord>)> {
    let dets = detect_split(ssd, data.clone(), device, loader, post, limit, progress)?;
    let voc = data.voc();
    let records = to_records(voc, &dets);
    let result = mean_average_precision(&ground_truths(voc, limit), &records, &voc.classes, metric, iou)?;
    Ok((result, records))
}

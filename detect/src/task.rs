//! Detection as a [`TrainTask`] of the shared training loop: SSD forward, [`Ssd::compute_loss`] (matching
//! and the multibox loss, its classification term weighted per image by the bias loss when
//! `loss.kind = "bias"`), validation mAP after each evaluated epoch, and that evaluation's
//! precision–recall curves and an annotated validation image for TensorBoard ([`crate::eval_images`]).

use crate::detector::PixelDetection;
use crate::eval_images::{evaluation_images, EvalSnapshot};
use crate::evaluator::{detect_split, evaluate_split, ground_truths, to_records};
use crate::postprocess::PostprocessConfig;
use crate::ssd::{backbone_prefix, ImageTargets, Ssd};
use crate::voc_map::mean_average_precision;
use crate::voc_map::Metric;
use anyhow::Result;
use skipblock_core::checkpoint::CheckpointMeta;
use skipblock_core::loader::LoaderConfig;
use skipblock_core::loss::{Loss, LossKind};
use skipblock_core::model::BlockOptions;
use skipblock_core::train::{RgbPng, TrainTask, Validation};
use skipblock_data::transforms::network_input;
use skipblock_data::voc::{DetDataset, DetSample};
use std::sync::Arc;
use tch::{Device, Tensor};

pub struct DetectTask {
    pub ssd: Ssd,
    /// The batch-norm settings the detector was built with (stored in the checkpoints).
    pub block: BlockOptions,
    pub loss: Loss,
    pub train: Arc<DetDataset>,
    pub val: Arc<DetDataset>,
    pub device: Device,
    pub eval_loader: LoaderConfig,
    pub postprocess: PostprocessConfig,
    pub metric: Metric,
    pub iou_threshold: f32,
    pub eval_max_images: usize,
    /// The backbone's weights and batch-norm statistics stay as loaded for this many epochs.
    pub freeze_backbone_epochs: usize,
    pub backbone_lr_mult: f64,
    /// The last evaluation, until its TensorBoard images are drawn (none before the first).
    pub last_eval: Option<EvalSnapshot>,
}

/// The network input of a batch on `device` (uint8 images normalised there, [`network_input`]), and each
/// image's ground truth.
pub fn collate(batch: &[DetSample], device: Device) -> Result<(Tensor, Vec<ImageTargets>)> {
    let xs = network_input(batch.iter().map(|s| &s.image), device)?;
    let targets = batch.iter().map(|s| (s.boxes.clone(), s.labels.iter().map(|&l| l as usize).collect())).collect();
    Ok((xs, targets))
}

impl TrainTask for DetectTask {
    type Data = DetDataset;

    fn train_data(&self) -> Arc<DetDataset> {
        self.train.clone()
    }

    fn train_batch(&mut self, batch: Vec<DetSample>) -> Result<(Tensor, usize)> {
        let (xs, targets) = collate(&batch, self.device)?;
        let out = self.ssd.forward_t(&xs, true);
        let weights = match self.loss.config.kind {
            LossKind::Bias => Some(self.loss.sample_weights(&out.features)?),
            _ => None,
        };
        let m = self.ssd.compute_loss(&out, &targets, weights.as_ref())?;
        Ok((m.total(), batch.len()))
    }

    /// Data-parallel: each rank detects on its part of the split, the detections are gathered and every
    /// rank computes the mAP of the whole split.
    fn evaluate(&mut self, _epoch: usize) -> Result<Validation> {
        let limit = if self.eval_max_images == 0 { usize::MAX } else { self.eval_max_images };
        let (r, records) = match skipblock_core::dist::group() {
            None => evaluate_split(
                &self.ssd,
                self.val.clone(),
                self.device,
                &self.eval_loader,
                &self.postprocess,
                self.metric,
                self.iou_threshold,
                limit,
                false,
            )?,
            Some(g) => {
                let loader = LoaderConfig { shard: Some(g.eval_shard()), ..self.eval_loader.clone() };
                let mine =
                    detect_split(&self.ssd, self.val.clone(), self.device, &loader, &self.postprocess, limit, false);
                let mine = g.agree(mine)?;
                let mut all = Vec::new();
                for bytes in g.allgather_bytes(&encode_detections(&mine))? {
                    all.extend(decode_detections(&bytes, &self.val.voc().classes)?);
                }
                all.sort_by_key(|(i, _)| *i);
                let voc = self.val.voc();
                let records = to_records(voc, &all);
                let result = mean_average_precision(
                    &ground_truths(voc, limit),
                    &records,
                    &voc.classes,
                    self.metric,
                    self.iou_threshold,
                )?;
                (result, records)
            }
        };
        let map = r.map;
        self.last_eval = Some(EvalSnapshot::new(r, &records, self.val.voc()));
        Ok(Validation { val_map: Some(map), ..Default::default() })
    }

    fn evaluation_images(&mut self, _epoch: usize) -> Result<Vec<(String, RgbPng)>> {
        match self.last_eval.take() {
            Some(snapshot) => evaluation_images(&snapshot, &self.val),
            None => Ok(Vec::new()),
        }
    }

    fn checkpoint_meta(&self) -> CheckpointMeta {
        let c = &self.ssd.config;
        CheckpointMeta {
            class_names: self.train.voc().classes.clone(),
            input_size: c.input_size as usize,
            model: serde_json::to_value(c).unwrap_or_default(),
            ..CheckpointMeta::new(c.arch, c.num_classes as usize, self.block)
        }
    }

    fn lr_groups(&self) -> Vec<(String, f64)> {
        if (self.backbone_lr_mult - 1.0).abs() > f64::EPSILON {
            vec![(backbone_prefix().to_string(), self.backbone_lr_mult)]
        } else {
            Vec::new()
        }
    }

    fn frozen_prefixes(&self, epoch: usize) -> Vec<String> {
        if epoch < self.freeze_backbone_epochs {
            vec![backbone_prefix().to_string()]
        } else {
            Vec::new()
        }
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.ssd.backbone.frozen = epoch < self.freeze_backbone_epochs;
    }

    fn loss_mut(&mut self) -> Option<&mut Loss> {
        Some(&mut self.loss)
    }
}

/// Detections per image index as little-endian f64 records `[index, class, score, x0, y0, x1, y1]` (an
/// image without detections: `[index, -1, 0, 0, 0, 0, 0]`), to gather them across the ranks.
fn encode_detections(dets: &[(usize, Vec<PixelDetection>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |values: [f64; 7]| values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    for (index, ds) in dets {
        if ds.is_empty() {
            push([*index as f64, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        }
        for d in ds {
            let b = d.bbox.map(f64::from);
            push([*index as f64, d.class as f64, f64::from(d.score), b[0], b[1], b[2], b[3]]);
        }
    }
    out
}

/// The inverse of [`encode_detections`] (images in their order of appearance).
fn decode_detections(bytes: &[u8], classes: &[String]) -> Result<Vec<(usize, Vec<PixelDetection>)>> {
    if !bytes.len().is_multiple_of(56) {
        anyhow::bail!("gathered detections: {} bytes is not a whole number of records", bytes.len());
    }
    let mut out: Vec<(usize, Vec<PixelDetection>)> = Vec::new();
    for record in bytes.chunks_exact(56) {
        let v: Vec<f64> = record.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        let index = v[0] as usize;
        if out.last().is_none_or(|(i, _)| *i != index) {
            out.push((index, Vec::new()));
        }
        if v[1] >= 0.0 {
            let class = v[1] as usize;
            let name = classes.get(class).cloned().unwrap_or_default();
            let bbox = [v[3] as f32, v[4] as f32, v[5] as f32, v[6] as f32];
            out.last_mut().expect("pushed").1.push(PixelDetection { bbox, class, name, score: v[2] as f32 });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_detections_decode_to_what_was_sent() {
        let classes = vec!["cat".to_string(), "dog".to_string()];
        let det = |class: usize, score: f32| PixelDetection {
            bbox: [1.5, 2.0, 30.25, 40.0],
            class,
            name: classes[class].clone(),
            score,
        };
        let dets = vec![(3, vec![det(1, 0.9), det(0, 0.25)]), (5, vec![]), (7, vec![det(0, 0.5)])];
        let back = decode_detections(&encode_detections(&dets), &classes).unwrap();
        assert_eq!(back.len(), 3);
        for ((i, a), (j, b)) in dets.iter().zip(&back) {
            assert_eq!(i, j);
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert_eq!((x.bbox, x.class, &x.name, x.score), (y.bbox, y.class, &y.name, y.score));
            }
        }
        assert!(decode_detections(&[0u8; 10], &classes).is_err());
    }
}

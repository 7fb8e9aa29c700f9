//! Detection as a [`TrainTask`] of the shared training loop: SSD forward, [`Ssd::compute_loss`] (matching
//! and the multibox loss, its classification term weighted per image by the bias loss when
//! `loss.kind = "bias"`), validation mAP after each evaluated epoch, and that evaluation's
//! precision–recall curves and an annotated validation image for TensorBoard ([`crate::eval_images`]).

use crate::eval_images::{evaluation_images, EvalSnapshot};
use crate::evaluator::evaluate_split;
use crate::postprocess::PostprocessConfig;
use crate::ssd::{backbone_prefix, ImageTargets, Ssd};
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

    fn evaluate(&mut self, _epoch: usize) -> Result<Validation> {
        let limit = if self.eval_max_images == 0 { usize::MAX } else { self.eval_max_images };
        let (r, records) = evaluate_split(
            &self.ssd,
            self.val.clone(),
            self.device,
            &self.eval_loader,
            &self.postprocess,
            self.metric,
            self.iou_threshold,
            limit,
            false,
        )?;
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

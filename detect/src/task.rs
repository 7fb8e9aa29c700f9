//! Detection as a [`Task`] of the shared training loop: SSD forward, targets from the matcher, the
//! multibox loss (its classification term weighted per image by the bias loss when `loss.kind = "bias"`),
//! validation mAP after each evaluated epoch.

use crate::eval::Metric;
use crate::evaluate::evaluate_split;
use crate::matcher::Matcher;
use crate::multibox::MultiboxLoss;
use crate::postprocess::PostprocessConfig;
use crate::ssd::{backbone_prefix, Ssd};
use anyhow::Result;
use skipblock_core::checkpoint::CheckpointMeta;
use skipblock_core::loader::LoaderConfig;
use skipblock_core::loss::{Loss, LossKind};
use skipblock_core::train::{Metrics, Task};
use skipblock_data::voc::{DetDataset, DetSample};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tch::{Device, Tensor};

pub struct DetectTask {
    pub ssd: Ssd,
    pub matcher: Matcher,
    pub multibox: MultiboxLoss,
    pub loss: Loss,
    pub train: Arc<DetDataset>,
    pub val: Arc<DetDataset>,
    pub device: Device,
    pub eval_loader: LoaderConfig,
    pub postprocess: PostprocessConfig,
    pub metric: Metric,
    pub iou_threshold: f32,
    pub eval_max_images: usize,
    pub freeze_backbone_epochs: usize,
    pub backbone_lr_mult: f64,
    pub run_dir: PathBuf,
}

/// Images of a batch on `device`, and (boxes, 1-based labels) per image.
pub fn collate(batch: &[DetSample], device: Device) -> (Tensor, Vec<(Vec<skipblock_core::boxes::BBox>, Vec<usize>)>) {
    let xs = Tensor::stack(&batch.iter().map(|s| s.image.shallow_clone()).collect::<Vec<_>>(), 0).to_device(device);
    let targets = batch.iter().map(|s| (s.boxes.clone(), s.labels.iter().map(|&l| l as usize).collect())).collect();
    (xs, targets)
}

impl Task for DetectTask {
    type Data = DetDataset;

    fn train_data(&self) -> Arc<DetDataset> {
        self.train.clone()
    }

    fn train_batch(&mut self, batch: Vec<DetSample>) -> Result<(Tensor, usize)> {
        let (xs, targets) = collate(&batch, self.device);
        let t = self.matcher.batch_targets(&targets)?;
        let out = self.ssd.forward_t(&xs, true);
        let weights = match self.loss.config.kind {
            LossKind::Bias => Some(self.loss.sample_weights(&out.features)?),
            _ => None,
        };
        let m = self.multibox.compute(&out.loc, &out.conf, &t.loc.to_device(self.device), &t.labels.to_device(self.device), weights.as_ref())?;
        Ok((m.total(), batch.len()))
    }

    fn evaluate(&mut self, _epoch: usize) -> Result<Metrics> {
        let limit = if self.eval_max_images == 0 { usize::MAX } else { self.eval_max_images };
        let (r, _) = evaluate_split(&self.ssd, self.val.clone(), self.device, &self.eval_loader, &self.postprocess, self.metric, self.iou_threshold, limit, false)?;
        Ok(Metrics::from([("val_map".to_string(), r.map)]))
    }

    fn checkpoint_meta(&self) -> CheckpointMeta {
        CheckpointMeta {
            arch: self.ssd.config.arch_name(),
            task: "detect".into(),
            num_classes: self.ssd.config.num_classes as usize,
            class_names: self.train.voc().classes.clone(),
            input_size: self.ssd.config.input_size as usize,
            model: serde_json::to_value(&self.ssd.config).unwrap_or_default(),
            ..Default::default()
        }
    }

    fn lr_groups(&self) -> Vec<(String, f64)> {
        if (self.backbone_lr_mult - 1.0).abs() > f64::EPSILON { vec![(backbone_prefix().to_string(), self.backbone_lr_mult)] } else { Vec::new() }
    }

    fn frozen_prefixes(&self, epoch: usize) -> Vec<String> {
        if epoch < self.freeze_backbone_epochs { vec![backbone_prefix().to_string()] } else { Vec::new() }
    }

    fn state(&self) -> BTreeMap<String, String> {
        self.loss.state()
    }

    fn load_state(&mut self, state: &BTreeMap<String, String>) -> Result<()> {
        self.loss.load_state(state);
        Ok(())
    }

    fn on_epoch_end(&mut self, history: &[Metrics]) -> Result<()> {
        skipblock_data::plot::save_training_curves(&self.run_dir, history)
    }
}

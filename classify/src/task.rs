//! Classification as a [`TrainTask`] of the shared training loop: batches through the classifier, the
//! configured loss (the bias loss gets the last-conv features), validation top-1/top-5 after each epoch.

use crate::evaluator::{collate, evaluate};
use anyhow::Result;
use skipblock_core::checkpoint::CheckpointMeta;
use skipblock_core::loader::LoaderConfig;
use skipblock_core::loss::Loss;
use skipblock_core::model::{BlockOptions, ClassifierNet};
use skipblock_core::train::{TrainTask, Validation};
use skipblock_data::classification::ClsDataset;
use skipblock_data::transforms::ChwImage;
use std::sync::Arc;
use tch::{Device, Tensor};

pub struct ClassifyTask {
    pub net: Box<dyn ClassifierNet>,
    /// The batch-norm settings the network was built with (stored in the checkpoints).
    pub block: BlockOptions,
    pub loss: Loss,
    pub train: Arc<ClsDataset>,
    pub val: Arc<ClsDataset>,
    pub device: Device,
    pub eval_loader: LoaderConfig,
    pub input_size: usize,
    /// Freeze everything but the classifier for this many epochs (fine-tuning): weights and batch-norm
    /// statistics.
    pub freeze_backbone_epochs: usize,
}

impl TrainTask for ClassifyTask {
    type Data = ClsDataset;

    fn train_data(&self) -> Arc<ClsDataset> {
        self.train.clone()
    }

    fn train_batch(&mut self, batch: Vec<(ChwImage, i64)>) -> Result<(Tensor, usize)> {
        let n = batch.len();
        let (xs, ys) = collate(batch, self.device)?;
        let out = self.net.forward_t(&xs, true);
        let loss = self.loss.compute(&out.logits, Some(&out.features), &ys)?;
        Ok((loss.loss, n))
    }

    /// Data-parallel: each rank evaluates its part of the split ([`skipblock_core::dist::Shard::eval`])
    /// and the counts are summed, so every rank gets the metrics of the whole split.
    fn evaluate(&mut self, _epoch: usize) -> Result<Validation> {
        let group = skipblock_core::dist::group();
        let loader = LoaderConfig { shard: group.map(|g| g.eval_shard()), ..self.eval_loader.clone() };
        let r = evaluate(self.net.as_ref(), self.val.clone(), self.device, &loader, false);
        let (top1, top5, loss) = match group {
            None => {
                let r = r?;
                (r.top1, r.top5, r.loss)
            }
            Some(g) => {
                let r = g.agree(r)?;
                let n = r.samples as f64;
                let correct: usize = r.per_class.iter().map(|c| c.correct).sum();
                let loss_sum = if r.samples == 0 { 0.0 } else { r.loss * n };
                let s = g.sum_f64(&[correct as f64, (r.top5 * n).round(), loss_sum, n])?;
                let frac = |x: f64| if s[3] > 0.0 { x / s[3] } else { 0.0 };
                (frac(s[0]), frac(s[1]), if s[3] > 0.0 { s[2] / s[3] } else { f64::NAN })
            }
        };
        Ok(Validation { val_loss: Some(loss), val_top1: Some(top1), val_top5: Some(top5), val_map: None })
    }

    fn checkpoint_meta(&self) -> CheckpointMeta {
        CheckpointMeta {
            class_names: self.train.class_names().to_vec(),
            input_size: self.input_size,
            stem: self.net.stem(),
            ..CheckpointMeta::new(self.net.arch(), self.net.num_classes() as usize, self.block)
        }
    }

    fn frozen_prefixes(&self, epoch: usize) -> Vec<String> {
        if epoch < self.freeze_backbone_epochs {
            self.net.backbone_prefixes()
        } else {
            Vec::new()
        }
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.net.set_frozen(epoch < self.freeze_backbone_epochs);
    }

    fn loss_mut(&mut self) -> Option<&mut Loss> {
        Some(&mut self.loss)
    }
}

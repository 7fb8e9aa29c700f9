//! Classification as a [`Task`] of the shared training loop: batches through SkipblockNet, the
//! configured loss (the bias loss gets the last-conv features), validation top-1/top-5 after each epoch.

use crate::evaluate::{collate, evaluate};
use anyhow::Result;
use skipblock_core::checkpoint::CheckpointMeta;
use skipblock_core::loader::LoaderConfig;
use skipblock_core::loss::Loss;
use skipblock_core::model::SkipblockNet;
use skipblock_core::train::{Metrics, Task};
use skipblock_data::classification::ClsDataset;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tch::{Device, Tensor};

pub struct ClassifyTask {
    pub net: SkipblockNet,
    pub loss: Loss,
    pub train: Arc<ClsDataset>,
    pub val: Arc<ClsDataset>,
    pub device: Device,
    pub eval_loader: LoaderConfig,
    pub input_size: usize,
    /// Freeze everything but the classifier for this many epochs (fine-tuning).
    pub freeze_backbone_epochs: usize,
    /// Where the run's curves are drawn.
    pub run_dir: PathBuf,
}

impl Task for ClassifyTask {
    type Data = ClsDataset;

    fn train_data(&self) -> Arc<ClsDataset> {
        self.train.clone()
    }

    fn train_batch(&mut self, batch: Vec<(Tensor, i64)>) -> Result<(Tensor, usize)> {
        let n = batch.len();
        let (xs, ys) = collate(batch, self.device);
        let out = self.net.forward_t(&xs, true);
        let loss = self.loss.compute(&out.logits, Some(&out.features), &ys)?;
        Ok((loss.loss, n))
    }

    fn evaluate(&mut self, _epoch: usize) -> Result<Metrics> {
        let r = evaluate(&self.net, self.val.clone(), self.device, &self.eval_loader, false)?;
        Ok(Metrics::from([("val_top1".into(), r.top1), ("val_top5".into(), r.top5), ("val_loss".into(), r.loss)]))
    }

    fn checkpoint_meta(&self) -> CheckpointMeta {
        CheckpointMeta {
            arch: self.net.config.name.clone(),
            task: "classify".into(),
            num_classes: self.net.num_classes as usize,
            class_names: self.train.class_names().to_vec(),
            input_size: self.input_size,
            ..Default::default()
        }
    }

    fn frozen_prefixes(&self, epoch: usize) -> Vec<String> {
        if epoch < self.freeze_backbone_epochs { SkipblockNet::backbone_prefixes() } else { Vec::new() }
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

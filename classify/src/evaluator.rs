//! Evaluating a classifier on a dataset split: top-1, top-5, mean cross-entropy, per-class accuracy and
//! the confusion matrix.

use crate::confusion::ConfusionMatrix;
use anyhow::Result;
use serde::Serialize;
use skipblock_core::batch::to_device;
use skipblock_core::loader::{load_epoch, LoaderConfig};
use skipblock_core::model::ClassifierNet;
use skipblock_core::ui;
use skipblock_data::classification::ClsDataset;
use skipblock_data::transforms::{network_input, ChwImage};
use std::sync::Arc;
use tch::{Device, Kind, Reduction, Tensor};

#[derive(Debug, Clone, Serialize)]
pub struct ClassAccuracy {
    pub class: String,
    pub correct: usize,
    pub total: usize,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub samples: usize,
    pub top1: f64,
    pub top5: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    pub per_class: Vec<ClassAccuracy>,
    /// Top-1 predictions, `[true class][predicted class]`.
    pub confusion_matrix: ConfusionMatrix,
    /// Images that could not be read (skipped, unless strict).
    pub skipped: usize,
}

/// Stacks `(uint8 image, label)` samples into the network's input batch on `device` (normalised there,
/// [`network_input`]) and the labels.
pub fn collate(batch: Vec<(ChwImage, i64)>, device: Device) -> Result<(Tensor, Tensor)> {
    let labels: Vec<i64> = batch.iter().map(|b| b.1).collect();
    let images: Vec<ChwImage> = batch.into_iter().map(|b| b.0).collect();
    Ok((network_input(&images, device)?, to_device(&Tensor::from_slice(&labels), device)))
}

/// Runs `net` (eval mode, no autograd) over every sample of `data`.
pub fn evaluate(
    net: &dyn ClassifierNet,
    data: Arc<ClsDataset>,
    device: Device,
    loader: &LoaderConfig,
    progress: bool,
) -> Result<EvalReport> {
    let classes = data.class_names().to_vec();
    let n = classes.len();
    let k = 5.min(n) as i64;
    let mut confusion = ConfusionMatrix::new(n);
    let (mut top1, mut top5, mut loss_sum, mut samples) = (0usize, 0usize, 0.0f64, 0usize);
    let config = LoaderConfig { shuffle: false, drop_last: false, ..loader.clone() };
    let mut batches = load_epoch(data.clone(), 0, &config)?;
    let bar = if progress {
        ui::progress_bar(batches.num_batches() as u64, "eval")
    } else {
        indicatif::ProgressBar::hidden()
    };
    for batch in batches.by_ref() {
        let (xs, ys) = collate(batch?, device)?;
        let logits = tch::no_grad(|| net.forward_t(&xs, false).logits).to_kind(Kind::Float);
        let loss = logits.cross_entropy_loss::<Tensor>(&ys, None, Reduction::Sum, -100, 0.0);
        loss_sum += f64::try_from(loss)?;
        let topk = logits.topk(k, -1, true, true).1.to_device(Device::Cpu);
        let ys_cpu = Vec::<i64>::try_from(ys.to_device(Device::Cpu))?;
        for (row, &y) in ys_cpu.iter().enumerate() {
            let preds = Vec::<i64>::try_from(topk.get(row as i64))?;
            top1 += usize::from(preds.first() == Some(&y));
            top5 += usize::from(preds.contains(&y));
            if let Some(&p) = preds.first() {
                confusion.add(y as usize, p as usize)?;
            }
        }
        samples += ys_cpu.len();
        bar.inc(1);
    }
    bar.finish_and_clear();
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(EvalReport {
        samples,
        top1: frac(top1, samples),
        top5: frac(top5, samples),
        loss: if samples == 0 { f64::NAN } else { loss_sum / samples as f64 },
        per_class: classes
            .into_iter()
            .enumerate()
            .map(|(i, class)| ClassAccuracy {
                class,
                correct: confusion.correct(i),
                total: confusion.total(i),
                accuracy: frac(confusion.correct(i), confusion.total(i)),
            })
            .collect(),
        confusion_matrix: confusion,
        skipped: batches.skipped(),
    })
}

//! `skipblock classify eval`: top-1, top-5, loss and per-class accuracy of a checkpoint on a split.

use crate::cli::GlobalArgs;
use anyhow::{bail, Result};
use clap::Args;
use skipblock_classify::evaluator::evaluate;
use skipblock_core::loader::LoaderConfig;
use skipblock_data::classification::{open, Augment, ClsDataset, ClsTransform, Layout, Split};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: crate::cli::ClassifierWeights,
    /// Dataset root (any supported layout).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value_t = Layout::Auto)]
    pub layout: Layout,
    /// val (the held-out/test split; `test` is accepted too) or train.
    #[arg(long, value_enum, default_value_t = Split::Val)]
    pub split: Split,
    /// Image folders: fraction held out as the validation split (as in training).
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Evaluation resize ratio (shorter side = input · ratio before the centre crop); default: the
    /// checkpoint's recipe, else 256/224.
    #[arg(long)]
    pub resize_ratio: Option<f64>,
    /// An unreadable image is an error instead of a skip.
    #[arg(long)]
    pub strict: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, a: &EvalArgs) -> Result<()> {
    let device = global.device()?;
    let model = a.model.load(device)?;
    let set = open(&a.data, a.layout, a.split, a.val_fraction, global.seed.unwrap_or(0))?;
    if !model.meta.class_names.is_empty() && model.meta.class_names != set.class_names {
        bail!(
            "the classes of '{}' differ from those of the checkpoint '{}'",
            a.data.display(),
            a.model.weights.display()
        );
    }
    if set.class_names.len() != model.meta.num_classes {
        bail!(
            "'{}' has {} classes, the checkpoint {}",
            a.data.display(),
            set.class_names.len(),
            model.meta.num_classes
        );
    }
    let ratio = a.resize_ratio.unwrap_or(model.resize as f64 / model.crop as f64);
    let transform = ClsTransform::new(Augment::None, model.crop, ratio, 0.0, false)?;
    let data = Arc::new(ClsDataset::new(set, transform));
    let loader = LoaderConfig { batch_size: a.batch.max(1), strict: a.strict, ..Default::default() };
    let r = evaluate(&model.net, data, device, &loader, true)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let skipped = if r.skipped > 0 { format!(" ({} unreadable, skipped)", r.skipped) } else { String::new() };
    println!(
        "{} images{skipped}: top-1 {:.2}%  top-5 {:.2}%  loss {:.4}",
        r.samples,
        r.top1 * 100.0,
        r.top5 * 100.0,
        r.loss
    );
    println!("{:<32} {:>8} {:>8} {:>9}", "class", "correct", "total", "accuracy");
    for c in &r.per_class {
        println!("{:<32} {:>8} {:>8} {:>8.2}%", c.class, c.correct, c.total, c.accuracy * 100.0);
    }
    Ok(())
}

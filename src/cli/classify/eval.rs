//! `skipblock classify eval`: top-1, top-5, loss, per-class accuracy and the confusion matrix of a
//! checkpoint on a split; in `--out` the confusion matrix and per-class accuracy pictures and eval.json.

use crate::cli::GlobalArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use skipblock_classify::evaluator::{evaluate, EvalReport};
use skipblock_classify::plots::{save_confusion_matrix, save_per_class_accuracy};
use skipblock_core::loader::LoaderConfig;
use skipblock_core::ui;
use skipblock_data::classification::{open, Augment, ClsDataset, ClsTransform, Layout, Split};
use std::path::{Path, PathBuf};
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
    /// Where the pictures (confusion_matrix.png, per_class_accuracy.png) and eval.json go.
    #[arg(long, default_value = "runs/classify-eval")]
    pub out: PathBuf,
    #[arg(long)]
    pub json: bool,
    /// Mixed precision of the forward pass (autocast): off, bf16 (CPU and CUDA) or fp16 (CUDA).
    #[arg(long, value_enum, default_value_t = skipblock_core::recipe::Amp::Off)]
    pub amp: skipblock_core::recipe::Amp,
}

/// The pictures `save_report` writes in `--out`.
pub const PICTURES: [&str; 2] = ["confusion_matrix.png", "per_class_accuracy.png"];

/// Saves the pictures and eval.json (the report; the confusion matrix as rows of true classes) in
/// `out`; returns eval.json's text.
pub fn save_report(r: &EvalReport, out: &Path) -> Result<String> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    save_confusion_matrix(r, &out.join(PICTURES[0]))?;
    save_per_class_accuracy(r, &out.join(PICTURES[1]))?;
    let mut value = serde_json::to_value(r)?;
    value["pictures"] = serde_json::json!(PICTURES);
    let text = crate::cli::json::to_string_compact_arrays(&value);
    skipblock_core::tensors::write_atomic(&out.join("eval.json"), text.as_bytes())?;
    Ok(text)
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
    let r = evaluate(model.net.as_ref(), data, device, &loader, true)?;
    let text = save_report(&r, &a.out)?;
    if a.json {
        println!("{text}");
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
    ui::info(format!("{} and eval.json in {}", PICTURES.join(", "), a.out.display()));
    Ok(())
}

//! `skipblock classify …`: train, fine-tune, evaluate, predict.

use super::{GlobalArgs, RunArgs};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use skipblock_classify::evaluate::evaluate;
use skipblock_classify::pipeline::{self, StartFrom};
use skipblock_classify::ClassifyRecipe;
use skipblock_core::model::loader;
use skipblock_core::{config, ui};
use skipblock_data::classification::{open, ClsDataset, ClsTransform, Layout, Split};
use skipblock_data::{folder, read_image, transforms};
use std::path::PathBuf;
use std::sync::Arc;
use tch::{Kind, Tensor};

#[derive(Subcommand, Debug)]
pub enum ClassifyCommand {
    /// Train a classifier from a recipe (configs/*.toml) on a dataset in its native layout.
    Train(TrainArgs),
    /// Transfer learning: start from a checkpoint, new head for the dataset's classes, train all weights.
    Finetune(FinetuneArgs),
    /// Top-1, top-5, loss and per-class accuracy of a checkpoint on a dataset split.
    Eval(EvalArgs),
    /// Top-k classes of images (files or folders) with the release's evaluation preprocessing.
    Predict(PredictArgs),
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Recipe (TOML), e.g. configs/imagenet-skipblocknet-m.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Dataset root (overrides data.root of the recipe).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// Checkpoint to start from (`.safetensors`, or the authors' `.pth` with --arch).
    #[arg(long)]
    pub from: PathBuf,
    /// Architecture of a `.pth` without a skipblock record.
    #[arg(long)]
    pub arch: Option<String>,
    /// Recipe (default: configs/food101-finetune.toml when present, else built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset root (overrides data.root of the recipe).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Train only the new head for this many epochs first.
    #[arg(long)]
    pub freeze_backbone_epochs: Option<usize>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint (`.safetensors`, or a `.pth` with --arch).
    #[arg(long)]
    pub weights: PathBuf,
    /// Dataset root (any supported layout).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub arch: Option<String>,
    /// auto, imagenet, food101, cifar100, imagefolder.
    #[arg(long, default_value = "auto")]
    pub layout: String,
    /// val (the held-out/test split) or train.
    #[arg(long, default_value = "val")]
    pub split: String,
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

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Checkpoint: `.safetensors` of ours, or the authors' `.pth` with --arch.
    #[arg(long)]
    pub weights: PathBuf,
    /// Images or folders of images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Architecture of a `.pth` state dict without a skipblock record.
    #[arg(long)]
    pub arch: Option<String>,
    #[arg(long, default_value_t = 5)]
    pub topk: usize,
    /// Shorter side is resized to this before the centre crop (default: from the checkpoint's recipe;
    /// 256 for the authors' weights).
    #[arg(long)]
    pub resize: Option<u32>,
    /// Centre crop (default: the checkpoint's input size; 224 for the authors' weights).
    #[arg(long)]
    pub crop: Option<u32>,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// One JSON record per image on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Prediction {
    image: PathBuf,
    classes: Vec<i64>,
    names: Vec<Option<String>>,
    probabilities: Vec<f64>,
}

pub fn run(global: &GlobalArgs, command: &ClassifyCommand) -> Result<()> {
    match command {
        ClassifyCommand::Train(a) => train(global, a),
        ClassifyCommand::Finetune(a) => finetune(global, a),
        ClassifyCommand::Eval(a) => eval(global, a),
        ClassifyCommand::Predict(a) => predict(global, a),
    }
}

fn report(summary: &skipblock_core::train::FitSummary) {
    let best = summary.best_value.map_or("-".into(), |b| format!("{:.4}", b));
    ui::info(format!(
        "done: {} epoch(s); last val_top1 {:.4}, best {best}; run folder {} (best.safetensors, last.safetensors, metrics.csv, loss.png, metrics.png)",
        summary.epochs_run,
        summary.last.get("val_top1").copied().unwrap_or(f64::NAN),
        summary.run_dir.display()
    ));
}

fn train(global: &GlobalArgs, a: &TrainArgs) -> Result<()> {
    let recipe: ClassifyRecipe = config::load_config(Some(&a.config), &a.run.overrides()?)?;
    let summary = pipeline::train(&recipe, a.data.as_deref(), &a.run.settings(global)?, None)?;
    report(&summary);
    Ok(())
}

fn finetune(global: &GlobalArgs, a: &FinetuneArgs) -> Result<()> {
    let default = PathBuf::from("configs/food101-finetune.toml");
    let path = a.config.clone().or_else(|| default.exists().then_some(default));
    let mut overrides = a.run.overrides()?;
    if let Some(n) = a.freeze_backbone_epochs {
        overrides.push(format!("finetune.freeze_backbone_epochs={n}"));
    }
    let recipe: ClassifyRecipe = config::load_config(path.as_deref(), &overrides)?;
    let from = StartFrom { checkpoint: a.from.clone(), arch: a.arch.clone() };
    let summary = pipeline::train(&recipe, a.data.as_deref(), &a.run.settings(global)?, Some(&from))?;
    report(&summary);
    Ok(())
}

fn parse_layout(s: &str) -> Result<Layout> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "auto" => Layout::Auto,
        "imagenet" => Layout::Imagenet,
        "food101" => Layout::Food101,
        "cifar100" => Layout::Cifar100,
        "imagefolder" => Layout::Imagefolder,
        other => bail!("unknown layout '{other}' (auto, imagenet, food101, cifar100, imagefolder)"),
    })
}

fn eval(global: &GlobalArgs, a: &EvalArgs) -> Result<()> {
    let device = global.device()?;
    let split = match a.split.as_str() {
        "val" | "test" => Split::Val,
        "train" => Split::Train,
        other => bail!("unknown split '{other}' (val or train)"),
    };
    let mut model = loader::load_classifier(&a.weights, a.arch.as_deref(), device)?;
    model.net.fuse_bn();
    let set = open(&a.data, parse_layout(&a.layout)?, split, a.val_fraction, global.seed.unwrap_or(0))?;
    if !model.meta.class_names.is_empty() && model.meta.class_names != set.class_names {
        bail!("the classes of '{}' differ from those of the checkpoint '{}'", a.data.display(), a.weights.display());
    }
    if set.class_names.len() != model.meta.num_classes {
        bail!("'{}' has {} classes, the checkpoint {}", a.data.display(), set.class_names.len(), model.meta.num_classes);
    }
    let (input, recipe_ratio) = skipblock_classify::recipe::eval_geometry(&model.meta);
    let ratio = a.resize_ratio.unwrap_or(recipe_ratio);
    let transform = ClsTransform::new(skipblock_data::classification::Augment::None, input, ratio, 0.0, false)?;
    let data = Arc::new(ClsDataset::new(set, transform));
    let loader = skipblock_core::loader::LoaderConfig { batch_size: a.batch.max(1), strict: a.strict, ..Default::default() };
    let r = evaluate(&model.net, data, device, &loader, true)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("{} images{}: top-1 {:.2}%  top-5 {:.2}%  loss {:.4}", r.samples, if r.skipped > 0 { format!(" ({} unreadable, skipped)", r.skipped) } else { String::new() }, r.top1 * 100.0, r.top5 * 100.0, r.loss);
    println!("{:<32} {:>8} {:>8} {:>9}", "class", "correct", "total", "accuracy");
    for c in &r.per_class {
        println!("{:<32} {:>8} {:>8} {:>8.2}%", c.class, c.correct, c.total, c.accuracy * 100.0);
    }
    Ok(())
}

fn predict(global: &GlobalArgs, a: &PredictArgs) -> Result<()> {
    if a.topk == 0 {
        bail!("--topk must be at least 1");
    }
    let device = global.device()?;
    let images = folder::expand_sources(&a.images)?;
    let mut model = loader::load_classifier(&a.weights, a.arch.as_deref(), device)?;
    model.net.fuse_bn();
    let k = a.topk.min(model.meta.num_classes) as i64;
    let (input, ratio) = skipblock_classify::recipe::eval_geometry(&model.meta);
    let crop = a.crop.unwrap_or(input);
    let resize = a.resize.unwrap_or((crop as f64 * ratio).round() as u32);
    for chunk in images.chunks(a.batch.max(1)) {
        let batch: Vec<Tensor> = chunk
            .iter()
            .map(|p| read_image(p).map(|img| transforms::eval_preprocess(&img, resize, crop)))
            .collect::<Result<_>>()?;
        let xs = Tensor::stack(&batch, 0).to_device(device);
        let probs = tch::no_grad(|| model.net.forward_t(&xs, false).logits.softmax(-1, Kind::Float));
        let (top_p, top_i) = probs.topk(k, -1, true, true);
        let (top_p, top_i) = (top_p.to_kind(Kind::Double).to_device(tch::Device::Cpu), top_i.to_device(tch::Device::Cpu));
        for (row, path) in chunk.iter().enumerate() {
            let classes = Vec::<i64>::try_from(top_i.get(row as i64))?;
            let record = Prediction {
                image: path.clone(),
                names: classes.iter().map(|&c| model.meta.class_names.get(c as usize).cloned()).collect(),
                probabilities: Vec::<f64>::try_from(top_p.get(row as i64))?,
                classes,
            };
            if a.json {
                println!("{}", serde_json::to_string(&record)?);
            } else {
                let tops: Vec<String> = record
                    .classes
                    .iter()
                    .zip(&record.names)
                    .zip(&record.probabilities)
                    .map(|((c, n), p)| format!("{} {:.3}", n.clone().unwrap_or_else(|| format!("#{c}")), p))
                    .collect();
                println!("{}: {}", path.display(), tops.join(", "));
            }
        }
    }
    ui::debug(format!("{} images classified", images.len()));
    Ok(())
}

//! `skipblock classify …`: train, fine-tune, evaluate, predict.

mod compare;
mod eval;
mod predict;

use super::{GlobalArgs, RunArgs};
use anyhow::Result;
use clap::{Args, Subcommand};
use skipblock_classify::pipeline::{self, StartFrom};
use skipblock_classify::ClassifyRecipe;
use skipblock_core::model::Arch;
use skipblock_core::{config, ui};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ClassifyCommand {
    /// Train a classifier from a recipe (configs/*.toml) on a dataset in its native layout.
    Train(TrainArgs),
    /// Transfer learning: start from a checkpoint, new head for the dataset's classes, train all weights.
    Finetune(FinetuneArgs),
    /// Top-1, top-5, loss and per-class accuracy of a checkpoint on a dataset split.
    Eval(eval::EvalArgs),
    /// Top-k classes of images (files or folders) with the checkpoint's evaluation preprocessing.
    Predict(predict::PredictArgs),
    /// Train a grid of architectures × losses × seeds with one recipe and summarise it (mean ± std of
    /// top-1 per architecture and loss, as the paper's Table 4); rerun to continue an interrupted grid.
    Compare(compare::CompareArgs),
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
    /// Checkpoint to start from (`.safetensors`, or the authors' `.pth` with --arch); default: the
    /// recipe's finetune.from.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Architecture of a `.pth` without a skipblock record.
    #[arg(long, ignore_case = true, value_parser = crate::cli::classifier_arch())]
    pub arch: Option<Arch>,
    /// Recipe (default: configs/food101-finetune.toml when present, else built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset root (overrides data.root of the recipe).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Train only the new head for this many epochs first (the backbone's weights and batch-norm
    /// statistics stay as loaded).
    #[arg(long)]
    pub freeze_backbone_epochs: Option<usize>,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(global: &GlobalArgs, command: &ClassifyCommand) -> Result<()> {
    match command {
        ClassifyCommand::Train(a) => train(global, a),
        ClassifyCommand::Finetune(a) => finetune(global, a),
        ClassifyCommand::Eval(a) => super::with_amp(global, a.amp, || eval::run(global, a)),
        ClassifyCommand::Predict(a) => super::with_amp(global, a.amp, || predict::run(global, a)),
        ClassifyCommand::Compare(a) => compare::run(global, a),
    }
}

fn report(summary: &skipblock_core::train::FitSummary) {
    let best = summary.best_value.map_or("-".into(), |b| format!("{b:.4}"));
    ui::info(format!(
        "done: {} epoch(s); last val_top1 {:.4}, best {best}; run folder {} (best.safetensors, last.safetensors, \
         metrics.csv, curves.png)",
        summary.epochs_run,
        summary.last.val.val_top1.unwrap_or(f64::NAN),
        summary.run_dir.display()
    ));
}

fn train(global: &GlobalArgs, a: &TrainArgs) -> Result<()> {
    let recipe: ClassifyRecipe = config::load_config(Some(&a.config), &a.run.overrides())?;
    let summary = pipeline::train(&recipe, a.data.as_deref(), &a.run.settings(global)?, None)?;
    report(&summary);
    Ok(())
}

fn finetune(global: &GlobalArgs, a: &FinetuneArgs) -> Result<()> {
    let default = PathBuf::from("configs/food101-finetune.toml");
    let path = a.config.clone().or_else(|| default.exists().then_some(default));
    let mut overrides = a.run.overrides();
    if let Some(n) = a.freeze_backbone_epochs {
        overrides.push(format!("finetune.freeze_backbone_epochs={n}"));
    }
    let recipe: ClassifyRecipe = config::load_config(path.as_deref(), &overrides)?;
    let from = StartFrom { checkpoint: a.from.clone(), arch: a.arch };
    let summary = pipeline::train(&recipe, a.data.as_deref(), &a.run.settings(global)?, Some(&from))?;
    report(&summary);
    Ok(())
}

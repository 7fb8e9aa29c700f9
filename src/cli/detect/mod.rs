//! `skipblock detect …`: train an SSD on VOC data, evaluate (mAP, result files, PR curves), predict.

mod eval;
mod predict;

use super::{GlobalArgs, RunArgs};
use anyhow::Result;
use clap::{Args, Subcommand};
use skipblock_core::{config, ui};
use skipblock_detect::pipeline::{self, DetSources};
use skipblock_detect::DetectRecipe;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DetectCommand {
    /// Train an SSD / SSDLite detector on PASCAL VOC data (cosine-annealed SGD by default).
    Train(TrainArgs),
    /// VOC mAP of a detector (or of result files from any detector) on a split.
    Eval(eval::EvalArgs),
    /// Detect objects in images, folders, video files or a webcam.
    Predict(predict::PredictArgs),
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Recipe (TOML), e.g. configs/voc-ssdlite-skipblocknet-s.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// VOC root(s) such as VOCdevkit/VOC2012 (repeatable; overrides data.roots).
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// Class names, one per line (default: the recipe's, else the 20 VOC classes).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// ImageNet classifier checkpoint to initialise the backbone from.
    #[arg(long)]
    pub backbone: Option<PathBuf>,
    /// Fit the prior sizes and aspect ratios to the training boxes (ssd.priors.auto = true); the run's
    /// config and checkpoints keep the fitted priors.
    #[arg(long)]
    pub auto_priors: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(global: &GlobalArgs, command: &DetectCommand) -> Result<()> {
    match command {
        DetectCommand::Train(a) => train(global, a),
        DetectCommand::Eval(a) => super::with_amp(global, a.amp, || eval::run(global, a)),
        DetectCommand::Predict(a) => super::with_amp(global, a.amp, || predict::run(global, a)),
    }
}

fn train(global: &GlobalArgs, a: &TrainArgs) -> Result<()> {
    let mut recipe: DetectRecipe = config::load_config(Some(&a.config), &a.run.overrides())?;
    recipe.ssd.priors.auto |= a.auto_priors;
    let sources = DetSources { data: a.data.clone(), labels: a.labels.clone(), backbone: a.backbone.clone() };
    let s = pipeline::train(&recipe, &sources, &a.run.settings(global)?)?;
    ui::info(format!(
        "done: {} epoch(s); last val_map {:.4}, best {}; run folder {}",
        s.epochs_run,
        s.last.val.val_map.unwrap_or(f64::NAN),
        s.best_value.map_or("-".into(), |b| format!("{b:.4}")),
        s.run_dir.display()
    ));
    Ok(())
}

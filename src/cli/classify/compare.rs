//! `skipblock classify compare`: architectures × losses × seeds on one dataset and one recipe, then the
//! Table-4-style summary (see [`skipblock_classify::compare`]).

use crate::cli::{GlobalArgs, RecipeOverrides};
use anyhow::Result;
use clap::Args;
use skipblock_classify::compare::{self, CompareOptions, Grid, SUMMARY_CSV, SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG};
use skipblock_classify::ClassifyRecipe;
use skipblock_core::loss::LossKind;
use skipblock_core::model::Arch;
use skipblock_core::{config, ui};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Recipe (TOML) every cell is trained with, e.g. configs/cifar100-skipblocknet-m.toml; its
    /// model.arch and loss.kind are replaced by each cell's.
    #[arg(long)]
    pub config: PathBuf,
    /// Dataset root (overrides data.root of the recipe).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Architecture of the grid (repeatable).
    #[arg(long, required = true, ignore_case = true, value_parser = crate::cli::classifier_arch())]
    pub arch: Vec<Arch>,
    /// Loss of the grid (repeatable): ce, bias, focal, label-smoothing.
    #[arg(long, required = true)]
    pub loss: Vec<LossKind>,
    /// Seeds per (arch, loss): --seed, --seed + 1, … (each seeds the weights, the shuffling and the
    /// augmentation of its runs).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Grid folder name: <runs-dir>/<name>/ (default: compare-<recipe name>).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Train at most N cells in this invocation (finished ones are skipped without counting); run the
    /// same command again to continue.
    #[arg(long)]
    pub max_cells: Option<usize>,
    #[command(flatten)]
    pub recipe: RecipeOverrides,
}

pub fn run(global: &GlobalArgs, a: &CompareArgs) -> Result<()> {
    if skipblock_core::dist::DistEnv::from_env()?.is_some_and(|e| e.world_size > 1) {
        anyhow::bail!(
            "classify compare runs its grid in one process: launch it without torchrun (RANK and WORLD_SIZE are set)"
        );
    }
    let overrides = a.recipe.overrides(Vec::new());
    let recipe: ClassifyRecipe = config::load_config(Some(&a.config), &overrides)?;
    let base = global.seed.unwrap_or(0);
    let grid = Grid::new(a.arch.clone(), a.loss.clone(), (base..base + a.seeds).collect())?;
    let name = a.name.clone().unwrap_or_else(|| format!("compare-{}", recipe.name));
    let dir = a.runs_dir.join(name);
    let options = CompareOptions { dir: dir.clone(), device: global.device()?, max_cells: a.max_cells };
    let summary = compare::run(&recipe, a.data.as_deref(), &grid, &options)?;
    println!("{}", summary.markdown(&grid));
    ui::info(format!(
        "{}/{} cells finished; summary in {} ({SUMMARY_MD}, {SUMMARY_CSV}, {SUMMARY_JSON}, {SUMMARY_PNG})",
        summary.cells_finished,
        summary.cells_total,
        dir.display()
    ));
    Ok(())
}

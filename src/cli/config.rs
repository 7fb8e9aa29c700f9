//! `skipblock config show RECIPE [--set k=v]...`: the effective recipe after defaults and overrides.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use skipblock_classify::ClassifyRecipe;
use skipblock_core::{config, Task};
use skipblock_detect::DetectRecipe;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective recipe (file + defaults + overrides) as TOML; unknown keys are errors.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// A recipe from configs/ (or your own).
    pub config: PathBuf,
    /// Override a field: --set optim.lr=0.01 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// The pipeline a recipe is for: its top-level `task` key (classify when absent).
pub fn task_of(path: &Path) -> Result<Task> {
    #[derive(serde::Deserialize)]
    struct TaskKey {
        #[serde(default)]
        task: Task,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read config file '{}'", path.display()))?;
    let key: TaskKey = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!("config file '{}': {} (task is classify or detect)", path.display(), e.message())
    })?;
    Ok(key.task)
}

pub fn run(command: &ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Show(a) => {
            let text = match task_of(&a.config)? {
                Task::Classify => {
                    config::to_toml(&config::load_config::<ClassifyRecipe>(Some(&a.config), &a.overrides)?)?
                }
                Task::Detect => config::to_toml(&config::load_config::<DetectRecipe>(Some(&a.config), &a.overrides)?)?,
            };
            print!("{text}");
            Ok(())
        }
    }
}

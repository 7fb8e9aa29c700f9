//! `skipblock config show RECIPE [--set k=v]...`: the effective recipe after defaults and overrides.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use skipblock_classify::ClassifyRecipe;
use skipblock_core::config;
use std::path::PathBuf;

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

/// The pipeline a recipe is for: its top-level `task` key.
pub fn task_of(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file '{}'", path.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file '{}': {}", path.display(), e.message()))?;
    Ok(table.get("task").and_then(|t| t.as_str()).unwrap_or("classify").to_string())
}

pub fn run(command: &ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Show(a) => {
            let text = match task_of(&a.config)?.as_str() {
                "classify" => config::to_toml(&config::load_config::<ClassifyRecipe>(Some(&a.config), &a.overrides)?)?,
                "detect" => config::to_toml(&config::load_config::<skipblock_detect::DetectRecipe>(Some(&a.config), &a.overrides)?)?,
                other => bail!("config file '{}': unknown task '{other}' (expected classify or detect)", a.config.display()),
            };
            print!("{text}");
            Ok(())
        }
    }
}

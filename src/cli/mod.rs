//! The command-line interface (clap derive), in the style of `yolo detect predict`: a task group, then a
//! verb. Global flags (`--device`, `--threads`, `--seed`, `-v`/`-q`) apply to every command.

mod bench;
mod classify;
mod config;
mod info;
mod model;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use skipblock_core::{device, ui};

#[derive(Parser, Debug)]
#[command(
    name = "skipblock",
    version,
    about = "Train and run SkipblockNet classifiers and SSD detectors with the bias loss (libtorch)",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Compute device: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto")]
    pub device: String,
    /// CPU threads for libtorch (0 = one per core).
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
    /// Random seed (weights init, augmentation, shuffling).
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// More output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only warnings, errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl GlobalArgs {
    /// The device named by `--device`, checked against what libtorch sees.
    pub fn device(&self) -> Result<tch::Device> {
        device::parse_device(&self.device)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Versions and devices: libtorch, CPU threads, CUDA, cuDNN, OpenCV, cargo features.
    Info(info::InfoArgs),
    /// Architectures: summary (params, MACs), import of the authors' weights, feature variance.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Speed against PyTorch eager (same architecture and weights, same run).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Recipes: show the effective configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Classification: predict.
    #[command(subcommand)]
    Classify(classify::ClassifyCommand),
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    let g = &cli.global;
    ui::set_verbosity(if g.quiet { -1 } else { g.verbose as i8 });
    device::configure_runtime(g.threads, g.seed);
    match &cli.command {
        Command::Info(args) => info::run(g, args),
        Command::Model(c) => model::run(g, c),
        Command::Classify(c) => classify::run(g, c),
        Command::Config(c) => config::run(c),
        Command::Bench(c) => bench::run(g, c),
    }
}

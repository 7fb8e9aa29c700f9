//! The command-line interface (clap derive), in the style of `yolo detect predict`: a task group, then a
//! verb. Global flags (`--device`, `--threads`, `--seed`, `-v`/`-q`) apply to every command.

mod bench;
mod bench_export;
mod bench_train;
mod classify;
mod config;
mod data;
mod detect;
mod export;
mod info;
mod json;
mod model;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use skipblock_core::loss::LossKind;
use skipblock_core::{device, ui};
use std::path::PathBuf;

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

/// The recipe overrides every training command takes (`classify train/finetune/compare`, `detect train`).
#[derive(Args, Debug, Clone)]
pub struct RecipeOverrides {
    /// Override a recipe field: --set optim.lr=0.01 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Shortcut for --set train.epochs=N.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Shortcut for --set train.batch_size=N.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Shortcut for --set optim.lr=X.
    #[arg(long)]
    pub lr: Option<f64>,
}

impl RecipeOverrides {
    /// The shortcuts as `--set` overrides, then `more`, then the explicit `--set`s (which win).
    pub fn overrides(&self, more: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = self.epochs {
            out.push(format!("train.epochs={e}"));
        }
        if let Some(b) = self.batch {
            out.push(format!("train.batch_size={b}"));
        }
        if let Some(lr) = self.lr {
            out.push(format!("optim.lr={lr:e}"));
        }
        out.extend(more);
        out.extend(self.set.iter().cloned());
        out
    }
}

/// The flags of every training command (`classify train/finetune`, `detect train`).
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Run name: outputs go to <runs-dir>/<name>/ (default: the recipe's name).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Continue the run from its last.state.safetensors (same optimiser, schedule, EMA, RNG).
    #[arg(long)]
    pub resume: bool,
    /// Start over in an existing run folder.
    #[arg(long)]
    pub exist_ok: bool,
    /// Stop after this many epochs of this invocation (continue later with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    #[command(flatten)]
    pub recipe: RecipeOverrides,
    /// Shortcut for --set loss.kind=K (ce, bias, focal, label-smoothing).
    #[arg(long)]
    pub loss: Option<LossKind>,
    /// Shortcut for --set train.amp=A: mixed precision off, bf16 (CPU and CUDA) or fp16 (CUDA, loss
    /// scaling).
    #[arg(long, value_enum)]
    pub amp: Option<skipblock_core::recipe::Amp>,
    /// Shortcut for --set train.memory_format=F: auto (channels-last on CUDA and the CPU), channels-last or nchw.
    #[arg(long, value_enum)]
    pub memory_format: Option<skipblock_core::recipe::MemoryFormat>,
    /// Data-parallel collectives when launched by torchrun (RANK, WORLD_SIZE, … set): nccl (default on
    /// CUDA) or gloo (default on the CPU). Each rank runs on cuda:LOCAL_RANK with --device auto|cuda.
    #[arg(long, value_enum)]
    pub dist_backend: Option<skipblock_core::dist::Backend>,
}

/// Runs an inference command under `--amp` (autocast on the command's device).
pub fn with_amp(global: &GlobalArgs, amp: skipblock_core::recipe::Amp, f: impl FnOnce() -> Result<()>) -> Result<()> {
    skipblock_core::train::speed::Precision::new(amp, global.device()?)?.run(f)?
}

impl RunArgs {
    /// The typed flags as `--set` overrides, then the explicit ones (which win).
    pub fn overrides(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(kind) = self.loss {
            out.push(format!("loss.kind={}", serde_json::to_string(&kind).expect("a unit enum serialises")));
        }
        if let Some(amp) = self.amp {
            out.push(format!("train.amp={}", serde_json::to_string(&amp).expect("a unit enum serialises")));
        }
        if let Some(f) = self.memory_format {
            out.push(format!("train.memory_format={}", serde_json::to_string(&f).expect("a unit enum serialises")));
        }
        self.recipe.overrides(out)
    }

    /// The run's settings; under a launcher (torchrun's variables set) this process also joins the job's
    /// process group and takes its rank's device.
    pub fn settings(&self, global: &GlobalArgs) -> Result<skipblock_core::train::RunSettings> {
        use skipblock_core::dist;
        let mut device = global.device()?;
        match dist::DistEnv::from_env()? {
            Some(env) => {
                device = dist::rank_device(&global.device, device, &env);
                let backend = self.dist_backend.unwrap_or_else(|| dist::Backend::default_for(device));
                if dist::group().is_none() {
                    dist::init(&env, backend, device, dist::env::timeout()?)?;
                }
            }
            None if self.dist_backend.is_some() => {
                ui::warn("--dist-backend is ignored: not launched by torchrun (RANK and WORLD_SIZE are not set)")
            }
            None => {}
        }
        Ok(skipblock_core::train::RunSettings {
            runs_dir: self.runs_dir.clone(),
            name: self.name.clone(),
            resume: self.resume,
            exist_ok: self.exist_ok,
            stop_after: self.stop_after,
            device,
            seed: global.seed.unwrap_or(0),
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Versions and devices: libtorch, CPU threads, CUDA, cuDNN, OpenCV, cargo features.
    Info(info::InfoArgs),
    /// Classification: train, finetune, eval, predict, compare.
    #[command(subcommand)]
    Classify(classify::ClassifyCommand),
    /// Detection: train, eval, predict (images, folders, video, webcam).
    #[command(subcommand)]
    Detect(detect::DetectCommand),
    /// Architectures: the list, summaries (params, MACs), importing state dicts, feature variance.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Datasets: synthetic classification / VOC data, checking a VOC dataset.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Recipes: show the effective configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Speed against PyTorch eager (same architecture and weights, same run).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// A classifier or detector to ONNX (written from Rust) or TorchScript (traced), for deployment (on
    /// the CPU; the file contract is in docs/export.md).
    Export(export::ExportArgs),
}

/// A classifier checkpoint on the command line: ours, or the authors' `.pth` with its architecture named.
#[derive(Args, Debug, Clone)]
pub struct ClassifierWeights {
    /// Checkpoint: `.safetensors` of ours, or the authors' `.pth` with --arch.
    #[arg(long)]
    pub weights: PathBuf,
    /// Architecture of a `.pth` state dict without a skipblock record.
    #[arg(long, ignore_case = true, value_parser = classifier_arch())]
    pub arch: Option<skipblock_core::Arch>,
}

impl ClassifierWeights {
    /// The classifier, batch norms folded (inference).
    pub fn load(&self, device: tch::Device) -> Result<skipblock_classify::Classifier> {
        let mut model = skipblock_classify::Classifier::load(&self.weights, self.arch, device)?;
        model.fuse_bn();
        Ok(model)
    }
}

/// The value parser of an `--arch` that must name a classifier: only classifiers are possible values
/// (with their aliases, case-insensitive when the argument says so).
pub fn classifier_arch() -> impl clap::builder::TypedValueParser<Value = skipblock_core::Arch> {
    use clap::builder::TypedValueParser;
    let values = skipblock_core::Arch::classifiers().filter_map(|a| clap::ValueEnum::to_possible_value(&a));
    clap::builder::PossibleValuesParser::new(values)
        .map(|name| name.parse::<skipblock_core::Arch>().expect("a possible value names an architecture"))
}

/// A command-line error as one line, like every other error of the binary: clap's message with its
/// hints (`[possible values: …]`, `tip: …`) joined, without the usage block.
fn one_line(error: &clap::Error) -> String {
    error
        .render()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run() -> Result<()> {
    use clap::error::ErrorKind;
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap prints them.
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => e.exit(),
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => anyhow::bail!("{} (see --help)", one_line(&e)),
    };
    let g = &cli.global;
    ui::set_verbosity(if g.quiet { -1 } else { g.verbose as i8 });
    device::configure_runtime(g.threads, g.seed);
    match &cli.command {
        Command::Info(args) => info::run(g, args),
        Command::Model(c) => model::run(g, c),
        Command::Classify(c) => classify::run(g, c),
        Command::Config(c) => config::run(c),
        Command::Bench(c) => bench::run(g, c),
        Command::Data(c) => data::run(c),
        Command::Detect(c) => detect::run(g, c),
        Command::Export(a) => export::run(a),
    }
}

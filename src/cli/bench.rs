//! `skipblock bench …`: our speed next to the reference a user would otherwise pick (PyTorch eager in
//! Python, the same architecture and weights, measured in the same run), with the ratio ours/reference
//! (< 1 means we are faster).

use super::GlobalArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use skipblock_core::loss::{Loss, LossConfig};
use skipblock_core::model::{loader, BlockOptions};
use skipblock_core::recipe::OptimSection;
use skipblock_core::train::optim::Optimizer;
use skipblock_core::{checkpoint, ui};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// SkipblockNet-M forward, batch 1, 224×224, one thread and all threads, vs PyTorch eager.
    Backbone(CommonArgs),
    /// One training step (batch 32, 224×224, bias loss, SGD) vs PyTorch eager.
    TrainStep(CommonArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// Python with torch for the reference (default: .venv/bin/python, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip the PyTorch reference.
    #[arg(long)]
    pub no_reference: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Row {
    name: String,
    unit: &'static str,
    ours: f64,
    reference: Option<f64>,
    /// ours / reference for times (< 1: faster than the reference).
    ratio: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time_ms(iters: usize, warmup: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    median((0..iters.max(1)).map(|_| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    }).collect())
}

/// The reference script shipped with the repository.
fn reference_script() -> Result<PathBuf> {
    let candidates = [PathBuf::from("tests/python/bench_ref.py"), Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/bench_ref.py")];
    candidates.into_iter().find(|p| p.exists()).context("tests/python/bench_ref.py not found: run bench from the repository root")
}

fn python(args: &CommonArgs) -> PathBuf {
    args.python.clone().unwrap_or_else(|| {
        let venv = PathBuf::from(".venv/bin/python");
        if venv.exists() { venv } else { PathBuf::from("python3") }
    })
}

fn run_reference(args: &CommonArgs, what: &str, weights: &Path, threads: usize, batch: usize) -> Result<f64> {
    let out = Command::new(python(args))
        .arg(reference_script()?)
        .args([what, "--weights"])
        .arg(weights)
        .args(["--threads", &threads.to_string(), "--iters", &args.iters.to_string(), "--batch", &batch.to_string()])
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .with_context(|| format!("cannot run {}", python(args).display()))?;
    if !out.status.success() {
        bail!("the PyTorch reference failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("reference output")?;
    v["ms_per_iter"].as_f64().context("reference output has no ms_per_iter")
}

/// SkipblockNet-M with random weights (and non-trivial BN statistics), saved for the reference.
fn model_with_weights(dir: &Path) -> Result<(loader::LoadedClassifier, PathBuf)> {
    let (vs, net) = loader::new_classifier("skipblocknet-m", 1000, Device::Cpu, BlockOptions::default())?;
    let _ = net.forward_t(&Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu)), true);
    let meta = checkpoint::CheckpointMeta { arch: "skipblocknet-m".into(), num_classes: 1000, ..Default::default() };
    let path = dir.join("m.safetensors");
    checkpoint::save(&vs, &path, &meta)?;
    Ok((loader::LoadedClassifier { vs, net, meta }, path))
}

fn all_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn bench_backbone(args: &CommonArgs) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let (mut model, weights) = model_with_weights(dir.path())?;
    model.net.fuse_bn();
    let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
    let mut rows = Vec::new();
    for threads in [1, all_threads()] {
        tch::set_num_threads(threads as i32);
        let ours = tch::no_grad(|| time_ms(args.iters, 3, || {
            let _ = model.net.forward_t(&x, false);
        }));
        let reference = if args.no_reference { None } else { Some(run_reference(args, "forward", &weights, threads, 1)?) };
        rows.push(Row { name: format!("skipblocknet-m forward b1 224 {threads} thread(s)"), unit: "ms", ours, ratio: reference.map(|r| ours / r), reference });
    }
    Ok(rows)
}

fn bench_train_step(args: &CommonArgs) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let (model, weights) = model_with_weights(dir.path())?;
    let threads = all_threads();
    tch::set_num_threads(threads as i32);
    let batch = 32;
    let x = Tensor::randn([batch, 3, 224, 224], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(1000, [batch], (Kind::Int64, Device::Cpu));
    let mut loss = Loss::new(LossConfig::default())?;
    let mut opt = Optimizer::new(&model.vs, &OptimSection { lr: 0.01, ..Default::default() });
    let iters = args.iters.clamp(1, 10);
    let ours = time_ms(iters, 2, || {
        opt.zero_grad();
        let out = model.net.forward_t(&x, true);
        let l = loss.compute(&out.logits, Some(&out.features), &y).expect("bias loss on a valid batch");
        l.loss.backward();
        opt.step();
    });
    let reference = if args.no_reference {
        None
    } else {
        Some(run_reference(&CommonArgs { iters, ..args.clone() }, "train-step", &weights, threads, batch as usize)?)
    };
    Ok(vec![Row { name: format!("train step b{batch} 224 bias loss SGD {threads} thread(s)"), unit: "ms", ours, ratio: reference.map(|r| ours / r), reference }])
}

pub fn run(_global: &GlobalArgs, command: &BenchCommand) -> Result<()> {
    let (rows, args) = match command {
        BenchCommand::Backbone(a) => (bench_backbone(a)?, a),
        BenchCommand::TrainStep(a) => (bench_train_step(a)?, a),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<48} {:>12} {:>14} {:>8}", "benchmark", "ours", "pytorch eager", "ratio");
    for r in &rows {
        let reference = r.reference.map_or("-".into(), |v| format!("{v:.2} {}", r.unit));
        let ratio = r.ratio.map_or("-".into(), |v| format!("{v:.2}"));
        println!("{:<48} {:>12} {:>14} {:>8}", r.name, format!("{:.2} {}", r.ours, r.unit), reference, ratio);
    }
    ui::info("ratio = ours / reference (< 1: faster than PyTorch eager)");
    Ok(())
}

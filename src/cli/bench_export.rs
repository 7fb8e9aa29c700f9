//! `skipblock bench export`: batch-1 latency of one model in three engines, same file, same machine, same
//! run: the libtorch predictor's forward (this binary), onnxruntime through Python (the reference, on the
//! ONNX file `skipblock export` writes, with the same thread count) and the libtorch-free edge binary
//! (`skipblock-edge bench`, when built). Median and p90 over `--runs` after warm-up; ratios against
//! onnxruntime; the table also goes to `--out` as CSV and Markdown.

use super::export::{export_file, is_detector, ExportArgs};
use super::{ClassifierWeights, GlobalArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use skipblock_core::export::{BatchMode, Format};
use skipblock_detect::detector::Detector;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tch::{Kind, Tensor};

#[derive(Args, Debug, Clone)]
pub struct ExportBenchArgs {
    #[command(flatten)]
    pub weights: ClassifierWeights,
    /// Timed runs per engine (after warm-up).
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Classifiers: the input side (default the checkpoint's crop).
    #[arg(long)]
    pub input: Option<i64>,
    /// The edge binary (default: `skipblock-edge` next to this binary).
    #[arg(long)]
    pub edge: Option<PathBuf>,
    /// Python with onnxruntime (default: .venv/bin/python, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Where the ONNX file, bench.csv and bench.md go.
    #[arg(long, default_value = "runs/bench-export")]
    pub out: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// Latency of one engine (None: not measured, with why).
#[derive(Debug, Clone, Serialize)]
pub struct EngineRow {
    pub engine: String,
    pub median_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    /// median / onnxruntime's median (< 1: faster than onnxruntime).
    pub ratio: Option<f64>,
    pub note: String,
}

#[derive(Deserialize)]
struct Timing {
    median_ms: f64,
    p90_ms: f64,
}

/// Median and p90 (nearest rank) of `times`.
pub fn median_p90(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let p90 = times[((0.9 * (times.len() - 1) as f64).round() as usize).min(times.len() - 1)];
    (times[times.len() / 2], p90)
}

fn time_runs(runs: usize, warmup: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..warmup {
        f();
    }
    median_p90(
        (0..runs.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn script(name: &str) -> Result<PathBuf> {
    [PathBuf::from("tests/python").join(name), Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .with_context(|| format!("tests/python/{name} not found: run bench from the repository root"))
}

/// The one JSON line `{"median_ms":…,"p90_ms":…}` a timing command prints last.
fn timing_of(mut cmd: Command, what: &str) -> Result<Timing> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("{what} failed: {}", err.lines().last().unwrap_or("").trim());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("{what} printed no timing JSON line: {stdout:?}"))
}

fn row(engine: &str, t: Result<(f64, f64)>, note: String) -> EngineRow {
    match t {
        Ok((m, p)) => EngineRow { engine: engine.into(), median_ms: Some(m), p90_ms: Some(p), ratio: None, note },
        Err(e) => {
            EngineRow { engine: engine.into(), median_ms: None, p90_ms: None, ratio: None, note: format!("{e:#}") }
        }
    }
}

pub fn bench_export(global: &GlobalArgs, a: &ExportBenchArgs) -> Result<Vec<EngineRow>> {
    let device = global.device()?;
    if device != tch::Device::Cpu {
        bail!("bench export compares CPU engines: run it with --device cpu");
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create folder '{}'", a.out.display()))?;
    let onnx = a.out.join("model.onnx");
    let export = ExportArgs {
        weights: a.weights.clone(),
        format: Format::Onnx,
        out: onnx.clone(),
        input: a.input,
        batch: BatchMode::One,
        opset: 17,
        nms: false,
        conf: 0.25,
        iou: 0.45,
        max_det: 100,
        json: false,
    };
    let report = export_file(&export)?;
    let side = report.input_size;
    let threads = tch::get_num_threads().max(1) as usize;

    // libtorch: the predictor's network, batch norms folded, as `classify|detect predict` runs it.
    let x = Tensor::randn([1, 3, side, side], (Kind::Float, device));
    let libtorch = if is_detector(&a.weights) {
        let det = Detector::load(&a.weights.weights, device)?;
        time_runs(a.runs, a.warmup, || {
            let _ = tch::no_grad(|| det.ssd.decoded(&x));
        })
    } else {
        let model = a.weights.load(device)?;
        time_runs(a.runs, a.warmup, || {
            let _ = tch::no_grad(|| model.net.forward_t(&x, false).logits);
        })
    };
    let mut rows = vec![row("libtorch (skipblock predict's forward)", Ok(libtorch), format!("threads: {threads}"))];

    let python = a.python.clone().unwrap_or_else(|| {
        let venv = PathBuf::from(".venv/bin/python");
        if venv.exists() {
            venv
        } else {
            PathBuf::from("python3")
        }
    });
    let ort = script("onnx_bench.py").and_then(|s| {
        let mut c = Command::new(&python);
        c.arg(s).arg("--model").arg(&onnx).args(["--runs", &a.runs.to_string(), "--warmup", &a.warmup.to_string()]);
        c.args(["--threads", &threads.to_string()]);
        timing_of(c, "onnxruntime (python)").map(|t| (t.median_ms, t.p90_ms))
    });
    rows.push(row("onnxruntime (python, reference)", ort, format!("intra-op threads: {threads}")));

    let edge = a.edge.clone().or_else(|| Some(std::env::current_exe().ok()?.with_file_name("skipblock-edge")));
    let edge_row = match edge.filter(|p| p.exists()) {
        None => EngineRow {
            engine: "skipblock-edge (tract)".into(),
            median_ms: None,
            p90_ms: None,
            ratio: None,
            note: "not built".into(),
        },
        Some(path) => {
            let mut c = Command::new(&path);
            c.args(["bench", "--model"]).arg(&onnx);
            c.args(["--runs", &a.runs.to_string(), "--input", &side.to_string()]);
            row(
                "skipblock-edge (tract)",
                timing_of(c, &path.display().to_string()).map(|t| (t.median_ms, t.p90_ms)),
                path.display().to_string(),
            )
        }
    };
    rows.push(edge_row);
    let reference = rows[1].median_ms;
    for r in &mut rows {
        r.ratio = r.median_ms.zip(reference).map(|(m, r)| m / r);
    }
    write_tables(&a.out, &rows, &report.file, side)?;
    Ok(rows)
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn write_tables(out: &Path, rows: &[EngineRow], model: &Path, side: i64) -> Result<()> {
    let mut csv = String::from("engine,median_ms,p90_ms,ratio_vs_onnxruntime,note\n");
    let mut md = format!(
        "# bench export: {} at {side}x{side}, batch 1\n\n| engine | median ms | p90 ms | ratio vs onnxruntime | note |\n|---|---|---|---|---|\n",
        model.display()
    );
    for r in rows {
        let (m, p, q) = (fmt(r.median_ms, 3), fmt(r.p90_ms, 3), fmt(r.ratio, 2));
        csv.push_str(&format!("{},{m},{p},{q},\"{}\"\n", r.engine, r.note.replace('"', "'")));
        md.push_str(&format!("| {} | {m} | {p} | {q} | {} |\n", r.engine, r.note));
    }
    skipblock_core::tensors::write_atomic(&out.join("bench.csv"), csv.as_bytes())?;
    skipblock_core::tensors::write_atomic(&out.join("bench.md"), md.as_bytes())
}

pub fn run(global: &GlobalArgs, a: &ExportBenchArgs) -> Result<()> {
    let rows = bench_export(global, a)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<40} {:>12} {:>12} {:>10}  note", "engine (batch 1)", "median ms", "p90 ms", "ratio");
    for r in &rows {
        println!(
            "{:<40} {:>12} {:>12} {:>10}  {}",
            r.engine,
            fmt(r.median_ms, 3),
            fmt(r.p90_ms, 3),
            fmt(r.ratio, 2),
            r.note
        );
    }
    skipblock_core::ui::info(format!(
        "ratio = median / onnxruntime's (< 1: faster); tables in {}",
        a.out.join("bench.md").display()
    ));
    Ok(())
}

//! `skipblock-edge`: exported skipblock networks (ONNX) on images and folders with tract, no libtorch and
//! no OpenCV. See docs/edge.md.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use skipblock_edge::classify::{top_k, Prediction};
use skipblock_edge::detect::{from_selected, per_class_nms, to_pixels, Record, Thresholds};
use skipblock_edge::meta::Task;
use skipblock_edge::model::{io_names, read_proto, EdgeModel};
use skipblock_edge::{bench, preprocess};
use skipblock_pixels::folder::expand_sources;
use skipblock_pixels::read_image;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "skipblock-edge", version, about = "Run an exported skipblock ONNX file (skipblock export) with tract: no libtorch, no OpenCV")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Top-k classes of images and folders (the JSON lines of `skipblock classify predict --json`).
    Classify(ClassifyArgs),
    /// Objects in images and folders (the JSON lines of `skipblock detect predict --json`).
    Detect(DetectArgs),
    /// The file's skipblock metadata, inputs and outputs.
    Info(InfoArgs),
    /// Batch-1 latency: one JSON line {"median_ms":…,"p90_ms":…,"runs":N}.
    Bench(BenchArgs),
}

#[derive(Args)]
struct ClassifyArgs {
    /// The exported classifier (.onnx).
    #[arg(long)]
    model: PathBuf,
    /// Images or folders of images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long, default_value_t = 5)]
    topk: usize,
    /// One JSON record per image on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DetectArgs {
    /// The exported detector (.onnx).
    #[arg(long)]
    model: PathBuf,
    /// Images or folders of images.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// Score threshold (default: the file's baked NMS threshold, else 0.25).
    #[arg(long)]
    conf: Option<f32>,
    /// Per-class NMS IoU (default: the file's, else 0.45).
    #[arg(long)]
    iou: Option<f32>,
    /// Detections kept per image (default: the file's, else 100).
    #[arg(long)]
    max_det: Option<usize>,
    /// Suppress overlaps in Rust (the libtorch predictor's postprocessing) even when the file has NMS.
    #[arg(long)]
    rust_nms: bool,
    /// One JSON record per image on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InfoArgs {
    /// An exported file (.onnx).
    #[arg(long)]
    model: PathBuf,
    /// The metadata JSON alone, on one line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// An exported file (.onnx).
    #[arg(long)]
    model: PathBuf,
    /// Timed runs.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Input side S (default: the file's).
    #[arg(long)]
    input: Option<u32>,
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Classify(a) => classify(a),
        Command::Detect(a) => detect(a),
        Command::Info(a) => info(a),
        Command::Bench(a) => bench_cmd(a),
    };
    if let Err(e) = result {
        // A closed pipe (`skipblock-edge … | head`) ends the output quietly.
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            return;
        }
        // One line, whatever the causes' messages hold.
        let msg = format!("{e:#}");
        let msg: Vec<&str> = msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        eprintln!("error: {}", msg.join(" "));
        std::process::exit(1);
    }
}

/// One line on stdout, flushed (an error rather than a panic when the reader has gone).
fn emit(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn classify(a: &ClassifyArgs) -> Result<()> {
    if a.topk == 0 {
        bail!("--topk must be at least 1");
    }
    let images = expand_sources(&a.images)?;
    let model = EdgeModel::load(&a.model, Some(Task::Classify), Some(&["logits"]))?;
    for path in &images {
        let img = read_image(path)?;
        let outs = model.run(preprocess::input_tensor(&model.meta, &img))?;
        let logits = model.output(&outs, "logits")?.as_slice::<f32>()?;
        let top = top_k(logits, a.topk, &model.meta.classes);
        if a.json {
            emit(&serde_json::to_string(&Prediction { image: path, top: &top })?)?;
        } else {
            let tops: Vec<String> = top
                .classes
                .iter()
                .zip(&top.names)
                .zip(&top.probabilities)
                .map(|((c, n), p)| format!("{} {p:.3}", n.clone().unwrap_or_else(|| format!("#{c}"))))
                .collect();
            emit(&format!("{}: {}", path.display(), tops.join(", ")))?;
        }
    }
    Ok(())
}

fn detect(a: &DetectArgs) -> Result<()> {
    let images = expand_sources(&a.sources)?;
    let (proto, meta) = read_proto(&a.model)?;
    let has_selected = io_names(&proto).1.iter().any(|o| o == "selected");
    let baked = meta.nms.filter(|_| has_selected);
    let t = Thresholds {
        conf: a.conf.or(baked.map(|b| b.score_threshold)).unwrap_or(0.25),
        iou: a.iou.or(baked.map(|b| b.iou_threshold)).unwrap_or(0.45),
        max_det: a.max_det.or(baked.map(|b| b.max_det)).unwrap_or(100),
    };
    // The graph's NMS gives the command's answer when its thresholds are at least as loose.
    let graph_nms = !a.rust_nms
        && baked.is_some_and(|b| t.iou == b.iou_threshold && t.conf >= b.score_threshold && t.max_det <= b.max_det);
    if let Some(b) = baked.filter(|_| !graph_nms && !a.rust_nms) {
        eprintln!(
            "note: the file's NMS was exported with conf {} iou {} max-det {}; suppressing in Rust for conf {} iou {} max-det {}",
            b.score_threshold, b.iou_threshold, b.max_det, t.conf, t.iou, t.max_det
        );
    }
    let outputs: &[&str] = if graph_nms { &["boxes", "scores", "selected"] } else { &["boxes", "scores"] };
    let model = EdgeModel::load(&a.model, Some(Task::Detect), Some(outputs))?;
    for path in &images {
        let img = read_image(path)?;
        let started = Instant::now();
        let outs = model.run(preprocess::input_tensor(&model.meta, &img))?;
        let (boxes, scores) = (model.output(&outs, "boxes")?, model.output(&outs, "scores")?);
        let (bs, ss) = (boxes.shape(), scores.shape());
        if bs.len() != 3 || ss.len() != 3 || bs[2] != 4 || bs[1] != ss[1] {
            bail!("'{}': outputs boxes {bs:?} and scores {ss:?} are not [1, P, 4] and [1, P, C]", a.model.display());
        }
        let num_classes = ss[2];
        let (boxes, scores) = (boxes.as_slice::<f32>()?, scores.as_slice::<f32>()?);
        let dets = if graph_nms {
            let selected = model.output(&outs, "selected")?.cast_to::<i64>()?;
            from_selected(selected.as_slice::<i64>()?, boxes, scores, num_classes, &t)
        } else {
            per_class_nms(boxes, scores, num_classes, &t)
        };
        let dets = to_pixels(&dets, img.width, img.height, &model.meta.classes);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let source = path.display().to_string();
        if a.json {
            let record = Record { source, frame: None, width: img.width, height: img.height, detections: &dets, ms };
            emit(&serde_json::to_string(&record)?)?;
        } else {
            let names: Vec<String> = dets.iter().map(|d| format!("{} {:.2}", d.name, d.score)).collect();
            emit(&format!("{source}: {} object(s) {} ({ms:.1} ms)", dets.len(), names.join(", ")))?;
        }
    }
    Ok(())
}

fn info(a: &InfoArgs) -> Result<()> {
    let (proto, meta) = read_proto(&a.model)?;
    if a.json {
        return emit(&serde_json::to_string(&meta)?);
    }
    let (inputs, outputs) = io_names(&proto);
    emit(&format!("file:     {}", a.model.display()))?;
    emit(&format!("inputs:   {}", inputs.join(", ")))?;
    emit(&format!("outputs:  {}", outputs.join(", ")))?;
    emit(&format!("producer: {} {}", proto.producer_name, proto.producer_version))?;
    emit(&format!("metadata: {}", serde_json::to_string_pretty(&meta).context("metadata")?))
}

fn bench_cmd(a: &BenchArgs) -> Result<()> {
    let model = EdgeModel::load_sized(&a.model, None, None, a.input)?;
    emit(&serde_json::to_string(&bench::latency(&model, a.runs, a.warmup)?)?)
}


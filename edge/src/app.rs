//! The commands of `skipblock-edge`, as functions handing each output line to `emit` (stdout in the
//! binary; a string in [`classify_json`] / [`detect_json`], for tests that compare an exported file with
//! `skipblock … predict --json` through [`crate::compare`]).

use crate::classify::top_k;
use crate::detect::{from_selected, per_class_nms};
use crate::meta::Task;
use crate::model::{io_names, read_proto, EdgeModel};
use crate::preprocess;
use anyhow::{bail, Context, Result};
use clap::Args;
use skipblock_pixels::folder::expand_sources;
use skipblock_pixels::predictions::{to_pixels, ClassPrediction, DetectionRecord, PostprocessConfig};
use skipblock_pixels::read_image;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct ClassifyArgs {
    /// The exported classifier (.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// Images or folders of images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[arg(long, default_value_t = 5)]
    pub topk: usize,
    /// One JSON record per image on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DetectArgs {
    /// The exported detector (.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// Images or folders of images.
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// Score threshold (default: the file's baked NMS threshold, else 0.25).
    #[arg(long)]
    pub conf: Option<f32>,
    /// Per-class NMS IoU (default: the file's, else 0.45).
    #[arg(long)]
    pub iou: Option<f32>,
    /// Detections kept per image (default: the file's, else 100).
    #[arg(long)]
    pub max_det: Option<usize>,
    /// Suppress overlaps in Rust (the libtorch predictor's postprocessing) even when the file has NMS.
    #[arg(long)]
    pub rust_nms: bool,
    /// One JSON record per image on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct InfoArgs {
    /// An exported file (.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// The metadata JSON alone, on one line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// An exported file (.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// Timed runs.
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Input side S (default: the file's).
    #[arg(long)]
    pub input: Option<u32>,
}

pub fn classify(a: &ClassifyArgs, emit: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
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
        let prediction = ClassPrediction { image: path, top: &top };
        emit(&if a.json { serde_json::to_string(&prediction)? } else { prediction.text() })?;
    }
    Ok(())
}

pub fn detect(a: &DetectArgs, emit: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
    let images = expand_sources(&a.sources)?;
    let (proto, meta) = read_proto(&a.model)?;
    let has_selected = io_names(&proto).1.iter().any(|o| o == "selected");
    let baked = meta.nms.filter(|_| has_selected);
    let t = PostprocessConfig::for_predict(
        a.conf.or(baked.map(|b| b.score_threshold)).unwrap_or(0.25),
        a.iou.or(baked.map(|b| b.iou_threshold)).unwrap_or(0.45),
        a.max_det.or(baked.map(|b| b.max_det)).unwrap_or(100),
    );
    // The graph's NMS gives the command's answer when its thresholds are at least as loose.
    let graph_nms = !a.rust_nms
        && baked.is_some_and(|b| {
            t.nms_iou == b.iou_threshold && t.score_threshold >= b.score_threshold && t.top_k <= b.max_det
        });
    if let Some(b) = baked.filter(|_| !graph_nms && !a.rust_nms) {
        eprintln!(
            "note: the file's NMS was exported with conf {} iou {} max-det {}; suppressing in Rust for conf {} iou {} max-det {}",
            b.score_threshold, b.iou_threshold, b.max_det, t.score_threshold, t.nms_iou, t.top_k
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
        let record =
            DetectionRecord { source, frame: None, width: img.width, height: img.height, detections: &dets, ms };
        emit(&if a.json { serde_json::to_string(&record)? } else { record.text() })?;
    }
    Ok(())
}

pub fn info(a: &InfoArgs, emit: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
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

pub fn bench(a: &BenchArgs, emit: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
    let model = EdgeModel::load_sized(&a.model, None, None, a.input)?;
    emit(&serde_json::to_string(&crate::bench::latency(&model, a.runs, a.warmup)?)?)
}

/// `skipblock-edge classify --model MODEL SOURCES… --topk K --json`: its stdout.
pub fn classify_json(model: &Path, sources: &[PathBuf], topk: usize) -> Result<String> {
    let a = ClassifyArgs { model: model.to_path_buf(), images: sources.to_vec(), topk, json: true };
    let mut out = String::new();
    classify(&a, &mut |l| {
        out += l;
        out.push('\n');
        Ok(())
    })?;
    Ok(out)
}

/// `skipblock-edge detect --model MODEL SOURCES… --json` with the thresholds given (the file's or
/// `detect predict`'s defaults for `None`): its stdout.
pub fn detect_json(
    model: &Path,
    sources: &[PathBuf],
    conf: Option<f32>,
    iou: Option<f32>,
    max_det: Option<usize>,
) -> Result<String> {
    let a = DetectArgs {
        model: model.to_path_buf(),
        sources: sources.to_vec(),
        conf,
        iou,
        max_det,
        rust_nms: false,
        json: true,
    };
    let mut out = String::new();
    detect(&a, &mut |l| {
        out += l;
        out.push('\n');
        Ok(())
    })?;
    Ok(out)
}

//! `skipblock export`: a classifier or detector checkpoint to ONNX (written from Rust) or TorchScript
//! (traced), batch norms folded, eval mode; the file contract is in `docs/export.md`.

use super::ClassifierWeights;
use anyhow::{bail, Result};
use clap::Args;
use skipblock_core::checkpoint;
use skipblock_core::export::{self, BatchMode, ExportMeta, ExportRequest, Format, NmsParams};
use skipblock_core::Task;
use skipblock_data::transforms::{IMAGENET_MEAN, IMAGENET_STD};
use skipblock_detect::detector::Detector;
use std::path::PathBuf;
use tch::Kind;

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub weights: ClassifierWeights,
    /// File format: onnx (written from Rust) or torchscript (traced; metadata in FILE.json).
    #[arg(long, value_enum)]
    pub format: Format,
    /// The file to write (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Input side S (classifiers: the crop, default the checkpoint's; detectors: their trained size).
    #[arg(long)]
    pub input: Option<i64>,
    /// Batch dimension: 1, or dynamic (a symbolic `batch`; ONNX only).
    #[arg(long, value_enum, default_value = "1")]
    pub batch: BatchMode,
    /// ONNX opset (14..=21).
    #[arg(long, default_value_t = 17)]
    pub opset: i64,
    /// Detectors: append ONNX NonMaxSuppression (output `selected`), thresholds from --conf/--iou/--max-det.
    #[arg(long)]
    pub nms: bool,
    /// Score threshold baked into --nms (as `detect predict --conf`).
    #[arg(long, default_value_t = 0.25)]
    pub conf: f32,
    /// NMS IoU baked into --nms (as `detect predict --iou`).
    #[arg(long, default_value_t = 0.45)]
    pub iou: f32,
    /// Boxes kept per class by --nms (as `detect predict --max-det`).
    #[arg(long, default_value_t = 100)]
    pub max_det: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn base_meta(task: Task, arch: skipblock_core::Arch, input: i64, a: &ExportArgs) -> ExportMeta {
    ExportMeta {
        format_version: export::FORMAT_VERSION,
        task,
        arch: arch.to_string(),
        input,
        resize: None,
        crop: None,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        classes: Vec::new(),
        nms: None,
        batch: a.batch,
        opset: (a.format == Format::Onnx).then_some(a.opset),
    }
}

/// Whether `weights` is a detector checkpoint (ours, with a record saying so).
pub fn is_detector(weights: &ClassifierWeights) -> bool {
    checkpoint::load_meta(&weights.weights).map(|m| m.task == Task::Detect).unwrap_or(false)
}

/// Exports per `a`; returns what was written. The export runs on the CPU whatever `--device` says (the
/// files then hold CPU tensors and load anywhere).
pub fn export_file(a: &ExportArgs) -> Result<export::ExportReport> {
    let device = tch::Device::Cpu;
    if a.input.is_some_and(|s| !(16..=4096).contains(&s)) {
        bail!("--input {} is out of range (16..=4096)", a.input.unwrap_or(0));
    }
    let report = if is_detector(&a.weights) {
        if a.weights.arch.is_some() {
            bail!("--arch is for classifier state dicts; '{}' is a detector checkpoint", a.weights.weights.display());
        }
        let mut det = Detector::load(&a.weights.weights, device)?;
        det.vs.freeze();
        let s = det.input_size() as i64;
        if a.input.is_some_and(|i| i != s) {
            bail!(
                "a detector is exported at the input size it was built for ({s}: its priors), not --input {}",
                a.input.unwrap_or(0)
            );
        }
        let nms = a.nms.then_some(NmsParams { score_threshold: a.conf, iou_threshold: a.iou, max_det: a.max_det });
        let mut meta = base_meta(Task::Detect, det.meta.arch, s, a);
        meta.classes = det.meta.class_names.clone();
        meta.nms = nms;
        let req = ExportRequest { format: a.format, out: &a.out, meta, outputs: vec!["boxes", "scores"], nms, device };
        export::export(&req, |xs| {
            let (boxes, scores) = det.ssd.decoded(xs);
            vec![boxes, scores]
        })?
    } else {
        if a.nms {
            bail!("--nms is for detectors; '{}' is a classifier", a.weights.weights.display());
        }
        let mut model = a.weights.load(device)?;
        model.vs.freeze();
        let model = model.with_geometry(None, a.input.map(|s| s as u32));
        let mut meta = base_meta(Task::Classify, model.meta.arch, model.crop as i64, a);
        meta.resize = Some(model.resize);
        meta.crop = Some(model.crop);
        meta.classes = model.meta.class_names.clone();
        let req = ExportRequest { format: a.format, out: &a.out, meta, outputs: vec!["logits"], nms: None, device };
        export::export(&req, |xs| vec![model.net.forward_t(xs, false).logits.to_kind(Kind::Float)])?
    };
    Ok(report)
}

pub fn run(a: &ExportArgs) -> Result<()> {
    let report = export_file(a)?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!("wrote {} ({:.2} MB) in {:.1} s", report.file.display(), report.bytes as f64 / 1e6, report.seconds);
    for i in &report.inputs {
        println!("  input   {i}");
    }
    for o in &report.outputs {
        println!("  output  {o}");
    }
    if let Some(s) = &report.sidecar {
        println!("  metadata {}", s.display());
    }
    Ok(())
}

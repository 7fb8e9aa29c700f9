//! `skipblock detect eval`: VOC mAP of a detector checkpoint, or of any detector's result files, on a
//! split; in `--out` the precision–recall curves, the F1–confidence curves, the confusion matrix and
//! eval.json; optionally the devkit result files.

use crate::cli::data::class_list;
use crate::cli::GlobalArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use skipblock_core::{loader::LoaderConfig, ui};
use skipblock_data::voc::DetDataset;
use skipblock_detect::evaluator::{evaluate_split, ground_truths};
use skipblock_detect::pipeline::{open_annotations, open_split};
use skipblock_detect::postprocess::PostprocessConfig;
use skipblock_detect::voc_map::confusion::{DEFAULT_CONF, DEFAULT_IOU};
use skipblock_detect::voc_map::f1::f1_at;
use skipblock_detect::voc_map::{
    f1_curves, mean_average_precision, read_result_files, save_confusion_matrix, save_f1_curve, save_pr_curves,
    write_result_files, DetectionConfusion, DetectionRecord, EvalResult, GroundTruth, Metric,
};
use skipblock_detect::Detector;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Detector checkpoint (from `detect train`).
    #[arg(long, conflicts_with = "detections", required_unless_present = "detections")]
    pub weights: Option<PathBuf>,
    /// Evaluate result files (comp4_det_<split>_<class>.txt) from any detector instead (needs only
    /// Annotations/ and ImageSets/Main/, not the images).
    #[arg(long)]
    pub detections: Option<PathBuf>,
    /// VOC root(s) with the ground truth (repeatable).
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Class names, one per line (default: the checkpoint's, else the 20 VOC classes).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Metric::Voc07)]
    pub metric: Metric,
    #[arg(long, default_value_t = 0.5)]
    pub iou: f32,
    /// Write VOC result files (comp4_det_<split>_<class>.txt) here.
    #[arg(long)]
    pub save_detections: Option<PathBuf>,
    /// Where the pictures (pr_curves.png, f1_curve.png, confusion_matrix.png) and eval.json go.
    #[arg(long, default_value = "runs/detect-eval")]
    pub out: PathBuf,
    /// Confusion matrix: detections count when they score more than this.
    #[arg(long, default_value_t = DEFAULT_CONF)]
    pub matrix_conf: f32,
    /// Confusion matrix: a detection matches a ground truth when their IoU is more than this.
    #[arg(long, default_value_t = DEFAULT_IOU)]
    pub matrix_iou: f32,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// A problem in the data is an error instead of a warning and a skip.
    #[arg(long)]
    pub strict: bool,
    #[arg(long)]
    pub json: bool,
    /// Mixed precision of the forward pass (autocast): off, bf16 (CPU and CUDA) or fp16 (CUDA).
    #[arg(long, value_enum, default_value_t = skipblock_core::recipe::Amp::Off)]
    pub amp: skipblock_core::recipe::Amp,
}

/// The pictures `report` writes in `--out`.
pub const PICTURES: [&str; 3] = ["pr_curves.png", "f1_curve.png", "confusion_matrix.png"];
/// Points of the F1–confidence curves.
const F1_POINTS: usize = 1001;

/// The evaluation as eval.json holds it: metric, IoU, mAP, per-class AP and counts, precision, recall and
/// F1 at the threshold of the best mean F1, the confusion matrix (rows predicted, columns true, the
/// background last) and the pictures.
pub fn eval_json(result: &EvalResult, confusion: &DetectionConfusion) -> serde_json::Value {
    let best = f1_curves(result, F1_POINTS).best;
    let classes: Vec<serde_json::Value> = result
        .per_class
        .iter()
        .map(|c| {
            let mut v = serde_json::json!({"class": c.name, "ap": c.ap, "num_gt": c.num_gt, "num_det": c.num_det});
            if let Some((p, r, f)) = best.and_then(|(t, _)| f1_at(c, t)) {
                v["precision"] = short(p as f32).into();
                v["recall"] = short(r as f32).into();
                v["f1"] = f.into();
            }
            v
        })
        .collect();
    serde_json::json!({
        "metric": result.metric,
        "iou": short(result.iou_threshold),
        "map": result.map,
        "best_f1": best.map(|(t, f)| serde_json::json!({"confidence": short(t), "f1": f})),
        "classes": classes,
        "confusion_matrix": {
            "conf": short(confusion.conf),
            "iou": short(confusion.iou),
            "labels": confusion.labels(),
            "counts": confusion.counts,
        },
        "pictures": PICTURES,
    })
}

/// An `f32` as the shortest decimal that reads back as it (0.314, not 0.3140000104904175).
fn short(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// Prints (or emits as JSON) an evaluation, and saves the pictures ([`PICTURES`]) and eval.json in
/// `out`.
pub fn report(result: &EvalResult, confusion: &DetectionConfusion, out: &Path, json: bool) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    save_pr_curves(result, &out.join(PICTURES[0]))?;
    save_f1_curve(result, &out.join(PICTURES[1]))?;
    save_confusion_matrix(confusion, &out.join(PICTURES[2]))?;
    let value = eval_json(result, confusion);
    let text = crate::cli::json::to_string_compact_arrays(&value);
    skipblock_core::tensors::write_atomic(&out.join("eval.json"), text.as_bytes())?;
    if json {
        println!("{text}");
    } else {
        println!("{:<20} {:>8} {:>8} {:>8}", "class", "AP", "gt", "dets");
        for c in &result.per_class {
            println!("{:<20} {:>8.4} {:>8} {:>8}", c.name, c.ap, c.num_gt, c.num_det);
        }
        println!("mAP ({}) {:.4}", result.metric, result.map);
        if let Some((t, f)) = f1_curves(result, F1_POINTS).best {
            println!("best mean F1 {f:.4} at confidence {t:.3}");
        }
        ui::info(format!("{} and eval.json in {}", PICTURES.join(", "), out.display()));
    }
    Ok(())
}

/// Evaluates `records` against `gts` (mAP and the confusion matrix) and reports.
fn score_and_report(a: &EvalArgs, gts: &[GroundTruth], records: &[DetectionRecord], result: EvalResult) -> Result<()> {
    let classes: Vec<String> = result.per_class.iter().map(|c| c.name.clone()).collect();
    let confusion = DetectionConfusion::compute(gts, records, &classes, a.matrix_conf, a.matrix_iou)?;
    report(&result, &confusion, &a.out, a.json)
}

pub fn run(global: &GlobalArgs, a: &EvalArgs) -> Result<()> {
    if let Some(dir) = &a.detections {
        let classes = class_list(a.labels.as_deref())?;
        // Annotations and split lists suffice: result files are scored without the images.
        let voc = open_annotations(&a.data, &a.split, &classes, a.strict)?;
        let records = read_result_files(dir, &classes)?;
        let gts = ground_truths(&voc, usize::MAX);
        let result = mean_average_precision(&gts, &records, &classes, a.metric, a.iou)?;
        return score_and_report(a, &gts, &records, result);
    }
    let weights = a.weights.as_ref().context("--weights or --detections is required")?;
    let device = global.device()?;
    let detector = Detector::load(weights, device)?;
    let classes = match &a.labels {
        Some(p) => skipblock_data::voc::read_labels(p)?,
        None => detector.meta.class_names.clone(),
    };
    if classes.len() + 1 != detector.ssd.config.num_classes as usize {
        bail!(
            "{} class names for a detector of {} classes (+ background)",
            classes.len(),
            detector.ssd.config.num_classes - 1
        );
    }
    let voc = open_split(&a.data, &a.split, &classes, a.strict)?;
    let gts = ground_truths(&voc, usize::MAX);
    let data = Arc::new(DetDataset::new(voc, detector.input_size(), false));
    let loader = LoaderConfig { batch_size: a.batch.max(1), ..Default::default() };
    let post = PostprocessConfig::default();
    let (result, records) =
        evaluate_split(&detector.ssd, data, device, &loader, &post, a.metric, a.iou, usize::MAX, true)?;
    if let Some(dir) = &a.save_detections {
        let files = write_result_files(dir, &a.split, &classes, &records)?;
        ui::info(format!("{} result files written to {}", files.len(), dir.display()));
    }
    score_and_report(a, &gts, &records, result)
}

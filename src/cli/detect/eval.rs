//! `skipblock detect eval`: VOC mAP of a detector checkpoint, or of any detector's result files, on a
//! split; PR curves, eval.json and optionally the devkit result files.

use crate::cli::data::class_list;
use crate::cli::GlobalArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use skipblock_core::{loader::LoaderConfig, ui};
use skipblock_data::voc::DetDataset;
use skipblock_detect::evaluator::{evaluate_split, ground_truths};
use skipblock_detect::pipeline::open_split;
use skipblock_detect::postprocess::PostprocessConfig;
use skipblock_detect::voc_map::{
    mean_average_precision, read_result_files, save_pr_curves, write_result_files, EvalResult, Metric,
};
use skipblock_detect::Detector;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Detector checkpoint (from `detect train`).
    #[arg(long, conflicts_with = "detections", required_unless_present = "detections")]
    pub weights: Option<PathBuf>,
    /// Evaluate result files (comp4_det_<split>_<class>.txt) from any detector instead.
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
    /// Where the precision–recall curves (pr_curves.png) and eval.json go.
    #[arg(long, default_value = "runs/detect-eval")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// A problem in the data is an error instead of a warning and a skip.
    #[arg(long)]
    pub strict: bool,
    #[arg(long)]
    pub json: bool,
}

/// Prints (or emits as JSON) an evaluation, and saves the PR curves and eval.json in `out`.
pub fn report(result: &EvalResult, out: &Path, json: bool, metric: Metric) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    save_pr_curves(result, &out.join("pr_curves.png"))?;
    let classes: Vec<serde_json::Value> = result
        .per_class
        .iter()
        .map(|c| serde_json::json!({"class": c.name, "ap": c.ap, "num_gt": c.num_gt, "num_det": c.num_det}))
        .collect();
    let value = serde_json::json!({ "metric": metric, "map": result.map, "classes": classes });
    std::fs::write(out.join("eval.json"), serde_json::to_string_pretty(&value)?)
        .with_context(|| format!("cannot write '{}'", out.join("eval.json").display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{:<20} {:>8} {:>8} {:>8}", "class", "AP", "gt", "dets");
        for c in &result.per_class {
            println!("{:<20} {:>8.4} {:>8} {:>8}", c.name, c.ap, c.num_gt, c.num_det);
        }
        println!("mAP ({metric}) {:.4}", result.map);
        ui::info(format!("precision–recall curves: {}", out.join("pr_curves.png").display()));
    }
    Ok(())
}

pub fn run(global: &GlobalArgs, a: &EvalArgs) -> Result<()> {
    if let Some(dir) = &a.detections {
        let classes = class_list(a.labels.as_deref())?;
        let voc = open_split(&a.data, &a.split, &classes, a.strict)?;
        let records = read_result_files(dir, &classes)?;
        let result = mean_average_precision(&ground_truths(&voc, usize::MAX), &records, &classes, a.metric, a.iou)?;
        return report(&result, &a.out, a.json, a.metric);
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
    let data = Arc::new(DetDataset::new(voc, detector.input_size(), false));
    let loader = LoaderConfig { batch_size: a.batch.max(1), ..Default::default() };
    let post = PostprocessConfig::default();
    let (result, records) =
        evaluate_split(&detector.ssd, data, device, &loader, &post, a.metric, a.iou, usize::MAX, true)?;
    if let Some(dir) = &a.save_detections {
        let files = write_result_files(dir, &a.split, &classes, &records)?;
        ui::info(format!("{} result files written to {}", files.len(), dir.display()));
    }
    report(&result, &a.out, a.json, a.metric)
}

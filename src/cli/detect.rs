//! `skipblock detect …`: train an SSD on VOC data, evaluate (mAP, result files, PR curves), predict.

use super::{data::class_list, GlobalArgs, RunArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use skipblock_core::{config, loader::LoaderConfig, ui};
use skipblock_detect::detector::Detector;
use skipblock_detect::eval::{evaluate, read_result_files, save_pr_curves, write_result_files, EvalResult, Metric};
use skipblock_detect::evaluate::{evaluate_split, ground_truths};
use skipblock_detect::pipeline::{self, open_split, DetSources};
use skipblock_detect::postprocess::PostprocessConfig;
use skipblock_detect::DetectRecipe;
use skipblock_data::voc::DetDataset;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum DetectCommand {
    /// Train an SSD / SSDLite detector on PASCAL VOC data (cosine-annealed SGD by default).
    Train(TrainArgs),
    /// VOC mAP of a detector (or of result files from any detector) on a split.
    Eval(EvalArgs),
    /// Detect objects in images, folders, video files or a webcam.
    Predict(super::predict::PredictArgs),
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Recipe (TOML), e.g. configs/voc-ssdlite-skipblocknet-s.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// VOC root(s) such as VOCdevkit/VOC2012 (repeatable; overrides data.roots).
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// Class names, one per line (default: the recipe's, else the 20 VOC classes).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// ImageNet classifier checkpoint to initialise the backbone from.
    #[arg(long)]
    pub backbone: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum MetricArg {
    Voc07,
    Voc12,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Metric {
        match m {
            MetricArg::Voc07 => Metric::Voc07,
            MetricArg::Voc12 => Metric::Voc12,
        }
    }
}

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
    #[arg(long, value_enum, default_value = "voc07")]
    pub metric: MetricArg,
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

pub fn run(global: &GlobalArgs, command: &DetectCommand) -> Result<()> {
    match command {
        DetectCommand::Train(a) => train(global, a),
        DetectCommand::Eval(a) => eval(global, a),
        DetectCommand::Predict(a) => super::predict::run(global, a),
    }
}

fn train(global: &GlobalArgs, a: &TrainArgs) -> Result<()> {
    let recipe: DetectRecipe = config::load_config(Some(&a.config), &a.run.overrides()?)?;
    let sources = DetSources { data: a.data.clone(), labels: a.labels.clone(), backbone: a.backbone.clone() };
    let s = pipeline::train(&recipe, &sources, &a.run.settings(global)?)?;
    ui::info(format!(
        "done: {} epoch(s); last val_map {:.4}, best {}; run folder {}",
        s.epochs_run,
        s.last.get("val_map").copied().unwrap_or(f64::NAN),
        s.best_value.map_or("-".into(), |b| format!("{b:.4}")),
        s.run_dir.display()
    ));
    Ok(())
}

/// Prints (or emits as JSON) an evaluation, and saves the PR curves and eval.json in `out`.
pub fn report(result: &EvalResult, out: &std::path::Path, json: bool, metric: Metric) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    save_pr_curves(result, &out.join("pr_curves.png"))?;
    let value = serde_json::json!({
        "metric": format!("{metric:?}").to_lowercase(),
        "map": result.map,
        "classes": result.per_class.iter().map(|c| serde_json::json!({"class": c.name, "ap": c.ap, "num_gt": c.num_gt, "num_det": c.num_det})).collect::<Vec<_>>(),
    });
    std::fs::write(out.join("eval.json"), serde_json::to_string_pretty(&value)?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{:<20} {:>8} {:>8} {:>8}", "class", "AP", "gt", "dets");
        for c in &result.per_class {
            println!("{:<20} {:>8.4} {:>8} {:>8}", c.name, c.ap, c.num_gt, c.num_det);
        }
        println!("mAP ({metric:?}) {:.4}", result.map);
        ui::info(format!("precision–recall curves: {}", out.join("pr_curves.png").display()));
    }
    Ok(())
}

fn eval(global: &GlobalArgs, a: &EvalArgs) -> Result<()> {
    let metric: Metric = a.metric.into();
    if let Some(dir) = &a.detections {
        let classes = class_list(a.labels.as_deref())?;
        let voc = open_split(&a.data, &a.split, &classes, a.strict)?;
        let records = read_result_files(dir, &classes)?;
        let result = evaluate(&ground_truths(&voc, usize::MAX), &records, &classes, metric, a.iou)?;
        return report(&result, &a.out, a.json, metric);
    }
    let weights = a.weights.as_ref().context("--weights or --detections is required")?;
    let device = global.device()?;
    let detector = Detector::load(weights, device)?;
    let classes = match &a.labels {
        Some(p) => skipblock_data::voc::read_labels(p)?,
        None => detector.meta.class_names.clone(),
    };
    if classes.len() + 1 != detector.ssd.config.num_classes as usize {
        bail!("{} class names for a detector of {} classes (+ background)", classes.len(), detector.ssd.config.num_classes - 1);
    }
    let voc = open_split(&a.data, &a.split, &classes, a.strict)?;
    let data = Arc::new(DetDataset::new(voc, detector.input_size(), false));
    let loader = LoaderConfig { batch_size: a.batch.max(1), ..Default::default() };
    let (result, records) = evaluate_split(&detector.ssd, data, device, &loader, &PostprocessConfig::default(), metric, a.iou, usize::MAX, true)?;
    if let Some(dir) = &a.save_detections {
        let files = write_result_files(dir, &a.split, &classes, &records)?;
        ui::info(format!("{} result files written to {}", files.len(), dir.display()));
    }
    report(&result, &a.out, a.json, metric)
}

//! `skipblock data …`: synthetic datasets in the real layouts, checking a VOC dataset and writing its
//! split lists.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use skipblock_core::{config, ui};
use skipblock_data::classification::Layout;
use skipblock_data::synth_cls::{self, SynthClsOptions};
use skipblock_data::synth_voc::{self, SynthVocOptions};
use skipblock_data::voc;
use skipblock_detect::coverage::{coverage, training_boxes, Coverage};
use skipblock_detect::prior_fit::{fit_priors, PriorFit};
use skipblock_detect::{DetectRecipe, Ssd};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Write a synthetic classification dataset (shapes × patterns) in a real layout.
    SynthCls(SynthClsArgs),
    /// Write a synthetic detection dataset in PASCAL VOC2007's layout (with labels.txt).
    SynthVoc(SynthVocArgs),
    /// Check a VOC dataset: classes (read off the annotations without --labels), counts per class and
    /// split, object sizes, problems grouped by kind, and with --config the detector's prior coverage.
    Check(CheckArgs),
    /// Write ImageSets/Main/{train,val,trainval,test}.txt for a VOC export without split lists.
    Split(SplitArgs),
}

#[derive(Args, Debug)]
pub struct SynthClsArgs {
    /// Output folder (must be empty or absent).
    #[arg(long)]
    pub out: PathBuf,
    /// Layout written (every one the readers take except `auto`).
    #[arg(long, value_enum, default_value_t = Layout::Food101)]
    pub layout: Layout,
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Training images per class.
    #[arg(long, default_value_t = 40)]
    pub train: usize,
    /// Test images per class.
    #[arg(long, default_value_t = 10)]
    pub test: usize,
    /// Image side (CIFAR-100 is always 32).
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct SynthVocArgs {
    /// Output folder: VOCdevkit/VOC2007 is written inside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Images in trainval.
    #[arg(long, default_value_t = 200)]
    pub train: usize,
    /// Images in test.
    #[arg(long, default_value_t = 50)]
    pub test: usize,
    #[arg(long, default_value_t = 300)]
    pub size: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Smallest object side in pixels (default 36 at --size 300, scaled with the size).
    #[arg(long, requires = "max_object")]
    pub min_object: Option<f32>,
    /// Largest object side in pixels (default 190 at --size 300).
    #[arg(long, requires = "min_object")]
    pub max_object: Option<f32>,
    /// Objects per image: 1 to this many.
    #[arg(long, default_value_t = 5)]
    pub max_objects: usize,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// VOC root(s) (folders with Annotations/, ImageSets/Main/, JPEGImages/); repeatable.
    #[arg(long = "voc", required = true)]
    pub roots: Vec<PathBuf>,
    /// Splits to check (default: trainval and test).
    #[arg(long = "split")]
    pub splits: Vec<String>,
    /// Class names, one per line. Without it the classes are read off the annotations.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Write the class names the annotations use (one per line) to this file, for --labels.
    #[arg(long)]
    pub write_labels: Option<PathBuf>,
    /// A detection recipe: report how well its priors cover the boxes of the first split (IoU >=
    /// ssd.match_iou), per feature map and per class, and what fitted priors would give.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// List every problem instead of the first few of each kind.
    #[arg(long)]
    pub all: bool,
    /// Where report.json and the object-size histogram (object_sizes.png) go.
    #[arg(long, default_value = "runs/data-check")]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// VOC root (a folder with Annotations/ and JPEGImages/); only ids with both their XML and image count.
    #[arg(long = "voc")]
    pub root: PathBuf,
    /// Fraction of the images for val (trainval = train + val).
    #[arg(long, default_value_t = 0.1)]
    pub val: f64,
    /// Fraction of the images for test.
    #[arg(long, default_value_t = 0.1)]
    pub test: f64,
    /// Seed of the random split: the same seed gives the same lists.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Overwrite existing split lists (without it an existing list is an error).
    #[arg(long)]
    pub force: bool,
}

/// The class list: `--labels FILE` or VOC's 20 classes.
pub fn class_list(labels: Option<&std::path::Path>) -> Result<Vec<String>> {
    match labels {
        Some(p) => voc::read_labels(p),
        None => Ok(voc::voc_classes()),
    }
}

pub fn run(command: &DataCommand) -> Result<()> {
    match command {
        DataCommand::SynthCls(a) => {
            let opts = SynthClsOptions {
                layout: a.layout,
                classes: a.classes,
                train_per_class: a.train,
                test_per_class: a.test,
                seed: a.seed,
                size: a.size,
            };
            println!("{}", synth_cls::generate(&a.out, &opts)?);
        }
        DataCommand::SynthVoc(a) => {
            let s = synth_voc::generate(
                &a.out,
                SynthVocOptions {
                    train: a.train,
                    test: a.test,
                    seed: a.seed,
                    size: a.size,
                    object_sizes: a.min_object.zip(a.max_object),
                    max_objects: a.max_objects,
                },
            )?;
            println!(
                "{}: {} trainval ({} train, {} val) and {} test images, {} objects ({} difficult); classes {} in {}",
                s.root.display(),
                s.trainval,
                s.train,
                s.val,
                s.test,
                s.objects,
                s.difficult,
                s.classes.join(", "),
                s.labels.display()
            );
        }
        DataCommand::Check(a) => check(a)?,
        DataCommand::Split(a) => {
            let opts = voc::SplitOptions { val: a.val, test: a.test, seed: a.seed, force: a.force };
            let s = voc::write_splits(&a.root, &opts)?;
            println!(
                "{}: {} train, {} val ({} trainval), {} test images in {}",
                a.root.display(),
                s.train,
                s.val,
                s.train + s.val,
                s.test,
                a.root.join("ImageSets/Main").display()
            );
            if s.without_image > 0 {
                skipblock_core::ui::warn(format!("{} annotations without their image left out", s.without_image));
            }
        }
    }
    Ok(())
}

/// The report of `data check`, with the prior coverage when a recipe is given.
#[derive(Serialize)]
struct CheckOutput<'a> {
    #[serde(flatten)]
    report: &'a voc::CheckReport,
    problem_groups: Vec<voc::ProblemGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prior_coverage: Option<PriorReport>,
}

#[derive(Serialize)]
struct PriorReport {
    recipe: PathBuf,
    split: String,
    coverage: Coverage,
    fitted: PriorFit,
}

fn check(a: &CheckArgs) -> Result<()> {
    let splits = if a.splits.is_empty() { vec!["trainval".to_string(), "test".to_string()] } else { a.splits.clone() };
    let report = match &a.labels {
        Some(path) => voc::check(&a.roots, &splits, &voc::read_labels(path)?),
        None => voc::check_inferring_classes(&a.roots, &splits),
    };
    if let Some(path) = &a.write_labels {
        if report.classes.is_empty() {
            bail!("no class name found in the annotations: nothing to write to '{}'", path.display());
        }
        let text: String = report.classes.iter().map(|c| format!("{c}\n")).collect();
        skipblock_core::tensors::write_atomic(path, text.as_bytes())?;
        ui::info(format!("{} class names written to '{}'", report.classes.len(), path.display()));
    }
    let prior_coverage = a.config.as_ref().map(|recipe| prior_report(recipe, &report, &splits[0])).transpose()?;
    let output = CheckOutput { report: &report, problem_groups: report.problem_groups(), prior_coverage };
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create '{}'", a.out.display()))?;
    let json = serde_json::to_string_pretty(&output)?;
    skipblock_core::tensors::write_atomic(&a.out.join("report.json"), json.as_bytes())?;
    if !report.sizes.is_empty() {
        voc::sizes::save_histogram(report.records(), &report.classes, &a.out.join(SIZES_PICTURE))?;
    }
    if a.json {
        println!("{json}");
    } else {
        print!("{}", report.to_text(a.all));
        if let Some(p) = &output.prior_coverage {
            println!("\npriors of {} on split {}: {}", p.recipe.display(), p.split, p.coverage.to_text());
            println!("--auto-priors: {}", p.fitted.summary());
            if !p.fitted.kept {
                println!("{}", p.fitted.after.to_text());
            }
        }
        println!("\nreport.json and {SIZES_PICTURE} in {}", a.out.display());
    }
    if !report.is_ok() {
        let errors = report.problems.iter().filter(|p| !p.kind.is_warning()).count();
        bail!("{errors} problem(s) found");
    }
    Ok(())
}

/// The object-size histogram `data check` writes.
const SIZES_PICTURE: &str = "object_sizes.png";

/// Coverage of `split`'s boxes by the recipe's priors, and by priors fitted to them.
fn prior_report(recipe_path: &std::path::Path, report: &voc::CheckReport, split: &str) -> Result<PriorReport> {
    let recipe: DetectRecipe = config::load_config(Some(recipe_path), &[])?;
    let mut ssd = recipe.ssd.clone();
    ssd.num_classes = report.classes.len().max(1) as i64 + 1;
    let priors = Ssd::resolved_priors(&ssd, recipe.model)?;
    let records = report.splits.iter().find(|s| s.split == split).map(|s| s.records.as_slice()).unwrap_or_default();
    let boxes = training_boxes(records);
    if boxes.is_empty() {
        bail!("split '{split}' has no usable box to measure the prior coverage on");
    }
    let threshold = ssd.match_iou;
    Ok(PriorReport {
        recipe: recipe_path.to_path_buf(),
        split: split.to_string(),
        coverage: coverage(&priors, &boxes, &report.classes, threshold)?,
        fitted: fit_priors(&priors, &boxes, &report.classes, threshold)?,
    })
}

//! `detect train`: a recipe and VOC data in, a run folder out.

use crate::anchors::PriorConfig;
use crate::coverage::{coverage, training_boxes};
use crate::prior_fit::fit_priors;
use crate::recipe::DetectRecipe;
use crate::ssd::{load_backbone, Ssd};
use crate::task::DetectTask;
use anyhow::{bail, Context, Result};
use skipblock_core::loader::LoaderConfig;
use skipblock_core::loss::{Loss, LossKind};
use skipblock_core::train::{fit, FitSummary, Monitor, RunSettings};
use skipblock_core::{config, ui, Task};
use skipblock_data::voc::{self, DetDataset, ImageFiles, VocDataset};
use std::path::PathBuf;
use std::sync::Arc;
use tch::nn::VarStore;

/// The command line's overrides of a detection recipe's data and backbone.
#[derive(Debug, Clone, Default)]
pub struct DetSources {
    /// VOC roots; override `data.roots`.
    pub data: Vec<PathBuf>,
    pub labels: Option<PathBuf>,
    /// Classifier checkpoint for the backbone; overrides `backbone.weights`.
    pub backbone: Option<PathBuf>,
}

/// The class names of a recipe: `--labels`, `data.labels`, or VOC's 20.
pub fn classes_of(recipe: &DetectRecipe, labels: Option<&PathBuf>) -> Result<Vec<String>> {
    match labels.or(recipe.data.labels.as_ref()) {
        Some(p) => voc::read_labels(p),
        None => Ok(voc::voc_classes()),
    }
}

/// Opens a split, printing each data problem as a warning (or failing with `strict`).
pub fn open_split(roots: &[PathBuf], split: &str, classes: &[String], strict: bool) -> Result<VocDataset> {
    let (data, problems) = VocDataset::open(roots, split, classes, strict)?;
    warn_problems(&problems);
    Ok(data)
}

/// Opens the ground truth of a split from its annotations alone (scoring result files): the images need
/// not be present. Problems are printed as in [`open_split`].
pub fn open_annotations(roots: &[PathBuf], split: &str, classes: &[String], strict: bool) -> Result<VocDataset> {
    let (data, problems) = VocDataset::open_with(roots, split, classes, strict, ImageFiles::Optional)?;
    warn_problems(&problems);
    Ok(data)
}

/// Prints the first 20 problems as warnings, then how many more there are.
fn warn_problems(problems: &[voc::Problem]) {
    for p in problems.iter().take(20) {
        ui::warn(p.to_string());
    }
    if problems.len() > 20 {
        ui::warn(format!("… and {} more problems (see `skipblock data check`)", problems.len() - 20));
    }
}

/// The priors training uses: fitted to the training boxes when `ssd.priors.auto`, else the recipe's, whose
/// coverage of the training boxes is reported (with a warning when it is low).
fn fit_or_check_priors(recipe: &DetectRecipe, train: &VocDataset) -> Result<PriorConfig> {
    let priors = Ssd::resolved_priors(&recipe.ssd, recipe.model)?;
    let boxes = training_boxes(&train.records);
    if boxes.is_empty() {
        return Ok(PriorConfig { auto: false, ..recipe.ssd.priors.clone() });
    }
    let threshold = recipe.ssd.match_iou;
    if recipe.ssd.priors.auto {
        let fit = fit_priors(&priors, &boxes, &train.classes, threshold)?;
        ui::info(fit.summary());
        return Ok(fit.priors);
    }
    let c = coverage(&priors, &boxes, &train.classes, threshold)?;
    ui::info(c.summary());
    if c.is_low() {
        let worst: Vec<String> = {
            let mut rows: Vec<_> = c.per_class.iter().collect();
            rows.sort_by(|a, b| a.share.total_cmp(&b.share));
            rows.iter().take(3).map(|r| format!("{} {:.0}%", r.name, r.share * 100.0)).collect()
        };
        ui::warn(format!(
            "only {:.0}% of the training boxes have a prior with IoU >= {threshold} (lowest: {}); the priors \
             (smallest {} px of {}) do not suit these objects: pass --auto-priors (ssd.priors.auto = true) to fit \
             them, see `skipblock data check --config`",
            c.all.share * 100.0,
            worst.join(", "),
            priors.min_sizes.first().copied().unwrap_or_default(),
            priors.image_size
        ));
    }
    Ok(PriorConfig { auto: false, ..recipe.ssd.priors.clone() })
}

pub fn train(recipe: &DetectRecipe, sources: &DetSources, opts: &RunSettings) -> Result<FitSummary> {
    if recipe.task != Task::Detect {
        bail!("the recipe is for task '{}', not detect", recipe.task);
    }
    if !matches!(recipe.loss.kind, LossKind::Ce | LossKind::Bias) {
        bail!("detection supports loss.kind = \"ce\" or \"bias\" for the multibox classification term");
    }
    let roots = if sources.data.is_empty() { recipe.data.roots.clone() } else { sources.data.clone() };
    if roots.is_empty() {
        bail!("no dataset: pass --data VOCdevkit/VOC2012 (repeatable) or set data.roots");
    }
    let val_roots = if recipe.data.val_roots.is_empty() { roots.clone() } else { recipe.data.val_roots.clone() };
    let classes = classes_of(recipe, sources.labels.as_ref())?;
    let d = &recipe.data;
    let train_voc = open_split(&roots, &d.train_split, &classes, d.strict)?;
    let val_voc = open_split(&val_roots, &d.val_split, &classes, d.strict)?;
    ui::info(format!(
        "{} classes; {} training images ({} objects), {} validation images",
        classes.len(),
        train_voc.len(),
        train_voc.num_objects(),
        val_voc.len()
    ));
    let mut recipe = recipe.clone();
    recipe.ssd.num_classes = classes.len() as i64 + 1;
    recipe.ssd.priors = fit_or_check_priors(&recipe, &train_voc)?;
    let recipe = &recipe;
    let ssd_config = recipe.ssd.clone();
    tch::manual_seed(opts.seed as i64);
    let vs = VarStore::new(opts.device);
    let ssd = Ssd::new(&vs.root(), &ssd_config, recipe.model)?;
    let backbone = sources.backbone.clone().or_else(|| recipe.backbone.weights.clone());
    if let (Some(b), false) = (&backbone, opts.resume) {
        let report = load_backbone(&vs, b)?;
        ui::info(format!("backbone initialised from '{}' ({} tensors)", b.display(), report.loaded));
    }
    let size = ssd.config.input_size as u32;
    let run_dir = opts.run_dir(&recipe.name);
    let loader = LoaderConfig {
        batch_size: recipe.train.batch_size.max(1),
        shuffle: true,
        drop_last: train_voc.len() > recipe.train.batch_size,
        seed: opts.seed,
        workers: d.workers,
        prefetch: d.prefetch.max(1),
        strict: d.strict,
        shard: None,
    };
    let eval_loader = LoaderConfig { shuffle: false, drop_last: false, ..loader.clone() };
    let augment = voc::augment::SsdAugment {
        photometric: d.augment && d.photometric,
        expand: d.augment && d.expand,
        crop: d.augment && d.crop,
        flip: d.augment && d.flip,
        ..voc::augment::SsdAugment::new(size)
    };
    let train_data = DetDataset::with_augment(train_voc, augment, true);
    let mut task = DetectTask {
        ssd,
        block: recipe.model,
        loss: Loss::new(recipe.loss.clone())?,
        train: Arc::new(train_data),
        val: Arc::new(DetDataset::new(val_voc, size, false)),
        device: opts.device,
        eval_loader,
        postprocess: recipe.postprocess,
        metric: recipe.eval.metric,
        iou_threshold: recipe.eval.iou_threshold,
        eval_max_images: recipe.eval.max_images,
        freeze_backbone_epochs: recipe.backbone.freeze_epochs,
        backbone_lr_mult: recipe.backbone.lr_mult,
        last_eval: None,
    };
    let mut options = opts.fit_options(
        run_dir,
        recipe.sections(),
        loader,
        Monitor::ValMap,
        config::to_toml(recipe).context("recipe")?,
    );
    options.curves = Some(skipblock_data::plot::save_training_curves);
    fit(&mut task, &vs, &options)
}

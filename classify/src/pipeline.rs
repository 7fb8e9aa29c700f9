//! `classify train` and `classify finetune`: a recipe and a dataset in, a run folder out
//! (`runs/<name>/`: checkpoints, metrics, curves; see [`skipblock_core::train::fit`]).

use crate::classifier::classifier_meta;
use crate::recipe::ClassifyRecipe;
use crate::task::ClassifyTask;
use anyhow::{bail, Context, Result};
use skipblock_core::loader::LoaderConfig;
use skipblock_core::loss::Loss;
use skipblock_core::model::{build_classifier, Arch, NetOptions};
use skipblock_core::train::{fit, FitSummary, Monitor, RunSettings};
use skipblock_core::{config, tensors, ui, Task};
use skipblock_data::classification::{open, ClassificationSet, ClsDataset, ClsTransform, Split};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::nn::VarStore;

/// Fine-tuning: the checkpoint to start from (ours, or a `.pth` with `arch`); `None` takes the
/// recipe's `finetune.from`.
#[derive(Debug, Clone, Default)]
pub struct StartFrom {
    pub checkpoint: Option<PathBuf>,
    pub arch: Option<Arch>,
}

/// Opens the training and validation splits of the recipe's dataset.
pub fn open_splits(recipe: &ClassifyRecipe, root: &Path, seed: u64) -> Result<(ClassificationSet, ClassificationSet)> {
    let d = &recipe.data;
    let train = open(root, d.layout, Split::Train, d.val_fraction, seed)?;
    let val = open(root, d.layout, Split::Val, d.val_fraction, seed)?;
    if train.class_names != val.class_names {
        bail!("dataset '{}': the validation split's classes differ from the training split's", root.display());
    }
    Ok((train, val))
}

/// The loader settings of a recipe.
pub fn loader_config(recipe: &ClassifyRecipe, seed: u64, shuffle: bool) -> LoaderConfig {
    LoaderConfig {
        batch_size: recipe.train.batch_size.max(1),
        shuffle,
        drop_last: false,
        seed,
        workers: recipe.data.workers,
        prefetch: recipe.data.prefetch.max(1),
        strict: recipe.data.strict,
        shard: None,
    }
}

/// Copies the weights of `from` into `vs`, except the last classifier layer of `arch` (a new head for the
/// new class set). Returns the number of tensors loaded.
fn load_pretrained(vs: &VarStore, from: &Path, arch: Arch) -> Result<usize> {
    let head = arch.head_prefix();
    let named: Vec<_> = tensors::read_named_tensors(from)?.into_iter().filter(|(k, _)| !k.starts_with(head)).collect();
    let report = tensors::assign(vs, named, false)?;
    let unexpected_head = report.missing.iter().all(|k| k.starts_with(head));
    if !report.mismatched.is_empty() || !report.unexpected.is_empty() || !unexpected_head {
        bail!("'{}' does not fit the model apart from its head: {}", from.display(), report.problems());
    }
    Ok(report.loaded)
}

/// The training augmentation of a recipe.
fn transform(recipe: &ClassifyRecipe) -> Result<ClsTransform> {
    let (m, d) = (&recipe.model, &recipe.data);
    Ok(ClsTransform::new(d.augment, m.input_size as u32, d.resize_ratio, d.rotation, d.pad_crop)?
        .with_min_crop_scale(d.crop_scale_min)?
        .with_flip(d.flip))
}

/// Trains (or, with `from`, fine-tunes) as the recipe says.
/// `data` (the command line's dataset root) overrides the recipe's `data.root`.
pub fn train(
    recipe: &ClassifyRecipe,
    data: Option<&Path>,
    opts: &RunSettings,
    from: Option<&StartFrom>,
) -> Result<FitSummary> {
    if recipe.task != Task::Classify {
        bail!("the recipe is for task '{}', not classify", recipe.task);
    }
    let root = data
        .map(Path::to_path_buf)
        .or_else(|| recipe.data.root.clone())
        .context("no dataset: pass --data DIR (or set data.root in the recipe)")?;
    let (train_set, val_set) = open_splits(recipe, &root, opts.seed)?;
    let classes = train_set.class_names.clone();
    ui::info(format!(
        "dataset '{}' ({:?}): {} classes, {} training / {} validation images",
        root.display(),
        train_set.layout,
        classes.len(),
        train_set.len(),
        val_set.len()
    ));
    let m = &recipe.model;
    let transform = transform(recipe)?;
    let start = match from {
        Some(f) => {
            let checkpoint = f.checkpoint.clone().or_else(|| recipe.finetune.from.clone()).context(
                "fine-tuning needs a checkpoint to start from: pass --from FILE (or set finetune.from in the recipe)",
            )?;
            Some((classifier_meta(&checkpoint, f.arch)?, checkpoint))
        }
        None => None,
    };
    let mut arch = m.arch.expect(Task::Classify, "model.arch")?;
    let mut stem = m.stem;
    if let Some((source, checkpoint)) = &start {
        if source.arch != arch {
            ui::info(format!("fine-tuning {} (the architecture of '{}')", source.arch, checkpoint.display()));
        }
        arch = source.arch;
        stem = stem.or(Some(source.stem));
    }
    let stem = arch.resolve_stem(stem, m.input_size)?;
    tch::manual_seed(opts.seed as i64);
    let vs = VarStore::new(opts.device);
    let net_options = NetOptions { block: m.block_options(), stem, dropout: Some(m.dropout) };
    let net = build_classifier(&vs.root(), arch, classes.len() as i64, net_options)?;
    if let Some((_, checkpoint)) = &start {
        if !opts.resume {
            let n = load_pretrained(&vs, checkpoint, arch)?;
            ui::info(format!("loaded {n} tensors from '{}'; new {}-class head", checkpoint.display(), classes.len()));
        }
    }
    let run_dir = opts.run_dir(&recipe.name);
    let recipe_text = config::to_toml(recipe)?;
    let loader = loader_config(recipe, opts.seed, true);
    let mut task = ClassifyTask {
        net,
        block: m.block_options(),
        loss: Loss::new(recipe.loss.clone())?,
        train: Arc::new(ClsDataset::new(train_set, transform.clone())),
        val: Arc::new(ClsDataset::new(val_set, transform)),
        device: opts.device,
        eval_loader: loader_config(recipe, opts.seed, false),
        input_size: m.input_size,
        freeze_backbone_epochs: if start.is_some() { recipe.finetune.freeze_backbone_epochs } else { 0 },
    };
    let loader = LoaderConfig { drop_last: task.train.set.len() > recipe.train.batch_size, ..loader };
    let mut options = opts.fit_options(run_dir, recipe.sections(), loader, Monitor::ValTop1, recipe_text);
    options.curves = Some(skipblock_data::plot::save_training_curves);
    fit(&mut task, &vs, &options)
}

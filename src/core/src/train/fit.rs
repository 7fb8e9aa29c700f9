//! The training loop both pipelines run: epochs of batches from the parallel loader, the learning-rate
//! schedule per iteration, the optimiser step (with optional gradient clipping), EMA, evaluation, metrics
//! files, atomic checkpoints and `--resume`.
//!
//! A run lives in `runs/<name>/`:
//! * `config.toml`: the effective recipe;
//! * `last.safetensors`, `best.safetensors`: inference checkpoints (EMA weights when EMA is on) with
//!   their records, loadable by every command taking `--weights`;
//! * `last.state.safetensors`: everything `--resume` needs (raw weights, optimiser buffers, EMA shadow,
//!   epoch, best value, task state such as the bias loss's global minimum);
//! * `metrics.jsonl`, `metrics.csv`: one record per epoch;
//! * `tb/`: TensorBoard events files (see [`super::tb_log`]), one per invocation (`--resume` adds one).
//!
//! The step never waits for the device: the loss is summed on the device and read only when the progress
//! bar redraws (at most twice a second), when TensorBoard logs the iteration (`train.log_every`) and at
//! the end of the epoch; a non-finite loss is caught at those reads and stops the run. The speed
//! settings of `[train]` (cuDNN benchmark, memory format, AMP, fused optimiser: [`super::speed`]) are
//! applied before the optimiser is made.
//!
//! Data-parallel training (launched by torchrun, [`crate::dist`]): when the process joined a group, every
//! rank starts from rank 0's weights and buffers, loads its shard of each epoch, averages the gradients
//! after each backward pass ([`crate::dist::GradReducer`]) and reduces the epoch's loss and counts; the
//! batch-norm statistics (and the EMA shadow) are broadcast from rank 0 before each evaluation, so every
//! rank evaluates and saves the same model. Rank 0 alone writes the run folder; the outcome of each
//! epoch's writes, of the start and of `--resume` is agreed on by all ranks, so one rank's error ends
//! every rank (the others with "rank r failed"). The state file records the world size: `--resume` with
//! another is an error (the shards, so the remaining epochs, would differ).
//!
//! Reproducibility: libtorch's generator is re-seeded from (seed, epoch) at the start of every epoch and
//! the loader is seeded the same way, so a run resumed after epoch `e` produces the same metrics for the
//! remaining epochs as an uninterrupted run (on the same device and thread count).

use super::ema::Ema;
use super::metrics::{EpochRecord, MetricsLog, Monitor, Validation};
use super::optim::Optimizer;
use super::schedule::Schedule;
use super::speed::LossScaler;
use super::tb_log::TrainingLog;
use super::tensorboard::RgbPng;
use crate::checkpoint::{self, CheckpointMeta};
use crate::dist::{GradReducer, ProcessGroup};
use crate::loader::{load_epoch, mix, Dataset, LoaderConfig};
use crate::loss::Loss;
use crate::recipe::{OptimSection, ScheduleSection, TrainSection};
use crate::{tensors, ui};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::{nn::VarStore, Kind, Tensor};

/// What a pipeline provides to [`fit`].
pub trait TrainTask {
    type Data: Dataset;
    fn train_data(&self) -> Arc<Self::Data>;
    /// The loss of one training batch (model in train mode) and the number of samples in it.
    fn train_batch(&mut self, batch: Vec<<Self::Data as Dataset>::Item>) -> Result<(Tensor, usize)>;
    /// Validation metrics (model in eval mode; the EMA weights are in place when EMA is on).
    fn evaluate(&mut self, epoch: usize) -> Result<Validation>;
    /// The record saved with the checkpoints (architecture, classes, …); `fit` sets epoch and metrics.
    fn checkpoint_meta(&self) -> CheckpointMeta;
    /// (variable-name prefix, learning-rate multiplier) groups, e.g. a slower backbone.
    fn lr_groups(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
    /// Variable-name prefixes kept frozen during `epoch` (0-based). The task also runs those layers in
    /// eval mode (batch norms keep their statistics), see [`TrainTask::begin_epoch`].
    fn frozen_prefixes(&self, _epoch: usize) -> Vec<String> {
        Vec::new()
    }
    /// Called before each epoch's first batch (0-based), e.g. to switch a frozen backbone's batch norms
    /// to eval mode.
    fn begin_epoch(&mut self, _epoch: usize) {}
    /// The task's loss: its running state (the bias loss's minimum) is carried across `--resume`.
    fn loss_mut(&mut self) -> Option<&mut Loss> {
        None
    }
    /// Images for TensorBoard after the evaluation of `epoch` (0-based; called right after
    /// [`TrainTask::evaluate`], with the same weights in place), as (tag, PNG): e.g. precision–recall
    /// curves, an annotated prediction. Default: none. An error is a warning, not the end of training.
    fn evaluation_images(&mut self, _epoch: usize) -> Result<Vec<(String, RgbPng)>> {
        Ok(Vec::new())
    }
}

/// Draws a run's curves from its records into the run folder (the data crate's
/// `plot::save_training_curves`); called after every epoch.
pub type CurvePlotter = fn(&Path, &[EpochRecord]) -> Result<()>;

#[derive(Debug, Clone)]
pub struct FitOptions {
    pub run_dir: PathBuf,
    pub optim: OptimSection,
    pub schedule: ScheduleSection,
    pub train: TrainSection,
    pub loader: LoaderConfig,
    /// Metric that decides `best.safetensors` (it knows whether higher is better).
    pub best_metric: Monitor,
    pub resume: bool,
    /// Stop after this many epochs in this invocation; the schedule still spans `train.epochs` and a
    /// later `--resume` continues (for time-limited jobs on shared machines).
    pub stop_after: Option<usize>,
    /// Start over in an existing run folder (its checkpoints are replaced).
    pub exist_ok: bool,
    pub seed: u64,
    /// The effective recipe, written to `config.toml` and into the checkpoints.
    pub config_text: String,
    /// Draws `curves.png` after every epoch (none: no pictures).
    pub curves: Option<CurvePlotter>,
}

/// Where and how a run happens: the command line's part of every training command (the recipe holds
/// the rest).
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Parent of the run folders (`runs`).
    pub runs_dir: PathBuf,
    /// Run name; overrides the recipe's `name`.
    pub name: Option<String>,
    pub resume: bool,
    pub exist_ok: bool,
    pub stop_after: Option<usize>,
    pub device: tch::Device,
    pub seed: u64,
}

impl RunSettings {
    /// `<runs_dir>/<name or the recipe's name>`.
    pub fn run_dir(&self, recipe_name: &str) -> PathBuf {
        self.runs_dir.join(self.name.as_deref().unwrap_or(recipe_name))
    }

    /// The options of [`fit`] for a recipe's sections: `train.best_metric`, else the pipeline's
    /// `default_best`, decides `best.safetensors`; `config_text` is the effective recipe.
    pub fn fit_options(
        &self,
        run_dir: PathBuf,
        sections: RecipeSections<'_>,
        loader: LoaderConfig,
        default_best: Monitor,
        config_text: String,
    ) -> FitOptions {
        let RecipeSections { optim, schedule, train } = sections;
        FitOptions {
            run_dir,
            optim: optim.clone(),
            schedule: schedule.clone(),
            train: train.clone(),
            loader,
            best_metric: train.best_metric.unwrap_or(default_best),
            resume: self.resume,
            stop_after: self.stop_after,
            exist_ok: self.exist_ok,
            seed: self.seed,
            config_text,
            curves: None,
        }
    }
}

/// The sections of a recipe the loop reads.
#[derive(Debug, Clone, Copy)]
pub struct RecipeSections<'a> {
    pub optim: &'a OptimSection,
    pub schedule: &'a ScheduleSection,
    pub train: &'a TrainSection,
}

#[derive(Debug, Clone)]
pub struct FitSummary {
    pub epochs_run: usize,
    pub last: EpochRecord,
    pub best_value: Option<f64>,
    pub run_dir: PathBuf,
}

pub fn state_path(run_dir: &Path) -> PathBuf {
    run_dir.join("last.state.safetensors")
}

/// Where a state file leaves a run.
struct Resumed {
    epoch: usize,
    best: Option<f64>,
    /// The number of data-parallel processes that trained it (1: a plain run; files of older versions).
    world_size: usize,
}

fn save_state(
    vs: &VarStore,
    opt: &Optimizer,
    ema: Option<&Ema>,
    at: &Resumed,
    task_state: BTreeMap<String, String>,
    path: &Path,
) -> Result<()> {
    let Resumed { epoch, best, world_size } = *at;
    let mut named: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(k, v)| (format!("model.{k}"), v.detach())).collect();
    named.extend(opt.state().into_iter().map(|(k, v)| (format!("optim.{k}"), v)));
    if let Some(ema) = ema {
        named.extend(ema.state());
    }
    let mut meta =
        BTreeMap::from([("epoch".to_string(), epoch.to_string()), ("world_size".to_string(), world_size.to_string())]);
    if let Some(b) = best {
        meta.insert("best".into(), b.to_string());
    }
    for (k, v) in task_state {
        meta.insert(format!("task.{k}"), v);
    }
    tensors::write_safetensors(path, &named, &meta)
}

fn load_state<T: TrainTask>(
    task: &mut T,
    vs: &VarStore,
    opt: &mut Optimizer,
    ema: Option<&mut Ema>,
    path: &Path,
) -> Result<Resumed> {
    if !path.exists() {
        bail!("nothing to resume: '{}' does not exist", path.display());
    }
    let (named, meta) = tensors::read_safetensors(path)?;
    let mut model = Vec::new();
    let mut rest = BTreeMap::new();
    for (k, v) in named {
        match k.strip_prefix("model.") {
            Some(name) => model.push((name.to_string(), v)),
            None => {
                rest.insert(k, v);
            }
        }
    }
    tensors::assign(vs, model, true).with_context(|| format!("'{}' does not fit this model", path.display()))?;
    let optim: BTreeMap<String, Tensor> =
        rest.iter().filter_map(|(k, v)| k.strip_prefix("optim.").map(|n| (n.to_string(), v.shallow_clone()))).collect();
    opt.load_state(&optim)?;
    if let Some(ema) = ema {
        ema.load_state(&rest);
    }
    let task_state: BTreeMap<String, String> =
        meta.iter().filter_map(|(k, v)| k.strip_prefix("task.").map(|n| (n.to_string(), v.clone()))).collect();
    if let Some(loss) = task.loss_mut() {
        loss.load_state(&task_state);
    }
    let epoch =
        meta.get("epoch").and_then(|e| e.parse().ok()).with_context(|| format!("'{}' has no epoch", path.display()))?;
    let world_size = meta.get("world_size").and_then(|w| w.parse().ok()).unwrap_or(1);
    Ok(Resumed { epoch, best: meta.get("best").and_then(|b| b.parse().ok()), world_size })
}

/// Saves the inference checkpoint `path` (EMA weights when EMA is on).
fn save_weights(vs: &VarStore, ema: Option<&mut Ema>, meta: &CheckpointMeta, path: &Path) -> Result<()> {
    match ema {
        Some(ema) => {
            ema.swap();
            let r = checkpoint::save(vs, path, meta);
            ema.swap();
            r
        }
        None => checkpoint::save(vs, path, meta),
    }
}

/// Trains `task` (whose variables live in `vs`) as `options` say.
pub fn fit<T: TrainTask>(task: &mut T, vs: &VarStore, options: &FitOptions) -> Result<FitSummary> {
    let dist = crate::dist::group();
    let lead = crate::dist::is_lead();
    let world_size = dist.map_or(1, ProcessGroup::world_size);
    let dir = &options.run_dir;
    let state_file = state_path(dir);
    let started = (|| -> Result<()> {
        if !options.resume && state_file.exists() && !options.exist_ok {
            bail!("run folder '{}' already holds a run: pass --resume to continue it, --exist-ok to start over, or another --name", dir.display());
        }
        if lead {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
            tensors::write_atomic(&dir.join("config.toml"), options.config_text.as_bytes())?;
        }
        Ok(())
    })();
    agree(dist, started)?;
    let epochs = options.train.epochs;
    let data = task.train_data();
    if data.is_empty() {
        bail!("the training set is empty");
    }
    let mut loader = options.loader.clone();
    if let Some(g) = dist {
        // Every rank starts from rank 0's weights and buffers (as DDP's constructor does).
        broadcast_variables(g, vs, None)?;
        let shard = g.shard();
        loader.drop_last = loader.drop_last && shard.len_of(data.len()) > loader.batch_size;
        loader.shard = Some(shard);
    }
    let reducer = dist.map(GradReducer::new);
    crate::dist::sync_bn::set_enabled(dist.is_some() && options.train.sync_bn);
    let speed = options.train.speed();
    let precision = speed.prepare(vs)?;
    let mut scaler = precision.loss_scaler();
    let mut opt = Optimizer::new(vs, &options.optim);
    opt.set_fused(speed.fused_optimizer);
    opt.set_lr_mults(task.lr_groups());
    let schedule = Schedule::new(&options.schedule, options.optim.lr, epochs);
    let mut ema = (options.train.ema_decay > 0.0).then(|| {
        let mut e = Ema::new(vs, options.train.ema_decay);
        e.set_fused(speed.fused_optimizer);
        e
    });
    let log = MetricsLog::new(dir);
    let (mut start, mut best) = (0, None);
    if options.resume {
        let resumed = load_state(task, vs, &mut opt, ema.as_mut(), &state_file).and_then(|r| {
            if r.world_size != world_size {
                bail!(
                    "'{}' was trained by {} process(es), this run has {world_size}: resume on the same world size (each rank's shard of the data depends on it)",
                    state_file.display(),
                    r.world_size
                );
            }
            if lead {
                log.truncate_after(r.epoch)?;
            }
            Ok(r)
        });
        let r = agree(dist, resumed)?;
        if let Some(g) = dist {
            broadcast_variables(g, vs, ema.as_ref())?;
        }
        ui::info(format!("resuming '{}' after epoch {}/{}", dir.display(), r.epoch, epochs));
        (start, best) = (r.epoch, r.best);
    } else if lead {
        log.clear();
    }
    if let Some(g) = dist {
        ui::info(format!(
            "data-parallel: {} processes ({}), batch {} per process = {} per step",
            world_size,
            g.backend().name(),
            loader.batch_size,
            loader.batch_size * world_size
        ));
    }
    let mut tb = lead.then(|| TrainingLog::open(dir, !options.resume, options.train.log_every));
    let mut last = EpochRecord::default();
    let end = options.stop_after.map_or(epochs, |n| (start + n).min(epochs));
    for epoch in start..end {
        // Rank r > 0 of a data-parallel run draws its own dropout masks; rank 0 those of a plain run.
        let rank = dist.map_or(0, ProcessGroup::rank);
        let seed = if rank == 0 {
            mix(&[options.seed, epoch as u64, 7])
        } else {
            mix(&[options.seed, epoch as u64, 7, rank as u64])
        };
        tch::manual_seed(seed as i64 & i64::MAX);
        opt.set_frozen(task.frozen_prefixes(epoch));
        task.begin_epoch(epoch);
        let batches = load_epoch(data.clone(), epoch, &loader)?;
        let mut iters = batches.num_batches();
        if options.train.max_iters_per_epoch > 0 {
            iters = iters.min(options.train.max_iters_per_epoch);
        }
        // Every epoch runs `iters` iterations: the global step (iterations done) follows from the epoch.
        let done_before = epoch * iters;
        if let Some(tb) = tb.as_mut().filter(|_| options.resume && epoch == start) {
            // Every step logged before the checkpoint, iteration or epoch, is at most this.
            tb.resumed(done_before.max(epoch));
        }
        let bar = ui::progress_bar(iters as u64, &format!("{}/{}", epoch + 1, epochs));
        let started = Instant::now();
        // Σ loss × samples on the device (float64), read only now and then (see the module's doc).
        let mut loss_sum = LossSum::new(vs.device());
        let mut samples = 0usize;
        let mut batches = batches;
        let mut done = 0;
        for (i, batch) in batches.by_ref().take(iters).enumerate() {
            let batch = batch?;
            done = i + 1;
            let lr = schedule.lr(epoch, i, iters);
            opt.set_lr(lr);
            opt.zero_grad();
            let (loss, n) = precision.run(|| task.train_batch(batch))??;
            let stepped =
                backward_and_step(&loss, &mut opt, scaler.as_mut(), options.optim.grad_clip, reducer.as_ref())?;
            if stepped {
                if let Some(e) = ema.as_mut() {
                    e.update();
                }
            }
            loss_sum.add(&loss, n);
            samples += n;
            let step = done_before + i + 1;
            let logged = options.train.log_every > 0 && step.is_multiple_of(options.train.log_every);
            if let Some(tb) = tb.as_mut().filter(|_| logged) {
                tb.iteration(step, f64::try_from(&loss)?);
            }
            if i + 1 == iters || logged || loss_sum.due() {
                let mean = loss_sum.read(epoch, i)? / samples.max(1) as f64;
                let rate = samples as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("loss {mean:.4} lr {lr:.2e} {rate:.1} img/s"));
            }
            bar.inc(1);
        }
        if dist.is_some() && done < iters {
            // The other ranks wait in their next all-reduce: end with an error rather than a mismatch.
            bail!(
                "epoch {}: this rank's shard gave {done} of {iters} batches (every sample of a batch unreadable?)",
                epoch + 1
            );
        }
        let mut loss_sum = loss_sum.read(epoch, iters.saturating_sub(1))?;
        bar.finish_and_clear();
        let mut skipped = batches.skipped();
        if let Some(g) = dist {
            let sums = g.sum_f64(&[loss_sum, samples as f64, skipped as f64])?;
            (loss_sum, samples, skipped) = (sums[0], sums[1] as usize, sums[2] as usize);
        }
        let seconds = started.elapsed().as_secs_f64();
        let mut record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / samples.max(1) as f64,
            val: Validation::default(),
            lr: opt.lr(),
            images_per_sec: samples as f64 / seconds.max(1e-9),
            epoch_seconds: seconds,
            skipped,
        };
        drop(batches);
        if let Some(g) = dist {
            // Batch-norm statistics (and the EMA shadow) differ per rank: rank 0's are evaluated and saved.
            broadcast_variables(g, vs, ema.as_ref())?;
        }
        let evaluate = (epoch + 1) % options.train.eval_every.max(1) == 0 || epoch + 1 == epochs;
        let mut images = None;
        if evaluate {
            if let Some(e) = ema.as_mut() {
                e.swap();
            }
            let eval = task.evaluate(epoch);
            if eval.is_ok() && tb.as_ref().is_some_and(TrainingLog::active) {
                images = Some(task.evaluation_images(epoch));
            }
            if let Some(e) = ema.as_mut() {
                e.swap();
            }
            record.val = agree(dist, eval)?;
        }
        let mut meta = task.checkpoint_meta();
        meta.epoch = epoch + 1;
        meta.config = Some(options.config_text.clone());
        meta.metrics = Some(record);
        let improved = options.best_metric.of(&record).filter(|&v| options.best_metric.improves(v, best));
        if improved.is_some() {
            best = improved;
        }
        let task_state = task.loss_mut().map(|l| l.state()).unwrap_or_default();
        let written = (|| -> Result<()> {
            if !lead {
                return Ok(());
            }
            save_weights(vs, ema.as_mut(), &meta, &dir.join("last.safetensors"))?;
            if improved.is_some() {
                save_weights(vs, ema.as_mut(), &meta, &dir.join("best.safetensors"))?;
            }
            let at = Resumed { epoch: epoch + 1, best, world_size };
            save_state(vs, &opt, ema.as_ref(), &at, task_state, &state_file)?;
            // TensorBoard before the metrics files: once an epoch is in metrics.jsonl, its events are flushed.
            if let Some(tb) = tb.as_mut() {
                tb.epoch(&record, images);
            }
            log.append(&record)?;
            ui::info(format_epoch(&record, epochs));
            if let Some(draw) = options.curves {
                draw(dir, &log.read()?)?;
            }
            Ok(())
        })();
        agree(dist, written)?;
        last = record;
    }
    Ok(FitSummary { epochs_run: end - start, last, best_value: best, run_dir: dir.clone() })
}

/// One rank's failure, every rank's (see [`ProcessGroup::agree`]); a plain run: `result` itself.
fn agree<R>(dist: Option<&ProcessGroup>, result: Result<R>) -> Result<R> {
    match dist {
        Some(g) => g.agree(result),
        None => result,
    }
}

/// Overwrites the variables (parameters and buffers, in name order) and the EMA shadow with rank 0's.
fn broadcast_variables(g: &ProcessGroup, vs: &VarStore, ema: Option<&Ema>) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tensors: Vec<Tensor> = named.into_iter().map(|(_, t)| t).collect();
    if let Some(e) = ema {
        tensors.extend(e.shadow_tensors());
    }
    tch::no_grad(|| g.broadcast(&tensors, 0))
}

/// Back-propagates `loss` (scaled for fp16), averages the gradients across the ranks (data-parallel),
/// clips them and steps the optimiser; false when the loss scaler skipped the step (non-finite fp16
/// gradients: the same decision on every rank, the gradients being averaged first).
fn backward_and_step(
    loss: &Tensor,
    opt: &mut Optimizer,
    scaler: Option<&mut LossScaler>,
    clip: f64,
    reducer: Option<&GradReducer>,
) -> Result<bool> {
    let reduce = |opt: &Optimizer| match reducer {
        Some(r) => {
            // A collective of a synchronised batch norm that failed in the forward or backward pass.
            crate::dist::sync_bn::take_error()?;
            r.reduce(&opt.grads())
        }
        None => Ok(()),
    };
    match scaler {
        Some(s) => {
            s.scaled(loss).backward();
            reduce(opt)?;
            if !s.unscale(&opt.grads())? {
                return Ok(false);
            }
        }
        None => {
            loss.backward();
            reduce(opt)?;
        }
    }
    if clip > 0.0 {
        opt.clip_grad_norm(clip);
    }
    opt.step()?;
    Ok(true)
}

/// The epoch's Σ loss × samples, kept on the device so the step never waits for it; [`LossSum::read`]
/// copies it to the host (and catches a non-finite loss).
struct LossSum {
    sum: Tensor,
    last_read: Instant,
    /// Iterations (0-based) up to which the sum was read finite.
    read_until: Option<usize>,
}

impl LossSum {
    /// How often the progress bar's loss is refreshed.
    const REFRESH: Duration = Duration::from_millis(500);

    fn new(device: tch::Device) -> Self {
        LossSum { sum: Tensor::zeros([], (Kind::Double, device)), last_read: Instant::now(), read_until: None }
    }

    fn add(&mut self, loss: &Tensor, n: usize) {
        let _ = self.sum.g_add_(&(loss.detach().to_kind(Kind::Double) * n as f64));
    }

    /// Whether the progress bar is due for a refresh.
    fn due(&self) -> bool {
        self.last_read.elapsed() >= Self::REFRESH
    }

    /// The sum so far (one device-to-host copy); an error when the loss of an iteration since the last
    /// read (up to iteration `i`, 0-based, of `epoch`) was not finite.
    fn read(&mut self, epoch: usize, i: usize) -> Result<f64> {
        let value = f64::try_from(&self.sum)?;
        if !value.is_finite() {
            let first = self.read_until.map_or(1, |r| r + 2);
            let at = if first > i { format!("iteration {}", i + 1) } else { format!("iterations {first}–{}", i + 1) };
            bail!(
                "the loss became {} at epoch {} {at}: lower the learning rate or check the data",
                value as f32,
                epoch + 1
            );
        }
        self.last_read = Instant::now();
        self.read_until = Some(i);
        Ok(value)
    }
}

/// "epoch 3/10  train_loss 1.2345  val_top1 0.4560 …" (lr and timing last).
pub fn format_epoch(r: &EpochRecord, epochs: usize) -> String {
    let mut parts = vec![format!("epoch {}/{epochs}", r.epoch)];
    parts.extend(r.measured().into_iter().map(|(k, v)| format!("{k} {v:.4}")));
    parts.push(format!("lr {:.2e}", r.lr));
    parts.push(format!("{:.1} img/s", r.images_per_sec));
    if r.skipped > 0 {
        parts.push(format!("{} skipped", r.skipped));
    }
    parts.join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::Rng;
    use crate::train::tensorboard::{event_files, read_events, Value, What};
    use rand::Rng as _;
    use tch::{nn, nn::Module, Device, Kind};

    /// Points in 2-D, label = which side of a line they fall on (with label noise from the rng).
    struct Points(usize);
    impl Dataset for Points {
        type Item = (Tensor, i64);
        fn len(&self) -> usize {
            self.0
        }
        fn get(&self, index: usize, rng: &mut Rng) -> Result<(Tensor, i64)> {
            let x = (index % 17) as f32 / 8.0 - 1.0;
            let y = (index % 13) as f32 / 6.0 - 1.0 + rng.gen_range(-0.05..0.05);
            Ok((Tensor::from_slice(&[x, y]), i64::from(x + 0.5 * y > 0.1)))
        }
    }

    struct Toy {
        net: nn::Sequential,
        data: Arc<Points>,
    }
    impl TrainTask for Toy {
        type Data = Points;
        fn train_data(&self) -> Arc<Points> {
            self.data.clone()
        }
        fn train_batch(&mut self, batch: Vec<(Tensor, i64)>) -> Result<(Tensor, usize)> {
            let n = batch.len();
            let xs = Tensor::stack(&batch.iter().map(|b| b.0.shallow_clone()).collect::<Vec<_>>(), 0);
            let ys = Tensor::from_slice(&batch.iter().map(|b| b.1).collect::<Vec<_>>());
            // No dropout here: libtorch's generator is process-wide and other tests of this binary use
            // it concurrently. The CLI test `a_killed_run_resumes_to_the_same_metrics` covers dropout.
            let logits = self.net.forward(&xs);
            Ok((logits.cross_entropy_for_logits(&ys), n))
        }
        fn evaluate(&mut self, _epoch: usize) -> Result<Validation> {
            let mut rng = crate::loader::sample_rng(0, 0, 0);
            let items: Vec<_> = (0..200).map(|i| self.data.get(i, &mut rng).unwrap()).collect();
            let xs = Tensor::stack(&items.iter().map(|b| b.0.shallow_clone()).collect::<Vec<_>>(), 0);
            let ys = Tensor::from_slice(&items.iter().map(|b| b.1).collect::<Vec<_>>());
            let acc = tch::no_grad(|| {
                self.net.forward(&xs).argmax(-1, false).eq_tensor(&ys).to_kind(Kind::Float).mean(Kind::Float)
            });
            Ok(Validation { val_top1: Some(f64::try_from(acc)?), ..Default::default() })
        }
        fn checkpoint_meta(&self) -> CheckpointMeta {
            CheckpointMeta { arch: crate::Arch::SkipblocknetXs, num_classes: 2, ..Default::default() }
        }
        fn evaluation_images(&mut self, epoch: usize) -> Result<Vec<(String, RgbPng)>> {
            Ok(vec![("toy/sample".into(), RgbPng { png: vec![epoch as u8], width: 2, height: 1 })])
        }
    }

    /// What a run's `tb/` holds, file by file: (step, tag, value) of every summary value, and the steps
    /// of session starts (tag `START`).
    fn tb_events(run: &Path) -> Vec<Vec<(i64, String, Value)>> {
        let files = event_files(&run.join("tb")).unwrap();
        files
            .iter()
            .map(|f| {
                let events = read_events(f).unwrap();
                assert_eq!(events[0].what, What::FileVersion("brain.Event:2".into()));
                events[1..]
                    .iter()
                    .flat_map(|e| match &e.what {
                        What::Summary(values) => values.iter().map(|(t, v)| (e.step, t.clone(), v.clone())).collect(),
                        What::SessionStart => vec![(e.step, "START".into(), Value::Scalar(0.0))],
                        What::FileVersion(_) => panic!("a second file-version record"),
                    })
                    .collect()
            })
            .collect()
    }

    /// `(step, value)` of the scalar `tag` in `events`.
    fn scalar(events: &[(i64, String, Value)], tag: &str) -> Vec<(i64, f32)> {
        events
            .iter()
            .filter(|(_, t, _)| t == tag)
            .map(|(s, _, v)| match v {
                Value::Scalar(x) => (*s, *x),
                Value::Image(_) => panic!("{tag} is an image"),
            })
            .collect()
    }

    /// The toy network with weights from a local generator (not libtorch's shared one).
    fn toy(vs: &VarStore) -> Toy {
        let net = nn::seq()
            .add(nn::linear(vs.root() / "a", 2, 16, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(vs.root() / "b", 16, 2, Default::default()));
        let mut rng = crate::loader::sample_rng(42, 0, 0);
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        tch::no_grad(|| {
            for (_, mut v) in vars {
                let values: Vec<f32> = (0..v.numel()).map(|_| rng.gen_range(-0.5..0.5)).collect();
                v.copy_(&Tensor::from_slice(&values).view(v.size().as_slice()));
            }
        });
        Toy { net, data: Arc::new(Points(256)) }
    }

    fn options(dir: &Path, epochs: usize, resume: bool) -> FitOptions {
        FitOptions {
            run_dir: dir.to_path_buf(),
            optim: OptimSection { lr: 0.2, ..Default::default() },
            schedule: ScheduleSection::default(),
            train: TrainSection { epochs, batch_size: 32, ema_decay: 0.9, log_every: 3, ..Default::default() },
            loader: LoaderConfig { batch_size: 32, shuffle: true, seed: 5, workers: 1, ..Default::default() },
            best_metric: Monitor::ValTop1,
            resume,
            stop_after: None,
            exist_ok: false,
            seed: 5,
            config_text: "name = \"toy\"\n".into(),
            curves: None,
        }
    }

    #[test]
    fn learns_writes_a_run_and_resumes_identically() {
        let dir = tempfile::tempdir().unwrap();
        let straight = dir.path().join("straight");
        let vs = VarStore::new(Device::Cpu);
        let mut task = toy(&vs);
        let summary = fit(&mut task, &vs, &options(&straight, 4, false)).unwrap();
        assert!(summary.last.val.val_top1.unwrap() > 0.85, "{:?}", summary.last);
        for f in [
            "config.toml",
            "last.safetensors",
            "best.safetensors",
            "last.state.safetensors",
            "metrics.jsonl",
            "metrics.csv",
        ] {
            assert!(straight.join(f).exists(), "{f}");
        }
        let meta = checkpoint::load_meta(&straight.join("last.safetensors")).unwrap();
        assert_eq!(meta.epoch, 4);
        // A second run in the same folder is refused…
        let vs_again = VarStore::new(Device::Cpu);
        let err = fit(&mut toy(&vs_again), &vs_again, &options(&straight, 4, false)).unwrap_err().to_string();
        assert!(err.contains("--resume"), "{err}");

        // …2 epochs, "killed", then resumed to 4 with fresh variables: the same metrics.
        let split = dir.path().join("split");
        let vs1 = VarStore::new(Device::Cpu);
        fit(&mut toy(&vs1), &vs1, &FitOptions { stop_after: Some(2), ..options(&split, 4, false) }).unwrap();
        let vs2 = VarStore::new(Device::Cpu);
        let resumed = fit(&mut toy(&vs2), &vs2, &options(&split, 4, true)).unwrap();
        assert_eq!(resumed.epochs_run, 2);
        let a = MetricsLog::new(&straight).read().unwrap();
        let b = MetricsLog::new(&split).read().unwrap();
        assert_eq!(b.len(), 4);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.train_loss, x.val, x.lr), (y.train_loss, y.val, y.lr), "epoch {}", x.epoch);
        }

        // TensorBoard: one events file with every epoch's scalars (the records' values as f32), the loss
        // every 3 of the 4 × 8 iterations and the task's image at each evaluated epoch.
        let tb = tb_events(&straight);
        assert_eq!(tb.len(), 1);
        let per_epoch =
            |f: fn(&EpochRecord) -> f64| a.iter().map(|r| (r.epoch as i64, f(r) as f32)).collect::<Vec<_>>();
        assert_eq!(scalar(&tb[0], "train/loss"), per_epoch(|r| r.train_loss));
        assert_eq!(scalar(&tb[0], "val/top1"), per_epoch(|r| r.val.val_top1.unwrap()));
        assert_eq!(scalar(&tb[0], "lr"), per_epoch(|r| r.lr));
        assert_eq!(scalar(&tb[0], "images_per_sec"), per_epoch(|r| r.images_per_sec));
        assert!(scalar(&tb[0], "val/map").is_empty(), "unmeasured metrics are not logged");
        let iters = scalar(&tb[0], "train/loss_iter");
        assert_eq!(iters.iter().map(|p| p.0).collect::<Vec<_>>(), (1..=10).map(|k| 3 * k).collect::<Vec<_>>());
        let images: Vec<_> = tb[0].iter().filter(|(_, t, _)| t == "toy/sample").collect();
        assert_eq!(images.len(), 4);
        assert_eq!(images[2].0, 3, "image steps are epochs");
        assert!(matches!(&images[2].2, Value::Image(i) if i.png == [2] && (i.width, i.height) == (2, 1)));
        // The split run: a second file that restarts after 2 × 8 iterations and continues the steps with
        // the same values.
        let tb_split = tb_events(&split);
        assert_eq!(tb_split.len(), 2);
        assert_eq!(tb_split[1][0], (17, "START".to_string(), Value::Scalar(0.0)));
        assert_eq!(scalar(&tb_split[0], "train/loss").len(), 2);
        assert_eq!(scalar(&tb_split[1], "train/loss"), per_epoch(|r| r.train_loss)[2..]);
        let resumed_iters = scalar(&tb_split[1], "train/loss_iter");
        assert_eq!(resumed_iters, iters[5..], "steps 18..30 continue the run");
        // Resuming where nothing was saved is a clear error.
        let vs3 = VarStore::new(Device::Cpu);
        let err = fit(&mut toy(&vs3), &vs3, &options(&dir.path().join("none"), 4, true)).unwrap_err().to_string();
        assert!(err.contains("nothing to resume"), "{err}");
    }

    #[test]
    fn a_diverging_loss_stops_the_run_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let vs = VarStore::new(Device::Cpu);
        let mut opts = options(&dir.path().join("run"), 2, false);
        opts.optim.lr = 1e30;
        let err = fit(&mut toy(&vs), &vs, &opts).unwrap_err().to_string();
        assert!(err.starts_with("the loss became ") && err.contains("at epoch 1 iteration"), "{err}");
        assert!(!dir.path().join("run/last.safetensors").exists(), "nothing is saved from a diverged epoch");
    }

    #[test]
    fn fused_and_per_parameter_updates_train_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut losses = Vec::new();
        for fused in [true, false] {
            let vs = VarStore::new(Device::Cpu);
            let mut opts = options(&dir.path().join(format!("{fused}")), 2, false);
            opts.train.fused_optimizer = fused;
            opts.optim.nesterov = true;
            fit(&mut toy(&vs), &vs, &opts).unwrap();
            losses
                .push(MetricsLog::new(&opts.run_dir).read().unwrap().iter().map(|r| r.train_loss).collect::<Vec<_>>());
        }
        for (a, b) in losses[0].iter().zip(&losses[1]) {
            assert!((a - b).abs() < 1e-5, "{losses:?}");
        }
    }

    #[test]
    fn bf16_training_keeps_float32_weights_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let vs = VarStore::new(Device::Cpu);
        let mut opts = options(&dir.path().join("run"), 2, false);
        opts.train.amp = crate::recipe::Amp::Bf16;
        let summary = fit(&mut toy(&vs), &vs, &opts).unwrap();
        assert!(summary.last.train_loss.is_finite());
        for file in ["last.safetensors", "best.safetensors", "last.state.safetensors"] {
            let (named, _) = tensors::read_safetensors(&dir.path().join("run").join(file)).unwrap();
            for (k, t) in named.iter().filter(|(k, _)| !k.ends_with("__updates__")) {
                assert_eq!(t.kind(), Kind::Float, "{file}: {k}");
            }
        }
    }

    #[test]
    fn a_log_that_cannot_be_written_does_not_stop_training() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("tb"), "a file where the folder should be").unwrap();
        let vs = VarStore::new(Device::Cpu);
        let summary = fit(&mut toy(&vs), &vs, &options(&run, 2, false)).unwrap();
        assert_eq!(summary.epochs_run, 2);
        assert_eq!(MetricsLog::new(&run).read().unwrap().len(), 2);
    }

    #[test]
    fn best_follows_the_monitor_in_its_direction() {
        let dir = tempfile::tempdir().unwrap();
        for monitor in [Monitor::TrainLoss, Monitor::ValTop1] {
            let run = dir.path().join(format!("{monitor:?}"));
            let vs = VarStore::new(Device::Cpu);
            let opts = FitOptions { best_metric: monitor, ..options(&run, 4, false) };
            let summary = fit(&mut toy(&vs), &vs, &opts).unwrap();
            let records = MetricsLog::new(&run).read().unwrap();
            let values: Vec<f64> = records.iter().map(|r| monitor.of(r).unwrap()).collect();
            let pick = if monitor.higher_is_better() { f64::max } else { f64::min };
            let best = values.iter().copied().fold(values[0], pick);
            assert_eq!(summary.best_value, Some(best), "{monitor:?}: {values:?}");
            let saved = checkpoint::load_meta(&run.join("best.safetensors")).unwrap();
            let epoch = records.iter().find(|r| monitor.of(r) == Some(best)).unwrap().epoch;
            assert_eq!(saved.epoch, epoch, "{monitor:?}: best.safetensors is the best epoch's");
        }
    }
}

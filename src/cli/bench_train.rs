//! `skipblock bench train`: the training step at full speed, next to PyTorch eager in the same run.
//!
//! * model-only steps (forward, loss, backward, SGD; no data) of SkipblockNet-M (224; batch 256 on
//!   CUDA, 32 on the CPU) in NCHW float32, channels-last float32 and channels-last + bf16 autocast, each
//!   against PyTorch eager in the same mode (`tests/python/bench_ref.py train-model`); our
//!   per-parameter optimiser against the fused one; SSDLite-SkipblockNet-S (300, batch 32), ours only;
//! * end to end (loader, copy to the device, step, EMA) for both pipelines on synthetic JPEGs, and the
//!   loaders alone (`bench loaders`);
//! * `--profile`: where the end-to-end classification step's time goes (data wait, copy to the device,
//!   forward, loss, backward, optimiser, EMA), with a device barrier after each phase in this mode only.
//!
//! Times are per step, averaged over `--iters` steps between two device barriers.

use super::bench::{all_threads, reference_ms, CommonArgs, Row};
use super::GlobalArgs;
use anyhow::{Context, Result};
use clap::Args;
use skipblock_core::checkpoint;
use skipblock_core::loader::{load_epoch, LoaderConfig};
use skipblock_core::loss::{Loss, LossConfig};
use skipblock_core::model::{Arch, BlockOptions, SkipblockNet};
use skipblock_core::recipe::{Amp, OptimSection};
use skipblock_core::train::ema::Ema;
use skipblock_core::train::optim::Optimizer;
use skipblock_core::train::speed::{input_format, to_memory_format, Precision};
use skipblock_core::ui;
use std::path::Path;
use std::time::Instant;
use tch::{nn::VarStore, Device, Kind, Tensor};

#[derive(Args, Debug, Clone)]
pub struct TrainBenchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Time the phases of the end-to-end classification step (a device barrier after each).
    #[arg(long)]
    pub profile: bool,
    /// Batch of the classification rows (default: 256 on CUDA, 32 on the CPU).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Input size of the classification rows.
    #[arg(long, default_value_t = 224)]
    pub size: i64,
    /// Batch of the detection rows.
    #[arg(long, default_value_t = 32)]
    pub detect_batch: usize,
    /// Only the model-only classification rows (and the profile with --profile): no detection,
    /// end-to-end or loader rows.
    #[arg(long)]
    pub model_only: bool,
}

/// Waits for the device's queued work (CUDA); nothing on the CPU.
fn barrier(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Accumulated time per named phase, in first-seen order; [`Phases::mark`] closes the phase running
/// since the previous mark, after a device barrier (only when enabled: the barriers cost speed).
struct Phases {
    enabled: bool,
    device: Device,
    last: Instant,
    totals: Vec<(&'static str, f64)>,
}

impl Phases {
    fn new(enabled: bool, device: Device) -> Self {
        Phases { enabled, device, last: Instant::now(), totals: Vec::new() }
    }
    fn start(&mut self) {
        if self.enabled {
            barrier(self.device);
            self.last = Instant::now();
        }
    }
    fn mark(&mut self, name: &'static str) {
        if !self.enabled {
            return;
        }
        barrier(self.device);
        let now = Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1e3;
        self.last = now;
        match self.totals.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += ms,
            None => self.totals.push((name, ms)),
        }
    }
}

/// A model with its optimiser (and EMA), stepping on batches: forward and loss under `precision`.
struct Trainer {
    opt: Optimizer,
    ema: Option<Ema>,
    precision: Precision,
    channels_last: bool,
}

impl Trainer {
    fn new(vs: &VarStore, precision: Precision, channels_last: bool, fused: bool, ema: bool) -> Result<Self> {
        to_memory_format(vs, channels_last)?;
        let mut opt = Optimizer::new(vs, &OptimSection { lr: 0.01, ..Default::default() });
        opt.set_fused(fused);
        let ema = ema.then(|| {
            let mut e = Ema::new(vs, 0.9998);
            e.set_fused(fused);
            e
        });
        Ok(Trainer { opt, ema, precision, channels_last })
    }

    /// One step: `forward` gives the model's outputs, `loss` the loss from them.
    fn step<O>(
        &mut self,
        x: &Tensor,
        phases: &mut Phases,
        forward: impl FnOnce(&Tensor) -> O,
        loss: impl FnOnce(O) -> Result<Tensor>,
    ) -> Result<()> {
        let x = input_format(x, self.channels_last)?;
        self.opt.zero_grad();
        let out = self.precision.run(|| forward(&x))?;
        phases.mark("forward");
        let l = self.precision.run(|| loss(out))??;
        phases.mark("loss");
        l.backward();
        phases.mark("backward");
        self.opt.step()?;
        phases.mark("optimiser");
        if let Some(e) = self.ema.as_mut() {
            e.update();
            phases.mark("EMA");
        }
        Ok(())
    }
}

/// Mean milliseconds per call of `f` over `iters` calls after `warmup`, between device barriers.
fn mean_ms(device: Device, iters: usize, warmup: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    barrier(device);
    let t = Instant::now();
    for _ in 0..iters.max(1) {
        f()?;
    }
    barrier(device);
    Ok(t.elapsed().as_secs_f64() * 1e3 / iters.max(1) as f64)
}

/// A mode of the model-only step.
#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    channels_last: bool,
    amp: Amp,
}

const MODES: [Mode; 3] = [
    Mode { name: "NCHW fp32", channels_last: false, amp: Amp::Off },
    Mode { name: "channels-last fp32", channels_last: true, amp: Amp::Off },
    Mode { name: "channels-last bf16", channels_last: true, amp: Amp::Bf16 },
];

/// SkipblockNet-M (1000 classes) on `device` with saved weights for the reference.
fn classifier(device: Device, dir: &Path) -> Result<(VarStore, SkipblockNet, std::path::PathBuf)> {
    let vs = VarStore::new(device);
    let net = SkipblockNet::new(&vs.root(), &Arch::SkipblocknetM.config(), 1000, BlockOptions::default());
    let path = dir.join("m.safetensors");
    checkpoint::save(&vs, &path, &checkpoint::CheckpointMeta::new(Arch::SkipblocknetM, 1000, BlockOptions::default()))?;
    Ok((vs, net, path))
}

#[allow(clippy::too_many_arguments)]
fn reference_train(
    args: &CommonArgs,
    weights: &Path,
    device: Device,
    batch: usize,
    size: i64,
    iters: usize,
    mode: Mode,
) -> Result<f64> {
    let device_arg = match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_string(),
    };
    let weights = weights.to_str().context("weights path is not UTF-8")?;
    let threads = tch::get_num_threads().to_string();
    let (iters, batch, size) = (iters.to_string(), batch.to_string(), size.to_string());
    let mut argv = vec!["train-model", "--weights", weights, "--device", &device_arg, "--threads", &threads];
    argv.extend(["--iters", &iters, "--warmup", "1", "--batch", &batch, "--size", &size]);
    if mode.channels_last {
        argv.push("--channels-last");
    }
    if mode.amp == Amp::Bf16 {
        argv.extend(["--amp", "bf16"]);
    }
    reference_ms(args, &argv)
}

fn img_per_s(batch: usize, ms: f64) -> f64 {
    batch as f64 * 1e3 / ms.max(1e-9)
}

/// Rows of images/s; `ratio` stays ours / reference in time (< 1: faster).
pub(super) fn rate_row(name: String, batch: usize, ours_ms: f64, reference_ms: Option<f64>) -> Row {
    Row {
        name,
        unit: "img/s",
        ours: img_per_s(batch, ours_ms),
        reference: reference_ms.map(|r| img_per_s(batch, r)),
        ratio: reference_ms.map(|r| ours_ms / r),
    }
}

fn model_only_rows(a: &TrainBenchArgs, device: Device, batch: usize, iters: usize) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let (vs, net, weights) = classifier(device, dir.path())?;
    let x = Tensor::randn([batch as i64, 3, a.size, a.size], (Kind::Float, device));
    let y = Tensor::randint(1000, [batch as i64], (Kind::Int64, device));
    let mut loss = Loss::new(LossConfig::default())?;
    let mut rows = Vec::new();
    let mut off = Phases::new(false, device);
    let step_ms = |trainer: &mut Trainer, loss: &mut Loss, off: &mut Phases| {
        mean_ms(device, iters, 1, || {
            trainer.step(
                &x,
                off,
                |x| net.forward_t(x, true),
                |out| Ok(loss.compute(&out.logits, Some(&out.features), &y)?.loss),
            )
        })
    };
    for mode in MODES {
        let precision = Precision::new(mode.amp, device)?;
        let mut trainer = Trainer::new(&vs, precision, mode.channels_last, true, false)?;
        let ours = step_ms(&mut trainer, &mut loss, &mut off)?;
        let reference = if a.common.no_reference {
            None
        } else {
            Some(reference_train(&a.common, &weights, device, batch, a.size, iters, mode)?)
        };
        rows.push(rate_row(
            format!("skipblocknet-m train step b{batch} {} {mode_name}, model only", a.size, mode_name = mode.name),
            batch,
            ours,
            reference,
        ));
    }
    to_memory_format(&vs, false)?;
    // The optimiser alone: fused (multi-tensor) vs one parameter at a time, gradients in place.
    let off_precision = Precision::off(device);
    let mut trainer = Trainer::new(&vs, off_precision, false, true, false)?;
    trainer.step(
        &x,
        &mut off,
        |x| net.forward_t(x, true),
        |out| Ok(loss.compute(&out.logits, Some(&out.features), &y)?.loss),
    )?;
    let mut per_param = Optimizer::new(&vs, &OptimSection { lr: 0.0, ..Default::default() });
    per_param.set_fused(false);
    let mut fused = Optimizer::new(&vs, &OptimSection { lr: 0.0, ..Default::default() });
    let opt_iters = 20.max(iters);
    let t_fused = mean_ms(device, opt_iters, 2, || fused.step())?;
    let t_per = mean_ms(device, opt_iters, 2, || per_param.step())?;
    rows.push(Row {
        name: "SGD step of skipblocknet-m (fused vs per-parameter)".into(),
        unit: "ms",
        ours: t_fused,
        reference: Some(t_per),
        ratio: Some(t_fused / t_per),
    });
    let mut ema_fused = Ema::new(&vs, 0.999);
    let mut ema_per = Ema::new(&vs, 0.999);
    ema_per.set_fused(false);
    let e_fused = mean_ms(device, opt_iters, 2, || {
        ema_fused.update();
        Ok(())
    })?;
    let e_per = mean_ms(device, opt_iters, 2, || {
        ema_per.update();
        Ok(())
    })?;
    rows.push(Row {
        name: "EMA update of skipblocknet-m (fused vs per-tensor)".into(),
        unit: "ms",
        ours: e_fused,
        reference: Some(e_per),
        ratio: Some(e_fused / e_per),
    });
    // The same model-only step with the per-parameter optimiser, against the fused one.
    let mut slow = Trainer::new(&vs, off_precision, false, false, false)?;
    let per_step = step_ms(&mut slow, &mut loss, &mut off)?;
    let mut fast = Trainer::new(&vs, off_precision, false, true, false)?;
    let fused_step = step_ms(&mut fast, &mut loss, &mut off)?;
    rows.push(Row {
        name: format!("skipblocknet-m train step b{batch} NCHW fp32: fused vs per-parameter optimiser"),
        unit: "img/s",
        ours: img_per_s(batch, fused_step),
        reference: Some(img_per_s(batch, per_step)),
        ratio: Some(fused_step / per_step),
    });
    Ok(rows)
}

/// SSDLite-SkipblockNet-S (300, 21 classes) with its variables.
fn detector(device: Device) -> Result<(VarStore, skipblock_detect::Ssd)> {
    let config = skipblock_detect::SsdConfig::for_arch(Arch::SsdliteSkipblocknetS, 21)?;
    let vs = VarStore::new(device);
    let ssd = skipblock_detect::Ssd::new(&vs.root(), &config, BlockOptions::default())?;
    Ok((vs, ssd))
}

fn detect_model_only_row(a: &TrainBenchArgs, device: Device, iters: usize) -> Result<Row> {
    use skipblock_core::boxes::BBox;
    let (vs, ssd) = detector(device)?;
    let batch = a.detect_batch;
    let x = Tensor::randn([batch as i64, 3, 300, 300], (Kind::Float, device));
    let targets: Vec<skipblock_detect::ImageTargets> = (0..batch)
        .map(|i| {
            let o = (i % 5) as f32 * 0.1;
            (vec![BBox { xmin: o, ymin: o, xmax: o + 0.4, ymax: o + 0.3 }], vec![1 + i % 20])
        })
        .collect();
    let mut trainer = Trainer::new(&vs, Precision::off(device), device.is_cuda(), true, false)?;
    let mut off = Phases::new(false, device);
    let ms = mean_ms(device, iters, 1, || {
        trainer.step(
            &x,
            &mut off,
            |x| ssd.forward_t(x, true),
            |out| Ok(ssd.compute_loss(&out, &targets, None)?.total()),
        )
    })?;
    let layout = if device.is_cuda() { "channels-last" } else { "NCHW" };
    Ok(rate_row(format!("ssdlite-skipblocknet-s train step b{batch} 300 {layout} fp32, model only"), batch, ms, None))
}

/// End-to-end classification: synthetic Food-101 JPEGs (256 px) through the Inception crop, copy to the
/// device, step, EMA; the device's default memory format. Returns the row and the phases.
fn classify_end_to_end(
    a: &TrainBenchArgs,
    device: Device,
    batch: usize,
    steps: usize,
    profile: bool,
) -> Result<(Row, Vec<(&'static str, f64)>)> {
    use skipblock_data::classification::{open, Augment, ClsDataset, ClsTransform, Layout, Split};
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("food");
    let per_class = (batch * (steps + 1)).div_ceil(8);
    skipblock_data::synth_cls::generate(
        &root,
        &skipblock_data::synth_cls::SynthClsOptions {
            classes: 8,
            train_per_class: per_class,
            test_per_class: 1,
            size: 256,
            ..Default::default()
        },
    )?;
    let set = open(&root, Layout::Food101, Split::Train, 0.0, 0)?;
    let data = std::sync::Arc::new(ClsDataset::new(
        set,
        ClsTransform::new(Augment::Inception, a.size as u32, 256.0 / 224.0, 0.0, false)?,
    ));
    let vs = VarStore::new(device);
    let net = SkipblockNet::new(&vs.root(), &Arch::SkipblocknetM.config(), 8, BlockOptions::default());
    let mut loss = Loss::new(LossConfig::default())?;
    let mut trainer = Trainer::new(&vs, Precision::off(device), device.is_cuda(), true, true)?;
    let config = LoaderConfig { batch_size: batch, shuffle: true, drop_last: true, ..Default::default() };
    let mut phases = Phases::new(profile, device);
    let mut batches = load_epoch(data, 0, &config)?;
    // The first step (allocations, cuDNN autotuning) is not timed.
    let first = batches.next().context("no batch")??;
    let (x, y) = skipblock_classify::evaluator::collate(first, device)?;
    let mut off = Phases::new(false, device);
    trainer.step(
        &x,
        &mut off,
        |x| net.forward_t(x, true),
        |out| Ok(loss.compute(&out.logits, Some(&out.features), &y)?.loss),
    )?;
    barrier(device);
    let started = Instant::now();
    let mut images = 0;
    phases.start();
    for b in batches.by_ref().take(steps) {
        let b = b?;
        phases.mark("data wait");
        images += b.len();
        let (x, y) = skipblock_classify::evaluator::collate(b, device)?;
        phases.mark("copy to device");
        trainer.step(
            &x,
            &mut phases,
            |x| net.forward_t(x, true),
            |out| Ok(loss.compute(&out.logits, Some(&out.features), &y)?.loss),
        )?;
    }
    barrier(device);
    let ms = started.elapsed().as_secs_f64() * 1e3 / (images.max(1) as f64 / batch as f64);
    let row = rate_row(
        format!(
            "skipblocknet-m end to end b{batch} {}: JPEG loader, step, EMA{}",
            a.size,
            if profile { " (profiled)" } else { "" }
        ),
        batch,
        ms,
        None,
    );
    let steps_done = (images / batch).max(1) as f64;
    Ok((row, phases.totals.into_iter().map(|(n, t)| (n, t / steps_done)).collect()))
}

/// End-to-end detection: synthetic VOC JPEGs (300 px) through the full SSD augmentation, step, EMA.
fn detect_end_to_end(a: &TrainBenchArgs, device: Device, steps: usize) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let batch = a.detect_batch;
    skipblock_data::synth_voc::generate(
        dir.path(),
        skipblock_data::synth_voc::SynthVocOptions {
            train: batch * (steps + 1),
            test: 1,
            seed: 0,
            size: 300,
            ..Default::default()
        },
    )?;
    let root = dir.path().join("VOCdevkit/VOC2007");
    let classes = skipblock_data::voc::read_labels(&root.join("labels.txt"))?;
    let (voc, _) = skipblock_data::voc::VocDataset::open(&[root], "trainval", &classes, true)?;
    let data = std::sync::Arc::new(skipblock_data::voc::DetDataset::new(voc, 300, true));
    let config = skipblock_detect::SsdConfig::for_arch(Arch::SsdliteSkipblocknetS, classes.len() as i64 + 1)?;
    let vs = VarStore::new(device);
    let ssd = skipblock_detect::Ssd::new(&vs.root(), &config, BlockOptions::default())?;
    let mut trainer = Trainer::new(&vs, Precision::off(device), device.is_cuda(), true, true)?;
    let loader = LoaderConfig { batch_size: batch, shuffle: true, drop_last: true, ..Default::default() };
    let mut batches = load_epoch(data, 0, &loader)?;
    let mut off = Phases::new(false, device);
    let mut step = |b: Vec<skipblock_data::voc::DetSample>, trainer: &mut Trainer| -> Result<usize> {
        let n = b.len();
        let (x, targets) = skipblock_detect::task::collate(&b, device)?;
        trainer.step(
            &x,
            &mut off,
            |x| ssd.forward_t(x, true),
            |out| Ok(ssd.compute_loss(&out, &targets, None)?.total()),
        )?;
        Ok(n)
    };
    step(batches.next().context("no batch")??, &mut trainer)?;
    barrier(device);
    let started = Instant::now();
    let mut images = 0;
    for b in batches.by_ref().take(steps) {
        images += step(b?, &mut trainer)?;
    }
    barrier(device);
    let ms = started.elapsed().as_secs_f64() * 1e3 / (images.max(1) as f64 / batch as f64);
    Ok(rate_row(
        format!("ssdlite-skipblocknet-s end to end b{batch} 300: VOC loader, full augmentation, step, EMA"),
        batch,
        ms,
        None,
    ))
}

/// The rows of `bench train` (and the profile, printed here).
pub fn bench_train(global: &GlobalArgs, a: &TrainBenchArgs) -> Result<Vec<Row>> {
    let device = global.device()?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    // --threads N (global) for both sides; 0: one per core.
    let threads = if global.threads == 0 { all_threads() } else { global.threads };
    tch::set_num_threads(threads as i32);
    let batch = a.batch.unwrap_or(if device.is_cuda() { 256 } else { 32 });
    let iters = a.common.iters.clamp(1, if device.is_cuda() { 50 } else { 10 });
    let mut rows = model_only_rows(a, device, batch, iters)?;
    if !a.model_only {
        rows.push(detect_model_only_row(a, device, iters)?);
        let (row, _) = classify_end_to_end(a, device, batch, iters, false)?;
        rows.push(row);
        rows.push(detect_end_to_end(a, device, iters)?);
    }
    if a.profile {
        let (row, phases) = classify_end_to_end(a, device, batch, iters, true)?;
        let total: f64 = phases.iter().map(|p| p.1).sum();
        ui::info(format!(
            "profile of the end-to-end step (batch {batch}, {device:?}), ms per step with a barrier after each phase:"
        ));
        for (name, ms) in &phases {
            ui::info(format!("  {name:<16} {ms:>10.2} ms  {:>5.1} %", 100.0 * ms / total.max(1e-9)));
        }
        ui::info(format!("  {:<16} {total:>10.2} ms", "total"));
        rows.push(row);
        for (name, ms) in phases {
            rows.push(Row { name: format!("profile: {name}"), unit: "ms", ours: ms, reference: None, ratio: None });
        }
    }
    if !a.model_only {
        rows.extend(super::bench::bench_loaders(&a.common)?);
    }
    Ok(rows)
}

//! The sections of a training recipe that both pipelines share: `[model]`, `[loss]`, `[optim]`,
//! `[schedule]` and `[train]`. Each pipeline's recipe (classification, detection) lists these next to its
//! own `[data]` (and detection its `[ssd]`). Every field has a default; unknown keys are errors.

use crate::model::{Arch, BlockOptions, Stem};
use crate::train::metrics::Monitor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// A classifier: skipblocknet-xs|s|m|l, mobilenetv3-large or a model-zoo network (`skipblock model
    /// list`).
    pub arch: Arch,
    /// Input stem of a model-zoo network: `imagenet` or `cifar` (32×32: stride 1, no early pooling).
    /// Unset: the checkpoint's when fine-tuning, else `cifar` for inputs of 64 and below where the
    /// architecture has one, else its standard stem.
    pub stem: Option<Stem>,
    /// Square training input size.
    pub input_size: usize,
    /// BatchNorm momentum in PyTorch's convention (0.01 = TF's 0.99).
    pub bn_momentum: f64,
    pub bn_eps: f64,
    /// Dropout before the last linear layer.
    pub dropout: f64,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            arch: Arch::SkipblocknetM,
            stem: None,
            input_size: 224,
            bn_momentum: 0.01,
            bn_eps: 1e-5,
            dropout: 0.2,
        }
    }
}

impl ModelSection {
    /// The batch-norm settings every block is built with.
    pub fn block_options(&self) -> BlockOptions {
        BlockOptions { bn_momentum: self.bn_momentum, bn_eps: self.bn_eps }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Rmsprop,
}

/// `[optim]`: SGD (momentum, Nesterov) or RMSProp in TensorFlow's form (decay, momentum, epsilon
/// inside the square root), both with L2 weight decay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    pub kind: OptimizerKind,
    /// Peak learning rate (after warm-up).
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Skip weight decay on BN parameters and biases.
    pub no_decay_bn_bias: bool,
    /// RMSProp: decay of the squared-gradient average (TF's `decay`, PyTorch's `alpha`).
    pub rmsprop_decay: f64,
    pub eps: f64,
    /// Clip the global gradient norm to this (0 = off).
    pub grad_clip: f64,
}

impl Default for OptimSection {
    fn default() -> Self {
        OptimSection {
            kind: OptimizerKind::Sgd,
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            no_decay_bn_bias: false,
            rmsprop_decay: 0.9,
            eps: 1e-3,
            grad_clip: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    Constant,
    /// × `gamma` at each epoch of `milestones`.
    MultiStep,
    /// × `gamma` every `step_epochs` epochs (may be fractional: ×0.97 every 2.4 epochs), counted from the
    /// first step as TF's staircase decay counts (warm-up included).
    Exponential,
    /// Cosine annealing from `lr` to `min_lr` over `t_max_epochs` (0 = the whole run).
    Cosine,
}

/// `[schedule]`: learning rate per iteration, after an optional linear warm-up from `warmup_lr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSection {
    pub kind: ScheduleKind,
    pub warmup_epochs: f64,
    pub warmup_lr: f64,
    pub milestones: Vec<f64>,
    pub gamma: f64,
    pub step_epochs: f64,
    pub t_max_epochs: f64,
    pub min_lr: f64,
}

impl Default for ScheduleSection {
    fn default() -> Self {
        ScheduleSection {
            kind: ScheduleKind::Cosine,
            warmup_epochs: 0.0,
            warmup_lr: 1e-6,
            milestones: Vec::new(),
            gamma: 0.1,
            step_epochs: 1.0,
            t_max_epochs: 0.0,
            min_lr: 0.0,
        }
    }
}

/// `[train]`: the loop itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    /// Exponential moving average of the weights (0 = off); the EMA weights are evaluated and saved. The
    /// decay warms up as in the TF/timm recipes: update t uses min(ema_decay, (1 + t) / (10 + t)).
    pub ema_decay: f64,
    /// Evaluate every this many epochs (and after the last).
    pub eval_every: usize,
    /// Stop an epoch after this many iterations (0 = the whole epoch): for smoke tests.
    pub max_iters_per_epoch: usize,
    /// Log the training loss to TensorBoard (`<run>/tb/`, tag `train/loss_iter`) every this many
    /// iterations (0 = off); the per-epoch scalars are logged regardless.
    pub log_every: usize,
    /// The metric that decides `best.safetensors` (val-top1, val-top5, val-map, val-loss, train-loss);
    /// default: the pipeline's (val-top1 for classification, val-map for detection).
    pub best_metric: Option<Monitor>,
    /// cuDNN benchmark mode on CUDA (the fastest convolution algorithms for the shapes seen).
    pub cudnn_benchmark: bool,
    /// Memory order of the convolution weights (and so of the activations): `auto` (channels-last on
    /// CUDA and on the CPU, where it measured as fast or faster), `channels-last` or `nchw`.
    pub memory_format: MemoryFormat,
    /// Mixed precision: `off`, `bf16` (autocast to bfloat16, CUDA and CPU) or `fp16` (CUDA, with dynamic
    /// loss scaling). The loss is computed in float32 and the weights and checkpoints stay float32.
    pub amp: Amp,
    /// Multi-tensor optimiser and EMA updates (false: one kernel sequence per parameter, the old path).
    pub fused_optimizer: bool,
    /// Data-parallel runs (torchrun): batch norms normalise with the statistics of the world's batch
    /// instead of each process's (PyTorch's SyncBatchNorm; for small per-GPU detection batches).
    pub sync_bn: bool,
}

/// `train.memory_format` / `--memory-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryFormat {
    /// Channels-last on CUDA and on the CPU (the measured fastest on both: [`MemoryFormat::channels_last`]).
    #[default]
    Auto,
    ChannelsLast,
    Nchw,
}

impl MemoryFormat {
    /// Whether channels-last is used. `auto` is channels-last on every device: on CUDA (cuDNN's NHWC
    /// kernels) and on the CPU, where a quiet-machine `bench train --model-only` of SkipblockNet-M
    /// measured it 1.0× (batch 2, 64 px) to 1.9× (batch 32, 224 px) NCHW's speed (docs/BENCHMARKS.md).
    pub fn channels_last(self) -> bool {
        match self {
            MemoryFormat::Auto | MemoryFormat::ChannelsLast => true,
            MemoryFormat::Nchw => false,
        }
    }
}

/// `train.amp` / `--amp`: mixed precision by autocast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Amp {
    #[default]
    Off,
    Bf16,
    Fp16,
}

impl TrainSection {
    /// Only the `[train]` settings of the step's speed (cuDNN, memory format, AMP, fused updates).
    pub fn speed(&self) -> crate::train::speed::SpeedSettings {
        crate::train::speed::SpeedSettings {
            cudnn_benchmark: self.cudnn_benchmark,
            memory_format: self.memory_format,
            amp: self.amp,
            fused_optimizer: self.fused_optimizer,
        }
    }
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            epochs: 10,
            batch_size: 64,
            ema_decay: 0.0,
            eval_every: 1,
            max_iters_per_epoch: 0,
            log_every: 50,
            best_metric: None,
            cudnn_benchmark: true,
            memory_format: MemoryFormat::Auto,
            amp: Amp::Off,
            fused_optimizer: true,
            sync_bn: false,
        }
    }
}

//! The speed settings of the training step (`[train]` `cudnn_benchmark`, `memory_format`, `amp`,
//! `fused_optimizer`), applied the same way by [`super::fit`], the benchmarks and inference:
//!
//! * cuDNN benchmark mode on CUDA;
//! * channels-last weights for the convolutions ([`to_memory_format`]): a convolution whose weight is
//!   channels-last produces channels-last activations, so the whole network runs NHWC without touching
//!   the input pipeline;
//! * autocast ([`Precision::run`]) to bfloat16 (CUDA and CPU) or float16 (CUDA) through the shim; the
//!   losses cast their inputs to float32, weights and checkpoints stay float32;
//! * dynamic loss scaling for float16 ([`LossScaler`], PyTorch's `GradScaler` rule).

use crate::recipe::{Amp, MemoryFormat};
use crate::shim::{self, AutocastDtype};
use anyhow::{bail, Context, Result};
use tch::{nn::VarStore, Device, Kind, Tensor};

/// The `[train]` settings of the step's speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeedSettings {
    pub cudnn_benchmark: bool,
    pub memory_format: MemoryFormat,
    pub amp: Amp,
    pub fused_optimizer: bool,
}

impl Default for SpeedSettings {
    fn default() -> Self {
        SpeedSettings { cudnn_benchmark: true, memory_format: MemoryFormat::Auto, amp: Amp::Off, fused_optimizer: true }
    }
}

impl SpeedSettings {
    /// Applies the settings that live in libtorch or the variables: cuDNN benchmark mode (CUDA) and the
    /// memory format of the 4-D variables of `vs`. Call before creating the optimiser and the EMA.
    pub fn prepare(&self, vs: &VarStore) -> Result<Precision> {
        let device = vs.device();
        if device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(self.cudnn_benchmark);
        }
        to_memory_format(vs, self.memory_format.channels_last())?;
        Precision::new(self.amp, device)
    }
}

/// Converts every 4-D variable of `vs` (convolution weights) to channels-last (`true`) or NCHW order
/// in place (same values; the variables stay the same tensors for the optimiser and `VarStore`).
pub fn to_memory_format(vs: &VarStore, channels_last: bool) -> Result<()> {
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            // Weights of at most 3 input channels stay NCHW: the stem's RGB ones (`[O, 3, k, k]`), whose
            // gradient libtorch's CPU convolution returns NCHW whatever the weight's order (an extra copy
            // and a warning on every run; the stem's output is channels-last anyway, its input being so),
            // and depthwise ones (`[C, 1, k, k]`, the same memory either way).
            if v.dim() != 4 {
                continue;
            }
            let want = channels_last && v.size()[1] > 3;
            if shim::is_channels_last(&v)? != want {
                let converted = shim::contiguous(&v, want).with_context(|| format!("variable '{name}'"))?;
                v.set_data(&converted);
            }
        }
        Ok(())
    })
}

/// A batch in the memory order the model's weights use (channels-last when `channels_last`).
pub fn input_format(x: &Tensor, channels_last: bool) -> Result<Tensor> {
    if channels_last && x.dim() == 4 {
        shim::contiguous(x, true)
    } else {
        Ok(x.shallow_clone())
    }
}

/// Mixed precision of a device: which autocast region the forward pass and loss run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    pub amp: Amp,
    pub device: Device,
}

impl Precision {
    /// `amp` on `device`; fp16 is refused on the CPU (one line: use bf16).
    pub fn new(amp: Amp, device: Device) -> Result<Self> {
        if amp == Amp::Fp16 && !device.is_cuda() {
            bail!("--amp fp16 needs CUDA (the CPU's mixed precision is bf16: use --amp bf16)");
        }
        Ok(Precision { amp, device })
    }

    /// Full float32.
    pub fn off(device: Device) -> Self {
        Precision { amp: Amp::Off, device }
    }

    /// Runs `f` under autocast (or as is when AMP is off).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        match self.amp {
            Amp::Off => Ok(f()),
            Amp::Bf16 => shim::autocast(self.device, AutocastDtype::Bf16, f),
            Amp::Fp16 => shim::autocast(self.device, AutocastDtype::Fp16, f),
        }
    }

    /// Dynamic loss scaling (fp16 only).
    pub fn loss_scaler(&self) -> Option<LossScaler> {
        (self.amp == Amp::Fp16).then(|| LossScaler::new(self.device))
    }
}

/// Dynamic loss scaling for float16 training (PyTorch's `GradScaler`: initial scale 2¹⁶, halved on a
/// step with non-finite gradients, which is skipped, doubled after 2000 finite steps).
pub struct LossScaler {
    scale: f64,
    good_steps: u32,
    found_inf: Tensor,
}

impl LossScaler {
    pub fn new(device: Device) -> Self {
        LossScaler { scale: 65536.0, good_steps: 0, found_inf: Tensor::zeros([1], (Kind::Float, device)) }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The loss to back-propagate.
    pub fn scaled(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Unscales `grads` in place; false when one of them is not finite (then skip the step). Reads one
    /// value from the device.
    pub fn unscale(&mut self, grads: &[Tensor]) -> Result<bool> {
        let _ = self.found_inf.zero_();
        let inv = Tensor::full([1], 1.0 / self.scale, (Kind::Float, self.found_inf.device()));
        shim::unscale(grads, &self.found_inf, &inv)?;
        let finite = f64::try_from(&self.found_inf)? == 0.0;
        if finite {
            self.good_steps += 1;
            if self.good_steps >= 2000 {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale /= 2.0;
            self.good_steps = 0;
        }
        Ok(finite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;

    #[test]
    fn fp16_on_the_cpu_is_one_clear_error() {
        let err = Precision::new(Amp::Fp16, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("bf16"), "{err}");
        assert!(Precision::new(Amp::Bf16, Device::Cpu).is_ok());
    }

    #[test]
    fn memory_format_converts_only_4d_variables_and_keeps_values() {
        let vs = VarStore::new(Device::Cpu);
        let conv = nn::conv2d(vs.root() / "c", 4, 8, 3, Default::default());
        // An RGB stem's weight stays NCHW (its CPU gradient comes back NCHW whatever the weight's order).
        let stem = nn::conv2d(vs.root() / "stem", 3, 4, 3, Default::default());
        let before: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(k, v)| (k, v.detach().copy())).collect();
        to_memory_format(&vs, true).unwrap();
        assert!(shim::is_channels_last(&conv.ws).unwrap());
        assert!(!shim::is_channels_last(&stem.ws).unwrap() && stem.ws.is_contiguous());
        for (k, v) in &before {
            assert!(vs.variables()[k].equal(v), "{k}");
        }
        to_memory_format(&vs, false).unwrap();
        assert!(!shim::is_channels_last(&conv.ws).unwrap());
        // `auto` is channels-last on every device (CUDA and the CPU alike).
        assert!(MemoryFormat::Auto.channels_last() && MemoryFormat::ChannelsLast.channels_last());
        assert!(!MemoryFormat::Nchw.channels_last());
    }

    #[test]
    fn loss_scaler_skips_non_finite_steps_and_halves_the_scale() {
        let mut s = LossScaler::new(Device::Cpu);
        let g = Tensor::from_slice(&[65536.0f32, 131072.0]);
        assert!(s.unscale(std::slice::from_ref(&g)).unwrap());
        assert_eq!(Vec::<f32>::try_from(&g).unwrap(), vec![1.0, 2.0]);
        let bad = Tensor::from_slice(&[f32::INFINITY, 1.0]);
        assert!(!s.unscale(&[bad]).unwrap());
        assert_eq!(s.scale(), 32768.0);
    }

    use crate::loss::{Loss, LossConfig, LossKind};
    use crate::model::{Arch, BlockOptions, SkipblockNet};
    use crate::recipe::OptimSection;
    use crate::train::optim::Optimizer;

    /// SkipblockNet-XS without dropout (10 classes) with deterministic weights, and its variables.
    fn net() -> (VarStore, SkipblockNet) {
        let vs = VarStore::new(Device::Cpu);
        let mut config = Arch::SkipblocknetXs.config();
        config.dropout = 0.0;
        let net = SkipblockNet::new(&vs.root(), &config, 10, BlockOptions::default());
        tch::no_grad(|| {
            let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (_, mut v)) in vars.into_iter().enumerate() {
                if v.kind() == Kind::Float {
                    let n = v.numel() as i64;
                    let values = (Tensor::arange(n, (Kind::Float, Device::Cpu)) * (0.7 + 0.01 * i as f64)).sin() * 0.3;
                    v.copy_(&values.view(v.size().as_slice()));
                }
            }
        });
        (vs, net)
    }

    fn batch() -> (Tensor, Tensor) {
        let x = (Tensor::arange(4 * 3 * 64 * 64, (Kind::Float, Device::Cpu)) * 0.013).sin().view([4, 3, 64, 64]);
        (x, Tensor::from_slice(&[1i64, 3, 5, 7]))
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
        f64::try_from((&a - &b).abs().max()).unwrap() / f64::try_from(b.abs().max()).unwrap().max(1e-12)
    }

    /// Logits and loss of one training pass, then the weights after one SGD step.
    fn train_step(
        vs: &VarStore,
        net: &SkipblockNet,
        precision: Precision,
        channels_last: bool,
        loss: LossKind,
    ) -> (Tensor, f64, Vec<(String, Tensor)>) {
        let (x, y) = batch();
        let x = input_format(&x, channels_last).unwrap();
        let mut loss = Loss::new(LossConfig { kind: loss, ..Default::default() }).unwrap();
        let mut opt = Optimizer::new(vs, &OptimSection { lr: 0.05, ..Default::default() });
        let (logits, l) = precision
            .run(|| {
                let out = net.forward_t(&x, true);
                let l = loss.compute(&out.logits, Some(&out.features), &y).unwrap().loss;
                (out.logits, l)
            })
            .unwrap();
        assert_eq!(l.kind(), Kind::Float, "the loss is computed in float32");
        l.backward();
        opt.step().unwrap();
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(k, v)| (k, v.detach().copy())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        (logits, f64::try_from(&l).unwrap(), vars)
    }

    #[test]
    fn channels_last_gives_the_nchw_forward_and_step() {
        let (vs_a, net_a) = net();
        let (vs_b, net_b) = net();
        to_memory_format(&vs_b, true).unwrap();
        let off = Precision::off(Device::Cpu);
        let (logits_a, loss_a, after_a) = train_step(&vs_a, &net_a, off, false, LossKind::Bias);
        let (logits_b, loss_b, after_b) = train_step(&vs_b, &net_b, off, true, LossKind::Bias);
        assert!(max_rel(&logits_b, &logits_a) < 1e-4, "logits: {}", max_rel(&logits_b, &logits_a));
        assert!((loss_a - loss_b).abs() < 1e-4 * loss_a.abs().max(1.0), "{loss_a} vs {loss_b}");
        let mut channels_last = 0;
        for ((k, a), (_, b)) in after_a.iter().zip(&after_b) {
            assert!(max_rel(b, a) < 1e-4, "{k} after one step: {}", max_rel(b, a));
            channels_last += usize::from(b.dim() == 4 && shim::is_channels_last(b).unwrap());
        }
        assert!(channels_last > 10, "the convolution weights stay channels-last after the step");
    }

    #[test]
    fn bf16_autocast_on_the_cpu_stays_within_bf16_of_fp32_and_keeps_fp32_weights() {
        let (vs_a, net_a) = net();
        let (vs_b, net_b) = net();
        // Cross-entropy: the bias loss's min-max scaled variances over a batch of 4 amplify any rounding.
        let (logits_a, loss_a, after_a) = train_step(&vs_a, &net_a, Precision::off(Device::Cpu), false, LossKind::Ce);
        let bf16 = Precision::new(Amp::Bf16, Device::Cpu).unwrap();
        let (logits_b, loss_b, after_b) = train_step(&vs_b, &net_b, bf16, false, LossKind::Ce);
        let (vs_c, net_c) = net();
        let (_, bias_loss, _) = train_step(&vs_c, &net_c, bf16, false, LossKind::Bias);
        assert!(bias_loss.is_finite());
        assert_eq!(logits_b.kind(), Kind::BFloat16, "the network ran in bfloat16");
        assert!(loss_b.is_finite());
        // bf16 keeps 8 bits of mantissa; through ~40 layers a few per cent of the largest logit.
        assert!(max_rel(&logits_b, &logits_a) < 0.05, "logits: {}", max_rel(&logits_b, &logits_a));
        assert!((loss_a - loss_b).abs() < 0.02 * loss_a.abs(), "{loss_a} vs {loss_b}");
        for ((k, a), (_, b)) in after_a.iter().zip(&after_b) {
            assert_eq!(b.kind(), a.kind(), "{k} keeps its dtype");
        }
    }
}

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
        to_memory_format(vs, self.memory_format.channels_last_on(device))?;
        Precision::new(self.amp, device)
    }
}

/// Converts every 4-D variable of `vs` (convolution weights) to channels-last (`true`) or NCHW order
/// in place (same values; the variables stay the same tensors for the optimiser and `VarStore`).
pub fn to_memory_format(vs: &VarStore, channels_last: bool) -> Result<()> {
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if v.dim() == 4 && shim::is_channels_last(&v)? != channels_last {
                let converted = shim::contiguous(&v, channels_last).with_context(|| format!("variable '{name}'"))?;
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
        let conv = nn::conv2d(vs.root() / "c", 3, 8, 3, Default::default());
        let before: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(k, v)| (k, v.detach().copy())).collect();
        to_memory_format(&vs, true).unwrap();
        assert!(shim::is_channels_last(&conv.ws).unwrap());
        for (k, v) in &before {
            assert!(vs.variables()[k].equal(v), "{k}");
        }
        to_memory_format(&vs, false).unwrap();
        assert!(!shim::is_channels_last(&conv.ws).unwrap());
        assert!(MemoryFormat::Auto.channels_last_on(Device::Cuda(0)) && !MemoryFormat::Auto.channels_last_on(Device::Cpu));
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
}

//! Host batches to network inputs: the one place where loader batches cross to the device and become
//! float.
//!
//! The loaders of both pipelines hand over `uint8` images (`3×S×S`, NCHW once stacked): a quarter of the
//! bytes of float batches. [`to_device`] copies a host tensor to the device — through pinned (page-locked)
//! memory and a non-blocking copy when the device is CUDA, so the transfer overlaps the work already
//! queued on the GPU; on the CPU it is a no-op. [`normalise_on_device`] then converts to float and applies
//! the per-channel mean and standard deviation there: `(x / 255 − mean) / std`, the same arithmetic (in
//! f32) as the host normalisation it replaces.

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// `t` on `device`. CUDA: the host tensor is pinned (PyTorch's caching host allocator recycles the pinned
/// blocks, and keeps one alive until the copy that reads it has finished) and copied without blocking the
/// host. CPU (or a tensor already on `device`): `t` itself, no copy.
pub fn to_device(t: &Tensor, device: Device) -> Tensor {
    if t.device() == device {
        return t.shallow_clone();
    }
    match device {
        Device::Cuda(_) if t.device() == Device::Cpu => {
            let pinned = if t.is_pinned(device) { t.shallow_clone() } else { t.pin_memory(device) };
            pinned.to_device_(device, pinned.kind(), true, false)
        }
        _ => t.to_device(device),
    }
}

/// A `uint8` batch `B×3×H×W` (on the host or the device) → float on `device`, scaled to [0, 1] and
/// normalised per channel: `(x / 255 − mean[c]) / std[c]`. A float batch is taken as already normalised
/// and only moved.
pub fn normalise_on_device(batch: &Tensor, mean: [f64; 3], std: [f64; 3], device: Device) -> Result<Tensor> {
    let size = batch.size();
    if size.len() != 4 || size[1] != 3 {
        bail!("expected a Bx3xHxW image batch, got {size:?}");
    }
    let x = to_device(batch, device);
    match x.kind() {
        Kind::Uint8 => {
            let stats = |v: [f64; 3]| Tensor::from_slice(&v.map(|x| x as f32)).view([1, 3, 1, 1]).to_device(device);
            Ok(tch::no_grad(|| (x.to_kind(Kind::Float) / 255.0 - stats(mean)) / stats(std)))
        }
        Kind::Float | Kind::Half | Kind::BFloat16 | Kind::Double => Ok(x),
        other => bail!("image batches are uint8 (or already normalised float), not {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uint8_batch_is_normalised_per_channel() {
        let mut data = Vec::new();
        for c in 0..3u8 {
            data.extend(std::iter::repeat_n([0u8, 51 * (c + 1), 255], 2).flatten());
        }
        let batch = Tensor::from_slice(&data).view([1, 3, 2, 3]);
        let (mean, std) = ([0.5, 0.4, 0.3], [0.25, 0.2, 0.1]);
        let out = normalise_on_device(&batch, mean, std, Device::Cpu).unwrap();
        assert_eq!(out.kind(), Kind::Float);
        assert_eq!(out.size(), vec![1, 3, 2, 3]);
        for c in 0..3usize {
            for (x, &v) in [0u8, 51 * (c as u8 + 1), 255].iter().enumerate() {
                let want = (v as f64 / 255.0 - mean[c]) / std[c];
                let got = out.double_value(&[0, c as i64, 1, x as i64]);
                assert!((got - want).abs() < 1e-6, "channel {c}, value {v}: {got} vs {want}");
            }
        }
        // Float batches are passed through; other kinds and shapes are errors.
        let f = out.shallow_clone();
        assert!(normalise_on_device(&f, mean, std, Device::Cpu).unwrap().equal(&out));
        assert!(normalise_on_device(&batch.to_kind(Kind::Int64), mean, std, Device::Cpu).is_err());
        assert!(normalise_on_device(&batch.view([3, 2, 3]), mean, std, Device::Cpu).is_err());
    }

    #[test]
    fn on_the_cpu_the_copy_is_a_no_op() {
        let t = Tensor::from_slice(&[1u8, 2, 3]);
        let same = to_device(&t, Device::Cpu);
        assert_eq!(same.data_ptr(), t.data_ptr(), "no copy on the CPU");
    }
}

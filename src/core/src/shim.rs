//! Safe wrappers of the C++ shim (`src/core/shim/shim.cpp`): the libtorch calls tch 0.24 does not
//! expose. Multi-tensor (`_foreach_*` / `_fused_sgd_`) optimiser and EMA updates, autocast with a device
//! type and a dtype, and channels-last conversion. Errors thrown in C++ come back as `anyhow` errors.

use anyhow::{anyhow, Result};
use std::ffi::{c_char, c_int, CStr};
use tch::{Device, Tensor};
use torch_sys::C_tensor;

type T = *const C_tensor;

extern "C" {
    fn sb_free(p: *mut c_char);
    fn sb_sgd_step(
        params: *const T,
        grads: *const T,
        bufs: *const T,
        n: i64,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        nesterov: c_int,
        fused: c_int,
    ) -> *mut c_char;
    fn sb_rmsprop_tf_step(
        params: *const T,
        grads: *const T,
        square_avgs: *const T,
        bufs: *const T,
        n: i64,
        lr: f64,
        decay: f64,
        eps: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> *mut c_char;
    fn sb_ema_update(shadow: *const T, live: *const T, n: i64, decay: f64) -> *mut c_char;
    fn sb_copy(dst: *const T, src: *const T, n: i64) -> *mut c_char;
    fn sb_zero(ts: *const T, n: i64) -> *mut c_char;
    fn sb_unscale(grads: *const T, n: i64, found_inf: T, inv_scale: T) -> *mut c_char;
    fn sb_autocast_enter(
        device: c_int,
        enabled: c_int,
        dtype: c_int,
        prev_enabled: *mut c_int,
        prev_dtype: *mut c_int,
    ) -> *mut c_char;
    fn sb_autocast_exit(device: c_int, prev_enabled: c_int, prev_dtype: c_int) -> *mut c_char;
    fn sb_contiguous(t: T, channels_last: c_int, out: *mut *mut C_tensor) -> *mut c_char;
    fn sb_is_channels_last(t: T, out: *mut c_int) -> *mut c_char;
}

/// Turns the shim's error message (NULL: success) into a `Result`.
fn check(err: *mut c_char, what: &str) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string malloc'd by the shim, freed once here.
    let message = unsafe { CStr::from_ptr(err) }.to_string_lossy().lines().next().unwrap_or("").to_string();
    unsafe { sb_free(err) };
    Err(anyhow!("{what}: {message}"))
}

fn ptrs(ts: &[Tensor]) -> Vec<T> {
    ts.iter().map(|t| t.as_ptr()).collect()
}

fn same_len(what: &str, lens: &[usize]) -> Result<()> {
    if lens.windows(2).any(|w| w[0] != w[1]) {
        anyhow::bail!("{what}: tensor lists of different lengths {lens:?}");
    }
    Ok(())
}

/// Hyper-parameters of one SGD group (PyTorch's `torch.optim.SGD` rule, dampening 0).
#[derive(Debug, Clone, Copy)]
pub struct SgdGroup {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

/// One SGD step over `params` with their `grads` and momentum `bufs` (same length; unused when momentum
/// is 0; zeros make the first step PyTorch's `buf = grad`). `fused`: `_fused_sgd_` when every tensor is
/// on CUDA, else `_foreach_*` ops.
pub fn sgd_step(params: &[Tensor], grads: &[Tensor], bufs: &[Tensor], g: SgdGroup, fused: bool) -> Result<()> {
    if g.momentum > 0.0 {
        same_len("sgd step", &[params.len(), grads.len(), bufs.len()])?;
    } else {
        same_len("sgd step", &[params.len(), grads.len()])?;
    }
    let (p, gr, b) = (ptrs(params), ptrs(grads), ptrs(bufs));
    // SAFETY: the pointers are live `at::Tensor`s owned by the slices for the duration of the call.
    let err = unsafe {
        sb_sgd_step(
            p.as_ptr(),
            gr.as_ptr(),
            b.as_ptr(),
            params.len() as i64,
            g.lr,
            g.momentum,
            g.weight_decay,
            c_int::from(g.nesterov),
            c_int::from(fused),
        )
    };
    check(err, "fused SGD step")
}

/// Hyper-parameters of one RMSProp-TF group.
#[derive(Debug, Clone, Copy)]
pub struct RmspropGroup {
    pub lr: f64,
    pub decay: f64,
    pub eps: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

/// One RMSProp step in TensorFlow's form (see `train::optim`); `square_avgs` start at ones, `bufs` at
/// zeros (unused when momentum is 0).
pub fn rmsprop_tf_step(
    params: &[Tensor],
    grads: &[Tensor],
    square_avgs: &[Tensor],
    bufs: &[Tensor],
    g: RmspropGroup,
) -> Result<()> {
    same_len("rmsprop step", &[params.len(), grads.len(), square_avgs.len()])?;
    if g.momentum > 0.0 {
        same_len("rmsprop step", &[params.len(), bufs.len()])?;
    }
    let (p, gr, s, b) = (ptrs(params), ptrs(grads), ptrs(square_avgs), ptrs(bufs));
    // SAFETY: as in `sgd_step`.
    let err = unsafe {
        sb_rmsprop_tf_step(
            p.as_ptr(),
            gr.as_ptr(),
            s.as_ptr(),
            b.as_ptr(),
            params.len() as i64,
            g.lr,
            g.decay,
            g.eps,
            g.momentum,
            g.weight_decay,
        )
    };
    check(err, "fused RMSProp step")
}

/// `shadow = decay·shadow + (1 − decay)·live` for floating-point tensors, in one `_foreach_lerp_`.
pub fn ema_update(shadow: &[Tensor], live: &[Tensor], decay: f64) -> Result<()> {
    same_len("ema update", &[shadow.len(), live.len()])?;
    let (s, l) = (ptrs(shadow), ptrs(live));
    // SAFETY: as in `sgd_step`.
    check(unsafe { sb_ema_update(s.as_ptr(), l.as_ptr(), shadow.len() as i64, decay) }, "fused EMA update")
}

/// `dst[i].copy_(src[i])` in one `_foreach_copy_`.
pub fn copy(dst: &[Tensor], src: &[Tensor]) -> Result<()> {
    same_len("copy", &[dst.len(), src.len()])?;
    let (d, s) = (ptrs(dst), ptrs(src));
    // SAFETY: as in `sgd_step`.
    check(unsafe { sb_copy(d.as_ptr(), s.as_ptr(), dst.len() as i64) }, "foreach copy")
}

/// Zeroes the tensors in place (`_foreach_zero_`).
pub fn zero(ts: &[Tensor]) -> Result<()> {
    let p = ptrs(ts);
    // SAFETY: as in `sgd_step`.
    check(unsafe { sb_zero(p.as_ptr(), ts.len() as i64) }, "foreach zero")
}

/// `grads *= inv_scale` and `found_inf = 1` when any gradient is not finite (float32 one-element
/// tensors on the gradients' device).
pub fn unscale(grads: &[Tensor], found_inf: &Tensor, inv_scale: &Tensor) -> Result<()> {
    let p = ptrs(grads);
    // SAFETY: as in `sgd_step`.
    check(
        unsafe { sb_unscale(p.as_ptr(), grads.len() as i64, found_inf.as_ptr(), inv_scale.as_ptr()) },
        "gradient unscaling",
    )
}

/// Mixed-precision dtype of autocast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutocastDtype {
    Bf16,
    Fp16,
}

fn device_code(device: Device) -> c_int {
    c_int::from(device.is_cuda())
}

/// Runs `f` with autocast to `dtype` on `device`'s type (CPU or CUDA), restoring the previous state
/// afterwards (the cache of cast weights is cleared when the outermost region ends).
pub fn autocast<R>(device: Device, dtype: AutocastDtype, f: impl FnOnce() -> R) -> Result<R> {
    let code = device_code(device);
    let (mut prev_enabled, mut prev_dtype) = (0, 0);
    let d = match dtype {
        AutocastDtype::Bf16 => 0,
        AutocastDtype::Fp16 => 1,
    };
    // SAFETY: plain values and two out-parameters on the stack.
    check(unsafe { sb_autocast_enter(code, 1, d, &mut prev_enabled, &mut prev_dtype) }, "autocast")?;
    let out = f();
    // SAFETY: plain values.
    check(unsafe { sb_autocast_exit(code, prev_enabled, prev_dtype) }, "autocast")?;
    Ok(out)
}

/// A copy of `t` in channels-last (NHWC) memory order (`true`) or plain contiguous order (`false`).
pub fn contiguous(t: &Tensor, channels_last: bool) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: `t` is live; on success `out` is a new `at::Tensor*` owned by the returned `Tensor`.
    check(unsafe { sb_contiguous(t.as_ptr(), c_int::from(channels_last), &mut out) }, "memory format")?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// Whether `t` (4-D) is laid out channels-last.
pub fn is_channels_last(t: &Tensor) -> Result<bool> {
    let mut out = 0;
    // SAFETY: `t` is live; one out-parameter.
    check(unsafe { sb_is_channels_last(t.as_ptr(), &mut out) }, "memory format")?;
    Ok(out != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn errors_from_cpp_come_back_as_errors() {
        // Lists whose shapes disagree make `_foreach_lerp_` throw: an error, no abort.
        let s = vec![Tensor::zeros([3], (Kind::Float, Device::Cpu))];
        let l = vec![Tensor::zeros([4], (Kind::Float, Device::Cpu))];
        let err = ema_update(&s, &l, 0.5).unwrap_err().to_string();
        assert!(err.starts_with("fused EMA update: "), "{err}");
        assert!(sgd_step(&s, &[], &[], SgdGroup { lr: 0.1, momentum: 0.9, weight_decay: 0.0, nesterov: false }, true)
            .is_err());
    }

    #[test]
    fn channels_last_round_trip_keeps_values() {
        let x = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        assert!(!is_channels_last(&x).unwrap());
        let y = contiguous(&x, true).unwrap();
        assert!(is_channels_last(&y).unwrap());
        assert_eq!(y.stride(), vec![60, 1, 15, 3]);
        assert!(y.equal(&x));
        assert!(!is_channels_last(&contiguous(&y, false).unwrap()).unwrap());
    }

    #[test]
    fn cpu_autocast_runs_matmul_in_bf16_and_restores_the_state() {
        let a = Tensor::randn([8, 8], (Kind::Float, Device::Cpu));
        let inside = autocast(Device::Cpu, AutocastDtype::Bf16, || a.matmul(&a)).unwrap();
        assert_eq!(inside.kind(), Kind::BFloat16);
        assert_eq!(a.matmul(&a).kind(), Kind::Float, "autocast ends with the region");
        let diff = f64::try_from((inside.to_kind(Kind::Float) - a.matmul(&a)).abs().max()).unwrap();
        assert!(diff < 0.1 * f64::try_from(a.matmul(&a).abs().max()).unwrap(), "{diff}");
    }
}

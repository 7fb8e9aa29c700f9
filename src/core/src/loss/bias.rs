//! The bias loss's sample weights (paper §3).
//!
//! For each sample i, `v_i` is the unbiased variance (divided by n − 1, paper §3 eq. 1) of its detached
//! last-conv features flattened to n = c·h·w values. With the batch minimum `m = min_i v_i`, the batch
//! maximum `M = max_i v_i` and the running minimum `g` (below), each [`VarianceScaling`] computes a scaled
//! variance `s_i` and a weight `z_i`:
//!
//! | scaling | s_i | z_i |
//! |---|---|---|
//! | `local` (default; paper §3 eq. 3) | (v_i − m) / (M − m), in [0, 1] | exp(α·s_i) − β (paper eq. 6) |
//! | `global` | (v_i − g) / (M − g), in [0, 1] | exp(α·s_i) − β |
//! | `release` (the authors' public release) | (v_i − g) / (M − m), ≥ 0, not bounded by 1 | exp(β·s_i) − 1 + α |
//!
//! and z is then clamped to [clamp_min, clamp_max] when `clamp` is on (the paper clamps to [0.5, 1.5] in
//! all its experiments, §5). The weights carry no gradient.
//!
//! **Running minimum g** (kept in [`super::Loss::global_min`], carried across `--resume`): it is updated
//! *before* the batch's weights are computed, so it always includes the current batch and g ≤ m.
//! - `global`: g = min(g_prev, m), g = m on the first batch. Hence g ≤ m ≤ v_i ≤ M and s_i ∈ [0, 1]: the
//!   batch's most varied sample gets s = 1, its least varied one s = (m − g)/(M − g), which is 0 only when
//!   the batch holds the smallest variance seen so far. The clamp (when on) applies to z as in `local`.
//! - `release`: g = m if m < g_prev, else g_prev, starting from g_prev = 1e5 ([`RELEASE_INITIAL_MIN`])
//!   rather than from the first batch minimum (the same thing unless the first variances are all ≥ 1e5).
//!
//! **The authors' release differs from the paper** in three ways, which `release` reproduces:
//! 1. scaling: the paper scales every batch to [0, 1] with its own minimum and maximum (§3, eq. 3); the
//!    release subtracts the running minimum g but divides by the current batch's range M − m, so s_i
//!    exceeds 1 by up to (m − g)/(M − m), without bound when a batch's variances lie close together;
//! 2. z: the paper's z(v) = exp(α·v) − β (§3, eq. 6; smallest value 1 − β) becomes exp(β·v) − 1 + α: β is
//!    the exponent's rate and α the offset (smallest value α). With the paper's α = β = 0.3 (§3) every
//!    release weight is the paper's weight − 0.4: [0.3, 0.65] instead of [0.7, 1.05] over s ∈ [0, 1];
//! 3. clamp: the paper clamps z to [0.5, 1.5] in all experiments (§5); the release never clamps, so
//!    [`super::Loss::new`] refuses `release` with `clamp = true`.
//!
//! Both use the unbiased variance and the detached features, and average z·CE over the batch. `global` is
//! the release's global mode as its description reads (min = running minimum, max = batch maximum),
//! which keeps s in [0, 1]; the release's code divides by the batch range instead, as `release` does.
//!
//! Degenerate batches: when the denominator of s is 0 (`local` and `release`: M = m, e.g. a batch of one
//! or identical samples; `global`: g = m = M) every s_i is defined as 0, so each weight is z(0): 1 − β
//! (0.7 with the defaults) in `local`/`global`, α in `release`, where the release itself divides by zero
//! and gives NaN or Inf weights: the only place `release` departs from it. A non-finite variance (a
//! single feature value, or NaN/Inf features) is also taken as 0. Weights are therefore always finite,
//! except that unclamped `release` weights grow as exp(β·s) and can overflow for s in the hundreds.

use super::LossConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Where the running minimum of the `release` scaling starts (the value the authors' release uses).
pub const RELEASE_INITIAL_MIN: f64 = 1e5;

/// How the per-sample variances are scaled before z (see the module docs for the formulas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarianceScaling {
    /// (v − m) / (M − m) over the batch (paper §3, eq. 3).
    Local,
    /// (v − g) / (M − g), g the smallest batch minimum seen so far, this batch included.
    Global,
    /// The authors' public release: (v − g) / (M − m), unclamped, and z = exp(β·s) − 1 + α.
    Release,
}

impl VarianceScaling {
    /// The running minimum this batch is scaled with, given the previous one (None before the first
    /// batch) and the batch minimum: `None` for `local`, which keeps none.
    pub fn running_min(self, previous: Option<f64>, batch_min: f64) -> Option<f64> {
        match self {
            VarianceScaling::Local => None,
            VarianceScaling::Global => Some(previous.map_or(batch_min, |g| g.min(batch_min))),
            VarianceScaling::Release => {
                let g = previous.unwrap_or(RELEASE_INITIAL_MIN);
                Some(if batch_min < g { batch_min } else { g })
            }
        }
    }
}

/// Per-sample unbiased variances of a b×… feature tensor (detached, float32), `[b]`.
pub fn sample_variances(features: &Tensor) -> Tensor {
    let f = features.detach().to_kind(Kind::Float).flatten(1, -1);
    let v = f.var_dim(Some(&[1i64][..]), true, false);
    v.nan_to_num(0.0, Some(0.0), Some(0.0))
}

/// `numerator / denominator`, or zeros when the (scalar) denominator is not a positive finite number.
fn safe_ratio(numerator: Tensor, denominator: &Tensor) -> Result<Tensor> {
    let d = f64::try_from(denominator).context("bias loss: variance range")?;
    Ok(if d > 0.0 && d.is_finite() { numerator / denominator } else { numerator.zeros_like() })
}

/// The scaled variances s `[b]` of the module docs, given the running minimum `g` of this batch
/// (from [`VarianceScaling::running_min`]; unused by `local`).
fn scaled_variances(v: &Tensor, scaling: VarianceScaling, g: Option<f64>) -> Result<Tensor> {
    let (batch_min, batch_max) = (v.min(), v.max());
    let running = || Tensor::from(g.unwrap_or(f64::NAN)).to_kind(v.kind()).to_device(v.device());
    match scaling {
        VarianceScaling::Local => safe_ratio(v - &batch_min, &(batch_max - &batch_min)),
        VarianceScaling::Global => {
            let low = running();
            safe_ratio(v - &low, &(batch_max - &low))
        }
        VarianceScaling::Release => safe_ratio(v - running(), &(batch_max - batch_min)),
    }
}

/// z(s) of the module docs (paper eq. 6, or the release's formula), clamped when `config.clamp`.
fn z_of(scaled: Tensor, config: &LossConfig) -> Tensor {
    let z = match config.scaling {
        VarianceScaling::Local | VarianceScaling::Global => (scaled * config.alpha).exp() - config.beta,
        VarianceScaling::Release => ((scaled * config.beta).exp() - 1.0) + config.alpha,
    };
    if config.clamp {
        z.clamp(config.clamp_min, config.clamp_max)
    } else {
        z
    }
}

/// The weights z(v_i) `[b]` (detached) and the batch minimum of the raw variances. `global_min` is the
/// running minimum before this batch (None before the first; ignored by `local`); the caller keeps
/// `config.scaling.running_min(global_min, batch_min)` for the next batch (as [`super::Loss`] does).
pub fn bias_weights(features: &Tensor, config: &LossConfig, global_min: Option<f64>) -> Result<(Tensor, f64)> {
    let size = features.size();
    if size.is_empty() || size[0] == 0 {
        bail!("bias loss: empty batch of features {size:?}");
    }
    let v = sample_variances(features);
    let batch_min = f64::try_from(v.min()).context("bias loss: batch minimum of the variances")?;
    let g = config.scaling.running_min(global_min, batch_min);
    let z = z_of(scaled_variances(&v, config.scaling, g)?, config);
    Ok((z.detach(), batch_min))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{Loss, LossKind};
    use tch::Device;

    fn cfg() -> LossConfig {
        LossConfig::default()
    }

    #[test]
    fn weights_follow_the_formula() {
        // Three samples with feature variances 0, 1 and 4 (unbiased, n = 2): scaled 0, 0.25, 1.
        let f = Tensor::from_slice(&[0.0f32, 0.0, 0.0, std::f32::consts::SQRT_2, 0.0, 2.0 * std::f32::consts::SQRT_2])
            .view([3, 2, 1, 1]);
        let (w, min) = bias_weights(&f, &LossConfig { clamp: false, ..cfg() }, None).unwrap();
        let w: Vec<f64> = Vec::<f64>::try_from(&w.to_kind(Kind::Double)).unwrap();
        let expect = [0.0f64, 0.25, 1.0].map(|v| (0.3 * v).exp() - 0.3);
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-5, "{w:?} vs {expect:?}");
        }
        assert_eq!(min, 0.0);
        // Clamped: 0.7 stays, all inside [0.5, 1.5].
        let (w, _) = bias_weights(&f, &cfg(), None).unwrap();
        assert!(f64::try_from(w.min()).unwrap() >= 0.5 && f64::try_from(w.max()).unwrap() <= 1.5);
    }

    #[test]
    fn degenerate_batches_give_finite_weights() {
        let one = Tensor::randn([1, 8, 3, 3], (Kind::Float, Device::Cpu));
        let same = one.repeat([4, 1, 1, 1]);
        let single_value = Tensor::ones([3, 1, 1, 1], (Kind::Float, Device::Cpu));
        for (f, n) in [(&one, 1), (&same, 4), (&single_value, 3)] {
            for scaling in [VarianceScaling::Local, VarianceScaling::Global] {
                for clamp in [true, false] {
                    let c = LossConfig { scaling, clamp, ..cfg() };
                    let (w, _) = bias_weights(f, &c, None).unwrap();
                    assert_eq!(w.size(), vec![n]);
                    let w: Vec<f64> = Vec::<f64>::try_from(&w.to_kind(Kind::Double)).unwrap();
                    assert!(w.iter().all(|x| (x - 0.7).abs() < 1e-6), "{w:?}");
                }
            }
        }
        // The whole loss is finite too.
        let mut loss = Loss::new(cfg()).unwrap();
        let logits = Tensor::randn([1, 5], (Kind::Float, Device::Cpu));
        let out = loss.compute(&logits, Some(&one), &Tensor::from_slice(&[2i64])).unwrap();
        assert!(f64::try_from(&out.loss).unwrap().is_finite());
    }

    #[test]
    fn global_scaling_keeps_the_smallest_minimum() {
        let mut loss = Loss::new(LossConfig { scaling: VarianceScaling::Global, clamp: false, ..cfg() }).unwrap();
        let low = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 2.0]).view([2, 2]); // variances 0, 2
        let high = Tensor::from_slice(&[0.0f32, 2.0, 0.0, 4.0]).view([2, 2]); // variances 2, 8
        let _ = loss.sample_weights(&low).unwrap();
        assert_eq!(loss.global_min, Some(0.0));
        let w = loss.sample_weights(&high).unwrap();
        // Scaled against min 0 (not the batch's 2), max 8: 0.25 and 1.
        let w: Vec<f64> = Vec::<f64>::try_from(&w.to_kind(Kind::Double)).unwrap();
        assert!((w[0] - ((0.3f64 * 0.25).exp() - 0.3)).abs() < 1e-5, "{w:?}");
        assert_eq!(loss.global_min, Some(0.0));
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap()
    }

    fn release() -> LossConfig {
        LossConfig { scaling: VarianceScaling::Release, clamp: false, ..cfg() }
    }

    #[test]
    fn release_scaling_follows_the_authors_formula() {
        // Variances 0, 2 (first batch) then 2, 8 (second): [[0, 0], [0, 2]] and [[0, 2], [0, 4]] for n = 2.
        let first = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 2.0]).view([2, 2]);
        let second = Tensor::from_slice(&[0.0f32, 2.0, 0.0, 4.0]).view([2, 2]);
        let z = |s: f64| (0.3 * s).exp() - 1.0 + 0.3; // exp(β·s) − 1 + α
        let mut loss = Loss::new(LossConfig { alpha: 0.3, beta: 0.3, ..release() }).unwrap();
        let w = values(&loss.sample_weights(&first).unwrap());
        assert!((w[0] - z(0.0)).abs() < 1e-6 && (w[1] - z(1.0)).abs() < 1e-6, "{w:?}");
        assert_eq!(loss.global_min, Some(0.0));
        // Second batch: running minimum 0, batch range 8 − 2 = 6 → s = 2/6 and 8/6 (above 1, unclamped).
        let w = values(&loss.sample_weights(&second).unwrap());
        assert!((w[0] - z(2.0 / 6.0)).abs() < 1e-6 && (w[1] - z(8.0 / 6.0)).abs() < 1e-6, "{w:?}");
        assert_eq!(loss.global_min, Some(0.0));
        // alpha is the offset and beta the rate: z(0) = alpha, z(1) = exp(beta) − 1 + alpha.
        let mut swapped = Loss::new(LossConfig { alpha: 0.2, beta: 0.5, ..release() }).unwrap();
        let w = values(&swapped.sample_weights(&first).unwrap());
        assert!((w[0] - 0.2).abs() < 1e-6 && (w[1] - (0.5f64.exp() - 0.8)).abs() < 1e-6, "{w:?}");
        // `global` on the same two batches divides by M − g = 8: s = 0.25 and 1.
        let mut global = Loss::new(LossConfig { scaling: VarianceScaling::Global, clamp: false, ..cfg() }).unwrap();
        let _ = global.sample_weights(&first).unwrap();
        let w = values(&global.sample_weights(&second).unwrap());
        assert!((w[1] - ((0.3f64).exp() - 0.3)).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn release_running_min_starts_at_1e5_and_survives_resume() {
        assert_eq!(VarianceScaling::Release.running_min(None, 3.0), Some(3.0));
        assert_eq!(VarianceScaling::Release.running_min(None, 2e5), Some(RELEASE_INITIAL_MIN));
        assert_eq!(VarianceScaling::Release.running_min(Some(1.0), 3.0), Some(1.0));
        assert_eq!(VarianceScaling::Global.running_min(None, 2e5), Some(2e5));
        assert_eq!(VarianceScaling::Local.running_min(Some(1.0), 3.0), None);
        // A first batch with variances 2e5 and 4e5 is scaled against 1e5: s = 0.5 and 1.5.
        let big = Tensor::from_slice(&[0.0f32, 632.455_5, 0.0, 894.427_2]).view([2, 2]);
        let (w, _) = bias_weights(&big, &release(), None).unwrap();
        let w = values(&w);
        assert!((w[0] - (0.15f64.exp() - 0.7)).abs() < 1e-3, "{w:?}");
        assert!((w[1] - (0.45f64.exp() - 0.7)).abs() < 1e-3, "{w:?}");
        // The running minimum is carried across --resume.
        let mut loss = Loss::new(release()).unwrap();
        let _ = loss.sample_weights(&Tensor::from_slice(&[0.0f32, 1.0, 0.0, 2.0]).view([2, 2])).unwrap();
        let mut resumed = Loss::new(release()).unwrap();
        resumed.load_state(&loss.state());
        assert_eq!(resumed.global_min, Some(0.5));
    }

    #[test]
    fn release_refuses_clamping_and_keeps_degenerate_batches_finite() {
        let err = Loss::new(LossConfig { scaling: VarianceScaling::Release, ..cfg() }).unwrap_err();
        assert!(err.to_string().contains("clamp = false"), "{err}");
        assert!(Loss::new(LossConfig { kind: LossKind::Ce, scaling: VarianceScaling::Release, ..cfg() }).is_ok());
        // Identical samples after a lower running minimum: the release would divide (v − g) > 0 by 0.
        let mut loss = Loss::new(release()).unwrap();
        let _ = loss.sample_weights(&Tensor::from_slice(&[0.0f32, 0.0, 0.0, 2.0]).view([2, 2])).unwrap();
        let same = Tensor::from_slice(&[0.0f32, 2.0, 0.0, 2.0]).view([2, 2]);
        let w = values(&loss.sample_weights(&same).unwrap());
        assert!(w.iter().all(|x| (x - 0.3).abs() < 1e-6), "z(0) = alpha: {w:?}");
    }

    #[test]
    fn other_losses_and_errors() {
        let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 0.0, 3.0, 1.0]).view([2, 3]);
        let t = Tensor::from_slice(&[0i64, 1]);
        let ce = f64::try_from(
            Loss::new(LossConfig { kind: LossKind::Ce, ..cfg() }).unwrap().compute(&logits, None, &t).unwrap().loss,
        )
        .unwrap();
        let expect = {
            let a = -(2f64.exp() / (2f64.exp() + 2.0)).ln();
            let b = -(3f64.exp() / (1.0 + 3f64.exp() + 1f64.exp())).ln();
            (a + b) / 2.0
        };
        assert!((ce - expect).abs() < 1e-5);
        let focal = f64::try_from(
            Loss::new(LossConfig { kind: LossKind::Focal, gamma: 0.0, ..cfg() })
                .unwrap()
                .compute(&logits, None, &t)
                .unwrap()
                .loss,
        )
        .unwrap();
        assert!((focal - ce).abs() < 1e-6, "focal with gamma 0 is CE");
        let focal2 = f64::try_from(
            Loss::new(LossConfig { kind: LossKind::Focal, ..cfg() }).unwrap().compute(&logits, None, &t).unwrap().loss,
        )
        .unwrap();
        assert!(focal2 < ce);
        let ls = f64::try_from(
            Loss::new(LossConfig { kind: LossKind::LabelSmoothing, ..cfg() })
                .unwrap()
                .compute(&logits, None, &t)
                .unwrap()
                .loss,
        )
        .unwrap();
        assert!(ls > ce);
        assert!(Loss::new(cfg()).unwrap().compute(&logits, None, &t).is_err(), "bias loss without features");
        assert!("bias".parse::<LossKind>().is_ok() && "hinge".parse::<LossKind>().is_err());
    }
}

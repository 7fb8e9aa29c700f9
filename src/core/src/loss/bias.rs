//! The bias loss's sample weights (paper §3, SPEC.md §1).
//!
//! For each sample, v = unbiased variance of its detached last-conv features flattened to c·h·w values.
//! Variances are min–max scaled to [0, 1] over the batch (`local`), or with the minimum replaced by the
//! smallest batch minimum seen so far in training (`global`, the authors' release). Then
//! z = exp(α·v) − β, clamped to [clamp_min, clamp_max] when clamping is on.
//!
//! Degenerate batches: when max = min (a batch of one, identical samples) the scaled variance of every
//! sample is defined as 0, so each weight is z(0) = 1 − β (0.7 with the defaults), the same value the
//! least-varied sample of an ordinary batch gets. A non-finite variance (a single feature value, or
//! NaN/Inf features) is also taken as 0. Weights are therefore always finite.

use super::LossConfig;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarianceScaling {
    Local,
    Global,
}

/// Per-sample unbiased variances of a b×… feature tensor (detached, float32), `[b]`.
pub fn sample_variances(features: &Tensor) -> Tensor {
    let f = features.detach().to_kind(Kind::Float).flatten(1, -1);
    let v = f.var_dim(Some(&[1i64][..]), true, false);
    v.nan_to_num(0.0, Some(0.0), Some(0.0))
}

/// The weights z(v_i) `[b]` and the batch minimum of the raw variances.
/// `global_min` is the running minimum for `global` scaling (ignored for `local`).
pub fn bias_weights(features: &Tensor, config: &LossConfig, global_min: Option<f64>) -> Result<(Tensor, f64)> {
    let size = features.size();
    if size.is_empty() || size[0] == 0 {
        bail!("bias loss: empty batch of features {size:?}");
    }
    let v = sample_variances(features);
    let batch_min = v.min();
    let batch_min_value = f64::try_from(&batch_min)?;
    let low = match (config.scaling, global_min) {
        (VarianceScaling::Global, Some(g)) if g < batch_min_value => Tensor::from(g).to_device(v.device()),
        _ => batch_min,
    };
    let range = v.max() - &low;
    // range = 0 → every (v − low) is 0 too: the scaled variance is 0, never 0/0.
    let scaled = (&v - &low) / range.clamp_min(1e-12);
    let z = (scaled * config.alpha).exp() - config.beta;
    let z = if config.clamp { z.clamp(config.clamp_min, config.clamp_max) } else { z };
    Ok((z.detach(), batch_min_value))
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
        let f = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 1.4142135, 0.0, 2.828427]).view([3, 2, 1, 1]);
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

    #[test]
    fn other_losses_and_errors() {
        let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 0.0, 3.0, 1.0]).view([2, 3]);
        let t = Tensor::from_slice(&[0i64, 1]);
        let ce = f64::try_from(Loss::new(LossConfig { kind: LossKind::Ce, ..cfg() }).unwrap().compute(&logits, None, &t).unwrap().loss).unwrap();
        let expect = {
            let a = -(2f64.exp() / (2f64.exp() + 2.0)).ln();
            let b = -(3f64.exp() / (1.0 + 3f64.exp() + 1f64.exp())).ln();
            (a + b) / 2.0
        };
        assert!((ce - expect).abs() < 1e-5);
        let focal = f64::try_from(Loss::new(LossConfig { kind: LossKind::Focal, gamma: 0.0, ..cfg() }).unwrap().compute(&logits, None, &t).unwrap().loss).unwrap();
        assert!((focal - ce).abs() < 1e-6, "focal with gamma 0 is CE");
        let focal2 = f64::try_from(Loss::new(LossConfig { kind: LossKind::Focal, ..cfg() }).unwrap().compute(&logits, None, &t).unwrap().loss).unwrap();
        assert!(focal2 < ce);
        let ls = f64::try_from(Loss::new(LossConfig { kind: LossKind::LabelSmoothing, ..cfg() }).unwrap().compute(&logits, None, &t).unwrap().loss).unwrap();
        assert!(ls > ce);
        assert!(Loss::new(cfg()).unwrap().compute(&logits, None, &t).is_err(), "bias loss without features");
        assert!("bias".parse::<LossKind>().is_ok() && "hinge".parse::<LossKind>().is_err());
    }
}

//! Exponential moving average of the weights (and BN statistics). Update number t (0-based: the count
//! of updates done before it) computes `shadow = d_t·shadow + (1 − d_t)·value` with the warm-up of the
//! TF/timm recipes, `d_t = min(decay, (1 + t) / (10 + t))`: 0.1 on the first update, 0.5 after 8, and
//! `decay` once (1 + t)/(10 + t) exceeds it. The shadow therefore starts from the early weights instead
//! of staying anchored to the random initialisation for ~1/(1 − decay) steps. Non-float tensors
//! (counters) are copied. Evaluation and the saved inference weights use the shadow when EMA is on;
//! [`Ema::swap`] exchanges shadow and live values in place (call it twice to restore).
//!
//! [`Ema::update`] runs one `_foreach_lerp_` over the floating-point tensors and one `_foreach_copy_`
//! over the others through [`crate::shim`] (`fused`, the default), or a few kernels per tensor
//! ([`Ema::set_fused`]`(false)`, the reference of the tests).
//!
//! The update count t is part of [`Ema::state`] (tensor [`UPDATES_KEY`]) so a resumed run continues
//! with the same decays; a state without it (older files) counts as t = 0.

use crate::shim;
use std::collections::BTreeMap;
use tch::{nn::VarStore, Kind, Tensor};

/// Name of the update counter in [`Ema::state`]: a one-element int64 tensor.
pub const UPDATES_KEY: &str = "ema.__updates__";

/// The warm-up decay of update number `t` (0-based): `min(decay, (1 + t) / (10 + t))`.
pub fn warmup_decay(decay: f64, t: u64) -> f64 {
    let t = t as f64;
    decay.min((1.0 + t) / (10.0 + t))
}

pub struct Ema {
    pub decay: f64,
    shadow: Vec<(String, Tensor, Tensor)>,
    updates: u64,
    /// Multi-tensor updates through the shim (else one tensor at a time).
    fused: bool,
}

fn is_float(t: &Tensor) -> bool {
    t.kind() == Kind::Float || t.kind() == Kind::Double
}

impl Ema {
    pub fn new(vs: &VarStore, decay: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let shadow = tch::no_grad(|| vars.into_iter().map(|(n, v)| (n, v.detach().copy(), v)).collect());
        Ema { decay, shadow, updates: 0, fused: true }
    }

    /// Multi-tensor updates (default) or one tensor at a time; the same maths.
    pub fn set_fused(&mut self, fused: bool) {
        self.fused = fused;
    }

    /// The shadow tensors in name order (sharing storage: writing them writes the shadow), e.g. to
    /// broadcast them from rank 0 in data-parallel training.
    pub fn shadow_tensors(&self) -> Vec<Tensor> {
        self.shadow.iter().map(|(_, s, _)| s.shallow_clone()).collect()
    }

    /// The number of updates done so far (t of the next update).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The decay the next update will use, `min(decay, (1 + t) / (10 + t))`.
    pub fn current_decay(&self) -> f64 {
        warmup_decay(self.decay, self.updates)
    }

    /// One EMA step with the warm-up decay [`Ema::current_decay`]; then counts it.
    pub fn update(&mut self) {
        let d = self.current_decay();
        if self.fused && self.update_fused(d).is_ok() {
            self.updates += 1;
            return;
        }
        tch::no_grad(|| {
            for (_, shadow, live) in &mut self.shadow {
                if is_float(shadow) {
                    let _ = shadow.g_mul_scalar_(d).g_add_(&(live.detach() * (1.0 - d)));
                } else {
                    shadow.copy_(live);
                }
            }
        });
        self.updates += 1;
    }

    /// [`Ema::update`] as one `_foreach_lerp_` (floats) and one `_foreach_copy_` (counters).
    fn update_fused(&mut self, d: f64) -> anyhow::Result<()> {
        let (mut fs, mut fl, mut os, mut ol) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (_, shadow, live) in &self.shadow {
            let (s, l) = if is_float(shadow) { (&mut fs, &mut fl) } else { (&mut os, &mut ol) };
            s.push(shadow.shallow_clone());
            l.push(live.shallow_clone());
        }
        shim::ema_update(&fs, &fl, d)?;
        shim::copy(&os, &ol)
    }

    /// Exchanges the shadow and the live values.
    pub fn swap(&mut self) {
        tch::no_grad(|| {
            for (_, shadow, live) in &mut self.shadow {
                let tmp = live.detach().copy();
                live.copy_(shadow);
                shadow.copy_(&tmp);
            }
        });
    }

    /// The shadow values (`ema.<variable>`) and the update count ([`UPDATES_KEY`], int64 `[1]`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> =
            self.shadow.iter().map(|(n, s, _)| (format!("ema.{n}"), s.shallow_clone())).collect();
        out.push((UPDATES_KEY.to_string(), Tensor::from_slice(&[self.updates as i64])));
        out
    }

    /// Restores a state written by [`Ema::state`]: the shadow values present in `state`, and the update
    /// count (0 when the state has none, as in files written before the warm-up; negative counts as 0).
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) {
        tch::no_grad(|| {
            for (n, s, _) in &mut self.shadow {
                if let Some(t) = state.get(&format!("ema.{n}")) {
                    s.copy_(t);
                }
            }
        });
        self.updates = state.get(UPDATES_KEY).map_or(0, read_count);
    }
}

/// The value of a one-element counter tensor (any numeric kind); 0 for an empty or negative one.
fn read_count(t: &Tensor) -> u64 {
    if t.numel() != 1 {
        return 0;
    }
    let value = t.reshape([1]).to_kind(Kind::Int64).int64_value(&[0]);
    value.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn value(t: &Tensor) -> f64 {
        f64::try_from(t.get(0)).unwrap()
    }

    #[test]
    fn tracks_and_swaps() {
        let vs = VarStore::new(Device::Cpu);
        let mut w = vs.root().zeros("w", &[1]);
        let mut ema = Ema::new(&vs, 0.5);
        let _ = tch::no_grad(|| w.fill_(4.0));
        ema.update(); // warm-up decay min(0.5, 1/10) = 0.1: 0.1·0 + 0.9·4 = 3.6
        ema.swap();
        assert!((value(&w) - 3.6).abs() < 1e-6);
        ema.swap();
        assert_eq!(value(&w), 4.0);
        let state: BTreeMap<String, Tensor> = ema.state().into_iter().collect();
        assert!((value(&state["ema.w"]) - 3.6).abs() < 1e-6);
    }

    #[test]
    fn warm_up_decay_then_the_configured_one() {
        assert_eq!(warmup_decay(0.9999, 0), 0.1);
        assert_eq!(warmup_decay(0.9999, 8), 0.5);
        assert_eq!(warmup_decay(0.5, 1000), 0.5);
        let vs = VarStore::new(Device::Cpu);
        let mut w = vs.root().zeros("w", &[1]);
        let mut ema = Ema::new(&vs, 0.9);
        let _ = tch::no_grad(|| w.fill_(10.0));
        ema.update(); // first update: d = 0.1, shadow = 0.1·0 + 0.9·10
        let state: BTreeMap<String, Tensor> = ema.state().into_iter().collect();
        assert!((value(&state["ema.w"]) - 9.0).abs() < 1e-5);
        // (1 + t)/(10 + t) ≥ 0.9 from t = 80 on: every later update uses the configured decay.
        for _ in 1..100 {
            ema.update();
        }
        assert_eq!(ema.updates(), 100);
        assert_eq!(ema.current_decay(), 0.9);
        let _ = tch::no_grad(|| w.fill_(20.0));
        let before = value(&ema.state()[0].1);
        ema.update();
        let after = value(&ema.state()[0].1);
        assert!((after - (0.9 * before + 0.1 * 20.0)).abs() < 1e-4, "{before} → {after}");
    }

    #[test]
    fn update_count_survives_state_round_trip() {
        let vs = VarStore::new(Device::Cpu);
        let _w = vs.root().zeros("w", &[1]);
        let mut ema = Ema::new(&vs, 0.999);
        for _ in 0..7 {
            ema.update();
        }
        let state: BTreeMap<String, Tensor> = ema.state().into_iter().collect();
        assert_eq!(state[UPDATES_KEY].int64_value(&[0]), 7);
        let mut resumed = Ema::new(&vs, 0.999);
        resumed.load_state(&state);
        assert_eq!(resumed.updates(), 7);
        assert_eq!(resumed.current_decay(), warmup_decay(0.999, 7));
        // A state written before the counter existed starts the warm-up again.
        let old: BTreeMap<String, Tensor> = state.into_iter().filter(|(k, _)| k != UPDATES_KEY).collect();
        resumed.load_state(&old);
        assert_eq!(resumed.updates(), 0);
        // A float counter (0-dim) is read too.
        resumed.load_state(&BTreeMap::from([(UPDATES_KEY.to_string(), Tensor::from(3.0f64))]));
        assert_eq!(resumed.updates(), 3);
    }

    #[test]
    fn fused_update_equals_the_per_tensor_one() {
        let make = || {
            let vs = VarStore::new(Device::Cpu);
            let root = vs.root();
            let w = root.var_copy("w", &Tensor::arange(12, (Kind::Float, Device::Cpu)).sin().view([3, 4]));
            let b = root.var_copy("b", &Tensor::arange(3, (Kind::Float, Device::Cpu)).cos());
            let count = root.add("count", Tensor::from_slice(&[0i64]), false);
            (vs, w, b, count)
        };
        let (vs_a, mut wa, mut ba, mut ca) = make();
        let (vs_b, mut wb, mut bb, mut cb) = make();
        let mut a = Ema::new(&vs_a, 0.9);
        a.set_fused(false);
        let mut b = Ema::new(&vs_b, 0.9);
        for step in 1..=20 {
            for (w, bias, c) in [(&mut wa, &mut ba, &mut ca), (&mut wb, &mut bb, &mut cb)] {
                tch::no_grad(|| {
                    let _ = w.g_add_scalar_(0.1 * step as f64).sin_();
                    let _ = bias.g_mul_scalar_(1.1);
                    let _ = c.fill_(step);
                });
            }
            a.update();
            b.update();
        }
        let (sa, sb) = (a.state(), b.state());
        assert_eq!(sa.len(), sb.len());
        for ((ka, x), (kb, y)) in sa.iter().zip(&sb) {
            assert_eq!(ka, kb);
            let diff = f64::try_from((x.to_kind(Kind::Double) - y.to_kind(Kind::Double)).abs().max()).unwrap();
            assert!(diff < 1e-6, "{ka}: {diff}");
        }
        let count: BTreeMap<String, Tensor> = sb.into_iter().collect();
        assert_eq!(count["ema.count"].int64_value(&[0]), 20, "counters are copied");
    }
}

//! Exponential moving average of the weights (and BN statistics). Update number t (0-based: the count
//! of updates done before it) computes `shadow = d_t·shadow + (1 − d_t)·value` with the warm-up of the
//! TF/timm recipes, `d_t = min(decay, (1 + t) / (10 + t))`: 0.1 on the first update, 0.5 after 8, and
//! `decay` once (1 + t)/(10 + t) exceeds it. The shadow therefore starts from the early weights instead
//! of staying anchored to the random initialisation for ~1/(1 − decay) steps. Non-float tensors
//! (counters) are copied. Evaluation and the saved inference weights use the shadow when EMA is on;
//! [`Ema::swap`] exchanges shadow and live values in place (call it twice to restore).
//!
//! The update count t is part of [`Ema::state`] (tensor [`UPDATES_KEY`]) so a resumed run continues
//! with the same decays; a state without it (older files) counts as t = 0.

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
}

impl Ema {
    pub fn new(vs: &VarStore, decay: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let shadow = tch::no_grad(|| vars.into_iter().map(|(n, v)| (n, v.detach().copy(), v)).collect());
        Ema { decay, shadow, updates: 0 }
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
        tch::no_grad(|| {
            for (_, shadow, live) in &mut self.shadow {
                if shadow.kind() == Kind::Float || shadow.kind() == Kind::Double {
                    let _ = shadow.g_mul_scalar_(d).g_add_(&(live.detach() * (1.0 - d)));
                } else {
                    shadow.copy_(live);
                }
            }
        });
        self.updates += 1;
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
}

//! Exponential moving average of the weights (and BN statistics): after every step
//! `shadow = d·shadow + (1 − d)·value`. Evaluation and the saved inference weights use the shadow when
//! EMA is on; [`Ema::swap`] exchanges shadow and live values in place (call it twice to restore).

use std::collections::BTreeMap;
use tch::{nn::VarStore, Kind, Tensor};

pub struct Ema {
    pub decay: f64,
    shadow: Vec<(String, Tensor, Tensor)>,
}

impl Ema {
    pub fn new(vs: &VarStore, decay: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let shadow = tch::no_grad(|| vars.into_iter().map(|(n, v)| (n, v.detach().copy(), v)).collect());
        Ema { decay, shadow }
    }

    pub fn update(&mut self) {
        let d = self.decay;
        tch::no_grad(|| {
            for (_, shadow, live) in &mut self.shadow {
                if shadow.kind() == Kind::Float || shadow.kind() == Kind::Double {
                    let _ = shadow.g_mul_scalar_(d).g_add_(&(live.detach() * (1.0 - d)));
                } else {
                    shadow.copy_(live);
                }
            }
        });
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

    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.shadow.iter().map(|(n, s, _)| (format!("ema.{n}"), s.shallow_clone())).collect()
    }

    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) {
        tch::no_grad(|| {
            for (n, s, _) in &mut self.shadow {
                if let Some(t) = state.get(&format!("ema.{n}")) {
                    s.copy_(t);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn tracks_and_swaps() {
        let vs = VarStore::new(Device::Cpu);
        let mut w = vs.root().zeros("w", &[1]);
        let mut ema = Ema::new(&vs, 0.5);
        let _ = tch::no_grad(|| w.fill_(4.0));
        ema.update(); // 0.5·0 + 0.5·4 = 2
        ema.swap();
        assert_eq!(f64::try_from(w.get(0)).unwrap(), 2.0);
        ema.swap();
        assert_eq!(f64::try_from(w.get(0)).unwrap(), 4.0);
        let state: BTreeMap<String, Tensor> = ema.state().into_iter().collect();
        assert_eq!(f64::try_from(state["ema.w"].get(0)).unwrap(), 2.0);
    }
}

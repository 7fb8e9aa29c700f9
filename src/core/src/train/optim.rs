//! Optimisers written over the variables of a `VarStore`, so that their state (momentum buffers,
//! squared-gradient averages) can be saved and restored exactly for `--resume`:
//!
//! * SGD with momentum, optional Nesterov, L2 weight decay (PyTorch's `torch.optim.SGD` semantics);
//! * RMSProp in TensorFlow's form (as the paper's ImageNet recipe and timm's `RMSpropTF`): the squared
//!   average starts at 1, ε is added inside the square root, and the learning rate is applied inside
//!   the momentum buffer.
//!
//! Weight decay can skip 1-D parameters (BN weights and biases). Variables whose name starts with a
//! frozen prefix are left untouched (used to freeze a backbone for the first epochs of fine-tuning).
//!
//! Two implementations of the same maths: the *fused* one (default, `train.fused_optimizer = true`)
//! updates each group of parameters sharing a learning rate and weight decay with a few multi-tensor
//! kernels through [`crate::shim`] (`_fused_sgd_` on CUDA, `_foreach_*` ops elsewhere); the
//! per-parameter one runs a few kernels per parameter (kept for comparison and as the reference of the
//! tests). Both keep the same state, so a run may switch between them across `--resume`.

use crate::recipe::{OptimSection, OptimizerKind};
use crate::shim;
use anyhow::Result;
use std::collections::BTreeMap;
use tch::{nn::VarStore, Tensor};

struct Param {
    name: String,
    var: Tensor,
    decay: bool,
    /// SGD momentum or RMSProp momentum buffer.
    buf: Option<Tensor>,
    /// RMSProp squared-gradient average.
    square_avg: Option<Tensor>,
}

pub struct Optimizer {
    config: OptimSection,
    params: Vec<Param>,
    lr: f64,
    frozen: Vec<String>,
    /// (name prefix, multiplier): a parameter's learning rate is `lr ×` the first matching multiplier.
    lr_mults: Vec<(String, f64)>,
    /// Multi-tensor updates through the shim (else one parameter at a time).
    fused: bool,
}

impl Optimizer {
    /// Optimises the trainable variables of `vs` (sorted by name, so the state is stable).
    pub fn new(vs: &VarStore, config: &OptimSection) -> Self {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, v)| v.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .map(|(name, var)| {
                let decay = !(config.no_decay_bn_bias && var.dim() <= 1);
                Param { name, var, decay, buf: None, square_avg: None }
            })
            .collect();
        Optimizer {
            config: config.clone(),
            params,
            lr: config.lr,
            frozen: Vec::new(),
            lr_mults: Vec::new(),
            fused: true,
        }
    }

    /// Multi-tensor updates (default) or one parameter at a time; the same maths and state.
    pub fn set_fused(&mut self, fused: bool) {
        self.fused = fused;
    }
    pub fn fused(&self) -> bool {
        self.fused
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Per-group learning rates: parameters whose name starts with a prefix get `lr × multiplier`.
    pub fn set_lr_mults(&mut self, mults: Vec<(String, f64)>) {
        self.lr_mults = mults;
    }

    fn lr_mult(&self, name: &str) -> f64 {
        self.lr_mults.iter().find(|(p, _)| name.starts_with(p.as_str())).map_or(1.0, |(_, m)| *m)
    }

    /// Variables whose name starts with one of these prefixes are not updated (and get no gradient).
    pub fn set_frozen(&mut self, prefixes: Vec<String>) {
        for p in &mut self.params {
            let frozen = prefixes.iter().any(|f| p.name.starts_with(f.as_str()));
            let _ = p.var.set_requires_grad(!frozen);
        }
        self.frozen = prefixes;
    }

    fn is_frozen(&self, name: &str) -> bool {
        self.frozen.iter().any(|f| name.starts_with(f.as_str()))
    }

    pub fn zero_grad(&mut self) {
        if self.fused {
            let grads: Vec<Tensor> = self.params.iter().map(|p| p.var.grad()).filter(|g| g.defined()).collect();
            if shim::zero(&grads).is_ok() {
                return;
            }
        }
        for p in &mut self.params {
            let mut g = p.var.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// The defined gradients of the parameters that are not frozen (e.g. to unscale them).
    pub fn grads(&self) -> Vec<Tensor> {
        self.params.iter().filter(|p| !self.is_frozen(&p.name)).map(|p| p.var.grad()).filter(|g| g.defined()).collect()
    }

    /// Global L2 norm of the gradients; when above `max_norm` > 0, they are scaled down to it.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let grads: Vec<Tensor> = self.params.iter().map(|p| p.var.grad()).filter(|g| g.defined()).collect();
        if grads.is_empty() {
            return 0.0;
        }
        let total = tch::no_grad(|| {
            let norms: Vec<Tensor> = grads.iter().map(|g| g.square().sum(tch::Kind::Float)).collect();
            f64::try_from(Tensor::stack(&norms, 0).sum(tch::Kind::Float).sqrt()).unwrap_or(f64::NAN)
        });
        if max_norm > 0.0 && total > max_norm {
            let scale = max_norm / (total + 1e-6);
            tch::no_grad(|| {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(scale);
                }
            });
        }
        total
    }

    /// One update with the current learning rate.
    pub fn step(&mut self) -> Result<()> {
        if self.fused {
            self.step_fused()
        } else {
            self.step_per_parameter();
            Ok(())
        }
    }

    /// [`Optimizer::step`] with multi-tensor kernels: one call per (weight decay, learning rate) group.
    fn step_fused(&mut self) -> Result<()> {
        let c = &self.config;
        let sgd = c.kind == OptimizerKind::Sgd;
        // Groups of the parameters to update, by (decayed, lr multiplier), in first-seen order.
        let mut groups: Vec<((bool, f64), Vec<usize>)> = Vec::new();
        let mut grads: Vec<Option<Tensor>> = Vec::with_capacity(self.params.len());
        for (i, p) in self.params.iter().enumerate() {
            let g = p.var.grad();
            if self.is_frozen(&p.name) || !g.defined() {
                grads.push(None);
                continue;
            }
            grads.push(Some(g));
            let key = (p.decay && c.weight_decay > 0.0, self.lr_mult(&p.name));
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        // Buffers the per-parameter path creates on first use: zeros (momentum) and ones (RMSProp's
        // squared average) give the same first update.
        for (_, members) in &groups {
            for &i in members {
                let p = &mut self.params[i];
                if c.momentum > 0.0 && p.buf.is_none() {
                    p.buf = Some(p.var.detach().zeros_like());
                }
                if !sgd && p.square_avg.is_none() {
                    p.square_avg = Some(p.var.detach().ones_like());
                }
            }
        }
        for ((decayed, mult), members) in &groups {
            let pick = |f: &dyn Fn(&Param) -> Option<Tensor>| -> Vec<Tensor> {
                members.iter().filter_map(|&i| f(&self.params[i])).collect()
            };
            let vars = pick(&|p| Some(p.var.shallow_clone()));
            let g: Vec<Tensor> = members.iter().filter_map(|&i| grads[i].as_ref().map(|t| t.shallow_clone())).collect();
            let bufs = pick(&|p| p.buf.as_ref().map(|t| t.shallow_clone()));
            let weight_decay = if *decayed { c.weight_decay } else { 0.0 };
            let lr = self.lr * mult;
            if sgd {
                let group = shim::SgdGroup { lr, momentum: c.momentum, weight_decay, nesterov: c.nesterov };
                shim::sgd_step(&vars, &g, &bufs, group, true)?;
            } else {
                let sq = pick(&|p| p.square_avg.as_ref().map(|t| t.shallow_clone()));
                let group =
                    shim::RmspropGroup { lr, decay: c.rmsprop_decay, eps: c.eps, momentum: c.momentum, weight_decay };
                shim::rmsprop_tf_step(&vars, &g, &sq, &bufs, group)?;
            }
        }
        Ok(())
    }

    /// [`Optimizer::step`] one parameter at a time.
    fn step_per_parameter(&mut self) {
        let c = self.config.clone();
        let lr = self.lr;
        let frozen: Vec<bool> = self.params.iter().map(|p| self.is_frozen(&p.name)).collect();
        let mults: Vec<f64> = self.params.iter().map(|p| self.lr_mult(&p.name)).collect();
        tch::no_grad(|| {
            for ((p, frozen), mult) in self.params.iter_mut().zip(frozen).zip(mults) {
                let lr = lr * mult;
                let grad = p.var.grad();
                if frozen || !grad.defined() {
                    continue;
                }
                let mut g = if p.decay && c.weight_decay > 0.0 {
                    &grad + &p.var * c.weight_decay
                } else {
                    grad.shallow_clone()
                };
                match c.kind {
                    OptimizerKind::Sgd => {
                        if c.momentum > 0.0 {
                            let buf = match p.buf.take() {
                                None => g.copy(),
                                Some(mut b) => {
                                    let _ = b.g_mul_scalar_(c.momentum).g_add_(&g);
                                    b
                                }
                            };
                            g = if c.nesterov { &g + &buf * c.momentum } else { buf.shallow_clone() };
                            p.buf = Some(buf);
                        }
                        let _ = p.var.g_sub_(&(g * lr));
                    }
                    OptimizerKind::Rmsprop => {
                        let mut sq = p.square_avg.take().unwrap_or_else(|| p.var.ones_like());
                        let _ = sq.g_mul_scalar_(c.rmsprop_decay).g_add_(&(g.square() * (1.0 - c.rmsprop_decay)));
                        let step = &g * lr / (&sq + c.eps).sqrt();
                        p.square_avg = Some(sq);
                        let update = if c.momentum > 0.0 {
                            let buf = match p.buf.take() {
                                None => step,
                                Some(mut b) => {
                                    let _ = b.g_mul_scalar_(c.momentum).g_add_(&step);
                                    b
                                }
                            };
                            p.buf = Some(buf.shallow_clone());
                            buf
                        } else {
                            step
                        };
                        let _ = p.var.g_sub_(&update);
                    }
                }
            }
        });
    }

    /// The optimiser's state as named tensors (`<param>.buf`, `<param>.square_avg`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for p in &self.params {
            if let Some(b) = &p.buf {
                out.push((format!("{}.buf", p.name), b.shallow_clone()));
            }
            if let Some(s) = &p.square_avg {
                out.push((format!("{}.square_avg", p.name), s.shallow_clone()));
            }
        }
        out
    }

    /// Restores a state written by [`Optimizer::state`].
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        for p in &mut self.params {
            let device = p.var.device();
            p.buf = state.get(&format!("{}.buf", p.name)).map(|t| t.to_device(device));
            p.square_avg = state.get(&format!("{}.square_avg", p.name)).map(|t| t.to_device(device));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn quadratic(kind: OptimizerKind, momentum: f64, nesterov: bool) -> (f64, Vec<f64>) {
        // Minimise ||w − 3||² from w = 0.
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().zeros("w", &[2]);
        let config =
            OptimSection { kind, lr: 0.05, momentum, nesterov, weight_decay: 0.0, eps: 1e-8, ..Default::default() };
        let mut opt = Optimizer::new(&vs, &config);
        let mut trace = Vec::new();
        for _ in 0..200 {
            opt.zero_grad();
            let loss = (&w - 3.0).square().sum(Kind::Float);
            loss.backward();
            opt.step().unwrap();
            trace.push(f64::try_from(loss).unwrap());
        }
        (f64::try_from(w.mean(Kind::Float)).unwrap(), trace)
    }

    #[test]
    fn optimisers_converge() {
        for (kind, m, n) in [
            (OptimizerKind::Sgd, 0.0, false),
            (OptimizerKind::Sgd, 0.9, false),
            (OptimizerKind::Sgd, 0.9, true),
            (OptimizerKind::Rmsprop, 0.9, false),
        ] {
            let (w, trace) = quadratic(kind, m, n);
            assert!((w - 3.0).abs() < 0.05, "{kind:?} m={m}: w = {w}");
            assert!(trace.last().unwrap() < &trace[0]);
        }
    }

    #[test]
    fn sgd_matches_the_pytorch_update_rule() {
        // Two steps by hand: g = 2(w − 3) + wd·w, buf = g; then buf = m·buf + g; w −= lr·buf.
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().zeros("w", &[1]);
        let config =
            OptimSection { kind: OptimizerKind::Sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.01, ..Default::default() };
        let mut opt = Optimizer::new(&vs, &config);
        let mut expect_w = 0.0f64;
        let mut buf = 0.0f64;
        for i in 0..2 {
            opt.zero_grad();
            (&w - 3.0).square().sum(Kind::Float).backward();
            opt.step().unwrap();
            let g = 2.0 * (expect_w - 3.0) + 0.01 * expect_w;
            buf = if i == 0 { g } else { 0.9 * buf + g };
            expect_w -= 0.1 * buf;
            assert!((f64::try_from(w.get(0)).unwrap() - expect_w).abs() < 1e-5);
        }
    }

    #[test]
    fn frozen_prefixes_and_state_round_trip() {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let a = root.sub("backbone").ones("a", &[3]);
        let b = root.sub("head").ones("b", &[3]);
        let config = OptimSection { kind: OptimizerKind::Rmsprop, lr: 0.1, momentum: 0.9, ..Default::default() };
        let mut opt = Optimizer::new(&vs, &config);
        opt.set_frozen(vec!["backbone.".into()]);
        opt.zero_grad();
        (&a * &b).sum(Kind::Float).backward();
        opt.step().unwrap();
        assert_eq!(f64::try_from(a.sum(Kind::Float)).unwrap(), 3.0, "frozen");
        assert!(f64::try_from(b.sum(Kind::Float)).unwrap() < 3.0);
        let state: BTreeMap<String, Tensor> = opt.state().into_iter().collect();
        assert!(state.contains_key("head.b.buf") && state.contains_key("head.b.square_avg"));
        let mut opt2 = Optimizer::new(&vs, &config);
        opt2.load_state(&state).unwrap();
        assert_eq!(opt2.state().len(), 2);
    }

    #[test]
    fn no_decay_bn_bias_leaves_one_dimensional_parameters_undecayed() {
        for no_decay in [false, true] {
            let vs = VarStore::new(Device::Cpu);
            let root = vs.root();
            let weight = root.ones("conv_weight", &[2, 2]);
            let bn = root.ones("bn_weight", &[2]);
            let config = OptimSection {
                lr: 0.1,
                momentum: 0.0,
                weight_decay: 0.5,
                no_decay_bn_bias: no_decay,
                ..Default::default()
            };
            let mut opt = Optimizer::new(&vs, &config);
            opt.zero_grad();
            // A zero loss that still defines every gradient: only weight decay moves the values.
            ((&weight.sum(Kind::Float) + bn.sum(Kind::Float)) * 0.0).backward();
            opt.step().unwrap();
            let (w, b) =
                (f64::try_from(weight.mean(Kind::Float)).unwrap(), f64::try_from(bn.mean(Kind::Float)).unwrap());
            assert!((w - 0.95).abs() < 1e-6, "2-D weights always decay: {w}");
            let expect = if no_decay { 1.0 } else { 0.95 };
            assert!((b - expect).abs() < 1e-6, "no_decay_bn_bias = {no_decay}: {b}");
        }
    }

    /// A small model (conv weight, 1-D bias, linear weight under `head.`) and a loss whose gradients
    /// change every step; the same initial values in every call.
    fn two_layer(vs: &VarStore) -> impl Fn(i64) -> Tensor {
        let root = vs.root();
        let init = |shape: &[i64], seed: f64| {
            let n: i64 = shape.iter().product();
            (Tensor::arange(n, (Kind::Float, Device::Cpu)) * seed).sin().view(shape)
        };
        let conv = (&root / "conv").var_copy("weight", &init(&[4, 3, 3, 3], 0.37));
        let bias = (&root / "conv").var_copy("bias", &init(&[4], 0.11));
        let head = (&root / "head").var_copy("weight", &init(&[2, 4], 0.23));
        move |step| {
            let x = (Tensor::arange(2 * 3 * 6 * 6, (Kind::Float, Device::Cpu)) * (0.05 + 0.01 * step as f64))
                .cos()
                .view([2, 3, 6, 6]);
            let h = x.conv2d(&conv, Some(&bias), [1, 1], [0, 0], [1, 1], 1).relu().mean_dim(
                &[2i64, 3][..],
                false,
                Kind::Float,
            );
            h.matmul(&head.tr()).square().sum(Kind::Float)
        }
    }

    fn after_steps(config: &OptimSection, fused: bool, steps: i64) -> BTreeMap<String, Tensor> {
        let vs = VarStore::new(Device::Cpu);
        let loss = two_layer(&vs);
        let mut opt = Optimizer::new(&vs, config);
        opt.set_fused(fused);
        opt.set_lr_mults(vec![("head.".into(), 0.5)]);
        for step in 0..steps {
            opt.set_lr(config.lr * (1.0 - 0.1 * step as f64));
            opt.zero_grad();
            loss(step).backward();
            opt.step().unwrap();
        }
        let mut out: BTreeMap<String, Tensor> =
            vs.variables().into_iter().map(|(k, v)| (k, v.detach().copy())).collect();
        out.extend(opt.state());
        out
    }

    #[test]
    fn fused_steps_equal_the_per_parameter_ones() {
        let configs = [
            OptimSection {
                kind: OptimizerKind::Sgd,
                lr: 0.005,
                momentum: 0.9,
                weight_decay: 0.0,
                ..Default::default()
            },
            OptimSection {
                kind: OptimizerKind::Sgd,
                lr: 0.005,
                momentum: 0.9,
                weight_decay: 1e-2,
                ..Default::default()
            },
            OptimSection {
                kind: OptimizerKind::Sgd,
                lr: 0.005,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-2,
                no_decay_bn_bias: true,
                ..Default::default()
            },
            OptimSection {
                kind: OptimizerKind::Sgd,
                lr: 0.005,
                momentum: 0.0,
                weight_decay: 1e-2,
                ..Default::default()
            },
            OptimSection {
                kind: OptimizerKind::Rmsprop,
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 1e-2,
                no_decay_bn_bias: true,
                ..Default::default()
            },
            OptimSection { kind: OptimizerKind::Rmsprop, lr: 0.01, momentum: 0.0, ..Default::default() },
        ];
        for config in configs {
            let a = after_steps(&config, false, 6);
            let b = after_steps(&config, true, 6);
            assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{config:?}");
            let moved = f64::try_from(
                (&a["conv.weight"] - after_steps(&config, false, 0)["conv.weight"].shallow_clone()).abs().max(),
            )
            .unwrap();
            assert!(moved > 1e-3, "the steps change the weights: {moved}");
            for (k, x) in &a {
                // Relative to the tensor's largest value (momentum buffers of this loss reach ~10).
                let scale = f64::try_from(x.abs().max()).unwrap().max(1.0);
                let diff = f64::try_from((x - &b[k]).abs().max()).unwrap() / scale;
                assert!(diff < 1e-6, "{config:?}: {k} differs by {diff} (relative)");
            }
        }
    }
}

//! Synchronised batch norm (`train.sync_bn = true` in a data-parallel run): in training mode every
//! [`crate::model::layers::ConvBn`] (the layers of SkipblockNet, the SSD heads and most of the model zoo)
//! normalises with the mean and variance of the world's batch instead of its rank's, through an autograd
//! function of the C++ shim (`sb_dist_sync_batch_norm`): the forward pass all-gathers each rank's mean,
//! variance and count, the backward pass all-reduces the two sums the input gradient needs, as PyTorch's
//! `SyncBatchNorm`. Small per-GPU batches (detection) then train as with the world's batch.
//!
//! A failed collective cannot unwind through the network's forward pass or autograd: it is kept and
//! returned by [`take_error`], which the training loop calls after every backward pass.

use super::ProcessGroup;
use anyhow::{anyhow, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tch::{nn, Tensor};

static ENABLED: AtomicBool = AtomicBool::new(false);
static DEFERRED: Mutex<Option<String>> = Mutex::new(None);

/// Switches synchronised batch norm on or off (it acts only in a data-parallel run of several ranks).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The group to synchronise with: `None` unless enabled in a run of several ranks.
fn group() -> Option<&'static ProcessGroup> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    super::group().filter(|g| g.world_size() > 1)
}

/// `bn` applied to `xs`: with the world's statistics in training mode when enabled, else as tch does.
pub fn batch_norm_t(xs: &Tensor, bn: &nn::BatchNorm, eps: f64, momentum: f64, train: bool) -> Tensor {
    let (Some(g), true, Some(w), Some(b)) = (group(), train, bn.ws.as_ref(), bn.bs.as_ref()) else {
        return xs.apply_t(bn, train);
    };
    match g.sync_batch_norm(xs, w, b, &bn.running_mean, &bn.running_var, eps, momentum) {
        Ok(ys) => ys,
        Err(e) => {
            let mut slot = DEFERRED.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("{e:#}"));
            xs.apply_t(bn, train)
        }
    }
}

/// The first error of a synchronised batch norm since the last call (forward or backward pass).
pub fn take_error() -> Result<()> {
    if let Some(e) = DEFERRED.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(anyhow!(e));
    }
    match super::group() {
        Some(g) => g.take_deferred_error(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::{Backend, DistEnv};
    use std::time::Duration;
    use tch::{Device, Kind};

    /// One rank's (output, input gradient, weight gradient, bias gradient, running mean, running variance).
    type RankResult = (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor);

    /// Two ranks (threads of this process, each with its own Gloo group) normalise halves of a batch with
    /// synchronised statistics: the outputs, the input gradients and the running statistics are those of
    /// one batch norm over the whole batch.
    #[test]
    fn two_synchronised_halves_are_one_batch_norm() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let x = Tensor::randn([6, 3, 4, 5], (Kind::Float, Device::Cpu)) * 2.0 + 0.5;
        let dy = Tensor::randn([6, 3, 4, 5], (Kind::Float, Device::Cpu));
        let (w, b) = (Tensor::from_slice(&[1.5f32, 0.5, -1.0]), Tensor::from_slice(&[0.1f32, -0.2, 0.3]));
        // The reference: one batch norm over all 6 samples, as tch/libtorch computes it.
        let xr = x.detach().set_requires_grad(true);
        let (wr, br) = (w.detach().set_requires_grad(true), b.detach().set_requires_grad(true));
        let (rm, rv) = (Tensor::zeros([3], (Kind::Float, Device::Cpu)), Tensor::ones([3], (Kind::Float, Device::Cpu)));
        let yr = xr.batch_norm(Some(&wr), Some(&br), Some(&rm), Some(&rv), true, 0.1, 1e-5, false);
        (&yr * &dy).sum(Kind::Float).backward();
        let results: Vec<RankResult> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|rank| {
                    let (x, dy, w, b) = (x.narrow(0, 3 * rank, 3), dy.narrow(0, 3 * rank, 3), w.copy(), b.copy());
                    s.spawn(move || {
                        let env = DistEnv {
                            rank: rank as usize,
                            world_size: 2,
                            local_rank: 0,
                            local_world_size: 2,
                            master_addr: "127.0.0.1".into(),
                            master_port: port,
                            agent_store: false,
                            restart_count: 0,
                        };
                        let g =
                            ProcessGroup::connect(&env, Backend::Gloo, Device::Cpu, Duration::from_secs(30)).unwrap();
                        let x = x.detach().set_requires_grad(true);
                        let (w, b) = (w.set_requires_grad(true), b.set_requires_grad(true));
                        let (rm, rv) = (
                            Tensor::zeros([3], (Kind::Float, Device::Cpu)),
                            Tensor::ones([3], (Kind::Float, Device::Cpu)),
                        );
                        let y = g.sync_batch_norm(&x, &w, &b, &rm, &rv, 1e-5, 0.1).unwrap();
                        (&y * &dy).sum(Kind::Float).backward();
                        g.take_deferred_error().unwrap();
                        (y.detach(), x.grad(), w.grad(), b.grad(), rm, rv)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let close = |a: &Tensor, b: &Tensor, what: &str| {
            let d = f64::try_from((a - b).abs().max()).unwrap();
            assert!(d < 1e-5, "{what}: max difference {d}");
        };
        let cat = |f: fn(&RankResult) -> &Tensor| {
            Tensor::cat(&results.iter().map(|r| f(r).shallow_clone()).collect::<Vec<_>>(), 0)
        };
        close(&cat(|r| &r.0), &yr, "outputs");
        close(&cat(|r| &r.1), &xr.grad(), "input gradients");
        // Parameter gradients: each rank's part, summed (the gradient reducer averages; the losses here
        // are sums, not means).
        close(&(&results[0].2 + &results[1].2), &wr.grad(), "weight gradient");
        close(&(&results[0].3 + &results[1].3), &br.grad(), "bias gradient");
        for r in &results {
            close(&r.4, &rm, "running mean");
            close(&r.5, &rv, "running variance");
        }
    }
}

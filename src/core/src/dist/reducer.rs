//! Gradient averaging for data-parallel training: after the backward pass, every gradient is averaged
//! across the ranks (PyTorch DDP's rule: the mean of the ranks' mean-reduced losses' gradients equals the
//! gradient of the mean over the world's batch when the ranks' batches are equal).
//!
//! Gradients are grouped into buckets of about [`BUCKET_BYTES`] (DDP's `bucket_cap_mb = 25`) of one dtype
//! and device, in reverse parameter order as DDP fills them; each bucket is flattened into one buffer and
//! all-reduced as one message, all buckets in flight together ([`super::ProcessGroup::allreduce_mean_buckets`]).
//!
//! Not overlapped with the backward pass: DDP launches a bucket from autograd hooks as soon as its last
//! gradient is ready, and tch 0.24 exposes no gradient hooks (a C++ hook per parameter calling back into
//! the reducer would be needed, with its thread-safety against the autograd engine). The buckets are
//! therefore sent right after `backward()` returns; with Gloo on CPU they overlap each other, not the
//! backward pass.

use super::ProcessGroup;
use anyhow::Result;
use tch::Tensor;

/// DDP's default bucket size, 25 MiB.
pub const BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// Bucket boundaries for `grads`: consecutive runs of one dtype and device of at most `cap` bytes (a
/// larger tensor is a bucket of its own). Returns the start index of every bucket and the end.
pub fn bucket_starts(grads: &[Tensor], cap: usize) -> Vec<i64> {
    let mut starts = Vec::new();
    let mut bytes = 0usize;
    for (i, g) in grads.iter().enumerate() {
        let size = g.numel() * g.kind().elt_size_in_bytes();
        let same = i > 0 && grads[i - 1].kind() == g.kind() && grads[i - 1].device() == g.device();
        if i == 0 || !same || bytes + size > cap {
            starts.push(i as i64);
            bytes = 0;
        }
        bytes += size;
    }
    if !grads.is_empty() {
        starts.push(grads.len() as i64);
    }
    starts
}

/// Averages the gradients of a step across the ranks.
pub struct GradReducer<'a> {
    group: &'a ProcessGroup,
    cap: usize,
}

impl<'a> GradReducer<'a> {
    pub fn new(group: &'a ProcessGroup) -> Self {
        GradReducer { group, cap: BUCKET_BYTES }
    }

    /// Averages `grads` (the defined gradients of the trained parameters, in the same order on every rank)
    /// in place.
    pub fn reduce(&self, grads: &[Tensor]) -> Result<()> {
        if self.group.world_size() <= 1 || grads.is_empty() {
            return Ok(());
        }
        // Reverse parameter order, as DDP: the last layers' gradients are ready first.
        let reversed: Vec<Tensor> = grads.iter().rev().map(Tensor::shallow_clone).collect();
        let starts = bucket_starts(&reversed, self.cap);
        self.group.allreduce_mean_buckets(&reversed, &starts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn buckets_respect_the_cap_and_the_dtype() {
        let t = |n: i64, k: Kind| Tensor::zeros([n], (k, Device::Cpu));
        let grads =
            vec![t(10, Kind::Float), t(10, Kind::Float), t(30, Kind::Float), t(5, Kind::Double), t(1, Kind::Double)];
        // 40-byte float tensors, cap 100 bytes: [0, 1], [2] (120 bytes alone), then the doubles [3, 4].
        assert_eq!(bucket_starts(&grads, 100), vec![0, 2, 3, 5]);
        assert_eq!(bucket_starts(&grads, 1 << 20), vec![0, 3, 5]);
        assert!(bucket_starts(&[], 100).is_empty());
    }
}

//! Sharding an epoch's sample order across the ranks, as PyTorch's `DistributedSampler` does: every rank
//! computes the same shuffled order (seeded from the seed and the epoch, [`crate::loader::epoch_order`]),
//! pads it by repeating its start to a multiple of the world size, and takes positions `rank, rank +
//! world, …`. The training shards are disjoint apart from the padding, cover the epoch, and have the same
//! length, so every rank runs the same number of steps.
//!
//! With batch B per rank, step k of rank r holds positions `world·(k·B + j) + r` (j < B): the world's
//! batch of step k is positions `k·B·world ..< (k+1)·B·world` of the order, exactly the batch of one
//! process with batch `B·world`.
//!
//! Evaluation shards ([`Shard::eval`]) are not padded: every sample is counted once, and the ranks' parts
//! may differ by one sample (evaluation has no collective per batch).

/// Which part of every epoch this process takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub world: usize,
    /// Repeat the start of the order so every rank gets `ceil(len / world)` samples (training).
    pub pad: bool,
}

impl Shard {
    /// A training shard (padded).
    pub fn train(rank: usize, world: usize) -> Shard {
        Shard { rank, world, pad: true }
    }

    /// An evaluation shard (every sample once).
    pub fn eval(rank: usize, world: usize) -> Shard {
        Shard { rank, world, pad: false }
    }

    /// The samples of `order` this rank takes (see the module's doc).
    pub fn take(&self, order: &[usize]) -> Vec<usize> {
        if order.is_empty() || self.world <= 1 {
            return order.to_vec();
        }
        if !self.pad {
            return order.iter().skip(self.rank).step_by(self.world).copied().collect();
        }
        let per_rank = order.len().div_ceil(self.world);
        (0..per_rank).map(|k| order[(k * self.world + self.rank) % order.len()]).collect()
    }

    /// How many samples this rank gets from an epoch of `len`.
    pub fn len_of(&self, len: usize) -> usize {
        let world = self.world.max(1);
        if self.pad {
            len.div_ceil(world)
        } else {
            len.saturating_sub(self.rank).div_ceil(world)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_equal_and_match_one_big_batch() {
        let order: Vec<usize> = (0..10).map(|i| (i * 7) % 10).collect();
        let shards: Vec<Vec<usize>> = (0..3).map(|rank| Shard::train(rank, 3).take(&order)).collect();
        assert!(shards.iter().all(|s| s.len() == 4), "10 samples on 3 ranks: 4 each (2 repeated)");
        let mut all: Vec<usize> = shards.iter().flatten().copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all, (0..10).collect::<Vec<_>>(), "the shards cover the epoch");
        // Two ranks with batch 2 see, step by step, the samples of one rank with batch 4.
        let two: Vec<Vec<usize>> = (0..2).map(|rank| Shard::train(rank, 2).take(&order)).collect();
        for (k, big) in order.chunks(4).enumerate() {
            let mut small: Vec<usize> = two.iter().flat_map(|s| s.chunks(2).nth(k).unwrap().to_vec()).collect();
            let mut big = big.to_vec();
            small.sort();
            big.sort();
            assert_eq!(small, big, "step {k}");
        }
        assert_eq!(Shard::train(0, 1).take(&order), order);
        assert_eq!(Shard::train(1, 3).len_of(10), 4);
        // Evaluation: each sample once, in order.
        let parts: Vec<Vec<usize>> =
            (0..3).map(|rank| Shard::eval(rank, 3).take(&(0..10).collect::<Vec<_>>())).collect();
        assert_eq!(parts, vec![vec![0, 3, 6, 9], vec![1, 4, 7], vec![2, 5, 8]]);
        assert_eq!((0..3).map(|r| Shard::eval(r, 3).len_of(10)).collect::<Vec<_>>(), vec![4, 3, 3]);
        assert_eq!(Shard::eval(2, 3).len_of(1), 0);
    }
}

//! Sharding an epoch's sample order across the ranks, as PyTorch's `DistributedSampler` does: every rank
//! computes the same shuffled order (seeded from the seed and the epoch, [`crate::loader::epoch_order`]),
//! pads it by repeating its start to a multiple of the world size, and takes positions `rank, rank +
//! world, …`. The shards are disjoint apart from the padding, cover the epoch, and have the same length,
//! so every rank runs the same number of steps.
//!
//! With batch B per rank, step k of rank r holds positions `world·(k·B + j) + r` (j < B): the world's
//! batch of step k is positions `k·B·world ..< (k+1)·B·world` of the order, exactly the batch of one
//! process with batch `B·world`.

/// Which part of every epoch this process takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub world: usize,
}

impl Shard {
    /// The samples of `order` this rank takes (see the module's doc).
    pub fn take(&self, order: &[usize]) -> Vec<usize> {
        if order.is_empty() || self.world <= 1 {
            return order.to_vec();
        }
        let per_rank = order.len().div_ceil(self.world);
        (0..per_rank).map(|k| order[(k * self.world + self.rank) % order.len()]).collect()
    }

    /// How many samples each rank gets from an epoch of `len`.
    pub fn len_of(&self, len: usize) -> usize {
        len.div_ceil(self.world.max(1))
    }

    /// The indices `0..len` this rank evaluates: `rank, rank + world, …` without padding (evaluation
    /// counts every sample once; the ranks' parts may differ by one).
    pub fn eval_part(&self, len: usize) -> Vec<usize> {
        (self.rank..len).step_by(self.world.max(1)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_equal_and_match_one_big_batch() {
        let order: Vec<usize> = (0..10).map(|i| (i * 7) % 10).collect();
        let shards: Vec<Vec<usize>> = (0..3).map(|rank| Shard { rank, world: 3 }.take(&order)).collect();
        assert!(shards.iter().all(|s| s.len() == 4), "10 samples on 3 ranks: 4 each (2 repeated)");
        let mut all: Vec<usize> = shards.iter().flatten().copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all, (0..10).collect::<Vec<_>>(), "the shards cover the epoch");
        // Two ranks with batch 2 see, step by step, the samples of one rank with batch 4.
        let two: Vec<Vec<usize>> = (0..2).map(|rank| Shard { rank, world: 2 }.take(&order)).collect();
        for (k, big) in order.chunks(4).enumerate() {
            let mut small: Vec<usize> = two.iter().flat_map(|s| s.chunks(2).nth(k).unwrap().to_vec()).collect();
            let mut big = big.to_vec();
            small.sort();
            big.sort();
            assert_eq!(small, big, "step {k}");
        }
        assert_eq!(Shard { rank: 0, world: 1 }.take(&order), order);
        assert_eq!(Shard { rank: 1, world: 3 }.eval_part(10), vec![1, 4, 7]);
        assert_eq!(Shard { rank: 1, world: 3 }.len_of(10), 4);
    }
}

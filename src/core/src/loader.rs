//! The parallel loader shared by classification and detection: a background thread decodes and augments
//! each batch with a pool of worker threads (rayon) and hands finished batches over a bounded channel,
//! so decoding overlaps the training step and at most `prefetch` batches wait in memory.
//!
//! Reproducibility: the shuffle of epoch `e` and the random generator of sample `i` in epoch `e` are
//! seeded from (seed, e, i) alone, so a batch is the same whatever the thread scheduling, and a run
//! resumed at epoch `e` sees exactly what an uninterrupted run would have.
//!
//! Unreadable samples: with `strict` the first error ends the iteration with that error; otherwise the
//! sample is left out of its batch with a warning naming it, and counted ([`BatchIter::skipped`]).

use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// The random generator each sample gets.
pub type Rng = rand::rngs::StdRng;

/// A dataset: a length and a way to load (and augment) one sample.
pub trait Dataset: Send + Sync + 'static {
    type Item: Send + 'static;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Loads sample `index`. Errors name the file at fault.
    fn get(&self, index: usize, rng: &mut Rng) -> Result<Self::Item>;
}

#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Batches prepared ahead.
    pub prefetch: usize,
    pub strict: bool,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 32,
            shuffle: false,
            drop_last: false,
            seed: 0,
            workers: 0,
            prefetch: 4,
            strict: false,
        }
    }
}

/// SplitMix64: a well-mixed 64-bit value from a few inputs.
pub fn mix(values: &[u64]) -> u64 {
    let mut z: u64 = 0x9E37_79B9_7F4A_7C15;
    for v in values {
        z = z.wrapping_add(*v).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// The generator of sample `index` in `epoch`.
pub fn sample_rng(seed: u64, epoch: usize, index: usize) -> Rng {
    Rng::seed_from_u64(mix(&[seed, epoch as u64, index as u64, 1]))
}

/// The sample order of an epoch.
pub fn epoch_order(len: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        order.shuffle(&mut Rng::seed_from_u64(mix(&[seed, epoch as u64, 0])));
    }
    order
}

/// Number of batches an epoch of `len` samples gives.
pub fn batches_per_epoch(len: usize, batch_size: usize, drop_last: bool) -> usize {
    let b = batch_size.max(1);
    if drop_last {
        len / b
    } else {
        len.div_ceil(b)
    }
}

/// Iterator over the batches of one epoch.
pub struct BatchIter<T> {
    rx: Receiver<Result<Vec<T>>>,
    skipped: Arc<AtomicUsize>,
    len: usize,
    done: bool,
}

impl<T> BatchIter<T> {
    /// Samples left out so far because they could not be loaded.
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }
    /// Batches this epoch yields.
    pub fn num_batches(&self) -> usize {
        self.len
    }
}

impl<T> Iterator for BatchIter<T> {
    type Item = Result<Vec<T>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rx.recv() {
            Ok(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(batch) => Some(batch),
            Err(_) => None,
        }
    }
}

/// Starts loading the batches of `epoch`.
pub fn load_epoch<D: Dataset>(dataset: Arc<D>, epoch: usize, config: &LoaderConfig) -> Result<BatchIter<D::Item>> {
    let order = epoch_order(dataset.len(), config.shuffle, config.seed, epoch);
    let bs = config.batch_size.max(1);
    let mut chunks: Vec<Vec<usize>> = order.chunks(bs).map(|c| c.to_vec()).collect();
    if config.drop_last && chunks.last().is_some_and(|c| c.len() < bs) {
        chunks.pop();
    }
    let len = chunks.len();
    let threads =
        if config.workers == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { config.workers };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("loader-{i}")).build()?;
    let (tx, rx) = sync_channel(config.prefetch.max(1));
    let skipped = Arc::new(AtomicUsize::new(0));
    let skipped_in = skipped.clone();
    let (seed, strict) = (config.seed, config.strict);
    std::thread::Builder::new().name("loader".into()).spawn(move || {
        use rayon::prelude::*;
        for chunk in chunks {
            let results: Vec<Result<D::Item>> =
                pool.install(|| chunk.par_iter().map(|&i| dataset.get(i, &mut sample_rng(seed, epoch, i))).collect());
            let mut batch = Vec::with_capacity(results.len());
            let mut failure = None;
            for r in results {
                match r {
                    Ok(item) => batch.push(item),
                    Err(e) if strict => {
                        failure = Some(e);
                        break;
                    }
                    Err(e) => {
                        skipped_in.fetch_add(1, Ordering::Relaxed);
                        crate::ui::warn(format!("skipped: {e:#}"));
                    }
                }
            }
            let message = match failure {
                Some(e) => Err(e),
                None if batch.is_empty() => continue,
                None => Ok(batch),
            };
            let stop = message.is_err();
            if tx.send(message).is_err() || stop {
                return; // the consumer went away, or the epoch failed
            }
        }
    })?;
    Ok(BatchIter { rx, skipped, len, done: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::bail;
    use rand::Rng as _;

    struct Numbers(usize);
    impl Dataset for Numbers {
        type Item = (usize, u32);
        fn len(&self) -> usize {
            self.0
        }
        fn get(&self, index: usize, rng: &mut Rng) -> Result<(usize, u32)> {
            if index == 13 {
                bail!("sample 13 is broken");
            }
            Ok((index, rng.gen()))
        }
    }

    fn collect(config: &LoaderConfig, epoch: usize) -> (Vec<Vec<(usize, u32)>>, usize) {
        let mut it = load_epoch(Arc::new(Numbers(20)), epoch, config).unwrap();
        let batches: Vec<_> = it.by_ref().map(|b| b.unwrap()).collect();
        (batches, it.skipped())
    }

    #[test]
    fn batches_are_reproducible_and_cover_the_dataset() {
        let config = LoaderConfig { batch_size: 6, shuffle: true, seed: 3, workers: 2, ..Default::default() };
        let (a, skipped) = collect(&config, 1);
        let (b, _) = collect(&LoaderConfig { workers: 1, ..config.clone() }, 1);
        assert_eq!(a, b, "same batches and random draws whatever the thread count");
        assert_eq!(skipped, 1, "the broken sample is skipped");
        let mut seen: Vec<usize> = a.iter().flatten().map(|x| x.0).collect();
        seen.sort();
        assert_eq!(seen, (0..20).filter(|&i| i != 13).collect::<Vec<_>>());
        let (c, _) = collect(&config, 2);
        assert_ne!(a, c, "another epoch, another order");
        assert_eq!(batches_per_epoch(20, 6, false), 4);
        assert_eq!(batches_per_epoch(20, 6, true), 3);
        let (d, _) = collect(&LoaderConfig { drop_last: true, ..config }, 1);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn strict_mode_stops_on_the_first_error() {
        let config = LoaderConfig { batch_size: 5, strict: true, ..Default::default() };
        let results: Vec<_> = load_epoch(Arc::new(Numbers(20)), 0, &config).unwrap().collect();
        assert_eq!(results.len(), 3, "two good batches, then the error");
        let err = results[2].as_ref().unwrap_err().to_string();
        assert!(err.contains("sample 13"), "{err}");
    }
}

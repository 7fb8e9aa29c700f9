//! The parallel loader shared by classification and detection: worker threads decode and augment the
//! samples of an epoch one after another, each taking the next sample as soon as it is free (no barrier
//! at batch ends), and the consumer takes finished batches in order, so decoding overlaps the training
//! step and at most `prefetch` batches are loaded ahead.
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
use std::sync::{Arc, Condvar, Mutex};

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
    /// Data-parallel training: this rank's part of every epoch's order ([`crate::dist::Shard`]); `None`
    /// takes the whole epoch.
    pub shard: Option<crate::dist::Shard>,
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
            shard: None,
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

/// The state the workers and the consumer of one epoch share.
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Signalled when a batch completes, when the consumer takes one (room for more) and on stop.
    changed: Condvar,
}

struct State<T> {
    /// Per batch, its samples' results in batch order (`None` until loaded); emptied when taken.
    slots: Vec<Vec<Option<Result<T>>>>,
    /// Results still missing per batch.
    missing: Vec<usize>,
    /// The next batch the consumer takes; workers load samples of batches below `front + prefetch` only.
    front: usize,
    /// The consumer went away or the epoch failed: workers stop.
    stop: bool,
}

/// Iterator over the batches of one epoch.
pub struct BatchIter<T> {
    shared: Arc<Shared<T>>,
    skipped: Arc<AtomicUsize>,
    strict: bool,
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

impl<T> Drop for BatchIter<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.stop = true;
        self.shared.changed.notify_all();
    }
}

impl<T> Iterator for BatchIter<T> {
    type Item = Result<Vec<T>>;
    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let results = {
                let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
                let b = state.front;
                if b >= self.len {
                    self.done = true;
                    return None;
                }
                while state.missing[b] > 0 {
                    state = self.shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                state.front += 1;
                self.shared.changed.notify_all();
                std::mem::take(&mut state.slots[b])
            };
            let mut batch = Vec::with_capacity(results.len());
            for r in results.into_iter().flatten() {
                match r {
                    Ok(item) => batch.push(item),
                    Err(e) if self.strict => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Err(e) => {
                        self.skipped.fetch_add(1, Ordering::Relaxed);
                        crate::ui::warn(format!("skipped: {e:#}"));
                    }
                }
            }
            if !batch.is_empty() {
                return Some(Ok(batch));
            }
        }
        None
    }
}

/// Starts loading the batches of `epoch`.
///
/// `workers` threads each take the next sample of the epoch (in batch order) as soon as they are free,
/// so no thread waits for the slowest sample of a batch before starting on the next one; at most
/// `prefetch` batches beyond the one the consumer waits for are loaded ahead. Batches come out in order.
pub fn load_epoch<D: Dataset>(dataset: Arc<D>, epoch: usize, config: &LoaderConfig) -> Result<BatchIter<D::Item>> {
    let order = epoch_order(dataset.len(), config.shuffle, config.seed, epoch);
    let order = match config.shard {
        Some(shard) => shard.take(&order),
        None => order,
    };
    let bs = config.batch_size.max(1);
    let mut chunks: Vec<Vec<usize>> = order.chunks(bs).map(|c| c.to_vec()).collect();
    if config.drop_last && chunks.last().is_some_and(|c| c.len() < bs) {
        chunks.pop();
    }
    let len = chunks.len();
    let threads =
        if config.workers == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { config.workers };
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            slots: chunks.iter().map(|c| (0..c.len()).map(|_| None).collect()).collect(),
            missing: chunks.iter().map(Vec::len).collect(),
            front: 0,
            stop: false,
        }),
        changed: Condvar::new(),
    });
    // Every sample of the epoch as (batch, position, dataset index), in the order they are wanted.
    let work: Arc<Vec<(usize, usize, usize)>> = Arc::new(
        chunks.iter().enumerate().flat_map(|(b, c)| c.iter().enumerate().map(move |(k, &i)| (b, k, i))).collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let (seed, prefetch, strict) = (config.seed, config.prefetch.max(1), config.strict);
    for t in 0..threads.min(work.len()) {
        let (dataset, shared, work, next) = (dataset.clone(), shared.clone(), work.clone(), next.clone());
        std::thread::Builder::new().name(format!("loader-{t}")).spawn(move || loop {
            let w = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(b, k, index)) = work.get(w) else { return };
            {
                let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                while !state.stop && b >= state.front + prefetch {
                    state = shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if state.stop {
                    return;
                }
            }
            // A panicking sample is an error of that sample, not a hang of the consumer.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                dataset.get(index, &mut sample_rng(seed, epoch, index))
            }))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("loading sample {index} panicked")));
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.slots[b][k] = Some(result);
            state.missing[b] -= 1;
            if state.missing[b] == 0 {
                shared.changed.notify_all();
            }
        })?;
    }
    Ok(BatchIter { shared, skipped: Arc::new(AtomicUsize::new(0)), strict, len, done: false })
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
            if index == 17 {
                panic!("sample 17 panics");
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
        assert_eq!(skipped, 2, "the broken and the panicking samples are skipped");
        let mut seen: Vec<usize> = a.iter().flatten().map(|x| x.0).collect();
        seen.sort();
        assert_eq!(seen, (0..20).filter(|&i| i != 13 && i != 17).collect::<Vec<_>>());
        let (many, _) = collect(&LoaderConfig { workers: 7, prefetch: 1, ..config.clone() }, 1);
        assert_eq!(a, many, "more workers than a batch holds, one batch ahead: the same batches");
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

    #[test]
    fn a_consumer_may_stop_early() {
        let config = LoaderConfig { batch_size: 2, workers: 3, prefetch: 1, ..Default::default() };
        let mut it = load_epoch(Arc::new(Numbers(12)), 0, &config).unwrap();
        assert_eq!(it.num_batches(), 6);
        assert_eq!(it.next().unwrap().unwrap().len(), 2);
        drop(it); // the workers waiting for room see the stop and end
        let empty: Vec<_> = load_epoch(Arc::new(Numbers(0)), 0, &config).unwrap().collect();
        assert!(empty.is_empty());
    }
}

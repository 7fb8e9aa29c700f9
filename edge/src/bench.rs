//! Batch-1 latency of an exported file: `{"median_ms":…,"p90_ms":…,"runs":N}` (what `skipblock bench
//! export` reads).

use crate::model::EdgeModel;
use anyhow::{bail, Result};
use serde::Serialize;
use std::time::Instant;

/// The latency summary line.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub median_ms: f64,
    pub p90_ms: f64,
    pub runs: usize,
}

/// The median and the 90th percentile (nearest rank) of `ms`.
pub fn summarise(mut ms: Vec<f64>) -> Result<Latency> {
    if ms.is_empty() {
        bail!("no timed runs");
    }
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let median = if n % 2 == 1 { ms[n / 2] } else { (ms[n / 2 - 1] + ms[n / 2]) / 2.0 };
    let p90 = ms[((0.9 * n as f64).ceil() as usize).clamp(1, n) - 1];
    Ok(Latency { median_ms: median, p90_ms: p90, runs: n })
}

/// Times `runs` batch-1 inferences of a fixed input (after `warmup` untimed ones).
pub fn latency(model: &EdgeModel, runs: usize, warmup: usize) -> Result<Latency> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let s = model.input_size() as usize;
    // A deterministic input in the range of normalised pixels.
    let input: Vec<f32> = (0..3 * s * s).map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0).collect();
    for _ in 0..warmup {
        model.run(input.clone())?;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let x = input.clone();
        let t = Instant::now();
        model.run(x)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summarise(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90_by_nearest_rank() {
        let l = summarise((1..=10).map(f64::from).rev().collect()).unwrap();
        assert_eq!((l.median_ms, l.p90_ms, l.runs), (5.5, 9.0, 10));
        let l = summarise(vec![3.0]).unwrap();
        assert_eq!((l.median_ms, l.p90_ms), (3.0, 3.0));
        assert!(summarise(vec![]).is_err());
        let json = serde_json::to_string(&summarise(vec![1.0, 2.0, 4.0]).unwrap()).unwrap();
        assert_eq!(json, r#"{"median_ms":2.0,"p90_ms":4.0,"runs":3}"#);
    }
}

//! The launcher's environment: what `torchrun` (or any launcher following PyTorch's `env://` convention)
//! sets for each worker process. No `WORLD_SIZE` and no `RANK`: a plain run.

use anyhow::{bail, Context, Result};
use std::time::Duration;

/// One worker's place in the job, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistEnv {
    /// Global rank, `0..world_size` (`RANK`).
    pub rank: usize,
    /// Number of processes in the job (`WORLD_SIZE`).
    pub world_size: usize,
    /// Rank on this machine (`LOCAL_RANK`, default 0): the CUDA device index.
    pub local_rank: usize,
    /// Processes on this machine (`LOCAL_WORLD_SIZE`, default `world_size`).
    pub local_world_size: usize,
    /// Host of the rendezvous store (`MASTER_ADDR`, default `127.0.0.1`).
    pub master_addr: String,
    /// Its port (`MASTER_PORT`, default 29500).
    pub master_port: u16,
    /// torchrun's agent hosts the store (`TORCHELASTIC_USE_AGENT_STORE=True`): every worker is a client.
    /// Otherwise rank 0 hosts it, as PyTorch's `env://` does.
    pub agent_store: bool,
    /// `TORCHELASTIC_RESTART_COUNT` (0 without torchrun): which attempt of an elastic job this is.
    pub restart_count: usize,
}

impl DistEnv {
    /// The environment of this process: `None` when `WORLD_SIZE` and `RANK` are both unset (a plain
    /// run); an error naming the variable when one is set without the other or a value is not a number.
    pub fn from_env() -> Result<Option<DistEnv>> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`DistEnv::from_env`] over any source of variables (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<DistEnv>> {
        let (world, rank) = (get("WORLD_SIZE"), get("RANK"));
        let (world, rank) = match (world, rank) {
            (None, None) => return Ok(None),
            (Some(w), Some(r)) => (w, r),
            (Some(_), None) => bail!("WORLD_SIZE is set but RANK is not: launch with torchrun or set both"),
            (None, Some(_)) => bail!("RANK is set but WORLD_SIZE is not: launch with torchrun or set both"),
        };
        let number = |name: &str, value: &str| -> Result<usize> {
            value.trim().parse().with_context(|| format!("{name}='{value}' is not a non-negative integer"))
        };
        let world_size = number("WORLD_SIZE", &world)?;
        let rank = number("RANK", &rank)?;
        if world_size == 0 || rank >= world_size {
            bail!("RANK={rank} does not fit WORLD_SIZE={world_size}");
        }
        let local_rank = get("LOCAL_RANK").map(|v| number("LOCAL_RANK", &v)).transpose()?.unwrap_or(0);
        let local_world_size =
            get("LOCAL_WORLD_SIZE").map(|v| number("LOCAL_WORLD_SIZE", &v)).transpose()?.unwrap_or(world_size);
        let master_port = match get("MASTER_PORT") {
            Some(p) => p.trim().parse().with_context(|| format!("MASTER_PORT='{p}' is not a port number"))?,
            None => 29500,
        };
        let restart_count = get("TORCHELASTIC_RESTART_COUNT")
            .map(|v| number("TORCHELASTIC_RESTART_COUNT", &v))
            .transpose()?
            .unwrap_or(0);
        Ok(Some(DistEnv {
            rank,
            world_size,
            local_rank,
            local_world_size,
            master_addr: get("MASTER_ADDR").filter(|a| !a.is_empty()).unwrap_or_else(|| "127.0.0.1".into()),
            master_port,
            agent_store: get("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"),
            restart_count,
        }))
    }
}

/// The default of [`timeout`]: how long a collective or the rendezvous waits for a peer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// `SKIPBLOCK_DIST_TIMEOUT` (seconds, fractions allowed), else [`DEFAULT_TIMEOUT`]: the longest a rank
/// waits for the others, at the rendezvous and in every collective, before it ends with an error.
pub fn timeout() -> Result<Duration> {
    match std::env::var("SKIPBLOCK_DIST_TIMEOUT") {
        Ok(v) => {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .with_context(|| format!("SKIPBLOCK_DIST_TIMEOUT='{v}' is not a positive number of seconds"))?;
            Ok(Duration::from_secs_f64(secs))
        }
        Err(_) => Ok(DEFAULT_TIMEOUT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Option<DistEnv>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        DistEnv::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_torchrun_variables_and_rejects_bad_ones() {
        assert_eq!(env(&[]).unwrap(), None, "a plain run");
        let e = env(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((e.rank, e.world_size, e.local_rank, e.local_world_size), (3, 4, 1, 2));
        assert_eq!((e.master_addr.as_str(), e.master_port, e.agent_store, e.restart_count), ("node0", 29400, true, 2));
        let plain = env(&[("RANK", "0"), ("WORLD_SIZE", "2")]).unwrap().unwrap();
        assert_eq!((plain.master_addr.as_str(), plain.master_port, plain.agent_store), ("127.0.0.1", 29500, false));
        for (pairs, needle) in [
            (vec![("RANK", "0")], "WORLD_SIZE is not"),
            (vec![("WORLD_SIZE", "2")], "RANK is not"),
            (vec![("RANK", "2"), ("WORLD_SIZE", "2")], "does not fit"),
            (vec![("RANK", "x"), ("WORLD_SIZE", "2")], "RANK='x'"),
            (vec![("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "70000")], "MASTER_PORT"),
        ] {
            let err = env(&pairs).unwrap_err().to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }
}

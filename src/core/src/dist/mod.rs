//! Data-parallel training across processes and machines on libtorch's own c10d engine, launched like
//! PyTorch's DDP (`torchrun --nproc-per-node N --no-python skipblock classify train …`):
//!
//! * [`env`]: the launcher's variables (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, …) and the
//!   timeout (`SKIPBLOCK_DIST_TIMEOUT`);
//! * [`group`]: the process group (TCPStore + PrefixStore + ProcessGroupGloo / ProcessGroupNCCL through
//!   the C++ shim `shim/dist.cpp`) and its collectives;
//! * [`reducer`]: bucketed averaging of the gradients after each backward pass;
//! * [`sampler`]: each rank's shard of every epoch's order;
//! * [`sync_bn`]: synchronised batch norm (`train.sync_bn`).
//!
//! The process joins one group per run ([`init`]); the training loop finds it with [`group`] (PyTorch's
//! default process group works the same way). Without launcher variables nothing here is used and a run
//! is the plain single-process one.

pub mod env;
pub mod group;
pub mod reducer;
pub mod sampler;
pub mod sync_bn;

pub use env::DistEnv;
pub use group::{Backend, ProcessGroup};
pub use reducer::GradReducer;
pub use sampler::Shard;

use anyhow::{bail, Result};
use std::sync::OnceLock;
use std::time::Duration;
use tch::Device;

static GROUP: OnceLock<ProcessGroup> = OnceLock::new();

/// Joins the process group of this job (once per process); non-zero ranks become quiet (no progress bars
/// or informational lines; warnings and errors still show).
pub fn init(env: &DistEnv, backend: Backend, device: Device, timeout: Duration) -> Result<&'static ProcessGroup> {
    if GROUP.get().is_some() {
        bail!("the process group is already initialised");
    }
    let group = ProcessGroup::connect(env, backend, device, timeout)?;
    if env.rank != 0 {
        crate::ui::set_verbosity(crate::ui::verbosity().min(-1));
    }
    let _ = GROUP.set(group);
    Ok(GROUP.get().expect("just set"))
}

/// The process group joined by [`init`], if any.
pub fn group() -> Option<&'static ProcessGroup> {
    GROUP.get()
}

/// Whether this process writes the run's files (rank 0, or a plain run).
pub fn is_lead() -> bool {
    group().is_none_or(|g| g.rank() == 0)
}

/// The device of this rank: with CUDA (`--device auto` or `cuda` on a CUDA machine), `cuda:LOCAL_RANK`;
/// an explicit `cuda:N` or the CPU stays as given.
pub fn rank_device(requested: &str, parsed: Device, env: &DistEnv) -> Device {
    match parsed {
        Device::Cuda(_) if matches!(requested.trim(), "auto" | "cuda") => Device::Cuda(env.local_rank),
        other => other,
    }
}

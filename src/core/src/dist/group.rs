//! The process group: libtorch's c10d TCPStore, PrefixStore and ProcessGroupGloo / ProcessGroupNCCL
//! through the C++ shim (`src/core/shim/dist.cpp`), and the collectives training needs. Every collective
//! waits at most the group's timeout; a peer that died or never arrives is an error of the form
//! "rank 1/2: <what> failed: <c10d's reason>".

use super::env::DistEnv;
use anyhow::{anyhow, bail, Result};
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::Mutex;
use std::time::Duration;
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

type T = *const C_tensor;

#[repr(C)]
struct SbGroup {
    _private: [u8; 0],
}

extern "C" {
    fn sb_free(p: *mut c_char);
    fn sb_dist_has_nccl() -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn sb_dist_init(
        backend: *const c_char,
        host: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        agent_store: c_int,
        timeout_ms: i64,
        prefix: *const c_char,
        out: *mut *mut SbGroup,
    ) -> *mut c_char;
    fn sb_dist_free(g: *mut SbGroup);
    fn sb_dist_allreduce_buckets(
        g: *mut SbGroup,
        ts: *const T,
        starts: *const i64,
        buckets: i64,
        scale: f64,
    ) -> *mut c_char;
    fn sb_dist_allreduce_sum(g: *mut SbGroup, t: T) -> *mut c_char;
    fn sb_dist_broadcast(g: *mut SbGroup, ts: *const T, n: i64, root: c_int) -> *mut c_char;
    fn sb_dist_allgather(g: *mut SbGroup, input: T, outputs: *const T, world: i64) -> *mut c_char;
    fn sb_dist_barrier(g: *mut SbGroup) -> *mut c_char;
    #[allow(clippy::too_many_arguments)]
    fn sb_dist_sync_batch_norm(
        g: *mut SbGroup,
        input: T,
        weight: T,
        bias: T,
        running_mean: T,
        running_var: T,
        eps: f64,
        momentum: f64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn sb_dist_take_error() -> *mut c_char;
}

/// The collective engine (`--dist-backend`): NCCL for CUDA tensors, Gloo for CPU tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    Gloo,
    Nccl,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }

    /// PyTorch's default: NCCL for a CUDA device, Gloo otherwise.
    pub fn default_for(device: Device) -> Backend {
        if device.is_cuda() {
            Backend::Nccl
        } else {
            Backend::Gloo
        }
    }

    /// Whether this build can make the backend (NCCL needs `nccl.h` and the CUDA headers at build time).
    pub fn available(self) -> bool {
        match self {
            Backend::Gloo => true,
            // SAFETY: a constant query of the shim.
            Backend::Nccl => (unsafe { sb_dist_has_nccl() }) != 0,
        }
    }
}

/// A process group of `world_size` processes, this one being `rank`.
pub struct ProcessGroup {
    ptr: Mutex<*mut SbGroup>,
    rank: usize,
    world_size: usize,
    backend: Backend,
    /// Where the group's own small tensors (sums, lengths) live: the CPU for Gloo, the CUDA device for NCCL.
    device: Device,
    timeout: Duration,
}

// SAFETY: the c10d backend may be used from any thread; the pointer is only dereferenced under the mutex.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProcessGroup({} rank {}/{})", self.backend.name(), self.rank, self.world_size)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut().unwrap_or_else(|e| e.into_inner());
        // SAFETY: made by sb_dist_init, freed once.
        unsafe { sb_dist_free(p) };
    }
}

fn ptrs(ts: &[Tensor]) -> Vec<T> {
    ts.iter().map(|t| t.as_ptr()).collect()
}

impl ProcessGroup {
    /// Joins the job `env` describes: the rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 hosts the store
    /// unless torchrun's agent does), then the backend. Every rank must arrive within `timeout`.
    pub fn connect(env: &DistEnv, backend: Backend, device: Device, timeout: Duration) -> Result<ProcessGroup> {
        if !backend.available() {
            bail!("--dist-backend nccl: this build has no NCCL (nccl.h and the CUDA headers were not found when it was compiled); use --dist-backend gloo");
        }
        if backend == Backend::Nccl && !device.is_cuda() {
            bail!("--dist-backend nccl needs a CUDA device (this rank runs on the CPU); use --dist-backend gloo");
        }
        let host = CString::new(env.master_addr.clone())?;
        let name = CString::new(backend.name())?;
        // PyTorch's env:// default group: keys under "default_pg/0/" (torchrun makes a new store per attempt).
        let prefix = CString::new("default_pg/0/")?;
        let mut ptr: *mut SbGroup = std::ptr::null_mut();
        // SAFETY: valid C strings and out pointer; errors come back as messages.
        let err = unsafe {
            sb_dist_init(
                name.as_ptr(),
                host.as_ptr(),
                c_int::from(env.master_port),
                env.rank as c_int,
                env.world_size as c_int,
                c_int::from(env.agent_store),
                timeout.as_millis() as i64,
                prefix.as_ptr(),
                &mut ptr,
            )
        };
        let what = format!(
            "rank {}/{}: cannot join the process group at {}:{} ({}, timeout {:.0} s)",
            env.rank,
            env.world_size,
            env.master_addr,
            env.master_port,
            backend.name(),
            timeout.as_secs_f64()
        );
        check(err, &what)?;
        let device = if backend == Backend::Nccl { device } else { Device::Cpu };
        Ok(ProcessGroup { ptr: Mutex::new(ptr), rank: env.rank, world_size: env.world_size, backend, device, timeout })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }
    pub fn world_size(&self) -> usize {
        self.world_size
    }
    pub fn backend(&self) -> Backend {
        self.backend
    }
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// This rank's shard of the training data.
    pub fn shard(&self) -> super::Shard {
        super::Shard::train(self.rank, self.world_size)
    }

    /// This rank's part of an evaluation (every sample once).
    pub fn eval_shard(&self) -> super::Shard {
        super::Shard::eval(self.rank, self.world_size)
    }

    fn call(&self, what: &str, f: impl FnOnce(*mut SbGroup) -> *mut c_char) -> Result<()> {
        let guard = self.ptr.lock().unwrap_or_else(|e| e.into_inner());
        let err = f(*guard);
        check(
            err,
            &format!("rank {}/{}: {what} failed (a peer ended or stopped answering)", self.rank, self.world_size),
        )
    }

    /// Averages `tensors` across the ranks in place, `buckets` of them at a time flattened into one buffer
    /// each (the boundaries: bucket b is `tensors[starts[b]..starts[b + 1]]`); every bucket is sent
    /// before the first is waited for.
    pub fn allreduce_mean_buckets(&self, tensors: &[Tensor], starts: &[i64]) -> Result<()> {
        if starts.len() < 2 {
            return Ok(());
        }
        let p = ptrs(tensors);
        let scale = 1.0 / self.world_size as f64;
        // SAFETY: live tensors; `starts` indexes into them (checked by the reducer).
        self.call("all-reduce", |g| unsafe {
            sb_dist_allreduce_buckets(g, p.as_ptr(), starts.as_ptr(), starts.len() as i64 - 1, scale)
        })
    }

    /// Sums `t` across the ranks in place (it must live on the group's device).
    pub fn allreduce_sum(&self, t: &Tensor) -> Result<()> {
        // SAFETY: a live tensor.
        self.call("all-reduce", |g| unsafe { sb_dist_allreduce_sum(g, t.as_ptr()) })
    }

    /// The sums across the ranks of `values` (float64).
    pub fn sum_f64(&self, values: &[f64]) -> Result<Vec<f64>> {
        let t = Tensor::from_slice(values).to_device(self.device);
        self.allreduce_sum(&t)?;
        Ok(Vec::<f64>::try_from(t.to_device(Device::Cpu))?)
    }

    /// Overwrites `tensors` with rank `root`'s values.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<()> {
        let p = ptrs(tensors);
        // SAFETY: live tensors.
        self.call("broadcast", |g| unsafe { sb_dist_broadcast(g, p.as_ptr(), p.len() as i64, root as c_int) })
    }

    /// Every rank's `bytes`, in rank order (lengths may differ).
    pub fn allgather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let lens = self.allgather_tensor(&Tensor::from_slice(&[bytes.len() as i64]).to_device(self.device))?;
        let lens: Vec<usize> = lens.iter().map(|t| i64::try_from(t).map(|n| n as usize)).collect::<Result<_, _>>()?;
        let longest = lens.iter().copied().max().unwrap_or(0).max(1);
        let mut padded = bytes.to_vec();
        padded.resize(longest, 0);
        let parts = self.allgather_tensor(&Tensor::from_slice(&padded).to_device(self.device))?;
        parts.iter().zip(lens).map(|(t, n)| Ok(Vec::<u8>::try_from(t.to_device(Device::Cpu))?[..n].to_vec())).collect()
    }

    /// Every rank's `t` (same shape and kind everywhere), in rank order.
    fn allgather_tensor(&self, t: &Tensor) -> Result<Vec<Tensor>> {
        let outs: Vec<Tensor> = (0..self.world_size).map(|_| t.empty_like()).collect();
        let p = ptrs(&outs);
        // SAFETY: live tensors, one output per rank.
        self.call("all-gather", |g| unsafe { sb_dist_allgather(g, t.as_ptr(), p.as_ptr(), p.len() as i64) })?;
        Ok(outs)
    }

    /// Batch norm in training mode with the statistics of every rank's batch (see [`super::sync_bn`]).
    #[allow(clippy::too_many_arguments)]
    pub fn sync_batch_norm(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f64,
        momentum: f64,
    ) -> Result<Tensor> {
        let mut out: *mut C_tensor = std::ptr::null_mut();
        // SAFETY: live tensors; one out-parameter, a new tensor on success.
        self.call("synchronised batch norm", |g| unsafe {
            sb_dist_sync_batch_norm(
                g,
                xs.as_ptr(),
                weight.as_ptr(),
                bias.as_ptr(),
                running_mean.as_ptr(),
                running_var.as_ptr(),
                eps,
                momentum,
                &mut out,
            )
        })?;
        // SAFETY: the shim allocated a new at::Tensor for us.
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    /// The first error a collective inside the autograd graph kept since the last call.
    pub fn take_deferred_error(&self) -> Result<()> {
        // SAFETY: a query of the shim's error slot.
        check(unsafe { sb_dist_take_error() }, &format!("rank {}/{}", self.rank, self.world_size))
    }

    /// Waits for every rank.
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: the group is live.
        self.call("barrier", |g| unsafe { sb_dist_barrier(g) })
    }

    /// Turns one rank's failure into every rank's: each contributes whether `result` is an error; a rank
    /// whose own step succeeded but a peer's failed gets "rank r failed: see its error". The failing rank
    /// keeps its own error.
    pub fn agree<R>(&self, result: Result<R>) -> Result<R> {
        let mine = f64::from(result.is_err());
        let flags = Tensor::zeros([self.world_size as i64], (Kind::Double, self.device));
        let _ = flags.get(self.rank as i64).fill_(mine);
        let agreed = self.allreduce_sum(&flags);
        let result = result?;
        agreed?;
        let flags = Vec::<f64>::try_from(flags.to_device(Device::Cpu))?;
        if let Some(r) = flags.iter().position(|&f| f > 0.0) {
            bail!("rank {}/{}: stopping because rank {r} failed (see its error)", self.rank, self.world_size);
        }
        Ok(result)
    }
}

/// The shim's error message (NULL: success) as a one-line `Result`.
fn check(err: *mut c_char, what: &str) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string malloc'd by the shim, freed once here.
    let message = unsafe { CStr::from_ptr(err) }.to_string_lossy().to_string();
    unsafe { sb_free(err) };
    // c10d's messages carry C++ backtraces and "Exception raised from …" lines: the first line says it.
    let first = message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown error");
    Err(anyhow!("{what}: {first}"))
}

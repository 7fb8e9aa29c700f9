//! TorchScript by tracing: a closure over the network's forward (eval mode, no autograd) recorded by
//! libtorch's tracer, weights captured as constants.

use anyhow::{Context, Result};
use std::path::Path;
use tch::{CModule, Tensor};

/// Traces `forward` on `example` (the network's weights must not require gradients: freeze the
/// variable store first) into a TorchScript module whose `forward` returns the tensors `forward` does.
pub fn trace(example: &Tensor, mut forward: impl FnMut(&Tensor) -> Vec<Tensor>) -> Result<CModule> {
    tch::no_grad(|| {
        CModule::create_by_tracing("skipblock", "forward", std::slice::from_ref(example), &mut |xs| forward(&xs[0]))
    })
    .context("tracing the network")
}

/// Traces `forward` (see [`trace`]) and saves the module to `path`.
pub fn trace_to_file(example: &Tensor, forward: impl FnMut(&Tensor) -> Vec<Tensor>, path: &Path) -> Result<()> {
    let module = trace(example, forward)?;
    module.save(path).with_context(|| format!("cannot write TorchScript to '{}'", path.display()))
}

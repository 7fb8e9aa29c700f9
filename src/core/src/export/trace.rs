//! TorchScript by tracing: a closure over the network's forward (eval mode, no autograd) recorded by
//! libtorch's tracer, weights captured as constants, saved as a module whose `forward` returns one
//! tensor or a tuple of them. The calls are tch's (`CModule::create_by_tracing`) made through the shim
//! (`shim/jit_graph.cpp`), which packs several outputs into a tuple so that the module can be saved.

use anyhow::{anyhow, Context, Result};
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn sb_free(p: *mut c_char);
    fn sb_trace_begin(inputs: *const *const C_tensor, n: i64, out: *mut *mut c_void) -> *mut c_char;
    fn sb_trace_end(module: *mut c_void, outputs: *const *const C_tensor, n: i64, path: *const c_char) -> *mut c_char;
}

fn check(err: *mut c_char, what: &str) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a NUL-terminated string malloc'd by the shim, freed once here.
    let message = unsafe { CStr::from_ptr(err) }.to_string_lossy().lines().next().unwrap_or("").to_string();
    unsafe { sb_free(err) };
    Err(anyhow!("{what}: {message}"))
}

/// Traces `forward` on `example` and saves the TorchScript module to `path`. The network's weights must
/// not require gradients (freeze the variable store first): they become constants of the graph.
pub fn trace_to_file(example: &Tensor, mut forward: impl FnMut(&Tensor) -> Vec<Tensor>, path: &Path) -> Result<()> {
    let c_path = CString::new(path.to_string_lossy().as_bytes()).context("a path with a NUL byte")?;
    let inputs = [example.as_ptr()];
    let mut module = std::ptr::null_mut();
    // SAFETY: one live input tensor; the shim returns a new module pointer it frees in `sb_trace_end`.
    check(unsafe { sb_trace_begin(inputs.as_ptr(), 1, &mut module) }, "tracing the network")?;
    let outputs = tch::no_grad(|| forward(example));
    let ptrs: Vec<*const C_tensor> = outputs.iter().map(|t| t.as_ptr()).collect();
    // SAFETY: the module from `sb_trace_begin` (consumed here), live output tensors, a NUL-terminated path.
    check(
        unsafe { sb_trace_end(module, ptrs.as_ptr(), ptrs.len() as i64, c_path.as_ptr()) },
        &format!("cannot write TorchScript to '{}'", path.display()),
    )
}

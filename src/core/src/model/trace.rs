//! Layer tracing: while a trace is active on this thread, every convolution and linear layer of our
//! models reports its name, shapes, parameter count and multiply-adds, and (optionally) its output.
//! `model summary` (counting from the real layer shapes of a forward pass) and `model variance` (the
//! per-layer feature variances of the paper's Table 5) are built on it. Inactive, it costs one
//! thread-local read per layer.

use std::cell::RefCell;
use tch::Tensor;

/// One layer as seen during a traced forward pass.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerRecord {
    pub name: String,
    /// `conv` (k×k, groups) or `linear`.
    pub kind: String,
    pub input: Vec<i64>,
    pub output: Vec<i64>,
    pub params: i64,
    /// Multiply-adds for the traced batch (conv: out elements · in/groups · k·k; linear: in · out).
    pub macs: i64,
}

#[derive(Default)]
struct Trace {
    records: Vec<LayerRecord>,
    keep_outputs: bool,
    outputs: Vec<Tensor>,
}

thread_local! {
    static TRACE: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

/// Runs `f` with tracing on; returns its result, the records and (when `keep_outputs`) the outputs of
/// every recorded layer, in execution order. For a conv layer the output is after its BN and activation.
pub fn traced<R>(keep_outputs: bool, f: impl FnOnce() -> R) -> (R, Vec<LayerRecord>, Vec<Tensor>) {
    TRACE.with(|t| *t.borrow_mut() = Some(Trace { keep_outputs, ..Default::default() }));
    let result = f();
    let trace = TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default();
    (result, trace.records, trace.outputs)
}

pub fn active() -> bool {
    TRACE.with(|t| t.borrow().is_some())
}

/// Called by layers; `macs_per_output` is the multiply-adds for one output element.
pub fn record(name: &str, kind: &str, input: &Tensor, output: &Tensor, params: i64, macs_per_output: i64) {
    TRACE.with(|t| {
        if let Some(trace) = t.borrow_mut().as_mut() {
            let out_numel: i64 = output.size().iter().product();
            trace.records.push(LayerRecord {
                name: name.to_string(),
                kind: kind.to_string(),
                input: input.size(),
                output: output.size(),
                params,
                macs: out_numel * macs_per_output,
            });
            if trace.keep_outputs {
                trace.outputs.push(output.detach());
            }
        }
    })
}

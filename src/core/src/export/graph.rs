//! The TorchScript graph of a traced model as the ONNX lowering reads it: the C++ shim
//! (`shim/jit_graph.cpp`) loads the file, freezes it (eval mode), inlines, propagates constants and
//! removes dead code, then hands over every node (kind, inputs, outputs with their traced shapes,
//! constant values; tensor constants as tensors).

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn sb_free(p: *mut c_char);
    fn sb_jit_graph(
        path: *const c_char,
        example: *const C_tensor,
        json_out: *mut *mut c_char,
        tensors_out: *mut *mut *mut C_tensor,
        ntensors: *mut i64,
    ) -> *mut c_char;
}

/// One value of the graph: its id, and the shape and dtype the trace recorded (tensors only).
#[derive(Debug, Clone, Deserialize)]
pub struct Value {
    pub id: u64,
    pub shape: Option<Vec<i64>>,
    pub dtype: Option<String>,
    /// The TorchScript type (`Tensor`, `int`, `int[]`, …).
    #[serde(rename = "type")]
    pub ty: String,
}

/// A constant's value (`prim::Constant`); tensors index [`Graph::tensors`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Constant {
    None(bool),
    Tensor(usize),
    Bool(bool),
    Int(i64),
    Float(serde_json::Value),
    Ints(Vec<i64>),
    Floats(Vec<serde_json::Value>),
    Bools(Vec<bool>),
    String(String),
    Device(String),
    Other(String),
}

/// One node: `aten::conv2d`, `prim::Constant`, `prim::ListConstruct`, …
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    pub kind: String,
    pub inputs: Vec<u64>,
    pub outputs: Vec<Value>,
    pub value: Option<Constant>,
    /// Sub-blocks (control flow): a traced model has none.
    pub blocks: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct GraphJson {
    inputs: Vec<Value>,
    outputs: Vec<Value>,
    nodes: Vec<Node>,
}

/// A frozen TorchScript graph, its nodes in execution order.
#[derive(Debug)]
pub struct Graph {
    pub inputs: Vec<Value>,
    pub outputs: Vec<Value>,
    pub nodes: Vec<Node>,
    /// The tensor constants (weights, priors, …).
    pub tensors: Vec<Tensor>,
}

/// A JSON number, or the strings `nan` / `inf` / `-inf` the shim writes for those.
pub fn float_of(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        serde_json::Value::String(s) if s == "inf" => f64::INFINITY,
        serde_json::Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => f64::NAN,
    }
}

impl Graph {
    /// Reads the `forward` graph of the TorchScript file `path`, with the shapes its values take for the
    /// input `example`.
    pub fn load(path: &Path, example: &Tensor) -> Result<Graph> {
        let c_path = CString::new(path.to_string_lossy().as_bytes()).context("a path with a NUL byte")?;
        let (mut json, mut tensors, mut n) = (std::ptr::null_mut(), std::ptr::null_mut(), 0i64);
        // SAFETY: a NUL-terminated path, a live tensor and three out-parameters on the stack.
        let err = unsafe { sb_jit_graph(c_path.as_ptr(), example.as_ptr(), &mut json, &mut tensors, &mut n) };
        if !err.is_null() {
            // SAFETY: a NUL-terminated string malloc'd by the shim, freed once here.
            let message = unsafe { CStr::from_ptr(err) }.to_string_lossy().lines().next().unwrap_or("").to_string();
            unsafe { sb_free(err) };
            return Err(anyhow!("cannot read the TorchScript graph of '{}': {message}", path.display()));
        }
        // SAFETY: on success `json` is a malloc'd NUL-terminated string and `tensors` a malloc'd array of
        // `n` new `at::Tensor*` that we now own.
        let text = unsafe { CStr::from_ptr(json) }.to_string_lossy().into_owned();
        let owned: Vec<Tensor> =
            (0..n as usize).map(|i| unsafe { Tensor::from_ptr(*tensors.add(i)) }).collect::<Vec<_>>();
        unsafe {
            sb_free(json);
            sb_free(tensors as *mut c_char);
        }
        let g: GraphJson = serde_json::from_str(&text).context("the shim's graph description")?;
        Ok(Graph { inputs: g.inputs, outputs: g.outputs, nodes: g.nodes, tensors: owned })
    }

    /// The distinct node kinds, sorted (what `export` must lower).
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.nodes.iter().map(|n| n.kind.clone()).collect();
        k.sort();
        k.dedup();
        k
    }
}

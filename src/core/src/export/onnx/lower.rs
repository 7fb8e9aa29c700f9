//! TorchScript → ONNX, op by op: each node of the frozen graph ([`Graph`]) becomes ONNX nodes; tensor
//! constants become initializers. Exactly the aten ops our classifiers and detectors trace to are
//! supported ([`SUPPORTED`]); any other is a clear error naming it.
//!
//! With a dynamic batch the graph was traced at batch [`TRACE_BATCH`] and the batch dimension of every
//! reshape is written as `0` (ONNX Reshape: copy the input's dimension), so any batch size runs.

use super::proto::{attribute_type as at, data_type, AttributeProto, NodeProto, TensorProto};
use crate::export::graph::{float_of, Constant, Graph, Node, Value};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// The batch size a dynamic-batch export is traced at.
pub const TRACE_BATCH: i64 = 2;

/// The TorchScript ops the lowering handles (the union of what every architecture traces to).
pub const SUPPORTED: &[&str] = &[
    "aten::_convolution",
    "aten::conv2d",
    "aten::linear",
    "aten::matmul",
    "aten::adaptive_avg_pool2d",
    "aten::avg_pool2d",
    "aten::max_pool2d",
    "aten::batch_norm",
    "aten::add",
    "aten::add_",
    "aten::sub",
    "aten::mul",
    "aten::div",
    "aten::neg",
    "aten::exp",
    "aten::relu",
    "aten::relu_",
    "aten::relu6",
    "aten::hardtanh",
    "aten::hardswish",
    "aten::hardsigmoid",
    "aten::sigmoid",
    "aten::clamp",
    "aten::softmax",
    "aten::view",
    "aten::reshape",
    "aten::flatten",
    "aten::contiguous",
    "aten::to",
    "aten::dropout",
    "aten::transpose",
    "aten::permute",
    "aten::chunk",
    "aten::narrow",
    "aten::slice",
    "aten::select",
    "aten::cat",
    "aten::unsqueeze",
    "aten::mean",
    "prim::Constant",
    "prim::ListConstruct",
    "prim::ListUnpack",
];

/// What a TorchScript value is during lowering.
#[derive(Debug, Clone)]
enum Val {
    /// An ONNX tensor by name, with its traced shape.
    T(String, Option<Vec<i64>>),
    /// A tensor constant not yet written (index into the graph's tensors).
    C(usize),
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
    Ints(Vec<i64>),
    Floats,
    /// A list of values (`prim::ListConstruct`, or a split's outputs).
    List(Vec<Val>),
    /// Another value, by id (the tensors of a `prim::ListConstruct`).
    Ref(u64),
    /// Strings and devices: arguments that do not change the computation.
    Other,
}

/// The ONNX graph being built.
pub struct Lowered {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    /// Names of the graph outputs, in the TorchScript graph's order.
    pub outputs: Vec<String>,
}

struct Ctx<'a> {
    graph: &'a Graph,
    vals: HashMap<u64, Val>,
    written: HashMap<usize, String>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    next: usize,
    dynamic: bool,
    opset: i64,
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: at::INT, i, ..Default::default() }
}
fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: at::INTS, ints: ints.to_vec(), ..Default::default() }
}
fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: at::FLOAT, f, ..Default::default() }
}

/// A float32 or int64 tensor as an initializer named `name`.
pub fn tensor_proto(name: &str, t: &Tensor) -> Result<TensorProto> {
    let t = t.to_device(tch::Device::Cpu).contiguous();
    let (data_type, raw_data) = match t.kind() {
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16 => {
            let v = Vec::<f32>::try_from(t.to_kind(Kind::Float).reshape([-1]))?;
            (data_type::FLOAT, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8 => {
            let v = Vec::<i64>::try_from(t.to_kind(Kind::Int64).reshape([-1]))?;
            (data_type::INT64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        Kind::Bool => {
            let v = Vec::<bool>::try_from(t.reshape([-1]))?;
            (data_type::BOOL, v.iter().map(|&b| u8::from(b)).collect())
        }
        k => bail!("a {k:?} tensor constant cannot be written to ONNX"),
    };
    Ok(TensorProto { dims: t.size(), data_type, name: name.into(), raw_data })
}

impl<'a> Ctx<'a> {
    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    fn node(&mut self, op: &str, inputs: Vec<String>, outputs: Vec<String>, attrs: Vec<AttributeProto>) {
        let name = format!("{op}_{}", self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs,
            output: outputs,
            name,
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// One ONNX node with one new output; returns its name.
    fn op(&mut self, op: &str, inputs: Vec<String>, attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.node(op, inputs, vec![out.clone()], attrs);
        out
    }

    fn init_i64(&mut self, v: &[i64], scalar: bool) -> String {
        let name = self.fresh("const");
        let dims = if scalar { vec![] } else { vec![v.len() as i64] };
        self.inits.push(TensorProto {
            dims,
            data_type: data_type::INT64,
            name: name.clone(),
            raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        });
        name
    }

    fn init_f32(&mut self, v: f32) -> String {
        let name = self.fresh("const");
        self.inits.push(TensorProto {
            dims: vec![],
            data_type: data_type::FLOAT,
            name: name.clone(),
            raw_data: v.to_le_bytes().to_vec(),
        });
        name
    }

    fn val(&self, id: u64) -> Result<&Val> {
        self.vals.get(&id).with_context(|| format!("value %{id} used before it is defined"))
    }

    /// The ONNX name of a tensor input (a constant is written as an initializer on first use; a number
    /// becomes a scalar of `like`'s dtype).
    fn tensor(&mut self, id: u64, float: bool) -> Result<String> {
        match self.val(id)?.clone() {
            Val::T(name, _) => Ok(name),
            Val::C(i) => {
                if let Some(n) = self.written.get(&i) {
                    return Ok(n.clone());
                }
                let name = format!("w{i}");
                self.inits.push(tensor_proto(&name, &self.graph.tensors[i])?);
                self.written.insert(i, name.clone());
                Ok(name)
            }
            Val::Ref(id) => self.tensor(id, float),
            Val::Int(v) if !float => Ok(self.init_i64(&[v], true)),
            Val::Int(v) => Ok(self.init_f32(v as f32)),
            Val::Float(v) => Ok(self.init_f32(v as f32)),
            other => bail!("expected a tensor, found {other:?}"),
        }
    }

    fn shape(&self, id: u64) -> Option<Vec<i64>> {
        match self.vals.get(&id) {
            Some(Val::T(_, s)) => s.clone(),
            Some(Val::C(i)) => Some(self.graph.tensors[*i].size()),
            _ => None,
        }
    }

    fn rank(&self, id: u64) -> Result<i64> {
        self.shape(id).map(|s| s.len() as i64).context("a tensor whose rank the trace did not record")
    }

    fn int(&self, id: u64) -> Result<i64> {
        match self.val(id)? {
            Val::Int(i) => Ok(*i),
            Val::Bool(b) => Ok(i64::from(*b)),
            other => bail!("expected a constant int, found {other:?}"),
        }
    }

    fn opt_int(&self, id: u64) -> Result<Option<i64>> {
        match self.val(id)? {
            Val::None => Ok(None),
            _ => self.int(id).map(Some),
        }
    }

    fn float(&self, id: u64) -> Result<Option<f64>> {
        match self.val(id)? {
            Val::None => Ok(None),
            Val::Int(i) => Ok(Some(*i as f64)),
            Val::Float(f) => Ok(Some(*f)),
            other => bail!("expected a constant number, found {other:?}"),
        }
    }

    fn boolean(&self, id: u64) -> Result<bool> {
        Ok(self.int(id)? != 0)
    }

    fn ints(&self, id: u64) -> Result<Vec<i64>> {
        match self.val(id)? {
            Val::Ints(v) => Ok(v.clone()),
            Val::Int(i) => Ok(vec![*i]),
            Val::List(items) => items
                .iter()
                .map(|v| match v {
                    Val::Int(i) => Ok(*i),
                    other => bail!("expected constant ints in a list, found {other:?}"),
                })
                .collect(),
            other => bail!("expected a constant int list, found {other:?}"),
        }
    }

    fn is_float(&self, id: u64) -> bool {
        match self.vals.get(&id) {
            Some(Val::C(i)) => self.graph.tensors[*i].is_floating_point(),
            Some(Val::Float(_)) => true,
            Some(Val::Int(_)) => false,
            _ => true,
        }
    }

    fn set(&mut self, v: &Value, name: String) {
        self.vals.insert(v.id, Val::T(name, v.shape.clone()));
    }

    /// A normalised axis of a tensor of rank `r`.
    fn axis(d: i64, r: i64) -> i64 {
        if d < 0 {
            d + r
        } else {
            d
        }
    }

    fn lower(&mut self, n: &Node) -> Result<()> {
        let i = &n.inputs;
        let out = &n.outputs;
        let arg = |k: usize| -> Result<u64> { i.get(k).copied().with_context(|| format!("missing input {k}")) };
        match n.kind.as_str() {
            "prim::Constant" => {
                let v = match n.value.as_ref().context("a constant without a value")? {
                    Constant::None(_) => Val::None,
                    Constant::Tensor(t) => Val::C(*t),
                    Constant::Bool(b) => Val::Bool(*b),
                    Constant::Int(x) => Val::Int(*x),
                    Constant::Float(f) => Val::Float(float_of(f)),
                    Constant::Ints(v) => Val::Ints(v.clone()),
                    Constant::Floats(_) => Val::Floats,
                    Constant::Bools(v) => Val::Ints(v.iter().map(|&b| i64::from(b)).collect()),
                    Constant::String(_) | Constant::Device(_) | Constant::Other(_) => Val::Other,
                };
                self.vals.insert(out[0].id, v);
            }
            "prim::ListConstruct" => {
                // Constant ints stay values (sizes, strides); anything else is kept by reference.
                let items = i
                    .iter()
                    .map(|&id| match self.val(id)? {
                        Val::Int(v) => Ok(Val::Int(*v)),
                        _ => Ok(Val::Ref(id)),
                    })
                    .collect::<Result<Vec<_>>>()?;
                self.vals.insert(out[0].id, Val::List(items));
            }
            "prim::ListUnpack" => {
                let Val::List(items) = self.val(arg(0)?)?.clone() else { bail!("ListUnpack of a non-list") };
                if items.len() != out.len() {
                    bail!("ListUnpack of {} values into {}", items.len(), out.len());
                }
                for (v, o) in items.into_iter().zip(out) {
                    let v = match v {
                        Val::Ref(id) => self.val(id)?.clone(),
                        v => v,
                    };
                    self.vals.insert(o.id, v);
                }
            }
            "aten::_convolution" | "aten::conv2d" => {
                let x = self.tensor(arg(0)?, true)?;
                let w_shape = self.shape(arg(1)?).context("a convolution weight of unknown shape")?;
                if w_shape.len() != 4 {
                    bail!("only 2-D convolutions are supported (weight of rank {})", w_shape.len());
                }
                let w = self.tensor(arg(1)?, true)?;
                let (stride, padding, dilation) = (self.ints(arg(3)?)?, self.ints(arg(4)?)?, self.ints(arg(5)?)?);
                let groups = if n.kind == "aten::conv2d" {
                    self.int(arg(6)?)?
                } else {
                    if self.boolean(arg(6)?)? {
                        bail!("transposed convolutions are not supported");
                    }
                    self.int(arg(8)?)?
                };
                let two = |v: &[i64]| if v.len() == 1 { vec![v[0], v[0]] } else { v.to_vec() };
                let (s, p, d) = (two(&stride), two(&padding), two(&dilation));
                let mut inputs = vec![x, w];
                if !matches!(self.val(arg(2)?)?, Val::None) {
                    inputs.push(self.tensor(arg(2)?, true)?);
                }
                let y = self.op(
                    "Conv",
                    inputs,
                    vec![
                        attr_ints("kernel_shape", &w_shape[2..]),
                        attr_ints("strides", &s),
                        attr_ints("pads", &[p[0], p[1], p[0], p[1]]),
                        attr_ints("dilations", &d),
                        attr_int("group", groups),
                    ],
                );
                self.set(&out[0], y);
            }
            "aten::linear" => {
                let x = self.tensor(arg(0)?, true)?;
                let w = self.tensor(arg(1)?, true)?;
                if self.rank(arg(0)?)? != 2 {
                    bail!("a linear layer on a tensor of rank {} (only 2-D inputs)", self.rank(arg(0)?)?);
                }
                let mut inputs = vec![x, w];
                if !matches!(self.val(arg(2)?)?, Val::None) {
                    inputs.push(self.tensor(arg(2)?, true)?);
                }
                let y = self.op("Gemm", inputs, vec![attr_int("transB", 1)]);
                self.set(&out[0], y);
            }
            "aten::matmul" => {
                let (a, b) = (self.tensor(arg(0)?, true)?, self.tensor(arg(1)?, true)?);
                let y = self.op("MatMul", vec![a, b], vec![]);
                self.set(&out[0], y);
            }
            "aten::adaptive_avg_pool2d" => {
                let x = self.tensor(arg(0)?, true)?;
                let shape = self.shape(arg(0)?).context("adaptive pooling of an input of unknown shape")?;
                let o = self.ints(arg(1)?)?;
                let o = if o.len() == 1 { vec![o[0], o[0]] } else { o };
                let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
                let y = if o == [1, 1] {
                    self.op("GlobalAveragePool", vec![x], vec![])
                } else if h % o[0] == 0 && w % o[1] == 0 {
                    let k = [h / o[0], w / o[1]];
                    self.op("AveragePool", vec![x], vec![attr_ints("kernel_shape", &k), attr_ints("strides", &k)])
                } else {
                    // Uneven windows (PyTorch: [floor(i·in/out), ceil((i+1)·in/out))): two matrix products
                    // with constant averaging matrices, Ph [oh, H] · X · Pwᵀ [W, ow].
                    let ph = pool_matrix(h, o[0]);
                    let pwt = pool_matrix(w, o[1]).transpose(0, 1).contiguous();
                    let (ph_name, pw_name) = (self.fresh("pool_h"), self.fresh("pool_w"));
                    self.inits.push(tensor_proto(&ph_name, &ph)?);
                    self.inits.push(tensor_proto(&pw_name, &pwt)?);
                    let xw = self.op("MatMul", vec![x, pw_name], vec![]);
                    self.op("MatMul", vec![ph_name, xw], vec![])
                };
                self.set(&out[0], y);
            }
            "aten::avg_pool2d" | "aten::max_pool2d" => {
                let x = self.tensor(arg(0)?, true)?;
                let two = |v: Vec<i64>| if v.len() == 1 { vec![v[0], v[0]] } else { v };
                let k = two(self.ints(arg(1)?)?);
                let s = self.ints(arg(2)?)?;
                let s = if s.is_empty() { k.clone() } else { two(s) };
                let p = two(self.ints(arg(3)?)?);
                let mut attrs = vec![
                    attr_ints("kernel_shape", &k),
                    attr_ints("strides", &s),
                    attr_ints("pads", &[p[0], p[1], p[0], p[1]]),
                ];
                let y = if n.kind == "aten::max_pool2d" {
                    let d = two(self.ints(arg(4)?)?);
                    attrs.push(attr_ints("dilations", &d));
                    attrs.push(attr_int("ceil_mode", self.int(arg(5)?)?));
                    self.op("MaxPool", vec![x], attrs)
                } else {
                    attrs.push(attr_int("ceil_mode", self.int(arg(4)?)?));
                    attrs.push(attr_int("count_include_pad", self.int(arg(5)?)?));
                    if self.opt_int(arg(6)?)?.is_some() {
                        bail!("avg_pool2d with a divisor_override is not supported");
                    }
                    self.op("AveragePool", vec![x], attrs)
                };
                self.set(&out[0], y);
            }
            "aten::batch_norm" => {
                let x = self.tensor(arg(0)?, true)?;
                let c = self.shape(arg(0)?).context("batch norm of unknown shape")?[1];
                let mut param = |k: usize, fill: f64| -> Result<String> {
                    let id = arg(k)?;
                    if matches!(self.val(id)?, Val::None) {
                        let name = self.fresh("bn");
                        self.inits
                            .push(tensor_proto(&name, &Tensor::full([c], fill, (Kind::Float, tch::Device::Cpu)))?);
                        Ok(name)
                    } else {
                        self.tensor(id, true)
                    }
                };
                let (w, b, m, v) = (param(1, 1.0)?, param(2, 0.0)?, param(3, 0.0)?, param(4, 1.0)?);
                if self.boolean(arg(5)?)? {
                    bail!("a batch norm in training mode");
                }
                let eps = self.float(arg(7)?)?.unwrap_or(1e-5) as f32;
                let y = self.op("BatchNormalization", vec![x, w, b, m, v], vec![attr_float("epsilon", eps)]);
                self.set(&out[0], y);
            }
            "aten::add" | "aten::add_" | "aten::sub" => {
                let float = self.is_float(arg(0)?) || self.is_float(arg(1)?);
                let a = self.tensor(arg(0)?, float)?;
                let mut b = self.tensor(arg(1)?, float)?;
                if let Some(alpha) = i.get(2).map(|&id| self.float(id)).transpose()?.flatten() {
                    if alpha != 1.0 {
                        let s = if float { self.init_f32(alpha as f32) } else { self.init_i64(&[alpha as i64], true) };
                        b = self.op("Mul", vec![b, s], vec![]);
                    }
                }
                let op = if n.kind == "aten::sub" { "Sub" } else { "Add" };
                let y = self.op(op, vec![a, b], vec![]);
                self.set(&out[0], y);
            }
            "aten::mul" | "aten::div" => {
                if n.kind == "aten::div" && i.len() > 2 && !matches!(self.val(arg(2)?)?, Val::None | Val::Other) {
                    bail!("division with a rounding mode is not supported");
                }
                let float = self.is_float(arg(0)?) || self.is_float(arg(1)?);
                let (a, b) = (self.tensor(arg(0)?, float)?, self.tensor(arg(1)?, float)?);
                let y = self.op(if n.kind == "aten::mul" { "Mul" } else { "Div" }, vec![a, b], vec![]);
                self.set(&out[0], y);
            }
            "aten::neg" | "aten::exp" | "aten::relu" | "aten::relu_" | "aten::sigmoid" | "aten::hardswish" => {
                let op = match n.kind.as_str() {
                    "aten::neg" => "Neg",
                    "aten::exp" => "Exp",
                    "aten::sigmoid" => "Sigmoid",
                    "aten::hardswish" => "HardSwish",
                    _ => "Relu",
                };
                let x = self.tensor(arg(0)?, true)?;
                let y = self.op(op, vec![x], vec![]);
                self.set(&out[0], y);
            }
            "aten::hardsigmoid" => {
                // PyTorch's relu6(x + 3) / 6 = max(0, min(1, x/6 + 1/2)).
                let x = self.tensor(arg(0)?, true)?;
                let y = self.op("HardSigmoid", vec![x], vec![attr_float("alpha", 1.0 / 6.0), attr_float("beta", 0.5)]);
                self.set(&out[0], y);
            }
            "aten::relu6" | "aten::hardtanh" | "aten::clamp" => {
                let x = self.tensor(arg(0)?, true)?;
                let (lo, hi) = match n.kind.as_str() {
                    "aten::relu6" => (Some(0.0), Some(6.0)),
                    _ => (self.float(arg(1)?)?, self.float(arg(2)?)?),
                };
                let lo = lo.map(|v| self.init_f32(v as f32)).unwrap_or_default();
                let hi = hi.map(|v| self.init_f32(v as f32)).unwrap_or_default();
                let y = self.op("Clip", vec![x, lo, hi], vec![]);
                self.set(&out[0], y);
            }
            "aten::softmax" => {
                let x = self.tensor(arg(0)?, true)?;
                let axis = self.int(arg(1)?)?;
                let y = self.op("Softmax", vec![x], vec![attr_int("axis", axis)]);
                self.set(&out[0], y);
            }
            "aten::view" | "aten::reshape" => {
                let x = self.tensor(arg(0)?, true)?;
                let mut shape = self.ints(arg(1)?)?;
                let in_shape = self.shape(arg(0)?);
                if self.dynamic
                    && shape.first() == Some(&TRACE_BATCH)
                    && in_shape.as_ref().and_then(|s| s.first()) == Some(&TRACE_BATCH)
                {
                    shape[0] = 0; // the input's batch, whatever it is
                }
                let s = self.init_i64(&shape, false);
                let y = self.op("Reshape", vec![x, s], vec![]);
                self.set(&out[0], y);
            }
            "aten::flatten" => {
                let x = self.tensor(arg(0)?, true)?;
                let r = self.rank(arg(0)?)?;
                let (start, end) = (Self::axis(self.int(arg(1)?)?, r), Self::axis(self.int(arg(2)?)?, r));
                let traced = self.shape(arg(0)?).context("flatten of unknown shape")?;
                let mut shape: Vec<i64> = vec![0; start as usize];
                shape.push(-1);
                shape.extend(&traced[(end + 1) as usize..]);
                let s = self.init_i64(&shape, false);
                let y = self.op("Reshape", vec![x, s], vec![]);
                self.set(&out[0], y);
            }
            "aten::contiguous" | "aten::dropout" => {
                if n.kind == "aten::dropout" && self.boolean(arg(2)?)? {
                    bail!("dropout in training mode");
                }
                let x = self.tensor(arg(0)?, true)?;
                self.set(&out[0], x);
            }
            "aten::to" => {
                // A dtype conversion (device arguments are irrelevant here): Cast to the traced dtype.
                let x = self.tensor(arg(0)?, true)?;
                let to = match out[0].dtype.as_deref() {
                    Some("Float") => data_type::FLOAT,
                    Some("Long") => data_type::INT64,
                    Some("Bool") => data_type::BOOL,
                    other => bail!("a conversion to {other:?} is not supported"),
                };
                let y = self.op("Cast", vec![x], vec![attr_int("to", to as i64)]);
                self.set(&out[0], y);
            }
            "aten::transpose" | "aten::permute" => {
                let x = self.tensor(arg(0)?, true)?;
                let r = self.rank(arg(0)?)?;
                let perm: Vec<i64> = if n.kind == "aten::permute" {
                    self.ints(arg(1)?)?.into_iter().map(|d| Self::axis(d, r)).collect()
                } else {
                    let (a, b) = (Self::axis(self.int(arg(1)?)?, r), Self::axis(self.int(arg(2)?)?, r));
                    let mut p: Vec<i64> = (0..r).collect();
                    p.swap(a as usize, b as usize);
                    p
                };
                let y = self.op("Transpose", vec![x], vec![attr_ints("perm", &perm)]);
                self.set(&out[0], y);
            }
            "aten::chunk" => {
                let x = self.tensor(arg(0)?, true)?;
                let shape = self.shape(arg(0)?).context("chunk of unknown shape")?;
                let (chunks, dim) = (self.int(arg(1)?)?, Self::axis(self.int(arg(2)?)?, shape.len() as i64));
                let size = shape[dim as usize];
                let each = (size + chunks - 1) / chunks;
                let sizes: Vec<i64> =
                    (0..chunks).map(|c| (size - c * each).clamp(0, each)).filter(|&s| s > 0).collect();
                let split = self.init_i64(&sizes, false);
                let names: Vec<String> = sizes.iter().map(|_| self.fresh("split")).collect();
                self.node("Split", vec![x, split], names.clone(), vec![attr_int("axis", dim)]);
                let mut part = shape.clone();
                let items = names
                    .into_iter()
                    .zip(&sizes)
                    .map(|(n, &s)| {
                        part[dim as usize] = s;
                        Val::T(n, Some(part.clone()))
                    })
                    .collect();
                self.vals.insert(out[0].id, Val::List(items));
            }
            "aten::narrow" | "aten::slice" => {
                let x = self.tensor(arg(0)?, true)?;
                let r = self.rank(arg(0)?)?;
                let dim = Self::axis(self.int(arg(1)?)?, r);
                let (start, end, step) = if n.kind == "aten::narrow" {
                    let s = self.int(arg(2)?)?;
                    (s, s + self.int(arg(3)?)?, 1)
                } else {
                    let s = self.opt_int(arg(2)?)?.unwrap_or(0);
                    (s, self.opt_int(arg(3)?)?.unwrap_or(i64::MAX), self.int(arg(4)?)?)
                };
                let (s, e, a, st) = (
                    self.init_i64(&[start], false),
                    self.init_i64(&[end], false),
                    self.init_i64(&[dim], false),
                    self.init_i64(&[step], false),
                );
                let y = self.op("Slice", vec![x, s, e, a, st], vec![]);
                self.set(&out[0], y);
            }
            "aten::select" => {
                let x = self.tensor(arg(0)?, true)?;
                let dim = Self::axis(self.int(arg(1)?)?, self.rank(arg(0)?)?);
                let idx = self.init_i64(&[self.int(arg(2)?)?], true);
                let y = self.op("Gather", vec![x, idx], vec![attr_int("axis", dim)]);
                self.set(&out[0], y);
            }
            "aten::cat" => {
                let Val::List(items) = self.val(arg(0)?)?.clone() else { bail!("cat of a non-list") };
                let ids = items
                    .iter()
                    .map(|v| match v {
                        Val::Ref(id) => Ok(*id),
                        other => bail!("cat of a list holding {other:?}"),
                    })
                    .collect::<Result<Vec<u64>>>()?;
                let r = self.rank(ids[0])?;
                let axis = Self::axis(self.int(arg(1)?)?, r);
                let inputs = ids.iter().map(|&id| self.tensor(id, true)).collect::<Result<Vec<_>>>()?;
                let y = self.op("Concat", inputs, vec![attr_int("axis", axis)]);
                self.set(&out[0], y);
            }
            "aten::unsqueeze" => {
                let x = self.tensor(arg(0)?, true)?;
                let dim = Self::axis(self.int(arg(1)?)?, self.rank(arg(0)?)? + 1);
                let axes = self.init_i64(&[dim], false);
                let y = self.op("Unsqueeze", vec![x, axes], vec![]);
                self.set(&out[0], y);
            }
            "aten::mean" => {
                let x = self.tensor(arg(0)?, true)?;
                let dims = self.ints(arg(1)?)?;
                let keep = self.int(arg(2)?)?;
                if i.len() > 3 && !matches!(self.val(arg(3)?)?, Val::None) {
                    bail!("mean with a dtype is not supported");
                }
                let y = if self.opset >= 18 {
                    let axes = self.init_i64(&dims, false);
                    self.op("ReduceMean", vec![x, axes], vec![attr_int("keepdims", keep)])
                } else {
                    self.op("ReduceMean", vec![x], vec![attr_ints("axes", &dims), attr_int("keepdims", keep)])
                };
                self.set(&out[0], y);
            }
            other => bail!("{other} has no ONNX lowering"),
        }
        Ok(())
    }
}

/// The `[out, n]` matrix of PyTorch's adaptive average pooling along one axis of length `n`.
fn pool_matrix(n: i64, out: i64) -> Tensor {
    let mut m = vec![0f32; (out * n) as usize];
    for i in 0..out {
        let (start, end) = ((i * n) / out, ((i + 1) * n + out - 1) / out);
        for j in start..end {
            m[(i * n + j) as usize] = 1.0 / (end - start) as f32;
        }
    }
    Tensor::from_slice(&m).reshape([out, n])
}

/// Lowers `graph` (its one tensor input named `input`); `dynamic`: the batch is symbolic (the graph was
/// traced at [`TRACE_BATCH`]). `what` names the model in errors.
pub fn lower(graph: &Graph, input: &str, dynamic: bool, opset: i64, what: &str) -> Result<Lowered> {
    if graph.inputs.len() != 1 {
        bail!("{what}: the traced graph has {} tensor inputs, expected one", graph.inputs.len());
    }
    let unsupported: Vec<&str> =
        graph.nodes.iter().map(|n| n.kind.as_str()).filter(|k| !SUPPORTED.contains(k)).collect();
    if let Some(op) = unsupported.first() {
        bail!("ONNX export of {what}: the op {op} is not supported (no ONNX lowering)");
    }
    if graph.nodes.iter().any(|n| n.blocks.unwrap_or(0) > 0) {
        bail!("ONNX export of {what}: the traced graph has control flow");
    }
    let mut cx = Ctx {
        graph,
        vals: HashMap::new(),
        written: HashMap::new(),
        nodes: Vec::new(),
        inits: Vec::new(),
        next: 0,
        dynamic,
        opset,
    };
    cx.vals.insert(graph.inputs[0].id, Val::T(input.to_string(), graph.inputs[0].shape.clone()));
    for node in &graph.nodes {
        cx.lower(node).with_context(|| format!("ONNX export of {what}: {}", node.kind))?;
    }
    let outputs = graph.outputs.iter().map(|o| cx.tensor(o.id, true)).collect::<Result<Vec<_>>>()?;
    Ok(Lowered { nodes: cx.nodes, initializers: cx.inits, outputs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn uneven_adaptive_pooling_is_two_products_with_the_averaging_matrices() {
        for (h, w, oh, ow) in [(150, 150, 38, 38), (7, 9, 3, 4), (5, 5, 5, 5)] {
            let x = Tensor::randn([2, 3, h, w], (Kind::Float, Device::Cpu));
            let expect = x.adaptive_avg_pool2d([oh, ow]);
            let got = pool_matrix(h, oh).matmul(&x.matmul(&pool_matrix(w, ow).transpose(0, 1)));
            let d = f64::try_from((expect - got).abs().max()).unwrap();
            assert!(d < 1e-5, "{h}x{w} -> {oh}x{ow}: {d}");
        }
    }

    #[test]
    fn an_op_without_lowering_is_named_with_the_model() {
        let value = |id| Value { id, shape: Some(vec![1, 3, 8, 8]), dtype: Some("Float".into()), ty: "Tensor".into() };
        let graph = Graph {
            inputs: vec![value(0)],
            outputs: vec![value(1)],
            nodes: vec![Node {
                kind: "aten::erfinv".into(),
                inputs: vec![0],
                outputs: vec![value(1)],
                value: None,
                blocks: None,
            }],
            tensors: Vec::new(),
        };
        let err = lower(&graph, "images", false, 17, "skipblocknet-m").err().unwrap().to_string();
        assert_eq!(err, "ONNX export of skipblocknet-m: the op aten::erfinv is not supported (no ONNX lowering)");
        // A supported graph: relu of the input.
        let graph = Graph {
            nodes: vec![Node {
                kind: "aten::relu".into(),
                inputs: vec![0],
                outputs: vec![value(1)],
                value: None,
                blocks: None,
            }],
            ..graph
        };
        let l = lower(&graph, "images", false, 17, "m").unwrap();
        assert_eq!((l.nodes.len(), l.nodes[0].op_type.as_str(), l.nodes[0].input[0].as_str()), (1, "Relu", "images"));
        assert_eq!(l.outputs, vec![l.nodes[0].output[0].clone()]);
    }

    #[test]
    fn tensor_constants_keep_their_values_and_dtype() {
        let t = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0]).reshape([2, 2]);
        let p = tensor_proto("w", &t).unwrap();
        assert_eq!((p.dims.clone(), p.data_type), (vec![2, 2], data_type::FLOAT));
        let back: Vec<f32> = p.raw_data.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(back, vec![1.5, -2.0, 3.25, 0.0]);
        let i = tensor_proto("i", &Tensor::from_slice(&[7i64, -1])).unwrap();
        assert_eq!((i.data_type, i.raw_data.len()), (data_type::INT64, 16));
        assert!(tensor_proto("c", &Tensor::zeros([2], (Kind::ComplexFloat, Device::Cpu))).is_err());
    }
}

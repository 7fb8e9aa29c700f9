//! ONNX written from Rust: the traced TorchScript graph ([`crate::export::graph`]) lowered op by op
//! ([`lower`]), optionally followed by `NonMaxSuppression` ([`nms`]), wrapped in a `ModelProto`
//! ([`proto`], `prost` types of `onnx.proto`) with the inputs, outputs, opset and metadata.

pub mod lower;
pub mod nms;
pub mod proto;

use crate::export::graph::Graph;
use anyhow::{bail, Result};
use prost::Message;
use proto::*;
use std::path::Path;

/// The opsets the writer supports: 14 (HardSwish) up to 21.
pub const OPSETS: std::ops::RangeInclusive<i64> = 14..=21;

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(i64),
    /// A named (symbolic) size: `batch`, `num_selected`.
    Named(String),
}

/// A graph input or output: name, element type (`proto::data_type`), shape.
#[derive(Debug, Clone)]
pub struct Io {
    pub name: String,
    pub elem_type: i32,
    pub shape: Vec<Dim>,
}

impl Io {
    fn proto(&self) -> ValueInfoProto {
        let dim = self
            .shape
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(n) => DimensionValue::DimValue(*n),
                    Dim::Named(s) => DimensionValue::DimParam(s.clone()),
                }),
            })
            .collect();
        ValueInfoProto {
            name: self.name.clone(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor { elem_type: self.elem_type, shape: Some(TensorShapeProto { dim }) }),
            }),
        }
    }

    /// `name [1, 3, 224, 224] float32`, for the export report.
    pub fn describe(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => n.to_string(),
                Dim::Named(s) => s.clone(),
            })
            .collect();
        let ty = match self.elem_type {
            data_type::INT64 => "int64",
            data_type::BOOL => "bool",
            _ => "float32",
        };
        format!("{} [{}] {ty}", self.name, dims.join(", "))
    }
}

/// The ONNX IR version to write for an opset (the oldest that has it, as the ONNX release table says).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// An ONNX model of `graph` (traced, see [`crate::export::trace`]): its one input named and shaped as
/// `input`, its outputs named as `outputs` (shapes and types from there too), then `post` (e.g.
/// [`nms::append`]) may add nodes and outputs; `metadata` goes to `metadata_props`.
pub struct ModelSpec<'a> {
    pub input: Io,
    pub outputs: Vec<Io>,
    pub dynamic: bool,
    pub opset: i64,
    pub metadata: Vec<(String, String)>,
    /// Names the model in errors (`skipblocknet-m`).
    pub what: &'a str,
}

/// The graph of a model being built: nodes, initializers and outputs, open to additions.
pub struct Built {
    pub lowered: lower::Lowered,
    pub outputs: Vec<Io>,
}

impl Built {
    /// Lowers `graph` per `spec`: the traced outputs renamed (Identity) to the spec's output names.
    pub fn new(graph: &Graph, spec: &ModelSpec) -> Result<Built> {
        if !OPSETS.contains(&spec.opset) {
            bail!("opset {} is not supported (ONNX opsets {}..={})", spec.opset, OPSETS.start(), OPSETS.end());
        }
        let mut lowered = lower::lower(graph, &spec.input.name, spec.dynamic, spec.opset, spec.what)?;
        if lowered.outputs.len() != spec.outputs.len() {
            bail!(
                "{}: the traced graph has {} outputs, expected {}",
                spec.what,
                lowered.outputs.len(),
                spec.outputs.len()
            );
        }
        for (i, io) in spec.outputs.iter().enumerate() {
            let from = std::mem::replace(&mut lowered.outputs[i], io.name.clone());
            lowered.nodes.push(NodeProto {
                input: vec![from],
                output: vec![io.name.clone()],
                name: format!("output_{}", io.name),
                op_type: "Identity".into(),
                ..Default::default()
            });
        }
        Ok(Built { lowered, outputs: spec.outputs.clone() })
    }

    /// The `ModelProto`.
    pub fn model(self, spec: &ModelSpec) -> ModelProto {
        let graph = GraphProto {
            node: self.lowered.nodes,
            name: spec.what.to_string(),
            initializer: self.lowered.initializers,
            input: vec![spec.input.proto()],
            output: self.outputs.iter().map(Io::proto).collect(),
            ..Default::default()
        };
        ModelProto {
            ir_version: ir_version(spec.opset),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: spec.opset }],
            producer_name: "skipblock".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(graph),
            metadata_props: spec
                .metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto { key: k.clone(), value: v.clone() })
                .collect(),
            ..Default::default()
        }
    }
}

/// Encodes `model` and writes it to `path` atomically; returns the size in bytes.
pub fn write(model: &ModelProto, path: &Path) -> Result<u64> {
    let bytes = model.encode_to_vec();
    crate::tensors::write_atomic(path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Reads an ONNX file back (tests, `bench export`).
pub fn read(path: &Path) -> Result<ModelProto> {
    use anyhow::Context;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    ModelProto::decode(bytes.as_slice()).with_context(|| format!("'{}' is not an ONNX model", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_round_trips_through_protobuf_with_symbolic_dims_and_metadata() {
        let io = Io {
            name: "images".into(),
            elem_type: data_type::FLOAT,
            shape: vec![Dim::Named("batch".into()), Dim::Fixed(3)],
        };
        assert_eq!(io.describe(), "images [batch, 3] float32");
        let model = ModelProto {
            ir_version: ir_version(17),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
            graph: Some(GraphProto { input: vec![io.proto()], ..Default::default() }),
            metadata_props: vec![StringStringEntryProto { key: "skipblock".into(), value: "{}".into() }],
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        let bytes = write(&model, &path).unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        let back = read(&path).unwrap();
        assert_eq!(back, model);
        let dims = &back.graph.unwrap().input[0].r#type.clone().unwrap().tensor_type.unwrap().shape.unwrap().dim;
        assert_eq!(dims[0].value, Some(DimensionValue::DimParam("batch".into())));
        assert_eq!((ir_version(14), ir_version(19), ir_version(21)), (8, 9, 10));
        assert!(read(&dir.path().join("missing.onnx")).unwrap_err().to_string().contains("missing.onnx"));
    }
}

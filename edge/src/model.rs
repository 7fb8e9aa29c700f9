//! An exported file loaded with tract: its metadata, its named outputs, batch-1 inference.

use crate::meta::{ExportMeta, Task, METADATA_KEY};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use tract_onnx::pb;
use tract_onnx::prelude::*;

type Plan = TypedSimplePlan<TypedModel>;

/// A runnable exported network.
pub struct EdgeModel {
    pub path: PathBuf,
    pub meta: ExportMeta,
    /// Output names, in the order [`EdgeModel::run`] returns them.
    pub outputs: Vec<String>,
    /// The input side S the network was built for (the metadata's unless overridden).
    side: u32,
    plan: Plan,
}

/// The protobuf of an ONNX file and its `skipblock` metadata, without building the network.
pub fn read_proto(path: &Path) -> Result<(pb::ModelProto, ExportMeta)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut bytes.as_slice())
        .map_err(|e| anyhow!("'{}' is not an ONNX file ({e})", path.display()))?;
    if proto.graph.is_none() {
        bail!("'{}' is not an ONNX file (no graph)", path.display());
    }
    let json = proto.metadata_props.iter().find(|p| p.key == METADATA_KEY).map(|p| p.value.clone());
    let Some(json) = json else {
        bail!(
            "'{}' has no skipblock metadata (metadata_props key \"{METADATA_KEY}\"): export it with `skipblock export`",
            path.display()
        );
    };
    let meta = ExportMeta::parse(&json, path)?;
    Ok((proto, meta))
}

/// The names of the graph's inputs (without initializers) and outputs.
pub fn io_names(proto: &pb::ModelProto) -> (Vec<String>, Vec<String>) {
    let Some(g) = proto.graph.as_ref() else { return (vec![], vec![]) };
    let inits: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs = g.input.iter().map(|i| i.name.clone()).filter(|n| !inits.contains(&n.as_str())).collect();
    (inputs, g.output.iter().map(|o| o.name.clone()).collect())
}

/// tract reads `NonMaxSuppression`'s `max_output_boxes_per_class`, `iou_threshold` and `score_threshold`
/// as 1-element 1-D tensors; ONNX also allows scalars (rank 0), which onnxruntime and PyTorch's exporter
/// write. Makes those constants (initializers or `Constant` nodes) `[1]`-shaped. Returns how many it changed.
pub fn nms_constants_to_1d(proto: &mut pb::ModelProto) -> usize {
    let Some(graph) = proto.graph.as_mut() else { return 0 };
    let names: Vec<String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "NonMaxSuppression")
        .flat_map(|n| n.input.iter().skip(2).filter(|s| !s.is_empty()).cloned())
        .collect();
    let mut changed = 0;
    for t in graph.initializer.iter_mut().filter(|t| names.contains(&t.name) && t.dims.is_empty()) {
        t.dims = vec![1];
        changed += 1;
    }
    for node in graph.node.iter_mut().filter(|n| n.op_type == "Constant" && n.output.iter().any(|o| names.contains(o)))
    {
        for attr in node.attribute.iter_mut().filter(|a| a.name == "value") {
            if let Some(t) = attr.t.as_mut().filter(|t| t.dims.is_empty()) {
                t.dims = vec![1];
                changed += 1;
            }
        }
    }
    changed
}

impl EdgeModel {
    /// Loads `path` for batch-1 inference at its metadata's input size, computing only `outputs` (all of
    /// the file's when `None`). The file must hold a `task` network.
    pub fn load(path: &Path, task: Option<Task>, outputs: Option<&[&str]>) -> Result<EdgeModel> {
        Self::load_sized(path, task, outputs, None)
    }

    /// [`EdgeModel::load`] at another input side than the metadata's (benchmarks; a network whose graph
    /// fixes its size fails to build).
    pub fn load_sized(
        path: &Path,
        task: Option<Task>,
        outputs: Option<&[&str]>,
        side: Option<u32>,
    ) -> Result<EdgeModel> {
        let (mut proto, meta) = read_proto(path)?;
        let side = side.unwrap_or(meta.input);
        if side == 0 {
            bail!("an input side of 0");
        }
        if let Some(task) = task.filter(|&t| t != meta.task) {
            bail!(
                "'{}' holds a {} network ({}), not a {task} one: use `skipblock-edge {}`",
                path.display(),
                meta.task,
                meta.arch,
                meta.task
            );
        }
        let (inputs, all_outputs) = io_names(&proto);
        if inputs != ["images"] {
            bail!("'{}' has inputs {inputs:?}; an exported file has one, \"images\"", path.display());
        }
        let outputs: Vec<String> = match outputs {
            Some(o) => o.iter().map(|s| s.to_string()).collect(),
            None => all_outputs.clone(),
        };
        if let Some(missing) = outputs.iter().find(|o| !all_outputs.contains(o)) {
            bail!("'{}' has no output \"{missing}\" (it has {all_outputs:?})", path.display());
        }
        nms_constants_to_1d(&mut proto);
        let build = || -> TractResult<Plan> {
            let s = side as usize;
            let mut model = tract_onnx::onnx().model_for_proto_model(&proto)?;
            model.set_input_fact(0, f32::fact([1, 3, s, s]).into())?;
            model.set_output_names(&outputs)?;
            model.into_optimized()?.into_runnable()
        };
        let plan = build().map_err(|e| anyhow!("cannot load the network of '{}': {e:#}", path.display()))?;
        Ok(EdgeModel { path: path.to_path_buf(), meta, outputs, side, plan })
    }

    /// The network's input side S.
    pub fn input_size(&self) -> u32 {
        self.side
    }

    /// Runs one normalised `3×S×S` input; the outputs in [`EdgeModel::outputs`]' order.
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<Tensor>> {
        let s = self.side as usize;
        if input.len() != 3 * s * s {
            bail!("an input of {} values for a 3x{s}x{s} network", input.len());
        }
        let x = Tensor::from_shape(&[1, 3, s, s], &input)?;
        let out =
            self.plan.run(tvec!(x.into())).map_err(|e| anyhow!("running '{}' failed: {e:#}", self.path.display()))?;
        Ok(out.into_iter().map(|v| v.into_tensor()).collect())
    }

    /// The output called `name`.
    pub fn output<'a>(&self, outs: &'a [Tensor], name: &str) -> Result<&'a Tensor> {
        self.outputs
            .iter()
            .position(|o| o == name)
            .and_then(|i| outs.get(i))
            .with_context(|| format!("'{}': no output \"{name}\" computed", self.path.display()))
    }
}

//! Export of a network for deployment (`skipblock export`): TorchScript by tracing ([`trace`]), ONNX
//! written from Rust ([`onnx`]: the traced graph read back through the C++ shim ([`graph`]) and lowered op
//! by op). The file contract (input `images`, outputs, metadata) is in `docs/export.md`.
//!
//! [`export`] is the one entry point: the caller (the CLI) builds the network, batch norms folded, and
//! passes a closure over its forward; this module traces it, writes the file atomically and reports.

pub mod graph;
pub mod onnx;
pub mod trace;

use crate::task::Task;
use anyhow::{bail, Context, Result};
use onnx::{proto::data_type, Dim, Io};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub use onnx::nms::NmsParams;

/// The file format of `skipblock export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ONNX (`.onnx`), written from Rust.
    Onnx,
    /// TorchScript (`.pt`, for LibTorch C++ / `torch.jit.load`) by tracing, with a `FILE.json` sidecar.
    Torchscript,
}

/// The batch dimension of the exported input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum BatchMode {
    /// A fixed batch of one image.
    #[serde(rename = "1")]
    #[value(name = "1")]
    One,
    /// A symbolic batch dimension named `batch` (ONNX only).
    #[serde(rename = "dynamic")]
    #[value(name = "dynamic")]
    Dynamic,
}

/// The `skipblock` metadata of an exported file (ONNX `metadata_props`, TorchScript sidecar JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportMeta {
    pub format_version: u32,
    pub task: Task,
    /// The architecture's name as `model list` prints it.
    pub arch: String,
    /// The network input side S (`[N, 3, S, S]`).
    pub input: i64,
    /// Classification preprocessing: shorter side, then centre crop (null for detectors).
    pub resize: Option<u32>,
    pub crop: Option<u32>,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// Classify: the K class names (or none when unknown); detect: the C−1 object classes.
    pub classes: Vec<String>,
    pub nms: Option<NmsParams>,
    pub batch: BatchMode,
    /// The ONNX opset (null for TorchScript).
    pub opset: Option<i64>,
}

/// The metadata key of [`ExportMeta`] in an ONNX file.
pub const META_KEY: &str = "skipblock";
/// The version of the file contract written.
pub const FORMAT_VERSION: u32 = 1;

/// One export: what to write and how.
pub struct ExportRequest<'a> {
    pub format: Format,
    pub out: &'a Path,
    pub meta: ExportMeta,
    /// The names of the traced closure's outputs (`logits`; `boxes`, `scores`).
    pub outputs: Vec<&'static str>,
    /// Detectors with `--nms`: the ONNX `NonMaxSuppression` tail over the `boxes` and `scores` outputs.
    pub nms: Option<NmsParams>,
    pub device: Device,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub file: PathBuf,
    /// The input side S.
    pub input_size: i64,
    pub bytes: u64,
    /// `name [dims] type` of each input and output.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The TorchScript sidecar (TorchScript only).
    pub sidecar: Option<PathBuf>,
    /// The distinct TorchScript ops lowered to ONNX (ONNX only).
    pub ops: Vec<String>,
    pub seconds: f64,
}

/// The sidecar JSON path of a TorchScript file: `FILE.json`.
pub fn sidecar_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// A temporary path next to `out` (same folder: the rename is atomic).
fn temp_next_to(out: &Path, tag: &str) -> Result<PathBuf> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder '{}'", dir.display()))?;
    let name = out.file_name().with_context(|| format!("'{}' is not a file path", out.display()))?;
    Ok(dir.join(format!(".{}.{tag}{}", name.to_string_lossy(), std::process::id())))
}

/// Traces `forward` (the network in eval mode, batch norms folded, weights not requiring gradients) and
/// writes `req.out` in `req.format`.
pub fn export(req: &ExportRequest, mut forward: impl FnMut(&Tensor) -> Vec<Tensor>) -> Result<ExportReport> {
    let start = std::time::Instant::now();
    let (format, dynamic) = (req.format, req.meta.batch == BatchMode::Dynamic);
    if format == Format::Torchscript && dynamic {
        bail!("--batch dynamic needs --format onnx: a traced TorchScript module keeps the batch it was traced at");
    }
    if format == Format::Torchscript && req.nms.is_some() {
        bail!("--nms needs --format onnx (it adds ONNX NonMaxSuppression)");
    }
    let s = req.meta.input;
    let batch = if dynamic { onnx::lower::TRACE_BATCH } else { 1 };
    tch::manual_seed(0);
    let example = Tensor::randn([batch, 3, s, s], (Kind::Float, req.device));
    let traced = tch::no_grad(|| forward(&example));
    if traced.len() != req.outputs.len() {
        bail!("the network gave {} outputs, expected {}", traced.len(), req.outputs.len());
    }
    let batch_dim = if dynamic { Dim::Named("batch".into()) } else { Dim::Fixed(1) };
    let input = Io {
        name: "images".into(),
        elem_type: data_type::FLOAT,
        shape: vec![batch_dim.clone(), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)],
    };
    let outputs: Vec<Io> = traced
        .iter()
        .zip(&req.outputs)
        .map(|(t, name)| Io {
            name: name.to_string(),
            elem_type: data_type::FLOAT,
            shape: t
                .size()
                .iter()
                .enumerate()
                .map(|(i, &d)| if i == 0 { batch_dim.clone() } else { Dim::Fixed(d) })
                .collect(),
        })
        .collect();
    let pt = temp_next_to(req.out, "pt")?;
    let written = trace::trace_to_file(&example, &mut forward, &pt);
    let result = written.and_then(|()| match format {
        Format::Torchscript => {
            let json = serde_json::to_string_pretty(&req.meta)?;
            let sidecar = sidecar_path(req.out);
            crate::tensors::write_atomic(&sidecar, json.as_bytes())?;
            std::fs::rename(&pt, req.out).with_context(|| format!("cannot write '{}'", req.out.display()))?;
            Ok((Some(sidecar), outputs.clone(), Vec::new()))
        }
        Format::Onnx => {
            let graph = graph::Graph::load(&pt, &example)?;
            let spec = onnx::ModelSpec {
                input: input.clone(),
                outputs: outputs.clone(),
                dynamic,
                opset: req.meta.opset.context("an ONNX export needs an opset")?,
                metadata: vec![(META_KEY.to_string(), serde_json::to_string(&req.meta)?)],
                what: &req.meta.arch,
            };
            let mut built = onnx::Built::new(&graph, &spec)?;
            if let Some(p) = req.nms {
                onnx::nms::append(&mut built, "boxes", "scores", p);
            }
            let all_outputs = built.outputs.clone();
            onnx::write(&built.model(&spec), req.out)?;
            Ok((None, all_outputs, graph.kinds()))
        }
    });
    if pt.exists() {
        let _ = std::fs::remove_file(&pt);
    }
    let (sidecar, outputs, ops) = result?;
    let bytes = std::fs::metadata(req.out).map(|m| m.len()).unwrap_or(0);
    Ok(ExportReport {
        file: req.out.to_path_buf(),
        input_size: s,
        bytes,
        inputs: vec![input.describe()],
        outputs: outputs.iter().map(Io::describe).collect(),
        sidecar,
        ops,
        seconds: start.elapsed().as_secs_f64(),
    })
}

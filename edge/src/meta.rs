//! The `skipblock` metadata of an exported file (docs/export.md): a JSON object in the ONNX
//! `metadata_props` entry [`METADATA_KEY`] telling the task, the preprocessing and the class names.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `metadata_props` key holding the JSON.
pub const METADATA_KEY: &str = "skipblock";
/// The contract version this binary reads.
pub const FORMAT_VERSION: u32 = 1;

/// What an exported network does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classify,
    Detect,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Classify => "classify",
            Task::Detect => "detect",
        })
    }
}

/// The batch dimension of the file's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Batch {
    /// `[1, 3, S, S]`.
    #[serde(rename = "1")]
    One,
    /// `[batch, 3, S, S]`, a symbolic batch.
    #[serde(rename = "dynamic")]
    Dynamic,
}

/// The thresholds baked into a detector's `NonMaxSuppression` node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NmsMeta {
    pub score_threshold: f32,
    pub iou_threshold: f32,
    pub max_det: usize,
}

/// The metadata JSON (field names and order as in the contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportMeta {
    pub format_version: u32,
    pub task: Task,
    /// The architecture's name as `skipblock model list` prints it.
    pub arch: String,
    /// The network's input side S (`[N, 3, S, S]`).
    pub input: u32,
    /// Classifiers: the shorter side before the centre crop.
    pub resize: Option<u32>,
    /// Classifiers: the centre crop (= `input`).
    pub crop: Option<u32>,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// Classifiers: the K class names (or none); detectors: the object classes, background excluded.
    pub classes: Vec<String>,
    /// Detectors with a `selected` output: its baked thresholds.
    pub nms: Option<NmsMeta>,
    pub batch: Batch,
    pub opset: i64,
}

impl ExportMeta {
    /// Parses the JSON of `file`'s metadata entry, checking the version and the geometry.
    pub fn parse(json: &str, file: &Path) -> Result<ExportMeta> {
        let meta: ExportMeta = serde_json::from_str(json)
            .with_context(|| format!("'{}': the \"{METADATA_KEY}\" metadata is not valid", file.display()))?;
        if meta.format_version != FORMAT_VERSION {
            bail!(
                "'{}' has skipblock metadata format_version {}; this skipblock-edge reads version {FORMAT_VERSION}",
                file.display(),
                meta.format_version
            );
        }
        if meta.input == 0 || meta.std.contains(&0.0) {
            bail!("'{}': the skipblock metadata has input {} and std {:?}", file.display(), meta.input, meta.std);
        }
        if meta.task == Task::Classify && meta.crop.is_some_and(|c| c != meta.input) {
            bail!("'{}': the metadata's crop {:?} differs from its input {}", file.display(), meta.crop, meta.input);
        }
        Ok(meta)
    }

    /// A classifier's (shorter side, crop): the metadata's, the crop defaulting to the input and the
    /// shorter side to the release's ratio 256/224 of it.
    pub fn classify_geometry(&self) -> (u32, u32) {
        let crop = self.crop.unwrap_or(self.input);
        let resize = self.resize.unwrap_or_else(|| (crop as f64 * 256.0 / 224.0).round() as u32);
        (resize, crop)
    }

    /// The object class names of a detector, or a classifier's class names.
    pub fn class_name(&self, index: usize) -> Option<&str> {
        self.classes.get(index).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"format_version":1,"task":"detect","arch":"ssdlite-skipblocknet-s","input":300,
        "resize":null,"crop":null,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225],"classes":["cat","dog"],
        "nms":{"score_threshold":0.25,"iou_threshold":0.45,"max_det":100},"batch":"dynamic","opset":17}"#;

    #[test]
    fn the_contract_json_parses_and_round_trips() {
        let m = ExportMeta::parse(JSON, Path::new("x.onnx")).unwrap();
        assert_eq!(m.task, Task::Detect);
        assert_eq!(m.batch, Batch::Dynamic);
        assert_eq!(m.nms.unwrap().max_det, 100);
        assert_eq!(m.class_name(1), Some("dog"));
        let back: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(back["batch"], "dynamic");
        assert_eq!(back["task"], "detect");
        assert_eq!(ExportMeta::parse(&back.to_string(), Path::new("x.onnx")).unwrap(), m);
    }

    #[test]
    fn wrong_versions_and_shapes_are_errors_naming_the_file() {
        let v2 = JSON.replace("\"format_version\":1", "\"format_version\":2");
        let err = format!("{:#}", ExportMeta::parse(&v2, Path::new("m.onnx")).unwrap_err());
        assert!(err.contains("m.onnx") && err.contains("format_version 2"), "{err}");
        let bad = JSON.replace("\"task\":\"detect\"", "\"task\":\"segment\"");
        let err = format!("{:#}", ExportMeta::parse(&bad, Path::new("m.onnx")).unwrap_err());
        assert!(err.contains("m.onnx"), "{err}");
        let cls = JSON.replace("\"task\":\"detect\"", "\"task\":\"classify\"").replace("\"crop\":null", "\"crop\":224");
        assert!(ExportMeta::parse(&cls, Path::new("m.onnx")).is_err());
        let cls = cls.replace("\"crop\":224", "\"crop\":300");
        let m = ExportMeta::parse(&cls, Path::new("m.onnx")).unwrap();
        assert_eq!(m.classify_geometry(), (343, 300));
    }
}

//! Model checkpoints: a `.safetensors` file holding the weights (and BN statistics) of a `VarStore`,
//! with a [`CheckpointMeta`] record embedded in its metadata and also written beside it as a JSON
//! sidecar (`model.safetensors` → `model.json`) for people and tools. Both files are written atomically,
//! so a crash mid-save leaves the previous checkpoint intact. The embedded copy is authoritative; the
//! sidecar is read only for a weights file that has no embedded record (e.g. one converted elsewhere).

use crate::model::{Arch, BlockOptions, Stem};
use crate::task::Task;
use crate::tensors::{self, AssignReport};
use crate::train::EpochRecord;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

const META_KEY: &str = "skipblock";

/// Everything needed to rebuild the model a checkpoint belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CheckpointMeta {
    /// The architecture, as `skipblock model summary --arch` names it (`skipblocknet-m`, …).
    pub arch: Arch,
    /// The pipeline (always the architecture's: checked when the record is read).
    pub task: Task,
    /// The input stem of a model-zoo classifier (`imagenet` or `cifar`; always `imagenet` for
    /// SkipblockNet and MobileNetV3, and for records written before stems existed).
    pub stem: Stem,
    /// Batch-norm settings the blocks were built with (`bn_eps` matters at inference).
    pub block: BlockOptions,
    pub num_classes: usize,
    /// Class names in output order (may be empty when unknown, e.g. imported weights).
    pub class_names: Vec<String>,
    /// Square input size the model was trained for.
    pub input_size: usize,
    /// Epochs completed when saved.
    pub epoch: usize,
    /// The effective recipe (TOML text) the weights were trained with, if any.
    pub config: Option<String>,
    /// The record of the epoch the weights are from (training checkpoints).
    pub metrics: Option<EpochRecord>,
    /// Architecture details beyond `arch` (a detector's `[ssd]` section), free-form.
    pub model: serde_json::Value,
    /// skipblock version that wrote the file.
    pub skipblock_version: String,
}

impl Default for CheckpointMeta {
    fn default() -> Self {
        CheckpointMeta {
            arch: Arch::SkipblocknetM,
            task: Task::Classify,
            stem: Stem::Imagenet,
            block: BlockOptions::default(),
            num_classes: 0,
            class_names: Vec::new(),
            input_size: 224,
            epoch: 0,
            config: None,
            metrics: None,
            model: serde_json::Value::Null,
            skipblock_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// `a/b/model.safetensors` → `a/b/model.json`.
pub fn sidecar_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// Saves the variables of `vs` and `meta` (atomically, both files).
pub fn save(vs: &VarStore, path: &Path, meta: &CheckpointMeta) -> Result<()> {
    let meta_json = serde_json::to_string_pretty(meta)?;
    let mut named: Vec<(String, tch::Tensor)> = vs.variables().into_iter().map(|(k, v)| (k, v.detach())).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = BTreeMap::from([(META_KEY.to_string(), meta_json.clone())]);
    tensors::write_safetensors(path, &named, &metadata)?;
    tensors::write_atomic(&sidecar_path(path), meta_json.as_bytes())
}

impl CheckpointMeta {
    /// A fresh record for a model of `arch` (the task follows from it) with its standard stem.
    pub fn new(arch: Arch, num_classes: usize, block: BlockOptions) -> Self {
        CheckpointMeta { arch, task: arch.task(), stem: arch.stems()[0], block, num_classes, ..Default::default() }
    }

    /// Checks that the checkpoint at `path` holds a model for `task`.
    pub fn expect_task(&self, task: Task, path: &Path) -> Result<()> {
        if self.task != task {
            bail!("'{}' holds a {} model ({}), not a {task} one", path.display(), self.task, self.arch);
        }
        Ok(())
    }
}

/// Reads the record of a checkpoint: embedded in a `.safetensors` file, or from its sidecar.
pub fn load_meta(path: &Path) -> Result<CheckpointMeta> {
    let meta = read_meta(path)?;
    if meta.task != meta.arch.task() {
        bail!(
            "checkpoint '{}': its record says task {} for a {} architecture ({})",
            path.display(),
            meta.task,
            meta.arch.task(),
            meta.arch
        );
    }
    Ok(meta)
}

fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    if !path.exists() {
        return Err(anyhow!("checkpoint '{}' does not exist", path.display()));
    }
    if !tensors::is_pytorch_file(path) {
        let (_, metadata) = tensors::read_safetensors(path)?;
        if let Some(json) = metadata.get(META_KEY) {
            return serde_json::from_str(json)
                .with_context(|| format!("checkpoint '{}': unreadable embedded record", path.display()));
        }
    }
    let sidecar = sidecar_path(path);
    let text = std::fs::read_to_string(&sidecar).with_context(|| {
        format!(
            "checkpoint '{}' has no skipblock record and no sidecar '{}': pass --arch (and --classes)",
            path.display(),
            sidecar.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("cannot parse '{}'", sidecar.display()))
}

/// Loads weights (`.safetensors` or a PyTorch state dict) into `vs`. Strict: every variable must be
/// present with its shape, and no extra name may appear (BN's `num_batches_tracked` is ignored).
pub fn load_weights(vs: &VarStore, path: &Path) -> Result<AssignReport> {
    let named = tensors::read_named_tensors(path)?;
    tensors::assign(vs, named, true).with_context(|| format!("weights '{}' do not fit the model", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, nn::ModuleT, Device, Kind, Tensor};

    fn model(vs: &VarStore) -> nn::SequentialT {
        nn::seq_t().add(nn::linear(vs.root() / "a", 3, 5, Default::default())).add(nn::batch_norm1d(
            vs.root() / "bn",
            5,
            Default::default(),
        ))
    }

    #[test]
    fn save_and_load_round_trip_rebuilds_the_same_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/x/last.safetensors");
        let vs = VarStore::new(Device::Cpu);
        let m = model(&vs);
        // Give BN non-trivial running statistics.
        let _ = m.forward_t(&Tensor::randn([8, 3], (Kind::Float, Device::Cpu)), true);
        let meta = CheckpointMeta {
            arch: Arch::Resnet18,
            stem: Stem::Cifar,
            block: BlockOptions { bn_momentum: 0.01, bn_eps: 1e-3 },
            num_classes: 5,
            class_names: vec!["a".into(), "b".into()],
            epoch: 3,
            config: Some("[train]\nlr = 0.1\n".into()),
            ..Default::default()
        };
        save(&vs, &path, &meta).unwrap();
        assert!(sidecar_path(&path).exists());
        assert_eq!(load_meta(&path).unwrap(), meta);

        let vs2 = VarStore::new(Device::Cpu);
        let m2 = model(&vs2);
        let report = load_weights(&vs2, &path).unwrap();
        assert!(report.is_exact());
        let x = Tensor::randn([4, 3], (Kind::Float, Device::Cpu));
        let (y1, y2) = (m.forward_t(&x, false), m2.forward_t(&x, false));
        assert!(y1.allclose(&y2, 1e-6, 1e-6, false), "running stats and weights restored");
    }

    #[test]
    fn a_record_whose_task_contradicts_its_architecture_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let vs = VarStore::new(Device::Cpu);
        let _ = model(&vs);
        let meta = CheckpointMeta { arch: Arch::SsdliteSkipblocknetS, task: Task::Classify, ..Default::default() };
        save(&vs, &path, &meta).unwrap();
        let err = load_meta(&path).unwrap_err().to_string();
        assert!(err.contains("m.safetensors") && err.contains("ssdlite-skipblocknet-s"), "{err}");
        let meta = CheckpointMeta::new(Arch::SsdliteSkipblocknetS, 3, BlockOptions::default());
        save(&vs, &path, &meta).unwrap();
        let back = load_meta(&path).unwrap();
        assert_eq!(back.task, Task::Detect);
        assert!(back.expect_task(Task::Classify, &path).unwrap_err().to_string().contains("detect"));
    }

    #[test]
    fn missing_checkpoint_is_a_clear_error() {
        let err = load_meta(Path::new("/nope/m.safetensors")).unwrap_err().to_string();
        assert!(err.contains("/nope/m.safetensors"), "{err}");
    }
}

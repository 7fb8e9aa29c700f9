//! Building a model from an architecture name, and from a checkpoint (ours or the authors' `.pth`).

use super::{by_name, BlockOptions, SkipblockNet};
use crate::checkpoint::{self, CheckpointMeta};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{nn::VarStore, Device};

/// A classifier ready to run: its variables, the network and its record.
pub struct LoadedClassifier {
    pub vs: VarStore,
    pub net: SkipblockNet,
    pub meta: CheckpointMeta,
}

/// A freshly initialised classifier.
pub fn new_classifier(arch: &str, num_classes: i64, device: Device, opts: BlockOptions) -> Result<(VarStore, SkipblockNet)> {
    let config = by_name(arch)?;
    let vs = VarStore::new(device);
    let net = SkipblockNet::new(&vs.root(), &config, num_classes, opts);
    Ok((vs, net))
}

/// Loads a classifier checkpoint: a `.safetensors` of ours (its record names the architecture and
/// classes) or a PyTorch state dict with the authors' key names (then `arch` is required; the class
/// count is read off `classifier.3.weight`). `arch`/`num_classes` given with a checkpoint that has a
/// record must agree with it.
pub fn load_classifier(weights: &Path, arch: Option<&str>, device: Device) -> Result<LoadedClassifier> {
    let meta = match checkpoint::load_meta(weights) {
        Ok(meta) => {
            if let Some(a) = arch {
                if !a.eq_ignore_ascii_case(&meta.arch) {
                    bail!("'{}' holds a {} model, not {a}", weights.display(), meta.arch);
                }
            }
            meta
        }
        Err(e) => {
            let Some(arch) = arch else { return Err(e) };
            let named = crate::tensors::read_named_tensors(weights)?;
            let classes = named
                .iter()
                .find(|(k, _)| k == "classifier.3.weight")
                .map(|(_, t)| t.size()[0] as usize)
                .with_context(|| format!("'{}' has no classifier.3.weight: not a classifier state dict", weights.display()))?;
            CheckpointMeta { arch: arch.to_ascii_lowercase(), num_classes: classes, ..Default::default() }
        }
    };
    if meta.task != "classify" {
        bail!("'{}' is a {} checkpoint, not a classifier", weights.display(), meta.task);
    }
    let (vs, net) = new_classifier(&meta.arch, meta.num_classes as i64, device, BlockOptions::default())?;
    checkpoint::load_weights(&vs, weights)?;
    Ok(LoadedClassifier { vs, net, meta })
}

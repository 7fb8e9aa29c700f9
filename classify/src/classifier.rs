//! A classifier ready to run, as [`skipblock_detect::Detector`]'s twin: built from a checkpoint (ours, or
//! the authors' `.pth` with its architecture named), batch norms folded, images in, top-k classes out
//! with the preprocessing the checkpoint was trained with.

use crate::recipe::eval_geometry;
use anyhow::{bail, Context, Result};
use skipblock_core::checkpoint::{self, CheckpointMeta};
use skipblock_core::model::{build_classifier, Arch, BlockOptions, ClassifierNet, NetOptions};
use skipblock_core::{tensors, Task};
use skipblock_data::transforms::{eval_preprocess, network_input, ChwImage};
use skipblock_data::RgbImage;
use std::path::Path;
use tch::{nn::VarStore, Device, Kind, Tensor};

pub use skipblock_pixels::predictions::TopK;

pub struct Classifier {
    pub vs: VarStore,
    pub net: Box<dyn ClassifierNet>,
    pub meta: CheckpointMeta,
    pub device: Device,
    /// Shorter side before the centre crop, and the crop (the network's input size).
    pub resize: u32,
    pub crop: u32,
}

/// A freshly initialised classifier network of `arch` (with its standard stem) in a new variable store.
pub fn build(
    arch: Arch,
    num_classes: usize,
    device: Device,
    block: BlockOptions,
) -> Result<(VarStore, Box<dyn ClassifierNet>)> {
    build_with(arch, num_classes, device, NetOptions::standard(arch, block))
}

/// A freshly initialised classifier network of `arch` built with `opts` in a new variable store.
pub fn build_with(
    arch: Arch,
    num_classes: usize,
    device: Device,
    opts: NetOptions,
) -> Result<(VarStore, Box<dyn ClassifierNet>)> {
    let arch = arch.expect(Task::Classify, "--arch")?;
    let vs = VarStore::new(device);
    let net = build_classifier(&vs.root(), arch, num_classes as i64, opts)?;
    Ok((vs, net))
}

/// The record of a classifier checkpoint: ours (embedded or sidecar), or, for a PyTorch state dict
/// without one, made from `arch` (with its standard stem) and the class count read off the head's
/// weight ([`Arch::head_prefix`]: `classifier.3.weight`, `fc.weight`, …). An `arch` given with a
/// checkpoint that has a record must agree with it.
pub fn classifier_meta(weights: &Path, arch: Option<Arch>) -> Result<CheckpointMeta> {
    let meta = match checkpoint::load_meta(weights) {
        Ok(meta) => {
            if let Some(a) = arch.filter(|&a| a != meta.arch) {
                bail!("'{}' holds a {} model, not {a}", weights.display(), meta.arch);
            }
            meta
        }
        Err(e) => {
            let Some(arch) = arch else { return Err(e) };
            let arch = arch.expect(Task::Classify, "--arch")?;
            let named = tensors::read_named_tensors(weights)?;
            let head = format!("{}weight", arch.head_prefix());
            let classes =
                named.iter().find(|(k, _)| *k == head).map(|(_, t)| t.size()[0] as usize).with_context(|| {
                    format!("'{}' has no {head}: not a {arch} classifier state dict", weights.display())
                })?;
            CheckpointMeta::new(arch.expect(Task::Classify, "--arch")?, classes, BlockOptions::default())
        }
    };
    meta.expect_task(Task::Classify, weights)?;
    Ok(meta)
}

impl Classifier {
    /// Loads a checkpoint (see [`classifier_meta`]) with the block options it was trained with. The
    /// weights stay as trained (no folding): call [`Classifier::fuse_bn`] before running it.
    pub fn load(weights: &Path, arch: Option<Arch>, device: Device) -> Result<Classifier> {
        let meta = classifier_meta(weights, arch)?;
        let opts = NetOptions { block: meta.block, stem: meta.stem, dropout: None };
        let (vs, net) = build_with(meta.arch, meta.num_classes, device, opts)?;
        checkpoint::load_weights(&vs, weights)?;
        let (crop, ratio) = eval_geometry(&meta);
        let resize = (crop as f64 * ratio).round() as u32;
        Ok(Classifier { vs, net, meta, device, resize, crop })
    }

    /// Folds every batch norm into its convolution (inference only).
    pub fn fuse_bn(&mut self) -> &mut Self {
        self.net.fuse_bn();
        self
    }

    /// Overrides the evaluation preprocessing: the crop (the shorter side keeps its ratio to it) and/or
    /// the shorter side.
    pub fn with_geometry(mut self, resize: Option<u32>, crop: Option<u32>) -> Self {
        let ratio = self.resize as f64 / self.crop.max(1) as f64;
        if let Some(c) = crop {
            self.crop = c;
            self.resize = (c as f64 * ratio).round() as u32;
        }
        if let Some(r) = resize {
            self.resize = r;
        }
        self
    }

    /// An image prepared on the host: shorter side to `resize`, centre crop `crop`, `3×crop×crop`
    /// ([`Classifier::input`] normalises a batch of them on the device).
    pub fn preprocess(&self, img: &RgbImage) -> ChwImage {
        eval_preprocess(img, self.resize, self.crop)
    }

    /// The network input `[B, 3, crop, crop]` on the device of preprocessed images, normalised there.
    pub fn input(&self, inputs: &[ChwImage]) -> Result<Tensor> {
        network_input(inputs, self.device)
    }

    /// Class probabilities `[B, classes]` of a batch of preprocessed images.
    pub fn probabilities(&self, inputs: &[ChwImage]) -> Result<Tensor> {
        let xs = self.input(inputs)?;
        Ok(tch::no_grad(|| self.net.forward_t(&xs, false).logits.softmax(-1, Kind::Float)))
    }

    /// The `k` most likely classes of each preprocessed image.
    pub fn predict(&self, inputs: &[ChwImage], k: usize) -> Result<Vec<TopK>> {
        if k == 0 {
            bail!("top-k needs k >= 1");
        }
        let k = k.min(self.meta.num_classes) as i64;
        let (p, i) = self.probabilities(inputs)?.topk(k, -1, true, true);
        let (p, i) = (p.to_kind(Kind::Double).to_device(Device::Cpu), i.to_device(Device::Cpu));
        (0..inputs.len() as i64)
            .map(|row| {
                let classes = Vec::<i64>::try_from(i.get(row))?;
                Ok(TopK {
                    names: classes.iter().map(|&c| self.meta.class_names.get(c as usize).cloned()).collect(),
                    probabilities: Vec::<f64>::try_from(p.get(row))?,
                    classes,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_rebuilt_with_the_block_options_it_was_trained_with() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xs.safetensors");
        // A large bn_eps changes every eval-mode output (the last-conv features are compared: the random head's
        // logits are tiny): loading with the default 1e-5 would not match.
        let block = BlockOptions { bn_momentum: 0.5, bn_eps: 0.5 };
        let (vs, net) = build(Arch::SkipblocknetXs, 3, Device::Cpu, block).unwrap();
        // Training passes (momentum 0.5) give every batch norm the statistics of the data, so eval-mode
        // activations keep their scale through the network.
        for _ in 0..8 {
            let _ = net.forward_t(&Tensor::randn([8, 3, 64, 64], (Kind::Float, Device::Cpu)), true);
        }
        checkpoint::save(&vs, &path, &CheckpointMeta::new(Arch::SkipblocknetXs, 3, block)).unwrap();
        let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let expect = tch::no_grad(|| net.forward_t(&x, false).features);
        let mut loaded = Classifier::load(&path, None, Device::Cpu).unwrap();
        assert_eq!(loaded.meta.block, block);
        let got = tch::no_grad(|| loaded.net.forward_t(&x, false).features);
        assert!(f64::try_from((&expect - &got).abs().max()).unwrap() < 1e-6);
        loaded.fuse_bn();
        let fused = tch::no_grad(|| loaded.net.forward_t(&x, false).features);
        assert!(f64::try_from((&expect - &fused).abs().max()).unwrap() < 1e-3, "folding uses the stored eps too");
        // The same weights rebuilt with the default eps give other outputs.
        let (vs2, net2) = build(Arch::SkipblocknetXs, 3, Device::Cpu, BlockOptions::default()).unwrap();
        checkpoint::load_weights(&vs2, &path).unwrap();
        let other = tch::no_grad(|| net2.forward_t(&x, false).features);
        let d = f64::try_from((&expect - &other).abs().max()).unwrap();
        let m = f64::try_from(expect.abs().max()).unwrap();
        assert!(d > 1e-2, "{d} of {m}");
        // A detector checkpoint is refused with a clear error.
        let det = dir.path().join("det.safetensors");
        checkpoint::save(&vs, &det, &CheckpointMeta::new(Arch::SsdliteSkipblocknetXs, 3, block)).unwrap();
        let err = Classifier::load(&det, None, Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("det.safetensors") && err.contains("detect"), "{err}");
    }
}

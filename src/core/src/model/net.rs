//! The classifier-network abstraction: every classification architecture (SkipblockNet, MobileNetV3 and
//! the model zoo) behind one trait, built by name with [`build_classifier`]. Classification training,
//! evaluation, prediction, `model summary`/`variance`/`import` and the benchmarks use only this.

use super::arch::Source;
use super::arch::{Arch, Stem};
use super::layers::BlockOptions;
use super::skipblocknet::{Output, SkipblockNet};
use super::{release, zoo};
use crate::task::Task;
use anyhow::{bail, Result};
use tch::{nn, Tensor};

/// A classification network: logits plus the last-conv features the bias loss needs.
pub trait ClassifierNet: std::fmt::Debug + Send {
    /// Architecture, stem, class count and whether the backbone is frozen.
    fn info(&self) -> NetInfo;
    fn arch(&self) -> Arch {
        self.info().arch
    }
    /// The input stem it was built with (`imagenet` for SkipblockNet and MobileNetV3).
    fn stem(&self) -> Stem {
        self.info().stem
    }
    fn num_classes(&self) -> i64 {
        self.info().num_classes
    }
    /// Logits and the feature map (b×c×h×w, before pooling) the bias loss takes: see
    /// [`ClassifierNet::features_name`].
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output;
    /// Folds batch norms into the convolutions before them, for inference (a no-op where no batch norm
    /// follows a convolution, e.g. DenseNet's pre-activation layers and SqueezeNet).
    fn fuse_bn(&mut self);
    /// A frozen backbone runs in eval mode even in training passes (its batch norms keep their
    /// statistics); the head still trains.
    fn set_frozen(&mut self, frozen: bool);
    /// Variable-name prefixes of everything but the classifier head (what fine-tuning may freeze).
    fn backbone_prefixes(&self) -> Vec<String>;
    /// The layer whose output is [`Output::features`] (`conv.0`, `layer4`, `features.norm5`, …).
    fn features_name(&self) -> &'static str;
}

/// What a classifier is: architecture, stem and class count, and whether its backbone is frozen (see
/// [`ClassifierNet::set_frozen`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetInfo {
    pub arch: Arch,
    pub stem: Stem,
    pub num_classes: i64,
    pub frozen: bool,
}

impl NetInfo {
    /// A network not frozen.
    pub fn new(arch: Arch, stem: Stem, num_classes: i64) -> Self {
        NetInfo { arch, stem, num_classes, frozen: false }
    }
}

/// How to build a classifier beyond its architecture and class count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetOptions {
    pub block: BlockOptions,
    pub stem: Stem,
    /// Dropout before the last layer; `None` = the architecture's own (0.2 for SkipblockNet, MobileNetV3
    /// and MobileNetV2, 0.5 for SqueezeNet, none for the others).
    pub dropout: Option<f64>,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions { block: BlockOptions::default(), stem: Stem::Imagenet, dropout: None }
    }
}

impl NetOptions {
    /// `block` and the architecture's standard stem (`cifar` for the CIFAR-only DenseNet).
    pub fn standard(arch: Arch, block: BlockOptions) -> Self {
        NetOptions { block, stem: arch.stems()[0], dropout: None }
    }
}

/// A freshly initialised classifier of `arch` with `num_classes` outputs under `p`.
pub fn build_classifier(
    p: &nn::Path,
    arch: Arch,
    num_classes: i64,
    opts: NetOptions,
) -> Result<Box<dyn ClassifierNet>> {
    let arch = arch.expect(Task::Classify, "architecture")?;
    if num_classes < 1 {
        bail!("{arch}: a classifier needs at least one class (got {num_classes})");
    }
    arch.resolve_stem(Some(opts.stem), 0)?; // the architecture must have the stem
    if let Some(config) = arch.net_config() {
        let config = match opts.dropout {
            Some(dropout) => super::NetConfig { dropout, ..config },
            None => config,
        };
        return Ok(Box::new(SkipblockNet::new(p, &config, num_classes, opts.block)));
    }
    if arch.source() == Source::Release {
        return Ok(Box::new(ReleaseNet::new(p, arch, num_classes, opts.block)?));
    }
    zoo::build(p, arch, num_classes, opts)
}

/// One of the authors' CIFAR-100 release networks ([`super::release`]).
#[derive(Debug)]
enum ReleaseModel {
    Resnet18(Box<release::ResNet18>),
    Densenet121(Box<release::DenseNet121>),
    Shufflenetv2(Box<release::ShuffleNetV2>),
}

/// The release networks behind [`ClassifierNet`]. Their classifier is one linear layer, without dropout:
/// a frozen backbone is the whole network in eval mode.
#[derive(Debug)]
pub struct ReleaseNet {
    info: NetInfo,
    model: ReleaseModel,
}

impl ReleaseNet {
    pub fn new(p: &nn::Path, arch: Arch, num_classes: i64, block: BlockOptions) -> Result<Self> {
        let model = match arch {
            Arch::ReleaseResnet18 => ReleaseModel::Resnet18(Box::new(release::ResNet18::new(p, num_classes, block))),
            Arch::ReleaseDensenet121 => {
                ReleaseModel::Densenet121(Box::new(release::DenseNet121::new(p, num_classes, block)))
            }
            Arch::ReleaseShufflenetv2 => {
                ReleaseModel::Shufflenetv2(Box::new(release::ShuffleNetV2::new(p, num_classes, block)))
            }
            _ => bail!("{arch} is not one of the authors' release networks"),
        };
        Ok(ReleaseNet { info: NetInfo::new(arch, Stem::Cifar, num_classes), model })
    }
}

impl ClassifierNet for ReleaseNet {
    fn info(&self) -> NetInfo {
        self.info
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let train = train && !self.info.frozen;
        match &self.model {
            ReleaseModel::Resnet18(m) => m.forward_t(xs, train),
            ReleaseModel::Densenet121(m) => m.forward_t(xs, train),
            ReleaseModel::Shufflenetv2(m) => m.forward_t(xs, train),
        }
    }
    fn fuse_bn(&mut self) {
        match &mut self.model {
            ReleaseModel::Resnet18(m) => m.fuse_bn(),
            ReleaseModel::Densenet121(m) => m.fuse_bn(),
            ReleaseModel::Shufflenetv2(m) => m.fuse_bn(),
        }
    }
    fn set_frozen(&mut self, frozen: bool) {
        self.info.frozen = frozen;
    }
    fn backbone_prefixes(&self) -> Vec<String> {
        let prefixes: &[&str] = match self.model {
            ReleaseModel::Resnet18(_) => &["conv1.", "conv2_x.", "conv3_x.", "conv4_x.", "conv5_x."],
            ReleaseModel::Densenet121(_) => &["conv1.", "features."],
            ReleaseModel::Shufflenetv2(_) => &["pre.", "stage2.", "stage3.", "stage4.", "conv5."],
        };
        prefixes.iter().map(|p| p.to_string()).collect()
    }
    fn features_name(&self) -> &'static str {
        match self.model {
            ReleaseModel::Resnet18(_) => "conv5_x",
            ReleaseModel::Densenet121(_) => "features.bn",
            ReleaseModel::Shufflenetv2(_) => "conv5",
        }
    }
}

impl ClassifierNet for SkipblockNet {
    fn info(&self) -> NetInfo {
        NetInfo { arch: self.config.arch, stem: Stem::Imagenet, num_classes: self.num_classes, frozen: self.frozen }
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        SkipblockNet::forward_t(self, xs, train)
    }
    fn fuse_bn(&mut self) {
        SkipblockNet::fuse_bn(self)
    }
    fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }
    fn backbone_prefixes(&self) -> Vec<String> {
        SkipblockNet::backbone_prefixes()
    }
    fn features_name(&self) -> &'static str {
        "conv.0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{Loss, LossConfig, LossKind};
    use tch::nn::OptimizerConfig;
    use tch::{Device, Kind};

    /// Every new architecture trains with the bias loss on tiny inputs: the loss is finite, the gradients
    /// reach the weights and the features are what the network names.
    #[test]
    fn every_zoo_architecture_trains_with_the_bias_loss() {
        // One intra-op thread: small convolutions on a busy machine are many times slower with more.
        tch::set_num_threads(1);
        for arch in Arch::classifiers().filter(|a| a.net_config().is_none()) {
            tch::manual_seed(0);
            let vs = nn::VarStore::new(Device::Cpu);
            let opts = NetOptions { stem: Stem::Cifar, ..Default::default() };
            let net = build_classifier(&vs.root(), arch, 5, opts).unwrap();
            assert_eq!((net.arch(), net.stem(), net.num_classes()), (arch, Stem::Cifar, 5));
            let mut opt = nn::Sgd { momentum: 0.9, ..Default::default() }.build(&vs, 0.05).unwrap();
            let mut loss = Loss::new(LossConfig { kind: LossKind::Bias, ..Default::default() }).unwrap();
            let before: Vec<Tensor> = vs.trainable_variables().iter().map(|t| t.copy()).collect();
            // 16×16 with the CIFAR stems keeps every network's feature maps at 2×2 or more, and the test
            // fast.
            let x = Tensor::randn([3, 3, 16, 16], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 4]);
            for _ in 0..2 {
                let out = net.forward_t(&x, true);
                assert_eq!(out.logits.size(), vec![3, 5], "{arch}");
                assert_eq!(out.features.dim(), 4, "{arch}: features are a b×c×h×w map");
                let l = loss.compute(&out.logits, Some(&out.features), &y).unwrap().loss;
                let v = l.double_value(&[]);
                assert!(v.is_finite(), "{arch}: loss {v}");
                opt.backward_step(&l);
            }
            let after = vs.trainable_variables();
            let changed = before.iter().zip(&after).filter(|(a, b)| !a.equal(b)).count();
            assert!(changed == after.len(), "{arch}: {changed} of {} tensors changed", after.len());
        }
    }

    #[test]
    fn a_frozen_zoo_backbone_keeps_its_statistics_and_prefixes_cover_all_but_the_head() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut net = build_classifier(&vs.root(), Arch::Resnet18, 3, NetOptions::default()).unwrap();
        let head = Arch::Resnet18.head_prefix();
        let prefixes = net.backbone_prefixes();
        for (name, _) in vs.variables() {
            assert_eq!(!name.starts_with(head), prefixes.iter().any(|p| name.starts_with(p.as_str())), "{name}");
        }
        let stats = || {
            let mut v: Vec<(String, Tensor)> =
                vs.variables().into_iter().filter(|(k, _)| k.contains("running_")).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into_iter().map(|(_, t)| t.copy()).collect::<Vec<_>>()
        };
        let before = stats();
        net.set_frozen(true);
        let _ = net.forward_t(&Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu)), true);
        assert!(before.iter().zip(stats()).all(|(a, b)| a.equal(&b)));
        net.set_frozen(false);
        let _ = net.forward_t(&Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu)), true);
        assert!(before.iter().zip(stats()).any(|(a, b)| !a.equal(&b)));
    }

    #[test]
    fn release_networks_are_classifiers_with_their_own_keys() {
        for arch in [Arch::ReleaseResnet18, Arch::ReleaseDensenet121, Arch::ReleaseShufflenetv2] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net =
                build_classifier(&vs.root(), arch, 100, NetOptions::standard(arch, BlockOptions::default())).unwrap();
            assert_eq!((net.arch(), net.stem(), arch.source()), (arch, Stem::Cifar, Source::Release));
            let head = arch.head_prefix();
            let prefixes = net.backbone_prefixes();
            for (name, t) in vs.variables() {
                let in_backbone = prefixes.iter().any(|p| name.starts_with(p.as_str()));
                assert_eq!(!name.starts_with(head), in_backbone, "{arch}: {name}");
                if name == format!("{head}weight") {
                    assert_eq!(t.size()[0], 100);
                }
            }
            let out = tch::no_grad(|| net.forward_t(&Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu)), false));
            assert_eq!(out.logits.size(), vec![1, 100]);
            assert_eq!(out.features.size()[2..], [4, 4], "{arch}: the 4x4 map at 32x32");
        }
    }

    #[test]
    fn folded_batch_norms_give_the_same_outputs_in_the_zoo() {
        for arch in [Arch::Resnet18, Arch::Mobilenetv2X075, Arch::Shufflenetv2X05] {
            tch::manual_seed(1);
            let vs = nn::VarStore::new(Device::Cpu);
            let mut net = build_classifier(&vs.root(), arch, 4, NetOptions::default()).unwrap();
            for _ in 0..3 {
                let _ = net.forward_t(&(Tensor::randn([4, 3, 64, 64], (Kind::Float, Device::Cpu)) + 0.5), true);
            }
            let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
            let before = tch::no_grad(|| net.forward_t(&x, false));
            net.fuse_bn();
            let after = tch::no_grad(|| net.forward_t(&x, false));
            let d = f64::try_from((&before.features - &after.features).abs().max()).unwrap();
            let m = f64::try_from(before.features.abs().max()).unwrap();
            assert!(d <= 1e-4 * m.max(1.0), "{arch}: {d} of {m}");
        }
    }

    #[test]
    fn a_detector_or_a_missing_stem_is_refused() {
        let vs = nn::VarStore::new(Device::Cpu);
        let err = build_classifier(&vs.root(), Arch::SsdSkipblocknetS, 3, NetOptions::default()).unwrap_err();
        assert!(err.to_string().contains("ssd-skipblocknet-s"), "{err}");
        let opts = NetOptions { stem: Stem::Imagenet, ..Default::default() };
        let err = build_classifier(&vs.root(), Arch::Densenet100K12, 3, opts).unwrap_err().to_string();
        assert!(err.contains("densenet-100-k12") && err.contains("imagenet"), "{err}");
    }
}

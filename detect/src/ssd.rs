//! The detector: a SkipblockNet backbone (no classifier), heads on its stride-16 expansion tap and its
//! last conv, extra layers down to 1×1 with a head each, and the priors matching the heads' outputs.
//!
//! Variable paths: `backbone.*` (the classifier's own keys, so ImageNet weights load by prefix, see
//! [`backbone_prefix`]), `sources.{0,1}.*` (SSD only), `extras.{i}.*`, `heads.loc.{k}.*`,
//! `heads.conf.{k}.*`.

use crate::anchors;
use crate::config::SsdConfig;
use crate::heads::{Extra, Head, HeadKind};
use crate::matcher::Matcher;
use crate::multibox::{MultiboxLoss, MultiboxOutput};
use crate::postprocess::{postprocess, Detection, PostprocessConfig};
use anyhow::{bail, Context, Result};
use skipblock_core::boxes::BBox;
use skipblock_core::model::summary::{self, Summary};
use skipblock_core::model::{layers::Act, layers::ConvBn, BlockOptions, SkipblockNet, SsdVariant};
use skipblock_core::tensors::{self, AssignReport};
use std::path::Path;
use tch::{nn, nn::VarStore, Kind, Tensor};

/// The ground truth of one image: boxes (normalised corners) and their 1-based labels.
pub type ImageTargets = (Vec<BBox>, Vec<usize>);

/// Where the backbone's variables live: a classifier checkpoint key `k` is `backbone.k` here.
pub fn backbone_prefix() -> &'static str {
    "backbone."
}

/// Loads a classifier's weights (ours `.safetensors` or the authors' `.pth`) into the detector's
/// backbone: its keys are prefixed with [`backbone_prefix`], its `classifier.*` dropped. Every backbone
/// variable must be found with its shape; the heads and extras keep their initialisation.
pub fn load_backbone(vs: &VarStore, path: &Path) -> Result<AssignReport> {
    let named: Vec<(String, Tensor)> = tensors::read_named_tensors(path)?
        .into_iter()
        .filter(|(k, _)| !k.starts_with("classifier."))
        .map(|(k, t)| (format!("{}{k}", backbone_prefix()), t))
        .collect();
    let report = tensors::assign(vs, named, false)?;
    let missing: Vec<String> = report.missing.iter().filter(|k| k.starts_with(backbone_prefix())).cloned().collect();
    let bad = AssignReport { missing, ..report.clone() };
    if !(bad.missing.is_empty() && bad.unexpected.is_empty() && bad.mismatched.is_empty()) {
        bail!("'{}' does not fit the detector's backbone: {}", path.display(), bad.problems());
    }
    Ok(report)
}

/// Predictions for a batch, and the backbone's last-conv features for the bias loss.
#[derive(Debug)]
pub struct SsdOutput {
    /// Encoded box offsets `[B, P, 4]`.
    pub loc: Tensor,
    /// Class logits `[B, P, C]` (class 0 = background).
    pub conf: Tensor,
    /// The backbone's last conv output (b×c×h×w).
    pub features: Tensor,
}

#[derive(Debug)]
pub struct Ssd {
    /// The resolved configuration: widths filled in, `priors.feature_maps` as the network produces them.
    pub config: SsdConfig,
    pub backbone: SkipblockNet,
    sources: Vec<Option<ConvBn>>,
    extras: Vec<Extra>,
    heads: Vec<Head>,
    /// Centre-form priors `[P, 4]`, on the CPU.
    pub priors: Tensor,
    /// Ground truths → per-prior targets, for these priors.
    pub matcher: Matcher,
    pub multibox: MultiboxLoss,
}

impl Ssd {
    /// Builds the detector under `p` (usually `vs.root()`). The feature-map sizes are measured with one
    /// forward pass of a blank image of `input_size` and checked against `priors.feature_maps`.
    pub fn new(p: &nn::Path, cfg: &SsdConfig, opts: BlockOptions) -> Result<Ssd> {
        let mut config = cfg.resolved()?;
        let (variant, backbone_arch) = config.parts()?;
        let net = backbone_arch.config();
        let backbone = SkipblockNet::new(&(p / "backbone"), &net, 0, opts);
        let (c16, c32) = backbone.feature_channels();
        let src = p / "sources";
        let sources: Vec<Option<ConvBn>> = [c16, c32]
            .iter()
            .zip(&config.sources)
            .enumerate()
            .map(|(i, (&cin, &w))| {
                (w > 0).then(|| ConvBn::seq(&(&src / i.to_string()), 0, cin, w, 1, 1, 1, Act::Relu, opts))
            })
            .collect();
        let width = |s: &Option<ConvBn>, tap: i64| s.as_ref().map_or(tap, |c| c.out_channels);
        let mut channels = vec![width(&sources[0], c16), width(&sources[1], c32)];
        let mut extras = Vec::new();
        for (i, &cout) in config.extras.iter().enumerate() {
            let cin = *channels.last().expect("two taps");
            let ep = p / "extras" / i.to_string();
            extras.push(match variant {
                SsdVariant::Lite => Extra::lite(ep, cin, SsdConfig::lite_hidden(i, cin), cout, opts),
                SsdVariant::Full => Extra::full(ep, cin, SsdConfig::full_mid(cout), cout, opts),
            });
            channels.push(cout);
        }
        let mut ssd = Ssd {
            config: config.clone(),
            backbone,
            sources,
            extras,
            heads: Vec::new(),
            priors: Tensor::new(),
            matcher: Matcher::new(
                &Tensor::zeros([0, 4], (Kind::Float, tch::Device::Cpu)),
                config.match_iou,
                config.box_coder,
            ),
            multibox: MultiboxLoss { neg_pos_ratio: config.neg_pos_ratio },
        };
        let maps = tch::no_grad(|| {
            let xs = Tensor::zeros([1, 3, config.input_size, config.input_size], (Kind::Float, p.device()));
            ssd.feature_maps_of(&xs, false).iter().map(|m| m.size()).collect::<Vec<_>>()
        });
        let sides: Vec<i64> = maps.iter().map(|s| s[2]).collect();
        if let Some(s) = maps.iter().find(|s| s[2] != s[3]) {
            bail!("a {0}x{0} input gave a non-square {1}x{2} feature map", config.input_size, s[2], s[3]);
        }
        config.priors =
            config.priors.resolve(&sides).with_context(|| format!("{} at input {}", config.arch, config.input_size))?;
        let hp = p / "heads";
        let last = channels.len() - 1;
        ssd.heads = channels
            .iter()
            .enumerate()
            .map(|(k, &cin)| {
                let kind = match variant {
                    SsdVariant::Full => HeadKind::Full,
                    SsdVariant::Lite if k == last => HeadKind::Pointwise,
                    SsdVariant::Lite => HeadKind::Separable,
                };
                Head::new(&hp, k, cin, config.priors.boxes_per_location(k), config.num_classes, kind, opts)
            })
            .collect();
        ssd.priors = anchors::priors(&config.priors)?;
        ssd.matcher = Matcher::new(&ssd.priors, config.match_iou, config.box_coder);
        ssd.config = config;
        Ok(ssd)
    }

    /// Folds every batch norm (backbone, tap adapters, extras, heads) into its convolution, for
    /// inference: eval-mode passes then run plain convolutions with bias.
    pub fn fuse_bn(&mut self) {
        self.backbone.fuse_bn();
        for source in self.sources.iter_mut().flatten() {
            source.fuse();
        }
        for extra in &mut self.extras {
            extra.fuse();
        }
        for head in &mut self.heads {
            head.fuse();
        }
    }

    /// The training loss of a batch's predictions: the matcher turns each image's ground truth into
    /// per-prior targets, then the multibox loss (hard-negative mining at `ssd.neg_pos_ratio`), each
    /// image's classification term scaled by `sample_weights` (the bias loss's z(v)) when given.
    pub fn compute_loss(
        &self,
        out: &SsdOutput,
        targets: &[ImageTargets],
        sample_weights: Option<&Tensor>,
    ) -> Result<MultiboxOutput> {
        let device = out.loc.device();
        let t = self.matcher.batch_targets_on(targets, device)?;
        self.multibox.compute(
            &out.loc,
            &out.conf,
            &t.loc.to_device(device),
            &t.labels.to_device(device),
            sample_weights,
        )
    }

    /// Detections of a batch of preprocessed images `[B, 3, S, S]` (eval mode, no autograd): decoded,
    /// per-class NMS, best first; boxes normalised to [0, 1], labels 1-based.
    pub fn detect(&self, xs: &Tensor, post: &PostprocessConfig) -> Result<Vec<Vec<Detection>>> {
        let out = tch::no_grad(|| self.forward_t(xs, false));
        // float32 whatever autocast (`--amp`) made of the predictions.
        let (loc, conf) = (out.loc.to_kind(tch::Kind::Float), out.conf.to_kind(tch::Kind::Float));
        postprocess(&loc, &conf, &self.priors, &self.config.box_coder, post)
    }

    /// What an exported detector outputs (`skipblock export`): the boxes decoded against the priors, as
    /// corners clipped to [0, 1] `[B, P, 4]`, and the softmax class probabilities `[B, P, C]` (column 0 =
    /// background), exactly what [`postprocess`] starts from. Eval mode; the priors are moved to `xs`'s device.
    pub fn decoded(&self, xs: &Tensor) -> (Tensor, Tensor) {
        let out = self.forward_t(xs, false);
        let priors = self.priors.to_device(xs.device());
        let boxes = self.config.box_coder.decode_corners(&out.loc, &priors).clamp(0.0, 1.0);
        (boxes, out.conf.softmax(2, tch::Kind::Float))
    }

    /// The feature maps the heads see, largest first.
    fn feature_maps_of(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        self.features_and_maps(xs, train).1
    }

    fn features_and_maps(&self, xs: &Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        let f = self.backbone.forward_features(xs, train);
        let adapt =
            |s: &Option<ConvBn>, t: &Tensor| s.as_ref().map_or_else(|| t.shallow_clone(), |c| c.forward_t(t, train));
        let mut maps = vec![adapt(&self.sources[0], &f.expansion16), adapt(&self.sources[1], &f.last)];
        for extra in &self.extras {
            let next = extra.forward_t(maps.last().expect("two taps"), train);
            maps.push(next);
        }
        (f.last, maps)
    }

    /// Box offsets and class logits for every prior. `xs`: `[B, 3, S, S]` with S the configured
    /// `input_size` (another size gives another number of predictions than of priors).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> SsdOutput {
        let (features, maps) = self.features_and_maps(xs, train);
        let (locs, confs): (Vec<Tensor>, Vec<Tensor>) =
            maps.iter().zip(&self.heads).map(|(m, h)| h.forward_t(m, train)).unzip();
        SsdOutput { loc: Tensor::cat(&locs, 1), conf: Tensor::cat(&confs, 1), features }
    }

    /// Feature-map sides, largest first (as the priors use them).
    pub fn feature_maps(&self) -> &[i64] {
        &self.config.priors.feature_maps
    }

    pub fn num_priors(&self) -> i64 {
        self.priors.size()[0]
    }

    /// The `[ssd.priors]` of `cfg` resolved against the network it builds (feature maps filled in), from a
    /// throwaway CPU build.
    pub fn resolved_priors(cfg: &SsdConfig, opts: BlockOptions) -> Result<crate::anchors::PriorConfig> {
        let vs = VarStore::new(tch::Device::Cpu);
        Ok(Ssd::new(&vs.root(), cfg, opts)?.config.priors)
    }

    /// `model summary` of the detector: its layers traced on one blank image of `input_size`, parameters
    /// from `vs` (the store it was built in).
    pub fn summary(&self, vs: &VarStore) -> Summary {
        let c = &self.config;
        summary::summarize(c.arch, vs, c.input_size, c.num_classes, |xs| {
            let _ = self.forward_t(xs, false);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anchors::PriorConfig;
    use skipblock_core::model::Arch;
    use std::collections::BTreeMap;
    use tch::Device;

    fn build(arch: Arch, input: i64, feature_maps: Option<Vec<i64>>) -> Result<(VarStore, Ssd)> {
        let vs = VarStore::new(Device::Cpu);
        let mut cfg = SsdConfig::for_arch(arch, 21)?;
        cfg.input_size = input;
        if let Some(f) = feature_maps {
            cfg.priors.feature_maps = f;
        }
        let ssd = Ssd::new(&vs.root(), &cfg, BlockOptions::default())?;
        Ok((vs, ssd))
    }

    #[test]
    fn both_variants_predict_one_box_per_prior_at_300() {
        for name in [Arch::SsdliteSkipblocknetXs, Arch::SsdSkipblocknetXs] {
            let (vs, ssd) = build(name, 300, None).unwrap();
            assert_eq!(ssd.feature_maps(), &[19, 10, 5, 3, 2, 1]);
            let xs = Tensor::rand([2, 3, 300, 300], (Kind::Float, Device::Cpu));
            let out = tch::no_grad(|| ssd.forward_t(&xs, false));
            assert_eq!(out.loc.size(), vec![2, 3000, 4], "{name}");
            assert_eq!(out.conf.size(), vec![2, 3000, 21], "{name}");
            assert_eq!(out.features.size(), vec![2, 480, 10, 10], "{name}");
            assert!(out.loc.isfinite().all().int64_value(&[]) == 1);
            let names: Vec<String> = vs.variables().into_keys().collect();
            assert!(names.iter().any(|n| n == "backbone.conv.0.weight"), "{name}");
            assert!(names.iter().any(|n| n == "heads.conf.5.weight"), "{name}");
            assert!(!names.iter().any(|n| n.starts_with("backbone.classifier")), "{name}");
            assert_eq!(names.iter().any(|n| n.starts_with("sources.")), name == Arch::SsdSkipblocknetXs, "{name}");
        }
    }

    #[test]
    fn feature_maps_come_from_the_network_at_320() {
        let err = build(Arch::SsdliteSkipblocknetXs, 320, None).unwrap_err();
        assert!(format!("{err:#}").contains("[20, 10, 5, 3, 2, 1]"), "{err:#}");
        let (_, ssd) = build(Arch::SsdliteSkipblocknetXs, 320, Some(vec![])).unwrap();
        assert_eq!(ssd.feature_maps(), &[20, 10, 5, 3, 2, 1]);
        assert_eq!(ssd.num_priors(), 3234);
        let out = tch::no_grad(|| ssd.forward_t(&Tensor::rand([1, 3, 320, 320], (Kind::Float, Device::Cpu)), false));
        assert_eq!(out.loc.size(), vec![1, 3234, 4]);
        assert_eq!(out.conf.size(), vec![1, 3234, 21]);
        let (_, ssd) = build(Arch::SsdSkipblocknetXs, 320, Some(vec![])).unwrap();
        assert_eq!(ssd.num_priors(), 3234);
    }

    #[test]
    fn imagenet_classifier_weights_load_into_the_backbone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("xs.safetensors");
        let cls_vs = VarStore::new(Device::Cpu);
        let config = Arch::SkipblocknetXs.config();
        let _classifier = SkipblockNet::new(&cls_vs.root(), &config, 10, BlockOptions::default());
        let named: Vec<(String, Tensor)> = cls_vs.variables().into_iter().collect();
        tensors::write_safetensors(&file, &named, &BTreeMap::new()).unwrap();
        let (vs, _) = build(Arch::SsdSkipblocknetXs, 300, None).unwrap();
        let report = load_backbone(&vs, &file).unwrap();
        assert!(report.missing.iter().all(|k| !k.starts_with("backbone.")), "{:?}", report.missing);
        let theirs = &cls_vs.variables()["blocks.3.0.conv.0.weight"];
        assert!(vs.variables()["backbone.blocks.3.0.conv.0.weight"].equal(theirs));
        let (other, _) = build(Arch::SsdSkipblocknetS, 300, None).unwrap();
        let err = load_backbone(&other, &file).unwrap_err().to_string();
        assert!(err.contains("xs.safetensors") && err.contains("mis-shaped"), "{err}");
    }

    #[test]
    fn folded_batch_norms_detect_the_same_boxes() {
        for arch in [Arch::SsdliteSkipblocknetXs, Arch::SsdSkipblocknetXs] {
            let (_vs, mut ssd) = build(arch, 128, Some(vec![])).unwrap();
            // Training passes give every batch norm (backbone, adapters, extras, heads) real statistics.
            for _ in 0..2 {
                let _ = ssd.forward_t(&(Tensor::rand([2, 3, 128, 128], (Kind::Float, Device::Cpu)) * 2.0), true);
            }
            let xs = Tensor::rand([2, 3, 128, 128], (Kind::Float, Device::Cpu));
            let before = tch::no_grad(|| ssd.forward_t(&xs, false));
            let post = PostprocessConfig { score_threshold: 0.0, ..Default::default() };
            let dets = ssd.detect(&xs, &post).unwrap();
            ssd.fuse_bn();
            let after = tch::no_grad(|| ssd.forward_t(&xs, false));
            let d = f64::try_from((&before.conf - &after.conf).abs().max()).unwrap();
            let l = f64::try_from((&before.loc - &after.loc).abs().max()).unwrap();
            assert!(d < 1e-3 && l < 1e-3, "{arch}: conf {d}, loc {l}");
            let fused = ssd.detect(&xs, &post).unwrap();
            assert_eq!(dets.len(), 2);
            assert_eq!(dets[0].len(), fused[0].len(), "{arch}");
            assert_eq!(dets[0][0].label, fused[0][0].label, "{arch}");
        }
    }

    #[test]
    fn compute_loss_matches_targets_and_reads_the_mining_ratio() {
        let (_vs, mut ssd) = build(Arch::SsdliteSkipblocknetXs, 128, Some(vec![])).unwrap();
        let xs = Tensor::rand([2, 3, 128, 128], (Kind::Float, Device::Cpu));
        let targets =
            vec![(vec![BBox::new(0.1, 0.1, 0.6, 0.7)], vec![3]), (vec![BBox::new(0.5, 0.4, 0.9, 0.9)], vec![1])];
        let out = ssd.forward_t(&xs, true);
        let three = ssd.compute_loss(&out, &targets, None).unwrap();
        assert!(three.num_pos >= 2, "every ground truth gets at least its best prior");
        ssd.multibox.neg_pos_ratio = 0;
        let none = ssd.compute_loss(&out, &targets, None).unwrap();
        let (c3, c0) = (f64::try_from(&three.conf_loss).unwrap(), f64::try_from(&none.conf_loss).unwrap());
        assert!(c3 > c0, "negatives add to the classification term ({c3} vs {c0})");
        assert_eq!(f64::try_from(&three.loc_loss).unwrap(), f64::try_from(&none.loc_loss).unwrap());
        let half = Tensor::from_slice(&[0.5f32, 0.5]);
        let weighted = ssd.compute_loss(&out, &targets, Some(&half)).unwrap();
        assert!((f64::try_from(&weighted.conf_loss).unwrap() - c0 / 2.0).abs() < 1e-5);
        let cfg = SsdConfig { neg_pos_ratio: 5, ..SsdConfig::for_arch(Arch::SsdliteSkipblocknetXs, 4).unwrap() };
        let cfg =
            SsdConfig { input_size: 128, priors: PriorConfig { feature_maps: vec![], ..cfg.priors.clone() }, ..cfg };
        let vs = VarStore::new(Device::Cpu);
        assert_eq!(Ssd::new(&vs.root(), &cfg, BlockOptions::default()).unwrap().multibox.neg_pos_ratio, 5);
    }
}

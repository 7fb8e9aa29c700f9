//! SkipblockNet (paper §4) and, with no skip blocks and MobileNetV3's table, MobileNetV3-Large.
//!
//! Layout and variable names follow the authors' release: `first_layer`, `base_block`, `blocks.{stage}.
//! {block}`, `skip1`, `skip2`, `conv` (the last 1×1 conv, whose output feeds the bias loss) and
//! `classifier.{0,3}`.

use super::config::NetConfig;
use super::layers::{make_divisible, Act, BlockOptions, ConvBn, InvertedResidual, Linear, SkipBlock};
use tch::{nn, Tensor};

/// Logits and the last-conv feature map (b×c×h×w, before pooling and dropout) the bias loss needs.
#[derive(Debug)]
pub struct Output {
    pub logits: Tensor,
    pub features: Tensor,
}

/// Backbone outputs for detection heads.
#[derive(Debug)]
pub struct BackboneFeatures {
    /// Expansion output of the first stride-2 block of the last stage (output stride 16).
    pub expansion16: Tensor,
    /// The last conv's output (output stride 32).
    pub last: Tensor,
}

#[derive(Debug)]
struct Classifier {
    fc1: Linear,
    fc2: Linear,
    dropout: f64,
}

#[derive(Debug)]
pub struct SkipblockNet {
    pub config: NetConfig,
    pub num_classes: i64,
    first_layer: ConvBn,
    base_block: InvertedResidual,
    stages: Vec<Vec<InvertedResidual>>,
    skip1: Option<SkipBlock>,
    skip2: Option<SkipBlock>,
    last_conv: ConvBn,
    classifier: Option<Classifier>,
    /// A frozen backbone: every layer but the classifier runs in eval mode even in training passes, so
    /// its batch norms use and keep their running statistics (fine-tuning a new head, a detector's first
    /// epochs). The optimiser leaves its weights alone too (`TrainTask::frozen_prefixes`).
    pub frozen: bool,
}

impl SkipblockNet {
    /// Builds the network under `p`. `num_classes = 0` builds the backbone only (no classifier), as
    /// detection uses it.
    pub fn new(p: &nn::Path, config: &NetConfig, num_classes: i64, opts: BlockOptions) -> Self {
        let stem = config.stem_channels();
        let first_layer = ConvBn::seq(&(p / "first_layer"), 0, 3, stem, 3, 2, 1, Act::Hswish, opts);
        let base_out = config.scaled(config.base.out);
        let base_hidden = make_divisible(stem as f64 * config.base.expansion, 8);
        let base_block = InvertedResidual::new(
            p / "base_block",
            stem,
            base_hidden,
            base_out,
            config.base.kernel,
            config.base.stride,
            config.base.se,
            config.base.act,
            config.base_expand,
            opts,
        );
        let mut cin = base_out;
        let mut stages = Vec::new();
        let mut stage_out = Vec::new();
        for (si, stage) in config.stages.iter().enumerate() {
            let mut blocks = Vec::new();
            for (bi, blk) in stage.iter().enumerate() {
                let cout = config.scaled(blk.out);
                let hidden = make_divisible(cin as f64 * blk.expansion, 8);
                blocks.push(InvertedResidual::new(
                    p / "blocks" / si.to_string() / bi.to_string(),
                    cin,
                    hidden,
                    cout,
                    blk.kernel,
                    blk.stride,
                    blk.se,
                    blk.act,
                    true,
                    opts,
                ));
                cin = cout;
            }
            stages.push(blocks);
            stage_out.push(cin);
        }
        let skip = |name: &str, cfg: &Option<super::config::SkipCfg>, out: i64| {
            cfg.map(|s| {
                SkipBlock::new(
                    p / name,
                    base_out,
                    make_divisible(base_out as f64 * s.expansion, 8),
                    out,
                    s.kernel,
                    opts,
                )
            })
        };
        let skip1 = skip("skip1", &config.skip1, stage_out[0]);
        let skip2 = skip("skip2", &config.skip2, stage_out[1]);
        let last = config.last_conv_channels();
        let last_conv = ConvBn::seq(&(p / "conv"), 0, cin, last, 1, 1, 1, Act::Hswish, opts);
        let classifier = (num_classes > 0).then(|| {
            let c = p / "classifier";
            Classifier {
                fc1: Linear::new(&c / "0", last, config.head),
                fc2: Linear::new(&c / "3", config.head, num_classes),
                dropout: config.dropout,
            }
        });
        SkipblockNet {
            config: config.clone(),
            num_classes,
            first_layer,
            base_block,
            stages,
            skip1,
            skip2,
            last_conv,
            classifier,
            frozen: false,
        }
    }

    /// Folds every batch norm into its convolution for fast inference (eval-mode passes only).
    pub fn fuse_bn(&mut self) {
        self.first_layer.fuse();
        self.base_block.fuse();
        for block in self.stages.iter_mut().flatten() {
            block.fuse();
        }
        for skip in [self.skip1.as_mut(), self.skip2.as_mut()].into_iter().flatten() {
            skip.fuse();
        }
        self.last_conv.fuse();
    }

    /// Variable-name prefixes of everything but the classifier (what fine-tuning may freeze).
    pub fn backbone_prefixes() -> Vec<String> {
        ["first_layer.", "base_block.", "blocks.", "skip1.", "skip2.", "conv."].map(String::from).to_vec()
    }

    /// Channels of the two detection taps: (expansion16, last).
    pub fn feature_channels(&self) -> (i64, i64) {
        let tap = self.tap_block().map_or(self.last_conv.in_channels, |(s, b)| self.stages[s][b].hidden);
        (tap, self.last_conv.out_channels)
    }

    /// The first stride-2 block of the last stage that has one.
    fn tap_block(&self) -> Option<(usize, usize)> {
        let s = self.stages.len().checked_sub(1)?;
        self.stages[s].iter().position(|b| b.stride == 2).map(|b| (s, b))
    }

    /// Runs the backbone; returns the last conv's output and, when asked, the stride-16 expansion tap.
    fn backbone(&self, xs: &Tensor, train: bool, want_tap: bool) -> (Tensor, Option<Tensor>) {
        let train = train && !self.frozen;
        let tap_at = if want_tap { self.tap_block() } else { None };
        let x = self.first_layer.forward_t(xs, train);
        let base = self.base_block.forward_t(&x, train);
        let mut x = base.shallow_clone();
        let mut tap = None;
        for (si, stage) in self.stages.iter().enumerate() {
            for (bi, block) in stage.iter().enumerate() {
                if tap_at == Some((si, bi)) {
                    let (out, expanded) = block.forward_tap(&x, train);
                    tap = expanded;
                    x = out;
                } else {
                    x = block.forward_t(&x, train);
                }
            }
            let skip = match si {
                0 => self.skip1.as_ref(),
                1 => self.skip2.as_ref(),
                _ => None,
            };
            if let Some(skip) = skip {
                let size = x.size();
                x += skip.forward_t(&base, [size[2], size[3]], train);
            }
        }
        (self.last_conv.forward_t(&x, train), tap)
    }

    /// Classification forward pass: logits and the last-conv features.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let (features, _) = self.backbone(xs, train, false);
        let logits = match &self.classifier {
            Some(c) => {
                let b = features.size()[0];
                let pooled = features.adaptive_avg_pool2d([1, 1]).view([b, -1]);
                let h = c.fc1.forward(&pooled).hardswish().dropout(c.dropout, train);
                c.fc2.forward(&h)
            }
            None => features.adaptive_avg_pool2d([1, 1]).flatten(1, -1),
        };
        Output { logits, features }
    }

    /// Detection forward pass: the stride-16 expansion tap and the last conv.
    pub fn forward_features(&self, xs: &Tensor, train: bool) -> BackboneFeatures {
        let (last, tap) = self.backbone(xs, train, true);
        BackboneFeatures {
            expansion16: tap.expect("every configured network has a stride-2 block in its last stage"),
            last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;
    use tch::{Device, Kind};

    #[test]
    fn folded_batch_norm_gives_the_same_outputs() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut net = SkipblockNet::new(&vs.root(), &Arch::SkipblocknetXs.config(), 5, BlockOptions::default());
        // Train-mode passes give the BNs non-trivial running statistics.
        for _ in 0..3 {
            let _ = net.forward_t(&(Tensor::randn([4, 3, 96, 96], (Kind::Float, Device::Cpu)) * 2.0 + 0.5), true);
        }
        let x = Tensor::randn([2, 3, 96, 96], (Kind::Float, Device::Cpu));
        let before = tch::no_grad(|| net.forward_t(&x, false));
        net.fuse_bn();
        let after = tch::no_grad(|| net.forward_t(&x, false));
        let d = f64::try_from((&before.logits - &after.logits).abs().max()).unwrap();
        let f = f64::try_from((&before.features - &after.features).abs().max()).unwrap();
        assert!(d < 1e-4 && f < 1e-3, "logits {d}, features {f}");
        // Train mode still uses the real BN (batch statistics): different from eval.
        let train = net.forward_t(&x, true);
        assert!(f64::try_from((&train.features - &after.features).abs().max()).unwrap() > 1e-3);
    }

    #[test]
    fn a_frozen_backbone_keeps_its_batch_norm_statistics() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut net = SkipblockNet::new(&vs.root(), &Arch::SkipblocknetXs.config(), 4, BlockOptions::default());
        let stats = |vs: &nn::VarStore| {
            let mut v: Vec<(String, Tensor)> =
                vs.variables().into_iter().filter(|(k, _)| k.contains("running_")).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into_iter().map(|(_, t)| t.copy()).collect::<Vec<_>>()
        };
        let before = stats(&vs);
        let x = Tensor::randn([4, 3, 64, 64], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        net.frozen = true;
        let frozen = net.forward_t(&x, true);
        assert!(before.iter().zip(stats(&vs)).all(|(a, b)| a.equal(&b)), "frozen: running statistics untouched");
        let eval = tch::no_grad(|| net.forward_t(&x, false));
        let d = f64::try_from((&frozen.features - &eval.features).abs().max()).unwrap();
        assert!(d < 1e-5, "the frozen backbone computes what eval mode computes ({d})");
        net.frozen = false;
        let _ = net.forward_t(&x, true);
        assert!(before.iter().zip(stats(&vs)).any(|(a, b)| !a.equal(&b)), "training updates them again");
    }
}

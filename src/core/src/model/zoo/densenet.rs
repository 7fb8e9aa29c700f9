//! DenseNet (Huang et al. 2017) in torchvision's layout and keys (`features.conv0`, `features.norm0`,
//! `features.denseblock{i}.denselayer{j}.norm1/conv1[/norm2/conv2]`, `features.transition{i}.norm/conv`,
//! `features.norm5`, `classifier`), pre-activation layers (BN → ReLU → conv):
//! - `densenet-121`: bottleneck layers (1×1 to 4k, 3×3 to k), k = 32, blocks 6/12/24/16, 64 stem
//!   channels, transitions halving the channels (torchvision's `densenet121`). ImageNet stem: 7×7 stride-2
//!   conv, BN, ReLU, 3×3 stride-2 max pool; CIFAR stem: 3×3 stride-1 conv, BN, ReLU, no pool.
//! - `densenet-100-k12`: the CIFAR DenseNet of Table 4 (7.0 M parameters at 100 classes): L = 100, k = 12,
//!   three blocks of 32 plain layers (BN, ReLU, 3×3 to k), a 3×3 stem conv to 16 channels, transitions
//!   keeping the channels (no bottleneck, no compression). CIFAR only.
//!
//! Last-conv features (bias loss): after the final batch norm and ReLU (`features.norm5`), before pooling.
//! No batch norm follows a convolution, so there is nothing to fold (`fuse_bn` is a no-op).

use super::{global_pool, max_pool_3x3_s2};
use crate::model::arch::{Arch, Stem};
use crate::model::layers::{batch_norm, kaiming_fan_out, BlockOptions, Conv, ConvSpec, Linear};
use crate::model::net::{ClassifierNet, NetInfo, NetOptions};
use crate::model::skipblocknet::Output;
use tch::{nn, Tensor};

/// A convolution without bias.
fn conv(p: nn::Path, cin: i64, cout: i64, kernel: i64, stride: i64) -> Conv {
    let spec = ConvSpec { stride, bias: false, ..ConvSpec::same(kernel) };
    Conv::with(p, cin, cout, spec, kaiming_fan_out(cout, kernel, 1))
}

/// BN → ReLU → conv.
#[derive(Debug)]
struct PreAct {
    norm: nn::BatchNorm,
    conv: Conv,
}

impl PreAct {
    fn new(norm: nn::Path, conv_path: nn::Path, cin: i64, cout: i64, kernel: i64, o: BlockOptions) -> Self {
        PreAct { norm: batch_norm(norm, cin, o), conv: conv(conv_path, cin, cout, kernel, 1) }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.conv.forward(&xs.apply_t(&self.norm, train).relu())
    }
}

#[derive(Debug)]
struct DenseLayer {
    /// The bottleneck (norm1/conv1, 1×1 to 4k) of DenseNet-BC layers.
    bottleneck: Option<PreAct>,
    /// The 3×3 conv to k channels (norm2/conv2 after a bottleneck, else norm1/conv1).
    grow: PreAct,
}

#[derive(Debug)]
enum Stage {
    Block(Vec<DenseLayer>),
    Transition(Box<PreAct>),
}

#[derive(Debug)]
pub struct DenseNet {
    info: NetInfo,
    conv0: Conv,
    norm0: Option<nn::BatchNorm>,
    stages: Vec<Stage>,
    norm5: nn::BatchNorm,
    classifier: Linear,
    dropout: f64,
}

impl DenseNet {
    pub fn new(p: &nn::Path, arch: Arch, num_classes: i64, opts: NetOptions) -> Self {
        let o = opts.block;
        let f = p / "features";
        let bc = arch == Arch::Densenet121;
        let (growth, blocks, init): (i64, &[usize], i64) =
            if bc { (32, &[6, 12, 24, 16], 64) } else { (12, &[32, 32, 32], 16) };
        let conv0 = match opts.stem {
            Stem::Imagenet => conv(&f / "conv0", 3, init, 7, 2),
            Stem::Cifar => conv(&f / "conv0", 3, init, 3, 1),
        };
        let norm0 = bc.then(|| batch_norm(&f / "norm0", init, o));
        let mut c = init;
        let mut stages = Vec::new();
        for (bi, &n) in blocks.iter().enumerate() {
            let b = &f / format!("denseblock{}", bi + 1);
            let mut layers = Vec::new();
            for li in 0..n {
                let l = &b / format!("denselayer{}", li + 1);
                let cin = c + li as i64 * growth;
                layers.push(if bc {
                    DenseLayer {
                        bottleneck: Some(PreAct::new(&l / "norm1", &l / "conv1", cin, 4 * growth, 1, o)),
                        grow: PreAct::new(&l / "norm2", &l / "conv2", 4 * growth, growth, 3, o),
                    }
                } else {
                    DenseLayer { bottleneck: None, grow: PreAct::new(&l / "norm1", &l / "conv1", cin, growth, 3, o) }
                });
            }
            stages.push(Stage::Block(layers));
            c += n as i64 * growth;
            if bi + 1 < blocks.len() {
                let t = &f / format!("transition{}", bi + 1);
                let cout = if bc { c / 2 } else { c };
                stages.push(Stage::Transition(Box::new(PreAct::new(&t / "norm", &t / "conv", c, cout, 1, o))));
                c = cout;
            }
        }
        let norm5 = batch_norm(&f / "norm5", c, o);
        let classifier = Linear::new(p / "classifier", c, num_classes);
        DenseNet {
            info: NetInfo::new(arch, opts.stem, num_classes),
            conv0,
            norm0,
            stages,
            norm5,
            classifier,
            dropout: opts.dropout.unwrap_or(0.0),
        }
    }
}

impl ClassifierNet for DenseNet {
    fn info(&self) -> NetInfo {
        self.info
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let t = train && !self.info.frozen;
        let mut x = self.conv0.forward(xs);
        if let Some(norm0) = &self.norm0 {
            x = x.apply_t(norm0, t).relu();
            if self.info.stem == Stem::Imagenet {
                x = max_pool_3x3_s2(&x);
            }
        }
        for stage in &self.stages {
            x = match stage {
                Stage::Block(layers) => {
                    let mut features = vec![x];
                    for layer in layers {
                        let input = Tensor::cat(&features, 1);
                        let h = match &layer.bottleneck {
                            Some(b) => b.forward_t(&input, t),
                            None => input,
                        };
                        features.push(layer.grow.forward_t(&h, t));
                    }
                    Tensor::cat(&features, 1)
                }
                Stage::Transition(pre) => pre.forward_t(&x, t).avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None),
            };
        }
        let features = x.apply_t(&self.norm5, t).relu();
        let logits = self.classifier.forward(&global_pool(&features).dropout(self.dropout, train));
        Output { logits, features }
    }
    fn fuse_bn(&mut self) {}
    fn set_frozen(&mut self, frozen: bool) {
        self.info.frozen = frozen;
    }
    fn backbone_prefixes(&self) -> Vec<String> {
        vec!["features.".into()]
    }
    fn features_name(&self) -> &'static str {
        "features.norm5"
    }
}

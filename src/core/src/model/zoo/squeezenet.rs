//! SqueezeNet 1.0 and 1.1 (Iandola et al. 2016), torchvision's layout and keys: `features.0` (1.0: 7×7
//! stride-2 conv to 96 channels; 1.1: 3×3 stride-2 conv to 64, both unpadded, with a bias), ReLU, 3×3
//! stride-2 max pools (ceil mode), fire modules `features.{i}.squeeze/expand1x1/expand3x3` (convs with
//! biases and ReLUs, no batch norm), and the classifier `classifier.1`: dropout 0.5, a 1×1 conv to the
//! classes, ReLU, global average pool. The CIFAR stem: the first conv 3×3 stride 1 with padding 1.
//! Last-conv features (bias loss): the last fire module's output (`features.12`, 512 channels, after its
//! ReLUs), not the classifier conv, whose outputs are the class scores.

use super::global_pool;
use crate::model::arch::{Arch, Stem};
use crate::model::layers::{Conv, ConvSpec};
use crate::model::net::{ClassifierNet, NetInfo, NetOptions};
use crate::model::skipblocknet::Output;
use tch::{nn, Tensor};

/// torchvision's conv init: Kaiming uniform (fan in, ReLU gain): U(±sqrt(6 / fan_in)).
fn kaiming_uniform(cin: i64, kernel: i64) -> nn::Init {
    let bound = (6.0 / (cin * kernel * kernel) as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

fn conv(p: nn::Path, cin: i64, cout: i64, spec: ConvSpec) -> Conv {
    Conv::with(p, cin, cout, spec, kaiming_uniform(cin, spec.kernel))
}

#[derive(Debug)]
struct Fire {
    squeeze: Conv,
    expand1x1: Conv,
    expand3x3: Conv,
}

impl Fire {
    fn new(p: nn::Path, cin: i64, squeeze: i64, e1: i64, e3: i64) -> Self {
        Fire {
            squeeze: conv(&p / "squeeze", cin, squeeze, ConvSpec::same(1)),
            expand1x1: conv(&p / "expand1x1", squeeze, e1, ConvSpec::same(1)),
            expand3x3: conv(&p / "expand3x3", squeeze, e3, ConvSpec::same(3)),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let s = self.squeeze.forward(xs).relu();
        Tensor::cat(&[self.expand1x1.forward(&s).relu(), self.expand3x3.forward(&s).relu()], 1)
    }
}

#[derive(Debug)]
enum Layer {
    Pool,
    Fire(Box<Fire>),
}

#[derive(Debug)]
pub struct SqueezeNet {
    info: NetInfo,
    first: Conv,
    layers: Vec<Layer>,
    final_conv: Conv,
    dropout: f64,
}

impl SqueezeNet {
    pub fn new(p: &nn::Path, arch: Arch, num_classes: i64, opts: NetOptions) -> Self {
        let f = p / "features";
        let v10 = arch == Arch::Squeezenet10;
        let (channels, kernel) = if v10 { (96, 7) } else { (64, 3) };
        let spec = match opts.stem {
            Stem::Imagenet => ConvSpec { stride: 2, padding: 0, ..ConvSpec::same(kernel) },
            Stem::Cifar => ConvSpec::same(3),
        };
        let first = conv(&f / "0", 3, channels, spec);
        // Index 1 is the ReLU, 2 the first max pool; then fires (squeeze, expand) and pools.
        let plan: &[Option<(i64, i64)>] = if v10 {
            &[
                Some((16, 64)),
                Some((16, 64)),
                Some((32, 128)),
                None,
                Some((32, 128)),
                Some((48, 192)),
                Some((48, 192)),
                Some((64, 256)),
                None,
                Some((64, 256)),
            ]
        } else {
            &[
                Some((16, 64)),
                Some((16, 64)),
                None,
                Some((32, 128)),
                Some((32, 128)),
                None,
                Some((48, 192)),
                Some((48, 192)),
                Some((64, 256)),
                Some((64, 256)),
            ]
        };
        let mut layers = vec![Layer::Pool];
        let mut cin = channels;
        for (i, step) in plan.iter().enumerate() {
            layers.push(match *step {
                Some((s, e)) => {
                    let fire = Fire::new(&f / (i + 3).to_string(), cin, s, e, e);
                    cin = 2 * e;
                    Layer::Fire(Box::new(fire))
                }
                None => Layer::Pool,
            });
        }
        let final_conv = Conv::with(
            p / "classifier" / "1",
            cin,
            num_classes,
            ConvSpec::same(1),
            nn::Init::Randn { mean: 0.0, stdev: 0.01 },
        );
        SqueezeNet {
            info: NetInfo::new(arch, opts.stem, num_classes),
            first,
            layers,
            final_conv,
            dropout: opts.dropout.unwrap_or(0.5),
        }
    }
}

impl ClassifierNet for SqueezeNet {
    fn info(&self) -> NetInfo {
        self.info
    }
    /// No batch norm: training and eval passes differ only in the dropout (a frozen backbone has none).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let mut x = self.first.forward(xs).relu();
        for layer in &self.layers {
            x = match layer {
                Layer::Pool => x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], true),
                Layer::Fire(fire) => fire.forward(&x),
            };
        }
        let h = self.final_conv.forward(&x.dropout(self.dropout, train)).relu();
        Output { logits: global_pool(&h), features: x }
    }
    fn fuse_bn(&mut self) {}
    fn set_frozen(&mut self, frozen: bool) {
        self.info.frozen = frozen;
    }
    fn backbone_prefixes(&self) -> Vec<String> {
        vec!["features.".into()]
    }
    fn features_name(&self) -> &'static str {
        "features.12"
    }
}

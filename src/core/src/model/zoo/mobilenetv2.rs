//! MobileNetV2 (Sandler et al. 2018) at width 0.75 and 1.0, torchvision's layout and keys: `features.0`
//! (3×3 stride-2 conv, BN, ReLU6), `features.1…17` (inverted residuals, `conv.{0,1}` conv+BN+ReLU6
//! Sequentials, then the linear 1×1 projection `conv.2`/`conv.3`; the expansion-1 block has no expand conv),
//! `features.18` (the last 1×1 conv to 1280 channels) and `classifier.1` (dropout 0.2, linear). The CIFAR
//! stem runs `features.0` and the first stride-2 stage at stride 1 (the usual CIFAR MobileNetV2, overall
//! stride 8). Last-conv features (bias loss): `features.18`'s output (the last 1×1 conv, after BN and
//! ReLU6), 1280 channels.

use super::global_pool;
use crate::model::arch::{Arch, Stem};
use crate::model::layers::{make_divisible, Act, BlockOptions, ConvBn, Linear};
use crate::model::net::{ClassifierNet, NetInfo, NetOptions};
use crate::model::skipblocknet::Output;
use tch::{nn, Tensor};

/// (expansion t, channels c, repeats n, stride s) of the paper's Table 2.
const SETTINGS: [(f64, i64, usize, i64); 7] = [
    (1.0, 16, 1, 1),
    (6.0, 24, 2, 2),
    (6.0, 32, 3, 2),
    (6.0, 64, 4, 2),
    (6.0, 96, 3, 1),
    (6.0, 160, 3, 2),
    (6.0, 320, 1, 1),
];

#[derive(Debug)]
struct InvertedResidual {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl InvertedResidual {
    fn new(p: nn::Path, cin: i64, cout: i64, stride: i64, expansion: f64, o: BlockOptions) -> Self {
        let hidden = (cin as f64 * expansion).round() as i64;
        let c = p / "conv";
        let expand = (expansion != 1.0).then(|| ConvBn::seq(&(&c / "0"), 0, cin, hidden, 1, 1, 1, Act::Relu6, o));
        let i = usize::from(expand.is_some());
        let depthwise = ConvBn::seq(&(&c / i.to_string()), 0, hidden, hidden, 3, stride, hidden, Act::Relu6, o);
        let project = ConvBn::seq(&c, i + 1, hidden, cout, 1, 1, 1, Act::None, o);
        InvertedResidual { expand, depthwise, project, residual: stride == 1 && cin == cout }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let h = match &self.expand {
            Some(e) => e.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        let h = self.project.forward_t(&self.depthwise.forward_t(&h, train), train);
        if self.residual {
            h + xs
        } else {
            h
        }
    }

    fn fuse(&mut self) {
        if let Some(e) = self.expand.as_mut() {
            e.fuse();
        }
        self.depthwise.fuse();
        self.project.fuse();
    }
}

#[derive(Debug)]
pub struct MobileNetV2 {
    info: NetInfo,
    first: ConvBn,
    blocks: Vec<InvertedResidual>,
    last: ConvBn,
    classifier: Linear,
    dropout: f64,
}

impl MobileNetV2 {
    pub fn new(p: &nn::Path, arch: Arch, num_classes: i64, opts: NetOptions) -> Self {
        let o = opts.block;
        let width = if arch == Arch::Mobilenetv2X075 { 0.75 } else { 1.0 };
        let cifar = opts.stem == Stem::Cifar;
        let f = p / "features";
        let mut cin = make_divisible(32.0 * width, 8);
        let first = ConvBn::seq(&(&f / "0"), 0, 3, cin, 3, if cifar { 1 } else { 2 }, 1, Act::Relu6, o);
        let mut blocks = Vec::new();
        for (si, (t, c, n, s)) in SETTINGS.into_iter().enumerate() {
            let cout = make_divisible(c as f64 * width, 8);
            let s = if cifar && si == 1 { 1 } else { s };
            for i in 0..n {
                let index = blocks.len() + 1;
                blocks.push(InvertedResidual::new(&f / index.to_string(), cin, cout, if i == 0 { s } else { 1 }, t, o));
                cin = cout;
            }
        }
        let last_channels = make_divisible(1280.0 * width.max(1.0), 8);
        let index = blocks.len() + 1;
        let last = ConvBn::seq(&(&f / index.to_string()), 0, cin, last_channels, 1, 1, 1, Act::Relu6, o);
        let classifier = Linear::new(p / "classifier" / "1", last_channels, num_classes);
        MobileNetV2 {
            info: NetInfo::new(arch, opts.stem, num_classes),
            first,
            blocks,
            last,
            classifier,
            dropout: opts.dropout.unwrap_or(0.2),
        }
    }
}

impl ClassifierNet for MobileNetV2 {
    fn info(&self) -> NetInfo {
        self.info
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let t = train && !self.info.frozen;
        let mut x = self.first.forward_t(xs, t);
        for block in &self.blocks {
            x = block.forward_t(&x, t);
        }
        let features = self.last.forward_t(&x, t);
        let logits = self.classifier.forward(&global_pool(&features).dropout(self.dropout, train));
        Output { logits, features }
    }
    fn fuse_bn(&mut self) {
        self.first.fuse();
        self.blocks.iter_mut().for_each(InvertedResidual::fuse);
        self.last.fuse();
    }
    fn set_frozen(&mut self, frozen: bool) {
        self.info.frozen = frozen;
    }
    fn backbone_prefixes(&self) -> Vec<String> {
        vec!["features.".into()]
    }
    fn features_name(&self) -> &'static str {
        "features.18"
    }
}

//! ResNet-18 (He et al. 2016), torchvision's layout and keys (`conv1`, `bn1`, `layer{1..4}.{0,1}.conv1/
//! bn1/conv2/bn2/downsample.{0,1}`, `fc`). ImageNet stem: 7×7 stride-2 conv and 3×3 stride-2 max pool;
//! CIFAR stem: 3×3 stride-1 conv, no max pool (the usual CIFAR ResNet-18, same keys, 11.2 M parameters
//! at 100 classes). Last-conv features (bias loss): `layer4`'s output (after the last block's residual
//! add and ReLU), 512 channels.

use super::{global_pool, max_pool_3x3_s2};
use crate::model::arch::{Arch, Stem};
use crate::model::layers::{Act, BlockOptions, ConvBn, Linear};
use crate::model::net::{ClassifierNet, NetInfo, NetOptions};
use crate::model::skipblocknet::Output;
use tch::{nn, Tensor};

#[derive(Debug)]
struct BasicBlock {
    conv1: ConvBn,
    conv2: ConvBn,
    downsample: Option<ConvBn>,
}

impl BasicBlock {
    fn new(p: nn::Path, cin: i64, cout: i64, stride: i64, o: BlockOptions) -> Self {
        let downsample = (stride != 1 || cin != cout)
            .then(|| ConvBn::seq(&(&p / "downsample"), 0, cin, cout, 1, stride, 1, Act::None, o));
        BasicBlock {
            conv1: ConvBn::new(&p / "conv1", &p / "bn1", cin, cout, 3, stride, 1, Act::Relu, o),
            conv2: ConvBn::new(&p / "conv2", &p / "bn2", cout, cout, 3, 1, 1, Act::None, o),
            downsample,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let h = self.conv2.forward_t(&self.conv1.forward_t(xs, train), train);
        let identity = match &self.downsample {
            Some(d) => d.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        (h + identity).relu()
    }

    fn fuse(&mut self) {
        self.conv1.fuse();
        self.conv2.fuse();
        if let Some(d) = self.downsample.as_mut() {
            d.fuse();
        }
    }
}

#[derive(Debug)]
pub struct ResNet {
    info: NetInfo,
    conv1: ConvBn,
    layers: Vec<Vec<BasicBlock>>,
    fc: Linear,
    dropout: f64,
}

impl ResNet {
    pub fn new(p: &nn::Path, arch: Arch, num_classes: i64, opts: NetOptions) -> Self {
        let o = opts.block;
        let (kernel, stride) = match opts.stem {
            Stem::Imagenet => (7, 2),
            Stem::Cifar => (3, 1),
        };
        let conv1 = ConvBn::new(p / "conv1", p / "bn1", 3, 64, kernel, stride, 1, Act::Relu, o);
        let mut cin = 64;
        let mut layers = Vec::new();
        for (i, cout) in [64, 128, 256, 512].into_iter().enumerate() {
            let l = p / format!("layer{}", i + 1);
            let first_stride = if i == 0 { 1 } else { 2 };
            layers.push(vec![
                BasicBlock::new(&l / "0", cin, cout, first_stride, o),
                BasicBlock::new(&l / "1", cout, cout, 1, o),
            ]);
            cin = cout;
        }
        let fc = Linear::new(p / "fc", 512, num_classes);
        ResNet {
            info: NetInfo::new(arch, opts.stem, num_classes),
            conv1,
            layers,
            fc,
            dropout: opts.dropout.unwrap_or(0.0),
        }
    }
}

impl ClassifierNet for ResNet {
    fn info(&self) -> NetInfo {
        self.info
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let t = train && !self.info.frozen;
        let mut x = self.conv1.forward_t(xs, t);
        if self.info.stem == Stem::Imagenet {
            x = max_pool_3x3_s2(&x);
        }
        for block in self.layers.iter().flatten() {
            x = block.forward_t(&x, t);
        }
        let logits = self.fc.forward(&global_pool(&x).dropout(self.dropout, train));
        Output { logits, features: x }
    }
    fn fuse_bn(&mut self) {
        self.conv1.fuse();
        self.layers.iter_mut().flatten().for_each(BasicBlock::fuse);
    }
    fn set_frozen(&mut self, frozen: bool) {
        self.info.frozen = frozen;
    }
    fn backbone_prefixes(&self) -> Vec<String> {
        ["conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4."].map(String::from).to_vec()
    }
    fn features_name(&self) -> &'static str {
        "layer4"
    }
}

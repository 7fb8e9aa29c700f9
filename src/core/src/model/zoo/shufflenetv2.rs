//! ShuffleNetV2 (Ma et al. 2018) at 0.5× and 1.0×, torchvision's layout and keys: `conv1.{0,1}` (3×3
//! stride-2 conv, BN, ReLU) and a 3×3 stride-2 max pool, `stage{2,3,4}` of 4/8/4 units (`branch1.{0,1,2,3}`
//! in the stride-2 units: depthwise 3×3 + BN, 1×1 + BN + ReLU; `branch2.{0,1,3,4,5,6}`: 1×1 + BN + ReLU,
//! depthwise 3×3 + BN, 1×1 + BN + ReLU; channel split, concatenation and shuffle of 2 groups), `conv5.{0,1}`
//! (1×1 to 1024 channels, BN, ReLU) and `fc`. The CIFAR stem: `conv1` at stride 1 and no max pool.
//! Last-conv features (bias loss): `conv5`'s output (after BN and ReLU), 1024 channels.

use super::{global_pool, max_pool_3x3_s2};
use crate::model::arch::{Arch, Stem};
use crate::model::layers::{Act, BlockOptions, ConvBn, Linear};
use crate::model::net::{ClassifierNet, NetInfo, NetOptions};
use crate::model::skipblocknet::Output;
use tch::{nn, Tensor};

#[derive(Debug)]
struct Unit {
    /// Stride-2 units only: depthwise 3×3 + BN, then 1×1 + BN + ReLU on the whole input.
    branch1: Option<[ConvBn; 2]>,
    branch2: [ConvBn; 3],
}

impl Unit {
    fn new(p: nn::Path, cin: i64, cout: i64, stride: i64, o: BlockOptions) -> Self {
        let half = cout / 2;
        let branch1 = (stride > 1).then(|| {
            let b = &p / "branch1";
            [
                ConvBn::seq(&b, 0, cin, cin, 3, stride, cin, Act::None, o),
                ConvBn::seq(&b, 2, cin, half, 1, 1, 1, Act::Relu, o),
            ]
        });
        let b = &p / "branch2";
        let in2 = if stride > 1 { cin } else { half };
        let branch2 = [
            ConvBn::seq(&b, 0, in2, half, 1, 1, 1, Act::Relu, o),
            ConvBn::seq(&b, 3, half, half, 3, stride, half, Act::None, o),
            ConvBn::seq(&b, 5, half, half, 1, 1, 1, Act::Relu, o),
        ];
        Unit { branch1, branch2 }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let run = |convs: &[ConvBn], x: &Tensor| convs.iter().fold(x.shallow_clone(), |h, c| c.forward_t(&h, train));
        let out = match &self.branch1 {
            Some(b1) => Tensor::cat(&[run(b1, xs), run(&self.branch2, xs)], 1),
            None => {
                let parts = xs.chunk(2, 1);
                Tensor::cat(&[parts[0].shallow_clone(), run(&self.branch2, &parts[1])], 1)
            }
        };
        channel_shuffle(&out, 2)
    }

    fn fuse(&mut self) {
        self.branch1.iter_mut().flatten().chain(self.branch2.iter_mut()).for_each(ConvBn::fuse);
    }
}

fn channel_shuffle(xs: &Tensor, groups: i64) -> Tensor {
    let s = xs.size();
    let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
    xs.view([b, groups, c / groups, h, w]).transpose(1, 2).contiguous().view([b, c, h, w])
}

#[derive(Debug)]
pub struct ShuffleNetV2 {
    info: NetInfo,
    conv1: ConvBn,
    stages: Vec<Unit>,
    conv5: ConvBn,
    fc: Linear,
    dropout: f64,
}

impl ShuffleNetV2 {
    pub fn new(p: &nn::Path, arch: Arch, num_classes: i64, opts: NetOptions) -> Self {
        let o = opts.block;
        let channels: [i64; 3] = if arch == Arch::Shufflenetv2X05 { [48, 96, 192] } else { [116, 232, 464] };
        let stride = if opts.stem == Stem::Cifar { 1 } else { 2 };
        let conv1 = ConvBn::seq(&(p / "conv1"), 0, 3, 24, 3, stride, 1, Act::Relu, o);
        let mut cin = 24;
        let mut stages = Vec::new();
        for (i, (cout, repeats)) in channels.into_iter().zip([4, 8, 4]).enumerate() {
            let s = p / format!("stage{}", i + 2);
            for j in 0..repeats {
                stages.push(Unit::new(&s / j.to_string(), cin, cout, if j == 0 { 2 } else { 1 }, o));
                cin = cout;
            }
        }
        let conv5 = ConvBn::seq(&(p / "conv5"), 0, cin, 1024, 1, 1, 1, Act::Relu, o);
        let fc = Linear::new(p / "fc", 1024, num_classes);
        ShuffleNetV2 {
            info: NetInfo::new(arch, opts.stem, num_classes),
            conv1,
            stages,
            conv5,
            fc,
            dropout: opts.dropout.unwrap_or(0.0),
        }
    }
}

impl ClassifierNet for ShuffleNetV2 {
    fn info(&self) -> NetInfo {
        self.info
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let t = train && !self.info.frozen;
        let mut x = self.conv1.forward_t(xs, t);
        if self.info.stem == Stem::Imagenet {
            x = max_pool_3x3_s2(&x);
        }
        for unit in &self.stages {
            x = unit.forward_t(&x, t);
        }
        let features = self.conv5.forward_t(&x, t);
        let logits = self.fc.forward(&global_pool(&features).dropout(self.dropout, train));
        Output { logits, features }
    }
    fn fuse_bn(&mut self) {
        self.conv1.fuse();
        self.stages.iter_mut().for_each(Unit::fuse);
        self.conv5.fuse();
    }
    fn set_frozen(&mut self, frozen: bool) {
        self.info.frozen = frozen;
    }
    fn backbone_prefixes(&self) -> Vec<String> {
        ["conv1.", "stage2.", "stage3.", "stage4.", "conv5."].map(String::from).to_vec()
    }
    fn features_name(&self) -> &'static str {
        "conv5"
    }
}

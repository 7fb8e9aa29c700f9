//! ShuffleNetV2 0.5× for 32×32 inputs as in the authors' CIFAR-100 release: a 3×3 stride-1 stem
//! (24 channels, conv + BN, no activation), three stages of shuffle units (48, 96, 192 channels; 4, 8
//! and 4 units, each stage starting with a stride-2 unit), a 1×1 conv to 1024 channels, global average
//! pooling and a linear classifier. Every convolution has a bias, as in the release.
//!
//! A stride-1 unit splits the channels in halves: the first passes unchanged, the second goes through
//! 1×1 conv+BN+ReLU → 3×3 depthwise conv+BN → 1×1 conv+BN+ReLU (`residual.0…7`); a stride-2 unit sends
//! the whole input through that branch and through 3×3 depthwise conv+BN → 1×1 conv+BN+ReLU
//! (`shortcut.0…4`), each to half the output channels. The halves are concatenated (shortcut first)
//! and shuffled in two groups.
//!
//! Keys: `pre.{0,1}`, `stage{2,3,4}.{i}.residual.{0,1,3,4,5,6}`, `stage{2,3,4}.0.shortcut.{0,1,2,3}`,
//! `conv5.{0,1}`, `fc`. The bias loss reads the output of `conv5` (b×1024×4×4 at 32×32).

use super::layers::Conv;
use crate::model::layers::{Act, BlockOptions, Linear};
use crate::model::skipblocknet::Output;
use tch::{nn, Tensor};

/// The output channels of the three stages and of `conv5` at width 0.5×.
const CHANNELS: [i64; 4] = [48, 96, 192, 1024];
/// Stride-1 units after each stage's first unit.
const REPEATS: [usize; 3] = [3, 7, 3];

#[derive(Debug)]
struct ShuffleUnit {
    residual: [Conv; 3],
    /// Stride 2 (or a width change): the second branch; none in a stride-1 unit (identity half).
    shortcut: Option<[Conv; 2]>,
}

impl ShuffleUnit {
    fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64, o: BlockOptions) -> Self {
        let half = cout / 2;
        if stride != 1 || cin != cout {
            let r = p / "residual";
            let s = p / "shortcut";
            ShuffleUnit {
                residual: [
                    Conv::seq(&r, 0, [cin, cin, 1, 1, 1], true, Act::Relu, o),
                    Conv::seq(&r, 3, [cin, cin, 3, stride, cin], true, Act::None, o),
                    Conv::seq(&r, 5, [cin, half, 1, 1, 1], true, Act::Relu, o),
                ],
                shortcut: Some([
                    Conv::seq(&s, 0, [cin, cin, 3, stride, cin], true, Act::None, o),
                    Conv::seq(&s, 2, [cin, half, 1, 1, 1], true, Act::Relu, o),
                ]),
            }
        } else {
            let r = p / "residual";
            let c = cin / 2;
            ShuffleUnit {
                residual: [
                    Conv::seq(&r, 0, [c, c, 1, 1, 1], true, Act::Relu, o),
                    Conv::seq(&r, 3, [c, c, 3, 1, c], true, Act::None, o),
                    Conv::seq(&r, 5, [c, c, 1, 1, 1], true, Act::Relu, o),
                ],
                shortcut: None,
            }
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (short, input) = match &self.shortcut {
            Some([a, b]) => (b.forward_t(&a.forward_t(xs, train), train), xs.shallow_clone()),
            None => {
                let half = xs.size()[1] / 2;
                (xs.narrow(1, 0, half), xs.narrow(1, half, half))
            }
        };
        let r = self.residual.iter().fold(input, |x, c| c.forward_t(&x, train));
        channel_shuffle(&Tensor::cat(&[short, r], 1), 2)
    }

    fn fuse(&mut self) {
        self.residual.iter_mut().for_each(Conv::fuse);
        if let Some(s) = self.shortcut.as_mut() {
            s.iter_mut().for_each(Conv::fuse);
        }
    }
}

/// [b, c, h, w] → [b, g, c/g, h, w] → swap the group axes → [b, c, h, w].
fn channel_shuffle(xs: &Tensor, groups: i64) -> Tensor {
    let s = xs.size();
    xs.view([s[0], groups, s[1] / groups, s[2], s[3]]).transpose(1, 2).contiguous().view(s.as_slice())
}

/// The release's ShuffleNetV2 (0.5×).
#[derive(Debug)]
pub struct ShuffleNetV2 {
    pre: Conv,
    units: Vec<ShuffleUnit>,
    conv5: Conv,
    fc: Linear,
}

impl ShuffleNetV2 {
    pub fn new(p: &nn::Path, num_classes: i64, opts: BlockOptions) -> Self {
        let pre = Conv::seq(&(p / "pre"), 0, [3, 24, 3, 1, 1], true, Act::None, opts);
        let mut units = Vec::new();
        let mut cin = 24;
        for (s, (&cout, &repeats)) in CHANNELS.iter().zip(&REPEATS).enumerate() {
            let sp = p / format!("stage{}", s + 2);
            units.push(ShuffleUnit::new(&(&sp / "0"), cin, cout, 2, opts));
            for i in 1..=repeats {
                units.push(ShuffleUnit::new(&(&sp / i.to_string()), cout, cout, 1, opts));
            }
            cin = cout;
        }
        let conv5 = Conv::seq(&(p / "conv5"), 0, [cin, CHANNELS[3], 1, 1, 1], true, Act::Relu, opts);
        ShuffleNetV2 { pre, units, conv5, fc: Linear::new(p / "fc", CHANNELS[3], num_classes) }
    }

    /// Logits and the output of `conv5` (the bias loss's features).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let mut x = self.pre.forward_t(xs, train);
        for unit in &self.units {
            x = unit.forward_t(&x, train);
        }
        let features = self.conv5.forward_t(&x, train);
        let b = features.size()[0];
        let logits = self.fc.forward(&features.adaptive_avg_pool2d([1, 1]).view([b, -1]));
        Output { logits, features }
    }

    /// Folds every batch norm into its convolution (inference).
    pub fn fuse_bn(&mut self) {
        self.pre.fuse();
        self.units.iter_mut().for_each(ShuffleUnit::fuse);
        self.conv5.fuse();
    }
}

//! ResNet-18 for 32×32 inputs as in the authors' CIFAR-100 release: a 3×3 stride-1 stem (64 channels,
//! no max-pool), four stages of two basic blocks (64, 128, 256, 512 channels; the last three start with
//! stride 2 and a 1×1 projection shortcut), global average pooling and a linear classifier.
//!
//! Keys: `conv1.{0,1}`, `conv{2..5}_x.{0,1}.residual_function.{0,1,3,4}`,
//! `conv{3..5}_x.0.shortcut.{0,1}`, `fc`. The bias loss reads the output of `conv5_x` (b×512×4×4 at
//! 32×32).

use crate::model::layers::{Act, BlockOptions, ConvBn, Linear};
use crate::model::skipblocknet::Output;
use tch::{nn, Tensor};

/// Two 3×3 conv+BN (ReLU after the first), plus the shortcut, then ReLU.
#[derive(Debug)]
struct BasicBlock {
    conv1: ConvBn,
    conv2: ConvBn,
    /// 1×1 projection when the stride or the width changes.
    shortcut: Option<ConvBn>,
}

impl BasicBlock {
    fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64, o: BlockOptions) -> Self {
        let r = p / "residual_function";
        let shortcut = (stride != 1 || cin != cout)
            .then(|| ConvBn::seq(&(p / "shortcut"), 0, cin, cout, 1, stride, 1, Act::None, o));
        BasicBlock {
            conv1: ConvBn::seq(&r, 0, cin, cout, 3, stride, 1, Act::Relu, o),
            conv2: ConvBn::seq(&r, 3, cout, cout, 3, 1, 1, Act::None, o),
            shortcut,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let r = self.conv2.forward_t(&self.conv1.forward_t(xs, train), train);
        let s = match &self.shortcut {
            Some(c) => c.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        (r + s).relu()
    }

    fn fuse(&mut self) {
        self.conv1.fuse();
        self.conv2.fuse();
        if let Some(s) = self.shortcut.as_mut() {
            s.fuse();
        }
    }
}

/// The release's ResNet-18.
#[derive(Debug)]
pub struct ResNet18 {
    stem: ConvBn,
    stages: Vec<Vec<BasicBlock>>,
    fc: Linear,
}

impl ResNet18 {
    pub fn new(p: &nn::Path, num_classes: i64, opts: BlockOptions) -> Self {
        let stem = ConvBn::seq(&(p / "conv1"), 0, 3, 64, 3, 1, 1, Act::Relu, opts);
        let mut cin = 64;
        let mut stages = Vec::new();
        for (i, (cout, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)].into_iter().enumerate() {
            let sp = p / format!("conv{}_x", i + 2);
            let first = BasicBlock::new(&(&sp / "0"), cin, cout, stride, opts);
            let second = BasicBlock::new(&(&sp / "1"), cout, cout, 1, opts);
            stages.push(vec![first, second]);
            cin = cout;
        }
        ResNet18 { stem, stages, fc: Linear::new(p / "fc", 512, num_classes) }
    }

    /// Logits and the output of the last residual block (the bias loss's features).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let mut x = self.stem.forward_t(xs, train);
        for block in self.stages.iter().flatten() {
            x = block.forward_t(&x, train);
        }
        let b = x.size()[0];
        let logits = self.fc.forward(&x.adaptive_avg_pool2d([1, 1]).view([b, -1]));
        Output { logits, features: x }
    }

    /// Folds every batch norm into its convolution (inference).
    pub fn fuse_bn(&mut self) {
        self.stem.fuse();
        for block in self.stages.iter_mut().flatten() {
            block.fuse();
        }
    }
}

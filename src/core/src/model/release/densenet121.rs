//! DenseNet-121 (DenseNet-BC, growth rate 32, blocks of 6, 12, 24 and 16 layers, compression 0.5) for
//! 32×32 inputs as in the authors' CIFAR-100 release: a 3×3 stride-1 stem convolution (64 channels, no
//! bias, no batch norm), dense blocks of pre-activation bottlenecks (BN → ReLU → 1×1 conv to 128 →
//! BN → ReLU → 3×3 conv to 32, concatenated to their input), transitions (BN → 1×1 conv → 2×2 average
//! pool) between them, a final BN → ReLU, global average pooling and a linear classifier.
//!
//! Keys: `conv1`, `features.dense_block_layer_{0,1,2}.bottle_neck_layer_{i}.bottle_neck.{0,2,3,5}`,
//! `features.transition_layer_{0,1,2}.down_sample.{0,1}`, `features.dense_block3.bottle_neck_layer_{i}…`
//! (the release names its last block so), `features.bn`, `linear`. The bias loss reads the output of
//! the final BN → ReLU (b×1024×4×4 at 32×32).

use super::layers::{batch_norm, Conv};
use crate::model::layers::{Act, BlockOptions, Linear};
use crate::model::skipblocknet::Output;
use tch::{nn, Tensor};

const GROWTH: i64 = 32;
const BLOCKS: [usize; 4] = [6, 12, 24, 16];
const STEM: i64 = 2 * GROWTH;

/// BN → ReLU → 1×1 conv (with the second BN and ReLU after it) → 3×3 conv; its output is concatenated
/// to its input.
#[derive(Debug)]
struct Bottleneck {
    bn: nn::BatchNorm,
    conv1: Conv,
    conv2: Conv,
}

impl Bottleneck {
    fn new(p: &nn::Path, cin: i64, o: BlockOptions) -> Self {
        let p = p / "bottle_neck";
        let inner = 4 * GROWTH;
        Bottleneck {
            bn: batch_norm(&p / "0", cin, o),
            conv1: Conv::seq(&p, 2, [cin, inner, 1, 1, 1], false, Act::Relu, o),
            conv2: Conv::new(&p / "5", None, [inner, GROWTH, 3, 1, 1], false, Act::None, o),
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = self.conv2.forward_t(&self.conv1.forward_t(&xs.apply_t(&self.bn, train).relu(), train), train);
        Tensor::cat(&[xs.shallow_clone(), y], 1)
    }
}

/// BN → 1×1 conv → 2×2 average pool.
#[derive(Debug)]
struct Transition {
    bn: nn::BatchNorm,
    conv: Conv,
    bn_eps: f64,
    /// The batch norm is folded into the convolution (eval mode).
    fused: bool,
}

impl Transition {
    fn new(p: &nn::Path, cin: i64, cout: i64, o: BlockOptions) -> Self {
        let p = p / "down_sample";
        Transition {
            bn: batch_norm(&p / "0", cin, o),
            conv: Conv::new(&p / "1", None, [cin, cout, 1, 1, 1], false, Act::None, o),
            bn_eps: o.bn_eps,
            fused: false,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = if self.fused && !train { xs.shallow_clone() } else { xs.apply_t(&self.bn, train) };
        self.conv.forward_t(&x, train).avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
    }

    fn fuse(&mut self) {
        self.conv.fuse_input(&self.bn, self.bn_eps);
        self.fused = true;
    }
}

/// The release's DenseNet-121.
#[derive(Debug)]
pub struct DenseNet121 {
    stem: Conv,
    blocks: Vec<Vec<Bottleneck>>,
    transitions: Vec<Transition>,
    bn: nn::BatchNorm,
    linear: Linear,
}

impl DenseNet121 {
    pub fn new(p: &nn::Path, num_classes: i64, opts: BlockOptions) -> Self {
        let stem = Conv::new(p / "conv1", None, [3, STEM, 3, 1, 1], false, Act::None, opts);
        let f = p / "features";
        let (mut blocks, mut transitions) = (Vec::new(), Vec::new());
        let mut c = STEM;
        for (i, &n) in BLOCKS.iter().enumerate() {
            let last = i + 1 == BLOCKS.len();
            let name = if last { format!("dense_block{i}") } else { format!("dense_block_layer_{i}") };
            let bp = &f / name;
            let mut block = Vec::new();
            for j in 0..n {
                block.push(Bottleneck::new(&(&bp / format!("bottle_neck_layer_{j}")), c, opts));
                c += GROWTH;
            }
            blocks.push(block);
            if !last {
                let out = c / 2;
                transitions.push(Transition::new(&(&f / format!("transition_layer_{i}")), c, out, opts));
                c = out;
            }
        }
        let bn = batch_norm(&f / "bn", c, opts);
        DenseNet121 { stem, blocks, transitions, bn, linear: Linear::new(p / "linear", c, num_classes) }
    }

    /// Logits and the last dense block's output after the final BN → ReLU (the bias loss's features).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        let mut x = self.stem.forward_t(xs, train);
        for (i, block) in self.blocks.iter().enumerate() {
            for layer in block {
                x = layer.forward_t(&x, train);
            }
            if let Some(t) = self.transitions.get(i) {
                x = t.forward_t(&x, train);
            }
        }
        let features = x.apply_t(&self.bn, train).relu();
        let b = features.size()[0];
        let logits = self.linear.forward(&features.adaptive_avg_pool2d([1, 1]).view([b, -1]));
        Output { logits, features }
    }

    /// Folds the batch norms that can be folded (inference): each bottleneck's second BN into its 1×1
    /// conv, each transition's BN into its 1×1 conv. The pre-activation BNs before a ReLU stay.
    pub fn fuse_bn(&mut self) {
        for layer in self.blocks.iter_mut().flatten() {
            layer.conv1.fuse();
        }
        self.transitions.iter_mut().for_each(Transition::fuse);
    }
}

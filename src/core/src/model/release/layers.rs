//! Layers of the release's CIFAR models that [`crate::model::layers`] does not have: convolutions with
//! PyTorch's default initialisation, with or without bias, optionally followed by a batch norm and an
//! activation ([`Conv`]), foldable for inference; every convolution reports itself to
//! [`crate::model::trace`].

use crate::model::layers::{Act, BlockOptions};
use crate::model::trace;
use tch::{nn, Tensor};

/// A batch norm with the block options (weight 1, bias 0).
pub fn batch_norm(p: nn::Path, channels: i64, o: BlockOptions) -> nn::BatchNorm {
    let config = nn::BatchNormConfig { momentum: o.bn_momentum, eps: o.bn_eps, ..Default::default() };
    nn::batch_norm2d(p, channels, config)
}

/// A k×k convolution (padding (k − 1)/2) with or without bias, then an optional batch norm and an
/// activation. Initialisation as PyTorch's `nn.Conv2d` (weights and bias uniform in ±1/√fan-in).
#[derive(Debug)]
pub struct Conv {
    pub name: String,
    pub conv: nn::Conv2D,
    pub bn: Option<nn::BatchNorm>,
    pub act: Act,
    pub kernel: i64,
    pub stride: i64,
    pub groups: i64,
    pub in_channels: i64,
    bn_eps: f64,
    /// Weights and bias with the batch norm(s) folded in (eval mode only).
    fused: Option<(Tensor, Tensor)>,
}

/// The shape of a [`Conv`]: `[in, out, kernel, stride, groups]`.
pub type Shape = [i64; 5];

impl Conv {
    /// Conv at `conv_path`, its batch norm (when `bn_path` is given) at `bn_path`.
    pub fn new(
        conv_path: nn::Path,
        bn_path: Option<nn::Path>,
        shape: Shape,
        bias: bool,
        act: Act,
        o: BlockOptions,
    ) -> Self {
        let [cin, cout, kernel, stride, groups] = shape;
        let name = conv_path.components().collect::<Vec<_>>().join(".");
        let bound = 1.0 / ((cin / groups * kernel * kernel) as f64).sqrt();
        let config = nn::ConvConfig {
            stride,
            padding: (kernel - 1) / 2,
            groups,
            bias,
            ws_init: nn::Init::Uniform { lo: -bound, up: bound },
            bs_init: nn::Init::Uniform { lo: -bound, up: bound },
            ..Default::default()
        };
        let conv = nn::conv2d(conv_path, cin, cout, kernel, config);
        let bn = bn_path.map(|p| batch_norm(p, cout, o));
        Conv { name, conv, bn, act, kernel, stride, groups, in_channels: cin, bn_eps: o.bn_eps, fused: None }
    }

    /// Conv at `{p}.{i}`, its batch norm at `{p}.{i + 1}` (a `nn.Sequential`).
    pub fn seq(p: &nn::Path, i: usize, shape: Shape, bias: bool, act: Act, o: BlockOptions) -> Self {
        Conv::new(p / i.to_string(), Some(p / (i + 1).to_string()), shape, bias, act, o)
    }

    pub fn params(&self) -> i64 {
        let bias = self.conv.bs.as_ref().map_or(0, |b| b.numel() as i64);
        let bn = self.bn.as_ref().map_or(0, |bn| 2 * bn.running_mean.numel() as i64);
        self.conv.ws.numel() as i64 + bias + bn
    }

    /// The convolution's weights and bias (zeros without one), folded or not.
    fn weights(&self) -> (Tensor, Tensor) {
        match &self.fused {
            Some((w, b)) => (w.shallow_clone(), b.shallow_clone()),
            None => {
                let w = self.conv.ws.detach();
                let b = self
                    .conv
                    .bs
                    .as_ref()
                    .map_or_else(|| Tensor::zeros([w.size()[0]], (w.kind(), w.device())), |b| b.detach());
                (w, b)
            }
        }
    }

    /// Folds the following batch norm into the weights for inference: w' = w·s, b' = (b − μ)·s + β with
    /// s = γ/√(σ² + ε). Without a batch norm, nothing changes.
    pub fn fuse(&mut self) {
        let Some(bn) = &self.bn else { return };
        let fused = tch::no_grad(|| {
            let (w, b) = self.weights();
            let (scale, shift) = affine(bn, self.bn_eps);
            let w = w * scale.view([-1, 1, 1, 1]);
            let b = b * &scale + shift;
            (w.contiguous(), b.contiguous())
        });
        self.fused = Some(fused);
    }

    /// Folds a batch norm that runs right before this (1×1, ungrouped) convolution into it:
    /// conv(s·x + t) = (w·s)·x + (b + Σ w·t).
    pub fn fuse_input(&mut self, bn: &nn::BatchNorm, eps: f64) {
        assert!(self.kernel == 1 && self.groups == 1, "only a 1x1 dense convolution absorbs its input's batch norm");
        let fused = tch::no_grad(|| {
            let (w, b) = self.weights();
            let (scale, shift) = affine(bn, eps);
            let b = b + (&w * shift.view([1, -1, 1, 1])).sum_dim_intlist([1, 2, 3].as_slice(), false, w.kind());
            ((w * scale.view([1, -1, 1, 1])).contiguous(), b.contiguous())
        });
        self.fused = Some(fused);
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = match (&self.fused, train) {
            (Some((w, b)), false) => {
                let p = (self.kernel - 1) / 2;
                xs.conv2d(w, Some(b), [self.stride, self.stride], [p, p], [1, 1], self.groups)
            }
            _ => {
                let y = xs.apply(&self.conv);
                match &self.bn {
                    Some(bn) => y.apply_t(bn, train),
                    None => y,
                }
            }
        };
        let ys = self.act.apply(ys);
        if trace::active() {
            let per_output = self.in_channels / self.groups * self.kernel * self.kernel;
            let kind = format!("conv{}x{}{}", self.kernel, self.kernel, if self.groups > 1 { " dw" } else { "" });
            trace::record(&self.name, &kind, xs, &ys, self.params(), per_output);
        }
        ys
    }
}

/// The eval-mode batch norm as y = scale·x + shift, per channel.
fn affine(bn: &nn::BatchNorm, eps: f64) -> (Tensor, Tensor) {
    let gamma = bn.ws.as_ref().map_or_else(|| bn.running_var.ones_like(), |w| w.detach());
    let beta = bn.bs.as_ref().map_or_else(|| bn.running_mean.zeros_like(), |b| b.detach());
    let scale = gamma / (&bn.running_var + eps).sqrt();
    let shift = beta - &bn.running_mean * &scale;
    (scale, shift)
}

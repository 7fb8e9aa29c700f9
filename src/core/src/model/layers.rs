//! The building blocks shared by SkipblockNet, MobileNetV3 and the SSD heads: conv+BN+activation,
//! squeeze-excite, the inverted residual and the skip block. Variable paths follow the authors' PyTorch
//! release (`conv.0.weight`, `conv.1.running_mean`, `fc.0.weight`, `core_block.3.weight`, …) so their
//! state dicts load as they are.

use super::trace;
use tch::{nn, nn::Module, Tensor};

/// `make_divisible(v, 8)` of the MobileNet family: the nearest multiple of 8 (at least 8), plus 8 if
/// rounding lost more than 10%.
pub fn make_divisible(v: f64, divisor: i64) -> i64 {
    let d = divisor as f64;
    let mut new_v = ((v + d / 2.0) as i64 / divisor * divisor).max(divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// A k×k convolution with "same" padding ((k − 1) / 2): `[cin, cout, kernel, stride, groups]`, an
/// optional bias (initialised to 0) and the weights drawn from `init`.
fn same_conv(p: nn::Path, shape: [i64; 5], bias: bool, init: nn::Init) -> nn::Conv2D {
    let [cin, cout, kernel, stride, groups] = shape;
    let config = nn::ConvConfig {
        stride,
        padding: (kernel - 1) / 2,
        groups,
        bias,
        ws_init: init,
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, cin, cout, kernel, config)
}

/// Activation after a conv+BN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    None,
    Relu,
    Relu6,
    Hswish,
}

impl Act {
    pub fn apply(self, xs: Tensor) -> Tensor {
        match self {
            Act::None => xs,
            Act::Relu => xs.relu(),
            Act::Relu6 => xs.relu6(),
            Act::Hswish => xs.hardswish(),
        }
    }
}

/// Options every block is built with; stored in checkpoints so a model is rebuilt as it was trained.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockOptions {
    /// PyTorch convention (fraction of the new statistic): 0.01 is TF's 0.99.
    pub bn_momentum: f64,
    pub bn_eps: f64,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions { bn_momentum: 0.1, bn_eps: 1e-5 }
    }
}

/// k×k convolution without bias, batch norm, activation. Weights at `{conv_path}.weight`, BN at `bn_path`.
#[derive(Debug)]
pub struct ConvBn {
    pub name: String,
    pub conv: nn::Conv2D,
    pub bn: nn::BatchNorm,
    pub act: Act,
    pub kernel: i64,
    pub groups: i64,
    pub in_channels: i64,
    pub out_channels: i64,
    pub stride: i64,
    bn_eps: f64,
    bn_momentum: f64,
    /// Conv weights and bias with the BN folded in (inference only, see [`ConvBn::fuse`]).
    fused: Option<(Tensor, Tensor)>,
}

#[allow(clippy::too_many_arguments)]
impl ConvBn {
    pub fn new(
        conv_path: nn::Path,
        bn_path: nn::Path,
        cin: i64,
        cout: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
        act: Act,
        opts: BlockOptions,
    ) -> Self {
        let name = conv_path.components().collect::<Vec<_>>().join(".");
        // He initialisation of the authors' release: N(0, sqrt(2 / (k·k·out))).
        let std = (2.0 / (kernel * kernel * cout) as f64).sqrt();
        let conv =
            same_conv(conv_path, [cin, cout, kernel, stride, groups], false, nn::Init::Randn { mean: 0.0, stdev: std });
        let bn = batch_norm(bn_path, cout, opts);
        ConvBn {
            name,
            conv,
            bn,
            act,
            kernel,
            groups,
            in_channels: cin,
            out_channels: cout,
            stride,
            bn_eps: opts.bn_eps,
            bn_momentum: opts.bn_momentum,
            fused: None,
        }
    }

    /// Conv at `{p}/{i}`, BN at `{p}/{i+1}` (the Sequential layout of the release).
    pub fn seq(
        p: &nn::Path,
        i: usize,
        cin: i64,
        cout: i64,
        k: i64,
        s: i64,
        groups: i64,
        act: Act,
        o: BlockOptions,
    ) -> Self {
        ConvBn::new(p / i.to_string(), p / (i + 1).to_string(), cin, cout, k, s, groups, act, o)
    }

    pub fn params(&self) -> i64 {
        self.conv.ws.numel() as i64 + self.bn.ws.as_ref().map_or(0, |w| w.numel() as i64) * 2
    }

    /// Folds the batch norm into the convolution for inference: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε).
    /// Eval-mode forward passes then run one convolution with bias; training ignores the folded copy.
    /// Call it once the weights are final (after loading a checkpoint).
    pub fn fuse(&mut self) {
        let fused = tch::no_grad(|| {
            let bn = &self.bn;
            let gamma = bn.ws.as_ref().map_or_else(|| bn.running_var.ones_like(), |w| w.detach());
            let beta = bn.bs.as_ref().map_or_else(|| bn.running_mean.zeros_like(), |b| b.detach());
            let scale = gamma / (&bn.running_var + self.bn_eps).sqrt();
            let w = &self.conv.ws * scale.view([-1, 1, 1, 1]);
            let b = beta - &bn.running_mean * &scale;
            (w.contiguous(), b.contiguous())
        });
        self.fused = Some(fused);
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = match (&self.fused, train) {
            (Some((w, b)), false) => {
                let p = (self.kernel - 1) / 2;
                self.act.apply(xs.conv2d(w, Some(b), [self.stride, self.stride], [p, p], [1, 1], self.groups))
            }
            _ => {
                let h = xs.apply(&self.conv);
                // Plain batch norm unless synchronised across data-parallel ranks (`train.sync_bn`).
                self.act.apply(crate::dist::sync_bn::batch_norm_t(&h, &self.bn, self.bn_eps, self.bn_momentum, train))
            }
        };
        if trace::active() {
            let per_output = self.in_channels / self.groups * self.kernel * self.kernel;
            trace::record(
                &self.name,
                &format!("conv{}x{}{}", self.kernel, self.kernel, if self.groups > 1 { " dw" } else { "" }),
                xs,
                &ys,
                self.params(),
                per_output,
            );
        }
        ys
    }
}

/// A plain k×k convolution with bias and no BN (the SSD prediction heads), padding (k−1)/2, reporting
/// itself to the tracer. Weights Xavier-uniform (the reference SSD implementations' head init), bias 0.
#[derive(Debug)]
pub struct Conv {
    pub name: String,
    pub conv: nn::Conv2D,
    pub kernel: i64,
    pub groups: i64,
    pub in_channels: i64,
    pub out_channels: i64,
}

impl Conv {
    pub fn new(p: nn::Path, cin: i64, cout: i64, kernel: i64, stride: i64, groups: i64) -> Self {
        let fan_in = (cin / groups * kernel * kernel) as f64;
        let fan_out = (cout / groups * kernel * kernel) as f64;
        let bound = (6.0 / (fan_in + fan_out)).sqrt();
        let spec = ConvSpec { stride, groups, ..ConvSpec::same(kernel) };
        Conv::with(p, cin, cout, spec, nn::Init::Uniform { lo: -bound, up: bound })
    }

    /// Any convolution: `spec` gives kernel, stride, padding, groups and the bias (initialised to 0),
    /// `init` the weights (the model zoo's convolutions, DenseNet's pre-activation ones, SqueezeNet's).
    pub fn with(p: nn::Path, cin: i64, cout: i64, spec: ConvSpec, init: nn::Init) -> Self {
        let name = p.components().collect::<Vec<_>>().join(".");
        let config = nn::ConvConfig {
            stride: spec.stride,
            padding: spec.padding,
            groups: spec.groups,
            bias: spec.bias,
            ws_init: init,
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let conv = nn::conv2d(p, cin, cout, spec.kernel, config);
        Conv { name, conv, kernel: spec.kernel, groups: spec.groups, in_channels: cin, out_channels: cout }
    }

    pub fn params(&self) -> i64 {
        self.conv.ws.numel() as i64 + self.conv.bs.as_ref().map_or(0, |b| b.numel() as i64)
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let ys = xs.apply(&self.conv);
        if trace::active() {
            let per_output = self.in_channels / self.groups * self.kernel * self.kernel;
            let kind = format!("conv{}x{}{}", self.kernel, self.kernel, if self.groups > 1 { " dw" } else { "" });
            trace::record(&self.name, &kind, xs, &ys, self.params(), per_output);
        }
        ys
    }
}

/// Geometry of a [`Conv::with`] convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
    pub groups: i64,
    pub bias: bool,
}

impl ConvSpec {
    /// k×k, stride 1, "same" padding ((k − 1) / 2), no groups, with a bias.
    pub fn same(kernel: i64) -> Self {
        ConvSpec { kernel, stride: 1, padding: (kernel - 1) / 2, groups: 1, bias: true }
    }
}

/// He (Kaiming) normal initialisation in fan-out mode for ReLU, torchvision's conv init:
/// N(0, sqrt(2 / (k·k·out / groups))).
pub fn kaiming_fan_out(cout: i64, kernel: i64, groups: i64) -> nn::Init {
    nn::Init::Randn { mean: 0.0, stdev: (2.0 / (kernel * kernel * cout / groups.max(1)) as f64).sqrt() }
}

/// A batch norm with weight 1, bias 0 and the block options' momentum and epsilon.
pub fn batch_norm(p: nn::Path, channels: i64, opts: BlockOptions) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        channels,
        nn::BatchNormConfig {
            momentum: opts.bn_momentum,
            eps: opts.bn_eps,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        },
    )
}

/// A linear layer that reports itself to the tracer.
#[derive(Debug)]
pub struct Linear {
    pub name: String,
    pub linear: nn::Linear,
}

impl Linear {
    /// Weights ~ N(0, 0.01), bias 0 (the release's initialisation).
    pub fn new(p: nn::Path, cin: i64, cout: i64) -> Self {
        let name = p.components().collect::<Vec<_>>().join(".");
        let linear = nn::linear(
            p,
            cin,
            cout,
            nn::LinearConfig {
                ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.01 },
                bs_init: Some(nn::Init::Const(0.0)),
                bias: true,
            },
        );
        Linear { name, linear }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let ys = self.linear.forward(xs);
        if trace::active() {
            let (o, i) = (self.linear.ws.size()[0], self.linear.ws.size()[1]);
            trace::record(&self.name, "linear", xs, &ys, o * i + o, i);
        }
        ys
    }
}

/// Squeeze-excite: global average pool → Linear(c → make_divisible(c/4)) → ReLU → Linear(→ c) →
/// hard-sigmoid → channel-wise scale. Paths `{p}.fc.0` and `{p}.fc.2`.
#[derive(Debug)]
pub struct SqueezeExcite {
    fc1: Linear,
    fc2: Linear,
}

impl SqueezeExcite {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        let hidden = make_divisible(channels as f64 / 4.0, 8);
        let fc = p / "fc";
        SqueezeExcite { fc1: Linear::new(&fc / "0", channels, hidden), fc2: Linear::new(&fc / "2", hidden, channels) }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, c) = (xs.size()[0], xs.size()[1]);
        let s = xs.adaptive_avg_pool2d([1, 1]).view([b, c]);
        let s = self.fc2.forward(&self.fc1.forward(&s).relu()).hardsigmoid();
        xs * s.view([b, c, 1, 1])
    }
}

/// Inverted residual: 1×1 expand (conv.0/1) → k×k depthwise (conv.3/4) → optional SE (conv.6) →
/// 1×1 project (conv.7/8, no activation); residual add when stride 1 and in = out.
/// With expansion ratio 1 and `expand = false` (MobileNetV3's first block) the expand conv is absent.
#[derive(Debug)]
pub struct InvertedResidual {
    pub name: String,
    pub expand: Option<ConvBn>,
    pub depthwise: ConvBn,
    pub se: Option<SqueezeExcite>,
    pub project: ConvBn,
    pub residual: bool,
    pub stride: i64,
    pub hidden: i64,
}

impl InvertedResidual {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        p: nn::Path,
        cin: i64,
        hidden: i64,
        cout: i64,
        kernel: i64,
        stride: i64,
        se: bool,
        act: Act,
        expand: bool,
        o: BlockOptions,
    ) -> Self {
        let name = p.components().collect::<Vec<_>>().join(".");
        let c = &p / "conv";
        let expand = (expand || hidden != cin).then(|| ConvBn::seq(&c, 0, cin, hidden, 1, 1, 1, act, o));
        let depthwise = ConvBn::seq(&c, 3, hidden, hidden, kernel, stride, hidden, act, o);
        let se = se.then(|| SqueezeExcite::new(&c / "6", hidden));
        let project = ConvBn::seq(&c, 7, hidden, cout, 1, 1, 1, Act::None, o);
        InvertedResidual { name, expand, depthwise, se, project, residual: stride == 1 && cin == cout, stride, hidden }
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_tap(xs, train).0
    }

    pub fn fuse(&mut self) {
        if let Some(e) = self.expand.as_mut() {
            e.fuse();
        }
        self.depthwise.fuse();
        self.project.fuse();
    }

    /// Also returns the expansion output (after the expand conv's activation): SSDLite's first head taps
    /// it in the first stride-2 block of the last stage.
    pub fn forward_tap(&self, xs: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        let expanded = self.expand.as_ref().map(|e| e.forward_t(xs, train));
        let h = self.depthwise.forward_t(expanded.as_ref().unwrap_or(xs), train);
        let h = match &self.se {
            Some(se) => se.forward(&h),
            None => h,
        };
        let h = self.project.forward_t(&h, train);
        let out = if self.residual { h + xs } else { h };
        (out, expanded)
    }
}

/// Skip block: adaptive average pool of the base block's output to the spatial size of the tensor it
/// joins, then 1×1 conv → BN → ReLU → depthwise k×k → BN → ReLU → 1×1 conv → BN (`core_block.0…7`).
#[derive(Debug)]
pub struct SkipBlock {
    pub expand: ConvBn,
    pub depthwise: ConvBn,
    pub project: ConvBn,
}

impl SkipBlock {
    pub fn new(p: nn::Path, cin: i64, hidden: i64, cout: i64, kernel: i64, o: BlockOptions) -> Self {
        let c = &p / "core_block";
        SkipBlock {
            expand: ConvBn::seq(&c, 0, cin, hidden, 1, 1, 1, Act::Relu, o),
            depthwise: ConvBn::seq(&c, 3, hidden, hidden, kernel, 1, hidden, Act::Relu, o),
            project: ConvBn::seq(&c, 6, hidden, cout, 1, 1, 1, Act::None, o),
        }
    }

    pub fn fuse(&mut self) {
        self.expand.fuse();
        self.depthwise.fuse();
        self.project.fuse();
    }

    /// The block's contribution for a target of spatial size `hw`.
    pub fn forward_t(&self, base: &Tensor, hw: [i64; 2], train: bool) -> Tensor {
        let pooled = base.adaptive_avg_pool2d(hw);
        let h = self.expand.forward_t(&pooled, train);
        let h = self.depthwise.forward_t(&h, train);
        self.project.forward_t(&h, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_the_reference_rule() {
        assert_eq!(make_divisible(16.0 * 4.0, 8), 64);
        assert_eq!(make_divisible(80.0 * 2.3, 8), 184);
        assert_eq!(make_divisible(72.0 / 4.0, 8), 24); // 16 < 0.9·18 → +8
        assert_eq!(make_divisible(16.0 * 2.3, 8), 40);
        assert_eq!(make_divisible(3.0, 8), 8);
        assert_eq!(make_divisible(120.0 / 4.0, 8), 32);
    }

    #[test]
    fn plain_conv_has_a_bias_and_reports_its_cost() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let conv = Conv::new(vs.root() / "head", 8, 6, 3, 1, 1);
        let xs = Tensor::ones([1, 8, 5, 5], (tch::Kind::Float, tch::Device::Cpu));
        let (ys, records, _) = trace::traced(false, || conv.forward(&xs));
        assert_eq!(ys.size(), vec![1, 6, 5, 5]);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].name, "head");
        assert_eq!(records[0].params, 8 * 6 * 9 + 6);
        assert_eq!(records[0].macs, 6 * 25 * 8 * 9);
        assert_eq!(conv.conv.bs.as_ref().map(|b| b.abs().sum(tch::Kind::Float).double_value(&[])), Some(0.0));
    }
}

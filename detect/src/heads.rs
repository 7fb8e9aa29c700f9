//! The layers the detector adds to its backbone (as torchvision's `ssdlite.py` / `ssd.py` heads and
//! extras): the extra feature layers that halve the last map down to 1×1, the optional 1×1 adapters on
//! the backbone taps (regular SSD), and the box-regression / classification predictors of each map.
//!
//! * SSDLite (MobileNetV2's setup): extras are inverted residuals (expand 1×1 → depthwise 3×3 stride 2 →
//!   project 1×1, ReLU6); predictors are separable (depthwise 3×3 + BN + ReLU6, pointwise 1×1 with bias),
//!   except on the last (1×1) map, a plain 1×1 conv.
//! * SSD: extras are 1×1 conv → BN → ReLU → 3×3 stride-2 conv → BN → ReLU; predictors are plain 3×3
//!   convs with bias.

use skipblock_core::model::layers::{Act, BlockOptions, Conv, ConvBn, InvertedResidual};
use tch::{nn, Tensor};

/// One extra feature layer (stride 2). Built once per model: the variants' sizes do not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Extra {
    /// Inverted residual (`extras.{i}.conv.{0,1,3,4,7,8}`).
    Lite(InvertedResidual),
    /// 1×1 reduce (`extras.{i}.{0,1}`) then 3×3 stride 2 (`extras.{i}.{3,4}`).
    Full { reduce: ConvBn, down: ConvBn },
}

impl Extra {
    /// An inverted residual `cin → hidden → cout`, stride 2.
    pub fn lite(p: nn::Path, cin: i64, hidden: i64, cout: i64, o: BlockOptions) -> Self {
        Extra::Lite(InvertedResidual::new(p, cin, hidden, cout, 3, 2, false, Act::Relu6, true, o))
    }

    /// 1×1 `cin → mid`, 3×3 stride 2 `mid → cout`, each with BN and ReLU.
    pub fn full(p: nn::Path, cin: i64, mid: i64, cout: i64, o: BlockOptions) -> Self {
        Extra::Full {
            reduce: ConvBn::seq(&p, 0, cin, mid, 1, 1, 1, Act::Relu, o),
            down: ConvBn::seq(&p, 3, mid, cout, 3, 2, 1, Act::Relu, o),
        }
    }

    /// Folds its batch norms into the convolutions (inference only).
    pub fn fuse(&mut self) {
        match self {
            Extra::Lite(block) => block.fuse(),
            Extra::Full { reduce, down } => {
                reduce.fuse();
                down.fuse();
            }
        }
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Extra::Lite(block) => block.forward_t(xs, train),
            Extra::Full { reduce, down } => down.forward_t(&reduce.forward_t(xs, train), train),
        }
    }
}

/// A predictor: maps a feature map to `outputs` channels per location.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Predictor {
    /// A plain conv with bias (`{p}`), 3×3 (SSD) or 1×1 (SSDLite's last map).
    Plain(Conv),
    /// Depthwise 3×3 + BN + ReLU6 (`{p}.0`, `{p}.1`), then pointwise 1×1 with bias (`{p}.3`).
    Separable { depthwise: ConvBn, pointwise: Conv },
}

impl Predictor {
    pub fn plain(p: nn::Path, cin: i64, outputs: i64, kernel: i64) -> Self {
        Predictor::Plain(Conv::new(p, cin, outputs, kernel, 1, 1))
    }

    pub fn separable(p: nn::Path, cin: i64, outputs: i64, o: BlockOptions) -> Self {
        Predictor::Separable {
            depthwise: ConvBn::seq(&p, 0, cin, cin, 3, 1, cin, Act::Relu6, o),
            pointwise: Conv::new(&p / "3", cin, outputs, 1, 1, 1),
        }
    }

    /// Folds the separable predictor's batch norm into its depthwise conv (a plain one has none).
    pub fn fuse(&mut self) {
        if let Predictor::Separable { depthwise, .. } = self {
            depthwise.fuse();
        }
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Predictor::Plain(conv) => conv.forward(xs),
            Predictor::Separable { depthwise, pointwise } => pointwise.forward(&depthwise.forward_t(xs, train)),
        }
    }
}

/// The box-regression and classification predictors of one feature map.
#[derive(Debug)]
pub struct Head {
    pub loc: Predictor,
    pub conf: Predictor,
    pub boxes_per_location: i64,
    pub num_classes: i64,
}

impl Head {
    /// `loc.{k}` and `conf.{k}` under `p`.
    pub fn new(
        p: &nn::Path,
        k: usize,
        cin: i64,
        boxes_per_location: i64,
        num_classes: i64,
        kind: HeadKind,
        o: BlockOptions,
    ) -> Self {
        let (loc_p, conf_p) = (p / "loc" / k.to_string(), p / "conf" / k.to_string());
        let (nl, nc) = (boxes_per_location * 4, boxes_per_location * num_classes);
        let (loc, conf) = match kind {
            HeadKind::Full => (Predictor::plain(loc_p, cin, nl, 3), Predictor::plain(conf_p, cin, nc, 3)),
            HeadKind::Separable => (Predictor::separable(loc_p, cin, nl, o), Predictor::separable(conf_p, cin, nc, o)),
            HeadKind::Pointwise => (Predictor::plain(loc_p, cin, nl, 1), Predictor::plain(conf_p, cin, nc, 1)),
        };
        Head { loc, conf, boxes_per_location, num_classes }
    }

    pub fn fuse(&mut self) {
        self.loc.fuse();
        self.conf.fuse();
    }

    /// `[B, H·W·A, 4]` offsets and `[B, H·W·A, C]` logits, locations row-major, A priors per location.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> (Tensor, Tensor) {
        let b = xs.size()[0];
        let flat = |t: Tensor, n: i64| t.permute([0, 2, 3, 1]).contiguous().view([b, -1, n]);
        (flat(self.loc.forward_t(xs, train), 4), flat(self.conf.forward_t(xs, train), self.num_classes))
    }
}

/// Which predictors a head uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// Plain 3×3 convs (SSD).
    Full,
    /// Depthwise-separable 3×3 (SSDLite).
    Separable,
    /// Plain 1×1 convs (SSDLite's last map).
    Pointwise,
}

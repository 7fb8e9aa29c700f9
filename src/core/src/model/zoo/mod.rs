//! The model zoo of the paper's Table 4 comparison, on the shared layers (every conv and linear layer
//! reports to [`super::trace`], so `model summary` and `model variance` see them): ShuffleNetV2 (0.5×,
//! 1.0×), MobileNetV2 (0.75×, 1.0×), SqueezeNet (1.0, 1.1), DenseNet (L = 100, k = 12 for CIFAR;
//! DenseNet-121) and ResNet-18. With the ImageNet stem their state-dict keys and shapes are torchvision's
//! (`shufflenet_v2_x0_5`, `mobilenet_v2(width_mult=0.75)`, `squeezenet1_0`, `densenet121`, `resnet18`):
//! torchvision's weights load with `model import`. Each module says which tensor is its "last conv
//! features" (what the bias loss takes).

pub mod densenet;
pub mod mobilenetv2;
pub mod resnet;
pub mod shufflenetv2;
pub mod squeezenet;

use super::arch::Arch;
use super::net::{ClassifierNet, NetOptions};
use anyhow::{bail, Result};
use tch::{nn, Tensor};

/// A model-zoo network of `arch` (not a SkipblockNet-family one: see [`super::build_classifier`]).
pub(super) fn build(p: &nn::Path, arch: Arch, num_classes: i64, opts: NetOptions) -> Result<Box<dyn ClassifierNet>> {
    use Arch::*;
    Ok(match arch {
        Shufflenetv2X05 | Shufflenetv2X10 => Box::new(shufflenetv2::ShuffleNetV2::new(p, arch, num_classes, opts)),
        Mobilenetv2X075 | Mobilenetv2X10 => Box::new(mobilenetv2::MobileNetV2::new(p, arch, num_classes, opts)),
        Squeezenet10 | Squeezenet11 => Box::new(squeezenet::SqueezeNet::new(p, arch, num_classes, opts)),
        Densenet100K12 | Densenet121 => Box::new(densenet::DenseNet::new(p, arch, num_classes, opts)),
        Resnet18 => Box::new(resnet::ResNet::new(p, arch, num_classes, opts)),
        _ => bail!("{arch} is not a model-zoo architecture"),
    })
}

/// `b×c×h×w` → `b×c` by global average pooling.
pub(crate) fn global_pool(xs: &Tensor) -> Tensor {
    xs.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
}

/// The ImageNet stems' 3×3 stride-2 max pool with padding 1.
pub(crate) fn max_pool_3x3_s2(xs: &Tensor) -> Tensor {
    xs.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
}

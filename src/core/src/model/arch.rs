//! Every architecture the binary builds, by the name `--arch`, recipes and checkpoint records use:
//! the classifiers (SkipblockNet XS/S/M/L, MobileNetV3-Large, and the model zoo of Table 4: ShuffleNetV2,
//! MobileNetV2, SqueezeNet, DenseNet, ResNet-18) and the detectors built on them (SSD and SSDLite heads on
//! a SkipblockNet backbone, the paper's Table 6).

use super::config::{mobilenetv3_large, skipblocknet, NetConfig};
use crate::task::Task;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// SSDLite (separable heads, inverted-residual extras) or regular SSD (3×3 heads, 1×1 → 3×3 extras).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SsdVariant {
    Lite,
    Full,
}

/// A named architecture. Classifiers build a [`NetConfig`]; a detector is an SSD variant on a
/// classifier backbone ([`Arch::detector_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    SkipblocknetXs,
    SkipblocknetS,
    SkipblocknetM,
    SkipblocknetL,
    #[serde(alias = "mobilenetv3")]
    #[value(alias = "mobilenetv3")]
    Mobilenetv3Large,
    #[serde(rename = "shufflenetv2-0.5x")]
    #[value(name = "shufflenetv2-0.5x")]
    Shufflenetv2X05,
    #[serde(rename = "shufflenetv2-1.0x")]
    #[value(name = "shufflenetv2-1.0x")]
    Shufflenetv2X10,
    #[serde(rename = "mobilenetv2-0.75x")]
    #[value(name = "mobilenetv2-0.75x")]
    Mobilenetv2X075,
    #[serde(rename = "mobilenetv2-1.0x")]
    #[value(name = "mobilenetv2-1.0x")]
    Mobilenetv2X10,
    #[serde(rename = "squeezenet-1.0")]
    #[value(name = "squeezenet-1.0")]
    Squeezenet10,
    #[serde(rename = "squeezenet-1.1")]
    #[value(name = "squeezenet-1.1")]
    Squeezenet11,
    #[serde(rename = "densenet-100-k12")]
    #[value(name = "densenet-100-k12")]
    Densenet100K12,
    #[serde(rename = "densenet-121")]
    #[value(name = "densenet-121")]
    Densenet121,
    #[serde(rename = "resnet-18")]
    #[value(name = "resnet-18")]
    Resnet18,
    /// The authors' CIFAR-100 release networks (`bias_loss/models/`, their state-dict keys).
    ReleaseResnet18,
    ReleaseDensenet121,
    ReleaseShufflenetv2,
    SsdliteSkipblocknetXs,
    SsdliteSkipblocknetS,
    SsdliteSkipblocknetM,
    SsdliteSkipblocknetL,
    SsdSkipblocknetXs,
    SsdSkipblocknetS,
    SsdSkipblocknetM,
    SsdSkipblocknetL,
}

impl Arch {
    /// Every architecture, classifiers first.
    pub const ALL: [Arch; 25] = [
        Arch::SkipblocknetXs,
        Arch::SkipblocknetS,
        Arch::SkipblocknetM,
        Arch::SkipblocknetL,
        Arch::Mobilenetv3Large,
        Arch::Shufflenetv2X05,
        Arch::Shufflenetv2X10,
        Arch::Mobilenetv2X075,
        Arch::Mobilenetv2X10,
        Arch::Squeezenet10,
        Arch::Squeezenet11,
        Arch::Densenet100K12,
        Arch::Densenet121,
        Arch::Resnet18,
        Arch::ReleaseResnet18,
        Arch::ReleaseDensenet121,
        Arch::ReleaseShufflenetv2,
        Arch::SsdliteSkipblocknetXs,
        Arch::SsdliteSkipblocknetS,
        Arch::SsdliteSkipblocknetM,
        Arch::SsdliteSkipblocknetL,
        Arch::SsdSkipblocknetXs,
        Arch::SsdSkipblocknetS,
        Arch::SsdSkipblocknetM,
        Arch::SsdSkipblocknetL,
    ];

    /// The name as the command line and the files spell it (`skipblocknet-m`, `ssdlite-skipblocknet-s`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::SkipblocknetXs => "skipblocknet-xs",
            Arch::SkipblocknetS => "skipblocknet-s",
            Arch::SkipblocknetM => "skipblocknet-m",
            Arch::SkipblocknetL => "skipblocknet-l",
            Arch::Mobilenetv3Large => "mobilenetv3-large",
            Arch::Shufflenetv2X05 => "shufflenetv2-0.5x",
            Arch::Shufflenetv2X10 => "shufflenetv2-1.0x",
            Arch::Mobilenetv2X075 => "mobilenetv2-0.75x",
            Arch::Mobilenetv2X10 => "mobilenetv2-1.0x",
            Arch::Squeezenet10 => "squeezenet-1.0",
            Arch::Squeezenet11 => "squeezenet-1.1",
            Arch::Densenet100K12 => "densenet-100-k12",
            Arch::Densenet121 => "densenet-121",
            Arch::Resnet18 => "resnet-18",
            Arch::ReleaseResnet18 => "release-resnet18",
            Arch::ReleaseDensenet121 => "release-densenet121",
            Arch::ReleaseShufflenetv2 => "release-shufflenetv2",
            Arch::SsdliteSkipblocknetXs => "ssdlite-skipblocknet-xs",
            Arch::SsdliteSkipblocknetS => "ssdlite-skipblocknet-s",
            Arch::SsdliteSkipblocknetM => "ssdlite-skipblocknet-m",
            Arch::SsdliteSkipblocknetL => "ssdlite-skipblocknet-l",
            Arch::SsdSkipblocknetXs => "ssd-skipblocknet-xs",
            Arch::SsdSkipblocknetS => "ssd-skipblocknet-s",
            Arch::SsdSkipblocknetM => "ssd-skipblocknet-m",
            Arch::SsdSkipblocknetL => "ssd-skipblocknet-l",
        }
    }

    /// The classifiers (usable as detector backbones, except where [`Arch::detector`] says otherwise).
    pub fn classifiers() -> impl Iterator<Item = Arch> {
        Arch::ALL.into_iter().filter(|a| a.task() == Task::Classify)
    }

    /// The detectors.
    pub fn detectors() -> impl Iterator<Item = Arch> {
        Arch::ALL.into_iter().filter(|a| a.task() == Task::Detect)
    }

    /// The pipeline the architecture belongs to.
    pub fn task(self) -> Task {
        if self.detector_parts().is_some() {
            Task::Detect
        } else {
            Task::Classify
        }
    }

    /// A detector's SSD variant and classifier backbone; `None` for a classifier.
    pub fn detector_parts(self) -> Option<(SsdVariant, Arch)> {
        use Arch::*;
        use SsdVariant::{Full, Lite};
        Some(match self {
            SkipblocknetXs | SkipblocknetS | SkipblocknetM | SkipblocknetL | Mobilenetv3Large | Shufflenetv2X05
            | Shufflenetv2X10 | Mobilenetv2X075 | Mobilenetv2X10 | Squeezenet10 | Squeezenet11 | Densenet100K12
            | Densenet121 | Resnet18 | ReleaseResnet18 | ReleaseDensenet121 | ReleaseShufflenetv2 => return None,
            SsdliteSkipblocknetXs => (Lite, SkipblocknetXs),
            SsdliteSkipblocknetS => (Lite, SkipblocknetS),
            SsdliteSkipblocknetM => (Lite, SkipblocknetM),
            SsdliteSkipblocknetL => (Lite, SkipblocknetL),
            SsdSkipblocknetXs => (Full, SkipblocknetXs),
            SsdSkipblocknetS => (Full, SkipblocknetS),
            SsdSkipblocknetM => (Full, SkipblocknetM),
            SsdSkipblocknetL => (Full, SkipblocknetL),
        })
    }

    /// The block table of a SkipblockNet-family network (SkipblockNet XS/S/M/L, MobileNetV3-Large, a
    /// detector's backbone); `None` for the model zoo, whose networks are built by their own modules.
    pub fn net_config(self) -> Option<NetConfig> {
        // Width multiplier, classifier width, last-conv ratio. At 224×224 (params / MACs, Table 1's):
        // XS 2.33 M / 76.2 M (2.3 M / 81 M), S 3.69 M / 144.4 M (3.6 M / 152 M),
        // M 5.53 M / 236.6 M (the release; paper 5.5 M / 246 M), L 7.12 M / 365.4 M (7.1 M / 364 M).
        Some(match self.backbone() {
            Arch::SkipblocknetXs => skipblocknet(Arch::SkipblocknetXs, 0.5, 1024, 6.0),
            Arch::SkipblocknetS => skipblocknet(Arch::SkipblocknetS, 0.7, 1280, 6.0),
            Arch::SkipblocknetM => skipblocknet(Arch::SkipblocknetM, 1.0, 1280, 6.0),
            Arch::SkipblocknetL => skipblocknet(Arch::SkipblocknetL, 1.2, 1280, 6.0),
            Arch::Mobilenetv3Large => mobilenetv3_large(),
            _ => return None,
        })
    }

    /// The SkipblockNet-family network of this architecture or of a detector's backbone (every detector
    /// has one). For the model zoo use [`Arch::net_config`] or [`super::build_classifier`].
    pub fn config(self) -> NetConfig {
        self.net_config().unwrap_or_else(|| panic!("{self} is not a SkipblockNet-family architecture"))
    }

    /// Where the architecture comes from (`model list`).
    pub fn source(self) -> Source {
        use Arch::*;
        match self {
            SkipblocknetM | Mobilenetv3Large | Densenet100K12 => Source::Paper,
            // Table 6's detectors are on SkipblockNet-S (9.4 M / 1.4 B with SSD).
            SsdliteSkipblocknetS | SsdSkipblocknetS => Source::Paper,
            SkipblocknetXs | SkipblocknetS | SkipblocknetL => Source::Ours,
            ReleaseResnet18 | ReleaseDensenet121 | ReleaseShufflenetv2 => Source::Release,
            _ if self.task() == Task::Detect => Source::Ours,
            _ => Source::Torchvision,
        }
    }

    /// The input stems the architecture can be built with, the first being the one for full-size
    /// images (the CIFAR-only DenseNet has only `cifar`). SkipblockNet and MobileNetV3 have only theirs.
    pub fn stems(self) -> &'static [Stem] {
        use Arch::*;
        match self.backbone() {
            Densenet100K12 | ReleaseResnet18 | ReleaseDensenet121 | ReleaseShufflenetv2 => &[Stem::Cifar],
            Shufflenetv2X05 | Shufflenetv2X10 | Mobilenetv2X075 | Mobilenetv2X10 | Squeezenet10 | Squeezenet11
            | Densenet121 | Resnet18 => &[Stem::Imagenet, Stem::Cifar],
            _ => &[Stem::Imagenet],
        }
    }

    /// The stem to build: the one asked for (which the architecture must have), else `cifar` for inputs
    /// of 64×64 and below where the architecture has it, else its first.
    pub fn resolve_stem(self, requested: Option<Stem>, input_size: usize) -> Result<Stem> {
        let stems = self.stems();
        match requested {
            Some(s) if stems.contains(&s) => Ok(s),
            Some(s) => bail!(
                "{self} has no {s} stem (it has: {})",
                stems.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
            ),
            None if input_size <= 64 && stems.contains(&Stem::Cifar) => Ok(Stem::Cifar),
            None => Ok(stems[0]),
        }
    }

    /// Variable-name prefix of the last classifier layer (replaced when fine-tuning onto new classes;
    /// its `weight`'s first dimension is the class count of a state dict).
    pub fn head_prefix(self) -> &'static str {
        use Arch::*;
        match self.backbone() {
            Shufflenetv2X05 | Shufflenetv2X10 | Resnet18 | ReleaseResnet18 | ReleaseShufflenetv2 => "fc.",
            ReleaseDensenet121 => "linear.",
            Mobilenetv2X075 | Mobilenetv2X10 | Squeezenet10 | Squeezenet11 => "classifier.1.",
            Densenet100K12 | Densenet121 => "classifier.",
            _ => "classifier.3.",
        }
    }

    /// The parameter count Table 4 gives (CIFAR-100 comparison), where it lists the architecture. The
    /// paper quotes the 1000-class ImageNet models' counts for ShuffleNetV2, MobileNetV2 and SqueezeNet
    /// (their 100-class CIFAR versions are smaller) and the 100-class CIFAR count for DenseNet (k = 12).
    pub fn table4_params(self) -> Option<Table4Params> {
        let (params, stem, classes) = match self {
            Arch::Shufflenetv2X05 => (1.4e6, Stem::Imagenet, 1000),
            Arch::Mobilenetv2X075 => (2.6e6, Stem::Imagenet, 1000),
            Arch::Squeezenet10 => (1.25e6, Stem::Imagenet, 1000),
            Arch::Densenet100K12 => (7.0e6, Stem::Cifar, 100),
            _ => return None,
        };
        Some(Table4Params { params, stem, classes })
    }

    /// Itself for a classifier, the backbone for a detector.
    pub fn backbone(self) -> Arch {
        self.detector_parts().map_or(self, |(_, b)| b)
    }

    /// Checks that the architecture serves `task` (a detector given where a classifier is needed, …).
    pub fn expect(self, task: Task, what: &str) -> Result<Arch> {
        if self.task() != task {
            let known = names(Arch::ALL.into_iter().filter(|a| a.task() == task));
            bail!("{what} = '{self}' is a {} architecture; a {task} one is needed ({known})", self.task());
        }
        Ok(self)
    }
}

/// The input stem of a model-zoo network: the standard ImageNet one (strided stem, and the max pool
/// where the network has one) or a CIFAR one for 32×32 images (stride 1, no early pooling; the usual
/// CIFAR versions, e.g. ResNet-18's 3×3 stride-1 first conv without max pool). Stored in checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    #[default]
    Imagenet,
    Cifar,
}

impl fmt::Display for Stem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stem::Imagenet => "imagenet",
            Stem::Cifar => "cifar",
        })
    }
}

/// Where an architecture comes from: the paper (SkipblockNet-M, its baselines, Table 4 / Table 6
/// networks), the authors' released code, torchvision (same state-dict keys) or ours (SkipblockNet
/// XS/S/L, sized to Table 1's budgets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Paper,
    Release,
    Torchvision,
    Ours,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Paper => "paper",
            Source::Release => "release",
            Source::Torchvision => "torchvision",
            Source::Ours => "ours",
        })
    }
}

/// Table 4's parameter count of an architecture and the configuration it counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Table4Params {
    pub params: f64,
    pub stem: Stem,
    pub classes: i64,
}

/// `a, b, c` of architecture names.
pub fn names(archs: impl Iterator<Item = Arch>) -> String {
    archs.map(Arch::name).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = anyhow::Error;
    /// Case-insensitive, with the aliases the command line accepts (`mobilenetv3`).
    fn from_str(s: &str) -> Result<Arch> {
        match <Arch as clap::ValueEnum>::from_str(s.trim(), true) {
            Ok(arch) => Ok(arch),
            Err(_) => bail!("unknown architecture '{s}' (known: {})", names(Arch::ALL.into_iter())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_the_same_way_everywhere() {
        for arch in Arch::ALL {
            assert_eq!(arch.name().parse::<Arch>().unwrap(), arch);
            assert_eq!(arch.to_string(), arch.name());
            let json = serde_json::to_string(&arch).unwrap();
            assert_eq!(json, format!("\"{}\"", arch.name()), "serde and clap spell it alike");
            let clap_name = clap::ValueEnum::to_possible_value(&arch).unwrap();
            assert_eq!(clap_name.get_name(), arch.name());
        }
        assert_eq!("SSD-SkipblockNet-S".parse::<Arch>().unwrap(), Arch::SsdSkipblocknetS);
        assert_eq!("mobilenetv3".parse::<Arch>().unwrap(), Arch::Mobilenetv3Large);
        assert_eq!(serde_json::from_str::<Arch>("\"mobilenetv3\"").unwrap(), Arch::Mobilenetv3Large);
        let err = "ssd-vgg16".parse::<Arch>().unwrap_err().to_string();
        assert!(err.contains("ssd-vgg16") && err.contains("ssdlite-skipblocknet-xs"), "{err}");
    }

    #[test]
    fn stems_resolve_from_the_input_size_unless_asked() {
        assert_eq!(Arch::Resnet18.resolve_stem(None, 32).unwrap(), Stem::Cifar);
        assert_eq!(Arch::Resnet18.resolve_stem(None, 224).unwrap(), Stem::Imagenet);
        assert_eq!(Arch::Resnet18.resolve_stem(Some(Stem::Imagenet), 32).unwrap(), Stem::Imagenet);
        assert_eq!(Arch::Densenet100K12.resolve_stem(None, 224).unwrap(), Stem::Cifar);
        assert_eq!(Arch::SkipblocknetM.resolve_stem(None, 32).unwrap(), Stem::Imagenet);
        let err = Arch::SkipblocknetM.resolve_stem(Some(Stem::Cifar), 32).unwrap_err().to_string();
        assert!(err.contains("skipblocknet-m") && err.contains("cifar"), "{err}");
        assert!("cifar".parse::<Arch>().is_err());
    }

    #[test]
    fn tasks_backbones_and_detectors_agree() {
        assert_eq!(Arch::classifiers().count(), 17);
        assert_eq!(Arch::detectors().count(), 8);
        for d in Arch::detectors() {
            let (variant, backbone) = d.detector_parts().unwrap();
            assert_eq!(backbone.task(), Task::Classify);
            assert_eq!(d.config(), backbone.config());
            let prefix = if variant == SsdVariant::Lite { "ssdlite-" } else { "ssd-" };
            assert_eq!(d.name(), format!("{prefix}{backbone}"));
        }
        assert_eq!(Arch::SkipblocknetM.config().arch, Arch::SkipblocknetM);
        assert!(Arch::Resnet18.net_config().is_none());
        for d in Arch::detectors() {
            assert!(d.net_config().is_some(), "{d}: every detector backbone is a SkipblockNet-family network");
        }
        let err = Arch::SsdSkipblocknetS.expect(Task::Classify, "model.arch").unwrap_err().to_string();
        assert!(err.contains("model.arch") && err.contains("skipblocknet-m"), "{err}");
    }
}

//! Every architecture the binary builds, by the name `--arch`, recipes and checkpoint records use:
//! the classifiers (SkipblockNet XS/S/M/L, MobileNetV3-Large) and the detectors built on them
//! (SSD and SSDLite heads on a SkipblockNet backbone, the paper's Table 6).

use super::config::{mobilenetv3_large, skipblocknet, NetConfig};
use crate::task::Task;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

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
    pub const ALL: [Arch; 13] = [
        Arch::SkipblocknetXs,
        Arch::SkipblocknetS,
        Arch::SkipblocknetM,
        Arch::SkipblocknetL,
        Arch::Mobilenetv3Large,
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
            SkipblocknetXs | SkipblocknetS | SkipblocknetM | SkipblocknetL | Mobilenetv3Large => return None,
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

    /// The classifier network: this one's, or a detector's backbone's.
    pub fn config(self) -> NetConfig {
        // Width multiplier, classifier width, last-conv ratio. At 224×224 (params / MACs, Table 1's):
        // XS 2.33 M / 76.2 M (2.3 M / 81 M), S 3.69 M / 144.4 M (3.6 M / 152 M),
        // M 5.53 M / 236.6 M (the release; paper 5.5 M / 246 M), L 7.12 M / 365.4 M (7.1 M / 364 M).
        match self.backbone() {
            Arch::SkipblocknetXs => skipblocknet(Arch::SkipblocknetXs, 0.5, 1024, 6.0),
            Arch::SkipblocknetS => skipblocknet(Arch::SkipblocknetS, 0.7, 1280, 6.0),
            Arch::SkipblocknetM => skipblocknet(Arch::SkipblocknetM, 1.0, 1280, 6.0),
            Arch::SkipblocknetL => skipblocknet(Arch::SkipblocknetL, 1.2, 1280, 6.0),
            _ => mobilenetv3_large(),
        }
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
    fn tasks_backbones_and_detectors_agree() {
        assert_eq!(Arch::classifiers().count(), 5);
        assert_eq!(Arch::detectors().count(), 8);
        for d in Arch::detectors() {
            let (variant, backbone) = d.detector_parts().unwrap();
            assert_eq!(backbone.task(), Task::Classify);
            assert_eq!(d.config(), backbone.config());
            let prefix = if variant == SsdVariant::Lite { "ssdlite-" } else { "ssd-" };
            assert_eq!(d.name(), format!("{prefix}{backbone}"));
        }
        assert_eq!(Arch::SkipblocknetM.config().arch, Arch::SkipblocknetM);
        let err = Arch::SsdSkipblocknetS.expect(Task::Classify, "model.arch").unwrap_err().to_string();
        assert!(err.contains("model.arch") && err.contains("skipblocknet-m"), "{err}");
    }
}

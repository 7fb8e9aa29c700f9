//! The SSD prior (default / anchor) boxes: the `[ssd.priors]` section of a recipe and the `[P, 4]`
//! tensor of normalised (cx, cy, w, h) boxes it generates, in the order the heads predict them.
//!
//! Per feature map k of size f and per location (row-major, as the heads' outputs are flattened):
//! a square of `min_sizes[k]`, a square of `sqrt(min_sizes[k] · max_sizes[k])`, then for each aspect
//! ratio r a (w·√r, h/√r) box and a (w/√r, h·√r) box of the min size: 2 + 2·|ratios| priors. Sizes and
//! steps are in pixels of `image_size` and used relative to it (as qfgaohao's `generate_ssd_priors`).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The `[ssd.priors]` section. Defaults: the common SSD300 settings of the public mobile SSD implementations (paper §5, Table 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorConfig {
    /// Side of each head's feature map. Empty: taken from the network's outputs at its input size.
    pub feature_maps: Vec<i64>,
    /// Stride of each map in pixels of `image_size` (the prior centres are (i + 0.5)·step / image_size).
    /// Empty, or when `feature_maps` is empty: image_size / f (centres (i + 0.5) / f).
    pub steps: Vec<f64>,
    pub min_sizes: Vec<f64>,
    pub max_sizes: Vec<f64>,
    /// Aspect ratios (besides 1) of each map.
    pub aspect_ratios: Vec<Vec<f64>>,
    /// Clamp the (cx, cy, w, h) values to [0, 1].
    pub clip: bool,
    /// The size in pixels the sizes and steps are expressed in.
    pub image_size: i64,
    /// Fit `min_sizes`, `max_sizes` and `aspect_ratios` to the training boxes at the start of `detect
    /// train` (`--auto-priors`; see [`crate::prior_fit`]). The run's config and checkpoint then hold the
    /// fitted values, with `auto = false`, so evaluation, prediction and a resumed run use the same priors.
    pub auto: bool,
}

impl Default for PriorConfig {
    fn default() -> Self {
        PriorConfig {
            feature_maps: vec![19, 10, 5, 3, 2, 1],
            steps: vec![16.0, 32.0, 64.0, 100.0, 150.0, 300.0],
            min_sizes: vec![60.0, 105.0, 150.0, 195.0, 240.0, 285.0],
            max_sizes: vec![105.0, 150.0, 195.0, 240.0, 285.0, 330.0],
            aspect_ratios: vec![vec![2.0, 3.0]; 6],
            clip: true,
            image_size: 300,
            auto: false,
        }
    }
}

impl PriorConfig {
    /// Number of priors at each location of map `k`.
    pub fn boxes_per_location(&self, k: usize) -> i64 {
        2 + 2 * self.aspect_ratios.get(k).map_or(0, |r| r.len() as i64)
    }

    /// Total number of priors.
    pub fn num_priors(&self) -> i64 {
        self.feature_maps.iter().enumerate().map(|(k, f)| f * f * self.boxes_per_location(k)).sum()
    }

    /// Checks the section against the feature-map sizes the network really produces and returns it with
    /// `feature_maps` filled in (taken from the network when empty; steps are then derived from them).
    pub fn resolve(&self, network_maps: &[i64]) -> Result<PriorConfig> {
        let mut cfg = self.clone();
        if cfg.feature_maps.is_empty() {
            cfg.feature_maps = network_maps.to_vec();
            cfg.steps.clear();
        } else if cfg.feature_maps != network_maps {
            bail!(
                "ssd.priors.feature_maps {:?} do not match the network's feature maps {network_maps:?} at this input \
                 size; set feature_maps = [] to take them from the network",
                cfg.feature_maps
            );
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that every per-map list has one entry per feature map and that the values are usable.
    pub fn validate(&self) -> Result<()> {
        let n = self.feature_maps.len();
        if n == 0 {
            bail!("ssd.priors: no feature maps");
        }
        for (name, len) in [
            ("min_sizes", self.min_sizes.len()),
            ("max_sizes", self.max_sizes.len()),
            ("aspect_ratios", self.aspect_ratios.len()),
        ] {
            if len != n {
                bail!("ssd.priors.{name} has {len} entries for {n} feature maps");
            }
        }
        if !self.steps.is_empty() && self.steps.len() != n {
            bail!("ssd.priors.steps has {} entries for {n} feature maps (or leave it empty)", self.steps.len());
        }
        if self.image_size <= 0 {
            bail!("ssd.priors.image_size must be positive, got {}", self.image_size);
        }
        if let Some(f) = self.feature_maps.iter().find(|&&f| f <= 0) {
            bail!("ssd.priors.feature_maps: sizes must be positive, got {f}");
        }
        let positive = |v: &f64| v.is_finite() && *v > 0.0;
        if !self.min_sizes.iter().chain(&self.max_sizes).chain(&self.steps).all(positive) {
            bail!("ssd.priors: min_sizes, max_sizes and steps must be positive numbers");
        }
        if !self.aspect_ratios.iter().flatten().all(positive) {
            bail!("ssd.priors.aspect_ratios must be positive numbers");
        }
        Ok(())
    }
}

/// The `[P, 4]` float tensor of priors (cx, cy, w, h), normalised to [0, 1], on the CPU.
pub fn priors(cfg: &PriorConfig) -> Result<Tensor> {
    cfg.validate()?;
    let image = cfg.image_size as f64;
    let mut out: Vec<f32> = Vec::with_capacity(cfg.num_priors() as usize * 4);
    for (k, &f) in cfg.feature_maps.iter().enumerate() {
        let step = cfg.steps.get(k).map_or(1.0 / f as f64, |s| s / image);
        let min = cfg.min_sizes[k] / image;
        let big = (cfg.min_sizes[k] * cfg.max_sizes[k]).sqrt() / image;
        for row in 0..f {
            for col in 0..f {
                let (cx, cy) = ((col as f64 + 0.5) * step, (row as f64 + 0.5) * step);
                let mut push = |w: f64, h: f64| {
                    let v = [cx, cy, w, h].map(|x| if cfg.clip { x.clamp(0.0, 1.0) } else { x });
                    out.extend(v.iter().map(|&x| x as f32));
                };
                push(min, min);
                push(big, big);
                for r in &cfg.aspect_ratios[k] {
                    let s = r.sqrt();
                    push(min * s, min / s);
                    push(min / s, min * s);
                }
            }
        }
    }
    let n = out.len() as i64 / 4;
    Ok(Tensor::from_slice(&out).view([n, 4]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssd300_has_3000_priors_and_the_reference_first_location() {
        let cfg = PriorConfig::default();
        let p = priors(&cfg).unwrap();
        assert_eq!(p.size(), vec![3000, 4]);
        assert_eq!(cfg.num_priors(), 3000);
        let c = 0.5 * 16.0 / 300.0;
        let (m, b) = (0.2, (60.0f64 * 105.0).sqrt() / 300.0);
        let (s2, s3) = (2f64.sqrt(), 3f64.sqrt());
        let expected = [
            [c, c, m, m],
            [c, c, b, b],
            [c, c, m * s2, m / s2],
            [c, c, m / s2, m * s2],
            [c, c, m * s3, m / s3],
            [c, c, m / s3, m * s3],
        ];
        for (i, e) in expected.iter().enumerate() {
            for (j, v) in e.iter().enumerate() {
                let got = p.double_value(&[i as i64, j as i64]);
                assert!((got - v).abs() < 1e-6, "prior {i} coord {j}: {got} vs {v}");
            }
        }
        // Row-major: the 7th prior is the next column of the first row.
        assert!((p.double_value(&[6, 0]) - 1.5 * 16.0 / 300.0).abs() < 1e-6);
        assert!((p.double_value(&[6, 1]) - c).abs() < 1e-6);
        // The second map starts after 19·19·6 priors; its last prior (1×1 map) is centred and clipped.
        assert!((p.double_value(&[2166, 0]) - 0.5 * 32.0 / 300.0).abs() < 1e-6);
        assert_eq!(p.double_value(&[2999, 0]), 0.5);
        assert!(p.max().double_value(&[]) <= 1.0 && p.min().double_value(&[]) >= 0.0);
    }

    #[test]
    fn feature_maps_are_checked_against_the_network() {
        let cfg = PriorConfig::default();
        assert!(cfg.resolve(&[19, 10, 5, 3, 2, 1]).is_ok());
        let err = cfg.resolve(&[20, 10, 5, 3, 2, 1]).unwrap_err().to_string();
        assert!(err.contains("feature_maps = []"), "{err}");
        let derived = PriorConfig { feature_maps: vec![], ..cfg }.resolve(&[20, 10, 5, 3, 2, 1]).unwrap();
        assert_eq!(derived.num_priors(), 6 * (400 + 100 + 25 + 9 + 4 + 1));
        let p = priors(&derived).unwrap();
        assert!((p.double_value(&[0, 0]) - 0.5 / 20.0).abs() < 1e-6);
        let bad = PriorConfig { min_sizes: vec![60.0], ..PriorConfig::default() };
        assert!(priors(&bad).unwrap_err().to_string().contains("min_sizes has 1 entries for 6"));
    }

    #[test]
    fn the_section_parses_with_defaults_and_rejects_unknown_keys() {
        let cfg: PriorConfig = toml::from_str("clip = false\nfeature_maps = []").unwrap();
        assert!(!cfg.clip && cfg.feature_maps.is_empty());
        assert_eq!(cfg.min_sizes, PriorConfig::default().min_sizes);
        assert!(toml::from_str::<PriorConfig>("min_size = [1]").is_err());
    }
}

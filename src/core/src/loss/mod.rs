//! Losses, selectable by name in every recipe: `ce`, `bias` (the paper's bias loss), `focal`,
//! `label-smoothing`. One [`Loss`] value serves both pipelines: classification calls [`Loss::compute`]
//! on a batch's logits and last-conv features; detection uses [`Loss::sample_weights`] to weight each
//! image's classification term.

pub mod bias;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

pub use bias::{bias_weights, VarianceScaling};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    Ce,
    Bias,
    Focal,
    LabelSmoothing,
}

impl LossKind {
    pub const ALL: [LossKind; 4] = [LossKind::Ce, LossKind::Bias, LossKind::Focal, LossKind::LabelSmoothing];

    /// The name recipes and the command line use (`ce`, `bias`, `focal`, `label-smoothing`).
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Ce => "ce",
            LossKind::Bias => "bias",
            LossKind::Focal => "focal",
            LossKind::LabelSmoothing => "label-smoothing",
        }
    }
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LossKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ce" | "cross-entropy" => LossKind::Ce,
            "bias" => LossKind::Bias,
            "focal" => LossKind::Focal,
            "label-smoothing" | "ls" => LossKind::LabelSmoothing,
            other => bail!("unknown loss '{other}' (known: ce, bias, focal, label-smoothing)"),
        })
    }
}

/// The `[loss]` section of a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    pub kind: LossKind,
    /// Bias loss: z(v) = exp(alpha·v) − beta (paper eq. 6); with `release` scaling the authors' release
    /// formula exp(beta·v) − 1 + alpha (see [`bias`]).
    pub alpha: f64,
    pub beta: f64,
    /// Bias loss: clamp z to [clamp_min, clamp_max] (on in all the paper's experiments; must be off with
    /// `release` scaling, as in the authors' release).
    pub clamp: bool,
    pub clamp_min: f64,
    pub clamp_max: f64,
    /// Bias loss: scaling of the variances v before z, with the batch minimum m and maximum M and the
    /// smallest batch minimum seen so far g (this batch included): `local` (v − m)/(M − m), `global`
    /// (v − g)/(M − g), `release` (v − g)/(M − m) with the release's z (see [`bias`]).
    pub scaling: VarianceScaling,
    /// Focal loss exponent.
    pub gamma: f64,
    /// Label smoothing ε.
    pub smoothing: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            kind: LossKind::Bias,
            alpha: 0.3,
            beta: 0.3,
            clamp: true,
            clamp_min: 0.5,
            clamp_max: 1.5,
            scaling: VarianceScaling::Local,
            gamma: 2.0,
            smoothing: 0.1,
        }
    }
}

/// A loss value with, for the bias loss, the per-sample weights it used.
#[derive(Debug)]
pub struct LossOutput {
    pub loss: Tensor,
    pub weights: Option<Tensor>,
}

/// A configured loss, with the running state of the bias loss's `global` and `release` scalings.
#[derive(Debug, Clone)]
pub struct Loss {
    pub config: LossConfig,
    /// The running minimum g of the variances (`global` and `release` scalings; see [`bias`]), None
    /// before the first batch.
    pub global_min: Option<f64>,
}

impl Loss {
    pub fn new(config: LossConfig) -> Result<Self> {
        if config.clamp && config.clamp_min > config.clamp_max {
            bail!("loss: clamp_min {} > clamp_max {}", config.clamp_min, config.clamp_max);
        }
        if config.kind == LossKind::LabelSmoothing && !(0.0..1.0).contains(&config.smoothing) {
            bail!("loss: smoothing must be in [0, 1), got {}", config.smoothing);
        }
        if config.gamma < 0.0 {
            bail!("loss: gamma must be >= 0, got {}", config.gamma);
        }
        if config.kind == LossKind::Bias && config.scaling == VarianceScaling::Release && config.clamp {
            bail!("loss: scaling 'release' reproduces the authors' release, which never clamps z: set clamp = false");
        }
        Ok(Loss { config, global_min: None })
    }

    /// Per-sample cross-entropy, `[N]`.
    pub fn per_sample_ce(logits: &Tensor, targets: &Tensor) -> Tensor {
        logits.to_kind(Kind::Float).cross_entropy_loss::<Tensor>(targets, None, Reduction::None, -100, 0.0)
    }

    /// The batch loss. `features` (the last conv's b×c×h×w output) is required by the bias loss and
    /// ignored by the others.
    pub fn compute(&mut self, logits: &Tensor, features: Option<&Tensor>, targets: &Tensor) -> Result<LossOutput> {
        // In float32 whatever autocast made of the inputs (`--amp`): no-ops for float32 tensors.
        let logits = &logits.to_kind(Kind::Float);
        let features = features.map(|f| f.to_kind(Kind::Float));
        let features = features.as_ref();
        let c = &self.config;
        Ok(match c.kind {
            LossKind::Ce => LossOutput { loss: Self::per_sample_ce(logits, targets).mean(Kind::Float), weights: None },
            LossKind::LabelSmoothing => LossOutput {
                loss: logits.to_kind(Kind::Float).cross_entropy_loss::<Tensor>(
                    targets,
                    None,
                    Reduction::Mean,
                    -100,
                    c.smoothing,
                ),
                weights: None,
            },
            LossKind::Focal => {
                let ce = Self::per_sample_ce(logits, targets);
                let pt = (-&ce).exp();
                let loss = ((pt.neg() + 1.0).clamp_min(0.0).pow_tensor_scalar(c.gamma) * ce).mean(Kind::Float);
                LossOutput { loss, weights: None }
            }
            LossKind::Bias => {
                let Some(features) = features else { bail!("the bias loss needs the last-conv features") };
                let weights = self.sample_weights(features)?;
                let loss = (&weights * Self::per_sample_ce(logits, targets)).mean(Kind::Float);
                LossOutput { loss, weights: Some(weights) }
            }
        })
    }

    /// The running state to carry across `--resume` (the running minimum of `global`/`release` scaling).
    pub fn state(&self) -> std::collections::BTreeMap<String, String> {
        self.global_min
            .map(|g| std::collections::BTreeMap::from([("loss_global_min".to_string(), g.to_string())]))
            .unwrap_or_default()
    }

    pub fn load_state(&mut self, state: &std::collections::BTreeMap<String, String>) {
        self.global_min = state.get("loss_global_min").and_then(|v| v.parse().ok());
    }

    /// The bias loss's per-sample weights z(v_i) (detached), updating the running minimum of the
    /// `global` and `release` scalings.
    pub fn sample_weights(&mut self, features: &Tensor) -> Result<Tensor> {
        let features = &features.to_kind(Kind::Float);
        let (weights, batch_min) = bias_weights(features, &self.config, self.global_min)?;
        if let Some(g) = self.config.scaling.running_min(self.global_min, batch_min) {
            self.global_min = Some(g);
        }
        Ok(weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_names_round_trip_through_parsing_and_serde() {
        for kind in LossKind::ALL {
            assert_eq!(kind.name().parse::<LossKind>().unwrap(), kind);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
    }
}

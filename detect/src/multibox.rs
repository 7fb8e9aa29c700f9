//! The SSD multibox loss: smooth-L1 on the positives' encoded offsets plus cross-entropy on the
//! positives and the hardest negatives (3:1 hard-negative mining, negatives ranked per image by their
//! background loss), both summed and divided by the number of positives in the batch (at least 1).
//!
//! With the bias loss, each image's classification term is multiplied by its weight z(v_i) computed on
//! the backbone's last-conv features (`skipblock_core::loss::Loss::sample_weights`).

use anyhow::{bail, Result};
use tch::{Kind, Reduction, Tensor};

/// The loss, with its hard-negative mining ratio (`ssd.neg_pos_ratio`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiboxLoss {
    /// Negatives kept per positive, per image.
    pub neg_pos_ratio: i64,
}

impl Default for MultiboxLoss {
    fn default() -> Self {
        MultiboxLoss { neg_pos_ratio: 3 }
    }
}

/// The two terms, already normalised by the number of positives; `num_pos` is that count.
#[derive(Debug)]
pub struct MultiboxOutput {
    pub loc_loss: Tensor,
    pub conf_loss: Tensor,
    pub num_pos: i64,
}

impl MultiboxOutput {
    /// loc + conf.
    pub fn total(&self) -> Tensor {
        &self.loc_loss + &self.conf_loss
    }
}

/// Positives (`labels > 0`) plus, per image, the `min(ratio·num_pos, P − num_pos)` negatives with the
/// largest `background_loss` (`[B, P]`, ties broken by prior index): the priors the classification term
/// sums over, `[B, P]` bool.
pub fn hard_negative_mask(background_loss: &Tensor, labels: &Tensor, neg_pos_ratio: i64) -> Tensor {
    let pos = labels.gt(0);
    let num_priors = labels.size()[1];
    let num_pos = pos.sum_dim_intlist(1, true, Kind::Int64);
    let num_neg = (&num_pos * neg_pos_ratio).minimum(&(num_pos.neg() + num_priors));
    let ranked = background_loss.detach().masked_fill(&pos, f64::NEG_INFINITY);
    let (_, order) = ranked.sort_stable(true, 1, true);
    let (_, rank) = order.sort_stable(true, 1, false);
    pos.logical_or(&rank.lt_tensor(&num_neg))
}

impl MultiboxLoss {
    /// `loc_pred [B, P, 4]`, `conf_pred [B, P, C]` (logits), `loc_t [B, P, 4]` (encoded), `conf_t [B, P]`
    /// (int64, 0 = background), `sample_weights [B]` (detached) scaling each image's classification term.
    pub fn compute(
        &self,
        loc_pred: &Tensor,
        conf_pred: &Tensor,
        loc_t: &Tensor,
        conf_t: &Tensor,
        sample_weights: Option<&Tensor>,
    ) -> Result<MultiboxOutput> {
        // In float32 whatever autocast made of the predictions (`--amp`).
        let (loc_pred, conf_pred) = (&loc_pred.to_kind(Kind::Float), &conf_pred.to_kind(Kind::Float));
        let (ls, cs) = (loc_pred.size(), conf_pred.size());
        if ls.len() != 3 || ls[2] != 4 || cs.len() != 3 || cs[..2] != ls[..2] {
            bail!("multibox loss: predictions of shapes {ls:?} (loc) and {cs:?} (conf) do not fit [B, P, 4] and [B, P, C]");
        }
        if loc_t.size() != ls || conf_t.size() != ls[..2] {
            bail!("multibox loss: targets of shapes {:?} and {:?} for predictions {ls:?}", loc_t.size(), conf_t.size());
        }
        if let Some(w) = sample_weights {
            if w.size() != [ls[0]] {
                bail!("multibox loss: {:?} sample weights for a batch of {}", w.size(), ls[0]);
            }
        }
        if self.neg_pos_ratio < 0 {
            bail!("multibox loss: neg_pos_ratio must be >= 0, got {}", self.neg_pos_ratio);
        }
        let device = conf_pred.device();
        let conf_t = conf_t.to_device(device).to_kind(Kind::Int64);
        let num_classes = cs[2];
        let max_label = conf_t.max().int64_value(&[]);
        if conf_t.min().int64_value(&[]) < 0 || max_label >= num_classes {
            bail!("multibox loss: target classes must lie in 0..{num_classes}, got up to {max_label}");
        }
        let log_probs = conf_pred.to_kind(Kind::Float).log_softmax(2, Kind::Float);
        let background_loss = log_probs.select(2, 0).neg().detach();
        let mask = hard_negative_mask(&background_loss, &conf_t, self.neg_pos_ratio).to_kind(Kind::Float);
        let ce = log_probs.gather(2, &conf_t.unsqueeze(2), false).squeeze_dim(2).neg();
        let per_image = (ce * mask).sum_dim_intlist(1, false, Kind::Float);
        let per_image = match sample_weights {
            Some(w) => per_image * w.detach().to_device(device).to_kind(Kind::Float),
            None => per_image,
        };
        let pos = conf_t.gt(0);
        let num_pos = pos.sum(Kind::Int64).int64_value(&[]);
        let norm = num_pos.max(1) as f64;
        let loc_elem = loc_pred.to_kind(Kind::Float).smooth_l1_loss(
            &loc_t.to_device(device).to_kind(Kind::Float),
            Reduction::None,
            1.0,
        );
        let loc_loss =
            (loc_elem.sum_dim_intlist(2, false, Kind::Float) * pos.to_kind(Kind::Float)).sum(Kind::Float) / norm;
        let conf_loss = per_image.sum(Kind::Float) / norm;
        Ok(MultiboxOutput { loc_loss, conf_loss, num_pos })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn labels(rows: &[&[i64]]) -> Tensor {
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, -1])
    }

    #[test]
    fn mining_keeps_three_negatives_per_positive_the_hardest_first() {
        let l = labels(&[&[0, 2, 0, 0, 0, 0, 0, 0, 0, 0], &[0, 0, 0, 0, 0, 0, 0, 0, 1, 1]]);
        let bg = Tensor::from_slice(&[
            0.1f32, 9.0, 0.5, 0.3, 0.9, 0.2, 0.8, 0.0, 0.7, 0.4, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 0.1, 0.1,
        ])
        .view([2, 10]);
        let mask: Vec<bool> = Vec::try_from(hard_negative_mask(&bg, &l, 3).view([-1])).unwrap();
        let picked = |row: usize| (0..10).filter(|&i| mask[row * 10 + i]).collect::<Vec<_>>();
        // Image 0: the positive (index 1) and the 3 highest background losses 0.9, 0.8, 0.7.
        assert_eq!(picked(0), vec![1, 4, 6, 8]);
        // Image 1: 2 positives → 6 negatives, capped by the 8 available: the 6 largest.
        assert_eq!(picked(1), vec![2, 3, 4, 5, 6, 7, 8, 9]);
        // Capped at P − num_pos: every prior is used.
        let mask = hard_negative_mask(&bg, &l, 100);
        assert_eq!(mask.sum(Kind::Int64).int64_value(&[]), 20);
        // No positives, no negatives.
        let none = hard_negative_mask(&bg, &labels(&[&[0; 10], &[0; 10]]), 3);
        assert_eq!(none.sum(Kind::Int64).int64_value(&[]), 0);
    }

    #[test]
    fn perfect_predictions_have_zero_localisation_loss_and_low_classification_loss() {
        tch::manual_seed(0);
        let (b, p, c) = (2, 30, 4);
        let loc_t = Tensor::randn([b, p, 4], (Kind::Float, Device::Cpu));
        let conf_t = Tensor::randint(c, [b, p], (Kind::Int64, Device::Cpu))
            * Tensor::rand([b, p], (Kind::Float, Device::Cpu)).gt(0.6);
        let confident = conf_t.one_hot(c).to_kind(Kind::Float) * 20.0;
        let loss = MultiboxLoss::default();
        let good = loss.compute(&loc_t, &confident, &loc_t, &conf_t, None).unwrap();
        assert_eq!(good.loc_loss.double_value(&[]), 0.0);
        assert!(good.conf_loss.double_value(&[]) < 1e-6);
        assert!(good.num_pos > 0);
        let random = loss
            .compute(&loc_t.zeros_like(), &Tensor::randn([b, p, c], (Kind::Float, Device::Cpu)), &loc_t, &conf_t, None)
            .unwrap();
        assert!(random.loc_loss.double_value(&[]) > 0.1 && random.conf_loss.double_value(&[]) > 0.1);
        // Weights scale each image's classification term, not the localisation term.
        let w = Tensor::from_slice(&[0.5f32, 1.5]);
        let logits = Tensor::randn([b, p, c], (Kind::Float, Device::Cpu));
        let plain = loss.compute(&loc_t.zeros_like(), &logits, &loc_t, &conf_t, None).unwrap();
        let weighted = loss.compute(&loc_t.zeros_like(), &logits, &loc_t, &conf_t, Some(&w)).unwrap();
        assert_eq!(plain.loc_loss.double_value(&[]), weighted.loc_loss.double_value(&[]));
        let per_image: Vec<f64> = (0..2)
            .map(|i| {
                loss.compute(
                    &loc_t.narrow(0, i, 1).zeros_like(),
                    &logits.narrow(0, i, 1),
                    &loc_t.narrow(0, i, 1),
                    &conf_t.narrow(0, i, 1),
                    None,
                )
                .unwrap()
            })
            .map(|o| o.conf_loss.double_value(&[]) * o.num_pos.max(1) as f64)
            .collect();
        let expected = (0.5 * per_image[0] + 1.5 * per_image[1]) / plain.num_pos as f64;
        assert!((weighted.conf_loss.double_value(&[]) - expected).abs() < 1e-4);
    }

    #[test]
    fn shape_mismatches_are_errors() {
        let loss = MultiboxLoss::default();
        let loc = Tensor::zeros([1, 5, 4], (Kind::Float, Device::Cpu));
        let conf = Tensor::zeros([1, 5, 3], (Kind::Float, Device::Cpu));
        let t = Tensor::zeros([1, 5], (Kind::Int64, Device::Cpu));
        assert!(loss.compute(&loc, &conf, &loc, &t, None).is_ok());
        assert!(loss.compute(&loc, &conf.narrow(1, 0, 4), &loc, &t, None).is_err());
        assert!(loss.compute(&loc, &conf, &loc, &t.narrow(1, 0, 4), None).is_err());
        assert!(loss.compute(&loc, &conf, &loc, &(t.ones_like() * 3), None).unwrap_err().to_string().contains("0..3"));
        assert!(loss.compute(&loc, &conf, &loc, &t, Some(&Tensor::ones([2], (Kind::Float, Device::Cpu)))).is_err());
        // No positives: the loss is still finite (divided by 1).
        let out = loss.compute(&loc, &conf, &loc, &t, None).unwrap();
        assert_eq!(out.num_pos, 0);
        assert_eq!(out.conf_loss.double_value(&[]), 0.0);
    }
}

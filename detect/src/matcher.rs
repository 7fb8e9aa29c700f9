//! Assigning one image's ground truths to the priors (ssd.pytorch's `match`, qfgaohao's
//! `assign_priors`): each prior takes the ground truth it overlaps most, as a positive when that IoU is at
//! least the threshold (else background, class 0); each ground truth's best prior is forced to it so
//! that every object has at least one positive. The output is the training target of the multibox loss.

use crate::box_coder::{center_to_corner, corner_to_center, BoxCoder};
use anyhow::{bail, Result};
use skipblock_core::boxes::{self, BBox};
use tch::{Device, Kind, Tensor};

/// Targets for one image: encoded offsets `[P, 4]` (float) and classes `[P]` (int64, 0 = background).
#[derive(Debug)]
pub struct MatchTargets {
    pub loc: Tensor,
    pub labels: Tensor,
}

/// Matches ground truths to a fixed set of priors. Works on the CPU (it runs in the data loader).
#[derive(Debug)]
pub struct Matcher {
    /// Centre-form priors `[P, 4]`.
    pub priors: Tensor,
    corners: Tensor,
    pub iou_threshold: f64,
    pub coder: BoxCoder,
}

impl Matcher {
    /// `priors`: centre-form `[P, 4]` (as [`crate::anchors::priors`] makes them).
    pub fn new(priors: &Tensor, iou_threshold: f64, coder: BoxCoder) -> Self {
        let priors = priors.to_device(Device::Cpu).to_kind(Kind::Float);
        let corners = center_to_corner(&priors);
        Matcher { priors, corners, iou_threshold, coder }
    }

    pub fn num_priors(&self) -> i64 {
        self.priors.size()[0]
    }

    /// Targets for one image: `boxes` normalised corner-form, `labels` 1-based classes, one per box.
    /// An image without boxes gets all-background targets.
    pub fn targets(&self, boxes: &[BBox], labels: &[usize]) -> Result<MatchTargets> {
        if boxes.len() != labels.len() {
            bail!("{} boxes but {} labels", boxes.len(), labels.len());
        }
        if let Some(b) = boxes.iter().find(|b| !b.is_valid()) {
            bail!("invalid ground-truth box {:?} (needs xmax > xmin and ymax > ymin)", b.to_array());
        }
        if labels.contains(&0) {
            bail!("ground-truth labels are 1-based (0 is the background)");
        }
        let p = self.num_priors();
        if boxes.is_empty() {
            return Ok(MatchTargets {
                loc: Tensor::zeros([p, 4], (Kind::Float, Device::Cpu)),
                labels: Tensor::zeros([p], (Kind::Int64, Device::Cpu)),
            });
        }
        let gt = boxes::to_tensor(boxes);
        let iou = boxes::box_iou(&gt, &self.corners); // [G, P]
        let (best_iou, best_gt) = iou.max_dim(0, false);
        let best_prior = iou.argmax(1, false);
        let mut best_iou: Vec<f32> = Vec::try_from(&best_iou)?;
        let mut best_gt: Vec<i64> = Vec::try_from(&best_gt)?;
        let best_prior: Vec<i64> = Vec::try_from(&best_prior)?;
        for (g, &prior) in best_prior.iter().enumerate() {
            best_gt[prior as usize] = g as i64;
            best_iou[prior as usize] = 2.0;
        }
        let classes: Vec<i64> = best_gt
            .iter()
            .zip(&best_iou)
            .map(|(&g, &iou)| if (iou as f64) < self.iou_threshold { 0 } else { labels[g as usize] as i64 })
            .collect();
        let matched = gt.index_select(0, &Tensor::from_slice(&best_gt));
        let loc = self.coder.encode(&corner_to_center(&matched), &self.priors);
        Ok(MatchTargets { loc, labels: Tensor::from_slice(&classes) })
    }

    /// Targets of a batch, stacked: `[B, P, 4]` and `[B, P]`.
    pub fn batch_targets(&self, images: &[(Vec<BBox>, Vec<usize>)]) -> Result<MatchTargets> {
        let mut locs = Vec::with_capacity(images.len());
        let mut labels = Vec::with_capacity(images.len());
        for (i, (b, l)) in images.iter().enumerate() {
            let t = self.targets(b, l).map_err(|e| e.context(format!("image {i} of the batch")))?;
            locs.push(t.loc);
            labels.push(t.labels);
        }
        if images.is_empty() {
            bail!("an empty batch has no targets");
        }
        Ok(MatchTargets { loc: Tensor::stack(&locs, 0), labels: Tensor::stack(&labels, 0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::box_coder::center_to_corner;

    /// Three priors (centre form): left square, right square, a large box covering both.
    fn matcher(threshold: f64) -> Matcher {
        let priors =
            Tensor::from_slice(&[0.25f32, 0.5, 0.4, 0.4, 0.75, 0.5, 0.4, 0.4, 0.5, 0.5, 1.0, 1.0]).view([3, 4]);
        Matcher::new(&priors, threshold, BoxCoder::default())
    }

    fn labels(t: &MatchTargets) -> Vec<i64> {
        Vec::try_from(&t.labels).unwrap()
    }

    #[test]
    fn priors_above_the_threshold_take_their_best_ground_truth() {
        let m = matcher(0.5);
        // Exactly the left prior, and a box a little off the right prior (IoU 0.78 with it).
        let left = BBox::new(0.05, 0.3, 0.45, 0.7);
        let right = BBox::new(0.55, 0.3, 0.95, 0.7).shift(0.05, 0.0);
        let t = m.targets(&[left, right], &[3, 7]).unwrap();
        assert_eq!(labels(&t), vec![3, 7, 0]);
        assert_eq!(t.loc.size(), vec![3, 4]);
        // The left prior's offsets are zero; decoding the right prior's offsets gives its box back.
        assert!(t.loc.get(0).abs().max().double_value(&[]) < 1e-5);
        let decoded = center_to_corner(&m.coder.decode(&t.loc, &m.priors)).get(1);
        let want = boxes::to_tensor(&[right]).get(0);
        assert!((decoded - want).abs().max().double_value(&[]) < 1e-5);
    }

    #[test]
    fn each_ground_truth_keeps_its_best_prior_below_the_threshold() {
        // A small box in the left half: IoU with the left prior 0.25 (< 0.5), yet it is forced there.
        let small = BBox::new(0.15, 0.4, 0.35, 0.6);
        let t = matcher(0.5).targets(&[small], &[2]).unwrap();
        assert_eq!(labels(&t), vec![2, 0, 0]);
        // A lower threshold lets the other overlapping prior match too.
        let t = matcher(0.02).targets(&[small], &[2]).unwrap();
        assert_eq!(labels(&t), vec![2, 0, 2]);
    }

    #[test]
    fn a_forced_match_wins_over_the_overlap_of_another_ground_truth() {
        // Box A is exactly the right prior; small box B's best prior is also the right one. As in the
        // reference, the forced assignment (later ground truths last) gives that prior to B.
        let a = BBox::new(0.55, 0.3, 0.95, 0.7);
        let b = BBox::new(0.7, 0.45, 0.8, 0.55);
        let t = matcher(0.5).targets(&[a, b], &[1, 4]).unwrap();
        assert_eq!(labels(&t), vec![0, 4, 0]);
        let t = matcher(0.5).targets(&[a], &[1]).unwrap();
        assert_eq!(labels(&t), vec![0, 1, 0]);
    }

    #[test]
    fn an_image_without_objects_is_all_background() {
        let t = matcher(0.5).targets(&[], &[]).unwrap();
        assert_eq!(labels(&t), vec![0, 0, 0]);
        assert_eq!(t.loc.abs().sum(Kind::Float).double_value(&[]), 0.0);
    }

    #[test]
    fn bad_ground_truth_is_an_error() {
        let m = matcher(0.5);
        assert!(m.targets(&[BBox::new(0.5, 0.5, 0.4, 0.6)], &[1]).is_err());
        assert!(m.targets(&[BBox::new(0.1, 0.1, 0.4, 0.6)], &[0]).unwrap_err().to_string().contains("1-based"));
        assert!(m.targets(&[BBox::new(0.1, 0.1, 0.4, 0.6)], &[]).is_err());
        let batch = m.batch_targets(&[(vec![], vec![]), (vec![BBox::new(0.0, 0.0, 1.0, 1.0)], vec![5])]).unwrap();
        assert_eq!(batch.loc.size(), vec![2, 3, 4]);
        assert_eq!(Vec::<i64>::try_from(batch.labels.view([-1])).unwrap(), vec![0, 0, 0, 0, 0, 5]);
    }
}

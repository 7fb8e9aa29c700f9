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

/// Matches ground truths to a fixed set of priors: image by image on the host ([`Matcher::targets`]), or
/// for a whole batch on the device ([`Matcher::batch_targets_on`], what training uses).
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
        check_ground_truth(boxes, labels)?;
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

    /// Targets of a batch, stacked: `[B, P, 4]` and `[B, P]`, computed for the whole batch at once on
    /// `device` (the ground truths padded to the batch's largest count): the same targets as
    /// [`Matcher::targets`] image by image. Of several ground truths forcing the same prior, the last wins,
    /// as in the per-image loop (an `amax` over the ground truths, not a racy scatter).
    pub fn batch_targets_on(&self, images: &[(Vec<BBox>, Vec<usize>)], device: Device) -> Result<MatchTargets> {
        if images.is_empty() {
            bail!("an empty batch has no targets");
        }
        for (i, (b, l)) in images.iter().enumerate() {
            check_ground_truth(b, l).map_err(|e| e.context(format!("image {i} of the batch")))?;
        }
        let (b, p) = (images.len() as i64, self.num_priors());
        let g = images.iter().map(|(boxes, _)| boxes.len()).max().unwrap_or(0).max(1) as i64;
        let (mut gt, mut labels) = (vec![0f32; (b * g * 4) as usize], vec![0i64; (b * g) as usize]);
        let mut real = vec![false; (b * g) as usize];
        for (i, (boxes, ls)) in images.iter().enumerate() {
            for (j, (bx, &l)) in boxes.iter().zip(ls).enumerate() {
                let at = i * g as usize + j;
                gt[at * 4..at * 4 + 4].copy_from_slice(&bx.to_array());
                labels[at] = l as i64;
                real[at] = true;
            }
        }
        let put = |t: Tensor| skipblock_core::batch::to_device(&t, device);
        let gt = put(Tensor::from_slice(&gt).view([b, g, 4]));
        let labels = put(Tensor::from_slice(&labels).view([b, g]));
        let real = put(Tensor::from_slice(&real).view([b, g]));
        let (corners, priors) = (self.corners.to_device(device), self.priors.to_device(device));
        Ok(tch::no_grad(|| {
            // IoU [B, G, P]; padding rows at −1 so that they never win a prior.
            let iou = batched_iou(&gt, &corners).masked_fill(&real.logical_not().unsqueeze(2), -1.0);
            let (best_iou, best_gt) = iou.max_dim(1, false); // [B, P]
            let best_prior = iou.argmax(2, false); // [B, G]
            let gt_index = Tensor::arange(g, (Kind::Int64, device)).unsqueeze(0).expand([b, g], false);
            let forcing = gt_index.masked_fill(&real.logical_not(), -1);
            // The last ground truth whose best prior is p, per prior (−1: none).
            let hits = best_prior.unsqueeze(2).eq_tensor(&Tensor::arange(p, (Kind::Int64, device)).view([1, 1, p]));
            let forced = forcing.unsqueeze(2).masked_fill(&hits.logical_not(), -1).amax(&[1i64][..], false);
            let is_forced = forced.ge(0);
            let best_gt = best_gt.where_self(&is_forced.logical_not(), &forced);
            let best_iou = best_iou.to_kind(Kind::Double).masked_fill(&is_forced, 2.0);
            let classes = labels.gather(1, &best_gt, false).masked_fill(&best_iou.lt(self.iou_threshold), 0);
            let matched = gt.gather(1, &best_gt.unsqueeze(2).expand([b, p, 4], false), false);
            // Images without objects: all background, zero offsets (as the per-image path).
            let empty = real.any_dim(1, false).logical_not().view([b, 1, 1]);
            let loc = self.coder.encode(&corner_to_center(&matched), &priors).masked_fill(&empty, 0.0);
            MatchTargets { loc, labels: classes }
        }))
    }

    /// Targets of a batch, stacked: `[B, P, 4]` and `[B, P]`, image by image on the host (the reference of
    /// [`Matcher::batch_targets_on`]).
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

/// The checks [`Matcher::targets`] makes on one image's ground truth.
fn check_ground_truth(boxes: &[BBox], labels: &[usize]) -> Result<()> {
    if boxes.len() != labels.len() {
        bail!("{} boxes but {} labels", boxes.len(), labels.len());
    }
    if let Some(b) = boxes.iter().find(|b| !b.is_valid()) {
        bail!("invalid ground-truth box {:?} (needs xmax > xmin and ymax > ymin)", b.to_array());
    }
    if labels.contains(&0) {
        bail!("ground-truth labels are 1-based (0 is the background)");
    }
    Ok(())
}

/// IoU of corner-form boxes `[B, G, 4]` with `[P, 4]`: `[B, G, P]` ([`boxes::box_iou`]'s formula).
fn batched_iou(a: &Tensor, b: &Tensor) -> Tensor {
    let area = |t: &Tensor| {
        (t.select(-1, 2) - t.select(-1, 0)).clamp_min(0.0) * (t.select(-1, 3) - t.select(-1, 1)).clamp_min(0.0)
    };
    let (area_a, area_b) = (area(a), area(b));
    let lt = a.narrow(2, 0, 2).unsqueeze(2).maximum(&b.narrow(1, 0, 2).unsqueeze(0).unsqueeze(0));
    let rb = a.narrow(2, 2, 2).unsqueeze(2).minimum(&b.narrow(1, 2, 2).unsqueeze(0).unsqueeze(0));
    let wh = (rb - lt).clamp_min(0.0);
    let inter = wh.select(3, 0) * wh.select(3, 1);
    let union = area_a.unsqueeze(2) + area_b.unsqueeze(0).unsqueeze(0) - &inter;
    inter / union.clamp_min(1e-12)
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
        let err = m.batch_targets_on(&[(vec![], vec![]), (vec![BBox::new(0.1, 0.1, 0.4, 0.6)], vec![0])], Device::Cpu);
        assert!(format!("{:#}", err.unwrap_err()).contains("image 1"));
        assert!(m.batch_targets_on(&[], Device::Cpu).is_err());
    }

    #[test]
    fn the_batched_matcher_gives_the_per_image_targets() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let priors = crate::anchors::priors(&crate::anchors::PriorConfig::default()).unwrap();
        let m = Matcher::new(&priors, 0.5, BoxCoder::default());
        let corners = boxes::from_tensor(&center_to_corner(&priors).clamp(0.0, 1.0));
        for round in 0..6 {
            let images: Vec<(Vec<BBox>, Vec<usize>)> = (0..5)
                .map(|i| {
                    let n = if i == 2 { 0 } else { rng.gen_range(1..12) };
                    let mut bs: Vec<BBox> = (0..n)
                        .map(|_| {
                            let (x, y) = (rng.gen_range(0.0..0.8f32), rng.gen_range(0.0..0.8f32));
                            BBox::new(x, y, x + rng.gen_range(0.01..0.2f32), y + rng.gen_range(0.01..0.2f32))
                        })
                        .collect();
                    if n > 3 {
                        // Ties: a box repeated (both force the same prior: the later wins), and a box that
                        // is exactly a prior.
                        bs[1] = bs[0];
                        bs[2] = corners[rng.gen_range(0..corners.len())];
                    }
                    let ls = (0..n).map(|_| rng.gen_range(1..21)).collect();
                    (bs, ls)
                })
                .collect();
            let old = m.batch_targets(&images).unwrap();
            let new = m.batch_targets_on(&images, Device::Cpu).unwrap();
            assert!(new.labels.equal(&old.labels), "round {round}: labels");
            assert!(new.loc.equal(&old.loc), "round {round}: offsets");
            let positives = new.labels.gt(0).sum(Kind::Int64).int64_value(&[]);
            assert!(positives >= 20, "round {round}: {positives} positives");
        }
    }
}

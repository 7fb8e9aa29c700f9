//! Priors fitted to a dataset's boxes (`ssd.priors.auto = true`, `detect train --auto-priors`), in the
//! spirit of ultralytics' AutoAnchor for YOLO: a search over SSD's own prior family for the set that
//! best [covers](crate::coverage) the training boxes.
//!
//! The family: the feature maps (and their steps) stay as the network makes them; map k gets the scale
//! s_k, the scales spaced linearly (as SSD's) or geometrically between s_lo and s_hi, `min_sizes[k] =
//! s_k`, `max_sizes[k] = s_{k+1}` (one step past s_hi for the last map); every map shares one set of
//! aspect ratios. The score of a candidate is the share of boxes whose best prior reaches the matching
//! IoU plus the mean best IoU (both 0–1). The search: s_lo and s_hi from the quantiles of the boxes'
//! relative sizes × both spacings with the recipe's ratios; then the ratio sets (SSD's, fewer, wider,
//! and the boxes' own 75th/95th percentile elongation); then a local refinement of s_lo and s_hi.
//! Deterministic: large datasets are subsampled evenly, not at random.

use crate::anchors::PriorConfig;
use crate::coverage::{best_prior_ious, coverage, Coverage, GtBox};
use anyhow::{bail, Context, Result};
use serde::Serialize;

/// Boxes the search scores candidates on (the final coverage uses every box).
const SAMPLE: usize = 10_000;

/// When the recipe's priors already cover this share of the boxes they are kept (as AutoAnchor keeps a
/// model's anchors above 0.98 best possible recall): refitting a set that works would only tailor it to
/// this one dataset.
pub const GOOD_COVERAGE: f64 = 0.98;

/// How the scales of consecutive feature maps are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Spacing {
    Linear,
    Geometric,
}

/// The result of [`fit_priors`]: the fitted section and the coverage before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorFit {
    pub priors: PriorConfig,
    /// The recipe's priors were kept: they already covered [`GOOD_COVERAGE`] of the boxes, or nothing
    /// fitted did better.
    pub kept: bool,
    pub spacing: Spacing,
    pub before: Coverage,
    pub after: Coverage,
}

impl PriorFit {
    pub fn summary(&self) -> String {
        if self.kept {
            return format!(
                "priors kept as the recipe has them: they cover {:.1}% of the boxes (mean best IoU {:.3}); fitting \
                 replaces them below {:.0}%",
                self.before.all.share * 100.0,
                self.before.all.mean_best_iou,
                GOOD_COVERAGE * 100.0
            );
        }
        let sizes: Vec<String> = self.priors.min_sizes.iter().map(|s| format!("{s:.1}")).collect();
        format!(
            "fitted priors: min sizes [{}] px of {} ({:?} spacing), aspect ratios {:?}; coverage {:.1}% → {:.1}%, \
             mean best IoU {:.3} → {:.3}",
            sizes.join(", "),
            self.priors.image_size,
            self.spacing,
            self.priors.aspect_ratios.first().cloned().unwrap_or_default(),
            self.before.all.share * 100.0,
            self.after.all.share * 100.0,
            self.before.all.mean_best_iou,
            self.after.all.mean_best_iou
        )
    }
}

/// The `m` scales from `lo` to `hi` and the one past `hi`.
fn scales(lo: f64, hi: f64, m: usize, spacing: Spacing) -> Vec<f64> {
    if m == 1 {
        return vec![lo, hi.max(lo)];
    }
    (0..=m)
        .map(|k| {
            let t = k as f64 / (m - 1) as f64;
            match spacing {
                Spacing::Linear => lo + (hi - lo) * t,
                Spacing::Geometric => lo * (hi / lo).powf(t),
            }
        })
        .collect()
}

/// `base` with the scales (fractions of the image) and ratios of a candidate.
fn candidate(base: &PriorConfig, lo: f64, hi: f64, spacing: Spacing, ratios: &[f64]) -> PriorConfig {
    let m = base.feature_maps.len();
    let s = scales(lo, hi, m, spacing);
    let px = |v: f64| (v * base.image_size as f64 * 100.0).round() / 100.0;
    PriorConfig {
        min_sizes: s[..m].iter().map(|&v| px(v)).collect(),
        max_sizes: s[1..].iter().map(|&v| px(v)).collect(),
        aspect_ratios: vec![ratios.to_vec(); m],
        auto: false,
        ..base.clone()
    }
}

/// Share covered + mean best IoU of `boxes`.
fn score(cfg: &PriorConfig, boxes: &[GtBox], threshold: f64) -> Result<f64> {
    let best = best_prior_ious(cfg, boxes)?;
    let n = best.len().max(1) as f64;
    let covered = best.iter().filter(|(i, _)| *i as f64 >= threshold).count() as f64;
    Ok(covered / n + best.iter().map(|&(i, _)| i as f64).sum::<f64>() / n)
}

/// The best candidate so far.
#[derive(Debug, Clone)]
struct Best {
    score: f64,
    lo: f64,
    hi: f64,
    spacing: Spacing,
    ratios: Vec<f64>,
}

/// Candidates scored on a sample of boxes, the best kept.
struct Search<'a> {
    base: &'a PriorConfig,
    sample: &'a [GtBox],
    threshold: f64,
    best: Option<Best>,
}

impl Search<'_> {
    fn consider(&mut self, lo: f64, hi: f64, spacing: Spacing, ratios: &[f64]) -> Result<()> {
        let (lo, hi) = (lo.clamp(0.005, 1.0), hi.clamp(0.005, 1.5));
        if hi <= lo * 1.05 && self.base.feature_maps.len() > 1 {
            return Ok(());
        }
        let score = score(&candidate(self.base, lo, hi, spacing, ratios), self.sample, self.threshold)?;
        if self.best.as_ref().is_none_or(|b| score > b.score + 1e-9) {
            self.best = Some(Best { score, lo, hi, spacing, ratios: ratios.to_vec() });
        }
        Ok(())
    }

    fn best(&self) -> Result<Best> {
        self.best.clone().context("no prior candidate could be scored")
    }
}

/// The `q`-quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Fits the priors of `base` (resolved: its feature maps are the network's) to `boxes` (normalised),
/// for matching at IoU `threshold`.
pub fn fit_priors(base: &PriorConfig, boxes: &[GtBox], classes: &[String], threshold: f64) -> Result<PriorFit> {
    if boxes.is_empty() {
        bail!("no ground-truth box to fit the priors to");
    }
    if base.feature_maps.is_empty() {
        bail!("fitting priors needs the feature-map sizes (resolve the priors against the network first)");
    }
    let before = coverage(base, boxes, classes, threshold)?;
    let keep = |before: Coverage| {
        let priors = PriorConfig { auto: false, ..base.clone() };
        Ok(PriorFit { priors, kept: true, spacing: Spacing::Linear, after: before.clone(), before })
    };
    if before.all.share >= GOOD_COVERAGE {
        return keep(before);
    }
    let step = boxes.len().div_ceil(SAMPLE);
    let sample: Vec<GtBox> = boxes.iter().step_by(step).copied().collect();
    let mut sizes: Vec<f64> =
        sample.iter().map(|g| (g.bbox.width() as f64 * g.bbox.height() as f64).max(1e-8).sqrt()).collect();
    sizes.sort_by(f64::total_cmp);
    let mut elongation: Vec<f64> = sample
        .iter()
        .map(|g| {
            let (w, h) = (g.bbox.width().max(1e-6) as f64, g.bbox.height().max(1e-6) as f64);
            (w / h).max(h / w)
        })
        .collect();
    elongation.sort_by(f64::total_cmp);

    let image = base.image_size as f64;
    let base_lo = base.min_sizes.first().map_or(0.2, |v| v / image);
    let base_hi = base.min_sizes.last().map_or(0.9, |v| v / image);
    let mut los: Vec<f64> = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3].iter().map(|&q| quantile(&sizes, q)).collect();
    let mut his: Vec<f64> = [0.7, 0.8, 0.9, 0.95, 0.98, 1.0].iter().map(|&q| quantile(&sizes, q)).collect();
    los.push(base_lo);
    his.push(base_hi);
    let base_ratios = base.aspect_ratios.first().cloned().unwrap_or_else(|| vec![2.0, 3.0]);

    let mut search = Search { base, sample: &sample, threshold, best: None };
    // 1. Scales, with the recipe's ratios.
    for &lo in &los {
        for &hi in &his {
            for spacing in [Spacing::Linear, Spacing::Geometric] {
                search.consider(lo, hi, spacing, &base_ratios)?;
            }
        }
    }
    // 2. Ratio sets at the best scales.
    let Best { lo, hi, spacing, .. } = search.best()?;
    let round = |v: f64| (v * 4.0).round() / 4.0;
    let mut ratio_sets: Vec<Vec<f64>> =
        vec![vec![2.0, 3.0], vec![2.0], vec![1.5], vec![1.5, 3.0], vec![2.0, 4.0], vec![]];
    let mut own: Vec<f64> = [quantile(&elongation, 0.75), quantile(&elongation, 0.95)]
        .into_iter()
        .map(round)
        .filter(|&r| r >= 1.25)
        .collect();
    own.dedup();
    ratio_sets.push(own);
    for ratios in &ratio_sets {
        search.consider(lo, hi, spacing, ratios)?;
    }
    // 3. Local refinement of the scales.
    for _ in 0..2 {
        let Best { lo, hi, spacing, ratios, .. } = search.best()?;
        for f_lo in [0.85, 0.93, 1.0, 1.08, 1.17] {
            for f_hi in [0.85, 0.93, 1.0, 1.08, 1.17] {
                search.consider(lo * f_lo, hi * f_hi, spacing, &ratios)?;
            }
        }
    }
    let Best { lo, hi, spacing, ratios, .. } = search.best()?;
    let priors = candidate(base, lo, hi, spacing, &ratios);
    let after = coverage(&priors, boxes, classes, threshold)?;
    // Never worse than what the recipe had (on every box, not only the sample).
    if (after.all.share + after.all.mean_best_iou) <= (before.all.share + before.all.mean_best_iou) {
        return keep(before);
    }
    Ok(PriorFit { priors, kept: false, spacing, before, after })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use skipblock_core::boxes::BBox;

    /// SSDLite's maps at 300 px.
    fn ssd300() -> PriorConfig {
        PriorConfig { feature_maps: vec![19, 10, 5, 3, 2, 1], steps: vec![], ..PriorConfig::default() }
    }

    /// `n` boxes of sides `lo..hi` (fraction of the image), aspect 1:1 to 1:2, anywhere in the image.
    fn boxes(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<GtBox> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let s = rng.gen_range(lo..hi);
                let a = rng.gen_range(1.0f32..2.0);
                let (w, h) = if i % 2 == 0 { (s * a.sqrt(), s / a.sqrt()) } else { (s / a.sqrt(), s * a.sqrt()) };
                let (x, y) = (rng.gen_range(0.0..1.0 - w), rng.gen_range(0.0..1.0 - h));
                GtBox { bbox: BBox::new(x, y, x + w, y + h), class: i % 2 }
            })
            .collect()
    }

    #[test]
    fn small_objects_get_small_priors_and_better_coverage() {
        // 13–30 px objects on a 300 px image: SSD300's priors start at 60 px.
        let gts = boxes(1500, 13.0 / 300.0, 30.0 / 300.0, 1);
        let classes = vec!["a".to_string(), "b".to_string()];
        let fit = fit_priors(&ssd300(), &gts, &classes, 0.5).unwrap();
        assert!(fit.before.all.share < 0.2, "stock priors barely cover them: {}", fit.before.all.share);
        assert!(fit.after.all.share > fit.before.all.share + 0.3, "{}", fit.summary());
        assert!(fit.after.all.mean_best_iou > fit.before.all.mean_best_iou);
        assert!(fit.priors.min_sizes[0] < 30.0, "{:?}", fit.priors.min_sizes);
        assert!(fit.priors.min_sizes.windows(2).all(|w| w[0] <= w[1]), "scales grow with the maps");
        assert_eq!(fit.priors.feature_maps, ssd300().feature_maps, "the maps are the network's");
        assert!(!fit.priors.auto && !fit.kept, "the fitted section is fixed");
        // Deterministic.
        assert_eq!(fit_priors(&ssd300(), &gts, &classes, 0.5).unwrap().priors, fit.priors);
    }

    #[test]
    fn objects_the_stock_priors_suit_keep_them() {
        let gts = boxes(800, 0.2, 0.65, 2);
        let fit = fit_priors(&ssd300(), &gts, &["a".to_string(), "b".to_string()], 0.5).unwrap();
        assert!(fit.before.all.share >= GOOD_COVERAGE, "{}", fit.before.summary());
        assert!(fit.kept && fit.after == fit.before, "{}", fit.summary());
        assert_eq!(fit.priors.min_sizes, ssd300().min_sizes);
        assert!(fit.summary().contains("kept"));
        assert!(fit_priors(&ssd300(), &[], &[], 0.5).is_err());
    }

    #[test]
    fn scales_span_the_range_in_either_spacing() {
        let lin = scales(0.1, 0.9, 5, Spacing::Linear);
        assert_eq!(lin.len(), 6);
        assert!((lin[0] - 0.1).abs() < 1e-12 && (lin[4] - 0.9).abs() < 1e-12 && (lin[5] - 1.1).abs() < 1e-12);
        let geo = scales(0.05, 0.8, 5, Spacing::Geometric);
        assert!((geo[2] / geo[1] - geo[1] / geo[0]).abs() < 1e-12);
        assert_eq!(scales(0.2, 0.5, 1, Spacing::Linear), vec![0.2, 0.5]);
    }
}

//! Prior coverage: how well a set of SSD priors can match a dataset's objects. For each ground-truth box
//! (normalised to its image, as SSD's resize to a square sees it) the best IoU any prior reaches; a box
//! is *covered* when that IoU reaches the matching threshold (`ssd.match_iou`). Uncovered boxes still
//! get their best prior as a forced positive in training, but one poorly aligned match is all they get:
//! low coverage (small objects under SSD300's 60 px priors) is what caps such a detector.

use crate::anchors::PriorConfig;
use anyhow::{bail, Result};
use serde::Serialize;
use skipblock_core::boxes::BBox;
use skipblock_data::voc::VocRecord;
use std::fmt::Write as _;

/// One ground-truth box: normalised corners (0–1 of the image) and its 0-based class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtBox {
    pub bbox: BBox,
    pub class: usize,
}

/// Coverage of one group of boxes (a feature map's, a class's, or all).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageRow {
    /// `all`, a class name, or `map 0 (19x19)`.
    pub name: String,
    pub boxes: usize,
    /// Boxes whose best prior has IoU ≥ the threshold.
    pub covered: usize,
    /// covered / boxes (0 for no box).
    pub share: f64,
    pub mean_best_iou: f64,
}

/// The coverage of a dataset's boxes by a prior set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    pub threshold: f64,
    pub priors: usize,
    pub all: CoverageRow,
    /// Boxes grouped by the feature map of their best prior, largest map first.
    pub per_map: Vec<CoverageRow>,
    pub per_class: Vec<CoverageRow>,
}

/// The boxes training sees (difficult objects are left out, as the training loader does), normalised to
/// their images.
pub fn training_boxes<'a>(records: impl IntoIterator<Item = &'a VocRecord>) -> Vec<GtBox> {
    let mut out = Vec::new();
    for r in records {
        let (w, h) = (r.width.max(1) as f32, r.height.max(1) as f32);
        for o in r.objects.iter().filter(|o| !o.difficult) {
            let b = o.bbox;
            let bbox = BBox::new(b.xmin / w, b.ymin / h, b.xmax / w, b.ymax / h);
            if bbox.is_valid() {
                out.push(GtBox { bbox, class: o.class });
            }
        }
    }
    out
}

/// Below this share of covered boxes `detect train` warns.
pub const LOW_COVERAGE: f64 = 0.9;

impl Coverage {
    pub fn is_low(&self) -> bool {
        self.all.boxes > 0 && self.all.share < LOW_COVERAGE
    }

    /// A one-line summary: `prior coverage at IoU 0.5: 93.1% of 1,234 boxes, mean best IoU 0.71`.
    pub fn summary(&self) -> String {
        format!(
            "prior coverage at IoU {}: {:.1}% of {} boxes (mean best IoU {:.3}, {} priors)",
            self.threshold,
            self.all.share * 100.0,
            self.all.boxes,
            self.all.mean_best_iou,
            self.priors
        )
    }

    /// The summary, then a table per feature map and per class.
    pub fn to_text(&self) -> String {
        let mut out = self.summary();
        out.push('\n');
        let width = self.per_class.iter().chain(&self.per_map).map(|r| r.name.len()).max().unwrap_or(4).max(8);
        let _ = writeln!(out, "  {:<width$} {:>7} {:>8} {:>13}", "", "boxes", "covered", "mean best IoU");
        for row in self.per_map.iter().chain(&self.per_class) {
            let _ = writeln!(
                out,
                "  {:<width$} {:>7} {:>7.1}% {:>13.3}",
                row.name,
                row.boxes,
                row.share * 100.0,
                row.mean_best_iou
            );
        }
        out
    }
}

/// One feature map's priors: side, step (normalised) and the (w, h) shapes at every location.
type MapPriors = (i64, f64, Vec<(f64, f64)>);

/// The best IoU any prior of `cfg` reaches with each box, and the feature map of that prior.
///
/// Exact without comparing every box with every prior: on a map, the priors of one shape sit on a
/// regular grid, and for two boxes of fixed sizes the IoU only grows as their centres come closer along
/// each axis, so the best prior of each shape is one of the grid centres next to the box's centre.
pub fn best_prior_ious(cfg: &PriorConfig, boxes: &[GtBox]) -> Result<Vec<(f32, usize)>> {
    cfg.validate()?;
    let image = cfg.image_size as f64;
    let fix = |v: f64| if cfg.clip { v.clamp(0.0, 1.0) } else { v };
    let maps: Vec<MapPriors> = cfg
        .feature_maps
        .iter()
        .enumerate()
        .map(|(k, &f)| {
            let step = cfg.steps.get(k).map_or(1.0 / f as f64, |s| s / image);
            let min = cfg.min_sizes[k] / image;
            let big = (cfg.min_sizes[k] * cfg.max_sizes[k]).sqrt() / image;
            let mut shapes = vec![(min, min), (big, big)];
            for r in &cfg.aspect_ratios[k] {
                let s = r.sqrt();
                shapes.push((min * s, min / s));
                shapes.push((min / s, min * s));
            }
            (f, step, shapes.into_iter().map(|(w, h)| (fix(w), fix(h))).collect())
        })
        .collect();
    Ok(boxes
        .iter()
        .map(|g| {
            let b = g.bbox;
            let (cx, cy) = ((b.xmin + b.xmax) as f64 / 2.0, (b.ymin + b.ymax) as f64 / 2.0);
            let area = (b.width() as f64) * (b.height() as f64);
            let mut best = (0.0f64, 0usize);
            for (k, (f, step, shapes)) in maps.iter().enumerate() {
                // The grid indices around the box centre, along each axis.
                let near = |c: f64| {
                    let i = (c / step - 0.5).round() as i64;
                    (i - 1).max(0)..=(i + 1).min(f - 1)
                };
                for i in near(cy) {
                    let py = fix((i as f64 + 0.5) * step);
                    for j in near(cx) {
                        let px = fix((j as f64 + 0.5) * step);
                        for &(w, h) in shapes {
                            let ix = (b.xmax as f64).min(px + w / 2.0) - (b.xmin as f64).max(px - w / 2.0);
                            let iy = (b.ymax as f64).min(py + h / 2.0) - (b.ymin as f64).max(py - h / 2.0);
                            let inter = ix.max(0.0) * iy.max(0.0);
                            let iou = inter / (area + w * h - inter);
                            if iou > best.0 {
                                best = (iou, k);
                            }
                        }
                    }
                }
            }
            (best.0 as f32, best.1)
        })
        .collect())
}

fn row(name: String, ious: impl Iterator<Item = f32>, threshold: f64) -> CoverageRow {
    let (mut boxes, mut covered, mut sum) = (0usize, 0usize, 0f64);
    for iou in ious {
        boxes += 1;
        covered += (iou as f64 >= threshold) as usize;
        sum += iou as f64;
    }
    let share = if boxes == 0 { 0.0 } else { covered as f64 / boxes as f64 };
    let mean_best_iou = if boxes == 0 { 0.0 } else { sum / boxes as f64 };
    CoverageRow { name, boxes, covered, share, mean_best_iou }
}

/// The coverage of `boxes` by the priors of `cfg` (resolved: feature maps known) at IoU `threshold`.
pub fn coverage(cfg: &PriorConfig, boxes: &[GtBox], classes: &[String], threshold: f64) -> Result<Coverage> {
    if cfg.feature_maps.is_empty() {
        bail!("prior coverage needs the feature-map sizes (resolve the priors against the network first)");
    }
    let best = best_prior_ious(cfg, boxes)?;
    let per_map = cfg
        .feature_maps
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let ious = best.iter().filter(|(_, m)| *m == k).map(|&(i, _)| i);
            row(format!("map {k} ({f}x{f}, min size {})", cfg.min_sizes[k]), ious, threshold)
        })
        .collect();
    let per_class = classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let ious = best.iter().zip(boxes).filter(|(_, g)| g.class == c).map(|(&(i, _), _)| i);
            row(name.clone(), ious, threshold)
        })
        .filter(|r| r.boxes > 0)
        .collect();
    Ok(Coverage {
        threshold,
        priors: cfg.num_priors() as usize,
        all: row("all".into(), best.iter().map(|&(i, _)| i), threshold),
        per_map,
        per_class,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 2×2 map, squares of half the image: the four quadrants are the priors.
    fn quadrants() -> PriorConfig {
        PriorConfig {
            feature_maps: vec![2],
            steps: vec![],
            min_sizes: vec![150.0],
            max_sizes: vec![150.0],
            aspect_ratios: vec![vec![]],
            ..PriorConfig::default()
        }
    }

    #[test]
    fn boxes_on_a_prior_are_covered_and_small_ones_are_not() {
        let classes = vec!["big".to_string(), "small".to_string()];
        let boxes = [
            GtBox { bbox: BBox::new(0.0, 0.0, 0.5, 0.5), class: 0 },
            GtBox { bbox: BBox::new(0.5, 0.5, 1.0, 1.0), class: 0 },
            // A quarter of a quadrant's side: IoU 1/16 with it.
            GtBox { bbox: BBox::new(0.0, 0.0, 0.125, 0.125), class: 1 },
        ];
        let c = coverage(&quadrants(), &boxes, &classes, 0.5).unwrap();
        assert_eq!(c.priors, 8, "4 locations × (min square, big square)");
        assert_eq!((c.all.boxes, c.all.covered), (3, 2));
        assert!((c.all.mean_best_iou - (2.0 + 1.0 / 16.0) / 3.0).abs() < 1e-5, "{}", c.all.mean_best_iou);
        assert_eq!(c.per_class[0].share, 1.0);
        assert_eq!(c.per_class[1].share, 0.0);
        assert!((c.per_class[1].mean_best_iou - 1.0 / 16.0).abs() < 1e-5);
        assert_eq!(c.per_map.len(), 1);
        assert_eq!(c.per_map[0].boxes, 3);
        assert!(c.is_low());
        assert!(c.to_text().contains("small"));
    }

    #[test]
    fn the_grid_search_finds_what_comparing_every_prior_finds() {
        use crate::anchors::priors;
        use crate::box_coder::center_to_corner;
        use rand::{Rng, SeedableRng};
        use skipblock_core::boxes::{box_iou, to_tensor};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let boxes: Vec<GtBox> = (0..400)
            .map(|_| {
                let (w, h) = (rng.gen_range(0.01f32..0.9), rng.gen_range(0.01f32..0.9));
                let (x, y) = (rng.gen_range(0.0..1.0 - w), rng.gen_range(0.0..1.0 - h));
                GtBox { bbox: BBox::new(x, y, x + w, y + h), class: 0 }
            })
            .collect();
        let ssd300 = PriorConfig { feature_maps: vec![19, 10, 5, 3, 2, 1], ..PriorConfig::default() };
        let derived = PriorConfig { feature_maps: vec![8, 4, 2, 1, 1, 1], steps: vec![], ..PriorConfig::default() };
        for cfg in [ssd300, derived] {
            let fast = best_prior_ious(&cfg, &boxes).unwrap();
            let corners = center_to_corner(&priors(&cfg).unwrap());
            let all = box_iou(&to_tensor(&boxes.iter().map(|g| g.bbox).collect::<Vec<_>>()), &corners);
            let brute: Vec<f32> = Vec::try_from(&all.max_dim(1, false).0).unwrap();
            for (i, (f, b)) in fast.iter().zip(&brute).enumerate() {
                assert!((f.0 - b).abs() < 1e-5, "box {i}: {} vs {b}", f.0);
            }
        }
    }

    #[test]
    fn boxes_are_grouped_by_the_map_of_their_best_prior() {
        // Map 0: 2×2 of quarter-size squares; map 1: one full-image square.
        let cfg = PriorConfig {
            feature_maps: vec![2, 1],
            steps: vec![],
            min_sizes: vec![150.0, 300.0],
            max_sizes: vec![150.0, 300.0],
            aspect_ratios: vec![vec![], vec![]],
            ..PriorConfig::default()
        };
        let boxes = [
            GtBox { bbox: BBox::new(0.5, 0.0, 1.0, 0.5), class: 0 },
            GtBox { bbox: BBox::new(0.0, 0.0, 1.0, 1.0), class: 0 },
        ];
        let c = coverage(&cfg, &boxes, &["x".to_string()], 0.5).unwrap();
        assert_eq!(c.per_map.iter().map(|r| r.boxes).collect::<Vec<_>>(), vec![1, 1]);
        assert_eq!(c.all.covered, 2);
        assert!(!c.is_low());
        let unresolved = PriorConfig { feature_maps: vec![], ..cfg };
        assert!(coverage(&unresolved, &boxes, &[], 0.5).is_err());
    }
}

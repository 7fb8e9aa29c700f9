//! Object sizes of a VOC dataset: per class (and over all classes) the percentiles of each box's size in
//! pixels (√(w·h)) and as a fraction of its image (√(w·h / (W·H))), and the histogram chart of them — what
//! tells a user whether SSD's priors (SSD300's start at 60 px, a fifth of the image) can match the objects.

use super::dataset::VocRecord;
use crate::image_io::RgbImage;
use crate::plot::{palette, Axis, LineChart, Series};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

/// The percentiles reported.
pub const PERCENTILES: [f64; 5] = [5.0, 25.0, 50.0, 75.0, 95.0];

/// Percentiles of one quantity (the [`PERCENTILES`] in order), with its extremes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no value.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let [p5, p25, p50, p75, p95] = PERCENTILES.map(|p| percentile(&v, p));
        Some(Spread { min: v[0], p5, p25, p50, p75, p95, max: v[v.len() - 1] })
    }
}

/// Linear interpolation between closest ranks (NumPy's default) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let pos = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The sizes of one class's objects (or of every object: `class` = `all`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassSizes {
    pub class: String,
    pub objects: usize,
    /// √(w·h) in pixels of the original image.
    pub pixels: Spread,
    /// √(w·h / (W·H)): the side relative to the image's (what SSD's resize to a square keeps).
    pub fraction: Spread,
    /// Width / height.
    pub aspect: Spread,
}

/// One box's size, relative size and aspect ratio.
fn measures(r: &VocRecord) -> impl Iterator<Item = (usize, f64, f64, f64)> + '_ {
    let image = (r.width as f64 * r.height as f64).sqrt().max(1.0);
    r.objects.iter().map(move |o| {
        let (w, h) = (o.bbox.width() as f64, o.bbox.height() as f64);
        let side = (w * h).sqrt();
        (o.class, side, side / image, w / h.max(1e-6))
    })
}

/// Per-class sizes (classes without objects left out), then `all`.
pub fn object_sizes<'a>(records: impl IntoIterator<Item = &'a VocRecord>, classes: &[String]) -> Vec<ClassSizes> {
    let mut per: Vec<[Vec<f64>; 3]> = vec![Default::default(); classes.len() + 1];
    for r in records {
        for (class, side, fraction, aspect) in measures(r) {
            for c in [class, classes.len()] {
                per[c][0].push(side);
                per[c][1].push(fraction);
                per[c][2].push(aspect);
            }
        }
    }
    per.iter()
        .enumerate()
        .filter_map(|(c, [px, fr, asp])| {
            let class = classes.get(c).cloned().unwrap_or_else(|| "all".into());
            Some(ClassSizes {
                class,
                objects: px.len(),
                pixels: Spread::of(px)?,
                fraction: Spread::of(fr)?,
                aspect: Spread::of(asp)?,
            })
        })
        .collect()
}

/// Histogram bins: 16 per decade of relative size, from 0.5% to 100% of the image side.
fn bins() -> Vec<f64> {
    (0..=37).map(|i| 0.005 * 10f64.powf(i as f64 / 16.0)).collect()
}

/// The histogram chart: for each class (and all objects, in grey) the share of its objects per bin of
/// relative size (√(w·h) / √(W·H), log axis), drawn as a frequency polygon.
pub fn histogram<'a>(records: impl IntoIterator<Item = &'a VocRecord>, classes: &[String]) -> LineChart {
    let edges = bins();
    let mut counts = vec![vec![0usize; edges.len() - 1]; classes.len() + 1];
    for r in records {
        for (class, _, fraction, _) in measures(r) {
            let b = edges.partition_point(|&e| e <= fraction).clamp(1, edges.len() - 1) - 1;
            counts[class][b] += 1;
            counts[classes.len()][b] += 1;
        }
    }
    let mut chart = LineChart::new(
        "Object sizes",
        Axis::new("object side / image side  (√(w·h) / √(W·H))").log(true),
        Axis::new("share of the class's objects per bin"),
    );
    let mut top = 0.0f64;
    for (c, row) in counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        if total == 0 {
            continue;
        }
        let points: Vec<(f64, f64)> =
            row.iter().enumerate().map(|(b, &n)| ((edges[b] * edges[b + 1]).sqrt(), n as f64 / total as f64)).collect();
        top = points.iter().fold(top, |m, p| m.max(p.1));
        let all = c == classes.len();
        let (name, color, width) = match all {
            true => (format!("all ({total})"), [120, 120, 120], 3),
            false => (format!("{} ({total})", classes[c]), palette(c), 2),
        };
        chart.series.push(Series::line(name, points, color).width(width));
    }
    chart.y = Axis::new("share of the class's objects per bin").range(0.0, (top * 1.1).max(0.05));
    if chart.series.len() > 8 {
        chart.legend = crate::plot::LegendPlace::Right;
    }
    chart
}

/// Renders [`histogram`] to a PNG file.
pub fn save_histogram<'a>(
    records: impl IntoIterator<Item = &'a VocRecord>,
    classes: &[String],
    path: &Path,
) -> Result<()> {
    histogram(records, classes).save(path, 900, 520)
}

/// Renders [`histogram`] to an image (tests).
pub fn render_histogram<'a>(records: impl IntoIterator<Item = &'a VocRecord>, classes: &[String]) -> Result<RgbImage> {
    histogram(records, classes).render(900, 520)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voc::VocBox;
    use skipblock_core::boxes::BBox;

    fn record(w: u32, h: u32, boxes: &[(usize, [f32; 4])]) -> VocRecord {
        VocRecord {
            root: "r".into(),
            id: "x".into(),
            image: "x.jpg".into(),
            annotation: "x.xml".into(),
            width: w,
            height: h,
            objects: boxes
                .iter()
                .map(|&(class, [x0, y0, x1, y1])| VocBox {
                    bbox: BBox::new(x0, y0, x1, y1),
                    class,
                    difficult: false,
                    truncated: false,
                    pose: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn percentiles_follow_numpy() {
        let s = Spread::of(&[1.0, 2.0, 3.0, 4.0, 10.0]).unwrap();
        // numpy.percentile([1, 2, 3, 4, 10], [5, 25, 50, 75, 95]) = 1.2, 2, 3, 4, 8.8
        for (got, want) in [(s.p5, 1.2), (s.p25, 2.0), (s.p50, 3.0), (s.p75, 4.0), (s.p95, 8.8)] {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        assert_eq!((s.min, s.max), (1.0, 10.0));
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn sizes_per_class_and_overall() {
        let classes = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let records = [
            record(100, 100, &[(0, [0.0, 0.0, 10.0, 10.0]), (1, [0.0, 0.0, 40.0, 10.0])]),
            record(200, 50, &[(0, [0.0, 0.0, 30.0, 30.0])]),
        ];
        let sizes = object_sizes(&records, &classes);
        let names: Vec<&str> = sizes.iter().map(|s| s.class.as_str()).collect();
        assert_eq!(names, ["a", "b", "all"], "classes without objects are left out");
        assert_eq!(sizes[0].objects, 2);
        assert_eq!((sizes[0].pixels.min, sizes[0].pixels.max), (10.0, 30.0));
        assert!((sizes[0].fraction.min - 0.1).abs() < 1e-9 && (sizes[0].fraction.max - 0.3).abs() < 1e-9);
        assert_eq!(sizes[1].pixels.p50, 20.0);
        assert_eq!(sizes[1].aspect.p50, 4.0);
        assert_eq!(sizes[2].objects, 3);
        let chart = histogram(&records, &classes);
        assert_eq!(chart.series.len(), 3, "a, b and all");
        let shares: f64 = chart.series[2].points.iter().map(|p| p.1).sum();
        assert!((shares - 1.0).abs() < 1e-9, "each class's shares sum to 1: {shares}");
        let img = render_histogram(&records, &classes).unwrap();
        assert_eq!((img.width, img.height), (900, 520));
    }
}

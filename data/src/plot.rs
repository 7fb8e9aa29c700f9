//! Line charts rendered to PNG without any plotting library: axes with a 10-step grid and tick labels,
//! one coloured 2-pixel polyline per series, a legend on the right. Used for precision–recall curves and
//! for the training curves of a run (loss and metrics per epoch).

use crate::draw::{class_color, draw_label, line, put};
use crate::image_io::{write_image, RgbImage};
use anyhow::Result;
use std::path::Path;

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [220, 220, 220];

#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub x_label: String,
    pub y_label: String,
    /// Axis ranges; `None` fits the data.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
    /// Extra line under the legend (e.g. "map 0.7312").
    pub note: Option<String>,
}

/// Where the axes are: the plot area `[left, right] × [top, bottom]` in pixels, and the data ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotArea {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

impl PlotArea {
    /// Margins for tick labels on the left and bottom, the legend column (200 px) on the right.
    pub fn new(width: u32, height: u32, x: (f64, f64), y: (f64, f64)) -> Self {
        PlotArea {
            left: 50.0,
            top: 20.0,
            right: (width as f32 - 200.0).max(60.0),
            bottom: (height as f32 - 45.0).max(30.0),
            x,
            y,
        }
    }

    /// Pixel position of a data point (clamped to the axes).
    pub fn to_pixel(&self, x: f64, y: f64) -> (f32, f32) {
        let fx = ((x - self.x.0) / (self.x.1 - self.x.0).max(1e-12)).clamp(0.0, 1.0) as f32;
        let fy = ((y - self.y.0) / (self.y.1 - self.y.0).max(1e-12)).clamp(0.0, 1.0) as f32;
        (self.left + fx * (self.right - self.left), self.bottom - fy * (self.bottom - self.top))
    }
}

fn fit_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

fn tick(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() && v.abs() >= 1.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Chart {
    /// The plot area this chart uses on a `width × height` canvas.
    pub fn area(&self, width: u32, height: u32) -> PlotArea {
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let x = self.x_range.unwrap_or_else(|| fit_range(all().map(|p| p.0)));
        let y = self.y_range.unwrap_or_else(|| fit_range(all().map(|p| p.1)));
        PlotArea::new(width, height, x, y)
    }

    pub fn render(&self, width: u32, height: u32) -> RgbImage {
        let mut img = RgbImage::filled(width, height, WHITE);
        let area = self.area(width, height);
        for i in 0..=10 {
            let t = i as f64 / 10.0;
            let xv = area.x.0 + t * (area.x.1 - area.x.0);
            let yv = area.y.0 + t * (area.y.1 - area.y.0);
            let (gx, _) = area.to_pixel(xv, area.y.0);
            let (_, gy) = area.to_pixel(area.x.0, yv);
            line(&mut img, (gx, area.top), (gx, area.bottom), 1, GRID);
            line(&mut img, (area.left, gy), (area.right, gy), 1, GRID);
            if i % 2 == 0 {
                draw_label(&mut img, gx as i64 - 10, area.bottom as i64 + 4, &tick(xv), 1, BLACK, WHITE);
                draw_label(&mut img, 2, gy as i64 - 4, &tick(yv), 1, BLACK, WHITE);
            }
        }
        line(&mut img, (area.left, area.bottom), (area.right, area.bottom), 2, BLACK);
        line(&mut img, (area.left, area.top), (area.left, area.bottom), 2, BLACK);
        let mid_x = (area.left + area.right) / 2.0;
        draw_label(&mut img, mid_x as i64 - 20, area.bottom as i64 + 18, &self.x_label, 2, BLACK, WHITE);
        draw_label(&mut img, 40, 2, &self.y_label, 1, BLACK, WHITE);
        for (c, s) in self.series.iter().enumerate() {
            let points: Vec<(f32, f32)> = s.points.iter().map(|&(x, y)| area.to_pixel(x, y)).collect();
            for pair in points.windows(2) {
                line(&mut img, pair[0], pair[1], 2, class_color(c));
            }
            if let [only] = points.as_slice() {
                line(&mut img, *only, *only, 3, class_color(c));
            }
        }
        let legend_x = area.right as i64 + 15;
        for (c, s) in self.series.iter().enumerate() {
            let y = area.top as i64 + c as i64 * 13;
            for yy in y + 1..y + 9 {
                for xx in legend_x..legend_x + 12 {
                    put(&mut img, xx, yy, class_color(c));
                }
            }
            draw_label(&mut img, legend_x + 16, y, &s.name, 1, BLACK, WHITE);
        }
        if let Some(note) = &self.note {
            draw_label(&mut img, legend_x, area.bottom as i64 - 10, note, 1, BLACK, WHITE);
        }
        img
    }

    /// Renders at 800×600 and saves (format by extension, e.g. `.png`).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_image(path, &self.render(800, 600))
    }
}

/// Training curves of a run from its per-epoch records: `loss.png` (every key containing "loss") and
/// `metrics.png` (the other evaluation metrics), against the epoch, in `dir`.
pub fn save_training_curves(dir: &Path, history: &[skipblock_core::train::EpochRecord]) -> Result<()> {
    let mut keys: Vec<&'static str> = history.iter().flat_map(|r| r.measured()).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    for (file, losses) in [("loss.png", true), ("metrics.png", false)] {
        let series: Vec<Series> = keys
            .iter()
            .filter(|k| k.contains("loss") == losses)
            .map(|&k| Series {
                name: k.to_string(),
                points: history
                    .iter()
                    .filter_map(|r| r.measured().into_iter().find(|(m, _)| *m == k).map(|(_, v)| (r.epoch as f64, v)))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if series.is_empty() {
            continue;
        }
        let chart = Chart {
            x_label: "epoch".into(),
            y_label: if losses { "loss".into() } else { "metric".into() },
            x_range: None,
            y_range: None,
            series,
            note: None,
        };
        chart.save(&dir.join(file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_drawn_in_their_colours() {
        let chart = Chart {
            x_label: "epoch".into(),
            y_label: "loss".into(),
            x_range: None,
            y_range: None,
            series: vec![
                Series { name: "train".into(), points: (1..=10).map(|e| (e as f64, 5.0 / e as f64)).collect() },
                Series { name: "val".into(), points: (1..=10).map(|e| (e as f64, 4.0 / e as f64 + 0.5)).collect() },
            ],
            note: Some("best 0.9".into()),
        };
        let img = chart.render(800, 600);
        let area = chart.area(800, 600);
        assert_eq!(area.x, (1.0, 10.0));
        for c in 0..2 {
            let n = img.data.chunks(3).filter(|p| *p == class_color(c)).count();
            assert!(n > 200, "series {c}: {n} pixels");
        }
        let (x0, y0) = area.to_pixel(1.0, 5.0);
        assert_eq!((x0, y0), (area.left, area.top), "the first train point is the top-left corner");
    }
}

//! Line charts (training curves, precision–recall, F1–confidence): a light grid, tick labels, axis
//! labels, one antialiased polyline per series (dots where asked), and a legend either inside the plot,
//! in the corner the curves leave most free, or in a column to the right of it.

use super::canvas::{
    color, log_tick_label, nudge, render, save, text_size, text_style, tick_label, Area, Rgb, AXIS_LABEL_PX, FRAME,
    GRID, TICK_PX, TITLE_PX,
};
use super::legend::{self, Entry};
use crate::image_io::RgbImage;
use anyhow::Result;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::Path;

/// One curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text; empty: left out of the legend.
    pub name: String,
    /// `(x, y)` in drawing order; non-finite points (and non-positive ones on a log axis) are skipped.
    pub points: Vec<(f64, f64)>,
    pub color: Rgb,
    /// Line width in pixels (0: no line).
    pub width: u32,
    /// Radius of a dot at every point (0: none). A series of one point always gets a dot.
    pub marker: u32,
}

impl Series {
    /// A 2-pixel line without dots.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>, color: Rgb) -> Self {
        Series { name: name.into(), points, color, width: 2, marker: 0 }
    }

    pub fn width(mut self, width: u32) -> Self {
        self.width = width;
        self
    }

    pub fn marker(mut self, radius: u32) -> Self {
        self.marker = radius;
        self
    }
}

/// One axis of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub label: String,
    /// `None`: fitted to the data.
    pub range: Option<(f64, f64)>,
    /// Logarithmic scale (positive values only).
    pub log: bool,
    /// Whole-number ticks only (epochs).
    pub integer: bool,
}

impl Axis {
    /// A linear axis fitted to the data.
    pub fn new(label: impl Into<String>) -> Self {
        Axis { label: label.into(), range: None, log: false, integer: false }
    }

    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }

    pub fn log(mut self, log: bool) -> Self {
        self.log = log;
        self
    }

    pub fn integer(mut self) -> Self {
        self.integer = true;
        self
    }
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendPlace {
    /// Inside the plot, in the corner (or edge middle) the fewest curve pixels pass through.
    Inside,
    /// In a column right of the plot (many entries).
    Right,
    Hidden,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Caption above the plot (empty: none).
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub legend: LegendPlace,
}

impl LineChart {
    pub fn new(title: impl Into<String>, x: Axis, y: Axis) -> Self {
        LineChart { title: title.into(), x, y, series: Vec::new(), legend: LegendPlace::Inside }
    }

    /// The points of every series that can be drawn on these axes.
    fn drawable<'a>(&'a self, s: &'a Series) -> impl Iterator<Item = (f64, f64)> + 'a {
        s.points.iter().copied().filter(move |&(x, y)| {
            x.is_finite() && y.is_finite() && (!self.x.log || x > 0.0) && (!self.y.log || y > 0.0)
        })
    }

    /// The axis ranges: given, or fitted to the drawable points with a small margin.
    pub fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let xs: Vec<f64> = self.series.iter().flat_map(|s| self.drawable(s).map(|p| p.0)).collect();
        let ys: Vec<f64> = self.series.iter().flat_map(|s| self.drawable(s).map(|p| p.1)).collect();
        (fit(&self.x, &xs), fit(&self.y, &ys))
    }

    fn legend_entries(&self) -> Vec<Entry> {
        self.series
            .iter()
            .filter(|s| !s.name.is_empty())
            .map(|s| Entry { name: s.name.clone(), color: s.color, width: s.width, marker: s.marker })
            .collect()
    }

    /// Draws the chart (and its legend) filling `area`.
    pub fn draw(&self, area: &Area) -> Result<()> {
        let entries = self.legend_entries();
        let (width, _) = area.dim_in_pixel();
        let (plot, side) = if self.legend == LegendPlace::Right && !entries.is_empty() {
            let w = (legend::size(area, &entries)?.0 + 16).min(width * 45 / 100);
            let (plot, side) = area.split_horizontally(width - w);
            (plot, Some(side))
        } else {
            (area.clone(), None)
        };
        let ((x0, x1), (y0, y1)) = self.ranges();
        let top = match (self.x.log, self.y.log) {
            (false, false) => self.draw_on(&plot, x0..x1, y0..y1, &entries)?,
            (false, true) => self.draw_on(&plot, x0..x1, (y0..y1).log_scale(), &entries)?,
            (true, false) => self.draw_on(&plot, (x0..x1).log_scale(), y0..y1, &entries)?,
            (true, true) => self.draw_on(&plot, (x0..x1).log_scale(), (y0..y1).log_scale(), &entries)?,
        };
        if let Some(side) = side {
            legend::draw(&side, &entries, (4, top), false)?;
        }
        Ok(())
    }

    /// Draws axes, curves and (inside) legend; returns the plot's top in `area` pixels.
    fn draw_on<X, Y>(&self, area: &Area, x: X, y: Y, entries: &[Entry]) -> Result<i32>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let (w, h) = area.dim_in_pixel();
        let (x_ticks, y_ticks) = ((w as usize / 90).clamp(3, 11), (h as usize / 55).clamp(3, 10));
        let ((x0, x1), (y0, y1)) = self.ranges();
        let x_fmt = Formatter::new(&self.x, x0, x1, x_ticks);
        let y_fmt = Formatter::new(&self.y, y0, y1, y_ticks);
        let mut y_label_w = 0;
        for v in y_fmt.samples(y0, y1) {
            y_label_w = y_label_w.max(text_size(area, &y_fmt.label(v), TICK_PX)?.0);
        }
        let mut builder = ChartBuilder::on(area);
        builder
            .margin_top(12)
            .margin_right(24)
            .margin_left(6)
            .x_label_area_size(TICK_PX as u32 + AXIS_LABEL_PX as u32 + 26)
            .y_label_area_size(y_label_w + AXIS_LABEL_PX as u32 + 24);
        if !self.title.is_empty() {
            builder.caption(&self.title, text_style(TITLE_PX, super::canvas::TEXT));
        }
        let mut chart = builder.build_cartesian_2d(x, y)?;
        let x_label = |v: &f64| x_fmt.label(*v);
        let y_label = |v: &f64| y_fmt.label(*v);
        chart
            .configure_mesh()
            .x_desc(&self.x.label)
            .y_desc(&self.y.label)
            .x_labels(if self.x.integer { x_fmt.integer_ticks.min(x_ticks) } else { x_ticks })
            .y_labels(if self.y.integer { y_fmt.integer_ticks.min(y_ticks) } else { y_ticks })
            .y_label_offset(nudge(TICK_PX))
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style(text_style(TICK_PX, super::canvas::TEXT))
            .axis_desc_style(text_style(AXIS_LABEL_PX, super::canvas::TEXT))
            .bold_line_style(color(GRID))
            .light_line_style(TRANSPARENT)
            .axis_style(color(FRAME))
            .draw()?;
        let mut drawn: Vec<Vec<(i32, i32)>> = Vec::new();
        for s in &self.series {
            let points: Vec<(f64, f64)> = self.drawable(s).collect();
            let c = color(s.color);
            if s.width > 0 && points.len() > 1 {
                chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(s.width)))?;
            }
            if s.marker > 0 || points.len() == 1 || s.width == 0 {
                let r = s.marker.max(3);
                chart.draw_series(points.iter().map(|&p| Circle::new(p, r, c.filled())))?;
            }
            drawn.push(points.iter().map(|p| chart.backend_coord(p)).collect());
        }
        let plot = chart.plotting_area();
        let (xs, ys) = plot.get_pixel_range();
        let base = area.get_base_pixel();
        if self.legend == LegendPlace::Inside && !entries.is_empty() {
            let (lw, lh) = legend::size(area, entries)?;
            let at = best_corner(&xs, &ys, (lw as i32, lh as i32), &drawn);
            legend::draw(area, entries, (at.0 - base.0, at.1 - base.1), true)?;
        }
        Ok(ys.start - base.1)
    }

    /// Renders the chart on a white `width × height` canvas.
    pub fn render(&self, width: u32, height: u32) -> Result<RgbImage> {
        render(width, height, |area| self.draw(area))
    }

    /// Renders and saves (PNG by extension) atomically.
    pub fn save(&self, path: &Path, width: u32, height: u32) -> Result<()> {
        save(path, &self.render(width, height)?)
    }
}

/// The range of an axis: the given one, or the values' with a margin (never empty or inverted).
fn fit(axis: &Axis, values: &[f64]) -> (f64, f64) {
    let valid = |lo: f64, hi: f64| lo.is_finite() && hi.is_finite() && lo < hi && (!axis.log || lo > 0.0);
    if let Some((lo, hi)) = axis.range.filter(|&(lo, hi)| valid(lo, hi)) {
        return (lo, hi);
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = match (lo.is_finite(), axis.log) {
        (false, true) => (1.0, 10.0),
        (false, false) => (0.0, 1.0),
        (true, true) if hi / lo < 1.01 => (lo / 2.0, hi * 2.0),
        (true, true) => (lo / 1.25, hi * 1.25),
        (true, false) if hi - lo < 1e-12 * lo.abs().max(1.0) => {
            let pad = if axis.integer { 1.0 } else { (lo.abs() * 0.1).max(0.5) };
            (lo - pad, hi + pad)
        }
        (true, false) if axis.integer => (lo, hi),
        (true, false) => (lo - (hi - lo) * 0.04, hi + (hi - lo) * 0.04),
    };
    if valid(lo, hi) {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// Tick labels of one axis.
struct Formatter {
    log: bool,
    integer: bool,
    /// Distance between linear ticks (decides the decimals).
    step: f64,
    /// How many whole numbers the range holds (the tick count that keeps integer ticks whole).
    integer_ticks: usize,
    /// Decades a log axis spans: more than two label only the powers of ten.
    decades: f64,
}

impl Formatter {
    fn new(axis: &Axis, lo: f64, hi: f64, ticks: usize) -> Self {
        let points = RangedCoordf64::from(lo..hi).key_points(ticks);
        let step = if points.len() > 1 { points[1] - points[0] } else { hi - lo };
        Formatter {
            log: axis.log,
            integer: axis.integer,
            step,
            integer_ticks: ((hi.floor() - lo.ceil()).max(0.0) as usize + 1).max(2),
            decades: (hi / lo).log10(),
        }
    }

    fn label(&self, v: f64) -> String {
        if self.log {
            let mantissa = v / 10f64.powf(v.log10().floor());
            let shown = if self.decades > 2.0 { [1.0].as_slice() } else { [1.0, 2.0, 5.0].as_slice() };
            if shown.iter().any(|m| (mantissa - m).abs() < 1e-6) {
                log_tick_label(v)
            } else {
                String::new()
            }
        } else if self.integer {
            if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        } else {
            tick_label(v, self.step)
        }
    }

    /// Values whose labels are the widest this axis shows.
    fn samples(&self, lo: f64, hi: f64) -> Vec<f64> {
        if self.log {
            let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
            (a..=b).flat_map(|e| [1.0, 5.0].map(|m| m * 10f64.powi(e))).collect()
        } else {
            vec![lo, hi, (lo + hi) / 2.0, lo + self.step, hi - self.step]
        }
    }
}

/// The top-left pixel of a `size` box inside the plot `xs × ys` (10 px from its edges) that the fewest
/// curve pixels pass through: the four corners first, then the edge middles.
fn best_corner(
    xs: &std::ops::Range<i32>,
    ys: &std::ops::Range<i32>,
    size: (i32, i32),
    curves: &[Vec<(i32, i32)>],
) -> (i32, i32) {
    let inset = 10;
    let (left, right) = (xs.start + inset, xs.end - inset - size.0);
    let (top, bottom) = (ys.start + inset, ys.end - inset - size.1);
    let (cx, cy) = ((left + right) / 2, (top + bottom) / 2);
    let candidates =
        [(right, top), (left, top), (right, bottom), (left, bottom), (cx, top), (cx, bottom), (right, cy), (left, cy)];
    let mut samples = Vec::new();
    for curve in curves {
        if let [only] = curve.as_slice() {
            samples.push(*only);
        }
        for pair in curve.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) / 3).max(1);
            samples.extend((0..=n).map(|i| (a.0 + (b.0 - a.0) * i / n, a.1 + (b.1 - a.1) * i / n)));
        }
    }
    let hits = |(x, y): (i32, i32)| {
        samples
            .iter()
            .filter(|p| p.0 >= x - 4 && p.0 <= x + size.0 + 4 && p.1 >= y - 4 && p.1 <= y + size.1 + 4)
            .count()
    };
    candidates.into_iter().min_by_key(|&c| hits(c)).unwrap_or((left, top))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(img: &RgbImage, c: Rgb) -> usize {
        img.data.chunks(3).filter(|p| *p == c).count()
    }

    #[test]
    fn every_series_is_drawn_in_its_colour() {
        let mut chart = LineChart::new("two curves", Axis::new("epoch").integer(), Axis::new("loss"));
        chart.series = vec![
            Series::line("train", (1..=10).map(|e| (e as f64, 5.0 / e as f64)).collect(), [200, 30, 30]),
            Series::line("val", (1..=10).map(|e| (e as f64, 4.0 / e as f64 + 0.5)).collect(), [30, 30, 200]),
        ];
        let img = chart.render(640, 420).unwrap();
        assert_eq!((img.width, img.height), (640, 420));
        for c in [[200, 30, 30], [30, 30, 200]] {
            assert!(count(&img, c) > 300, "{c:?}: {} pixels", count(&img, c));
        }
        assert_eq!(chart.ranges().0, (1.0, 10.0), "epochs fill the x axis");
    }

    #[test]
    fn empty_nan_and_single_point_data_draw_without_panicking() {
        for points in [vec![], vec![(f64::NAN, 1.0), (2.0, f64::INFINITY)], vec![(3.0, 0.25)], vec![(1.0, 2.0); 4]] {
            for log in [false, true] {
                let mut chart = LineChart::new("", Axis::new("x").integer(), Axis::new("y").log(log));
                chart.series = vec![Series::line("s", points.clone(), [0, 150, 0])];
                chart.legend = if log { LegendPlace::Right } else { LegendPlace::Inside };
                let img = chart.render(300, 200).unwrap();
                let ((x0, x1), (y0, y1)) = chart.ranges();
                assert!(x0 < x1 && y0 < y1, "{points:?}: {:?}", chart.ranges());
                if points.len() == 1 {
                    assert!(count(&img, [0, 150, 0]) > 10, "a single point is a visible dot");
                }
            }
        }
        let mut chart = LineChart::new("", Axis::new("x"), Axis::new("y").range(1.0, 0.0));
        chart.series = vec![Series::line("s", vec![(0.0, 0.5), (1.0, 0.7)], [0, 0, 0])];
        let (lo, hi) = chart.ranges().1;
        assert!((lo - 0.492).abs() < 1e-9 && (hi - 0.708).abs() < 1e-9, "an inverted range is refitted: {lo} {hi}");
    }

    #[test]
    fn the_inside_legend_avoids_the_curves() {
        let curve = vec![vec![(0, 0), (100, 100)]];
        // The diagonal from top-left to bottom-right leaves the top-right and bottom-left free.
        let at = best_corner(&(0..100), &(0..100), (30, 20), &curve);
        assert_eq!(at, (60, 10));
    }
}

//! Grouped vertical bar charts with error bars (a comparison grid: one group per architecture, one bar
//! per loss, the standard deviation over seeds as the error bar): a value axis with a grid, the groups'
//! names under them and a legend naming the series.

use super::canvas::{
    color, nudge, render, save, text_size, text_style, tick_label, Area, Rgb, AXIS_LABEL_PX, FRAME, GRID,
};
use super::canvas::{TEXT, TICK_PX, TITLE_PX};
use super::legend::{self, Entry};
use crate::image_io::RgbImage;
use anyhow::{ensure, Result};
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A grouped bar chart: `values[g][s]` is the bar of series `s` in group `g`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedBarChart {
    pub title: String,
    /// What the bars measure (beside the value axis).
    pub y_label: String,
    /// Group names, left to right.
    pub groups: Vec<String>,
    /// Series names and colours (the legend), in bar order within a group.
    pub series: Vec<(String, Rgb)>,
    /// `(value, error)` per group and series; a non-finite value is no bar, a non-finite or zero error
    /// no error bar.
    pub values: Vec<Vec<(f64, f64)>>,
    /// The value axis (e.g. 0–1).
    pub range: (f64, f64),
    /// Write the ticks as percentages of 1.
    pub percent: bool,
}

const MARGIN: i32 = 16;
const BAR_W: i32 = 28;
const GROUP_GAP: i32 = 28;
const PLOT_H: i32 = 360;
const CAP: i32 = 5;
/// The error bars' colour.
pub const ERROR_BAR: Rgb = [0, 0, 0];

struct Layout {
    left: i32,
    top: i32,
    plot_w: i32,
    /// Width of one group.
    slot: i32,
    width: u32,
    height: u32,
}

impl GroupedBarChart {
    fn check(&self) -> Result<()> {
        ensure!(
            self.values.len() == self.groups.len(),
            "{} groups but {} rows of values",
            self.groups.len(),
            self.values.len()
        );
        for (g, row) in self.groups.iter().zip(&self.values) {
            ensure!(
                row.len() == self.series.len(),
                "group '{g}': {} values for {} series",
                row.len(),
                self.series.len()
            );
        }
        Ok(())
    }

    fn layout(&self, area: &Area) -> Result<Layout> {
        let mut tick_w = 0;
        for t in ["100%", "0.000"] {
            tick_w = tick_w.max(text_size(area, t, TICK_PX)?.0 as i32);
        }
        let mut slot = BAR_W * self.series.len().max(1) as i32 + GROUP_GAP;
        for g in &self.groups {
            slot = slot.max(text_size(area, g, TICK_PX)?.0 as i32 + 16);
        }
        let plot_w = slot * self.groups.len().max(1) as i32;
        let (legend_w, legend_h) = legend::size(area, &self.entries())?;
        let title_h = if self.title.is_empty() { 0 } else { TITLE_PX as i32 + 14 };
        let title_w = if self.title.is_empty() { 0 } else { text_size(area, &self.title, TITLE_PX)?.0 as i32 };
        let left = MARGIN + AXIS_LABEL_PX as i32 + 10 + tick_w + 8;
        let top = MARGIN + title_h;
        let width = (left + plot_w + 16 + legend_w as i32 + MARGIN).max(title_w + 2 * MARGIN);
        let height = top + PLOT_H.max(legend_h as i32) + 8 + TICK_PX as i32 + MARGIN;
        Ok(Layout { left, top, plot_w, slot, width: width as u32, height: height as u32 })
    }

    fn entries(&self) -> Vec<Entry> {
        self.series.iter().map(|(name, c)| Entry { name: name.clone(), color: *c, width: 0, marker: 5 }).collect()
    }

    /// The canvas size this chart needs.
    pub fn size(&self) -> Result<(u32, u32)> {
        let mut size = (0, 0);
        render(1, 1, |area| {
            let l = self.layout(area)?;
            size = (l.width, l.height);
            Ok(())
        })?;
        Ok(size)
    }

    /// Left and right pixel of bar `s` of group `g` (for tests and labels).
    fn bar_x(&self, l: &Layout, g: usize, s: usize) -> (i32, i32) {
        let group_w = BAR_W * self.series.len() as i32;
        let x0 = l.left + l.slot * g as i32 + (l.slot - group_w) / 2 + BAR_W * s as i32;
        (x0 + 2, x0 + BAR_W - 2)
    }

    /// Draws the chart into `area` (of at least [`GroupedBarChart::size`]).
    pub fn draw(&self, area: &Area) -> Result<()> {
        self.check()?;
        let l = self.layout(area)?;
        let (lo, hi) = if self.range.0 < self.range.1 { self.range } else { (0.0, 1.0) };
        let bottom = l.top + PLOT_H;
        let to_y = |v: f64| bottom - ((v.clamp(lo, hi) - lo) / (hi - lo) * PLOT_H as f64).round() as i32;
        if !self.title.is_empty() {
            let style = text_style(TITLE_PX, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
            area.draw_text(&self.title, &style, (l.width as i32 / 2, MARGIN))?;
        }
        let ticks = RangedCoordf64::from(lo..hi).key_points(8usize);
        let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { hi - lo };
        let tick_style = text_style(TICK_PX, TEXT).pos(Pos::new(HPos::Right, VPos::Center));
        for &t in &ticks {
            let y = to_y(t);
            area.draw(&PathElement::new(vec![(l.left, y), (l.left + l.plot_w, y)], color(GRID)))?;
            area.draw(&PathElement::new(vec![(l.left - 5, y), (l.left, y)], color(FRAME)))?;
            let text =
                if self.percent { format!("{}%", tick_label(t * 100.0, step * 100.0)) } else { tick_label(t, step) };
            area.draw_text(&text, &tick_style, (l.left - 8, y + nudge(TICK_PX)))?;
        }
        let name_style = text_style(TICK_PX, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
        let slot = l.slot;
        for (g, (name, row)) in self.groups.iter().zip(&self.values).enumerate() {
            for (s, (&(v, _), (_, c))) in row.iter().zip(&self.series).enumerate() {
                let (x0, x1) = self.bar_x(&l, g, s);
                if v.is_finite() && to_y(v) < bottom {
                    area.draw(&Rectangle::new([(x0, to_y(v)), (x1, bottom)], color(*c).filled()))?;
                }
            }
            area.draw_text(name, &name_style, (l.left + slot * g as i32 + slot / 2, bottom + 8))?;
        }
        // Error bars over every bar, so a neighbour never hides one.
        for (g, row) in self.values.iter().enumerate() {
            for (s, &(v, e)) in row.iter().enumerate() {
                if !(v.is_finite() && e.is_finite() && e > 0.0) {
                    continue;
                }
                let (x0, x1) = self.bar_x(&l, g, s);
                let mid = (x0 + x1) / 2;
                let (y_hi, y_lo) = (to_y(v + e), to_y(v - e));
                let pen = color(ERROR_BAR).stroke_width(2);
                area.draw(&PathElement::new(vec![(mid, y_hi), (mid, y_lo)], pen))?;
                for y in [y_hi, y_lo] {
                    area.draw(&PathElement::new(vec![(mid - CAP, y), (mid + CAP, y)], pen))?;
                }
            }
        }
        area.draw(&PathElement::new(
            vec![(l.left, l.top), (l.left, bottom), (l.left + l.plot_w, bottom)],
            color(FRAME),
        ))?;
        let style =
            text_style(AXIS_LABEL_PX, TEXT).pos(Pos::new(HPos::Center, VPos::Top)).transform(FontTransform::Rotate270);
        area.draw_text(&self.y_label, &style, (MARGIN, l.top + PLOT_H / 2))?;
        legend::draw(area, &self.entries(), (l.left + l.plot_w + 16, l.top), true)
    }

    /// Renders on a canvas of [`GroupedBarChart::size`].
    pub fn render(&self) -> Result<RgbImage> {
        self.check()?;
        let (w, h) = self.size()?;
        render(w, h, |area| self.draw(area))
    }

    /// Renders and saves (PNG by extension) atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        save(path, &self.render()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Rgb = [40, 90, 160];
    const B: Rgb = [230, 120, 20];

    fn chart() -> GroupedBarChart {
        GroupedBarChart {
            title: "top-1".into(),
            y_label: "val top-1".into(),
            groups: vec!["net-a".into(), "net-b".into()],
            series: vec![("ce".into(), A), ("bias".into(), B)],
            values: vec![vec![(0.5, 0.1), (1.0, 0.0)], vec![(0.25, f64::NAN), (f64::NAN, 0.2)]],
            range: (0.0, 1.0),
            percent: true,
        }
    }

    #[test]
    fn bars_are_as_tall_as_their_values_with_their_error_bars() {
        let chart = chart();
        let img = chart.render().unwrap();
        assert_eq!((img.width, img.height), chart.size().unwrap());
        let column = |x: i32, c: Rgb| (0..img.height).filter(|&y| img.pixel(x as u32, y) == c).count() as i32;
        render(1, 1, |a| {
            let l = chart.layout(a)?;
            // Left of the error bar's cap, so only the bar's own colour counts.
            let at = |g, s| chart.bar_x(&l, g, s).0 + 1;
            let full = column(at(0, 1), B);
            assert!((PLOT_H - 2..=PLOT_H).contains(&full), "a bar at 1.0 spans the axis: {full}");
            let half = column(at(0, 0), A);
            assert!((PLOT_H / 2 - 3..=PLOT_H / 2 + 3).contains(&half), "{half}");
            let quarter = column(at(1, 0), A);
            assert!((PLOT_H / 4 - 3..=PLOT_H / 4 + 3).contains(&quarter), "{quarter}");
            assert_eq!(column(at(1, 1), B), 0, "a missing value draws no bar");
            // The error bar of (0.5 ± 0.1): black from 0.4 to 0.6 through the bar's middle.
            let (x0, x1) = chart.bar_x(&l, 0, 0);
            let black = column((x0 + x1) / 2, ERROR_BAR);
            let want = (0.2 * PLOT_H as f64) as i32;
            assert!((want - 2..=want + 6).contains(&black), "error bar {black} px, want about {want}");
            // No error bar on the bar without a deviation.
            let (x0, x1) = chart.bar_x(&l, 0, 1);
            assert_eq!(column((x0 + x1) / 2, ERROR_BAR), 0);
            Ok(())
        })
        .unwrap();
        let broken = GroupedBarChart { values: vec![vec![(0.5, 0.0)]], ..chart };
        assert!(broken.render().unwrap_err().to_string().contains("2 groups but 1 rows"));
    }
}

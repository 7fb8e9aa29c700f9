//! Horizontal bar charts (per-class accuracy): one labelled bar per row, its value written at its end,
//! a value axis with a grid under the bars, and an optional dashed reference line (e.g. the mean).

use super::canvas::{
    color, nudge, render, save, text_size, text_style, tick_label, Area, Rgb, AXIS_LABEL_PX, FRAME, GRID,
};
use super::canvas::{LEGEND_PX, TEXT, TICK_PX, TITLE_PX};
use crate::image_io::RgbImage;
use anyhow::Result;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A horizontal bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    /// What the bars measure (under the value axis).
    pub x_label: String,
    /// `(name, value)`, drawn top to bottom; a non-finite value is an empty bar marked "–".
    pub bars: Vec<(String, f64)>,
    /// The value axis (e.g. 0–1).
    pub range: (f64, f64),
    /// Write values and ticks as percentages of 1.
    pub percent: bool,
    pub color: Rgb,
    /// A dashed vertical line across the bars, with its legend text (e.g. the mean).
    pub reference: Option<(String, f64)>,
}

const MARGIN: i32 = 16;
const ROW: i32 = 22;
const BAR: i32 = 16;
const PLOT_W: i32 = 600;
const REFERENCE: Rgb = [214, 39, 40];

struct Layout {
    left: i32,
    top: i32,
    width: u32,
    height: u32,
}

impl BarChart {
    fn value_text(&self, v: f64) -> String {
        match (v.is_finite(), self.percent) {
            (false, _) => "–".into(),
            (true, true) => format!("{:.1}%", v * 100.0),
            (true, false) => format!("{v:.3}"),
        }
    }

    fn layout(&self, area: &Area) -> Result<Layout> {
        let mut name_w = 0;
        for (name, _) in &self.bars {
            name_w = name_w.max(text_size(area, name, TICK_PX)?.0 as i32);
        }
        let value_w = text_size(area, &self.value_text(0.888), TICK_PX)?.0 as i32;
        let title_h = if self.title.is_empty() { 0 } else { TITLE_PX as i32 + 14 };
        let reference_h = if self.reference.is_some() { ROW + 6 } else { 0 };
        let left = MARGIN + name_w + 10;
        let top = MARGIN + title_h + reference_h;
        let width = left + PLOT_W + 8 + value_w + MARGIN;
        let height =
            top + ROW * self.bars.len().max(1) as i32 + 8 + TICK_PX as i32 + 14 + AXIS_LABEL_PX as i32 + MARGIN;
        Ok(Layout { left, top, width: width as u32, height: height as u32 })
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

    /// Draws the chart into `area` (of at least [`BarChart::size`]).
    pub fn draw(&self, area: &Area) -> Result<()> {
        let l = self.layout(area)?;
        let (lo, hi) = if self.range.0 < self.range.1 { self.range } else { (0.0, 1.0) };
        let to_x = |v: f64| l.left + ((v.clamp(lo, hi) - lo) / (hi - lo) * PLOT_W as f64).round() as i32;
        let bottom = l.top + ROW * self.bars.len().max(1) as i32;
        if !self.title.is_empty() {
            let style = text_style(TITLE_PX, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
            area.draw_text(&self.title, &style, (l.left + PLOT_W / 2, MARGIN))?;
        }
        let ticks = RangedCoordf64::from(lo..hi).key_points(6usize);
        let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { hi - lo };
        let tick_style = text_style(TICK_PX, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
        for &t in &ticks {
            let x = to_x(t);
            area.draw(&PathElement::new(vec![(x, l.top), (x, bottom)], color(GRID)))?;
            area.draw(&PathElement::new(vec![(x, bottom), (x, bottom + 5)], color(FRAME)))?;
            let text =
                if self.percent { format!("{}%", tick_label(t * 100.0, step * 100.0)) } else { tick_label(t, step) };
            area.draw_text(&text, &tick_style, (x, bottom + 8))?;
        }
        let name_style = text_style(TICK_PX, TEXT).pos(Pos::new(HPos::Right, VPos::Center));
        let value_style = text_style(TICK_PX, TEXT).pos(Pos::new(HPos::Left, VPos::Center));
        let ends: Vec<i32> = self.bars.iter().map(|(_, v)| if v.is_finite() { to_x(*v) } else { l.left }).collect();
        for (i, ((name, _), &end)) in self.bars.iter().zip(&ends).enumerate() {
            let mid = l.top + ROW * i as i32 + ROW / 2;
            if end > l.left {
                area.draw(&Rectangle::new(
                    [(l.left, mid - BAR / 2), (end, mid + BAR / 2)],
                    color(self.color).filled(),
                ))?;
            }
            area.draw_text(name, &name_style, (l.left - 8, mid + nudge(TICK_PX)))?;
        }
        area.draw(&PathElement::new(vec![(l.left, l.top), (l.left, bottom), (l.left + PLOT_W, bottom)], color(FRAME)))?;
        self.draw_reference(area, &l, bottom, &to_x)?;
        // Values last, on white, so the reference line never crosses them.
        for (i, ((_, v), &end)) in self.bars.iter().zip(&ends).enumerate() {
            let mid = l.top + ROW * i as i32 + ROW / 2;
            let text = self.value_text(*v);
            let (tw, _) = text_size(area, &text, TICK_PX)?;
            let corners = [(end + 3, mid - ROW / 2 + 3), (end + 7 + tw as i32, mid + ROW / 2 - 3)];
            area.draw(&Rectangle::new(corners, WHITE.filled()))?;
            area.draw_text(&text, &value_style, (end + 5, mid + nudge(TICK_PX)))?;
        }
        let style = text_style(AXIS_LABEL_PX, TEXT).pos(Pos::new(HPos::Center, VPos::Bottom));
        area.draw_text(&self.x_label, &style, (l.left + PLOT_W / 2, l.height as i32 - MARGIN))?;
        Ok(())
    }

    /// The dashed reference line across the bars and its legend line above them.
    fn draw_reference(&self, area: &Area, l: &Layout, bottom: i32, to_x: &dyn Fn(f64) -> i32) -> Result<()> {
        if let Some((text, v)) = self.reference.as_ref().filter(|r| r.1.is_finite()) {
            let x = to_x(*v);
            let dash = color(REFERENCE).stroke_width(2);
            for y in (l.top..bottom).step_by(10) {
                area.draw(&PathElement::new(vec![(x, y), (x, (y + 6).min(bottom))], dash))?;
            }
            let y = l.top - ROW / 2 - 4;
            area.draw(&PathElement::new(vec![(l.left, y), (l.left + 24, y)], dash))?;
            let label = format!("{text} {}", self.value_text(*v));
            let style = text_style(LEGEND_PX, TEXT).pos(Pos::new(HPos::Left, VPos::Center));
            area.draw_text(&label, &style, (l.left + 32, y + nudge(LEGEND_PX)))?;
        }
        Ok(())
    }

    /// Renders on a canvas of [`BarChart::size`].
    pub fn render(&self) -> Result<RgbImage> {
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

    #[test]
    fn bars_are_as_long_as_their_values() {
        let chart = BarChart {
            title: "accuracy".into(),
            x_label: "accuracy".into(),
            bars: vec![("cat".into(), 1.0), ("dog".into(), 0.5), ("bird".into(), f64::NAN), ("fish".into(), 0.0)],
            range: (0.0, 1.0),
            percent: true,
            color: [40, 90, 160],
            reference: None,
        };
        let img = chart.render().unwrap();
        assert_eq!((img.width, img.height), chart.size().unwrap());
        let row_len = |y: u32| (0..img.width).filter(|&x| img.pixel(x, y) == [40, 90, 160]).count();
        let l = render(1, 1, |a| {
            let l = chart.layout(a)?;
            let full = row_len((l.top + ROW / 2) as u32);
            assert!((PLOT_W as usize - 2..=PLOT_W as usize).contains(&full), "a full bar spans the axis: {full}");
            let half = row_len((l.top + ROW + ROW / 2) as u32);
            assert!((PLOT_W as usize / 2 - 3..=PLOT_W as usize / 2 + 3).contains(&half), "{half}");
            assert_eq!(row_len((l.top + 2 * ROW + ROW / 2) as u32), 0);
            Ok(())
        });
        l.unwrap();
        let with_mean = BarChart { reference: Some(("mean".into(), 0.5)), ..chart.clone() };
        let dashes = with_mean.render().unwrap().data.chunks(3).filter(|p| *p == REFERENCE).count();
        assert!(dashes > 100, "the reference line: {dashes} pixels");
        let empty = BarChart { bars: vec![], ..with_mean };
        empty.render().unwrap();
    }
}

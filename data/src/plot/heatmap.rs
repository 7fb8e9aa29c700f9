//! Heatmaps of a matrix in 0–1 (confusion matrices): one square cell per entry coloured on matplotlib's
//! "Blues" scale, the value in the cell with two decimals (when asked and the cells are large enough),
//! row and column names (column names written upwards), and a colour bar.

use super::canvas::{
    color, nudge, render, save, text_size, text_style, Area, Rgb, AXIS_LABEL_PX, CELL_PX, FRAME, TEXT,
};
use super::canvas::{TICK_PX, TITLE_PX};
use crate::image_io::RgbImage;
use anyhow::{ensure, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A matrix picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub title: String,
    /// What the columns are (under the matrix) and the rows (left of it).
    pub x_label: String,
    pub y_label: String,
    /// Column names, left to right; row names, top to bottom.
    pub x_names: Vec<String>,
    pub y_names: Vec<String>,
    /// `values[row][column]` in 0–1; NaN: no data (a grey cell).
    pub values: Vec<Vec<f64>>,
    /// Write each non-zero value with two decimals in its cell (only where cells are large enough).
    pub annotate: bool,
}

/// matplotlib's "Blues" colour map at 0, 1/8, …, 1.
const BLUES: [Rgb; 9] = [
    [247, 251, 255],
    [222, 235, 247],
    [198, 219, 239],
    [158, 202, 225],
    [107, 174, 214],
    [66, 146, 198],
    [33, 113, 181],
    [8, 81, 156],
    [8, 48, 107],
];
const NO_DATA: Rgb = [235, 235, 235];

/// The colour of `v` (clamped to 0–1) on the Blues scale.
pub fn blues(v: f64) -> Rgb {
    if v.is_nan() {
        return NO_DATA;
    }
    let t = v.clamp(0.0, 1.0) * 8.0;
    let i = (t.floor() as usize).min(7);
    let f = t - i as f64;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    [0, 1, 2].map(|k| (a[k] as f64 + (b[k] as f64 - a[k] as f64) * f).round() as u8)
}

/// Pixel layout of a heatmap.
struct Layout {
    cell: i32,
    left: i32,
    top: i32,
    /// Name every `label_every`-th row/column (1: all; else the index is written).
    label_every: usize,
    width: u32,
    height: u32,
}

const MARGIN: i32 = 16;
const BAR_GAP: i32 = 24;
const BAR_W: i32 = 22;

impl Heatmap {
    fn shape(&self) -> (usize, usize) {
        (self.values.len(), self.values.first().map_or(0, |r| r.len()))
    }

    fn check(&self) -> Result<()> {
        let (rows, cols) = self.shape();
        ensure!(self.values.iter().all(|r| r.len() == cols), "a heatmap's rows differ in length");
        ensure!(
            self.y_names.len() == rows && self.x_names.len() == cols,
            "a {rows}x{cols} heatmap with {} row and {} column names",
            self.y_names.len(),
            self.x_names.len()
        );
        Ok(())
    }

    /// Cells whose values are written: large enough for "0.00" at [`CELL_PX`].
    fn annotated(&self, cell: i32) -> bool {
        self.annotate && cell >= 40
    }

    fn layout(&self, area: &Area) -> Result<Layout> {
        let (rows, cols) = self.shape();
        let n = rows.max(cols).max(1) as i32;
        let cell = if self.annotate && n <= 30 { (900 / n).clamp(44, 90) } else { (900 / n).clamp(1, 60) };
        let names = cell >= 17;
        let label_every = if names {
            1
        } else {
            [2, 5, 10, 20, 50, 100, 200, 500, 1000].into_iter().find(|k| k * cell >= 30).unwrap_or(1000) as usize
        };
        let label = |names_of: &[String], i: usize| if names { names_of[i].clone() } else { i.to_string() };
        let (mut row_w, mut col_w) = (0, 0);
        for i in 0..rows {
            row_w = row_w.max(text_size(area, &label(&self.y_names, i), TICK_PX)?.0 as i32);
        }
        for j in 0..cols {
            col_w = col_w.max(text_size(area, &label(&self.x_names, j), TICK_PX)?.0 as i32);
        }
        let title_h = if self.title.is_empty() { 0 } else { TITLE_PX as i32 + 20 };
        let left = MARGIN + AXIS_LABEL_PX as i32 + 12 + row_w + 10;
        let top = MARGIN + title_h;
        let bar_ticks = text_size(area, "0.8", TICK_PX)?.0 as i32;
        let title_w = text_size(area, &self.title, TITLE_PX)?.0 as i32;
        let width = (left + cell * cols as i32 + BAR_GAP + BAR_W + 8 + bar_ticks + MARGIN).max(title_w + 2 * MARGIN);
        let height = top + cell * rows as i32 + 10 + col_w + 12 + AXIS_LABEL_PX as i32 + MARGIN;
        Ok(Layout { cell, left, top, label_every, width: width as u32, height: height as u32 })
    }

    /// The canvas size this heatmap needs.
    pub fn size(&self) -> Result<(u32, u32)> {
        self.check()?;
        // Text is measured on a scratch canvas.
        let mut size = (0, 0);
        render(1, 1, |area| {
            let l = self.layout(area)?;
            size = (l.width, l.height);
            Ok(())
        })?;
        Ok(size)
    }

    /// Draws the heatmap into `area` (of at least [`Heatmap::size`]).
    pub fn draw(&self, area: &Area) -> Result<()> {
        self.check()?;
        let (rows, cols) = self.shape();
        let l = self.layout(area)?;
        let (c, x0, y0) = (l.cell, l.left, l.top);
        let (w, h) = (c * cols as i32, c * rows as i32);
        if !self.title.is_empty() {
            let style = text_style(TITLE_PX, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
            area.draw_text(&self.title, &style, (l.width as i32 / 2, MARGIN))?;
        }
        let annotate = self.annotated(c);
        let light = text_style(CELL_PX, [255, 255, 255]).pos(Pos::new(HPos::Center, VPos::Center));
        let dark = text_style(CELL_PX, TEXT).pos(Pos::new(HPos::Center, VPos::Center));
        for (i, row) in self.values.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let (x, y) = (x0 + c * j as i32, y0 + c * i as i32);
                area.draw(&Rectangle::new([(x, y), (x + c, y + c)], color(blues(v)).filled()))?;
                if annotate && v.is_finite() && v >= 0.005 {
                    let style = if v > 0.55 { &light } else { &dark };
                    area.draw_text(&format!("{v:.2}"), style, (x + c / 2, y + c / 2 + nudge(CELL_PX)))?;
                }
            }
        }
        if c >= 8 {
            let grid = WHITE.stroke_width(1);
            for k in 1..cols as i32 {
                area.draw(&PathElement::new(vec![(x0 + k * c, y0), (x0 + k * c, y0 + h)], grid))?;
            }
            for k in 1..rows as i32 {
                area.draw(&PathElement::new(vec![(x0, y0 + k * c), (x0 + w, y0 + k * c)], grid))?;
            }
        }
        area.draw(&Rectangle::new([(x0, y0), (x0 + w, y0 + h)], color(FRAME).stroke_width(1)))?;
        self.draw_names(area, &l, rows, cols)?;
        let desc = text_style(AXIS_LABEL_PX, TEXT);
        let below = l.height as i32 - MARGIN;
        area.draw_text(&self.x_label, &desc.pos(Pos::new(HPos::Center, VPos::Bottom)), (x0 + w / 2, below))?;
        let upward = desc.transform(FontTransform::Rotate270).pos(Pos::new(HPos::Center, VPos::Top));
        area.draw_text(&self.y_label, &upward, (MARGIN, y0 + h / 2))?;
        draw_color_bar(area, (x0 + w + BAR_GAP, y0), h.max(60))
    }

    /// Row names right-aligned left of the matrix, column names upwards under it (indices when the
    /// cells are too small for names).
    fn draw_names(&self, area: &Area, l: &Layout, rows: usize, cols: usize) -> Result<()> {
        let (c, x0, y0) = (l.cell, l.left, l.top);
        let name = |names: &[String], i: usize| if l.label_every == 1 { names[i].clone() } else { i.to_string() };
        let style = text_style(TICK_PX, TEXT);
        let row_style = style.pos(Pos::new(HPos::Right, VPos::Center));
        for i in (0..rows).step_by(l.label_every) {
            area.draw_text(&name(&self.y_names, i), &row_style, (x0 - 8, y0 + c * i as i32 + c / 2 + nudge(TICK_PX)))?;
        }
        let col_style = style.transform(FontTransform::Rotate270).pos(Pos::new(HPos::Right, VPos::Center));
        for j in (0..cols).step_by(l.label_every) {
            let at = (x0 + c * j as i32 + c / 2 + nudge(TICK_PX), y0 + c * rows as i32 + 8);
            area.draw_text(&name(&self.x_names, j), &col_style, at)?;
        }
        Ok(())
    }

    /// Renders on a canvas of [`Heatmap::size`].
    pub fn render(&self) -> Result<RgbImage> {
        let (w, h) = self.size()?;
        render(w, h, |area| self.draw(area))
    }

    /// Renders and saves (PNG by extension) atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        save(path, &self.render()?)
    }
}

/// A vertical 0–1 colour bar with its top-left corner at `at`, `height` pixels tall, ticks every 0.2.
fn draw_color_bar(area: &Area, at: (i32, i32), height: i32) -> Result<()> {
    let (x, y) = at;
    for k in 0..height {
        let v = 1.0 - k as f64 / (height - 1).max(1) as f64;
        area.draw(&PathElement::new(vec![(x, y + k), (x + BAR_W, y + k)], color(blues(v))))?;
    }
    area.draw(&Rectangle::new([(x, y), (x + BAR_W, y + height)], color(FRAME).stroke_width(1)))?;
    let style = text_style(TICK_PX, TEXT).pos(Pos::new(HPos::Left, VPos::Center));
    for i in 0..=5 {
        let ty = y + (height - 1) * (5 - i) / 5;
        area.draw(&PathElement::new(vec![(x + BAR_W, ty), (x + BAR_W + 4, ty)], color(FRAME)))?;
        area.draw_text(&format!("{:.1}", i as f64 / 5.0), &style, (x + BAR_W + 7, ty + nudge(TICK_PX)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heatmap(n: usize, annotate: bool) -> Heatmap {
        let names: Vec<String> = (0..n).map(|i| format!("class {i}")).collect();
        Heatmap {
            title: "confusion".into(),
            x_label: "predicted".into(),
            y_label: "true".into(),
            x_names: names.clone(),
            y_names: names,
            values: (0..n).map(|i| (0..n).map(|j| if i == j { 0.8 } else { 0.2 / n as f64 }).collect()).collect(),
            annotate,
        }
    }

    #[test]
    fn cells_take_the_colour_of_their_value() {
        assert_eq!(blues(0.0), BLUES[0]);
        assert_eq!(blues(1.0), BLUES[8]);
        assert_eq!(blues(2.0), BLUES[8]);
        assert_eq!(blues(f64::NAN), NO_DATA);
        let h = heatmap(4, true);
        let img = h.render().unwrap();
        assert_eq!((img.width, img.height), h.size().unwrap());
        let diagonal = blues(0.8);
        let n = img.data.chunks(3).filter(|p| *p == diagonal).count();
        assert!(n > 4 * 40 * 30, "the diagonal cells are drawn: {n} pixels");
    }

    #[test]
    fn many_classes_fit_and_empty_or_mismatched_input_does_not_panic() {
        let h = heatmap(200, true);
        let (w, ht) = h.size().unwrap();
        assert!(w < 1400 && ht < 1400, "{w}x{ht}");
        h.render().unwrap();
        heatmap(0, true).render().unwrap();
        let mut bad = heatmap(3, false);
        bad.x_names.pop();
        assert!(bad.render().is_err());
        let mut nan = heatmap(2, true);
        nan.values[0][1] = f64::NAN;
        nan.render().unwrap();
    }
}

//! Legends: one row per entry, a short line (and dot) in the entry's colour and its text; optionally on
//! a white, framed box so it stays readable over a grid.

use super::canvas::{color, nudge, text_size, text_style, Area, Rgb, FRAME, LEGEND_PX, TEXT};
use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One legend row.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub color: Rgb,
    /// Width of the sample line (0: a dot only).
    pub width: u32,
    /// Radius of the sample dot (0: none).
    pub marker: u32,
}

const ROW: i32 = 22;
const SWATCH: i32 = 26;
const GAP: i32 = 8;
const PAD: i32 = 8;

/// Width and height of the legend of `entries`, padding included.
pub fn size(area: &Area, entries: &[Entry]) -> Result<(u32, u32)> {
    let mut text_w = 0;
    for e in entries {
        text_w = text_w.max(text_size(area, &e.name, LEGEND_PX)?.0 as i32);
    }
    Ok(((2 * PAD + SWATCH + GAP + text_w) as u32, (2 * PAD + ROW * entries.len() as i32) as u32))
}

/// Draws the legend with its top-left corner at `at` (pixels in `area`), on a framed white box if
/// `boxed`.
pub fn draw(area: &Area, entries: &[Entry], at: (i32, i32), boxed: bool) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (w, h) = size(area, entries)?;
    let (x0, y0) = at;
    if boxed {
        let corners = [(x0, y0), (x0 + w as i32, y0 + h as i32)];
        area.draw(&Rectangle::new(corners, WHITE.mix(0.9).filled()))?;
        area.draw(&Rectangle::new(corners, color(FRAME).mix(0.5).stroke_width(1)))?;
    }
    let style = text_style(LEGEND_PX, TEXT).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, e) in entries.iter().enumerate() {
        let mid = y0 + PAD + ROW * i as i32 + ROW / 2;
        let left = x0 + PAD;
        let c = color(e.color);
        if e.width > 0 {
            area.draw(&PathElement::new(vec![(left, mid), (left + SWATCH, mid)], c.stroke_width(e.width.min(4))))?;
        }
        if e.marker > 0 || e.width == 0 {
            area.draw(&Circle::new((left + SWATCH / 2, mid), e.marker.clamp(3, 5), c.filled()))?;
        }
        area.draw_text(&e.name, &style, (left + SWATCH + GAP, mid + nudge(LEGEND_PX)))?;
    }
    Ok(())
}

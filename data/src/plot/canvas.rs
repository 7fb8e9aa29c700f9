//! What every chart shares: a white RGB canvas drawn by plotters' bitmap backend, DejaVu Sans embedded
//! in the binary (registered once as plotters' `sans-serif`, so no system font is needed), the text
//! sizes, the palette, and saving a picture as a PNG atomically.

use crate::image_io::{encode_image, RgbImage};
use anyhow::{ensure, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::OnceLock;

/// A drawing area on a chart's canvas.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// The font family every text uses (DejaVu Sans, see [`ensure_font`]).
pub const FONT: &str = "sans-serif";
/// Text sizes in pixels (the font's ascent-to-descent height). Even sizes only: plotters places each
/// glyph at half the size plus its top, and an odd size rounds glyphs apart (a raised decimal point).
pub const TITLE_PX: f64 = 22.0;
pub const AXIS_LABEL_PX: f64 = 18.0;
pub const TICK_PX: f64 = 16.0;
pub const LEGEND_PX: f64 = 16.0;
/// Numbers inside heatmap cells.
pub const CELL_PX: f64 = 14.0;

pub const TEXT: Rgb = [20, 20, 20];
pub const GRID: Rgb = [225, 225, 225];
pub const FRAME: Rgb = [90, 90, 90];
/// The curve that summarises all classes (drawn thicker than the per-class ones).
pub const SUMMARY: Rgb = [0, 0, 0];
/// Per-class curves when there are too many classes to tell apart by colour.
pub const MUTED: Rgb = [170, 170, 170];

/// Twenty distinguishable colours: matplotlib's tab10, then ten darker or different hues.
const PALETTE: [Rgb; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [57, 59, 121],
    [231, 186, 82],
    [99, 121, 57],
    [132, 60, 57],
    [123, 65, 115],
    [27, 158, 119],
    [251, 128, 114],
    [107, 174, 214],
    [166, 216, 84],
    [179, 163, 107],
];

/// The colour of series `i` (the palette repeats after 20).
pub fn palette(i: usize) -> Rgb {
    PALETTE[i % PALETTE.len()]
}

/// The plotters colour of an [`Rgb`].
pub fn color(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Text in [`FONT`] at `px` pixels, in colour `c`.
pub fn text_style(px: f64, c: Rgb) -> TextStyle<'static> {
    (FONT, px).into_font().color(&color(c))
}

/// Registers the embedded DejaVu Sans (regular and bold) as plotters' `sans-serif`; once per process.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    ensure!(ok, "the embedded DejaVu Sans font could not be loaded");
    Ok(())
}

/// plotters centres text (`VPos::Center`) on a box that puts the letters about a fifth of their size
/// too high; text drawn centred at `y + nudge(px)` looks centred on `y`.
pub fn nudge(px: f64) -> i32 {
    (px * 0.2).round() as i32
}

/// Width and height in pixels of `text` at `px` pixels.
pub fn text_size(area: &Area, text: &str, px: f64) -> Result<(u32, u32)> {
    Ok(area.estimate_text_size(text, &text_style(px, TEXT))?)
}

/// Renders a `width × height` white canvas through `draw` into an RGB image.
pub fn render(width: u32, height: u32, draw: impl FnOnce(&Area) -> Result<()>) -> Result<RgbImage> {
    ensure!(width > 0 && height > 0, "cannot draw a chart of {width}x{height} pixels");
    ensure_font()?;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(&root)?;
        root.present()?;
    }
    RgbImage::new(width, height, buf)
}

/// Saves a chart as PNG (or another format by `path`'s extension) atomically: a temporary file in the
/// same folder renamed over `path`, so an error never leaves a half-written picture.
pub fn save(path: &Path, img: &RgbImage) -> Result<()> {
    let bytes = encode_image(img, path).map_err(|e| e.context(format!("cannot encode '{}'", path.display())))?;
    skipblock_core::tensors::write_atomic(path, &bytes)
}

/// A tick label for `v` on an axis whose ticks are about `step` apart: as many decimals as the step
/// needs, no `-0`.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() { (-step.log10().floor()).clamp(0.0, 6.0) as usize } else { 2 };
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// A label for a logarithmic axis: `1e-3`, `2e-3`, …; `1` to `999` written plainly.
pub fn log_tick_label(v: f64) -> String {
    if (1.0..1000.0).contains(&v) {
        format!("{v:.0}")
    } else {
        format!("{v:.0e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_have_the_decimals_the_step_needs() {
        assert_eq!(tick_label(0.5, 0.1), "0.5");
        assert_eq!(tick_label(1.0, 0.25), "1.0");
        assert_eq!(tick_label(1200.0, 200.0), "1200");
        assert_eq!(tick_label(-0.0, 0.2), "0.0");
        assert_eq!(tick_label(0.004, 0.002), "0.004");
        assert_eq!(log_tick_label(1e-4), "1e-4");
        assert_eq!(log_tick_label(0.5), "5e-1");
        assert_eq!(log_tick_label(10.0), "10");
    }

    #[test]
    fn text_is_drawn_with_the_embedded_font() {
        let img = render(120, 40, |area| {
            area.fill(&WHITE)?;
            area.draw_text("Ag 0.87", &text_style(20.0, [0, 0, 0]), (5, 5))?;
            Ok(())
        })
        .unwrap();
        let dark = img.data.chunks(3).filter(|p| p[0] < 100).count();
        let grey = img.data.chunks(3).filter(|p| p[0] > 100 && p[0] < 200).count();
        assert!(dark > 50, "{dark} dark pixels");
        assert!(grey > 10, "antialiased edges: {grey} grey pixels");
    }
}

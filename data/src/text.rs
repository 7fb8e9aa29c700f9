//! Anti-aliased text on [`RgbImage`]s: DejaVu Sans, embedded in the binary (the `dejavu` crate, no system
//! fonts), rasterised with `ab_glyph` and blended into the pixels by coverage. Pure Rust, so the build with
//! OpenCV and the headless one draw exactly the same pixels.
//!
//! Sizes are pixel heights of a line of text (ascent to descent, as `ab_glyph`'s `PxScale`): at 12 px
//! digits and capitals are about 7.5 px tall.

use crate::image_io::RgbImage;
use ab_glyph::{point, Font, FontRef, OutlinedGlyph, PxScale, ScaleFont};
use std::sync::OnceLock;

/// The width and height in pixels of a line of text's box: from the start of the first glyph to the
/// advance of the last, from the font's ascent to its descent, grown to any ink outside that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextSize {
    pub width: u32,
    pub height: u32,
}

/// DejaVu Sans, parsed once.
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(dejavu::sans::regular()).expect("the embedded DejaVu Sans is a valid TrueType font")
    })
}

/// One line of text laid out at a pixel size: its outlined glyphs, positioned with the top-left corner of
/// the text's box at (0, 0), and that box's size.
struct Layout {
    glyphs: Vec<OutlinedGlyph>,
    size: TextSize,
}

fn layout(text: &str, px: f32) -> Layout {
    let font = font().as_scaled(PxScale::from(px.max(1.0)));
    // A whole-pixel baseline keeps the bottoms of letters and digits crisp.
    let baseline = font.ascent().round();
    let mut caret = 0.0f32;
    let mut previous = None;
    let mut glyphs = Vec::new();
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            caret += font.kern(p, id);
        }
        previous = Some(id);
        if let Some(outlined) = font.outline_glyph(id.with_scale_and_position(font.scale(), point(caret, baseline))) {
            glyphs.push(outlined);
        }
        caret += font.h_advance(id);
    }
    // The line's box, grown to every glyph's pixel bounds (a glyph may overhang its advance).
    let (mut x0, mut y0, mut x1, mut y1) = (0.0f32, 0.0f32, caret.ceil(), (baseline - font.descent()).ceil());
    for g in &glyphs {
        let b = g.px_bounds();
        (x0, y0, x1, y1) = (x0.min(b.min.x), y0.min(b.min.y), x1.max(b.max.x), y1.max(b.max.y));
    }
    if x0 < 0.0 || y0 < 0.0 {
        let shift = point(-x0, -y0);
        glyphs = glyphs
            .into_iter()
            .filter_map(|g| {
                let mut glyph = g.glyph().clone();
                glyph.position += shift;
                font.outline_glyph(glyph)
            })
            .collect();
    }
    Layout { glyphs, size: TextSize { width: (x1 - x0) as u32, height: (y1 - y0) as u32 } }
}

/// The size of `text`'s box at a line height of `px` pixels.
pub fn measure(text: &str, px: f32) -> TextSize {
    layout(text, px).size
}

/// Blends `rgb` over pixel (x, y) with opacity `alpha` in [0, 1]; pixels outside the image are ignored.
fn blend(img: &mut RgbImage, x: i64, y: i64, rgb: [u8; 3], alpha: f32) {
    if x < 0 || y < 0 || x >= img.width as i64 || y >= img.height as i64 {
        return;
    }
    let a = alpha.clamp(0.0, 1.0);
    let i = (y as usize * img.width as usize + x as usize) * 3;
    for (dst, &src) in img.data[i..i + 3].iter_mut().zip(&rgb) {
        *dst = (*dst as f32 + (src as f32 - *dst as f32) * a).round() as u8;
    }
}

/// Draws `text` in `rgb` with the top-left corner of its box (see [`measure`]) at (x, y), each pixel
/// blended by how much of it the glyphs cover; clipped to the image. Returns the box's size.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, px: f32, rgb: [u8; 3]) -> TextSize {
    let Layout { glyphs, size } = layout(text, px);
    for g in &glyphs {
        let b = g.px_bounds();
        let (gx, gy) = (x + b.min.x as i64, y + b.min.y as i64);
        g.draw(|dx, dy, coverage| {
            if coverage > 0.0 {
                blend(img, gx + dx as i64, gy + dy as i64, rgb, coverage);
            }
        });
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    const BG: [u8; 3] = [0, 0, 0];
    const FG: [u8; 3] = [255, 255, 255];

    #[test]
    fn text_is_antialiased_and_stays_inside_its_measured_box() {
        for (text, px) in [("dog 0.87", 16.0), ("pottedplant 1.00", 12.0), ("Wj|gÉ_(q)", 23.5), ("fps 29.9", 40.0)] {
            let (x, y) = (7, 5);
            let size = measure(text, px);
            assert!(size.height as f32 >= px && size.height as f32 <= px + 3.0, "{text}: {size:?} at {px}");
            assert!(size.width as f32 > px * text.chars().count() as f32 * 0.3, "{text}: {size:?}");
            let mut img = RgbImage::filled(size.width + 20, size.height + 20, BG);
            assert_eq!(draw_text(&mut img, x, y, text, px, FG), size);
            // Strokes (more than half covered) and anti-aliased edges.
            let (mut strong, mut partial) = (0, 0);
            for py in 0..img.height {
                for qx in 0..img.width {
                    let p = img.pixel(qx, py);
                    if p == BG {
                        continue;
                    }
                    let inside = (qx as i64) >= x
                        && (qx as i64) < x + size.width as i64
                        && (py as i64) >= y
                        && (py as i64) < y + size.height as i64;
                    assert!(inside, "{text}: ink at ({qx}, {py}) outside the box at ({x}, {y}) {size:?}");
                    assert!(p[0] == p[1] && p[1] == p[2], "grey levels only");
                    if p[0] >= 128 {
                        strong += 1;
                    }
                    if p != FG {
                        partial += 1;
                    }
                }
            }
            assert!(strong > 10, "{text}: {strong} stroke pixels");
            assert!(partial > 10, "{text}: {partial} anti-aliased pixels");
        }
    }

    #[test]
    fn sizes_grow_with_the_pixel_height_and_the_text() {
        let small = measure("cat 0.50", 12.0);
        let big = measure("cat 0.50", 36.0);
        assert!(big.width > small.width * 2 && big.height > small.height * 2, "{small:?} {big:?}");
        assert!(measure("cat 0.50 cat", 12.0).width > small.width);
        assert_eq!(measure("", 12.0).width, 0);
        // Nonsense sizes give a tiny box, not a panic.
        assert!(measure("x", 0.0).height <= 3);
        assert!(measure("x", f32::NAN).height <= 3);
    }

    #[test]
    fn text_is_clipped_to_the_image() {
        for (w, h) in [(1, 1), (3, 2), (20, 5)] {
            let mut img = RgbImage::filled(w, h, BG);
            for (x, y) in [(0, 0), (-30, -10), (w as i64 - 1, h as i64 - 1), (1000, 1000)] {
                draw_text(&mut img, x, y, "bicycle 0.99", 20.0, FG);
            }
            assert_eq!(img.data.len(), (w * h * 3) as usize);
        }
        // Over a colour, partially covered pixels lie between the two colours.
        let mut img = RgbImage::filled(60, 30, [200, 40, 0]);
        draw_text(&mut img, 2, 2, "ok", 20.0, [0, 40, 200]);
        for p in img.data.chunks(3) {
            assert_eq!(p[1], 40);
            let sum = p[0] as i32 + p[2] as i32;
            assert!((199..=201).contains(&sum), "{p:?} is a blend of the two colours");
        }
    }
}

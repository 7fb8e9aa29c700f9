//! Boxes and labels drawn over an image, as ultralytics' annotator draws them: a box outline in its
//! colour and a label ("dog 0.87") in black or white on a filled box of that colour, above the box's
//! top-left corner or, with no room above, inside it; labels always kept inside the image. Line width
//! and text size follow the image's size ([`Style::for_image`]).

use crate::draw::{draw_rect, fill_rect, text_color_on};
use crate::image_io::RgbImage;
use crate::text;

/// How thick lines and how large labels are on one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Box outline width in pixels.
    pub line_width: u32,
    /// Label text height in pixels (see [`text`]).
    pub font_px: f32,
    /// Pixels between a label's text and the edges of its filled box, (horizontal, vertical).
    pub pad: (u32, u32),
}

impl Style {
    /// The style for a `width`×`height` image: line width max(round(0.003 × (w + h) / 2), 2) (2 px up
    /// to ~830², 5 px at 1920×1080), text height max(round(0.03 × (w + h) / 2), 12) px (12 px up to 400²,
    /// 17 px at 640×480, 45 px at 1920×1080), padding a quarter of the text height on the sides and an
    /// eighth above and below.
    pub fn for_image(width: u32, height: u32) -> Style {
        let mean_side = (width as f32 + height as f32) / 2.0;
        let line_width = ((0.003 * mean_side).round() as u32).max(2);
        let font_px = (0.03 * mean_side).round().max(12.0);
        let pad = ((font_px / 4.0).round() as u32, (font_px / 8.0).round() as u32);
        Style { line_width, font_px, pad }
    }
}

/// A label's filled box: top-left corner and size, in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelBox {
    pub x: i64,
    pub y: i64,
    pub width: u32,
    pub height: u32,
}

/// The size of `text`'s label box (text plus padding) in `style`.
pub fn label_size(text: &str, style: &Style) -> (u32, u32) {
    let size = text::measure(text, style.font_px);
    (size.width + 2 * style.pad.0, size.height + 2 * style.pad.1)
}

/// Where a `width`×`height` label goes for a box whose top-left corner is (x0, y0), on an
/// `image_width`×`image_height` image: on top of the box when there is room above it, else just inside
/// its top edge; moved left or up as far as needed to end inside the image, never past its left or top
/// edge (a label larger than the image starts at its corner and is clipped).
pub fn place_label(x0: i64, y0: i64, (width, height): (u32, u32), (image_width, image_height): (u32, u32)) -> LabelBox {
    let (w, h) = (width as i64, height as i64);
    let y = if y0 - h >= 0 { y0 - h } else { y0 };
    LabelBox { x: x0.min(image_width as i64 - w).max(0), y: y.min(image_height as i64 - h).max(0), width, height }
}

/// Draws `text` in `fg` on a filled `bg` box with its top-left corner at (x, y), padded as `style`
/// says; clipped to the image. Returns the box.
pub fn text_box(img: &mut RgbImage, x: i64, y: i64, text: &str, style: &Style, fg: [u8; 3], bg: [u8; 3]) -> LabelBox {
    let (width, height) = label_size(text, style);
    fill_rect(img, x, y, width, height, bg);
    text::draw_text(img, x + style.pad.0 as i64, y + style.pad.1 as i64, text, style.font_px, fg);
    LabelBox { x, y, width, height }
}

/// The outline of `bbox` (`[xmin, ymin, xmax, ymax]`, continuous pixels: the outline covers the pixels
/// from xmin to xmax − 1) in `color`, `style.line_width` wide, drawn inwards.
pub fn draw_box(img: &mut RgbImage, bbox: [f32; 4], color: [u8; 3], style: &Style) {
    draw_rect(img, bbox[0], bbox[1], bbox[2] - 1.0, bbox[3] - 1.0, style.line_width, color);
}

/// The label of the box `bbox`: `text` in black or white (whichever reads on `color`) on a `color`
/// box, placed by [`place_label`]. Returns where it went.
pub fn draw_box_label(img: &mut RgbImage, bbox: [f32; 4], text: &str, color: [u8; 3], style: &Style) -> LabelBox {
    let size = label_size(text, style);
    let at = place_label(bbox[0].round() as i64, bbox[1].round() as i64, size, (img.width, img.height));
    text_box(img, at.x, at.y, text, style, text_color_on(color), color)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_scale_with_the_image() {
        let small = Style::for_image(160, 160);
        assert_eq!((small.line_width, small.font_px), (2, 12.0));
        let vga = Style::for_image(640, 480);
        let hd = Style::for_image(1920, 1080);
        assert!(hd.line_width > vga.line_width && hd.font_px > vga.font_px, "{vga:?} {hd:?}");
        assert!(hd.pad.0 > 0 && hd.pad.1 > 0);
        assert_eq!(Style::for_image(0, 0).line_width, 2);
    }

    #[test]
    fn labels_go_above_the_box_or_inside_it_and_stay_in_the_image() {
        let image = (300, 200);
        let size = (80, 20);
        // Room above: the label sits on the box's top edge, from its left edge.
        assert_eq!(place_label(50, 100, size, image), LabelBox { x: 50, y: 80, width: 80, height: 20 });
        // No room above: inside the box, under its top edge.
        assert_eq!(place_label(50, 10, size, image).y, 10);
        // Each corner of the image.
        for (x0, y0) in [(0, 0), (299, 0), (0, 199), (299, 199), (-40, -40), (500, 500)] {
            let b = place_label(x0, y0, size, image);
            assert!(b.x >= 0 && b.y >= 0, "{b:?}");
            assert!(b.x + 80 <= 300 && b.y + 20 <= 200, "{b:?} for a box at ({x0}, {y0})");
        }
        // Larger than the image: from its top-left corner.
        assert_eq!(place_label(5, 5, (400, 300), image), LabelBox { x: 0, y: 0, width: 400, height: 300 });
    }

    #[test]
    fn labels_near_every_corner_are_drawn_inside_the_image() {
        let style = Style::for_image(240, 160);
        let color = [0, 24, 236];
        for bbox in
            [[0.0, 0.0, 60.0, 40.0], [200.0, 0.0, 240.0, 30.0], [0.0, 150.0, 30.0, 160.0], [230.0, 150.0, 240.0, 160.0]]
        {
            let mut img = RgbImage::filled(240, 160, [128, 128, 128]);
            let label = draw_box_label(&mut img, bbox, "diningtable 0.87", color, &style);
            assert!(label.x >= 0 && label.y >= 0, "{label:?}");
            assert!(label.x + label.width as i64 <= 240 && label.y + label.height as i64 <= 160, "{label:?}");
            // The whole label box is painted: its colour, white text and blends of the two.
            let (mut fill, mut text, mut faint) = (0, 0, 0);
            for y in label.y..label.y + label.height as i64 {
                for x in label.x..label.x + label.width as i64 {
                    let p = img.pixel(x as u32, y as u32);
                    let coverage = p[0] as f32 / 255.0;
                    let expected = color.map(|c| c as f32 + (255.0 - c as f32) * coverage);
                    assert!(
                        (0..3).all(|c| (p[c] as f32 - expected[c]).abs() <= 2.0),
                        "{p:?} at ({x}, {y}) in the label {label:?} is not a blend of its colour and white"
                    );
                    match coverage {
                        0.0 => fill += 1,
                        a if a >= 0.5 => text += 1,
                        _ => faint += 1,
                    }
                }
            }
            assert!(fill > text && text > 10 && faint > 10, "{fill} {text} {faint}");
        }
    }

    #[test]
    fn tiny_images_do_not_panic() {
        for (w, h) in [(1, 1), (2, 1), (1, 5), (8, 8)] {
            let mut img = RgbImage::filled(w, h, [0, 0, 0]);
            let style = Style::for_image(w, h);
            draw_box(&mut img, [0.0, 0.0, w as f32, h as f32], [255, 0, 0], &style);
            draw_box_label(&mut img, [0.0, 0.0, w as f32, h as f32], "person 0.99", [255, 0, 0], &style);
            draw_box_label(&mut img, [-5.0, 3.0, 2.0, 9.0], "x", [0, 0, 255], &style);
            text_box(&mut img, -3, -3, "fps 30.0", &style, [255, 255, 255], [0, 0, 0]);
            assert_eq!(img.data.len(), (w * h * 3) as usize);
        }
        let mut empty = RgbImage::filled(0, 0, [0, 0, 0]);
        draw_box_label(&mut empty, [0.0, 0.0, 1.0, 1.0], "cat 0.50", [255, 0, 0], &Style::for_image(0, 0));
    }

    #[test]
    fn text_is_black_on_light_colours_and_white_on_dark_ones() {
        assert_eq!(text_color_on([255, 255, 255]), [0, 0, 0]);
        assert_eq!(text_color_on([255, 225, 25]), [0, 0, 0]);
        assert_eq!(text_color_on([0, 24, 236]), [255, 255, 255]);
        assert_eq!(text_color_on([0, 0, 0]), [255, 255, 255]);
    }
}

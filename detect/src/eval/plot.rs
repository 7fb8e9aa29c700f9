//! Precision–recall curves of an [`EvalResult`] drawn into an [`RgbImage`]: recall on x, precision on
//! y, a 0.1 grid, one colour per class ([`class_color`] of the class index) with 2-pixel lines, and a
//! legend (class name and AP) on the right.

use super::voc_ap::EvalResult;
use anyhow::Result;
use skipblock_data::draw::{class_color, draw_label};
use skipblock_data::{write_image, RgbImage};
use std::path::Path;

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [220, 220, 220];

/// Where the axes are: the plot area `[left, right] × [top, bottom]` in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotArea {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

impl PlotArea {
    /// The plot area of a `width × height` canvas: margins for tick labels on the left and bottom, the
    /// legend column (180 px) on the right.
    pub fn for_canvas(width: u32, height: u32) -> Self {
        PlotArea { left: 50.0, top: 20.0, right: (width as f32 - 200.0).max(60.0), bottom: (height as f32 - 45.0).max(30.0) }
    }

    /// Pixel position of (recall, precision).
    pub fn to_pixel(&self, recall: f32, precision: f32) -> (f32, f32) {
        let (r, p) = (recall.clamp(0.0, 1.0), precision.clamp(0.0, 1.0));
        (self.left + r * (self.right - self.left), self.bottom - p * (self.bottom - self.top))
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, rgb: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width && (y as u32) < img.height {
        let i = (y as usize * img.width as usize + x as usize) * 3;
        img.data[i..i + 3].copy_from_slice(&rgb);
    }
}

/// A line (Bresenham) of `thickness` pixels (a square brush).
fn line(img: &mut RgbImage, (x0, y0): (f32, f32), (x1, y1): (f32, f32), thickness: i64, rgb: [u8; 3]) {
    let (mut x, mut y) = (x0.round() as i64, y0.round() as i64);
    let (xe, ye) = (x1.round() as i64, y1.round() as i64);
    let (dx, dy) = ((xe - x).abs(), -(ye - y).abs());
    let (sx, sy) = (if x < xe { 1 } else { -1 }, if y < ye { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        for oy in 0..thickness {
            for ox in 0..thickness {
                put(img, x + ox, y + oy, rgb);
            }
        }
        if x == xe && y == ye {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// The precision–recall curves of every class with detections and ground truth, on a white
/// `width × height` canvas.
pub fn plot_pr_curves(result: &EvalResult, width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::filled(width, height, WHITE);
    let area = PlotArea::for_canvas(width, height);
    for i in 0..=10 {
        let t = i as f32 / 10.0;
        let (gx, _) = area.to_pixel(t, 0.0);
        let (_, gy) = area.to_pixel(0.0, t);
        line(&mut img, (gx, area.top), (gx, area.bottom), 1, GRID);
        line(&mut img, (area.left, gy), (area.right, gy), 1, GRID);
        let tick = format!("{t:.1}");
        draw_label(&mut img, gx as i64 - 10, area.bottom as i64 + 4, &tick, 1, BLACK, WHITE);
        draw_label(&mut img, area.left as i64 - 26, gy as i64 - 4, &tick, 1, BLACK, WHITE);
    }
    line(&mut img, (area.left, area.bottom), (area.right, area.bottom), 2, BLACK);
    line(&mut img, (area.left, area.top), (area.left, area.bottom), 2, BLACK);
    let mid_x = (area.left + area.right) / 2.0;
    draw_label(&mut img, mid_x as i64 - 20, area.bottom as i64 + 18, "recall", 2, BLACK, WHITE);
    draw_label(&mut img, 4, 2, "precision", 1, BLACK, WHITE);

    for (c, class) in result.per_class.iter().enumerate() {
        let color = class_color(c);
        let points: Vec<(f32, f32)> = class.recall.iter().zip(&class.precision).map(|(&r, &p)| area.to_pixel(r, p)).collect();
        for pair in points.windows(2) {
            line(&mut img, pair[0], pair[1], 2, color);
        }
        if let [only] = points.as_slice() {
            line(&mut img, *only, *only, 2, color);
        }
    }

    let legend_x = area.right as i64 + 15;
    for (c, class) in result.per_class.iter().enumerate() {
        let y = area.top as i64 + c as i64 * 13;
        for yy in y + 1..y + 9 {
            for xx in legend_x..legend_x + 12 {
                put(&mut img, xx, yy, class_color(c));
            }
        }
        draw_label(&mut img, legend_x + 16, y, &format!("{} {:.3}", class.name, class.ap), 1, BLACK, WHITE);
    }
    draw_label(&mut img, legend_x, area.bottom as i64 - 10, &format!("map {:.4}", result.map), 1, BLACK, WHITE);
    img
}

/// Draws the curves on an 800×600 canvas and saves them (format by extension, e.g. `.png`).
pub fn save_pr_curves(result: &EvalResult, path: &Path) -> Result<()> {
    write_image(path, &plot_pr_curves(result, 800, 600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::voc_ap::{evaluate, DetectionRecord, GroundTruth, Metric};

    #[test]
    fn curves_of_every_class_are_drawn_and_saved() {
        let names: Vec<String> = ["cat", "dog", "bird"].iter().map(|s| s.to_string()).collect();
        let mut gts = Vec::new();
        let mut dets = Vec::new();
        for i in 0..10 {
            for c in 0..3 {
                let b = [10.0 + c as f32 * 100.0, 10.0, 60.0 + c as f32 * 100.0, 60.0];
                gts.push(GroundTruth { image_id: format!("im{i}"), class: c, bbox: b, difficult: false });
                // Classes get different hit rates, so the curves differ.
                let hit = (i + c) % (c + 2) != 0;
                let bbox = if hit { b } else { [500.0, 500.0, 520.0, 520.0] };
                dets.push(DetectionRecord { image_id: format!("im{i}"), class: c, score: 1.0 - i as f32 * 0.05, bbox });
            }
        }
        let result = evaluate(&gts, &dets, &names, Metric::Voc12, 0.5).unwrap();
        let img = plot_pr_curves(&result, 800, 600);
        let area = PlotArea::for_canvas(800, 600);
        for c in 0..3 {
            let inside = (area.top as u32..area.bottom as u32 + 2)
                .flat_map(|y| (area.left as u32..area.right as u32 + 2).map(move |x| (x, y)))
                .filter(|&(x, y)| img.pixel(x, y) == class_color(c))
                .count();
            assert!(inside > 20, "class {c}: only {inside} curve pixels");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pr/curves.png");
        save_pr_curves(&result, &path).unwrap();
        let back = skipblock_data::read_image(&path).unwrap();
        assert_eq!((back.width, back.height), (800, 600));
        assert_eq!(back, img);
        assert!(save_pr_curves(&result, &dir.path().join("curves.gif")).is_err());
    }
}

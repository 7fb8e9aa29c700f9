//! Drawing on [`RgbImage`]s: filled shapes and noise for the synthetic datasets, outlines, filled boxes,
//! lines and class colours for annotated detections and charts. Pure Rust, the same in both builds.

use crate::image_io::RgbImage;
use rand::Rng;

/// A shape the synthetic datasets draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Rectangle,
    Ellipse,
    Triangle,
    Cross,
    Ring,
    Diamond,
}

pub const SHAPES: [Shape; 6] =
    [Shape::Rectangle, Shape::Ellipse, Shape::Triangle, Shape::Cross, Shape::Ring, Shape::Diamond];

impl Shape {
    /// Whether the point (u, v), in the shape's box normalised to [0, 1]², is inside the shape.
    pub fn contains(self, u: f32, v: f32) -> bool {
        let (x, y) = (u * 2.0 - 1.0, v * 2.0 - 1.0);
        match self {
            Shape::Rectangle => true,
            Shape::Ellipse => x * x + y * y <= 1.0,
            Shape::Triangle => (-1.0..=1.0).contains(&y) && x.abs() <= (y + 1.0) / 2.0,
            Shape::Cross => x.abs() <= 0.3 || y.abs() <= 0.3,
            Shape::Ring => {
                let r = x * x + y * y;
                (0.36..=1.0).contains(&r)
            }
            Shape::Diamond => x.abs() + y.abs() <= 1.0,
        }
    }
}

/// Sets one pixel; coordinates outside the image are ignored.
pub fn put(img: &mut RgbImage, x: i64, y: i64, rgb: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width && (y as u32) < img.height {
        let i = (y as usize * img.width as usize + x as usize) * 3;
        img.data[i..i + 3].copy_from_slice(&rgb);
    }
}

/// Fills `shape` inside the box [x0, x1) × [y0, y1) (pixels, clipped to the image).
pub fn fill_shape(img: &mut RgbImage, shape: Shape, x0: f32, y0: f32, x1: f32, y1: f32, rgb: [u8; 3]) {
    let (w, h) = ((x1 - x0).max(1e-3), (y1 - y0).max(1e-3));
    let (xs, xe) = (x0.floor().max(0.0) as i64, x1.ceil().min(img.width as f32) as i64);
    let (ys, ye) = (y0.floor().max(0.0) as i64, y1.ceil().min(img.height as f32) as i64);
    for y in ys..ye {
        for x in xs..xe {
            let (u, v) = ((x as f32 + 0.5 - x0) / w, (y as f32 + 0.5 - y0) / h);
            if (0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v) && shape.contains(u, v) {
                put(img, x, y, rgb);
            }
        }
    }
}

/// Adds uniform noise in [−amount, amount] to every channel.
pub fn add_noise(img: &mut RgbImage, amount: u8, rng: &mut impl Rng) {
    if amount == 0 {
        return;
    }
    let a = amount as i16;
    for p in img.data.iter_mut() {
        *p = (*p as i16 + rng.gen_range(-a..=a)).clamp(0, 255) as u8;
    }
}

/// A background: a linear gradient between two colours plus `blobs` random faint rectangles (clutter).
pub fn background(width: u32, height: u32, rng: &mut impl Rng, blobs: usize) -> RgbImage {
    let c0: [u8; 3] = [rng.gen(), rng.gen(), rng.gen()];
    let c1: [u8; 3] = [rng.gen(), rng.gen(), rng.gen()];
    let horizontal = rng.gen_bool(0.5);
    let mut img = RgbImage::filled(width, height, [0, 0, 0]);
    for y in 0..height {
        for x in 0..width {
            let t = if horizontal { x as f32 / width.max(1) as f32 } else { y as f32 / height.max(1) as f32 };
            let rgb = [0, 1, 2].map(|c| (c0[c] as f32 * (1.0 - t) + c1[c] as f32 * t) as u8);
            put(&mut img, x as i64, y as i64, rgb);
        }
    }
    for _ in 0..blobs {
        let (bw, bh) = (rng.gen_range(0.05..0.3) * width as f32, rng.gen_range(0.05..0.3) * height as f32);
        let (bx, by) = (rng.gen_range(0.0..width as f32), rng.gen_range(0.0..height as f32));
        let base = img.pixel((bx as u32).min(width - 1), (by as u32).min(height - 1));
        let rgb = base.map(|c| c.saturating_add(rng.gen_range(0..40)).saturating_sub(rng.gen_range(0..40)));
        fill_shape(&mut img, Shape::Rectangle, bx, by, bx + bw, by + bh, rgb);
    }
    img
}

/// A rectangle outline of `thickness` pixels along [x0, x1] × [y0, y1].
pub fn draw_rect(img: &mut RgbImage, x0: f32, y0: f32, x1: f32, y1: f32, thickness: u32, rgb: [u8; 3]) {
    let t = thickness.max(1) as i64;
    let (x0, y0, x1, y1) = (x0.round() as i64, y0.round() as i64, x1.round() as i64, y1.round() as i64);
    for k in 0..t {
        for x in x0..=x1 {
            put(img, x, y0 + k, rgb);
            put(img, x, y1 - k, rgb);
        }
        for y in y0..=y1 {
            put(img, x0 + k, y, rgb);
            put(img, x1 - k, y, rgb);
        }
    }
}

/// A line (Bresenham) of `thickness` pixels (a square brush); clipped to the image.
pub fn line(img: &mut RgbImage, (x0, y0): (f32, f32), (x1, y1): (f32, f32), thickness: i64, rgb: [u8; 3]) {
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

/// Fills the rectangle [x, x + width) × [y, y + height) (clipped to the image).
pub fn fill_rect(img: &mut RgbImage, x: i64, y: i64, width: u32, height: u32, rgb: [u8; 3]) {
    let (xs, xe) = (x.max(0), (x + width as i64).min(img.width as i64));
    let (ys, ye) = (y.max(0), (y + height as i64).min(img.height as i64));
    for yy in ys..ye {
        for xx in xs..xe {
            put(img, xx, yy, rgb);
        }
    }
}

/// A distinct, saturated colour for class `i` (for boxes, labels and chart lines): ultralytics' palette of
/// 20, so the 20 VOC classes each get their own, ordered farthest-first in CIELAB from red (each colour
/// as far as can be from all before it), so the first few classes or series are the most distinct: red,
/// green, blue, teal, magenta, orange, …
pub fn class_color(i: usize) -> [u8; 3] {
    const PALETTE: [u32; 20] = [
        0xFF3838, 0x48F90A, 0x0018EC, 0x2C99A8, 0xFF37C7, 0xFFB21D, 0x1A9334, 0x344593, 0xFF9D97, 0x92CC17, 0xCB38FF,
        0x6473FF, 0x520085, 0x00D4BB, 0x00C2FF, 0xFF95C8, 0xFF701F, 0x3DDB86, 0xCFD231, 0x8438FF,
    ];
    let c = PALETTE[i % PALETTE.len()];
    [(c >> 16) as u8, (c >> 8) as u8, c as u8]
}

/// Black or white, whichever reads better on `bg`: black on light colours (perceived brightness
/// 0.299 R + 0.587 G + 0.114 B of at least 140), white on dark ones.
pub fn text_color_on(bg: [u8; 3]) -> [u8; 3] {
    let brightness = 0.299 * bg[0] as f32 + 0.587 * bg[1] as f32 + 0.114 * bg[2] as f32;
    if brightness >= 140.0 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shapes_fill_their_box_only() {
        let mut img = RgbImage::filled(40, 40, [0, 0, 0]);
        fill_shape(&mut img, Shape::Ellipse, 10.0, 10.0, 30.0, 30.0, [255, 0, 0]);
        assert_eq!(img.pixel(20, 20), [255, 0, 0]);
        assert_eq!(img.pixel(10, 10), [0, 0, 0], "corner of the box is outside the ellipse");
        assert_eq!(img.pixel(5, 20), [0, 0, 0]);
        let mut ring = RgbImage::filled(40, 40, [0, 0, 0]);
        fill_shape(&mut ring, Shape::Ring, 0.0, 0.0, 40.0, 40.0, [9, 9, 9]);
        assert_eq!(ring.pixel(20, 20), [0, 0, 0], "a ring has a hole");
        // Out-of-image boxes are clipped, not a panic.
        fill_shape(&mut img, Shape::Rectangle, -10.0, 35.0, 60.0, 80.0, [1, 2, 3]);
        assert_eq!(img.pixel(39, 39), [1, 2, 3]);
    }

    #[test]
    fn class_colours_are_distinct_and_saturated() {
        let colours: Vec<[u8; 3]> = (0..20).map(class_color).collect();
        for (i, a) in colours.iter().enumerate() {
            let (max, min) = (*a.iter().max().unwrap() as i32, *a.iter().min().unwrap() as i32);
            assert!(max - min >= 90, "class {i}: {a:?} is greyish");
            for b in &colours[..i] {
                let d: i32 = (0..3).map(|c| (a[c] as i32 - b[c] as i32).abs()).sum();
                assert!(d >= 50, "{a:?} and {b:?} look alike");
            }
        }
        assert_eq!(class_color(20), class_color(0));
        // The first two (e.g. a chart's train and val curves) are far apart.
        let d01: i32 = (0..3).map(|c| (colours[0][c] as i32 - colours[1][c] as i32).abs()).sum();
        assert!(d01 >= 300, "{:?} {:?}", colours[0], colours[1]);
    }

    #[test]
    fn outlines_labels_and_backgrounds() {
        let mut img = RgbImage::filled(60, 30, [0, 0, 0]);
        draw_rect(&mut img, 5.0, 5.0, 20.0, 20.0, 2, [0, 255, 0]);
        assert_eq!(img.pixel(5, 12), [0, 255, 0]);
        assert_eq!(img.pixel(12, 12), [0, 0, 0]);
        fill_rect(&mut img, 30, 0, 10, 8, [0, 0, 255]);
        assert_eq!(img.pixel(30, 0), [0, 0, 255]);
        assert_eq!(img.pixel(40, 0), [0, 0, 0], "fill_rect ends before x + width");
        fill_rect(&mut img, 55, 25, 20, 20, [2, 2, 2]);
        assert_eq!(img.pixel(59, 29), [2, 2, 2], "clipped at the image border");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let bg = background(32, 24, &mut rng, 5);
        assert_eq!((bg.width, bg.height), (32, 24));
        let mut noisy = bg.clone();
        add_noise(&mut noisy, 10, &mut rng);
        assert_ne!(noisy, bg);
    }
}

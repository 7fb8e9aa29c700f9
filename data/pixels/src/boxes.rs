//! Boxes in plain Rust, the one place the data layer (augmentation), detection (matching, NMS,
//! evaluation) and the libtorch-free predictor get them from (`skipblock_core::boxes` re-exports them
//! beside its tensor versions).
//!
//! A [`BBox`] is `[xmin, ymin, xmax, ymax]` in continuous coordinates (pixels or normalised [0, 1]),
//! xmax > xmin for a valid box. PASCAL VOC's 1-based inclusive pixel boxes convert with
//! [`BBox::from_voc`] / [`BBox::to_voc`] (subtract / add 1 on the minimum corner, as the reference SSD
//! implementations do), and VOC evaluation uses [`iou_voc`], the devkit's "+1 pixel" IoU on VOC boxes.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct BBox {
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
}

impl BBox {
    pub const fn new(xmin: f32, ymin: f32, xmax: f32, ymax: f32) -> Self {
        BBox { xmin, ymin, xmax, ymax }
    }

    /// From VOC's 1-based inclusive pixel coordinates to continuous 0-based ones.
    pub fn from_voc(xmin: f32, ymin: f32, xmax: f32, ymax: f32) -> Self {
        BBox::new(xmin - 1.0, ymin - 1.0, xmax, ymax)
    }

    /// Back to VOC's 1-based inclusive convention.
    pub fn to_voc(&self) -> [f32; 4] {
        [self.xmin + 1.0, self.ymin + 1.0, self.xmax, self.ymax]
    }

    pub fn width(&self) -> f32 {
        (self.xmax - self.xmin).max(0.0)
    }
    pub fn height(&self) -> f32 {
        (self.ymax - self.ymin).max(0.0)
    }
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }
    pub fn center(&self) -> (f32, f32) {
        ((self.xmin + self.xmax) / 2.0, (self.ymin + self.ymax) / 2.0)
    }
    pub fn is_valid(&self) -> bool {
        self.xmax > self.xmin
            && self.ymax > self.ymin
            && [self.xmin, self.ymin, self.xmax, self.ymax].iter().all(|v| v.is_finite())
    }

    pub fn intersection(&self, other: &BBox) -> f32 {
        let w = (self.xmax.min(other.xmax) - self.xmin.max(other.xmin)).max(0.0);
        let h = (self.ymax.min(other.ymax) - self.ymin.max(other.ymin)).max(0.0);
        w * h
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// Clipped to `[0, width] × [0, height]`.
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        BBox::new(
            self.xmin.clamp(0.0, width),
            self.ymin.clamp(0.0, height),
            self.xmax.clamp(0.0, width),
            self.ymax.clamp(0.0, height),
        )
    }

    /// Mirrored in an image of `width`.
    pub fn hflip(&self, width: f32) -> BBox {
        BBox::new(width - self.xmax, self.ymin, width - self.xmin, self.ymax)
    }

    /// Scaled by (sx, sy), e.g. to normalise by the image size (1/w, 1/h).
    pub fn scale(&self, sx: f32, sy: f32) -> BBox {
        BBox::new(self.xmin * sx, self.ymin * sy, self.xmax * sx, self.ymax * sy)
    }

    /// Moved by (dx, dy).
    pub fn shift(&self, dx: f32, dy: f32) -> BBox {
        BBox::new(self.xmin + dx, self.ymin + dy, self.xmax + dx, self.ymax + dy)
    }

    pub fn to_array(&self) -> [f32; 4] {
        [self.xmin, self.ymin, self.xmax, self.ymax]
    }
}

/// The PASCAL VOC devkit's IoU on 1-based inclusive pixel boxes: widths and heights count `+1`.
pub fn iou_voc(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = a[2].min(b[2]) - a[0].max(b[0]) + 1.0;
    let ih = a[3].min(b[3]) - a[1].max(b[1]) + 1.0;
    if iw <= 0.0 || ih <= 0.0 {
        return 0.0;
    }
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0] + 1.0) * (r[3] - r[1] + 1.0);
    inter / (area(a) + area(b) - inter)
}

/// Greedy non-maximum suppression on the CPU: indices of the kept boxes, by decreasing score.
pub fn nms(boxes: &[BBox], scores: &[f32], iou_threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = Vec::new();
    let mut suppressed = vec![false; boxes.len()];
    for (i, &idx) in order.iter().enumerate() {
        if suppressed[idx] {
            continue;
        }
        keep.push(idx);
        for &other in &order[i + 1..] {
            if !suppressed[other] && boxes[idx].iou(&boxes[other]) > iou_threshold {
                suppressed[other] = true;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let a = BBox::new(0.0, 0.0, 2.0, 2.0);
        let b = BBox::new(1.0, 1.0, 3.0, 3.0);
        assert_eq!(a.intersection(&b), 1.0);
        assert!((a.iou(&b) - 1.0 / 7.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(5.0, 5.0, 6.0, 6.0)), 0.0);
        assert_eq!(a.hflip(10.0), BBox::new(8.0, 0.0, 10.0, 2.0));
        assert_eq!(BBox::new(-1.0, 2.0, 12.0, 4.0).clip(10.0, 3.0), BBox::new(0.0, 2.0, 10.0, 3.0));
        assert!(!BBox::new(3.0, 0.0, 3.0, 1.0).is_valid());
        let v = BBox::from_voc(1.0, 1.0, 10.0, 20.0);
        assert_eq!(v, BBox::new(0.0, 0.0, 10.0, 20.0));
        assert_eq!(v.to_voc(), [1.0, 1.0, 10.0, 20.0]);
    }

    #[test]
    fn voc_iou_counts_the_extra_pixel() {
        // Two 10×10-pixel boxes (1..10) overlapping in 5×10 pixels: 50 / 150.
        let a = [1.0, 1.0, 10.0, 10.0];
        let b = [6.0, 1.0, 15.0, 10.0];
        assert!((iou_voc(&a, &b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(iou_voc(&a, &[11.0, 1.0, 20.0, 10.0]), 0.0);
        assert_eq!(iou_voc(&a, &a), 1.0);
    }

    #[test]
    fn nms_keeps_the_best_of_each_cluster() {
        let boxes = [
            BBox::new(0.0, 0.0, 10.0, 10.0),
            BBox::new(1.0, 1.0, 10.0, 10.0),
            BBox::new(20.0, 20.0, 30.0, 30.0),
            BBox::new(0.0, 0.0, 9.0, 10.0),
        ];
        let scores = [0.8, 0.9, 0.5, 0.7];
        assert_eq!(nms(&boxes, &scores, 0.45), vec![1, 2]);
        assert_eq!(nms(&boxes, &scores, 0.95), vec![1, 0, 3, 2]);
        assert!(nms(&[], &[], 0.5).is_empty());
    }
}

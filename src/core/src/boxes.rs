//! Box utilities on tensors, next to the plain-Rust [`BBox`], [`iou_voc`] and [`nms`] (from
//! `skipblock_pixels::boxes`, re-exported here): the one place both the data layer and detection get
//! boxes from.

pub use skipblock_pixels::boxes::{iou_voc, nms, BBox};
use tch::{Kind, Tensor};

/// Pairwise IoU of `[N, 4]` and `[M, 4]` box tensors (xyxy): `[N, M]`.
pub fn box_iou(a: &Tensor, b: &Tensor) -> Tensor {
    let area = |t: &Tensor| {
        (t.select(1, 2) - t.select(1, 0)).clamp_min(0.0) * (t.select(1, 3) - t.select(1, 1)).clamp_min(0.0)
    };
    let (area_a, area_b) = (area(a), area(b));
    let lt = a.slice(1, 0, 2, 1).unsqueeze(1).maximum(&b.slice(1, 0, 2, 1).unsqueeze(0));
    let rb = a.slice(1, 2, 4, 1).unsqueeze(1).minimum(&b.slice(1, 2, 4, 1).unsqueeze(0));
    let wh = (rb - lt).clamp_min(0.0);
    let inter = wh.select(2, 0) * wh.select(2, 1);
    let union = area_a.unsqueeze(1) + area_b.unsqueeze(0) - &inter;
    inter / union.clamp_min(1e-12)
}

/// `[N, 4]` float tensor of boxes.
pub fn to_tensor(boxes: &[BBox]) -> Tensor {
    let flat: Vec<f32> = boxes.iter().flat_map(|b| b.to_array()).collect();
    Tensor::from_slice(&flat).view([boxes.len() as i64, 4]).to_kind(Kind::Float)
}

/// Boxes from an `[N, 4]` tensor.
pub fn from_tensor(t: &Tensor) -> Vec<BBox> {
    let t = t.to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
    let v: Vec<f32> = Vec::<f32>::try_from(&t).unwrap_or_default();
    v.chunks_exact(4).map(|c| BBox::new(c[0], c[1], c[2], c[3])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_iou_matches_scalar_iou() {
        let boxes = [BBox::new(0.0, 0.0, 2.0, 2.0), BBox::new(1.0, 1.0, 3.0, 3.0), BBox::new(0.5, 0.0, 1.5, 4.0)];
        let m = box_iou(&to_tensor(&boxes), &to_tensor(&boxes[1..]));
        assert_eq!(m.size(), vec![3, 2]);
        for i in 0..3 {
            for j in 0..2 {
                let got = m.double_value(&[i as i64, j as i64]) as f32;
                assert!((got - boxes[i].iou(&boxes[j + 1])).abs() < 1e-6);
            }
        }
        assert_eq!(from_tensor(&to_tensor(&boxes)), boxes.to_vec());
    }
}

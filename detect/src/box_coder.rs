//! The SSD box parametrisation: ground-truth boxes as offsets from their priors, with the centre and
//! size variances of the reference implementations (0.1, 0.2), and the corner ↔ centre conversions.
//!
//! All boxes are `[..., 4]` tensors: corner form (xmin, ymin, xmax, ymax), centre form (cx, cy, w, h).

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Encoding variances of the common SSD300 settings (centre 0.1, size 0.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoxCoder {
    pub center_variance: f64,
    pub size_variance: f64,
}

impl Default for BoxCoder {
    fn default() -> Self {
        BoxCoder { center_variance: 0.1, size_variance: 0.2 }
    }
}

fn halves(t: &Tensor) -> (Tensor, Tensor) {
    let last = t.dim() as i64 - 1;
    (t.narrow(last, 0, 2), t.narrow(last, 2, 2))
}

/// (xmin, ymin, xmax, ymax) → (cx, cy, w, h).
pub fn corner_to_center(boxes: &Tensor) -> Tensor {
    let (lo, hi) = halves(boxes);
    let last = boxes.dim() as i64 - 1;
    Tensor::cat(&[(&lo + &hi) / 2.0, hi - lo], last)
}

/// (cx, cy, w, h) → (xmin, ymin, xmax, ymax).
pub fn center_to_corner(boxes: &Tensor) -> Tensor {
    let (c, wh) = halves(boxes);
    let last = boxes.dim() as i64 - 1;
    Tensor::cat(&[&c - &wh / 2.0, c + wh / 2.0], last)
}

impl BoxCoder {
    /// Centre-form boxes `[..., P, 4]` relative to centre-form priors `[P, 4]` → offsets
    /// ((cx − pcx) / (cv·pw), (cy − pcy) / (cv·ph), ln(w / pw) / sv, ln(h / ph) / sv).
    pub fn encode(&self, boxes: &Tensor, priors: &Tensor) -> Tensor {
        let (c, wh) = halves(boxes);
        let (pc, pwh) = halves(priors);
        let last = boxes.dim() as i64 - 1;
        let dc = (c - &pc) / (&pwh * self.center_variance);
        let dwh = (wh / &pwh).log() / self.size_variance;
        Tensor::cat(&[dc, dwh], last)
    }

    /// The inverse of [`BoxCoder::encode`]: offsets `[..., P, 4]` → centre-form boxes.
    pub fn decode(&self, offsets: &Tensor, priors: &Tensor) -> Tensor {
        let (dc, dwh) = halves(offsets);
        let (pc, pwh) = halves(priors);
        let last = offsets.dim() as i64 - 1;
        let c = dc * self.center_variance * &pwh + pc;
        let wh = (dwh * self.size_variance).exp() * pwh;
        Tensor::cat(&[c, wh], last)
    }

    /// Offsets → corner-form boxes.
    pub fn decode_corners(&self, offsets: &Tensor, priors: &Tensor) -> Tensor {
        center_to_corner(&self.decode(offsets, priors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn encode_decode_round_trip() {
        tch::manual_seed(3);
        let priors = Tensor::rand([50, 4], (Kind::Float, Device::Cpu)) * 0.5 + 0.1;
        let boxes = Tensor::rand([2, 50, 4], (Kind::Float, Device::Cpu)) * 0.6 + 0.05;
        let coder = BoxCoder::default();
        let enc = coder.encode(&boxes, &priors);
        assert_eq!(enc.size(), vec![2, 50, 4]);
        let back = coder.decode(&enc, &priors);
        assert!((back - &boxes).abs().max().double_value(&[]) < 1e-5);
        let corners = center_to_corner(&boxes);
        assert!((corner_to_center(&corners) - &boxes).abs().max().double_value(&[]) < 1e-6);
    }

    #[test]
    fn encoding_uses_the_variances() {
        let prior = Tensor::from_slice(&[0.5f32, 0.5, 0.2, 0.4]).view([1, 4]);
        let gt = Tensor::from_slice(&[0.52f32, 0.46, 0.2 * 1.5, 0.4]).view([1, 4]);
        let enc = BoxCoder::default().encode(&gt, &prior);
        let v: Vec<f32> = Vec::try_from(enc.view([-1])).unwrap();
        let expected = [0.02 / (0.1 * 0.2), -0.04 / (0.1 * 0.4), 1.5f32.ln() / 0.2, 0.0];
        for (a, b) in v.iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{v:?}");
        }
        let corner = center_to_corner(&prior);
        let corner: Vec<f32> = Vec::try_from(corner.view([-1])).unwrap();
        for (a, b) in corner.iter().zip([0.4, 0.3, 0.6, 0.7]) {
            assert!((a - b).abs() < 1e-6, "{corner:?}");
        }
    }
}

//! From the heads' outputs to detections: decode the offsets against the priors, softmax the logits,
//! then per class keep the scores above a threshold (at most `candidates_per_class` of them, the best),
//! suppress overlaps with NMS, and keep the `top_k` best detections of the image.
//!
//! [`postprocess`] does all of it on the predictions' device for the whole batch at once: the candidates
//! of every class are picked with one `topk`, and NMS runs over all images and classes together, boxes of
//! different classes never suppressing each other (torchvision's `batched_nms`; the class is a batch
//! dimension here rather than a coordinate offset, which needs no bound on the coordinates). As in
//! torchvision's CUDA NMS, the overlaps of every candidate pair are computed in parallel on the device
//! ([`suppression_mask`]) and the greedy scan over them runs on the host ([`greedy`]); only the
//! candidates (at most `candidates_per_class` per class, trimmed to the most any class has) and that mask
//! come back, not the `[B, P, C]` scores. [`postprocess_per_class`] is the former host loop over classes, kept as the reference.

use crate::box_coder::BoxCoder;
use anyhow::{bail, Result};
use skipblock_core::boxes::BBox;
use tch::{Device, Kind, Tensor};

pub use skipblock_pixels::predictions::{postprocess_image, Detection, PostprocessConfig};

/// Detections of each image of a batch, best first (ties: lower label first). `loc [B, P, 4]`,
/// `conf [B, P, C]` as the detector outputs them; `priors [P, 4]` centre form. On a GPU batched on the
/// device ([`postprocess_batched`]), on the CPU per class ([`postprocess_per_class`]).
pub fn postprocess(
    loc: &Tensor,
    conf: &Tensor,
    priors: &Tensor,
    coder: &BoxCoder,
    cfg: &PostprocessConfig,
) -> Result<Vec<Vec<Detection>>> {
    // The batched path pays for its all-pairs overlap matrix with one launch on a GPU; on the CPU the
    // loop per class measured 3× faster (docs/BENCHMARKS.md, `bench detect`). Same detections either way.
    if loc.device() == tch::Device::Cpu {
        return postprocess_per_class(loc, conf, priors, coder, cfg);
    }
    postprocess_batched(loc, conf, priors, coder, cfg)
}

/// [`postprocess`] batched over every image and class at once, on the outputs' device: one NMS over
/// class-offset boxes (torchvision's `batched_nms`), the overlap mask on the device, the greedy scan on
/// the host. What CUDA runs.
pub fn postprocess_batched(
    loc: &Tensor,
    conf: &Tensor,
    priors: &Tensor,
    coder: &BoxCoder,
    cfg: &PostprocessConfig,
) -> Result<Vec<Vec<Detection>>> {
    let (b, _, num_classes) = check_shapes(loc, conf, priors)?;
    let k = cfg.candidates_per_class.min(priors.size()[0] as usize) as i64;
    let mut out = vec![Vec::new(); b];
    if k == 0 || num_classes < 2 || b == 0 {
        return Ok(out);
    }
    let (k, vals, cand, mask) = tch::no_grad(|| {
        let priors = priors.to_device(loc.device()).to_kind(Kind::Float);
        let corners = coder.decode_corners(&loc.to_kind(Kind::Float), &priors).clamp(0.0, 1.0); // [B, P, 4]
        let probs = conf.to_kind(Kind::Float).softmax(2, Kind::Float);
        let c1 = num_classes as i64 - 1;
        // Foreground scores per class [B, C−1, P]; at or below the threshold, or on a degenerate box: out.
        let valid_box = corners
            .select(2, 2)
            .gt_tensor(&corners.select(2, 0))
            .logical_and(&corners.select(2, 3).gt_tensor(&corners.select(2, 1)))
            .unsqueeze(1);
        let s = probs.narrow(2, 1, c1).transpose(1, 2);
        let s =
            s.masked_fill(&s.le(cfg.score_threshold as f64).logical_or(&valid_box.logical_not()), f64::NEG_INFINITY);
        let (vals, idx) = s.topk(k, 2, true, true); // [B, C−1, k], best first, the invalid (−∞) last
                                                    // Only as many ranks as the class with the most candidates has.
        let k = vals.isfinite().sum_dim_intlist(2, false, Kind::Int64).max().int64_value(&[]);
        let (vals, idx) = (vals.narrow(2, 0, k), idx.narrow(2, 0, k));
        let p = corners.size()[1];
        let cand = corners.unsqueeze(1).expand([b as i64, c1, p, 4], false).gather(
            2,
            &idx.unsqueeze(3).expand([b as i64, c1, k, 4], false),
            false,
        ); // [B, C−1, k, 4]
        let mask = suppression_mask(&cand, cfg.nms_iou as f64);
        (k, to_vec(&vals), to_vec(&cand), mask.to_device(Device::Cpu))
    });
    let (vals, cand) = (vals?, cand?);
    if k == 0 {
        return Ok(out);
    }
    let (k, c1) = (k as usize, num_classes - 1);
    let mask = Vec::<bool>::try_from(mask.reshape([-1]))?;
    for (slice, (scores, masks)) in vals.chunks_exact(k).zip(mask.chunks_exact(k * k)).enumerate() {
        let (image, label) = (slice / c1, slice % c1 + 1);
        let valid = scores.iter().take_while(|s| s.is_finite()).count();
        for r in greedy(masks, valid, k) {
            let c = &cand[(slice * k + r) * 4..(slice * k + r) * 4 + 4];
            out[image].push(Detection { bbox: BBox::new(c[0], c[1], c[2], c[3]), label, score: scores[r] });
        }
    }
    for dets in &mut out {
        dets.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.label.cmp(&b.label)));
        dets.truncate(cfg.top_k);
    }
    Ok(out)
}

/// For each `[k, 4]` slice of `boxes [..., k, 4]` (one image and class, best first), which boxes each box
/// would suppress: `[..., k, k]` bool, entry `[i, j]` true when `j > i` and IoU(i, j) > `iou`. Computed for
/// all slices at once on the boxes' device (the part of NMS that is parallel).
pub fn suppression_mask(boxes: &Tensor, iou: f64) -> Tensor {
    let k = boxes.size()[boxes.dim() - 2];
    let area = (boxes.select(-1, 2) - boxes.select(-1, 0)).clamp_min(0.0)
        * (boxes.select(-1, 3) - boxes.select(-1, 1)).clamp_min(0.0);
    let lt = boxes.narrow(-1, 0, 2).unsqueeze(-2).maximum(&boxes.narrow(-1, 0, 2).unsqueeze(-3));
    let rb = boxes.narrow(-1, 2, 2).unsqueeze(-2).minimum(&boxes.narrow(-1, 2, 2).unsqueeze(-3));
    let wh = (rb - lt).clamp_min(0.0);
    let inter = wh.select(-1, 0) * wh.select(-1, 1);
    let union = area.unsqueeze(-1) + area.unsqueeze(-2) - &inter;
    let overlap = (&inter / union.clamp_min(f64::MIN_POSITIVE)).gt(iou).logical_and(&union.gt(0.0));
    overlap.logical_and(&Tensor::ones([k, k], (Kind::Bool, boxes.device())).triu(1))
}

/// The greedy pass over one slice's `k × k` [`suppression_mask`] (row-major), the first `valid` ranks
/// being real candidates: the ranks kept, best first. As torchvision's CUDA NMS: the overlaps in parallel
/// on the device, this sequential scan on the host.
pub fn greedy(mask: &[bool], valid: usize, k: usize) -> Vec<usize> {
    let mut removed = vec![false; valid];
    let mut keep = Vec::new();
    for i in 0..valid {
        if removed[i] {
            continue;
        }
        keep.push(i);
        for (j, r) in removed.iter_mut().enumerate().skip(i + 1) {
            *r |= mask[i * k + j];
        }
    }
    keep
}

fn check_shapes(loc: &Tensor, conf: &Tensor, priors: &Tensor) -> Result<(usize, usize, usize)> {
    let (ls, cs) = (loc.size(), conf.size());
    let p = priors.size();
    if ls.len() != 3 || ls[2] != 4 || cs.len() != 3 || cs[..2] != ls[..2] || p != [ls[1], 4] {
        bail!(
            "postprocess: predictions {ls:?} (loc) and {cs:?} (conf) do not fit {} priors",
            p.first().copied().unwrap_or(0)
        );
    }
    Ok((cs[0] as usize, cs[1] as usize, cs[2] as usize))
}

/// The same detections as [`postprocess`] computed the former way: every prediction copied to the host,
/// then a loop over images and classes with NMS per class. The reference of tests and `bench detect`.
pub fn postprocess_per_class(
    loc: &Tensor,
    conf: &Tensor,
    priors: &Tensor,
    coder: &BoxCoder,
    cfg: &PostprocessConfig,
) -> Result<Vec<Vec<Detection>>> {
    let (b, num_priors, num_classes) = check_shapes(loc, conf, priors)?;
    let (boxes, scores) = tch::no_grad(|| {
        let priors = priors.to_device(loc.device()).to_kind(Kind::Float);
        let corners = coder.decode_corners(&loc.to_kind(Kind::Float), &priors).clamp(0.0, 1.0);
        let probs = conf.to_kind(Kind::Float).softmax(2, Kind::Float);
        (to_vec(&corners), to_vec(&probs))
    });
    let (boxes, scores) = (boxes?, scores?);
    let mut out = Vec::with_capacity(b);
    for i in 0..b {
        let bx: Vec<BBox> = boxes[i * num_priors * 4..(i + 1) * num_priors * 4]
            .chunks_exact(4)
            .map(|c| BBox::new(c[0], c[1], c[2], c[3]))
            .collect();
        let sc = &scores[i * num_priors * num_classes..(i + 1) * num_priors * num_classes];
        out.push(postprocess_image(&bx, sc, num_classes, cfg));
    }
    Ok(out)
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.to_device(Device::Cpu).contiguous().view([-1]))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skipblock_core::boxes;

    /// Four priors (centre form): two nearly identical, one elsewhere, one in a corner.
    fn priors() -> Tensor {
        Tensor::from_slice(&[0.3f32, 0.3, 0.2, 0.2, 0.31, 0.3, 0.2, 0.2, 0.7, 0.7, 0.3, 0.3, 0.1, 0.9, 0.1, 0.1])
            .view([4, 4])
    }

    /// Logits that give class `c` probability ≈ 1 (or spread evenly when `c` is None).
    fn logits(rows: &[Option<usize>], classes: usize) -> Tensor {
        let v: Vec<f32> =
            rows.iter().flat_map(|r| (0..classes).map(move |c| if *r == Some(c) { 10.0 } else { 0.0 })).collect();
        Tensor::from_slice(&v).view([1, rows.len() as i64, classes as i64])
    }

    #[test]
    fn finds_the_boxes_and_suppresses_duplicates() {
        let conf = logits(&[Some(1), Some(1), Some(2), Some(0)], 3);
        // The second duplicate is a little less sure of class 1.
        let _ = conf.get(0).get(1).get(1).fill_(9.0);
        let loc = Tensor::zeros([1, 4, 4], (Kind::Float, Device::Cpu));
        let cfg = PostprocessConfig { score_threshold: 0.5, ..Default::default() };
        let dets = postprocess(&loc, &conf, &priors(), &BoxCoder::default(), &cfg).unwrap();
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].label, 1);
        assert!((d[0].bbox.xmin - 0.2).abs() < 1e-6 && (d[0].bbox.ymax - 0.4).abs() < 1e-6, "{d:?}");
        assert!(d[0].score > 0.99);
        assert_eq!(d[1].label, 2);
        assert!((d[1].bbox.xmin - 0.55).abs() < 1e-6 && (d[1].bbox.xmax - 0.85).abs() < 1e-6, "{d:?}");
        assert!(d[0].score >= d[1].score);
    }

    #[test]
    fn offsets_move_the_boxes_and_limits_apply() {
        // Shift prior 3 right by half its width: cx offset = 0.5 / 0.1 (the centre variance).
        let loc = Tensor::zeros([1, 4, 4], (Kind::Float, Device::Cpu));
        let _ = loc.get(0).get(3).get(0).fill_(5.0);
        let conf = logits(&[Some(1), Some(1), Some(2), Some(2)], 3);
        let coder = BoxCoder::default();
        let all = postprocess(&loc, &conf, &priors(), &coder, &PostprocessConfig::default()).unwrap();
        let moved = all[0].iter().find(|d| d.label == 2 && d.bbox.ymin > 0.8).expect("the corner box");
        assert!((moved.bbox.xmin - 0.1).abs() < 1e-6 && (moved.bbox.xmax - 0.2).abs() < 1e-6, "{moved:?}");
        // The low (≈2e-5) probabilities of the other classes are below 0.01: 3 boxes.
        assert_eq!(all[0].len(), 3, "{:?}", all[0]);
        let top1 = PostprocessConfig { top_k: 1, ..Default::default() };
        assert_eq!(postprocess(&loc, &conf, &priors(), &coder, &top1).unwrap()[0].len(), 1);
        let low = PostprocessConfig { score_threshold: 0.0, ..Default::default() };
        // With no threshold, class 2 also gets the two duplicates' prior (one after NMS) and vice versa.
        assert_eq!(postprocess(&loc, &conf, &priors(), &coder, &low).unwrap()[0].len(), 6);
        let one_candidate = PostprocessConfig { candidates_per_class: 1, ..Default::default() };
        assert_eq!(postprocess(&loc, &conf, &priors(), &coder, &one_candidate).unwrap()[0].len(), 2);
    }

    #[test]
    fn a_full_ssd300_batch_is_quick_and_well_formed() {
        tch::manual_seed(5);
        let cfg = crate::anchors::PriorConfig::default();
        let priors = crate::anchors::priors(&cfg).unwrap();
        // Near-uniform logits over 21 classes: every prior passes the 0.01 threshold for every class.
        let conf = Tensor::randn([4, 3000, 21], (Kind::Float, Device::Cpu)) * 0.1;
        let loc = Tensor::randn([4, 3000, 4], (Kind::Float, Device::Cpu)) * 0.5;
        let start = std::time::Instant::now();
        let dets = postprocess(&loc, &conf, &priors, &BoxCoder::default(), &PostprocessConfig::default()).unwrap();
        let took = start.elapsed();
        println!("postprocess of 4 x 3000 priors x 21 classes: {took:?}");
        assert!(took.as_secs_f64() < 5.0, "{took:?}");
        for d in &dets {
            assert_eq!(d.len(), 200);
            assert!(d.windows(2).all(|w| w[0].score >= w[1].score));
            assert!(d.iter().all(|x| (1..21).contains(&x.label) && x.score > 0.01 && x.bbox.is_valid()));
            assert!(d.iter().all(|x| x.bbox.xmin >= 0.0 && x.bbox.ymax <= 1.0));
        }
    }

    /// Detections in a canonical order (the two paths may order exact score ties differently).
    fn canonical(mut d: Vec<Detection>) -> Vec<(usize, u32, [u32; 4])> {
        d.sort_by(|a, b| a.label.cmp(&b.label).then(b.score.total_cmp(&a.score)));
        d.iter().map(|x| (x.label, x.score.to_bits(), x.bbox.to_array().map(f32::to_bits))).collect()
    }

    #[test]
    fn batched_nms_on_the_device_gives_the_per_class_detections() {
        tch::manual_seed(11);
        // Few priors crowded in a small area so that NMS has much to suppress; logits from peaked to flat.
        let priors = Tensor::cat(
            &[
                Tensor::rand([300, 2], (Kind::Float, Device::Cpu)) * 0.5 + 0.2,
                Tensor::rand([300, 2], (Kind::Float, Device::Cpu)) * 0.3 + 0.05,
            ],
            1,
        );
        let coder = BoxCoder::default();
        let mut compared = 0;
        for (spread, iou, threshold, per_class, top_k) in [
            (3.0, 0.45, 0.01, 200, 200),
            (0.3, 0.45, 0.01, 50, 100),
            (5.0, 0.3, 0.2, 300, 30),
            (1.0, 0.0, 0.05, 20, 500),
        ] {
            let conf = Tensor::randn([3, 300, 6], (Kind::Float, Device::Cpu)) * spread;
            let loc = Tensor::randn([3, 300, 4], (Kind::Float, Device::Cpu)) * 0.5;
            let cfg =
                PostprocessConfig { score_threshold: threshold, nms_iou: iou, top_k, candidates_per_class: per_class };
            let new = postprocess_batched(&loc, &conf, &priors, &coder, &cfg).unwrap();
            let old = postprocess_per_class(&loc, &conf, &priors, &coder, &cfg).unwrap();
            for (n, o) in new.into_iter().zip(old) {
                assert!(n.windows(2).all(|w| w[0].score >= w[1].score), "best first");
                compared += n.len();
                assert_eq!(canonical(n), canonical(o), "spread {spread}, iou {iou}");
            }
        }
        assert!(compared > 500, "{compared} detections compared");
        // NMS alone: the mask and the scan equal the host NMS on random boxes, duplicates and ties included.
        for seed in 0..20 {
            tch::manual_seed(seed);
            let lo = Tensor::rand([60, 2], (Kind::Float, Device::Cpu)) * 0.6;
            let mut boxes = boxes::from_tensor(&Tensor::cat(
                &[lo.shallow_clone(), &lo + Tensor::rand([60, 2], (Kind::Float, Device::Cpu)) * 0.4 + 0.01],
                1,
            ));
            boxes[7] = boxes[3];
            let mut scores: Vec<f32> = Vec::try_from(Tensor::rand([60], (Kind::Float, Device::Cpu))).unwrap();
            scores[9] = scores[4];
            let greedy = boxes::nms(&boxes, &scores, 0.4);
            let mut order: Vec<usize> = (0..60).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let sorted: Vec<BBox> = order.iter().map(|&i| boxes[i]).collect();
            let mask = Vec::<bool>::try_from(suppression_mask(&boxes::to_tensor(&sorted), 0.4).reshape([-1])).unwrap();
            let batched: Vec<usize> = super::greedy(&mask, 60, 60).into_iter().map(|r| order[r]).collect();
            assert_eq!(batched, greedy, "seed {seed}");
            let first: Vec<usize> = super::greedy(&mask, 10, 60).into_iter().map(|r| order[r]).collect();
            assert_eq!(
                first,
                boxes::nms(
                    &order[..10].iter().map(|&i| boxes[i]).collect::<Vec<_>>(),
                    &order[..10].iter().map(|&i| scores[i]).collect::<Vec<_>>(),
                    0.4
                )
                .into_iter()
                .map(|r| order[r])
                .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let loc = Tensor::zeros([1, 3, 4], (Kind::Float, Device::Cpu));
        let conf = Tensor::zeros([1, 3, 3], (Kind::Float, Device::Cpu));
        let err = postprocess(&loc, &conf, &priors(), &BoxCoder::default(), &PostprocessConfig::default()).unwrap_err();
        assert!(err.to_string().contains("4 priors"), "{err}");
        let err = postprocess_per_class(&loc, &conf, &priors(), &BoxCoder::default(), &PostprocessConfig::default())
            .unwrap_err();
        assert!(err.to_string().contains("4 priors"), "{err}");
    }
}

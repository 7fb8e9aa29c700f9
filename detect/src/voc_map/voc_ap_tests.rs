//! Hand-worked cases for [`super::mean_average_precision`] and [`super::voc_ap`].

use super::*;

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}
fn gt(image: &str, class: usize, bbox: [f32; 4], difficult: bool) -> GroundTruth {
    GroundTruth { image_id: image.into(), class, bbox, difficult }
}
fn det(image: &str, class: usize, score: f32, bbox: [f32; 4]) -> DetectionRecord {
    DetectionRecord { image_id: image.into(), class, score, bbox }
}
const B: [f32; 4] = [10.0, 10.0, 50.0, 50.0];
const FAR: [f32; 4] = [200.0, 200.0, 240.0, 240.0];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Four GTs (images a–d); detections by score: TP (a), FP (image z has no GT), TP (b), FP (c, no
/// overlap), TP (c); d is never found.  npos = 4.
///   tp = 1 1 2 2 3, fp = 0 1 1 2 2
///   recall    = .25 .25 .5  .5 .75
///   precision = 1   .5  2/3 .5 .6
/// VOC07: t = 0, .1, .2 → max precision 1; t = .3, .4, .5 → 2/3 (recall .5 ≥ .5 holds: 5·0.1 == 0.5);
///        t = .6, .7 → .6; t = .8, .9, 1 → 0.  AP = (3·1 + 3·2/3 + 2·.6) / 11 = 6.2 / 11.
/// VOC12: envelope over mrec = 0 .25 .25 .5 .5 .75 1 is mpre = 1 1 2/3 2/3 .6 .6 0;
///        AP = .25·1 + .25·2/3 + .25·.6 + .25·0 = 17/30.
#[test]
fn hand_worked_pr_sequence_both_metrics() {
    let gts: Vec<_> = ["a", "b", "c", "d"].iter().map(|i| gt(i, 0, B, false)).collect();
    let dets =
        vec![det("c", 0, 0.5, B), det("a", 0, 0.9, B), det("z", 0, 0.8, B), det("b", 0, 0.7, B), det("c", 0, 0.6, FAR)];
    let r07 = mean_average_precision(&gts, &dets, &names(&["x"]), Metric::Voc07, 0.5).unwrap();
    let c = &r07.per_class[0];
    assert_eq!((c.num_gt, c.num_det), (4, 5));
    assert_eq!(c.recall, vec![0.25, 0.25, 0.5, 0.5, 0.75]);
    let want_prec = [1.0, 0.5, 2.0 / 3.0, 0.5, 0.6];
    assert!(c.precision.iter().zip(want_prec).all(|(p, w)| (p - w as f32).abs() < 1e-7), "{:?}", c.precision);
    assert!(close(c.ap, 6.2 / 11.0), "{}", c.ap);
    assert!(close(r07.map, 6.2 / 11.0));
    let r12 = mean_average_precision(&gts, &dets, &names(&["x"]), Metric::Voc12, 0.5).unwrap();
    assert!(close(r12.per_class[0].ap, 17.0 / 30.0), "{}", r12.per_class[0].ap);
}

/// The 11 thresholds are `i * 0.1` in f64 as `np.arange` makes them: t₃ = 0.30000000000000004, so a
/// recall of exactly 3/10 does not reach it (AP 3/11, not 4/11).
#[test]
fn eleven_point_thresholds_follow_numpy_arange() {
    assert!(close(voc_ap(&[3.0 / 10.0], &[1.0], Metric::Voc07), 3.0 / 11.0));
    assert!(close(voc_ap(&[0.5], &[1.0], Metric::Voc07), 6.0 / 11.0));
    assert!(close(voc_ap(&[1.0], &[1.0], Metric::Voc07), 1.0));
    assert_eq!(voc_ap(&[], &[], Metric::Voc07), 0.0);
    assert_eq!(voc_ap(&[], &[], Metric::Voc12), 0.0);
    // Area: a single point (recall .5, precision 1) covers half the recall axis.
    assert!(close(voc_ap(&[0.5], &[1.0], Metric::Voc12), 0.5));
}

/// Equal scores keep input order: FP then TP gives recall 0, 1 / precision 0, .5 (area .5); TP then FP
/// gives recall 1, 1 / precision 1, .5 (area 1).
#[test]
fn ties_keep_input_order() {
    let gts = vec![gt("a", 0, B, false)];
    let fp_first = vec![det("a", 0, 0.9, FAR), det("a", 0, 0.9, B)];
    let r = mean_average_precision(&gts, &fp_first, &names(&["x"]), Metric::Voc12, 0.5).unwrap();
    assert_eq!(r.per_class[0].precision, vec![0.0, 0.5]);
    assert_eq!(r.per_class[0].recall, vec![0.0, 1.0]);
    assert!(close(r.per_class[0].ap, 0.5));
    let tp_first = vec![det("a", 0, 0.9, B), det("a", 0, 0.9, FAR)];
    let r = mean_average_precision(&gts, &tp_first, &names(&["x"]), Metric::Voc12, 0.5).unwrap();
    assert_eq!(r.per_class[0].precision, vec![1.0, 0.5]);
    assert!(close(r.per_class[0].ap, 1.0));
}

/// A detection whose best overlap is a difficult GT counts neither way (its row has tp = fp = 0, as in
/// the devkit). npos = 2 (the difficult GT does not count): recall 0, .5 and precision 0, 1 →
/// VOC07 AP = 6/11 (t = 0 … .5), VOC12 AP = .5.
#[test]
fn difficult_matches_are_ignored() {
    let gts = vec![gt("a", 0, B, true), gt("a", 0, [12.0, 10.0, 52.0, 50.0], false), gt("b", 0, B, false)];
    // On a: the exact copy of the difficult GT overlaps it best (1.0 > 0.9) → ignored.
    let dets = vec![det("a", 0, 0.9, B), det("b", 0, 0.8, B)];
    for metric in [Metric::Voc07, Metric::Voc12] {
        let r = mean_average_precision(&gts, &dets, &names(&["x"]), metric, 0.5).unwrap();
        let c = &r.per_class[0];
        assert_eq!((c.num_gt, c.num_det), (2, 2));
        assert_eq!(c.precision, vec![0.0, 1.0]);
        assert_eq!(c.recall, vec![0.0, 0.5]);
        assert!(close(c.ap, if metric == Metric::Voc07 { 6.0 / 11.0 } else { 0.5 }), "{}", c.ap);
    }
    // A class with difficult objects only: AP 0, num_gt 0, still counted in the mAP.
    let r =
        mean_average_precision(&[gt("a", 1, B, true)], &[det("a", 1, 0.9, B)], &names(&["x", "y"]), Metric::Voc12, 0.5)
            .unwrap();
    assert_eq!((r.per_class[1].ap, r.per_class[1].num_gt, r.per_class[1].in_map), (0.0, 0, true));
    assert!(r.per_class[1].recall.is_empty());
    assert!(!r.per_class[0].in_map);
    assert_eq!(r.map, 0.0);
}

#[test]
fn duplicates_are_false_positives() {
    let gts = vec![gt("a", 0, B, false)];
    let dets = vec![det("a", 0, 0.9, B), det("a", 0, 0.8, [11.0, 10.0, 50.0, 50.0])];
    let r = mean_average_precision(&gts, &dets, &names(&["x"]), Metric::Voc12, 0.5).unwrap();
    assert_eq!(r.per_class[0].precision, vec![1.0, 0.5]);
    assert!(close(r.per_class[0].ap, 1.0));
}

/// The devkit compares with the best-overlapping GT only: when it is already matched, the detection is
/// a false positive even if another unmatched GT overlaps it by more than the threshold.
#[test]
fn only_the_best_overlap_is_considered() {
    let (big, inner) = ([1.0, 1.0, 100.0, 100.0], [1.0, 1.0, 100.0, 90.0]);
    let gts = vec![gt("a", 0, big, false), gt("a", 0, inner, false)];
    let dets = vec![det("a", 0, 0.9, big), det("a", 0, 0.8, big)];
    let r = mean_average_precision(&gts, &dets, &names(&["x"]), Metric::Voc12, 0.5).unwrap();
    assert_eq!(r.per_class[0].precision, vec![1.0, 0.5]);
    assert_eq!(r.per_class[0].recall, vec![0.5, 0.5]);
}

/// GT 1..10 × 1..10 (100 px); detection 1..10 × 1..20 (200 px) overlaps it in 100 px: IoU exactly 0.5,
/// which is not "> 0.5".
#[test]
fn threshold_is_strict() {
    let gts = vec![gt("a", 0, [1.0, 1.0, 10.0, 10.0], false)];
    let exact_half = vec![det("a", 0, 0.9, [1.0, 1.0, 10.0, 20.0])];
    let r = mean_average_precision(&gts, &exact_half, &names(&["x"]), Metric::Voc07, 0.5).unwrap();
    assert_eq!(r.per_class[0].precision, vec![0.0]);
    assert_eq!(r.per_class[0].ap, 0.0);
    let r = mean_average_precision(&gts, &exact_half, &names(&["x"]), Metric::Voc07, 0.49).unwrap();
    assert!(close(r.per_class[0].ap, 1.0));
    // 100 / 190 > 0.5.
    let r =
        mean_average_precision(&gts, &[det("a", 0, 0.9, [1.0, 1.0, 10.0, 19.0])], &names(&["x"]), Metric::Voc07, 0.5)
            .unwrap();
    assert!(close(r.per_class[0].ap, 1.0));
}

/// Class x: found (AP 1); class y: GT but no detections (AP 0, counted); class z: nothing (left out).
#[test]
fn classes_without_detections_or_ground_truth() {
    let gts = vec![gt("a", 0, B, false), gt("a", 1, FAR, false)];
    let r = mean_average_precision(&gts, &[det("a", 0, 0.3, B)], &names(&["x", "y", "z"]), Metric::Voc12, 0.5).unwrap();
    let y = &r.per_class[1];
    assert_eq!((y.ap, y.num_gt, y.num_det, y.in_map), (0.0, 1, 0, true));
    assert!(!r.per_class[2].in_map);
    assert!(close(r.map, 0.5));
    // An empty evaluation is not an error.
    assert_eq!(mean_average_precision(&[], &[], &names(&["x"]), Metric::Voc07, 0.5).unwrap().map, 0.0);
}

#[test]
fn bad_input_is_an_error() {
    let e = mean_average_precision(&[gt("a", 3, B, false)], &[], &names(&["x"]), Metric::Voc07, 0.5).unwrap_err();
    assert!(e.to_string().contains("class index 3"), "{e}");
    let e =
        mean_average_precision(&[], &[det("img7", 0, f32::NAN, B)], &names(&["x"]), Metric::Voc07, 0.5).unwrap_err();
    assert!(e.to_string().contains("img7"), "{e}");
}

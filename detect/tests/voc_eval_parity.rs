//! Parity of `skipblock_detect::voc_map` with the Python reference `tests/python/voc_eval_ref.py` (written
//! like py-faster-rcnn's `voc_eval.py`) on a generated VOC2007-layout dataset: XML annotations with
//! difficult objects and an empty image, detections with jitter, duplicates, false positives and tied
//! scores, written and read back through the result-file writer and reader. Every class AP and the mAP
//! must agree to 1e-6 for both metrics.
//!
//! Box coordinates are multiples of 0.5 so that f32 (Rust) and f64 (Python) see the same numbers.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use skipblock_data::voc::{write_annotation, VocAnnotation, VocObject, VOC_CLASSES};
use skipblock_detect::voc_map::{
    mean_average_precision, read_result_files, write_result_files, DetectionRecord, EvalResult, GroundTruth, Metric,
};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Writes `Annotations/<id>.xml` and `ImageSets/Main/test.txt` under `root`; `objects[i]` are the
/// (class name, box, difficult) of image i.
fn write_voc(root: &Path, objects: &[Vec<(&str, [u32; 4], bool)>]) {
    std::fs::create_dir_all(root.join("Annotations")).unwrap();
    std::fs::create_dir_all(root.join("ImageSets/Main")).unwrap();
    let mut list = String::new();
    for (i, objs) in objects.iter().enumerate() {
        let id = format!("{:06}", i + 1);
        writeln!(list, "{id}").unwrap();
        let mut annotation = VocAnnotation::new(format!("{id}.jpg"), 500, 400);
        annotation.folder = "VOC2007".into();
        annotation.objects = objs
            .iter()
            .map(|&(name, b, difficult)| VocObject { difficult, ..VocObject::new(name, b.map(|v| v as f32)) })
            .collect();
        write_annotation(&root.join(format!("Annotations/{id}.xml")), &annotation).unwrap();
    }
    std::fs::write(root.join("ImageSets/Main/test.txt"), list).unwrap();
}

/// Test-only reader of the XML written above (string search; the real parser lives in the data crate).
fn read_voc(root: &Path, classes: &[String]) -> Vec<GroundTruth> {
    let tag = |s: &str, t: &str| -> String {
        let open = format!("<{t}>");
        let start = s.find(&open).unwrap_or_else(|| panic!("no <{t}>")) + open.len();
        s[start..start + s[start..].find(&format!("</{t}>")).unwrap()].trim().to_string()
    };
    let mut gts = Vec::new();
    for id in std::fs::read_to_string(root.join("ImageSets/Main/test.txt")).unwrap().lines() {
        let xml = std::fs::read_to_string(root.join(format!("Annotations/{id}.xml"))).unwrap();
        for obj in xml.split("<object>").skip(1) {
            let class = classes.iter().position(|c| *c == tag(obj, "name")).unwrap();
            let bbox = ["xmin", "ymin", "xmax", "ymax"].map(|t| tag(obj, t).parse::<f32>().unwrap());
            gts.push(GroundTruth { image_id: id.to_string(), class, bbox, difficult: tag(obj, "difficult") == "1" });
        }
    }
    gts
}

/// Random objects of classes `0..classes_with_gt`, plus difficult-only objects of class
/// `difficult_only` when given; image 0 has none.
fn random_objects<'a>(
    rng: &mut StdRng,
    n_images: usize,
    names: &[&'a str],
    classes_with_gt: usize,
    difficult_only: Option<usize>,
    max_objects: usize,
) -> Vec<Vec<(&'a str, [u32; 4], bool)>> {
    (0..n_images)
        .map(|i| {
            let n = if i == 0 { 0 } else { rng.gen_range(1..=max_objects) };
            (0..n)
                .map(|_| {
                    let (x, y) = (rng.gen_range(1..400u32), rng.gen_range(1..300u32));
                    let b = [x, y, x + rng.gen_range(8..100), y + rng.gen_range(8..100)];
                    match difficult_only.filter(|_| rng.gen_bool(0.1)) {
                        Some(c) => (names[c], b, true),
                        None => (names[rng.gen_range(0..classes_with_gt)], b, rng.gen_bool(0.15)),
                    }
                })
                .collect()
        })
        .collect()
}

/// A multiple of 0.5 in [-r, r].
fn jitter(rng: &mut StdRng, r: i32) -> f32 {
    rng.gen_range(-2 * r..=2 * r) as f32 * 0.5
}

/// A score: coarse (k / 20, many ties) or fine (6 decimals), as the result file will hold it.
fn score(rng: &mut StdRng) -> f32 {
    if rng.gen_bool(0.5) {
        rng.gen_range(0..=20) as f32 / 20.0
    } else {
        rng.gen_range(0..1_000_000) as f32 / 1e6
    }
}

/// Jittered copies of the ground truth (some missed, some duplicated) and `fp_per_image` random false
/// positives per image of classes `fp_classes`.
fn random_detections(
    rng: &mut StdRng,
    gts: &[GroundTruth],
    n_images: usize,
    fp_classes: &[usize],
    fp_per_image: usize,
) -> Vec<DetectionRecord> {
    let mut dets = Vec::new();
    let push_copy = |rng: &mut StdRng, g: &GroundTruth, dets: &mut Vec<DetectionRecord>| {
        let [x0, y0, x1, y1] = g.bbox;
        let (nx0, ny0) = (x0 + jitter(rng, 6), y0 + jitter(rng, 6));
        let bbox = [nx0, ny0, (x1 + jitter(rng, 6)).max(nx0 + 1.0), (y1 + jitter(rng, 6)).max(ny0 + 1.0)];
        dets.push(DetectionRecord { image_id: g.image_id.clone(), class: g.class, score: score(rng), bbox });
    };
    for g in gts {
        if rng.gen_bool(0.85) {
            push_copy(rng, g, &mut dets);
        }
        if rng.gen_bool(0.2) {
            push_copy(rng, g, &mut dets);
        }
        if rng.gen_bool(0.1) {
            // Twice as tall in VOC's inclusive pixels: IoU exactly 0.5, not a match at threshold 0.5.
            let [x0, y0, x1, y1] = g.bbox;
            let bbox = [x0, y0, x1, y1 + (y1 - y0 + 1.0)];
            dets.push(DetectionRecord { image_id: g.image_id.clone(), class: g.class, score: score(rng), bbox });
        }
    }
    for i in 0..n_images {
        for _ in 0..fp_per_image {
            let (x, y) = (rng.gen_range(1..400) as f32, rng.gen_range(1..300) as f32);
            let bbox = [x, y, x + rng.gen_range(10..120) as f32 + 0.5, y + rng.gen_range(10..120) as f32];
            let class = fp_classes[rng.gen_range(0..fp_classes.len())];
            dets.push(DetectionRecord { image_id: format!("{:06}", i + 1), class, score: score(rng), bbox });
        }
    }
    dets
}

/// Runs the Python reference; (class → AP, mAP).
fn python_reference(
    root: &Path,
    dets: &Path,
    classes: &[String],
    use07: bool,
    iou: f32,
) -> (HashMap<String, f64>, f64) {
    let python = repo_root().join(".venv/bin/python");
    let mut cmd = Command::new(&python);
    cmd.arg(repo_root().join("tests/python/voc_eval_ref.py"))
        .arg("--root")
        .arg(root)
        .args(["--split", "test", "--detections"])
        .arg(dets);
    cmd.args(["--classes", &classes.join(","), "--iou", &iou.to_string()]);
    if use07 {
        cmd.arg("--use07");
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(out.status.success(), "voc_eval_ref.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("voc_eval_ref.py prints JSON");
    let aps = v["aps"].as_object().unwrap().iter().map(|(k, a)| (k.clone(), a.as_f64().unwrap())).collect();
    (aps, v["map"].as_f64().unwrap())
}

fn assert_parity(rust: &EvalResult, python: &(HashMap<String, f64>, f64), what: &str) {
    for c in &rust.per_class {
        let py = python.0[&c.name];
        assert!((c.ap - py).abs() < 1e-6, "{what}: class {} AP {} (Rust) vs {py} (Python)", c.name, c.ap);
    }
    assert!((rust.map - python.1).abs() < 1e-6, "{what}: mAP {} (Rust) vs {} (Python)", rust.map, python.1);
}

#[test]
fn matches_python_reference_on_generated_voc() {
    // Classes 0–4 have objects (some difficult), bus (5) difficult objects only, cow (6) nothing at
    // all (left out of the mAP), dog (7) false positives only (AP 0, counted).
    let names: Vec<&str> = vec!["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "cow", "dog"];
    let classes: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut rng = StdRng::seed_from_u64(2007);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("VOCdevkit/VOC2007");
    write_voc(&root, &random_objects(&mut rng, 30, &names, 5, Some(5), 6));
    let gts = read_voc(&root, &classes);
    assert!(gts.iter().any(|g| g.difficult) && gts.iter().any(|g| g.class == 5));
    let dets = random_detections(&mut rng, &gts, 30, &[0, 1, 2, 3, 4, 5, 7], 3);
    let dir = tmp.path().join("results");
    write_result_files(&dir, "test", &classes, &dets).unwrap();
    let back = read_result_files(&dir, &classes).unwrap();
    assert_eq!(back.len(), dets.len());

    for (metric, iou) in [(Metric::Voc07, 0.5), (Metric::Voc12, 0.5), (Metric::Voc12, 0.7)] {
        let rust = mean_average_precision(&gts, &back, &classes, metric, iou).unwrap();
        let python = python_reference(&root, &dir, &classes, metric == Metric::Voc07, iou);
        assert_parity(&rust, &python, &format!("{metric:?} at IoU {iou}"));
        assert!(!rust.per_class[6].in_map && rust.per_class[7].in_map && rust.per_class[7].num_det > 0);
        println!("{metric:?} at IoU {iou}: mAP {:.4}", rust.map);
        assert!(rust.map > 0.1 && rust.map < 0.9, "{metric:?}: implausible mAP {}", rust.map);
    }
}

/// The benchmark (run with `--ignored --nocapture`): 5,000 images × 100 detections over the 20 VOC
/// classes, timed in Rust and Python, and still in parity.
#[test]
#[ignore]
fn large_scale_timing_and_parity() {
    let classes: Vec<String> = VOC_CLASSES.iter().map(|s| s.to_string()).collect();
    let mut rng = StdRng::seed_from_u64(5000);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("VOCdevkit/VOC2007");
    let n = 5000;
    write_voc(&root, &random_objects(&mut rng, n, &VOC_CLASSES, 20, None, 5));
    let gts = read_voc(&root, &classes);
    let mut dets = random_detections(&mut rng, &gts, n, &(0..20).collect::<Vec<_>>(), 0);
    let mut per_image: HashMap<String, usize> = HashMap::new();
    dets.iter().for_each(|d| *per_image.entry(d.image_id.clone()).or_default() += 1);
    // Fill every image up to 100 detections with false positives.
    for i in 0..n {
        let have = per_image.get(&format!("{:06}", i + 1)).copied().unwrap_or(0);
        let fps = random_detections(&mut rng, &[], 1, &(0..20).collect::<Vec<_>>(), 100 - have.min(100));
        dets.extend(fps.into_iter().map(|d| DetectionRecord { image_id: format!("{:06}", i + 1), ..d }));
    }
    assert_eq!(dets.len(), n * 100);
    let dir = tmp.path().join("results");
    write_result_files(&dir, "test", &classes, &dets).unwrap();
    let dets = read_result_files(&dir, &classes).unwrap();
    for metric in [Metric::Voc07, Metric::Voc12] {
        let t = Instant::now();
        let rust = mean_average_precision(&gts, &dets, &classes, metric, 0.5).unwrap();
        let rust_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let python = python_reference(&root, &dir, &classes, metric == Metric::Voc07, 0.5);
        let py_s = t.elapsed().as_secs_f64();
        println!(
            "{metric:?}: {} GT, {} detections: evaluate {rust_s:.3} s, voc_eval_ref.py {py_s:.1} s, mAP {:.4}",
            gts.len(),
            dets.len(),
            rust.map
        );
        assert_parity(&rust, &python, &format!("{metric:?}"));
    }
}

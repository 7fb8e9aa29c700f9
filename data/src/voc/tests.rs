//! Tests of the VOC dataset, check and detection dataset on hand-made roots, the third-party dogs-voc data
//! and the synthetic generator.

use super::*;
use crate::image_io::{write_image, RgbImage};
use crate::loader::{Dataset, Rng};
use crate::synth_voc::{generate, SynthVocOptions};
use rand::SeedableRng;
use skipblock_core::boxes::BBox;
use std::path::{Path, PathBuf};

fn classes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Annotation text for a `w`×`h` image with `(class, [xmin, ymin, xmax, ymax], difficult)` objects.
fn xml(w: u32, h: u32, objects: &[(&str, [i32; 4], bool)]) -> String {
    let mut a = VocAnnotation::new("x.jpg", w, h);
    a.objects = objects
        .iter()
        .map(|&(name, b, difficult)| VocObject {
            pose: "Left".into(),
            difficult,
            ..VocObject::new(name, b.map(|v| v as f32))
        })
        .collect();
    a.to_xml()
}

/// A VOC2007-style root: each entry an id, its annotation text (None: no XML) and whether a JPEG exists.
fn root(dir: &Path, name: &str, split: &str, entries: &[(&str, Option<String>, bool)]) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("Annotations")).unwrap();
    std::fs::create_dir_all(root.join("ImageSets/Main")).unwrap();
    let mut list = String::from("\n");
    for (id, annotation, jpeg) in entries {
        list += &format!("{id} 1\n\n");
        if let Some(text) = annotation {
            std::fs::write(root.join("Annotations").join(format!("{id}.xml")), text).unwrap();
        }
        if *jpeg {
            write_image(&root.join("JPEGImages").join(format!("{id}.jpg")), &RgbImage::filled(64, 48, [90, 120, 30]))
                .unwrap();
        }
    }
    std::fs::write(root.join("ImageSets/Main").join(format!("{split}.txt")), list).unwrap();
    root
}

#[test]
fn opens_a_split_with_boxes_in_continuous_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let r = root(
        dir.path(),
        "VOC2007",
        "trainval",
        &[("a1", Some(xml(64, 48, &[("dog", [1, 2, 30, 40], false), ("cat", [10, 10, 64, 48], true)])), true)],
    );
    let (ds, problems) =
        VocDataset::open(std::slice::from_ref(&r), "trainval", &classes(&["cat", "dog"]), true).unwrap();
    assert!(problems.is_empty());
    assert_eq!(ds.len(), 1);
    let rec = &ds.records[0];
    assert_eq!((rec.id.as_str(), rec.width, rec.height), ("a1", 64, 48));
    assert_eq!(rec.image, r.join("JPEGImages/a1.jpg"));
    assert_eq!(rec.objects[0].bbox, BBox::new(0.0, 1.0, 30.0, 40.0));
    assert_eq!((rec.objects[0].class, rec.objects[1].class), (1, 0));
    assert!(rec.objects[1].difficult && !rec.objects[0].difficult);
    assert_eq!(rec.objects[0].pose, "Left");
    let err =
        format!("{:#}", VocDataset::open(std::slice::from_ref(&r), "test", &classes(&["dog"]), false).unwrap_err());
    assert!(err.contains("test.txt"), "{err}");
    std::fs::write(r.join("ImageSets/Main/empty.txt"), "\n \n").unwrap();
    let err = format!("{:#}", VocDataset::open(&[r], "empty", &classes(&["dog"]), false).unwrap_err());
    assert!(err.contains("empty.txt") && err.contains("lists no image"), "{err}");
}

#[test]
fn missing_files_and_malformed_xml_skip_the_image_or_fail_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let good = xml(64, 48, &[("dog", [5, 5, 20, 20], false)]);
    let r = root(
        dir.path(),
        "VOC2007",
        "train",
        &[
            ("ok", Some(good.clone()), true),
            ("nojpeg", Some(good.clone()), false),
            ("noxml", None, true),
            ("bad", Some("<annotation><size>".into()), true),
        ],
    );
    let dogs = classes(&["dog"]);
    let (ds, problems) = VocDataset::open(std::slice::from_ref(&r), "train", &dogs, false).unwrap();
    assert_eq!(ds.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["ok"]);
    let kinds: Vec<ProblemKind> = problems.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, vec![ProblemKind::MissingImage, ProblemKind::MissingAnnotation, ProblemKind::MalformedXml]);
    assert!(problems[0].to_string().contains("nojpeg.jpg"), "{}", problems[0]);
    assert!(problems[1].to_string().contains("noxml.xml"), "{}", problems[1]);
    assert!(
        problems[2].to_string().contains("bad.xml") && problems[2].to_string().contains("malformed XML"),
        "{}",
        problems[2]
    );
    let err = format!("{:#}", VocDataset::open(&[r], "train", &dogs, true).unwrap_err());
    assert!(err.contains("nojpeg.jpg") && err.contains("missing"), "{err}");
}

#[test]
fn bad_boxes_and_unknown_classes_drop_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let objects = [
        ("dog", [5, 5, 20, 20], false),
        ("dog", [30, 5, 10, 20], false),  // xmin > xmax
        ("dog", [10, 10, 70, 20], false), // beyond the width by more than a pixel
        ("unicorn", [5, 5, 20, 20], false),
        ("dog", [0, 5, 20, 20], false), // below 1
        ("dog", [1, 1, 65, 49], false), // one pixel over: tolerated, clipped
    ];
    let r = root(dir.path(), "VOC2012", "val", &[("img7", Some(xml(64, 48, &objects)), true)]);
    let dogs = classes(&["cat", "dog"]);
    let (ds, problems) = VocDataset::open(std::slice::from_ref(&r), "val", &dogs, false).unwrap();
    let kept: Vec<BBox> = ds.records[0].objects.iter().map(|o| o.bbox).collect();
    assert_eq!(kept, vec![BBox::new(4.0, 4.0, 20.0, 20.0), BBox::new(0.0, 0.0, 64.0, 48.0)]);
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        problems.iter().map(|p| (p.kind, p.object)).collect::<Vec<_>>(),
        vec![
            (ProblemKind::InvalidBox, Some(2)),
            (ProblemKind::OutsideImage, Some(3)),
            (ProblemKind::UnknownClass, Some(4)),
            (ProblemKind::OutsideImage, Some(5)),
        ]
    );
    assert!(text.iter().all(|t| t.contains("img7.xml")), "{text:?}");
    assert!(text[0].contains("object #2 'dog'") && text[0].contains("xmin 30"), "{}", text[0]);
    assert!(text[2].contains("object #4 'unicorn'") && text[2].contains("unknown class"), "{}", text[2]);
    let err = format!("{:#}", VocDataset::open(&[r], "val", &dogs, true).unwrap_err());
    assert!(err.contains("img7.xml") && err.contains("object #2"), "{err}");
}

#[test]
fn roots_combine_and_ids_stay_per_root_and_filename_is_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let a = root(
        dir.path(),
        "VOC2007",
        "trainval",
        &[("000001", Some(xml(64, 48, &[("dog", [1, 1, 9, 9], false)])), true)],
    );
    let b = root(
        dir.path(),
        "VOC2012",
        "trainval",
        &[("000001", Some(xml(64, 48, &[("cat", [1, 1, 9, 9], false)])), false)],
    );
    // The second root's image only exists under the annotation's filename.
    write_image(&b.join("JPEGImages/x.jpg"), &RgbImage::filled(64, 48, [0, 0, 0])).unwrap();
    let (ds, problems) =
        VocDataset::open(&[a.clone(), b.clone()], "trainval", &classes(&["cat", "dog"]), true).unwrap();
    assert!(problems.is_empty());
    assert_eq!(ds.len(), 2);
    assert_eq!((ds.records[0].root.clone(), ds.records[0].objects[0].class), (a, 1));
    assert_eq!((ds.records[1].root.clone(), ds.records[1].objects[0].class), (b.clone(), 0));
    assert_eq!(ds.records[1].image, b.join("JPEGImages/x.jpg"));
    assert_eq!(ds.num_objects(), 2);
}

/// The shared folder next to the repository.
fn dogs_voc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/dogs-voc/VOCdevkit/VOC2007")
}

#[test]
fn check_passes_on_the_third_party_dogs_data_with_independent_counts() {
    let root = dogs_voc();
    assert!(root.is_dir(), "test data missing: {}", root.display());
    let report = check(std::slice::from_ref(&root), &classes(&["trainval", "test"]), &classes(&["dog"]));
    assert!(report.is_ok(), "{}", report.to_text());
    for split in &report.splits {
        let list = std::fs::read_to_string(root.join(format!("ImageSets/Main/{}.txt", split.split))).unwrap();
        let ids: Vec<&str> = list.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let (mut objects, mut difficult, mut images_with) = (0, 0, 0);
        for id in &ids {
            let text = std::fs::read_to_string(root.join(format!("Annotations/{id}.xml"))).unwrap();
            let n = text.matches("<object>").count();
            objects += n;
            images_with += (n > 0) as usize;
            difficult += text.matches("<difficult>1</difficult>").count();
        }
        assert_eq!((split.listed, split.images), (ids.len(), ids.len()), "{}", split.split);
        assert_eq!((split.objects, split.difficult), (objects, difficult), "{}", split.split);
        assert_eq!(split.classes[0].class, "dog");
        assert_eq!((split.classes[0].images, split.classes[0].objects), (images_with, objects));
    }
    assert_eq!(report.splits[0].listed + report.splits[1].listed, 40);
    let text = report.to_text();
    assert!(text.contains("split trainval") && text.contains("no problems found"), "{text}");
    // With the VOC classes the data still passes: dog is one of them.
    assert!(check(&[root], &classes(&["test"]), &voc_classes()).is_ok());
}

#[test]
fn check_reports_every_problem_and_serialises() {
    let dir = tempfile::tempdir().unwrap();
    let r = root(
        dir.path(),
        "VOC2007",
        "trainval",
        &[
            ("a", Some(xml(64, 48, &[("dog", [5, 5, 20, 20], true), ("horse", [5, 5, 20, 20], false)])), true),
            ("b", Some(xml(100, 48, &[("dog", [20, 5, 10, 20], false)])), true), // size mismatch with the JPEG, bad box
            ("c", None, true),
        ],
    );
    let report = check(&[r], &classes(&["trainval", "test"]), &classes(&["dog"]));
    let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ProblemKind::UnknownClass,
            ProblemKind::InvalidBox,
            ProblemKind::BadImage,
            ProblemKind::MissingAnnotation,
            ProblemKind::MissingSplit,
        ]
    );
    let s = &report.splits[0];
    assert_eq!((s.listed, s.images, s.objects, s.difficult), (3, 2, 1, 1));
    assert_eq!((s.classes[0].images, s.classes[0].objects, s.classes[0].difficult), (1, 1, 1));
    let text = report.to_text();
    assert!(text.contains("5 problems") && text.contains("b.jpg") && text.contains("100x48"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["problems"][0]["kind"], "unknown_class");
    assert_eq!(json["problems"][0]["object"], 2);
    assert_eq!(json["splits"][0]["classes"][0]["difficult"], 1);
}

#[test]
fn det_dataset_samples_for_training_and_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let objects = [("dog", [1, 1, 32, 24], false), ("cat", [33, 25, 64, 48], true)];
    let r = root(
        dir.path(),
        "VOC2007",
        "test",
        &[("a", Some(xml(64, 48, &objects)), true), ("broken", Some(xml(64, 48, &objects)), false)],
    );
    std::fs::write(r.join("JPEGImages/broken.jpg"), b"not a jpeg").unwrap();
    let (voc, _) = VocDataset::open(&[r], "test", &classes(&["cat", "dog"]), true).unwrap();
    let eval = DetDataset::new(voc.clone(), 32, false);
    let s = eval.get(0, &mut Rng::seed_from_u64(0)).unwrap();
    assert_eq!(s.image.shape(), [3, 32, 32]);
    assert_eq!((s.width, s.height, s.index), (64, 48, 0));
    assert_eq!(s.labels, vec![2, 1], "1-based labels");
    assert_eq!(s.difficult, vec![false, true], "evaluation keeps difficult objects");
    assert_eq!(s.boxes[0], BBox::new(0.0, 0.0, 0.5, 0.5));
    // (90, 120, 30) normalised with the ImageNet statistics.
    let input = crate::transforms::network_input([&s.image], tch::Device::Cpu).unwrap();
    let red = f64::try_from(input.get(0).get(0).mean(tch::Kind::Float)).unwrap();
    assert!((red - (90.0 / 255.0 - 0.485) / 0.229).abs() < 0.05, "{red}");
    let train = DetDataset::new(voc, 32, true);
    for seed in 0..10 {
        let t = train.get(0, &mut Rng::seed_from_u64(seed)).unwrap();
        assert!(t.labels.iter().all(|&l| l == 2), "training drops difficult objects: {:?}", t.labels);
        assert_eq!(t.image.shape(), [3, 32, 32]);
    }
    let err = format!("{:#}", train.get(1, &mut Rng::seed_from_u64(0)).unwrap_err());
    assert!(err.contains("broken.jpg"), "{err}");
}

#[test]
fn synthetic_voc_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SynthVocOptions { train: 30, test: 10, seed: 5, size: 160 };
    let summary = generate(dir.path(), opts.clone()).unwrap();
    assert_eq!((summary.trainval, summary.train, summary.val, summary.test), (30, 24, 6, 10));
    let labels = read_labels(&summary.labels).unwrap();
    assert_eq!(labels, summary.classes);
    let report = check(std::slice::from_ref(&summary.root), &classes(&["trainval", "train", "val", "test"]), &labels);
    assert!(report.is_ok(), "{}", report.to_text());
    let objects: usize = [0, 3].iter().map(|&i| report.splits[i].objects).sum();
    assert_eq!(objects, summary.objects);
    assert_eq!(report.splits[0].difficult + report.splits[3].difficult, summary.difficult);
    assert!(report.splits[0].classes.iter().all(|c| c.objects > 0), "every class appears: {}", report.to_text());
    let (voc, problems) = VocDataset::open(std::slice::from_ref(&summary.root), "trainval", &labels, true).unwrap();
    assert!(problems.is_empty() && voc.len() == 30);
    let xml = std::fs::read_to_string(summary.root.join("Annotations/000001.xml")).unwrap();
    for field in [
        "<folder>VOC2007</folder>",
        "<filename>000001.jpg</filename>",
        "<segmented>0</segmented>",
        "<pose>Unspecified</pose>",
    ] {
        assert!(xml.contains(field), "{field} in {xml}");
    }
    // Deterministic: the same seed writes the same files.
    let again = tempfile::tempdir().unwrap();
    generate(again.path(), opts).unwrap();
    for f in ["Annotations/000007.xml", "JPEGImages/000007.jpg", "ImageSets/Main/val.txt"] {
        assert_eq!(
            std::fs::read(summary.root.join(f)).unwrap(),
            std::fs::read(again.path().join("VOCdevkit/VOC2007").join(f)).unwrap(),
            "{f}"
        );
    }
    // A larger set has difficult and truncated objects.
    let big = tempfile::tempdir().unwrap();
    let s = generate(big.path(), SynthVocOptions { train: 120, test: 0, seed: 1, size: 300 }).unwrap();
    assert!(s.difficult > 0 && s.truncated > 0, "{s:?}");
}

/// Single-threaded throughput of `DetDataset::get` with augmentation on synthetic 300×300 images:
/// `cargo test --release -p skipblock-data det_get_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn det_get_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(dir.path(), SynthVocOptions { train: 50, test: 0, seed: 0, size: 300 }).unwrap();
    let (voc, _) = VocDataset::open(&[s.root], "trainval", &s.classes, true).unwrap();
    let ds = DetDataset::new(voc, 300, true);
    let start = std::time::Instant::now();
    let n = 200;
    for i in 0..n {
        let sample = ds.get(i % ds.len(), &mut crate::loader::sample_rng(0, 0, i)).unwrap();
        assert_eq!(sample.image.shape(), [3, 300, 300]);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "DetDataset::get with augmentation: {:.1} images/s ({:.2} ms each)",
        n as f64 / secs,
        secs * 1000.0 / n as f64
    );
}

#[test]
fn uint8_detection_samples_normalised_on_the_device_match_the_old_host_float_path() {
    use crate::transforms::{network_input, normalize, IMAGENET_MEAN, IMAGENET_STD};
    let dir = tempfile::tempdir().unwrap();
    crate::synth_voc::generate(dir.path(), crate::synth_voc::SynthVocOptions { train: 6, test: 1, seed: 3, size: 96 })
        .unwrap();
    let root = dir.path().join("VOCdevkit/VOC2007");
    let names = crate::voc::read_labels(&root.join("labels.txt")).unwrap();
    let (voc, _) = VocDataset::open(&[root], "trainval", &names, true).unwrap();
    for train in [true, false] {
        let data = DetDataset::new(voc.clone(), 64, train);
        for index in 0..data.len() {
            let seed = 100 + index as u64;
            let s = data.get(index, &mut Rng::seed_from_u64(seed)).unwrap();
            let new = network_input([&s.image], tch::Device::Cpu).unwrap().get(0);
            // Before: the photometric distortion (rounded to 8 bits at its end, as now), the geometry and
            // the resize, then float normalisation on the host.
            let a = data.annotated(index).unwrap();
            let a = if train {
                crate::voc::SsdAugment::new(64).apply(a, &mut Rng::seed_from_u64(seed))
            } else {
                crate::voc::augment::resize_normalised(a, 64)
            };
            let old = normalize(&a.image, IMAGENET_MEAN, IMAGENET_STD);
            let diff = f64::try_from((new - old).abs().max()).unwrap();
            assert!(diff <= 1e-5, "train {train}, sample {index}: {diff}");
            assert_eq!(s.boxes, a.boxes);
        }
    }
}

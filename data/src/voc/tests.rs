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
fn bad_objects_are_skipped_and_boxes_a_little_outside_are_clipped() {
    let dir = tempfile::tempdir().unwrap();
    let objects = [
        ("dog", [5, 5, 20, 20], false),
        ("dog", [30, 5, 10, 20], false),  // xmin > xmax
        ("dog", [10, 10, 70, 20], false), // beyond the width by 6 pixels (tolerance 2): skipped
        ("unicorn", [5, 5, 20, 20], false),
        ("dog", [0, 5, 20, 20], false),   // 0-based xmin: one pixel out, clipped
        ("dog", [1, 1, 65, 49], false),   // one pixel over on the right and bottom: clipped
        ("dog", [7, 7, 9001, 9], false),  // garbled xmax below
        ("dog", [7, 7, 9, 9002], false),  // missing ymax below
        ("dog", [65, 10, 66, 20], false), // within the tolerance but empty once clipped
        ("cat", [-1, 45, 30, 50], false), // two pixels out on the left and bottom: clipped
    ];
    let text = xml(64, 48, &objects)
        .replace("<xmax>9001</xmax>", "<xmax>12px</xmax>")
        .replace("<ymax>9002</ymax>", "")
        .replace(
            "<xmin>5</xmin>\n\t\t\t<ymin>5</ymin>\n\t\t\t<xmax>20</xmax>",
            "<xmin>5.5</xmin>\n\t\t\t<ymin>5</ymin>\n\t\t\t<xmax>20.25</xmax>",
        );
    assert!(text.contains("<xmin>5.5</xmin>"), "float coordinates written: {text}");
    let r = root(dir.path(), "VOC2012", "val", &[("img7", Some(text), true)]);
    let dogs = classes(&["cat", "dog"]);
    let (ds, problems) = VocDataset::open(std::slice::from_ref(&r), "val", &dogs, false).unwrap();
    let kept: Vec<BBox> = ds.records[0].objects.iter().map(|o| o.bbox).collect();
    assert_eq!(
        kept,
        vec![
            BBox::new(4.5, 4.0, 20.25, 20.0),
            BBox::new(0.0, 4.0, 20.0, 20.0),
            BBox::new(0.0, 0.0, 64.0, 48.0),
            BBox::new(0.0, 44.0, 30.0, 48.0),
        ]
    );
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        problems.iter().map(|p| (p.kind, p.object)).collect::<Vec<_>>(),
        vec![
            (ProblemKind::BadObject, Some(7)),
            (ProblemKind::BadObject, Some(8)),
            (ProblemKind::InvalidBox, Some(2)),
            (ProblemKind::OutsideImage, Some(3)),
            (ProblemKind::UnknownClass, Some(4)),
            (ProblemKind::ClippedBox, Some(5)),
            (ProblemKind::ClippedBox, Some(6)),
            (ProblemKind::InvalidBox, Some(9)),
            (ProblemKind::ClippedBox, Some(10)),
        ],
        "{text:#?}"
    );
    assert!(text.iter().all(|t| t.contains("img7.xml")), "{text:?}");
    assert!(text[0].contains("object #7 'dog'") && text[0].contains("<xmax> '12px' is not a number"), "{}", text[0]);
    assert!(text[1].contains("object #8 'dog'") && text[1].contains("missing <bndbox>/<ymax>"), "{}", text[1]);
    assert!(text[2].contains("object #2 'dog'") && text[2].contains("xmin 30"), "{}", text[2]);
    assert!(text[4].contains("object #4 'unicorn'") && text[4].contains("unknown class"), "{}", text[4]);
    assert!(text[5].contains("clipped to (1, 5, 20, 20)"), "{}", text[5]);
    assert!(text[7].contains("empty once clipped"), "{}", text[7]);
    let warnings: Vec<bool> = problems.iter().map(|p| p.kind.is_warning()).collect();
    assert_eq!(warnings, [false, false, false, false, false, true, true, false, true]);
    // strict: the first problem that drops data is the error.
    let err = format!("{:#}", VocDataset::open(&[r], "val", &dogs, true).unwrap_err());
    assert!(err.contains("img7.xml") && err.contains("object #7"), "{err}");
}

#[test]
fn warnings_alone_pass_strict_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let r =
        root(dir.path(), "VOC2007", "trainval", &[("z", Some(xml(64, 48, &[("dog", [0, 0, 64, 48], false)])), true)]);
    let (ds, problems) = VocDataset::open(std::slice::from_ref(&r), "trainval", &classes(&["dog"]), true).unwrap();
    assert_eq!(ds.records[0].objects[0].bbox, BBox::new(0.0, 0.0, 64.0, 48.0));
    assert_eq!(problems.iter().map(|p| p.kind).collect::<Vec<_>>(), vec![ProblemKind::ClippedBox]);
    let report = check(&[r], &classes(&["trainval"]), &classes(&["dog"]));
    assert!(report.is_ok() && report.problems.len() == 1, "{}", report.to_text(true));
}

#[test]
fn a_missing_size_is_read_from_the_image_or_left_unknown_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let no_size = |objects: &[(&str, [i32; 4], bool)]| {
        let text = xml(64, 48, objects);
        let text = text.replace("<width>64</width>", "<width>0</width>");
        text.replace("<height>48</height>", "")
    };
    let r = root(
        dir.path(),
        "VOC2007",
        "test",
        &[
            ("sized", Some(no_size(&[("dog", [1, 1, 70, 20], false), ("dog", [2, 2, 66, 20], false)])), true),
            ("absent", Some(no_size(&[("dog", [1, 1, 70, 20], false)])), false),
            ("kept", Some(xml(64, 48, &[("dog", [3, 3, 9, 9], false)])), false),
        ],
    );
    let dogs = classes(&["dog"]);
    // With the images required, the JPEG's header gives 64x48 (the boxes are checked against it).
    let (ds, problems) = VocDataset::open(std::slice::from_ref(&r), "test", &dogs, false).unwrap();
    assert_eq!(ds.len(), 1);
    let rec = &ds.records[0];
    assert_eq!((rec.width, rec.height), (64, 48));
    assert_eq!(rec.objects.iter().map(|o| o.bbox).collect::<Vec<_>>(), vec![BBox::new(1.0, 1.0, 64.0, 20.0)]);
    let kinds: Vec<ProblemKind> = problems.iter().map(|p| p.kind).collect();
    let expected = [
        ProblemKind::MissingSize,
        ProblemKind::OutsideImage,
        ProblemKind::ClippedBox,
        ProblemKind::MissingImage,
        ProblemKind::MissingImage,
    ];
    assert_eq!(kinds, expected);
    assert!(problems[0].to_string().contains("sized.xml") && problems[0].message.contains("64x48"), "{}", problems[0]);
    // Annotations alone: absent images are no problem, an unknown size leaves the boxes as written.
    let (ds, problems) = VocDataset::open_with(&[r], "test", &dogs, false, ImageFiles::Optional).unwrap();
    let sizes: Vec<(&str, u32, u32)> = ds.records.iter().map(|r| (r.id.as_str(), r.width, r.height)).collect();
    assert_eq!(sizes, vec![("sized", 64, 48), ("absent", 0, 0), ("kept", 64, 48)]);
    assert_eq!(ds.records[1].objects[0].bbox, BBox::from_voc(1.0, 1.0, 70.0, 20.0));
    assert_eq!(ds.records[2].objects[0].bbox, BBox::from_voc(3.0, 3.0, 9.0, 9.0));
    let kinds: Vec<ProblemKind> = problems.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [expected[0], expected[1], expected[2], ProblemKind::MissingSize]);
    assert!(
        problems[3].to_string().contains("absent.xml") && problems[3].message.contains("no image"),
        "{}",
        problems[3]
    );
}

/// A phone photo stored 48x32 with EXIF orientation 6 (displayed 32x48): a missing size is the displayed
/// one, an annotation in the displayed frame checks clean, one with the stored size (labelImg) is reported.
#[test]
fn sizes_are_taken_in_the_exif_rotated_frame() {
    let dir = tempfile::tempdir().unwrap();
    let r = root(
        dir.path(),
        "VOC2007",
        "trainval",
        &[
            ("nosize", Some(xml(0, 0, &[("dog", [1, 30, 32, 48], false)])), false),
            ("shown", Some(xml(32, 48, &[("dog", [1, 30, 32, 48], false)])), false),
            ("stored", Some(xml(48, 32, &[("dog", [1, 1, 20, 20], false)])), false),
        ],
    );
    let rotated = crate::image_io::jpeg_with_orientation(&RgbImage::filled(48, 32, [200, 100, 50]), 6).unwrap();
    std::fs::create_dir_all(r.join("JPEGImages")).unwrap();
    for id in ["nosize", "shown", "stored"] {
        std::fs::write(r.join(format!("JPEGImages/{id}.jpg")), &rotated).unwrap();
    }
    let (ds, problems) = VocDataset::open(std::slice::from_ref(&r), "trainval", &classes(&["dog"]), false).unwrap();
    let sizes: Vec<(u32, u32)> = ds.records.iter().map(|r| (r.width, r.height)).collect();
    assert_eq!(sizes, [(32, 48), (32, 48), (48, 32)]);
    assert_eq!(ds.records[0].objects[0].bbox, BBox::new(0.0, 29.0, 32.0, 48.0), "kept whole, not clipped");
    assert_eq!(problems.iter().map(|p| p.kind).collect::<Vec<_>>(), [ProblemKind::MissingSize]);
    let report = check(&[r], &classes(&["trainval"]), &classes(&["dog"]));
    let found: Vec<(ProblemKind, String)> =
        report.problems.iter().map(|p| (p.kind, p.file.file_name().unwrap().to_string_lossy().into_owned())).collect();
    let expected = [(ProblemKind::MissingSize, "nosize.xml".to_string()), (ProblemKind::BadImage, "stored.jpg".into())];
    assert_eq!(found, expected, "{}", report.to_text(true));
    assert!(report.problems[1].message.contains("32x48") && report.problems[1].message.contains("labelImg"));
}

/// The third-party dogs data with the faults exports have: a missing size, a 0-based box, a garbled
/// coordinate, an object without a box, an unknown class.
#[test]
fn third_party_dogs_data_with_typical_export_faults() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC2007");
    for sub in ["Annotations", "JPEGImages", "ImageSets/Main"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
        for entry in std::fs::read_dir(dogs_voc().join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), root.join(sub).join(entry.file_name())).unwrap();
        }
    }
    let edit = |id: &str, from: &str, to: &str| {
        let path = root.join(format!("Annotations/{id}.xml"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{id}: {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit("000001", "<width>500</width>", "<width>0</width>");
    edit("000001", "<xmin>93</xmin>", "<xmin>0</xmin>");
    edit("000002", "<xmin>", "<xmin>x");
    edit("000003", "<bndbox>", "<box>");
    edit("000003", "</bndbox>", "</box>");
    edit("000004", "<name>dog</name>", "<name>Dog</name>");
    let listed = std::fs::read_to_string(root.join("ImageSets/Main/trainval.txt")).unwrap();
    let report = check(std::slice::from_ref(&root), &classes(&["trainval", "test"]), &classes(&["dog"]));
    let mut found: Vec<(ProblemKind, String)> =
        report.problems.iter().map(|p| (p.kind, p.file.file_stem().unwrap().to_string_lossy().into_owned())).collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (ProblemKind::BadObject, "000002".to_string()),
            (ProblemKind::BadObject, "000003".to_string()),
            (ProblemKind::UnknownClass, "000004".to_string()),
            (ProblemKind::ClippedBox, "000001".to_string()),
            (ProblemKind::MissingSize, "000001".to_string()),
        ],
        "{}",
        report.to_text(true)
    );
    let split = if listed.lines().any(|l| l.trim() == "000001") { 0 } else { 1 };
    let (ds, _) =
        VocDataset::open(std::slice::from_ref(&root), &report.splits[split].split, &classes(&["dog"]), false).unwrap();
    let one = ds.records.iter().find(|r| r.id == "000001").unwrap();
    assert_eq!((one.width, one.height), (500, 679), "the size from the JPEG header");
    assert_eq!(one.objects[0].bbox, BBox::new(0.0, 139.0, 344.0, 551.0));
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
    assert!(report.is_ok(), "{}", report.to_text(false));
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
    let text = report.to_text(false);
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
    let text = report.to_text(false);
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
    let opts = SynthVocOptions { train: 30, test: 10, seed: 5, size: 160, ..Default::default() };
    let summary = generate(dir.path(), opts.clone()).unwrap();
    assert_eq!((summary.trainval, summary.train, summary.val, summary.test), (30, 24, 6, 10));
    let labels = read_labels(&summary.labels).unwrap();
    assert_eq!(labels, summary.classes);
    let report = check(std::slice::from_ref(&summary.root), &classes(&["trainval", "train", "val", "test"]), &labels);
    assert!(report.is_ok(), "{}", report.to_text(false));
    let objects: usize = [0, 3].iter().map(|&i| report.splits[i].objects).sum();
    assert_eq!(objects, summary.objects);
    assert_eq!(report.splits[0].difficult + report.splits[3].difficult, summary.difficult);
    assert!(report.splits[0].classes.iter().all(|c| c.objects > 0), "every class appears: {}", report.to_text(false));
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
    let s = generate(big.path(), SynthVocOptions { train: 120, test: 0, seed: 1, size: 300, ..Default::default() })
        .unwrap();
    assert!(s.difficult > 0 && s.truncated > 0, "{s:?}");
}

/// Single-threaded throughput of `DetDataset::get` with augmentation on synthetic 300×300 images:
/// `cargo test --release -p skipblock-data det_get_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn det_get_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        generate(dir.path(), SynthVocOptions { train: 50, test: 0, seed: 0, size: 300, ..Default::default() }).unwrap();
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
fn check_without_labels_reads_the_classes_off_the_annotations() {
    let dir = tempfile::tempdir().unwrap();
    // Custom class names (a traffic-light export), one unreadable XML, and 5 missing images.
    let mut entries = vec![
        ("a", Some(xml(64, 48, &[("go", [1, 1, 20, 20], false), ("stop", [30, 5, 60, 40], false)])), true),
        ("b", Some(xml(64, 48, &[("stop", [5, 5, 10, 12], false), ("warning", [2, 2, 40, 40], true)])), true),
        ("c", Some("<annotation><object>".to_string()), true),
    ];
    let missing: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    for id in &missing {
        entries.push((id.as_str(), Some(xml(64, 48, &[("go", [1, 1, 9, 9], false)])), false));
    }
    let r = root(dir.path(), "VOC2007", "trainval", &entries);
    let report = check_inferring_classes(std::slice::from_ref(&r), &classes(&["trainval"]));
    assert!(report.classes_inferred);
    assert_eq!(report.classes, classes(&["go", "stop", "warning"]), "sorted names the annotations use");
    let counts: Vec<(usize, usize)> = report.splits[0].classes.iter().map(|c| (c.images, c.objects)).collect();
    assert_eq!(counts, vec![(1, 1), (2, 2), (1, 1)], "usable images only: the five without a JPEG are left out");
    let names = infer_classes(std::slice::from_ref(&r), &classes(&["trainval"]));
    assert_eq!(names["go"][0].objects, 6, "the inventory counts every annotation that parses");
    // Problems grouped by kind: 5 missing images (3 shown), 1 malformed XML; no unknown-class noise.
    let groups = report.problem_groups();
    let kinds: Vec<(ProblemKind, usize, usize)> = groups.iter().map(|g| (g.kind, g.count, g.examples.len())).collect();
    assert_eq!(kinds, vec![(ProblemKind::MalformedXml, 1, 1), (ProblemKind::MissingImage, 5, 3)]);
    let text = report.to_text(false);
    assert!(text.contains("3 classes read off the annotations") && text.contains("go, stop, warning"), "{text}");
    assert!(text.contains("5 × missing image") && text.contains("… and 2 more (--all"), "{text}");
    assert_eq!(text.matches("m3.jpg").count() + text.matches("m4.jpg").count(), 0, "{text}");
    let all = report.to_text(true);
    assert!(all.contains("m4.jpg") && !all.contains("more (--all"), "{all}");
    // Sizes per class then overall; the difficult "warning" object counts as an object too.
    let sizes: Vec<&str> = report.sizes.iter().map(|s| s.class.as_str()).collect();
    assert_eq!(sizes, ["go", "stop", "warning", "all"]);
    assert_eq!(report.sizes[3].objects, 4);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["classes_inferred"], true);
    assert_eq!(json["sizes"][1]["class"], "stop");
    assert!(json["splits"][0].get("records").is_none(), "records stay out of the JSON");
}

#[test]
fn uint8_detection_samples_normalised_on_the_device_match_the_old_host_float_path() {
    use crate::transforms::{network_input, normalize, IMAGENET_MEAN, IMAGENET_STD};
    let dir = tempfile::tempdir().unwrap();
    crate::synth_voc::generate(
        dir.path(),
        crate::synth_voc::SynthVocOptions { train: 6, test: 1, seed: 3, size: 96, ..Default::default() },
    )
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

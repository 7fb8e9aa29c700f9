//! The detection pipeline end to end through the binary: real third-party VOC data (dogs-voc), synthetic
//! VOC data, data problems, result files, videos and webcams, TensorBoard logs read by TensorBoard.

mod common;
use common::*;
use skipblock_core::train::tensorboard::EventWriter;
use std::path::{Path, PathBuf};

fn dogs() -> PathBuf {
    repo().join("../shared/data/dogs-voc/VOCdevkit/VOC2007")
}

fn labels(dir: &Path, names: &[&str]) -> PathBuf {
    let p = dir.join("labels.txt");
    std::fs::write(&p, names.join("\n") + "\n").unwrap();
    p
}

fn run_in_repo(args: &[&str]) -> (bool, String, String) {
    decode(skipblock().current_dir(repo()).args(args).output().unwrap())
}

/// A few iterations of SSDLite-XS on `root`.
fn quick_train(root: &Path, labels: &Path, runs: &Path, name: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "--seed",
        "1",
        "detect",
        "train",
        "--config",
        "configs/synthetic-voc.toml",
        "--data",
        path_str(root),
        "--labels",
        path_str(labels),
        "--runs-dir",
        path_str(runs),
        "--name",
        name,
        "--epochs",
        "1",
        "--batch",
        "4",
        "--set",
        "train.max_iters_per_epoch=2",
        "--set",
        "ssd.input_size=128",
    ];
    args.extend_from_slice(extra);
    let (ok, _, stderr) = run_in_repo(&args);
    (ok, stderr)
}

#[test]
fn real_third_party_voc_data_checks_trains_evaluates_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let dog = labels(dir.path(), &["dog"]);
    let (ok, stdout, stderr) = run(&[
        "data",
        "check",
        "--voc",
        path_str(&dogs()),
        "--labels",
        path_str(&dog),
        "--json",
        "--out",
        path_str(dir.path()),
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["problems"].as_array().unwrap().is_empty(), "{report}");

    let runs = dir.path().join("runs");
    let (ok, stderr) = quick_train(&dogs(), &dog, &runs, "dogs", &[]);
    assert!(ok, "{stderr}");
    let weights = runs.join("dogs/last.safetensors");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("dogs/last.json")).unwrap()).unwrap();
    assert_eq!(meta["task"], "detect");
    assert_eq!(meta["class_names"], serde_json::json!(["dog"]));

    let results = dir.path().join("results");
    let out = dir.path().join("eval");
    let (ok, stdout, stderr) = run(&[
        "detect",
        "eval",
        "--weights",
        path_str(&weights),
        "--data",
        path_str(&dogs()),
        "--split",
        "test",
        "--json",
        "--save-detections",
        path_str(&results),
        "--out",
        path_str(&out),
    ]);
    assert!(ok, "{stderr}");
    let eval: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let map = eval["map"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&map));
    assert_eq!(eval["classes"][0]["num_gt"], 10);
    assert!(results.join("comp4_det_test_dog.txt").exists());
    for f in ["pr_curves.png", "f1_curve.png", "confusion_matrix.png", "eval.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert_eq!(eval["confusion_matrix"]["labels"], serde_json::json!(["dog", "background"]));
    // The result files evaluate to the same mAP, as any detector's would.
    let (ok, stdout, stderr) = run(&[
        "detect",
        "eval",
        "--detections",
        path_str(&results),
        "--data",
        path_str(&dogs()),
        "--labels",
        path_str(&dog),
        "--split",
        "test",
        "--json",
        "--out",
        path_str(&out),
    ]);
    assert!(ok, "{stderr}");
    let again: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!((again["map"].as_f64().unwrap() - map).abs() < 1e-4, "{again} vs {eval}");

    // Predict on the 40 real photos: one record each, annotated JPEGs written.
    let pred = dir.path().join("pred");
    let (ok, stdout, stderr) = run(&[
        "detect",
        "predict",
        "--weights",
        path_str(&weights),
        path_str(&dogs().join("JPEGImages")),
        "--json",
        "--conf",
        "0.01",
        "--out",
        path_str(&pred),
    ]);
    assert!(ok, "{stderr}");
    let records: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 40);
    for r in &records {
        let (w, h) = (r["width"].as_f64().unwrap(), r["height"].as_f64().unwrap());
        for d in r["detections"].as_array().unwrap() {
            let b: Vec<f64> = d["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert!(b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= w && b[3] <= h && b[0] <= b[2] && b[1] <= b[3], "{d}");
            assert_eq!(d["name"], "dog");
        }
    }
    assert_eq!(std::fs::read_dir(&pred).unwrap().count(), 40);
}

/// `data split` on the dogs export without its ImageSets: lists that `data check` reads, refused the
/// second time without `--force`.
#[test]
fn data_split_writes_lists_for_an_export_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dogs");
    for sub in ["Annotations", "JPEGImages"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
        for entry in std::fs::read_dir(dogs().join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), root.join(sub).join(entry.file_name())).unwrap();
        }
    }
    let split = |extra: &[&str]| {
        let mut args = vec!["data", "split", "--voc", path_str(&root), "--val", "0.1", "--test", "0.2", "--seed", "5"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (ok, stdout, stderr) = split(&[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("28 train, 4 val (32 trainval), 8 test"), "{stdout}");
    let dog = labels(dir.path(), &["dog"]);
    let (ok, stdout, stderr) = run(&[
        "data",
        "check",
        "--voc",
        path_str(&root),
        "--labels",
        path_str(&dog),
        "--split",
        "train",
        "--json",
        "--out",
        path_str(dir.path()),
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["splits"][0]["images"], 28, "{report}");
    let test = std::fs::read_to_string(root.join("ImageSets/Main/test.txt")).unwrap();
    let (ok, _, stderr) = split(&[]);
    assert!(!ok && error_line(&stderr).contains("train.txt") && stderr.contains("--force"), "{stderr}");
    let (ok, _, stderr) = split(&["--force"]);
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read_to_string(root.join("ImageSets/Main/test.txt")).unwrap(), test, "same seed, same lists");
}

/// `detect eval --detections` from Annotations/ and ImageSets/ alone: the images deleted, one annotation
/// without a `<size>`, the same scores as with the images.
#[test]
fn result_files_are_scored_from_the_annotations_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(&[
        "data",
        "synth-voc",
        "--out",
        path_str(dir.path()),
        "--train",
        "2",
        "--test",
        "8",
        "--size",
        "96",
        "--seed",
        "4",
    ]);
    assert!(ok, "{stderr}");
    let root = dir.path().join("VOCdevkit/VOC2007");
    let labels = root.join("labels.txt");
    let classes = skipblock_data::voc::read_labels(&labels).unwrap();
    let ids: Vec<String> =
        std::fs::read_to_string(root.join("ImageSets/Main/test.txt")).unwrap().lines().map(String::from).collect();
    // Result files: every ground-truth box found (score 0.5–0.9) and one false positive per image
    // scored lower, so every class with ground truth has AP 1.
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    let mut files = vec![String::new(); classes.len()];
    let mut num_gt = vec![0; classes.len()];
    for (i, id) in ids.iter().enumerate() {
        let a = skipblock_data::voc::read_annotation(&root.join(format!("Annotations/{id}.xml"))).unwrap();
        for (k, o) in a.objects.iter().enumerate() {
            let c = classes.iter().position(|n| *n == o.name).unwrap();
            let [x0, y0, x1, y1] = o.bndbox;
            files[c] += &format!("{id} {:.3} {x0} {y0} {x1} {y1}\n", 0.9 - 0.01 * ((i + k) % 40) as f32);
            num_gt[c] += !o.difficult as usize;
        }
        files[i % classes.len()] += &format!("{id} 0.1 1 1 5 5\n");
    }
    for (name, text) in classes.iter().zip(&files) {
        std::fs::write(results.join(format!("comp4_det_test_{name}.txt")), text).unwrap();
    }
    // The first test image's annotation loses its size.
    let xml_path = root.join(format!("Annotations/{}.xml", ids[0]));
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    std::fs::write(&xml_path, xml.replace("<width>96</width>", "").replace("<height>96</height>", "")).unwrap();
    let eval = |out: &str| {
        let (ok, stdout, stderr) = run(&[
            "detect",
            "eval",
            "--detections",
            path_str(&results),
            "--data",
            path_str(&root),
            "--labels",
            path_str(&labels),
            "--split",
            "test",
            "--json",
            "--out",
            path_str(&dir.path().join(out)),
        ]);
        assert!(ok, "{stderr}");
        (serde_json::from_str::<serde_json::Value>(&stdout).unwrap(), stderr)
    };
    let (with_images, stderr) = eval("with");
    assert!(stderr.contains(&format!("{}.xml", ids[0])) && stderr.contains("96x96"), "size from the image: {stderr}");
    std::fs::remove_dir_all(root.join("JPEGImages")).unwrap();
    let (without, stderr) = eval("without");
    assert!(stderr.contains("no image"), "{stderr}");
    assert_eq!(with_images["map"], without["map"]);
    assert_eq!(with_images["classes"], without["classes"]);
    for (c, class) in without["classes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(class["num_gt"], num_gt[c], "{class}");
        if num_gt[c] > 0 {
            assert!((class["ap"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{class}");
        }
    }
}

/// A synthetic VOC copy with three planted problems: malformed XML, a listed image whose JPEG is missing,
/// and a box outside its image.
fn broken_voc(dir: &Path) -> (PathBuf, PathBuf) {
    let (ok, _, stderr) = run(&[
        "data",
        "synth-voc",
        "--out",
        path_str(dir),
        "--train",
        "12",
        "--test",
        "4",
        "--size",
        "128",
        "--seed",
        "3",
    ]);
    assert!(ok, "{stderr}");
    let root = dir.join("VOCdevkit/VOC2007");
    let ids: Vec<String> =
        std::fs::read_to_string(root.join("ImageSets/Main/trainval.txt")).unwrap().lines().map(String::from).collect();
    std::fs::write(root.join(format!("Annotations/{}.xml", ids[0])), "<annotation><size><width>128</wid").unwrap();
    std::fs::remove_file(root.join(format!("JPEGImages/{}.jpg", ids[1]))).unwrap();
    let xml_path = root.join(format!("Annotations/{}.xml", ids[2]));
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let start = xml.find("<xmax>").unwrap() + 6;
    let end = xml[start..].find("</xmax>").unwrap() + start;
    std::fs::write(&xml_path, format!("{}500{}", &xml[..start], &xml[end..])).unwrap();
    (root.clone(), root.join("labels.txt"))
}

#[test]
fn data_problems_are_reported_skipped_or_fatal_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let (root, labels) = broken_voc(dir.path());
    let ids: Vec<String> =
        std::fs::read_to_string(root.join("ImageSets/Main/trainval.txt")).unwrap().lines().map(String::from).collect();
    // `data check` lists every problem, naming the files, and exits non-zero.
    let out = dir.path().join("check");
    let (ok, stdout, stderr) =
        run(&["data", "check", "--voc", path_str(&root), "--labels", path_str(&labels), "--out", path_str(&out)]);
    assert!(!ok);
    for id in &ids[..3] {
        assert!(stdout.contains(id.as_str()), "problem with {id} not reported: {stdout}");
    }
    assert!(one_error_line(&stderr).contains("3 problem"), "{stderr}");
    // Training skips them with warnings…
    let runs = dir.path().join("runs");
    let (ok, stderr) = quick_train(&root, &labels, &runs, "lenient", &[]);
    assert!(ok, "{stderr}");
    assert!(stderr.matches("warning:").count() >= 3, "{stderr}");
    // …or stops at the first one with --set data.strict=true.
    let (ok, stderr) = quick_train(&root, &labels, &runs, "strict", &["--set", "data.strict=true"]);
    assert!(!ok);
    assert!(error_line(&stderr).contains(&ids[0]), "{stderr}");
    // An unknown class list entry: a clear error for a missing labels file.
    let (ok, stderr) = quick_train(&root, &dir.path().join("nope.txt"), &runs, "nolabels", &[]);
    assert!(!ok && error_line(&stderr).contains("nope.txt"), "{stderr}");
}

#[test]
fn a_missing_webcam_or_video_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let dog = labels(dir.path(), &["dog"]);
    let runs = dir.path().join("runs");
    let (ok, stderr) = quick_train(&dogs(), &dog, &runs, "w", &["--set", "train.max_iters_per_epoch=1"]);
    assert!(ok, "{stderr}");
    let weights = runs.join("w/last.safetensors");
    let (ok, _, stderr) = run(&[
        "detect",
        "predict",
        "--weights",
        path_str(&weights),
        "--webcam",
        "99",
        "--out",
        path_str(&dir.path().join("o")),
    ]);
    assert!(!ok);
    assert!(error_line(&stderr).contains("webcam 99"), "{stderr}");
    let bad = dir.path().join("broken.mp4");
    std::fs::write(&bad, b"not a video at all").unwrap();
    let (ok, _, stderr) = run(&["detect", "predict", "--weights", path_str(&weights), path_str(&bad)]);
    assert!(!ok);
    assert!(error_line(&stderr).contains("broken.mp4"), "{stderr}");
}

#[cfg(feature = "opencv")]
#[test]
fn a_video_is_annotated_frame_by_frame() {
    use skipblock_data::video::VideoWriter;
    let dir = tempfile::tempdir().unwrap();
    let dog = labels(dir.path(), &["dog"]);
    let runs = dir.path().join("runs");
    let (ok, stderr) = quick_train(&dogs(), &dog, &runs, "v", &["--set", "train.max_iters_per_epoch=1"]);
    assert!(ok, "{stderr}");
    let clip = dir.path().join("clip.avi");
    let frame = skipblock_data::read_image(&dogs().join("JPEGImages/000001.jpg")).unwrap();
    let mut w = VideoWriter::create(&clip, 5.0, frame.width, frame.height).unwrap();
    for _ in 0..4 {
        w.write(&frame).unwrap();
    }
    drop(w);
    let out = dir.path().join("pred");
    let (ok, stdout, stderr) = run(&[
        "detect",
        "predict",
        "--weights",
        path_str(&runs.join("v/last.safetensors")),
        path_str(&clip),
        "--json",
        "--conf",
        "0.01",
        "--out",
        path_str(&out),
    ]);
    assert!(ok, "{stderr}");
    let frames: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[3]["frame"], 3);
    assert!(out.join("clip.mp4").exists());
}

#[test]
fn training_logs_to_tensorboard_and_resume_continues_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(&[
        "data",
        "synth-voc",
        "--out",
        path_str(dir.path()),
        "--train",
        "8",
        "--test",
        "2",
        "--size",
        "96",
        "--seed",
        "3",
    ]);
    assert!(ok, "{stderr}");
    let root = dir.path().join("VOCdevkit/VOC2007");
    let labels = root.join("labels.txt");
    let runs = dir.path().join("runs");
    // Two epochs of 2 iterations, each evaluated, the loss logged every iteration; killed after the
    // first epoch (--stop-after) and resumed.
    let train = |extra: &[&str]| {
        let mut args =
            vec!["-q", "--set", "train.epochs=2", "--set", "train.eval_every=1", "--set", "train.log_every=1"];
        args.extend_from_slice(extra);
        let (ok, stderr) = quick_train(&root, &labels, &runs, "tb", &args);
        assert!(ok, "{stderr}");
        assert!(!stderr.contains("warning"), "{stderr}");
    };
    train(&["--stop-after", "1"]);
    // What an invocation killed during epoch 2 would have logged after its checkpoint: TensorBoard drops
    // it when the resumed invocation restarts at iteration 3.
    let run = runs.join("tb");
    let mut orphan = EventWriter::create(&run.join("tb")).unwrap();
    orphan.scalars(3, &[("train/loss_iter", 99.0)]).unwrap();
    orphan.flush().unwrap();
    drop(orphan);
    train(&["--resume"]);

    let files: Vec<String> = std::fs::read_dir(run.join("tb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 3, "one events file per invocation (and the orphan's): {files:?}");
    assert!(files.iter().all(|f| f.starts_with("events.out.tfevents.")), "{files:?}");

    let tb = read_tensorboard(&run.join("tb"));
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    // Every measured scalar of every epoch, step = epoch, equal to metrics.jsonl to f32 precision.
    for (key, tag) in [
        ("train_loss", "train/loss"),
        ("val_map", "val/map"),
        ("lr", "lr"),
        ("images_per_sec", "images_per_sec"),
        ("val_loss", "val/loss"),
        ("val_top1", "val/top1"),
    ] {
        let expected: Vec<(u64, f64)> = records
            .iter()
            .filter_map(|r| Some((r["epoch"].as_u64().unwrap(), r.get(key)?.as_f64().unwrap())))
            .collect();
        let logged = tb_scalar(&tb, tag);
        assert_eq!(logged.len(), expected.len(), "{tag}: {logged:?} vs {expected:?}");
        for ((s, v), (e, x)) in logged.iter().zip(&expected) {
            assert_eq!(s, e, "{tag}");
            let (v, x) = (*v as f32, *x as f32);
            assert!((v - x).abs() <= f32::EPSILON * x.abs(), "{tag} at epoch {e}: {v} logged, {x} in metrics.jsonl");
        }
    }
    assert_eq!(tb_scalar(&tb, "val/map").len(), 2, "detection measures mAP");
    // The loss of every iteration, the steps continuing across the resume; each epoch's mean is its
    // train/loss (equal batches).
    let iters = tb_scalar(&tb, "train/loss_iter");
    assert_eq!(iters.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(iters.iter().all(|p| p.1 != 99.0), "the orphaned step is purged: {iters:?}");
    for (epoch, pair) in iters.chunks(2).enumerate() {
        let mean = (pair[0].1 + pair[1].1) / 2.0;
        let train_loss = records[epoch]["train_loss"].as_f64().unwrap();
        assert!((mean - train_loss).abs() < 1e-5 * train_loss.abs(), "epoch {}: {mean} vs {train_loss}", epoch + 1);
    }
    // At each evaluated epoch: the precision-recall chart (640x480) and the first test image annotated,
    // at its own size; the PNG headers agree with the summaries.
    for (tag, size) in [("val/pr_curves", [640, 480]), ("val/prediction", [96, 96])] {
        let images = tb["images"][tag].as_array().unwrap_or_else(|| panic!("no {tag}: {tb}"));
        let steps: Vec<u64> = images.iter().map(|i| i["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, [1, 2], "{tag}");
        for i in images {
            assert_eq!([i["width"].as_u64().unwrap(), i["height"].as_u64().unwrap()], size, "{tag}");
            assert_eq!(i["png_size"], serde_json::json!(size), "{tag}");
        }
    }
}

#[test]
fn own_data_gets_a_report_and_priors_fitted_to_its_small_objects() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(&[
        "data",
        "synth-voc",
        "--out",
        path_str(dir.path()),
        "--train",
        "12",
        "--test",
        "4",
        "--min-object",
        "10",
        "--max-object",
        "30",
        "--max-objects",
        "8",
        "--seed",
        "2",
    ]);
    assert!(ok, "{stderr}");
    let root = dir.path().join("VOCdevkit/VOC2007");
    // No labels file: the classes come from the annotations; the report is short.
    let check = dir.path().join("check");
    let written = dir.path().join("found.txt");
    let (ok, stdout, stderr) = run_in_repo(&[
        "data",
        "check",
        "--voc",
        path_str(&root),
        "--out",
        path_str(&check),
        "--write-labels",
        path_str(&written),
        "--config",
        "configs/synthetic-small-objects.toml",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("5 classes read off the annotations"), "{stdout}");
    assert!(!stdout.contains("unknown class"), "{stdout}");
    assert!(stdout.lines().count() < 80, "short: {stdout}");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "cross\nellipse\nrectangle\nring\ntriangle\n");
    assert!(check.join("object_sizes.png").is_file());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(check.join("report.json")).unwrap()).unwrap();
    let prior = &report["prior_coverage"];
    let stock = prior["coverage"]["all"]["share"].as_f64().unwrap();
    let fitted = prior["fitted"]["after"]["all"]["share"].as_f64().unwrap();
    assert!(fitted > stock + 0.2, "fitted {fitted} vs stock {stock}");
    assert!(report["sizes"].as_array().unwrap().iter().any(|s| s["class"] == "all"));

    // Training warns about the stock priors, and fits them on request; eval uses the stored ones.
    let runs = dir.path().join("runs");
    let (ok, stderr) = quick_train(&root, &written, &runs, "stock", &["--set", "ssd.priors.auto=false"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("--auto-priors"), "a warning names the remedy: {stderr}");
    let (ok, stderr) = quick_train(&root, &written, &runs, "fitted", &["--auto-priors"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("fitted priors") && !stderr.contains("pass --auto-priors"), "{stderr}");
    let config: toml::Value = std::fs::read_to_string(runs.join("fitted/config.toml")).unwrap().parse().unwrap();
    let priors = &config["ssd"]["priors"];
    assert_eq!(priors["auto"].as_bool(), Some(false), "the stored priors are fixed");
    let min_sizes: Vec<f64> = priors["min_sizes"].as_array().unwrap().iter().map(|v| v.as_float().unwrap()).collect();
    assert!(min_sizes[0] < 40.0, "fitted to 10-30 px objects: {min_sizes:?}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("fitted/last.json")).unwrap()).unwrap();
    let stored = meta["model"]["priors"]["min_sizes"].as_array().unwrap();
    assert!((stored[0].as_f64().unwrap() - min_sizes[0]).abs() < 1e-9, "the checkpoint holds them: {meta}");
    let (ok, _, stderr) = run(&[
        "detect",
        "eval",
        "--weights",
        path_str(&runs.join("fitted/last.safetensors")),
        "--data",
        path_str(&root),
        "--split",
        "test",
        "--out",
        path_str(&dir.path().join("eval")),
        "--json",
    ]);
    assert!(ok, "{stderr}");
}

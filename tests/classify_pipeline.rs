//! The classification pipeline end to end through the binary, on synthetic data in Food-101's and an
//! image folder's native layouts: learning from scratch, transfer learning, the losses, kill + resume.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn synth(out: &Path, layout: &str, classes: usize, train: usize, test: usize, seed: u64) {
    synth_sized(out, layout, classes, train, test, seed, 64)
}

fn synth_sized(out: &Path, layout: &str, classes: usize, train: usize, test: usize, seed: u64, size: u32) {
    let (ok, _, stderr) = run(&[
        "data",
        "synth-cls",
        "--out",
        path_str(out),
        "--layout",
        layout,
        "--classes",
        &classes.to_string(),
        "--train",
        &train.to_string(),
        "--test",
        &test.to_string(),
        "--size",
        &size.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    assert!(ok, "{stderr}");
}

fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn last_top1(run_dir: &Path) -> f64 {
    metrics(run_dir).last().unwrap()["val_top1"].as_f64().unwrap()
}

/// `classify train` on the synthetic recipe (96×96 inputs unless `extra` says otherwise).
fn train(data: &Path, runs: &Path, name: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "--seed",
        "3",
        "classify",
        "train",
        "--config",
        "configs/synthetic-food101.toml",
        "--data",
        path_str(data),
        "--runs-dir",
        path_str(runs),
        "--name",
        name,
    ];
    args.extend_from_slice(extra);
    let out = skipblock().current_dir(repo()).args(&args).output().unwrap();
    let (ok, _, stderr) = decode(out);
    (ok, stderr)
}

#[test]
fn learns_from_scratch_and_transfers_to_a_new_class_set() {
    let dir = tempfile::tempdir().unwrap();
    let food = dir.path().join("food");
    synth_sized(&food, "food101", 10, 60, 10, 1, 96);
    let runs = dir.path().join("runs");
    let started = std::time::Instant::now();
    let (ok, stderr) = train(&food, &runs, "scratch", &[]);
    assert!(ok, "{stderr}");
    let top1 = last_top1(&runs.join("scratch"));
    println!(
        "from scratch, 10 synthetic classes, 20 epochs at 96x96: val top-1 {top1:.3} (chance 0.1) in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(top1 > 0.3, "top-1 {top1} is not clearly above chance");
    for f in
        ["best.safetensors", "last.safetensors", "last.state.safetensors", "metrics.csv", "curves.png", "config.toml"]
    {
        assert!(runs.join("scratch").join(f).exists(), "{f}");
    }
    // TensorBoard (read by TensorBoard): every epoch's classification metrics as in metrics.jsonl, no mAP.
    let tb = read_tensorboard(&runs.join("scratch/tb"));
    let records = metrics(&runs.join("scratch"));
    for (key, tag) in
        [("train_loss", "train/loss"), ("val_loss", "val/loss"), ("val_top1", "val/top1"), ("val_top5", "val/top5")]
    {
        let logged = tb_scalar(&tb, tag);
        assert_eq!(logged.len(), records.len(), "{tag}");
        for ((step, v), r) in logged.iter().zip(&records) {
            let x = r[key].as_f64().unwrap() as f32;
            assert_eq!(*step, r["epoch"].as_u64().unwrap(), "{tag}");
            assert!((*v as f32 - x).abs() <= f32::EPSILON * x.abs(), "{tag} at step {step}: {v} vs {x}");
        }
    }
    assert!(tb_scalar(&tb, "val/map").is_empty());

    // `classify eval` agrees with the run's last validation record, and reports every class.
    let (ok, stdout, stderr) = run(&[
        "classify",
        "eval",
        "--weights",
        path_str(&runs.join("scratch/last.safetensors")),
        "--data",
        path_str(&food),
        "--json",
        "--out",
        path_str(&dir.path().join("eval")),
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!((report["top1"].as_f64().unwrap() - top1).abs() < 1e-9, "{report}");
    assert_eq!(report["per_class"].as_array().unwrap().len(), 10);
    assert_eq!(report["samples"], 100);
    let rows = report["confusion_matrix"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let counted: u64 = rows.iter().flat_map(|r| r.as_array().unwrap()).map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(counted, 100);
    for f in ["confusion_matrix.png", "per_class_accuracy.png", "eval.json"] {
        assert!(dir.path().join("eval").join(f).exists(), "{f}");
    }

    // A different task: 6 classes in an image folder, other images. One epoch from the checkpoint
    // beats one epoch from random weights.
    let folder = dir.path().join("folder");
    synth(&folder, "imagefolder", 6, 30, 10, 7);
    let args = [
        "--epochs",
        "1",
        "--set",
        "data.val_fraction=0.25",
        "--set",
        "schedule.warmup_epochs=0.0",
        "--lr",
        "0.02",
        "--set",
        "model.input_size=64",
    ];
    let out = skipblock()
        .current_dir(repo())
        .args([
            "--seed",
            "3",
            "classify",
            "finetune",
            "--from",
            path_str(&runs.join("scratch/best.safetensors")),
            "--data",
            path_str(&folder),
            "--config",
            "configs/synthetic-food101.toml",
            "--runs-dir",
            path_str(&runs),
            "--name",
            "transfer",
            "--set",
            "model.input_size=64",
        ])
        .args(args)
        .output()
        .unwrap();
    let (ok, _, stderr) = decode(out);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("new 6-class head"), "{stderr}");
    let (ok, stderr) = train(&folder, &runs, "random", &args);
    assert!(ok, "{stderr}");
    let (transfer, random) = (last_top1(&runs.join("transfer")), last_top1(&runs.join("random")));
    println!("after one epoch on the new 6-class task: fine-tuned {transfer:.3}, from random weights {random:.3}");
    assert!(transfer > random, "transfer {transfer} <= random {random}");
}

#[test]
fn bias_and_cross_entropy_runs_both_complete() {
    let dir = tempfile::tempdir().unwrap();
    let food = dir.path().join("food");
    synth(&food, "food101", 6, 20, 5, 2);
    let runs = dir.path().join("runs");
    let mut results = Vec::new();
    for loss in ["bias", "ce", "focal", "label-smoothing"] {
        let (ok, stderr) =
            train(&food, &runs, loss, &["--epochs", "2", "--loss", loss, "--set", "model.input_size=64"]);
        assert!(ok, "{loss}: {stderr}");
        let m = metrics(&runs.join(loss));
        assert_eq!(m.len(), 2);
        assert!(m.iter().all(|r| r["train_loss"].as_f64().unwrap().is_finite()));
        let config = std::fs::read_to_string(runs.join(loss).join("config.toml")).unwrap();
        assert!(config.contains(&format!("kind = \"{loss}\"")), "{config}");
        results.push((loss, last_top1(&runs.join(loss))));
    }
    println!("2 epochs, 6 synthetic classes: {results:?}");
}

fn wait_for_epochs(run_dir: &Path, n: usize, child: &mut std::process::Child) {
    let start = std::time::Instant::now();
    loop {
        let done = std::fs::read_to_string(run_dir.join("metrics.jsonl")).map(|t| t.lines().count()).unwrap_or(0);
        if done >= n {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended early ({status})");
        }
        assert!(start.elapsed().as_secs() < 600, "timed out waiting for epoch {n}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let food = dir.path().join("food");
    synth(&food, "food101", 5, 24, 6, 4);
    let runs = dir.path().join("runs");
    let base: Vec<String> = [
        "--threads",
        "1",
        "--seed",
        "9",
        "classify",
        "train",
        "--config",
        "configs/synthetic-food101.toml",
        "--data",
        path_str(&food),
        "--runs-dir",
        path_str(&runs),
        "--set",
        "model.input_size=48",
        "--epochs",
        "5",
        "--set",
        "train.ema_decay=0.9",
        "--set",
        "train.log_every=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let args = |name: &str, extra: &[&str]| -> Vec<String> {
        let mut a = base.clone();
        a.extend(["--name".to_string(), name.to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = skipblock().current_dir(repo()).args(args("straight", &[])).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Killed (SIGKILL) once two epochs are recorded, then resumed.
    let killed: PathBuf = runs.join("killed");
    let mut child = skipblock()
        .current_dir(repo())
        .args(args("killed", &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_epochs(&killed, 2, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let recorded = metrics(&killed).len();
    assert!(recorded < 5, "killed too late ({recorded} epochs)");
    let (ok, _, stderr) = decode(skipblock().current_dir(repo()).args(args("killed", &["--resume"])).output().unwrap());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");

    let (a, b) = (metrics(&runs.join("straight")), metrics(&killed));
    assert_eq!(b.len(), 5);
    for (x, y) in a.iter().zip(&b) {
        for key in ["train_loss", "val_top1", "val_loss", "lr"] {
            assert_eq!(x[key], y[key], "{key} at epoch {}", x["epoch"]);
        }
    }
    // TensorBoard shows the killed and resumed run as the straight one: two events files, and whatever
    // the killed invocation logged after its last checkpoint is dropped by TensorBoard.
    assert_eq!(std::fs::read_dir(killed.join("tb")).unwrap().count(), 2);
    let (a, b) = (read_tensorboard(&runs.join("straight/tb")), read_tensorboard(&killed.join("tb")));
    for tag in ["train/loss_iter", "train/loss", "val/top1", "val/loss", "lr"] {
        assert!(!tb_scalar(&a, tag).is_empty(), "{tag}");
        assert_eq!(tb_scalar(&a, tag), tb_scalar(&b, tag), "{tag}");
    }
    // Without --resume the folder is not silently overwritten.
    let (ok, _, stderr) = decode(skipblock().current_dir(repo()).args(args("killed", &[])).output().unwrap());
    assert!(!ok && error_line(&stderr).contains("--resume"), "{stderr}");
}

#[test]
fn dataset_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let food = dir.path().join("food");
    synth(&food, "food101", 3, 4, 2, 5);
    // A listed image that is corrupt: skipped with a warning naming it, or an error with strict.
    let list = std::fs::read_to_string(food.join("meta/train.txt")).unwrap();
    let first = list.lines().next().unwrap();
    let victim = food.join("images").join(format!("{first}.jpg"));
    std::fs::write(&victim, b"garbage").unwrap();
    let runs = dir.path().join("runs");
    let (ok, stderr) = train(&food, &runs, "lenient", &["--epochs", "1", "--set", "model.input_size=64"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("skipped") && stderr.contains(&format!("{first}.jpg")), "{stderr}");
    let (ok, stderr) =
        train(&food, &runs, "strict", &["--epochs", "1", "--set", "data.strict=true", "--set", "model.input_size=64"]);
    assert!(!ok);
    assert!(error_line(&stderr).contains(&format!("{first}.jpg")), "{stderr}");
    // An empty folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, stderr) = train(&empty, &runs, "empty", &[]);
    assert!(!ok);
    assert!(error_line(&stderr).contains("empty"), "{stderr}");
}

#[test]
fn a_zoo_network_trains_and_evaluates_with_its_stem() {
    // ShuffleNetV2 0.5x at 32x32: the CIFAR stem follows from the input size, lands in the checkpoint
    // record and rebuilds the same network for evaluation.
    let dir = tempfile::tempdir().unwrap();
    let food = dir.path().join("food");
    synth_sized(&food, "food101", 4, 12, 3, 6, 40);
    let runs = dir.path().join("runs");
    let (ok, stderr) = train(
        &food,
        &runs,
        "zoo",
        &[
            "--threads",
            "1",
            "--epochs",
            "1",
            "--loss",
            "bias",
            "--set",
            "model.arch=shufflenetv2-0.5x",
            "--set",
            "model.input_size=32",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(metrics(&runs.join("zoo"))[0]["train_loss"].as_f64().unwrap().is_finite());
    let best = runs.join("zoo/best.safetensors");
    let meta = skipblock_core::checkpoint::load_meta(&best).unwrap();
    assert_eq!((meta.arch.name(), meta.stem.to_string().as_str(), meta.input_size), ("shufflenetv2-0.5x", "cifar", 32));
    let (ok, stdout, stderr) = run(&[
        "--threads",
        "1",
        "classify",
        "eval",
        "--weights",
        path_str(&best),
        "--data",
        path_str(&food),
        "--json",
        "--out",
        path_str(&dir.path().join("eval")),
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["samples"], 12);
    // Fine-tuning onto a new class set: every tensor but the head (`fc.`) comes from the checkpoint, and
    // the stem is the checkpoint's (no `model.stem`, and an input size that alone would pick `imagenet`).
    let folder = dir.path().join("folder");
    synth_sized(&folder, "imagefolder", 3, 8, 2, 8, 40);
    let out = skipblock()
        .current_dir(repo())
        .args(["--threads", "1", "classify", "finetune", "--from", path_str(&best), "--data", path_str(&folder)])
        .args(["--config", "configs/synthetic-food101.toml", "--runs-dir", path_str(&runs), "--name", "tuned"])
        .args(["--epochs", "1", "--set", "model.input_size=72", "--freeze-backbone-epochs", "1"])
        .output()
        .unwrap();
    let (ok, _, stderr) = decode(out);
    assert!(ok, "{stderr}");
    let tuned = skipblock_core::checkpoint::load_meta(&runs.join("tuned/last.safetensors")).unwrap();
    assert_eq!((tuned.arch, tuned.stem, tuned.num_classes), (meta.arch, meta.stem, 3));
    let (a, _) = skipblock_core::tensors::read_safetensors(&best).unwrap();
    let (b, _) = skipblock_core::tensors::read_safetensors(&runs.join("tuned/last.safetensors")).unwrap();
    let conv1 = |v: &[(String, tch::Tensor)]| v.iter().find(|(k, _)| k == "conv1.0.weight").unwrap().1.shallow_clone();
    assert!(conv1(&a).equal(&conv1(&b)), "the frozen backbone kept the checkpoint's first conv");
    // A stem the architecture lacks is one clear error.
    let (ok, stderr) =
        train(&food, &runs, "bad", &["--set", "model.arch=densenet-100-k12", "--set", "model.stem=imagenet"]);
    assert!(!ok && error_line(&stderr).contains("densenet-100-k12 has no imagenet stem"), "{stderr}");
}

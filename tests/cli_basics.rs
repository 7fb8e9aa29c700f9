//! The foundation's promises, through the binary: `info`, one-line errors for bad input, global flags.

mod common;
use common::*;

#[test]
fn info_json_reports_libtorch_2_11_without_any_environment() {
    let out = skipblock().args(["info", "--json"]).env_clear().output().unwrap();
    let (ok, stdout, stderr) = decode(out);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["libtorch_version"].as_str().unwrap().starts_with("2.11.0"), "{v}");
    assert!(v["cpu_threads"].as_i64().unwrap() >= 1);
    assert!(v["cuda_available"].is_boolean());
    assert!(v["cuda_device_count"].is_i64());
    let features: Vec<&str> = v["features"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    if cfg!(feature = "opencv") {
        assert!(v["opencv_version"].as_str().unwrap().starts_with('4'), "{v}");
        assert_eq!(features, ["opencv"]);
        assert_eq!(v["image_backend"], "opencv");
    } else {
        assert!(v["opencv_version"].is_null());
        assert!(features.is_empty());
        assert_eq!(v["image_backend"], "image");
    }
}

#[test]
fn info_text_and_global_flags() {
    let (ok, stdout, stderr) = run(&["--threads", "1", "--seed", "3", "-q", "info"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("libtorch         2.11.0"), "{stdout}");
    assert!(stdout.contains("cpu threads      1"), "--threads respected: {stdout}");
    let (ok, stdout, _) = run(&["info", "--device", "cpu"]);
    assert!(ok && stdout.contains("cpu"));
}

#[test]
fn a_bad_device_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), b"x").unwrap();
    let (ok, _, stderr) = run(&["--device", "tpu:0", "classify", "predict", "--weights", "w.safetensors", "x.jpg"]);
    assert!(!ok);
    assert!(one_error_line(&stderr).contains("invalid device 'tpu:0'"), "{stderr}");
}

#[test]
fn a_corrupt_image_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("m.safetensors");
    let (ok, _, stderr) = run(&["model", "import", "--help"]);
    assert!(ok, "{stderr}");
    // A real (random) checkpoint, then a corrupt image.
    write_random_checkpoint(&ckpt);
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 definitely not a jpeg").unwrap();
    let (ok, _, stderr) = run(&["classify", "predict", "--weights", path_str(&ckpt), path_str(&bad)]);
    assert!(!ok);
    let line = one_error_line(&stderr);
    assert!(line.contains("broken.jpg") && line.contains("cannot decode image"), "{line}");
    let (ok, _, stderr) = run(&["classify", "predict", "--weights", path_str(&ckpt), "/no/such/dog.jpg"]);
    assert!(!ok);
    assert!(one_error_line(&stderr).contains("/no/such/dog.jpg"), "{stderr}");
}

#[test]
fn config_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(&["config", "show", "/no/such/recipe.toml"]);
    assert!(!ok);
    assert!(one_error_line(&stderr).contains("/no/such/recipe.toml"), "{stderr}");

    let bad = dir.path().join("typo.toml");
    std::fs::write(&bad, "task = \"classify\"\n[optim]\nlearning_rate = 0.1\n").unwrap();
    let (ok, _, stderr) = run(&["config", "show", path_str(&bad)]);
    assert!(!ok);
    let line = one_error_line(&stderr);
    assert!(line.contains("learning_rate") && line.contains("typo.toml"), "{line}");

    let (ok, _, stderr) = run(&[
        "config",
        "show",
        &repo().join("configs/imagenet-skipblocknet-m.toml").to_string_lossy(),
        "--set",
        "optim.lrr=1",
    ]);
    assert!(!ok);
    assert!(one_error_line(&stderr).contains("lrr"), "{stderr}");
}

#[test]
fn every_shipped_config_parses_and_overrides_apply() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let (ok, stdout, stderr) = run(&["config", "show", path_str(&path), "--set", "optim.lr=0.5"]);
        assert!(ok, "{}: {stderr}", path.display());
        assert!(stdout.contains("lr = 0.5"), "{stdout}");
        n += 1;
    }
    assert!(n >= 1, "configs/ has recipes");
}

/// Writes a freshly initialised SkipblockNet-XS classifier checkpoint with 3 classes.
pub fn write_random_checkpoint(path: &std::path::Path) {
    use skipblock_core::{checkpoint, model::Arch};
    let (vs, _) =
        skipblock_classify::classifier::build(Arch::SkipblocknetXs, 3, tch::Device::Cpu, Default::default()).unwrap();
    let meta = checkpoint::CheckpointMeta {
        class_names: vec!["a".into(), "b".into(), "c".into()],
        ..checkpoint::CheckpointMeta::new(Arch::SkipblocknetXs, 3, Default::default())
    };
    checkpoint::save(&vs, path, &meta).unwrap();
}

#[test]
fn amp_and_memory_format_flags() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("m.safetensors");
    write_random_checkpoint(&ckpt);
    let syn = dir.path().join("syn");
    let (ok, _, stderr) = run(&[
        "data",
        "synth-cls",
        "--out",
        path_str(&syn),
        "--layout",
        "imagefolder",
        "--classes",
        "2",
        "--train",
        "1",
        "--test",
        "1",
        "--size",
        "32",
    ]);
    assert!(ok, "{stderr}");
    let image = std::fs::read_dir(syn.join("ellipse_plain")).unwrap().next().unwrap().unwrap().path();
    // bf16 inference on the CPU: the same top class, probabilities within bf16's precision.
    let probs = |amp: &str| -> Vec<f64> {
        let (ok, stdout, stderr) = run(&[
            "classify",
            "predict",
            "--weights",
            path_str(&ckpt),
            path_str(&image),
            "--topk",
            "3",
            "--json",
            "--amp",
            amp,
        ]);
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
        v["probabilities"].as_array().unwrap_or_else(|| panic!("{v}")).iter().map(|p| p.as_f64().unwrap()).collect()
    };
    let (fp32, bf16) = (probs("off"), probs("bf16"));
    for (a, b) in fp32.iter().zip(&bf16) {
        assert!((a - b).abs() < 0.05, "{fp32:?} vs {bf16:?}");
    }
    // fp16 is CUDA's: one clear line on the CPU.
    let (ok, _, stderr) = run(&[
        "--device",
        "cpu",
        "classify",
        "predict",
        "--weights",
        path_str(&ckpt),
        path_str(&image),
        "--amp",
        "fp16",
    ]);
    assert!(!ok);
    assert!(one_error_line(&stderr).contains("--amp bf16"), "{stderr}");
    // The recipe keys and their shortcuts.
    let recipe = repo().join("configs/synthetic-food101.toml");
    let (ok, stdout, stderr) =
        run(&["config", "show", path_str(&recipe), "--set", "train.memory_format=channels-last"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("memory_format = \"channels-last\"") && stdout.contains("amp = \"off\""), "{stdout}");
    let (ok, _, stderr) = run(&["config", "show", path_str(&recipe), "--set", "train.amp=fp8"]);
    assert!(!ok);
    assert!(one_error_line(&stderr).contains("fp8"), "{stderr}");
}

/// `skipblock model list | head -0`: a reader that goes away ends the output quietly, without a panic.
#[test]
fn a_closed_stdout_pipe_ends_the_output_quietly() {
    let mut child = skipblock()
        .args(["model", "list", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // closed before the binary has loaded libtorch, let alone written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}

/// `bench loaders` times both loaders against torchvision's pipelines on one core, and still measures
/// them (with a one-line warning) where the reference cannot run, as on a GPU machine with torch alone.
#[test]
fn bench_loaders_compares_with_torchvision_and_survives_its_absence() {
    let per_cpu = |stdout: &str| -> Vec<serde_json::Value> {
        let rows: Vec<serde_json::Value> = serde_json::from_str(stdout).expect("bench JSON");
        rows.into_iter().filter(|r| r["unit"] == "img/cpu-s").collect()
    };
    let (ok, stdout, stderr) = run(&["--threads", "1", "bench", "loaders", "--iters", "1", "--json"]);
    assert!(ok, "{stderr}");
    let rows = per_cpu(&stdout);
    assert_eq!(rows.len(), 2, "{stdout}");
    for r in &rows {
        let (ours, reference, ratio) = (r["ours"].as_f64().unwrap(), r["reference"].as_f64(), r["ratio"].as_f64());
        let (reference, ratio) = (reference.expect("a torchvision figure"), ratio.expect("a ratio"));
        assert!(ours > 0.0 && reference > 0.0, "{r}");
        assert!((ratio - reference / ours).abs() < 1e-9 * ratio.max(1.0), "ratio is ours / reference in time: {r}");
    }
    let (ok, stdout, stderr) =
        run(&["--threads", "1", "bench", "loaders", "--iters", "1", "--json", "--python", "/bin/false"]);
    assert!(ok, "{stderr}");
    assert!(per_cpu(&stdout).iter().all(|r| r["reference"].is_null() && r["ours"].as_f64().unwrap() > 0.0));
    assert_eq!(stderr.matches("no torchvision reference").count(), 2, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

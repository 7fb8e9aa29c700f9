//! The model zoo against torchvision (`tests/python/zoo_ref.py`): with the ImageNet stem each network has
//! torchvision's state-dict keys, shapes and parameter count; torchvision's state dict (random batch-norm
//! statistics) loads through `model import`'s path and gives the same logits in eval mode.

mod common;
use common::*;
use skipblock_classify::classifier::Classifier;
use skipblock_core::model::Arch;
use skipblock_core::tensors;
use std::collections::BTreeMap;
use std::process::Command;
use tch::Device;

/// Runs the torchvision reference for `arch`; returns its JSON report.
fn torchvision(arch: Arch, size: i64, pth: &std::path::Path, out: &std::path::Path) -> serde_json::Value {
    let output = Command::new(python())
        .arg(repo().join("tests/python/zoo_ref.py"))
        .args([arch.name(), "--classes", "1000", "--size", &size.to_string(), "--pth", path_str(pth), "--out"])
        .arg(out)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run python");
    let (ok, stdout, stderr) = decode(output);
    assert!(ok, "zoo_ref.py {arch} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn torchvision_weights_load_and_give_the_same_logits() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    for (arch, size) in [
        (Arch::Shufflenetv2X05, 64),
        (Arch::Shufflenetv2X10, 64),
        (Arch::Mobilenetv2X075, 64),
        (Arch::Mobilenetv2X10, 64),
        (Arch::Squeezenet10, 64),
        (Arch::Squeezenet11, 64),
        (Arch::Densenet121, 64),
        (Arch::Resnet18, 64),
    ] {
        let pth = dir.path().join(format!("{arch}.pth"));
        let out = dir.path().join(format!("{arch}.safetensors"));
        let report = torchvision(arch, size, &pth, &out);
        let mut model = Classifier::load(&pth, Some(arch), Device::Cpu).unwrap();
        assert_eq!(model.meta.num_classes, 1000, "{arch}: class count read off the head");
        // Keys, shapes and the parameter count are torchvision's.
        let ours: BTreeMap<String, Vec<i64>> = model.vs.variables().into_iter().map(|(k, v)| (k, v.size())).collect();
        let theirs: BTreeMap<String, Vec<i64>> = serde_json::from_value(report["keys"].clone()).unwrap();
        assert_eq!(ours, theirs, "{arch}: state-dict keys");
        let trainable: i64 = model.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(trainable, report["params"].as_i64().unwrap(), "{arch}: parameters");
        // Same logits, with the batch norms as trained and folded.
        let (named, _) = tensors::read_safetensors(&out).unwrap();
        let get = |n: &str| named.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
        let (x, expect) = (get("x"), get("logits"));
        let scale = f64::try_from(expect.abs().max()).unwrap();
        assert!(scale > 1e-2, "{arch}: logits not vacuous ({scale})");
        let logits = tch::no_grad(|| model.net.forward_t(&x, false).logits);
        let d = f64::try_from((&logits - &expect).abs().max()).unwrap();
        model.fuse_bn();
        let fused = tch::no_grad(|| model.net.forward_t(&x, false).logits);
        let df = f64::try_from((&fused - &expect).abs().max()).unwrap();
        println!("{arch}: {trainable} parameters, max |Δlogit| {d:.2e} (folded BN {df:.2e}), max |logit| {scale:.3}");
        assert!(d < 1e-4, "{arch}: logits differ by {d} (max |logit| {scale})");
        assert!(df < 1e-4 * scale.max(1.0), "{arch}: folded logits differ by {df}");
    }
}

#[test]
fn model_import_converts_a_torchvision_state_dict() {
    let dir = tempfile::tempdir().unwrap();
    let (pth, out) = (dir.path().join("sq.pth"), dir.path().join("sq.safetensors"));
    torchvision(Arch::Squeezenet11, 32, &pth, &out);
    let converted = dir.path().join("converted.safetensors");
    let (ok, _, stderr) =
        run(&["model", "import", path_str(&pth), "--arch", "squeezenet-1.1", "--out", path_str(&converted)]);
    assert!(ok, "{stderr}");
    let meta = skipblock_core::checkpoint::load_meta(&converted).unwrap();
    assert_eq!((meta.arch, meta.num_classes), (Arch::Squeezenet11, 1000));
    // The wrong architecture for the file is one clear error naming the head it looked for.
    let (ok, _, stderr) =
        run(&["model", "import", path_str(&pth), "--arch", "resnet-18", "--out", path_str(&converted)]);
    let line = one_error_line(&stderr);
    assert!(!ok && line.contains("sq.pth") && line.contains("fc.weight"), "{line}");
}

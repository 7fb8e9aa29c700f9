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

#[test]
fn variance_analysis_works_on_a_zoo_network() {
    use skipblock_core::checkpoint::{self, CheckpointMeta};
    use skipblock_core::model::{NetOptions, Stem};
    let dir = tempfile::tempdir().unwrap();
    let opts = NetOptions { stem: Stem::Cifar, ..Default::default() };
    let (vs, net) = skipblock_classify::classifier::build_with(Arch::Resnet18, 3, Device::Cpu, opts).unwrap();
    // Training passes give the batch norms the statistics of images (eval mode keeps activations alive).
    for _ in 0..3 {
        let _ = net.forward_t(&(tch::Tensor::rand([4, 3, 32, 32], (tch::Kind::Float, Device::Cpu)) * 2.0 - 1.0), true);
    }
    let weights = dir.path().join("r18.safetensors");
    let meta = CheckpointMeta {
        stem: Stem::Cifar,
        input_size: 32,
        ..CheckpointMeta::new(Arch::Resnet18, 3, Default::default())
    };
    checkpoint::save(&vs, &weights, &meta).unwrap();
    let loaded = Classifier::load(&weights, None, Device::Cpu).unwrap();
    assert_eq!((loaded.meta.stem, loaded.net.stem(), loaded.crop), (Stem::Cifar, Stem::Cifar, 32));
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..4u8 {
        let mut img = skipblock_data::RgbImage::filled(40, 36, [i * 50, 200 - i * 40, 90]);
        for (j, p) in img.data.iter_mut().enumerate() {
            *p = p.wrapping_add(((j * 7 + i as usize * 13) % 60) as u8);
        }
        skipblock_data::write_image(&images.join(format!("{i}.png")), &img).unwrap();
    }
    let (ok, stdout, stderr) = run(&[
        "--threads",
        "1",
        "model",
        "variance",
        "--weights",
        path_str(&weights),
        "--data",
        path_str(&images),
        "--batch",
        "2",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let layers = v["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    // conv1, then layer1.0.conv1/conv2, layer1.1.conv1/conv2: the 5th conv is layer1.1.conv2.
    assert_eq!(names[0], "layer1.1.conv2");
    assert_eq!(names[2], "layer4");
    assert_eq!(layers[2]["channels"], 512);
    for l in layers {
        let (avg, max, min) = (l["average"].as_f64().unwrap(), l["max"].as_f64().unwrap(), l["min"].as_f64().unwrap());
        assert!(min <= avg && avg <= max && min >= 0.0 && max > 0.0, "{l}");
    }
}

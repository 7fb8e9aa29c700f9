//! `model summary --json` lands every architecture on the paper's budgets (Table 1, Table 3), and the
//! numbers are counted from the layers (they follow the input size and class count).

mod common;
use common::*;

fn summary(arch: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["model", "summary", "--arch", arch, "--json"];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn the_family_lands_on_table_1() {
    // (arch, params, MACs) of the paper; params within 5 %, MACs within 10 %.
    for (arch, params, macs) in [
        ("skipblocknet-xs", 2.3e6, 81e6),
        ("skipblocknet-s", 3.6e6, 152e6),
        ("skipblocknet-m", 5.5e6, 246e6),
        ("skipblocknet-l", 7.1e6, 364e6),
        ("mobilenetv3-large", 5.4e6, 219e6),
    ] {
        let v = summary(arch, &[]);
        let p = v["params"].as_f64().unwrap();
        let m = v["macs"].as_f64().unwrap();
        assert!((p / params - 1.0).abs() <= 0.05, "{arch}: {p} params vs {params}");
        assert!((m / macs - 1.0).abs() <= 0.10, "{arch}: {m} MACs vs {macs}");
        let layer_macs: f64 = v["layers"].as_array().unwrap().iter().map(|l| l["macs"].as_f64().unwrap()).sum();
        assert_eq!(layer_macs, m, "totals are the sum of the layers");
    }
}

#[test]
fn m_matches_the_release_exactly() {
    let v = summary("skipblocknet-m", &[]);
    assert_eq!(v["params"], 5_532_352);
    assert_eq!(v["macs"], 236_622_048);
    let layers = v["layers"].as_array().unwrap();
    let last_conv = layers.iter().find(|l| l["name"] == "conv.0").unwrap();
    assert_eq!(last_conv["output"], serde_json::json!([1, 960, 7, 7]));
    let skip1 = layers.iter().find(|l| l["name"] == "skip1.core_block.6").unwrap();
    assert_eq!(skip1["output"], serde_json::json!([1, 40, 28, 28]));
}

#[test]
fn counts_follow_input_size_and_classes() {
    let base = summary("skipblocknet-s", &["--classes", "1000"]);
    let fewer = summary("skipblocknet-s", &["--classes", "10"]);
    // The last linear layer shrinks by (1000 − 10) · (1280 + 1) parameters.
    assert_eq!(base["params"].as_i64().unwrap() - fewer["params"].as_i64().unwrap(), 990 * 1281);
    let big = summary("skipblocknet-s", &["--input", "300"]);
    assert!(big["macs"].as_f64().unwrap() > 1.6 * base["macs"].as_f64().unwrap());
    let (ok, _, stderr) = run(&["model", "summary", "--arch", "resnet50"]);
    let line = one_error_line(&stderr);
    assert!(!ok && line.contains("invalid value 'resnet50'") && line.contains("ssdlite-skipblocknet-s"), "{line}");
    // Where a classifier is meant, detectors are not offered.
    let (ok, _, stderr) = run(&["classify", "predict", "--weights", "w", "x.jpg", "--arch", "ssd-skipblocknet-s"]);
    let line = one_error_line(&stderr);
    assert!(!ok && line.contains("invalid value 'ssd-skipblocknet-s'") && line.contains("mobilenetv3-large"), "{line}");
    assert!(
        !line.contains(
            "[possible values: skipblocknet-xs, skipblocknet-s, skipblocknet-m, skipblocknet-l, mobilenetv3-large, ssd"
        ),
        "{line}"
    );
}

#[test]
fn the_model_zoo_lands_on_table_4() {
    // Table 4's counts: the 1000-class ImageNet models for ShuffleNetV2, MobileNetV2 and SqueezeNet (what
    // the paper quotes), the 100-class CIFAR network for DenseNet (k = 12). Within 3 %.
    for (arch, params, extra) in [
        ("shufflenetv2-0.5x", 1.4e6, ["--classes", "1000", "--stem", "imagenet"]),
        ("mobilenetv2-0.75x", 2.6e6, ["--classes", "1000", "--stem", "imagenet"]),
        ("squeezenet-1.0", 1.25e6, ["--classes", "1000", "--stem", "imagenet"]),
        ("densenet-100-k12", 7.0e6, ["--classes", "100", "--stem", "cifar"]),
    ] {
        let mut args = vec!["--input", "32", "--threads", "1"];
        args.extend_from_slice(&extra);
        let v = summary(arch, &args);
        let p = v["params"].as_f64().unwrap();
        assert!((p / params - 1.0).abs() <= 0.03, "{arch}: {p} params vs Table 4's {params}");
        assert_eq!(v["table4"]["params"].as_f64().unwrap(), params, "{arch}: the summary shows Table 4's figure");
        let layer_macs: f64 = v["layers"].as_array().unwrap().iter().map(|l| l["macs"].as_f64().unwrap()).sum();
        assert_eq!(layer_macs, v["macs"].as_f64().unwrap());
    }
    // The stem follows the input size unless asked, and changes the cost, not the parameters (ResNet-18).
    let cifar = summary("resnet-18", &["--input", "32", "--classes", "100", "--threads", "1"]);
    let imagenet = summary("resnet-18", &["--input", "32", "--classes", "100", "--stem", "imagenet", "--threads", "1"]);
    assert_eq!(cifar["stem"], "cifar");
    assert_eq!(imagenet["stem"], "imagenet");
    assert!(cifar["macs"].as_f64().unwrap() > 10.0 * imagenet["macs"].as_f64().unwrap());
    let (ok, _, stderr) = run(&["model", "summary", "--arch", "densenet-100-k12", "--stem", "imagenet"]);
    let line = one_error_line(&stderr);
    assert!(!ok && line.contains("densenet-100-k12") && line.contains("imagenet"), "{line}");
}

#[test]
fn model_list_names_every_architecture_with_task_source_and_parameters() {
    let (ok, stdout, stderr) = run(&["--threads", "1", "model", "list", "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = v.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["arch"].as_str().unwrap()).collect();
    let all: Vec<String> = skipblock_core::Arch::ALL.iter().map(|a| a.to_string()).collect();
    assert_eq!(names, all);
    let row = |name: &str| rows.iter().find(|r| r["arch"] == name).unwrap().clone();
    assert_eq!(
        (row("resnet-18")["source"].as_str(), row("resnet-18")["params"].as_i64()),
        (Some("torchvision"), Some(11_689_512))
    );
    assert_eq!(row("skipblocknet-m")["params"], 5_532_352);
    assert_eq!(row("skipblocknet-xs")["source"], "ours");
    assert_eq!(row("densenet-100-k12")["source"], "paper");
    assert_eq!(row("ssd-skipblocknet-s")["task"], "detect");
    let (ok, text, _) = run(&["--threads", "1", "model", "list"]);
    assert!(ok && text.lines().count() == all.len() + 1 && text.contains("11,689,512"), "{text}");
    // Detection still takes only detectors.
    let err = skipblock_detect::SsdConfig::for_arch(skipblock_core::Arch::Resnet18, 21).unwrap_err().to_string();
    assert!(err.contains("ssd.arch") && err.contains("resnet-18"), "{err}");
}

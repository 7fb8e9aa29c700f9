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

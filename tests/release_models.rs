//! The authors' CIFAR-100 release models (`skipblock_core::model::release`) against the PyTorch
//! reference `tests/python/release_ref.py`: a checkpoint saved as the release saves them loads with
//! exactly the same keys and shapes, the eval-mode logits and bias-loss features agree to 1e-4 (also
//! with the batch norms folded), the parameter counts agree, and every convolution and linear layer
//! reports to the tracer.

mod common;
use common::*;
use skipblock_core::model::release::{DenseNet121, ResNet18, ShuffleNetV2};
use skipblock_core::model::{trace, BlockOptions, Output};
use skipblock_core::tensors;
use std::path::Path;
use std::process::Command;
use tch::{nn, nn::VarStore, Device, Tensor};

/// The three models behind one interface for the test.
enum Model {
    ResNet18(ResNet18),
    DenseNet121(DenseNet121),
    ShuffleNetV2(Box<ShuffleNetV2>),
}

impl Model {
    fn new(name: &str, p: &nn::Path, classes: i64) -> Model {
        let o = BlockOptions::default();
        match name {
            "resnet18" => Model::ResNet18(ResNet18::new(p, classes, o)),
            "densenet121" => Model::DenseNet121(DenseNet121::new(p, classes, o)),
            "shufflenetv2" => Model::ShuffleNetV2(Box::new(ShuffleNetV2::new(p, classes, o))),
            other => panic!("no model {other}"),
        }
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Output {
        match self {
            Model::ResNet18(m) => m.forward_t(xs, train),
            Model::DenseNet121(m) => m.forward_t(xs, train),
            Model::ShuffleNetV2(m) => m.forward_t(xs, train),
        }
    }
    fn fuse_bn(&mut self) {
        match self {
            Model::ResNet18(m) => m.fuse_bn(),
            Model::DenseNet121(m) => m.fuse_bn(),
            Model::ShuffleNetV2(m) => m.fuse_bn(),
        }
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    f64::try_from((a - b).abs().max()).unwrap()
}

/// Runs the reference's `save`; returns its JSON line.
fn save_reference(model: &str, dir: &Path, classes: i64) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo().join("tests/python/release_ref.py"))
        .args(["save", "--model", model, "--out", path_str(dir), "--classes", &classes.to_string(), "--seed", "3"])
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap();
    let (ok, stdout, stderr) = decode(out);
    assert!(ok, "release_ref.py save {model}: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

fn check(name: &str, classes: i64) {
    let dir = tempfile::tempdir().unwrap();
    let info = save_reference(name, dir.path(), classes);
    let vs = VarStore::new(Device::Cpu);
    let mut model = Model::new(name, &vs.root(), classes);
    // The checkpoint as the release writes it ({'net': state_dict, …}) loads with every key matched.
    let named = tensors::read_named_tensors(&dir.path().join(format!("{name}.pth"))).unwrap();
    let report = tensors::assign(&vs, named, true).unwrap();
    assert!(report.is_exact(), "{name}: {}", report.problems());
    let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    assert_eq!(params, info["params"].as_i64().unwrap(), "{name}: parameter count");

    let io: Vec<(String, Tensor)> = tensors::read_named_tensors(&dir.path().join(format!("{name}-io.pth"))).unwrap();
    let get = |k: &str| io.iter().find(|(n, _)| n == k).unwrap().1.shallow_clone();
    let (input, logits, features) = (get("input"), get("logits"), get("features"));
    let (out, records, _) = trace::traced(false, || tch::no_grad(|| model.forward_t(&input, false)));
    let d_logits = max_abs_diff(&out.logits, &logits);
    let d_features = max_abs_diff(&out.features, &features);
    // Every convolution and linear layer reported itself once.
    let layers = vs.variables().iter().filter(|(k, v)| k.ends_with(".weight") && matches!(v.dim(), 2 | 4)).count();
    assert_eq!(records.len(), layers, "{name}: traced layers");
    model.fuse_bn();
    let fused = tch::no_grad(|| model.forward_t(&input, false));
    let d_fused = max_abs_diff(&fused.logits, &logits);
    println!(
        "{name}: {params} parameters, features {:?}; max |Δ| logits {d_logits:.2e}, features {d_features:.2e}, \
         logits with BN folded {d_fused:.2e} (logits up to {:.2})",
        features.size(),
        f64::try_from(logits.abs().max()).unwrap()
    );
    assert!(d_logits < 1e-4 && d_features < 1e-4 && d_fused < 1e-4, "{name}: {d_logits} {d_features} {d_fused}");
    // Training mode still works (batch statistics) and gives other numbers than eval mode.
    let train = model.forward_t(&input, true);
    assert!(max_abs_diff(&train.logits, &logits) > 1e-3, "{name}: train mode uses the batch statistics");
}

#[test]
fn resnet18_matches_the_reference() {
    check("resnet18", 100);
}

#[test]
fn densenet121_matches_the_reference() {
    check("densenet121", 100);
}

#[test]
fn shufflenetv2_matches_the_reference() {
    check("shufflenetv2", 100);
}

//! The multibox loss against an independent PyTorch implementation (`tests/python/multibox_ref.py`):
//! both terms, the number of positives and the gradients, with and without bias-loss weights, on a
//! batch with a sparse image, a crowded one (the negatives cap at P − num_pos) and one without objects.

use skipblock_core::tensors::{read_safetensors, write_safetensors};
use skipblock_detect::multibox::MultiboxLoss;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use tch::{Device, Kind, Tensor};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `.venv` python with torch; missing is a failure, not a skip.
fn python() -> PathBuf {
    let p = repo().join(".venv/bin/python");
    assert!(p.exists(), "{} missing: run scripts/setup.sh (make test does)", p.display());
    p
}

fn inputs() -> (Tensor, Tensor, Tensor, Tensor) {
    tch::manual_seed(11);
    let (b, p, c) = (3, 120, 6);
    let opts = (Kind::Float, Device::Cpu);
    let loc_pred = Tensor::randn([b, p, 4], opts);
    let conf_pred = Tensor::randn([b, p, c], opts) * 2.0;
    let loc_t = Tensor::randn([b, p, 4], opts) * 1.5;
    let classes = Tensor::randint_low(1, c, [b, p], (Kind::Int64, Device::Cpu));
    let keep = Tensor::stack(
        &[
            Tensor::rand([p], opts).lt(0.08),
            Tensor::rand([p], opts).lt(0.6),
            Tensor::zeros([p], (Kind::Bool, Device::Cpu)),
        ],
        0,
    );
    let conf_t = classes * keep;
    (loc_pred, conf_pred, loc_t, conf_t)
}

fn reference(tensors: Vec<(String, Tensor)>) -> BTreeMap<String, Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in.safetensors"), dir.path().join("out.safetensors"));
    write_safetensors(&input, &tensors, &BTreeMap::new()).unwrap();
    let status = Command::new(python())
        .arg(repo().join("tests/python/multibox_ref.py"))
        .args(["--input".as_ref(), input.as_os_str(), "--out".as_ref(), out.as_os_str()])
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run python");
    assert!(status.status.success(), "multibox_ref.py failed: {}", String::from_utf8_lossy(&status.stderr));
    read_safetensors(&out).unwrap().0.into_iter().collect()
}

fn close(name: &str, ours: &Tensor, theirs: &Tensor, tol: f64) {
    let theirs = theirs.to_kind(Kind::Float);
    let diff = (ours - &theirs).abs().max().double_value(&[]);
    let scale = theirs.abs().max().double_value(&[]).max(1.0);
    assert!(diff <= tol * scale, "{name}: max difference {diff} (scale {scale})");
}

fn check(weights: Option<Tensor>) {
    let (loc_pred, conf_pred, loc_t, conf_t) = inputs();
    let mut named = vec![
        ("loc_pred".to_string(), loc_pred.copy()),
        ("conf_pred".to_string(), conf_pred.copy()),
        ("loc_t".to_string(), loc_t.copy()),
        ("conf_t".to_string(), conf_t.copy()),
    ];
    if let Some(w) = &weights {
        named.push(("weights".to_string(), w.copy()));
    }
    let want = reference(named);
    let loc_pred = loc_pred.set_requires_grad(true);
    let conf_pred = conf_pred.set_requires_grad(true);
    let out = MultiboxLoss::default().compute(&loc_pred, &conf_pred, &loc_t, &conf_t, weights.as_ref()).unwrap();
    out.total().backward();
    assert_eq!(out.num_pos, want["num_pos"].int64_value(&[]));
    assert!(out.num_pos > 60, "the crowded image should dominate: {}", out.num_pos);
    close("loc_loss", &out.loc_loss, &want["loc_loss"], 1e-5);
    close("conf_loss", &out.conf_loss, &want["conf_loss"], 1e-5);
    close("loc_grad", &loc_pred.grad(), &want["loc_grad"], 1e-5);
    close("conf_grad", &conf_pred.grad(), &want["conf_grad"], 1e-5);
}

#[test]
fn multibox_loss_matches_pytorch() {
    check(None);
}

#[test]
fn weighted_multibox_loss_matches_pytorch() {
    check(Some(Tensor::from_slice(&[0.5f32, 1.37, 1.5])));
}

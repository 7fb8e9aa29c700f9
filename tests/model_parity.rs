//! SkipblockNet and the losses against the PyTorch reference (`tests/python/skipblock_ref.py`, written
//! from the paper): same weights, same input → same logits, features, loss values and gradients.

mod common;
use common::*;
use skipblock_classify::classifier::{build, Classifier};
use skipblock_core::loss::{Loss, LossConfig, LossKind, VarianceScaling};
use skipblock_core::model::{Arch, BlockOptions};
use skipblock_core::{checkpoint, tensors};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn get(named: &[(String, Tensor)], name: &str) -> Tensor {
    named.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no tensor {name}")).1.shallow_clone()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    f64::try_from((a - b).abs().max()).unwrap()
}

/// A SkipblockNet-M with random weights and non-trivial BN statistics, saved as a checkpoint.
fn random_m(dir: &Path, classes: i64) -> (Classifier, std::path::PathBuf) {
    tch::manual_seed(7);
    let (vs, _) = build(Arch::SkipblocknetM, classes as usize, Device::Cpu, BlockOptions::default()).unwrap();
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.ends_with("running_mean") {
                t.copy_(&(Tensor::randn_like(&t) * 0.1));
            } else if name.ends_with("running_var") {
                t.copy_(&(Tensor::rand_like(&t) * 0.5 + 0.75));
            } else if name.contains("bn") || (t.dim() == 1 && !name.starts_with("classifier")) {
                // BN affine parameters away from 1/0 (Linear biases stay as initialised).
                if name.ends_with("weight") {
                    t.copy_(&(Tensor::rand_like(&t) * 0.5 + 0.75));
                } else if name.ends_with("bias") && !name.contains(".fc.") {
                    t.copy_(&(Tensor::randn_like(&t) * 0.1));
                }
            } else if name.starts_with("classifier") && name.ends_with("weight") {
                t.copy_(&(Tensor::randn_like(&t) * 0.05));
            }
        }
    });
    let path = dir.join("m.safetensors");
    let meta = checkpoint::CheckpointMeta::new(Arch::SkipblocknetM, classes as usize, BlockOptions::default());
    checkpoint::save(&vs, &path, &meta).unwrap();
    (Classifier::load(&path, None, Device::Cpu).unwrap(), path)
}

#[test]
fn official_keys_and_parameter_count_match_the_release() {
    // The Python reference against the authors' key file…
    let reference = repo().join("../shared/reference/skipblocknet-m-official-state-dict.txt");
    let stdout = reference_check(&reference);
    assert!(stdout.contains("check-keys OK"), "{stdout}");
    // …and our variable names and shapes against the same file.
    let (vs, _) = build(Arch::SkipblocknetM, 1000, Device::Cpu, BlockOptions::default()).unwrap();
    let ours: BTreeMap<String, Vec<i64>> = vs.variables().into_iter().map(|(k, v)| (k, v.size())).collect();
    let text = std::fs::read_to_string(&reference).unwrap();
    let mut theirs = BTreeMap::new();
    for line in text.lines().filter(|l| !l.contains("num_batches_tracked") && !l.trim().is_empty()) {
        let (name, rest) = line.split_once(' ').unwrap();
        let dims = rest.rsplit_once(' ').unwrap().0.trim_matches(['(', ')']);
        let shape: Vec<i64> =
            dims.split(',').map(str::trim).filter(|d| !d.is_empty()).map(|d| d.parse().unwrap()).collect();
        theirs.insert(name.to_string(), shape);
    }
    assert_eq!(ours, theirs);
    let trainable: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    assert_eq!(trainable, 5_532_352);
}

fn reference_check(reference: &Path) -> String {
    common::reference(&["check-keys", "--reference", path_str(reference)])
}

#[test]
fn logits_and_features_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let (model, weights) = random_m(dir.path(), 10);
    // A non-square input exercises the adaptive pooling of the skip blocks.
    let x = Tensor::randn([2, 3, 224, 192], (Kind::Float, Device::Cpu));
    let input = dir.path().join("x.safetensors");
    tensors::write_safetensors(&input, &[("x".into(), x.shallow_clone())], &BTreeMap::new()).unwrap();
    let out = dir.path().join("out.safetensors");
    common::reference(&[
        "forward",
        "--weights",
        path_str(&weights),
        "--input",
        path_str(&input),
        "--out",
        path_str(&out),
        "--classes",
        "10",
    ]);
    let (theirs, _) = tensors::read_safetensors(&out).unwrap();
    let ours = tch::no_grad(|| model.net.forward_t(&x, false));
    assert_eq!(ours.features.size(), vec![2, 960, 7, 6]);
    let df = max_abs_diff(&ours.features, &get(&theirs, "features"));
    let dl = max_abs_diff(&ours.logits, &get(&theirs, "logits"));
    assert!(df < 1e-4, "features differ by {df}");
    assert!(dl < 1e-4, "logits differ by {dl}");
    // Not vacuous: the logits are not all ~0.
    assert!(f64::try_from(ours.logits.abs().max()).unwrap() > 1e-3);
}

#[test]
fn a_pytorch_state_dict_loads_as_it_is_and_gives_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let (model, weights) = random_m(dir.path(), 10);
    let pth = dir.path().join("official.pth");
    common::reference(&["save-pth", "--weights", path_str(&weights), "--out", path_str(&pth), "--classes", "10"]);
    let loaded = Classifier::load(&pth, Some(Arch::SkipblocknetM), Device::Cpu).unwrap();
    assert_eq!(loaded.meta.num_classes, 10);
    let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| (model.net.forward_t(&x, false).logits, loaded.net.forward_t(&x, false).logits));
    assert!(max_abs_diff(&a, &b) < 1e-6);

    // Through the CLI: import, then predict with the converted checkpoint.
    let converted = dir.path().join("converted.safetensors");
    let (ok, _, stderr) =
        run(&["model", "import", path_str(&pth), "--arch", "skipblocknet-m", "--out", path_str(&converted)]);
    assert!(ok, "{stderr}");
    let img = dir.path().join("img.png");
    skipblock_data::write_image(&img, &skipblock_data::RgbImage::filled(300, 200, [200, 30, 40])).unwrap();
    for w in [&converted, &pth] {
        let (ok, stdout, stderr) = run(&[
            "classify",
            "predict",
            "--weights",
            path_str(w),
            "--arch",
            "skipblocknet-m",
            "--topk",
            "3",
            "--json",
            path_str(&img),
        ]);
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
        assert_eq!(v["classes"].as_array().unwrap().len(), 3);
        let p: Vec<f64> = v["probabilities"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).collect();
        assert!(p[0] >= p[1] && p[1] >= p[2] && p[0] <= 1.0);
    }
}

#[test]
fn mismatched_state_dicts_name_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (_, weights) = random_m(dir.path(), 10);
    // An M checkpoint offered as an L: every mis-shaped key is named.
    let (vs, _) = build(Arch::SkipblocknetL, 10, Device::Cpu, BlockOptions::default()).unwrap();
    let err = format!("{:#}", checkpoint::load_weights(&vs, &weights).unwrap_err());
    assert!(
        err.contains("mis-shaped")
            && err.contains("base_block.conv.0.weight (file [16, 16, 1, 1], model [24, 24, 1, 1])"),
        "{err}"
    );
    // A state dict missing a key and with an extra one.
    let (mut named, _) = tensors::read_safetensors(&weights).unwrap();
    named.retain(|(n, _)| n != "conv.1.running_var");
    named.push(("head.weight".into(), Tensor::zeros([3], (Kind::Float, Device::Cpu))));
    let broken = dir.path().join("broken.safetensors");
    tensors::write_safetensors(&broken, &named, &BTreeMap::new()).unwrap();
    let (ok, _, stderr) = run(&[
        "model",
        "import",
        path_str(&broken),
        "--arch",
        "skipblocknet-m",
        "--out",
        path_str(&dir.path().join("o.safetensors")),
    ]);
    assert!(!ok);
    let line = one_error_line(&stderr);
    assert!(line.contains("1 missing: conv.1.running_var") && line.contains("1 unexpected: head.weight"), "{line}");
}

fn loss_inputs(n: i64) -> (Tensor, Tensor, Tensor) {
    let logits = Tensor::randn([n, 10], (Kind::Float, Device::Cpu)) * 2.0;
    // Features with clearly different per-sample variances.
    let scale = Tensor::linspace(0.2, 3.0, n, (Kind::Float, Device::Cpu)).view([n, 1, 1, 1]);
    let features = Tensor::randn([n, 16, 4, 4], (Kind::Float, Device::Cpu)) * scale;
    let targets = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    (logits, features, targets)
}

/// Our loss value and d loss / d logits.
fn ours(loss: &mut Loss, logits: &Tensor, features: &Tensor, targets: &Tensor) -> (f64, Tensor, Option<Tensor>) {
    let l = logits.detach().set_requires_grad(true);
    let out = loss.compute(&l, Some(features), targets).unwrap();
    out.loss.backward();
    (f64::try_from(&out.loss).unwrap(), l.grad(), out.weights)
}

#[test]
fn bias_loss_value_weights_and_gradient_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(11);
    for (n, clamp, scaling) in [
        (8, true, VarianceScaling::Local),
        (8, false, VarianceScaling::Local),
        (1, true, VarianceScaling::Local),
        (6, false, VarianceScaling::Global),
    ] {
        let (logits, features, targets) = loss_inputs(n);
        let input = dir.path().join("in.safetensors");
        tensors::write_safetensors(
            &input,
            &[
                ("logits".into(), logits.shallow_clone()),
                ("features".into(), features.shallow_clone()),
                ("targets".into(), targets.shallow_clone()),
            ],
            &BTreeMap::new(),
        )
        .unwrap();
        let out = dir.path().join("out.safetensors");
        let mut args = vec!["bias-loss", "--input", path_str(&input), "--out", path_str(&out)];
        if !clamp {
            args.push("--no-clamp");
        }
        if scaling == VarianceScaling::Global {
            args.extend(["--mode", "global"]);
        }
        common::reference(&args);
        let (theirs, _) = tensors::read_safetensors(&out).unwrap();
        let mut loss = Loss::new(LossConfig { clamp, scaling, ..Default::default() }).unwrap();
        let (value, grad, weights) = ours(&mut loss, &logits, &features, &targets);
        let their_value = f64::try_from(get(&theirs, "loss")).unwrap();
        assert!((value - their_value).abs() < 1e-5, "n={n} clamp={clamp}: {value} vs {their_value}");
        assert!(max_abs_diff(&grad, &get(&theirs, "grad")) < 1e-6, "gradient n={n}");
        assert!(max_abs_diff(&weights.unwrap(), &get(&theirs, "weights")) < 1e-6);
        assert!(value.is_finite());
    }
}

/// Logits, features and targets of a batch of `n` whose per-sample feature scales run from `low` to `high`.
fn scaled_loss_inputs(n: i64, low: f64, high: f64) -> (Tensor, Tensor, Tensor) {
    let logits = Tensor::randn([n, 10], (Kind::Float, Device::Cpu)) * 2.0;
    let scale = Tensor::linspace(low, high, n, (Kind::Float, Device::Cpu)).view([n, 1, 1, 1]);
    let features = Tensor::randn([n, 16, 4, 4], (Kind::Float, Device::Cpu)) * scale;
    let targets = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    (logits, features, targets)
}

#[test]
fn release_bias_loss_matches_the_authors_formula_over_two_batches() {
    // The second batch's variances all lie above the first's minimum, so it is scaled against the
    // running minimum (scaled values above 1): the state carried from batch to batch is compared too.
    // alpha ≠ beta, so exchanging their roles (rate / offset) would show.
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(13);
    let batches = [scaled_loss_inputs(8, 0.2, 3.0), scaled_loss_inputs(8, 1.0, 2.5)];
    let scaling = VarianceScaling::Release;
    let config = LossConfig { scaling, clamp: false, alpha: 0.2, beta: 0.5, ..Default::default() };
    let mut loss = Loss::new(config).unwrap();
    let mut their_min: Option<f64> = None;
    for (step, (logits, features, targets)) in batches.iter().enumerate() {
        let input = dir.path().join(format!("in{step}.safetensors"));
        let named = [
            ("logits".to_string(), logits.shallow_clone()),
            ("features".to_string(), features.shallow_clone()),
            ("targets".to_string(), targets.shallow_clone()),
        ];
        tensors::write_safetensors(&input, &named, &BTreeMap::new()).unwrap();
        let out = dir.path().join(format!("out{step}.safetensors"));
        let mut args = vec!["bias-loss", "--input", path_str(&input), "--out", path_str(&out)];
        args.extend(["--mode", "release", "--no-clamp", "--alpha", "0.2", "--beta", "0.5"]);
        let min_arg = their_min.map(|g| g.to_string());
        if let Some(g) = &min_arg {
            args.extend(["--global-min", g.as_str()]);
        }
        common::reference(&args);
        let (theirs, _) = tensors::read_safetensors(&out).unwrap();
        let before = loss.global_min;
        let (value, grad, weights) = ours(&mut loss, logits, features, targets);
        let weights = weights.unwrap();
        let their_value = f64::try_from(get(&theirs, "loss")).unwrap();
        assert!((value - their_value).abs() < 1e-5, "batch {step}: {value} vs {their_value}");
        let diff = max_abs_diff(&weights, &get(&theirs, "weights"));
        assert!(diff < 1e-5, "batch {step}: weights differ by {diff}");
        assert!(max_abs_diff(&grad, &get(&theirs, "grad")) < 1e-6, "gradient, batch {step}");
        their_min = Some(f64::try_from(get(&theirs, "global_min")).unwrap());
        assert_eq!(loss.global_min, their_min, "running minimum after batch {step}");
        if step == 1 {
            assert_eq!(before, loss.global_min, "the second batch keeps the first batch's minimum");
            let w: Vec<f64> = Vec::<f64>::try_from(&weights.to_kind(Kind::Double)).unwrap();
            let top = w.iter().cloned().fold(f64::MIN, f64::max);
            assert!(top > 0.5f64.exp() - 0.8 + 1e-3, "scaled variance above 1 at the batch maximum: {w:?}");
        }
    }
}

#[test]
fn ce_focal_and_label_smoothing_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(5);
    let (logits, features, targets) = loss_inputs(7);
    let input = dir.path().join("in.safetensors");
    tensors::write_safetensors(
        &input,
        &[("logits".into(), logits.shallow_clone()), ("targets".into(), targets.shallow_clone())],
        &BTreeMap::new(),
    )
    .unwrap();
    for (kind, flag) in [(LossKind::Ce, "ce"), (LossKind::Focal, "focal"), (LossKind::LabelSmoothing, "ls")] {
        let out = dir.path().join(format!("{flag}.safetensors"));
        common::reference(&[
            "other-loss",
            "--input",
            path_str(&input),
            "--out",
            path_str(&out),
            "--kind",
            flag,
            "--gamma",
            "2",
            "--eps",
            "0.1",
        ]);
        let (theirs, _) = tensors::read_safetensors(&out).unwrap();
        let mut loss = Loss::new(LossConfig { kind, gamma: 2.0, smoothing: 0.1, ..Default::default() }).unwrap();
        let (value, grad, _) = ours(&mut loss, &logits, &features, &targets);
        let their_value = f64::try_from(get(&theirs, "loss")).unwrap();
        assert!((value - their_value).abs() < 1e-5, "{flag}: {value} vs {their_value}");
        assert!(max_abs_diff(&grad, &get(&theirs, "grad")) < 1e-6, "{flag} gradient");
    }
}

#[test]
fn wrapped_and_data_parallel_checkpoints_are_unwrapped() {
    let dir = tempfile::tempdir().unwrap();
    let (model, weights) = random_m(dir.path(), 4);
    let pth = dir.path().join("plain.pth");
    common::reference(&["save-pth", "--weights", path_str(&weights), "--out", path_str(&pth), "--classes", "4"]);
    // {"epoch": 3, "state_dict": {"module.<key>": tensor}} as training scripts with DataParallel save.
    let wrapped = dir.path().join("wrapped.pth");
    let script = format!(
        "import torch\nsd = torch.load({:?})\ntorch.save({{'epoch': 3, 'arch': 'm', 'state_dict': {{'module.' + k: v for k, v in sd.items()}}}}, {:?})\n",
        path_str(&pth),
        path_str(&wrapped)
    );
    let out =
        std::process::Command::new(python()).args(["-c", &script]).env("PYTHONWARNINGS", "ignore").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let loaded = Classifier::load(&wrapped, Some(Arch::SkipblocknetM), Device::Cpu).unwrap();
    let x = Tensor::randn([1, 3, 160, 160], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| (model.net.forward_t(&x, false).logits, loaded.net.forward_t(&x, false).logits));
    assert!(max_abs_diff(&a, &b) < 1e-6);
    // Not a zip at all: a clear error naming the file.
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"garbage").unwrap();
    let err = format!("{:#}", Classifier::load(&junk, Some(Arch::SkipblocknetM), Device::Cpu).err().unwrap());
    assert!(err.contains("junk.pth"), "{err}");
}

#[test]
fn variance_analysis_reports_table_5_layers() {
    let dir = tempfile::tempdir().unwrap();
    let (_, weights) = random_m(dir.path(), 4);
    let images = dir.path().join("images/sub");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..5u8 {
        let mut img = skipblock_data::RgbImage::filled(64 + i as u32 * 10, 80, [i * 40, 255 - i * 40, 90]);
        for (j, p) in img.data.iter_mut().enumerate() {
            *p = p.wrapping_add(((j * 7 + i as usize * 13) % 50) as u8);
        }
        skipblock_data::write_image(&images.join(format!("{i}.png")), &img).unwrap();
    }
    let (ok, stdout, stderr) = run(&[
        "model",
        "variance",
        "--weights",
        path_str(&weights),
        "--data",
        path_str(&dir.path().join("images")),
        "--batch",
        "2",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["images"], 5);
    let layers = v["layers"].as_array().unwrap();
    let labels: Vec<&str> = layers.iter().map(|l| l["layer"].as_str().unwrap()).collect();
    assert_eq!(labels, ["5th", "20th", "last"]);
    // The 5th conv is the first block's expand conv (stem, base block ×3, then blocks.0.0).
    assert_eq!(layers[0]["name"], "blocks.0.0.conv.0");
    assert_eq!(layers[2]["name"], "conv.0");
    assert_eq!(layers[2]["channels"], 960);
    for l in layers {
        let (avg, max, min) = (l["average"].as_f64().unwrap(), l["max"].as_f64().unwrap(), l["min"].as_f64().unwrap());
        assert!(min <= avg && avg <= max && min >= 0.0 && max > 0.0, "{l}");
    }
}

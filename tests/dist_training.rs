//! Data-parallel training on this CPU with Gloo over localhost: the binary launched twice (by torchrun, or
//! spawned with the launcher's variables), the weights against a single process with the world's batch,
//! and the failure behaviour (a peer that never arrives, a rank killed mid-run). Every process gets a
//! kill-timeout and the ports are picked free, so nothing here can hang the suite.

mod common;
use common::*;
use skipblock_core::tensors::read_safetensors;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for `child` at most `limit`; kills it and panics past that. Returns (success, stderr, seconds).
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> (bool, String, f64) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            return (status.success(), stderr, start.elapsed().as_secs_f64());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what} still running after {limit:?}: killed; stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn synth(out: &Path) {
    let (ok, _, stderr) = run(&[
        "data",
        "synth-cls",
        "--out",
        path_str(out),
        "--layout",
        "food101",
        "--classes",
        "4",
        "--train",
        "8",
        "--test",
        "4",
        "--size",
        "48",
        "--seed",
        "2",
    ]);
    assert!(ok, "{stderr}");
}

/// `--threads 1 --seed 5 classify <verb> …` on the synthetic recipe at 32×32 with cross-entropy (the
/// bias loss scales the variances per batch: a batch of B and one of 2B differ by design), no dropout,
/// no EMA, no rotation.
fn args(verb: &str, data: &Path, runs: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--threads",
        "1",
        "--seed",
        "5",
        "classify",
        verb,
        "--config",
        "configs/synthetic-food101.toml",
        "--data",
        path_str(data),
        "--runs-dir",
        path_str(runs),
        "--name",
        name,
        "--loss",
        "ce",
        "--set",
        "model.input_size=32",
        "--set",
        "model.dropout=0.0",
        "--set",
        "data.workers=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Spawns rank `rank` of `world` with the launcher's variables (rank 0 hosts the store).
fn spawn_rank(args: &[String], rank: usize, world: usize, port: u16, timeout_s: &str) -> Child {
    skipblock()
        .current_dir(repo())
        .args(args)
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("SKIPBLOCK_DIST_TIMEOUT", timeout_s)
        .env_remove("TORCHELASTIC_USE_AGENT_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// max |a − b| over the tensors of two checkpoints (same names).
fn max_abs_diff(a: &Path, b: &Path) -> f64 {
    let sorted = |p: &Path| {
        let (mut t, _) = read_safetensors(p).unwrap();
        t.sort_by(|x, y| x.0.cmp(&y.0));
        t
    };
    let (ta, tb) = (sorted(a), sorted(b));
    assert_eq!(ta.len(), tb.len());
    let mut worst = 0f64;
    for ((ka, va), (kb, vb)) in ta.iter().zip(&tb) {
        assert_eq!(ka, kb);
        if va.is_floating_point() {
            let d = f64::try_from((va - vb).abs().max()).unwrap();
            worst = worst.max(d);
        } else {
            assert!(va.equal(vb), "{ka}");
        }
    }
    worst
}

fn base_checkpoint(dir: &Path, data: &Path) -> PathBuf {
    let runs = dir.join("runs");
    let out = skipblock()
        .current_dir(repo())
        .args(args("train", data, &runs, "base", &["--epochs", "1", "--batch", "8"]))
        .output()
        .unwrap();
    let (ok, _, stderr) = decode(out);
    assert!(ok, "{stderr}");
    runs.join("base/last.safetensors")
}

/// 2 ranks × batch 2 train the classifier head (backbone frozen: its batch norms in eval mode, as the
/// comparison needs) to the same weights and validation metrics as 1 process × batch 4, through torchrun.
#[test]
fn two_ranks_train_like_one_process_with_the_double_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth(&data);
    let base = base_checkpoint(dir.path(), &data);
    let runs = dir.path().join("runs");
    let finetune = |name: &str, batch: &str| {
        args(
            "finetune",
            &data,
            &runs,
            name,
            &["--from", path_str(&base), "--freeze-backbone-epochs", "10", "--epochs", "2", "--batch", batch],
        )
    };
    let single = skipblock().current_dir(repo()).args(finetune("single", "4")).output().unwrap();
    let (ok, _, stderr) = decode(single);
    assert!(ok, "{stderr}");

    let torchrun = repo().join(".venv/bin/torchrun");
    assert!(torchrun.exists(), "{} missing: run scripts/setup.sh", torchrun.display());
    let child = Command::new(torchrun)
        .current_dir(repo())
        .args(["--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port"])
        .arg(free_port().to_string())
        .args(["--no-python", env!("CARGO_BIN_EXE_skipblock")])
        .args(finetune("ddp", "2"))
        .env("SKIPBLOCK_DIST_TIMEOUT", "60")
        .env("PYTHONWARNINGS", "ignore")
        .env_remove("LD_LIBRARY_PATH")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, stderr, _) = wait_bounded(child, Duration::from_secs(300), "torchrun");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("data-parallel: 2 processes (gloo), batch 2 per process = 4 per step"), "{stderr}");
    assert_eq!(stderr.matches("epoch 2/2").count(), 1, "only rank 0 reports: {stderr}");

    let (single, ddp) = (runs.join("single"), runs.join("ddp"));
    let diff = max_abs_diff(&single.join("last.safetensors"), &ddp.join("last.safetensors"));
    println!("2 ranks × batch 2 vs 1 × batch 4 after 2 epochs (4 steps): max |Δw| = {diff:.3e}");
    assert!(diff < 1e-5, "weights differ by {diff}");
    let moved = max_abs_diff(&base, &single.join("last.safetensors"));
    assert!(moved > 1e-3, "the head trained (moved {moved})");
    let (a, b) = (metrics(&single), metrics(&ddp));
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        for k in ["train_loss", "val_loss", "val_top1", "val_top5"] {
            let (x, y) = (x[k].as_f64().unwrap(), y[k].as_f64().unwrap());
            assert!((x - y).abs() < 1e-5, "{k}: {x} vs {y}");
        }
    }
    let (_, meta) = read_safetensors(&ddp.join("last.state.safetensors")).unwrap();
    assert_eq!(meta.get("world_size").map(String::as_str), Some("2"));

    // --resume on another world size: one clear error line.
    let out = skipblock().current_dir(repo()).args(finetune("ddp", "4")).arg("--resume").output().unwrap();
    let (ok, _, stderr) = decode(out);
    assert!(!ok);
    let line = error_line(&stderr);
    assert!(line.contains("trained by 2 process(es), this run has 1"), "{line}");
}

/// A peer that never arrives, and a rank killed mid-run: the other rank ends with one error line within
/// the timeout (3 s here), writing nothing half.
#[test]
fn a_missing_or_dead_peer_ends_the_other_rank_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth(&data);
    let runs = dir.path().join("runs");

    // Only rank 0 of 2 starts.
    let alone = spawn_rank(&args("train", &data, &runs, "alone", &["--epochs", "1"]), 0, 2, free_port(), "3");
    let (ok, stderr, secs) = wait_bounded(alone, Duration::from_secs(60), "rank 0 without its peer");
    println!("rank 0 without a peer exited after {secs:.1} s");
    assert!(!ok);
    let line = error_line(&stderr);
    println!("{line}");
    assert!(line.contains("rank 0/2: cannot join the process group at 127.0.0.1:"), "{line}");
    assert!(secs < 30.0, "{secs} s");

    // Both start; rank 1 is killed once rank 0 finished its first epoch.
    let port = free_port();
    let long = args("train", &data, &runs, "killed", &["--epochs", "200", "--batch", "2"]);
    let rank0 = spawn_rank(&long, 0, 2, port, "3");
    let mut rank1 = spawn_rank(&long, 1, 2, port, "3");
    let start = Instant::now();
    while !runs.join("killed/metrics.jsonl").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no epoch finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    rank1.kill().unwrap();
    let _ = rank1.wait();
    let (ok, stderr, secs) = wait_bounded(rank0, Duration::from_secs(60), "rank 0 after its peer died");
    println!("rank 0 exited {secs:.2} s after rank 1 was killed");
    assert!(!ok);
    let line = error_line(&stderr);
    println!("{line}");
    assert!(line.starts_with("error: rank 0/2: "), "{line}");
    assert!(secs < 30.0, "{secs} s");
    // What rank 0 wrote is whole: the checkpoints of its last completed epoch read back.
    let (_, meta) = read_safetensors(&runs.join("killed/last.state.safetensors")).unwrap();
    let epoch: usize = meta["epoch"].parse().unwrap();
    assert_eq!(metrics(&runs.join("killed")).len(), epoch);
    assert!(read_safetensors(&runs.join("killed/last.safetensors")).is_ok());
}

/// `detect train` on 2 ranks spawned with the launcher's variables (rank 0 hosting the store): the mAP
/// of the sharded evaluation (each rank detects on half of the split, the detections are gathered) is
/// the plain `detect eval` mAP of the saved checkpoint on the whole split.
#[test]
fn detection_trains_on_two_ranks_and_evaluates_the_whole_split() {
    let dir = tempfile::tempdir().unwrap();
    let voc = dir.path().join("voc");
    let (ok, _, stderr) = run(&[
        "data",
        "synth-voc",
        "--out",
        path_str(&voc),
        "--train",
        "8",
        "--test",
        "6",
        "--size",
        "96",
        "--seed",
        "4",
    ]);
    assert!(ok, "{stderr}");
    let root = voc.join("VOCdevkit/VOC2007");
    let runs = dir.path().join("runs");
    let train: Vec<String> = [
        "--threads",
        "1",
        "detect",
        "train",
        "--config",
        "configs/synthetic-voc.toml",
        "--data",
        path_str(&root),
        "--labels",
        path_str(&root.join("labels.txt")),
        "--epochs",
        "2",
        "--batch",
        "2",
        "--set",
        "ssd.input_size=96",
        "--set",
        "data.workers=1",
        "--runs-dir",
        path_str(&runs),
        "--name",
        "det",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let port = free_port();
    let ranks: Vec<Child> = (0..2).map(|r| spawn_rank(&train, r, 2, port, "60")).collect();
    for (r, child) in ranks.into_iter().enumerate() {
        let (ok, stderr, _) = wait_bounded(child, Duration::from_secs(300), "detect train rank");
        assert!(ok, "rank {r}: {stderr}");
        if r == 1 {
            assert!(!stderr.contains("epoch"), "rank 1 is quiet: {stderr}");
        }
    }
    let records = metrics(&runs.join("det"));
    let val_map = records.last().unwrap()["val_map"].as_f64().unwrap();
    let out = skipblock()
        .current_dir(repo())
        .args(["--threads", "1", "detect", "eval", "--weights"])
        .arg(runs.join("det/last.safetensors"))
        .args(["--data", path_str(&root), "--split", "test", "--json", "--out"])
        .arg(dir.path().join("eval"))
        .output()
        .unwrap();
    let (ok, stdout, stderr) = decode(out);
    assert!(ok, "{stderr}");
    let map = serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["map"].as_f64().unwrap();
    println!("detection, 2 ranks: val_map {val_map} during training, detect eval {map}");
    assert!((map - val_map).abs() < 1e-6, "{map} vs {val_map}");
}

/// `train.sync_bn = true`: the whole network trains (batch norms in training mode), 2 ranks × batch 4
/// with the world's batch statistics give the weights of 1 process × batch 8 (and without synchronised
/// statistics they do not). Two steps: this tiny random network is chaotic (two plain runs that differ
/// only in `--threads` part by ~3e-4 after 4 steps at 64×64, as far as 2 ranks with sync BN from 1
/// process), so the comparison is of the first steps, where rounding has not been amplified yet.
#[test]
fn synchronised_batch_norm_trains_like_one_process_with_the_double_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth(&data);
    let runs = dir.path().join("runs");
    let common = ["--set", "model.input_size=64", "--set", "train.max_iters_per_epoch=2", "--epochs", "1"];
    let with = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<&str> = common.to_vec();
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect()
    };
    let single_args = with(&["--batch", "8"]);
    let single_args: Vec<&str> = single_args.iter().map(String::as_str).collect();
    let out =
        skipblock().current_dir(repo()).args(args("train", &data, &runs, "single", &single_args)).output().unwrap();
    let (ok, _, stderr) = decode(out);
    assert!(ok, "{stderr}");
    let mut diffs = Vec::new();
    for sync in ["true", "false"] {
        let name = format!("sync-{sync}");
        let extra = with(&["--batch", "4", "--set", &format!("train.sync_bn={sync}")]);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let a = args("train", &data, &runs, &name, &extra);
        let port = free_port();
        let ranks: Vec<Child> = (0..2).map(|r| spawn_rank(&a, r, 2, port, "60")).collect();
        for child in ranks {
            let (ok, stderr, _) = wait_bounded(child, Duration::from_secs(300), "rank");
            assert!(ok, "{stderr}");
        }
        diffs.push(max_abs_diff(&runs.join("single/last.safetensors"), &runs.join(&name).join("last.safetensors")));
    }
    println!(
        "2 ranks × batch 4 vs 1 × batch 8, 2 steps, BN in training mode: max |Δw| {:.3e} with sync BN, {:.3e} without",
        diffs[0], diffs[1]
    );
    assert!(diffs[0] < 1e-5, "synchronised: {}", diffs[0]);
    assert!(diffs[1] > 1e-3, "per-rank statistics differ from the double batch's: {}", diffs[1]);
}

/// A 2-rank run stopped after epoch 1 and resumed on 2 ranks ends exactly as the uninterrupted one.
#[test]
fn a_two_rank_run_resumes_to_the_same_weights_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth(&data);
    let runs = dir.path().join("runs");
    let two_ranks = |name: &str, extra: &[&str]| {
        let mut all = vec!["--epochs", "3", "--batch", "4"];
        all.extend_from_slice(extra);
        let a = args("train", &data, &runs, name, &all);
        let port = free_port();
        let ranks: Vec<Child> = (0..2).map(|r| spawn_rank(&a, r, 2, port, "60")).collect();
        for child in ranks {
            let (ok, stderr, _) = wait_bounded(child, Duration::from_secs(300), "rank");
            assert!(ok, "{stderr}");
        }
    };
    two_ranks("straight", &[]);
    two_ranks("split", &["--stop-after", "1"]);
    assert_eq!(metrics(&runs.join("split")).len(), 1);
    two_ranks("split", &["--resume"]);
    let (a, b) = (metrics(&runs.join("straight")), metrics(&runs.join("split")));
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        for k in ["train_loss", "val_loss", "val_top1"] {
            assert_eq!(x[k], y[k], "epoch {}: {k}", x["epoch"]);
        }
    }
    let diff = max_abs_diff(&runs.join("straight/last.safetensors"), &runs.join("split/last.safetensors"));
    assert_eq!(diff, 0.0);
}

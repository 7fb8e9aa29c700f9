//! `classify compare` through the binary: a grid of architectures × losses × seeds on a synthetic
//! CIFAR-100-layout set, stopped (`--max-cells`), killed in the middle of a cell, and run again: finished
//! cells are not retrained, the killed cell resumes from its checkpoint, the summary covers every cell.

mod common;
use common::*;
use std::path::Path;
use std::process::Stdio;

fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .map(|t| t.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
        .unwrap_or_default()
}

/// Bytes and modification time of every file in a run folder (recursively).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            out.push((path.display().to_string(), std::fs::read(&path).unwrap(), modified));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn an_interrupted_grid_continues_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("c100");
    let (ok, _, stderr) = run(&[
        "data",
        "synth-cls",
        "--out",
        path_str(&data),
        "--layout",
        "cifar100",
        "--classes",
        "4",
        "--train",
        "12",
        "--test",
        "4",
        "--seed",
        "2",
    ]);
    assert!(ok, "{stderr}");
    let runs = dir.path().join("runs");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "--threads",
            "1",
            "--seed",
            "5",
            "classify",
            "compare",
            "--config",
            "configs/cifar100-skipblocknet-m.toml",
            "--data",
            path_str(&data),
            "--runs-dir",
            path_str(&runs),
            "--name",
            "grid",
            "--arch",
            "skipblocknet-xs",
            "--loss",
            "ce",
            "--loss",
            "bias",
            "--seeds",
            "2",
            "--epochs",
            "3",
            "--batch",
            "16",
            "--set",
            "train.log_every=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let grid = runs.join("grid");
    let first = grid.join("skipblocknet-xs-ce-seed5");
    let second = grid.join("skipblocknet-xs-ce-seed6");

    // 1. One cell, then the invocation stops; the summary has that cell.
    let (ok, stdout, stderr) =
        decode(skipblock().current_dir(repo()).args(args(&["--max-cells", "1"])).output().unwrap());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("stopping after 1 cell"), "{stderr}");
    assert_eq!(metrics(&first).len(), 3);
    assert!(!second.exists());
    assert!(stdout.contains("1 of 4 cells finished"), "{stdout}");
    let before = snapshot(&first);

    // 2. Killed (SIGKILL) once the second cell has recorded its first epoch.
    let mut child =
        skipblock().current_dir(repo()).args(args(&[])).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = std::time::Instant::now();
    while metrics(&second).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the grid ended before it was killed");
        assert!(start.elapsed().as_secs() < 600, "timed out waiting for the second cell");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = metrics(&second);
    assert!(killed.len() < 3, "killed too late ({} epochs)", killed.len());

    // 3. Again: the first cell is skipped untouched, the second resumes, the rest are trained.
    let (ok, stdout, stderr) = decode(skipblock().current_dir(repo()).args(args(&[])).output().unwrap());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("cell 1/4 (skipblocknet-xs · ce · seed 5): finished, skipped"), "{stderr}");
    assert!(stderr.contains("cell 2/4 (skipblocknet-xs · ce · seed 6): resuming"), "{stderr}");
    assert!(snapshot(&first) == before, "the finished cell's files were rewritten");
    let resumed = metrics(&second);
    assert_eq!(resumed.len(), 3);
    assert_eq!(resumed[..killed.len()], killed[..], "the epochs before the kill are kept as they were");
    assert_eq!(std::fs::read_dir(second.join("tb")).unwrap().count(), 2, "one events file per invocation");

    // The summary covers every cell: two seeds per loss, in all four files.
    assert!(stdout.contains("4 of 4 cells finished"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(grid.join("compare.json")).unwrap()).unwrap();
    assert_eq!(summary["cells_finished"], 4);
    let pairs = summary["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2);
    for (pair, loss) in pairs.iter().zip(["ce", "bias"]) {
        assert_eq!(pair["loss"], loss);
        assert_eq!(pair["seeds"], serde_json::json!([5, 6]));
        let cells: Vec<f64> = summary["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["loss"] == loss)
            .map(|c| c["final_top1"].as_f64().unwrap())
            .collect();
        let mean = cells.iter().sum::<f64>() / 2.0;
        assert!((pair["final_top1"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    }
    let md = std::fs::read_to_string(grid.join("compare.md")).unwrap();
    assert!(md.contains("| skipblocknet-xs | ce | 5, 6 |") && md.contains("| skipblocknet-xs | bias | 5, 6 |"), "{md}");
    assert_eq!(std::fs::read_to_string(grid.join("compare.csv")).unwrap().lines().count(), 3);
    assert!(std::fs::metadata(grid.join("compare.png")).unwrap().len() > 1000);
    // The seeds differ: each seed its own initialisation and data order…
    let loss = |run: &str| metrics(&grid.join(run))[0]["train_loss"].as_f64().unwrap();
    assert_ne!(loss("skipblocknet-xs-bias-seed5"), loss("skipblocknet-xs-bias-seed6"));
    // …and a seed gives the same run again: the first cell of a new grid repeats the first cell's numbers.
    let mut again = args(&["--max-cells", "1"]);
    let at = again.iter().position(|a| a == "grid").unwrap();
    again[at] = "again".into();
    let (ok, _, stderr) = decode(skipblock().current_dir(repo()).args(&again).output().unwrap());
    assert!(ok, "{stderr}");
    let (a, b) = (metrics(&first), metrics(&runs.join("again/skipblocknet-xs-ce-seed5")));
    for (x, y) in a.iter().zip(&b) {
        for key in ["train_loss", "val_top1", "val_loss"] {
            assert_eq!(x[key], y[key], "{key} at epoch {}", x["epoch"]);
        }
    }
    // Each cell's recipe is the grid's with the cell's loss.
    let config = std::fs::read_to_string(grid.join("skipblocknet-xs-bias-seed6/config.toml")).unwrap();
    assert!(config.contains("kind = \"bias\"") && config.contains("arch = \"skipblocknet-xs\""), "{config}");
}

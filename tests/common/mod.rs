//! Helpers shared by the integration tests: running the `skipblock` binary, the PyTorch reference and
//! TensorBoard's reader.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `skipblock` binary built for these tests.
pub fn skipblock() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_skipblock"));
    c.env_remove("LD_LIBRARY_PATH");
    c
}

/// Runs `skipblock ARGS`; returns (status ok, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out = skipblock().args(args).output().expect("run skipblock");
    decode(out)
}

pub fn decode(out: Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `.venv` python with torch 2.11.0 (installed by `make test`). Missing is a failure, not a skip:
/// the cross-checks against PyTorch are part of the suite.
pub fn python() -> PathBuf {
    let p = repo().join(".venv/bin/python");
    assert!(p.exists(), "{} missing: run scripts/setup.sh (make test does)", p.display());
    p
}

/// Runs `tests/python/skipblock_ref.py ARGS`, panicking with its stderr on failure.
pub fn reference(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/python/skipblock_ref.py"))
        .args(args)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run python");
    let (ok, stdout, stderr) = decode(out);
    assert!(ok, "reference {args:?} failed: {stderr}");
    stdout
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The only line of stderr of a failed command, checked to be a single clear line.
pub fn one_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_string()
}

/// The error line of a failed command that also printed progress/info lines: exactly one `error:` line,
/// and no panic.
pub fn error_line(stderr: &str) -> String {
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "expected one error line: {stderr}");
    errors[0].to_string()
}

/// What TensorBoard's own reader (`tests/python/tb_read.py`) finds in a run's `tb/` folder.
pub fn read_tensorboard(tb: &Path) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo().join("tests/python/tb_read.py"))
        .arg(tb)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run python");
    let (ok, stdout, stderr) = decode(out);
    assert!(ok, "tb_read.py failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `[[step, value], …]` of a scalar tag as pairs (none when the tag is missing).
pub fn tb_scalar(tb: &serde_json::Value, tag: &str) -> Vec<(u64, f64)> {
    tb["scalars"][tag]
        .as_array()
        .map(|points| points.iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap())).collect())
        .unwrap_or_default()
}

//! Per-epoch metrics of a run, appended to `metrics.jsonl` (one JSON object per epoch) and `metrics.csv`
//! (columns fixed by the first record; later new keys go to the JSON only). On `--resume` the files are
//! cut back to the epochs the checkpoint holds, so a crash between writing metrics and the checkpoint
//! never leaves a duplicate epoch.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub type Metrics = BTreeMap<String, f64>;

pub struct MetricsLog {
    jsonl: PathBuf,
    csv: PathBuf,
}

impl MetricsLog {
    pub fn new(run_dir: &Path) -> Self {
        MetricsLog { jsonl: run_dir.join("metrics.jsonl"), csv: run_dir.join("metrics.csv") }
    }

    /// Every record written so far.
    pub fn read(&self) -> Result<Vec<Metrics>> {
        let Ok(text) = std::fs::read_to_string(&self.jsonl) else { return Ok(Vec::new()) };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("corrupt line in '{}'", self.jsonl.display())))
            .collect()
    }

    /// Keeps only the records with `epoch <= last_epoch` (1-based epochs).
    pub fn truncate_after(&self, last_epoch: usize) -> Result<()> {
        let kept: Vec<Metrics> = self.read()?.into_iter().filter(|m| m.get("epoch").is_some_and(|&e| e <= last_epoch as f64)).collect();
        let _ = std::fs::remove_file(&self.jsonl);
        let _ = std::fs::remove_file(&self.csv);
        for m in &kept {
            self.append(m)?;
        }
        Ok(())
    }

    pub fn append(&self, record: &Metrics) -> Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.jsonl)
            .with_context(|| format!("cannot write '{}'", self.jsonl.display()))?;
        writeln!(f, "{}", serde_json::to_string(record)?)?;
        let new_csv = !self.csv.exists();
        let columns: Vec<String> = if new_csv {
            record.keys().cloned().collect()
        } else {
            let text = std::fs::read_to_string(&self.csv)?;
            text.lines().next().unwrap_or("").split(',').map(str::to_string).collect()
        };
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.csv)
            .with_context(|| format!("cannot write '{}'", self.csv.display()))?;
        if new_csv {
            writeln!(f, "{}", columns.join(","))?;
        }
        let row: Vec<String> = columns.iter().map(|c| record.get(c).map(|v| format!("{v}")).unwrap_or_default()).collect();
        writeln!(f, "{}", row.join(","))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let log = MetricsLog::new(dir.path());
        for e in 1..=3 {
            log.append(&Metrics::from([("epoch".into(), e as f64), ("loss".into(), 1.0 / e as f64)])).unwrap();
        }
        assert_eq!(log.read().unwrap().len(), 3);
        log.truncate_after(2).unwrap();
        let records = log.read().unwrap();
        assert_eq!(records.len(), 2);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().next().unwrap(), "epoch,loss");
        assert_eq!(csv.lines().count(), 3);
    }
}

//! Per-epoch records of a run ([`EpochRecord`]), appended to `metrics.jsonl` (one JSON object per epoch)
//! and `metrics.csv` (fixed columns, empty where a pipeline has no such metric). On `--resume` the files
//! are cut back to the epochs the checkpoint holds, so a crash between writing metrics and the
//! checkpoint never leaves a duplicate epoch. [`Monitor`] names the metric that decides
//! `best.safetensors` and knows whether higher is better.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What an evaluation measured; each pipeline fills the metrics it has (classification: loss, top-1,
/// top-5; detection: mAP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_top1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_top5: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_map: Option<f64>,
}

/// One epoch of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub train_loss: f64,
    /// Empty on epochs without evaluation (`train.eval_every`).
    #[serde(flatten)]
    pub val: Validation,
    /// Learning rate at the epoch's last iteration.
    pub lr: f64,
    pub images_per_sec: f64,
    pub epoch_seconds: f64,
    /// Samples that could not be read and were skipped.
    pub skipped: usize,
}

impl EpochRecord {
    /// `(column, value)` in the CSV's order; `None` where the metric was not measured.
    pub fn columns(&self) -> [(&'static str, Option<f64>); 10] {
        [
            ("epoch", Some(self.epoch as f64)),
            ("train_loss", Some(self.train_loss)),
            ("val_loss", self.val.val_loss),
            ("val_top1", self.val.val_top1),
            ("val_top5", self.val.val_top5),
            ("val_map", self.val.val_map),
            ("lr", Some(self.lr)),
            ("images_per_sec", Some(self.images_per_sec)),
            ("epoch_seconds", Some(self.epoch_seconds)),
            ("skipped", Some(self.skipped as f64)),
        ]
    }

    /// The losses and the quality metrics that were measured, `(name, value)`, for curves and logs.
    pub fn measured(&self) -> Vec<(&'static str, f64)> {
        self.columns()
            .into_iter()
            .filter(|(k, _)| matches!(*k, "train_loss" | "val_loss" | "val_top1" | "val_top5" | "val_map"))
            .filter_map(|(k, v)| Some((k, v?)))
            .collect()
    }
}

/// The metric that decides `best.safetensors` (`[train] best_metric`): `val-top1`, … (the metrics files'
/// column names, `val_top1`, … are accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Monitor {
    #[serde(alias = "val_top1")]
    ValTop1,
    #[serde(alias = "val_top5")]
    ValTop5,
    #[serde(alias = "val_map")]
    ValMap,
    #[serde(alias = "val_loss")]
    ValLoss,
    #[serde(alias = "train_loss")]
    TrainLoss,
}

impl Monitor {
    /// Accuracy and mAP improve upwards, losses downwards.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Monitor::ValLoss | Monitor::TrainLoss)
    }

    /// Its value in a record (`None` when that epoch did not measure it).
    pub fn of(self, r: &EpochRecord) -> Option<f64> {
        match self {
            Monitor::ValTop1 => r.val.val_top1,
            Monitor::ValTop5 => r.val.val_top5,
            Monitor::ValMap => r.val.val_map,
            Monitor::ValLoss => r.val.val_loss,
            Monitor::TrainLoss => Some(r.train_loss),
        }
    }

    /// Whether `value` beats `best` (any value beats none; NaN never does).
    pub fn improves(self, value: f64, best: Option<f64>) -> bool {
        match best {
            _ if value.is_nan() => false,
            None => true,
            Some(b) if self.higher_is_better() => value > b,
            Some(b) => value < b,
        }
    }
}

pub struct MetricsLog {
    jsonl: PathBuf,
    csv: PathBuf,
}

impl MetricsLog {
    pub fn new(run_dir: &Path) -> Self {
        MetricsLog { jsonl: run_dir.join("metrics.jsonl"), csv: run_dir.join("metrics.csv") }
    }

    /// Every record written so far.
    pub fn read(&self) -> Result<Vec<EpochRecord>> {
        let Ok(text) = std::fs::read_to_string(&self.jsonl) else { return Ok(Vec::new()) };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("corrupt line in '{}'", self.jsonl.display())))
            .collect()
    }

    /// Removes both files (a new run).
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.jsonl);
        let _ = std::fs::remove_file(&self.csv);
    }

    /// Keeps only the records with `epoch <= last_epoch` (1-based epochs).
    pub fn truncate_after(&self, last_epoch: usize) -> Result<()> {
        let kept: Vec<EpochRecord> = self.read()?.into_iter().filter(|m| m.epoch <= last_epoch).collect();
        self.clear();
        for m in &kept {
            self.append(m)?;
        }
        Ok(())
    }

    pub fn append(&self, record: &EpochRecord) -> Result<()> {
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot write '{}'", path.display()))
        };
        writeln!(open(&self.jsonl)?, "{}", serde_json::to_string(record)?)?;
        let new_csv = !self.csv.exists();
        let mut f = open(&self.csv)?;
        let columns = record.columns();
        if new_csv {
            writeln!(f, "{}", columns.map(|(k, _)| k).join(","))?;
        }
        let row = columns.map(|(_, v)| v.map(|v| format!("{v}")).unwrap_or_default());
        writeln!(f, "{}", row.join(","))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, top1: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 1.0 / epoch as f64,
            val: Validation { val_top1: top1, ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn append_read_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let log = MetricsLog::new(dir.path());
        for e in 1..=3 {
            log.append(&record(e, (e != 2).then_some(0.1 * e as f64))).unwrap();
        }
        let records = log.read().unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1], record(2, None), "typed round trip, unmeasured stays None");
        log.truncate_after(2).unwrap();
        assert_eq!(log.read().unwrap().len(), 2);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "epoch,train_loss,val_loss,val_top1,val_top5,val_map,lr,images_per_sec,epoch_seconds,skipped"
        );
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("2,0.5,,,"), "{}", lines[2]);
        let json = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        assert!(json.lines().next().unwrap().contains("\"val_top1\":0.1"), "{json}");
    }

    #[test]
    fn monitors_know_which_way_is_better() {
        assert!(Monitor::ValTop1.improves(0.5, Some(0.4)));
        assert!(!Monitor::ValTop1.improves(0.3, Some(0.4)));
        assert!(Monitor::ValLoss.improves(0.3, Some(0.4)), "a lower loss is better");
        assert!(!Monitor::ValLoss.improves(0.5, Some(0.4)));
        assert!(Monitor::ValMap.improves(0.0, None));
        assert!(!Monitor::ValLoss.improves(f64::NAN, None));
        assert_eq!(Monitor::TrainLoss.of(&record(4, None)), Some(0.25));
        assert_eq!(Monitor::ValTop1.of(&record(4, None)), None);
        for (text, monitor) in [("\"val-loss\"", Monitor::ValLoss), ("\"val_top1\"", Monitor::ValTop1)] {
            assert_eq!(serde_json::from_str::<Monitor>(text).unwrap(), monitor);
        }
    }
}

//! What [`fit`](super::fit::fit) logs to TensorBoard, in `<run>/tb/`: per epoch (step = the 1-based epoch)
//! the measured scalars of its [`EpochRecord`] (`train/loss`, `val/loss`, `val/top1`, `val/top5`,
//! `val/map`, `lr`, `images_per_sec`) and the task's evaluation images; every `train.log_every`
//! iterations the loss of that iteration's batch (`train/loss_iter`, step = iterations done so far).
//!
//! Logging never stops training: the first failure to write is a warning, after which this invocation
//! logs nothing more (the metrics files and checkpoints go on as usual).

use super::metrics::EpochRecord;
use super::tensorboard::{remove_event_files, EventWriter, RgbPng};
use crate::ui;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The events folder of a run.
pub fn tb_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("tb")
}

/// The TensorBoard tag of each record column that is logged.
pub fn scalar_tag(column: &str) -> Option<&'static str> {
    Some(match column {
        "train_loss" => "train/loss",
        "val_loss" => "val/loss",
        "val_top1" => "val/top1",
        "val_top5" => "val/top5",
        "val_map" => "val/map",
        "lr" => "lr",
        "images_per_sec" => "images_per_sec",
        _ => return None,
    })
}

/// The run's TensorBoard log; inactive once writing failed.
pub struct TrainingLog {
    writer: Option<EventWriter>,
    /// Log the iteration loss every this many iterations (0 = never).
    log_every: usize,
    /// Whether a failed evaluation-image hook was reported already.
    images_warned: bool,
}

impl TrainingLog {
    /// A new events file in `<run_dir>/tb/`; a run starting over (`fresh`) first removes the events
    /// files an earlier run left there. A failure is a warning and an inactive log.
    pub fn open(run_dir: &Path, fresh: bool, log_every: usize) -> Self {
        let dir = tb_dir(run_dir);
        let opened = if fresh { remove_event_files(&dir) } else { Ok(()) }.and_then(|()| EventWriter::create(&dir));
        let mut log = TrainingLog { writer: None, log_every, images_warned: false };
        match opened {
            Ok(w) => log.writer = Some(w),
            Err(e) => log.fail(e),
        }
        log
    }

    /// Whether events are still being written.
    pub fn active(&self) -> bool {
        self.writer.is_some()
    }

    /// A resumed run continues after `last_step`, the largest step logged up to its checkpoint
    /// (iterations done, or the epoch): TensorBoard then drops what the interrupted invocation logged
    /// after that checkpoint (steps above `last_step`).
    pub fn resumed(&mut self, last_step: usize) {
        self.attempt(|w| w.session_start(last_step as i64 + 1));
    }

    /// The loss of the batch that made `global_step` iterations, when `global_step` is a multiple of
    /// `log_every`.
    pub fn iteration(&mut self, global_step: usize, loss: f64) {
        if self.log_every > 0 && global_step.is_multiple_of(self.log_every) {
            self.attempt(|w| w.scalars(global_step as i64, &[("train/loss_iter", loss)]));
        }
    }

    /// The epoch's measured scalars, then the evaluation images (when the epoch was evaluated), then a
    /// flush: a crash loses at most the epoch in progress.
    pub fn epoch(&mut self, record: &EpochRecord, images: Option<Result<Vec<(String, RgbPng)>>>) {
        let scalars: Vec<(&str, f64)> =
            record.columns().into_iter().filter_map(|(column, v)| Some((scalar_tag(column)?, v?))).collect();
        let step = record.epoch as i64;
        self.attempt(|w| w.scalars(step, &scalars));
        match images {
            Some(Ok(images)) => {
                for (tag, image) in &images {
                    self.attempt(|w| w.image(step, tag, image));
                }
            }
            Some(Err(e)) if !self.images_warned => {
                self.images_warned = true;
                ui::warn(format!("no evaluation images for TensorBoard: {e:#}"));
            }
            _ => {}
        }
        self.attempt(EventWriter::flush);
    }

    /// Runs `write` on the writer, if still active; a failure deactivates the log with a warning.
    fn attempt(&mut self, write: impl FnOnce(&mut EventWriter) -> Result<()>) {
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = write(w) {
                self.writer = None;
                self.fail(e);
            }
        }
    }

    fn fail(&self, e: anyhow::Error) {
        ui::warn(format!("TensorBoard logging stopped (training continues): {e:#}"));
    }
}

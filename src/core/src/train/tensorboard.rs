//! TensorBoard event files, written in pure Rust: TFRecord framing ([`record`], with CRC-32C from
//! [`crc32c`]) around hand-encoded `tensorflow.Event` protobufs ([`proto`]).
//!
//! An [`EventWriter`] appends to a new `events.out.tfevents.<unix seconds>.<hostname>` file in a folder
//! (TensorBoard merges every events file of a folder, in name order); it starts with the
//! `brain.Event:2` file-version record. [`read_events`] reads such a file back, checking every CRC.

pub mod crc32c;
pub mod proto;
pub mod record;

pub use proto::{Event, RgbPng, Value, What};

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file version TensorBoard expects in the first record.
pub const FILE_VERSION: &str = "brain.Event:2";

/// Appends events to one events file (buffered: [`EventWriter::flush`] makes them durable).
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new events file in it, named
    /// `events.out.tfevents.<unix seconds>.<hostname>` (`.1`, `.2`, … appended when a file of that
    /// name exists: a resume within the same second), and writes the file-version record.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
        let base = format!("events.out.tfevents.{}.{}", now().trunc() as u64, hostname());
        let mut n = 0;
        let (path, file) = loop {
            let name = if n == 0 { base.clone() } else { format!("{base}.{n}") };
            let path = dir.join(name);
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e).with_context(|| format!("cannot create '{}'", path.display())),
            }
        };
        let mut writer = EventWriter { path, out: BufWriter::new(file) };
        writer.write(0, What::FileVersion(FILE_VERSION.into()))?;
        Ok(writer)
    }

    /// The events file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event stamped with the current time.
    pub fn write(&mut self, step: i64, what: What) -> Result<()> {
        let event = Event { wall_time: now(), step, what };
        record::write_record(&mut self.out, &proto::encode(&event))
            .with_context(|| format!("cannot write '{}'", self.path.display()))
    }

    /// Scalars at `step`, in one event (stored as `f32`, as TensorBoard's `simple_value`).
    pub fn scalars(&mut self, step: i64, values: &[(&str, f64)]) -> Result<()> {
        let values = values.iter().map(|&(tag, v)| (tag.to_string(), Value::Scalar(v as f32))).collect();
        self.write(step, What::Summary(values))
    }

    /// An RGB PNG image at `step`.
    pub fn image(&mut self, step: i64, tag: &str, image: &RgbPng) -> Result<()> {
        self.write(step, What::Summary(vec![(tag.to_string(), Value::Image(image.clone()))]))
    }

    /// Marks a restart at `step`: TensorBoard drops events of earlier files at `step` or later.
    pub fn session_start(&mut self, step: i64) -> Result<()> {
        self.write(step, What::SessionStart)
    }

    /// Hands everything written so far to the operating system.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("cannot write '{}'", self.path.display()))
    }
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The machine's name from `/etc/hostname` (characters other than letters, digits, `-`, `_` and `.`
/// replaced by `_`), or `localhost`.
fn hostname() -> String {
    let name = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// The events files in `dir`, in name order (TensorBoard's reading order); none when `dir` is missing.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list '{}'", dir.display()))?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().contains("tfevents")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Deletes the events files in `dir` (a run started over).
pub fn remove_event_files(dir: &Path) -> Result<()> {
    for path in event_files(dir)? {
        std::fs::remove_file(&path).with_context(|| format!("cannot remove '{}'", path.display()))?;
    }
    Ok(())
}

/// Every event of an events file, its CRCs checked.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    let records = record::parse_records(&bytes).with_context(|| format!("corrupt events file '{}'", path.display()))?;
    records
        .into_iter()
        .map(|r| proto::decode(r).with_context(|| format!("corrupt event in '{}'", path.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_file_tensorboard_can_merge_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let tb = dir.path().join("tb");
        let mut w = EventWriter::create(&tb).unwrap();
        let name = w.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("events.out.tfevents.") && name.ends_with(&hostname()), "{name}");
        w.scalars(1, &[("train/loss", 0.25), ("lr", 0.1)]).unwrap();
        let img = RgbPng { png: vec![1, 2, 3], width: 4, height: 2 };
        w.image(1, "val/pr_curves", &img).unwrap();
        w.flush().unwrap();
        // A second writer in the same second gets its own file, read after the first.
        let mut again = EventWriter::create(&tb).unwrap();
        again.session_start(11).unwrap();
        again.scalars(11, &[("train/loss_iter", 1.0 / 3.0)]).unwrap();
        drop(again);
        let files = event_files(&tb).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0], w.path());

        let events = read_events(&files[0]).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].what, What::FileVersion(FILE_VERSION.into()));
        assert!((events[0].wall_time - now()).abs() < 60.0);
        assert_eq!(events[1].step, 1);
        let scalars = vec![("train/loss".to_string(), Value::Scalar(0.25)), ("lr".to_string(), Value::Scalar(0.1))];
        assert_eq!(events[1].what, What::Summary(scalars));
        assert_eq!(events[2].what, What::Summary(vec![("val/pr_curves".into(), Value::Image(img))]));
        let events = read_events(&files[1]).unwrap();
        assert_eq!(events.iter().map(|e| e.step).collect::<Vec<_>>(), [0, 11, 11]);
        assert_eq!(events[1].what, What::SessionStart);
        assert_eq!(events[2].what, What::Summary(vec![("train/loss_iter".into(), Value::Scalar(1.0 / 3.0))]));

        // Corruption is detected and named.
        let mut bytes = std::fs::read(&files[1]).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 0x40;
        std::fs::write(&files[1], bytes).unwrap();
        let err = format!("{:#}", read_events(&files[1]).unwrap_err());
        assert!(err.contains("CRC mismatch") && err.contains("tfevents"), "{err}");

        remove_event_files(&tb).unwrap();
        assert!(event_files(&tb).unwrap().is_empty());
    }
}

//! Console output shared by every command: verbosity (`-v`/`-q`) and one-line messages on stderr.
//! Results (tables, JSON) go to stdout; everything here goes to stderr so `--json` output stays clean.

use std::sync::atomic::{AtomicI8, Ordering};

static VERBOSITY: AtomicI8 = AtomicI8::new(0);

/// 0 = normal, > 0 = more (`-v`, `-vv`), < 0 = quiet (`-q`).
pub fn set_verbosity(level: i8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

pub fn verbosity() -> i8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Whether progress bars and informational lines should be shown.
pub fn show_progress() -> bool {
    verbosity() >= 0
}

pub fn info(message: impl AsRef<str>) {
    if verbosity() >= 0 {
        eprintln!("{}", message.as_ref());
    }
}

pub fn debug(message: impl AsRef<str>) {
    if verbosity() >= 1 {
        eprintln!("debug: {}", message.as_ref());
    }
}

/// Warnings are shown even with `-q`.
pub fn warn(message: impl AsRef<str>) {
    eprintln!("warning: {}", message.as_ref());
}

/// A progress bar on stderr with position, rate and ETA; hidden with `-q`.
pub fn progress_bar(len: u64, label: &str) -> indicatif::ProgressBar {
    if !show_progress() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

//! `skipblock-edge`: exported skipblock networks (ONNX) on images and folders with tract, no libtorch and
//! no OpenCV. See docs/edge.md.

use anyhow::Result;
use clap::{Parser, Subcommand};
use skipblock_edge::app::{self, BenchArgs, ClassifyArgs, DetectArgs, InfoArgs};
use std::io::Write;

#[derive(Parser)]
#[command(
    name = "skipblock-edge",
    version,
    about = "Run an exported skipblock ONNX file (skipblock export) with tract: no libtorch, no OpenCV"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Top-k classes of images and folders (the JSON lines of `skipblock classify predict --json`).
    Classify(ClassifyArgs),
    /// Objects in images and folders (the JSON lines of `skipblock detect predict --json`).
    Detect(DetectArgs),
    /// The file's skipblock metadata, inputs and outputs.
    Info(InfoArgs),
    /// Batch-1 latency: one JSON line {"median_ms":…,"p90_ms":…,"runs":N}.
    Bench(BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Classify(a) => app::classify(a, &mut emit),
        Command::Detect(a) => app::detect(a, &mut emit),
        Command::Info(a) => app::info(a, &mut emit),
        Command::Bench(a) => app::bench(a, &mut emit),
    };
    if let Err(e) = result {
        // A closed pipe (`skipblock-edge … | head`) ends the output quietly.
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            return;
        }
        // One line, whatever the causes' messages hold.
        let msg = format!("{e:#}");
        let msg: Vec<&str> = msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        eprintln!("error: {}", msg.join(" "));
        std::process::exit(1);
    }
}

/// One line on stdout, flushed (an error rather than a panic when the reader has gone).
fn emit(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

//! skipblock-edge: runs a file written by `skipblock export --format onnx` (docs/export.md) with tract,
//! a pure-Rust inference engine: no libtorch, no OpenCV. Images are read and preprocessed by
//! `skipblock-pixels`, the same code as the libtorch predictors', and the JSON lines are those of
//! `skipblock classify predict --json` and `skipblock detect predict --json`.
//!
//! * [`app`]: the commands (the binary's, and as functions for tests);
//! * [`meta`]: the `skipblock` metadata (task, preprocessing, class names, baked NMS thresholds);
//! * [`model`]: loading the file (tract), running it at batch 1;
//! * [`preprocess`]: an image → the normalised network input;
//! * [`classify`]: top-k classes; [`detect`]: detections (the graph's NMS, or the predictor's in Rust);
//! * [`bench`]: batch-1 latency;
//! * [`compare`]: `--json` outputs against each other (edge against `skipblock … predict` in end-to-end tests).

pub mod app;
pub mod bench;
pub mod classify;
pub mod compare;
pub mod detect;
pub mod meta;
pub mod model;
pub mod preprocess;

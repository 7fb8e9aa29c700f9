//! Charts rendered with plotters into an RGB image and saved as PNG through [`crate::image_io`], so
//! they look the same in the OpenCV and the headless build. Text is DejaVu Sans, embedded.
//!
//! * [`canvas`]: the shared canvas, font, sizes, palette and atomic saving;
//! * [`lines`]: line charts ([`LineChart`], [`Series`], [`Axis`]): training curves, precision–recall and
//!   F1–confidence curves;
//! * [`legend`]: legends for them;
//! * [`heatmap`]: matrices in 0–1 ([`Heatmap`]): confusion matrices;
//! * [`bars`]: horizontal bar charts ([`BarChart`]): per-class accuracy;
//! * [`grouped`]: grouped vertical bars with error bars ([`GroupedBarChart`]): `classify compare`;
//! * [`training`]: a run's `curves.png` ([`save_training_curves`]).

pub mod bars;
pub mod canvas;
pub mod grouped;
pub mod heatmap;
pub mod legend;
pub mod lines;
pub mod training;

#[cfg(test)]
mod gallery;

pub use bars::BarChart;
pub use canvas::{palette, Rgb, MUTED, SUMMARY};
pub use grouped::GroupedBarChart;
pub use heatmap::Heatmap;
pub use lines::{Axis, LegendPlace, LineChart, Series};
pub use training::{save_training_curves, CURVES_FILE};

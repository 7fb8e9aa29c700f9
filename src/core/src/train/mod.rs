//! The training machinery shared by classification and detection: optimisers, learning-rate schedules,
//! EMA of weights, metrics files, TensorBoard event files, and the loop itself ([`fit`]) with checkpoints
//! and `--resume`.

pub mod ema;
pub mod fit;
pub mod metrics;
pub mod optim;
pub mod schedule;
pub mod speed;
pub mod tb_log;
pub mod tensorboard;

pub use fit::{fit, FitOptions, FitSummary, RecipeSections, RunSettings, TrainTask};
pub use metrics::{EpochRecord, Monitor, Validation};
pub use tensorboard::RgbPng;

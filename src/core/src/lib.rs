//! skipblock-core: what both pipelines share.
//!
//! * [`batch`]: loader batches to network inputs: pinned non-blocking copies, uint8 → normalised float on
//!   the device;
//! * [`boxes`]: bounding boxes, IoU (plain and VOC), NMS: shared by augmentation and detection;
//! * [`device`]: `--device auto|cpu|cuda|cuda:N` parsing and the runtime report of `skipblock info`;
//! * [`config`]: TOML recipes deserialised into typed structs, with `--set a.b=v` overrides;
//! * [`tensors`]: named-tensor files (`.safetensors`, PyTorch state dicts) and strict assignment;
//! * [`pytorch`]: reading `torch.save` state dicts (`.pth`) without Python;
//! * [`checkpoint`]: atomic `.safetensors` weights plus a record that is enough to rebuild the model;
//! * [`loss`]: bias loss, cross-entropy, focal loss, label smoothing behind one interface;
//! * [`model`]: the named architectures ([`model::Arch`]), SkipblockNet XS/S/M/L, MobileNetV3-Large and
//!   the model zoo behind one [`model::ClassifierNet`] trait, layer tracing, summaries;
//! * [`task`]: the two pipelines ([`task::Task`]): classification and detection;
//! * [`recipe`]: the recipe sections both pipelines share;
//! * [`dist`]: data-parallel training on c10d (torchrun launch, process group, gradient averaging,
//!   sharding);
//! * [`shim`]: the C++ shim (multi-tensor optimiser and EMA steps, autocast, channels-last);
//! * [`loader`]: the parallel, reproducible batch loader both pipelines use;
//! * [`train`]: optimisers, schedules, EMA, metrics files, TensorBoard event files and the training loop
//!   with `--resume`;
//! * [`ui`]: verbosity and console messages.

pub mod batch;
pub mod boxes;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod dist;
pub mod export;
pub mod loader;
pub mod loss;
pub mod model;
pub mod pytorch;
pub mod recipe;
pub mod shim;
pub mod task;
pub mod tensors;
pub mod train;
pub mod ui;

pub use model::Arch;
pub use task::Task;
pub use tch;

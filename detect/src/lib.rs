//! skipblock-detect: the detection pipeline, split as torchvision's `ssd.py`/`ssdlite.py`.
//!
//! * [`config`]: the `[ssd]` section and the named detectors (`ssdlite-skipblocknet-s`, …);
//! * [`ssd`]: the detector: SkipblockNet backbone, extra layers and heads ([`heads`]);
//! * [`anchors`]: the prior boxes (`[ssd.priors]`);
//! * [`box_coder`]: box ↔ offset encoding with the SSD variances;
//! * [`matcher`]: ground truths → per-prior training targets;
//! * [`multibox`]: the multibox loss with hard-negative mining (and bias-loss weights);
//! * [`postprocess`]: decoding, per-class NMS, top-k;
//! * [`eval`]: VOC mAP evaluation (devkit semantics), result files and PR-curve plots;
//! * [`recipe`], [`task`], [`pipeline`]: `detect train` on the shared training loop;
//! * [`evaluate`]: a detector over a VOC split, scored;
//! * [`detector`]: a trained detector from its checkpoint, on images; drawing the results.

pub mod anchors;
pub mod box_coder;
pub mod config;
pub mod detector;
pub mod eval;
pub mod evaluate;
pub mod heads;
pub mod matcher;
pub mod multibox;
pub mod pipeline;
pub mod postprocess;
pub mod recipe;
pub mod ssd;
pub mod task;

pub use config::{config_by_name, SsdConfig, Variant, DETECTOR_ARCHS};
pub use recipe::DetectRecipe;
pub use ssd::{backbone_prefix, load_backbone, Ssd, SsdOutput};

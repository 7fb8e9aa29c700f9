//! skipblock-detect: the detection pipeline, split as torchvision's `ssd.py`/`ssdlite.py`.
//!
//! * [`config`]: the `[ssd]` section (`arch = "ssdlite-skipblocknet-s"`, widths, priors, matching);
//! * [`ssd`]: the detector: SkipblockNet backbone, extra layers and heads ([`heads`]); it owns
//!   `compute_loss` (matching + multibox), `detect` (forward + post-processing) and `fuse_bn`;
//! * [`anchors`]: the prior boxes (`[ssd.priors]`); [`coverage`]: how well they match a dataset's boxes;
//!   [`prior_fit`]: priors fitted to the training boxes (`ssd.priors.auto`);
//! * [`box_coder`]: box ↔ offset encoding with the SSD variances;
//! * [`matcher`]: ground truths → per-prior training targets;
//! * [`multibox`]: the multibox loss with hard-negative mining (and bias-loss weights);
//! * [`postprocess`]: decoding, per-class NMS, top-k;
//! * [`voc_map`]: the VOC AP/mAP maths (devkit semantics), result files, F1 against the score threshold,
//!   the detection confusion matrix, and their pictures;
//! * [`recipe`], [`task`], [`pipeline`]: `detect train` on the shared training loop;
//! * [`evaluator`]: the evaluation runner: a detector over a VOC split, scored with [`voc_map`];
//! * [`eval_images`]: the precision–recall chart and an annotated sample that training logs to
//!   TensorBoard after each evaluation;
//! * [`detector`]: a trained detector from its checkpoint, on images; drawing the results.

pub mod anchors;
pub mod box_coder;
pub mod config;
pub mod coverage;
pub mod detector;
pub mod eval_images;
pub mod evaluator;
pub mod heads;
pub mod matcher;
pub mod multibox;
pub mod pipeline;
pub mod postprocess;
pub mod prior_fit;
pub mod recipe;
pub mod ssd;
pub mod task;
pub mod voc_map;

pub use config::SsdConfig;
pub use detector::Detector;
pub use recipe::DetectRecipe;
pub use ssd::{backbone_prefix, load_backbone, ImageTargets, Ssd, SsdOutput};

//! skipblock-detect: the detection pipeline.
//!
//! Will hold (detection issue), split as torchvision's `ssd.py`/`ssdlite.py`: the SSD/SSDLite head on a
//! SkipblockNet backbone, the anchor (prior) generator, the box coder, matching and the multibox loss,
//! post-processing (NMS), VOC mAP evaluation and `detect train / eval / predict`.
//!
//! Done so far: [`eval`], VOC mAP evaluation (devkit semantics), result files and PR-curve plots.

pub mod eval;

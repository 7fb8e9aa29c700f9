//! PASCAL VOC detection evaluation with the devkit's exact semantics (Everingham et al., The PASCAL VOC Challenge, IJCV 2010):
//!
//! * [`voc_ap`]: ground truth and detection records, per-class AP (VOC2007 11-point or VOC2010+ area)
//!   and mAP, matching py-faster-rcnn's `voc_eval.py`;
//! * [`result_files`]: the devkit's `comp4_det_<split>_<class>.txt` result files, written and read;
//! * [`f1`]: F1 against the score threshold, per class and averaged;
//! * [`confusion`]: the detection confusion matrix (classes + background) at a confidence and an IoU;
//! * [`plot`]: precision–recall curves, F1–confidence curves and the confusion matrix as pictures.
//!
//! Ground truth comes in as plain [`GroundTruth`] structs (the VOC XML parser lives in the data crate).
//! `tests/python/voc_eval_ref.py` is an independent Python implementation the parity test compares to.

pub mod confusion;
pub mod f1;
pub mod plot;
pub mod result_files;
pub mod voc_ap;

#[cfg(test)]
mod gallery;

pub use confusion::DetectionConfusion;
pub use f1::{f1_curves, F1Curves};
pub use plot::{save_confusion_matrix, save_f1_curve, save_pr_curves};
pub use result_files::{read_result_files, result_file_name, write_result_files};
pub use voc_ap::{mean_average_precision, voc_ap, ClassResult, DetectionRecord, EvalResult, GroundTruth, Metric};

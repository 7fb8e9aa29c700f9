//! Comparing `--json` outputs line by line: `skipblock-edge` against `skipblock … predict` (or any two
//! runs), for end-to-end tests of an exported file. Lines are matched in order (the same images in the same
//! order); detections of one image are matched by class and nearest box, so two detections whose scores
//! tie within the tolerance may come in either order.

use crate::meta::Task;
use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The largest differences found.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Diff {
    /// Lines (images) compared.
    pub lines: usize,
    /// Classification: the largest probability difference; detection: the largest score difference.
    pub max_prob: f64,
    /// Detection: the largest box-coordinate difference, in pixels.
    pub max_bbox_px: f64,
    /// Detection: detections compared.
    pub detections: usize,
}

fn lines(text: &str, what: &str) -> Result<Vec<Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{what} line {}: not JSON: {l}", i + 1)))
        .collect()
}

fn f64s(v: &Value, key: &str) -> Result<Vec<f64>> {
    v[key]
        .as_array()
        .with_context(|| format!("no array \"{key}\" in {v}"))?
        .iter()
        .map(|x| x.as_f64().context("not a number"))
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
}

/// `classify --json` lines: the same keys, images, classes and names; probabilities within `tol`.
pub fn classify_lines(a: &str, b: &str, tol: f64) -> Result<Diff> {
    let (a, b) = (lines(a, "first")?, lines(b, "second")?);
    ensure!(a.len() == b.len(), "{} lines against {}", a.len(), b.len());
    let mut diff = Diff { lines: a.len(), ..Diff::default() };
    for (x, y) in a.iter().zip(&b) {
        ensure!(keys(x) == keys(y), "fields {:?} against {:?}", keys(x), keys(y));
        ensure!(x["image"] == y["image"], "image {} against {}", x["image"], y["image"]);
        ensure!(x["classes"] == y["classes"], "{}: classes {} against {}", x["image"], x["classes"], y["classes"]);
        ensure!(x["names"] == y["names"], "{}: names {} against {}", x["image"], x["names"], y["names"]);
        for (p, q) in f64s(x, "probabilities")?.iter().zip(f64s(y, "probabilities")?) {
            diff.max_prob = diff.max_prob.max((p - q).abs());
        }
    }
    ensure!(diff.max_prob <= tol, "probabilities differ by {:.3e} (tolerance {tol:.0e})", diff.max_prob);
    Ok(diff)
}

/// `detect --json` lines: the same keys, sources, sizes and detection counts; each detection matched to
/// one of the same class with its box within `tol_px` pixels and its score within `tol_score`.
pub fn detect_lines(a: &str, b: &str, tol_px: f64, tol_score: f64) -> Result<Diff> {
    let (a, b) = (lines(a, "first")?, lines(b, "second")?);
    ensure!(a.len() == b.len(), "{} lines against {}", a.len(), b.len());
    let mut diff = Diff { lines: a.len(), ..Diff::default() };
    for (x, y) in a.iter().zip(&b) {
        ensure!(keys(x) == keys(y), "fields {:?} against {:?}", keys(x), keys(y));
        for k in ["source", "frame", "width", "height"] {
            ensure!(x[k] == y[k], "{k} {} against {}", x[k], y[k]);
        }
        let (dx, dy) = (
            x["detections"].as_array().context("no detections")?,
            y["detections"].as_array().context("no detections")?,
        );
        ensure!(dx.len() == dy.len(), "{}: {} detections against {}", x["source"], dx.len(), dy.len());
        let mut taken = vec![false; dy.len()];
        for d in dx {
            let bx = f64s(d, "bbox")?;
            let best = dy
                .iter()
                .enumerate()
                .filter(|(j, e)| !taken[*j] && e["class"] == d["class"] && e["name"] == d["name"])
                .map(|(j, e)| {
                    let be = f64s(e, "bbox").unwrap_or_default();
                    let px = bx.iter().zip(&be).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
                    (j, px, be.len())
                })
                .filter(|&(_, _, n)| n == 4)
                .min_by(|p, q| p.1.total_cmp(&q.1));
            let Some((j, px, _)) = best else {
                bail!("{}: no counterpart for detection {d}", x["source"]);
            };
            taken[j] = true;
            let ds = (d["score"].as_f64().context("score")? - dy[j]["score"].as_f64().context("score")?).abs();
            diff.max_bbox_px = diff.max_bbox_px.max(px);
            diff.max_prob = diff.max_prob.max(ds);
            diff.detections += 1;
        }
    }
    ensure!(diff.max_bbox_px <= tol_px, "boxes differ by {:.3e} px (tolerance {tol_px:.0e})", diff.max_bbox_px);
    ensure!(diff.max_prob <= tol_score, "scores differ by {:.3e} (tolerance {tol_score:.0e})", diff.max_prob);
    Ok(diff)
}

/// The end-to-end check of an exported file: runs `model` (a classifier or a detector, from its metadata)
/// on `sources` in-process and compares its `--json` lines with `predict_json`, the output of
/// `skipblock classify predict --json --topk TOPK` or `skipblock detect predict --json` on the same
/// sources (given the same way: the `image`/`source` fields are the paths as expanded). Detectors run with
/// the file's baked thresholds (or `detect predict`'s defaults when it has no NMS): export with the
/// `--conf/--iou/--max-det` given to `detect predict`. Probabilities and scores within `tol`, boxes
/// within `tol_px` pixels.
pub fn edge_against_predict(
    model: &Path,
    sources: &[PathBuf],
    predict_json: &str,
    topk: usize,
    tol: f64,
    tol_px: f64,
) -> Result<Diff> {
    let (_, meta) = crate::model::read_proto(model)?;
    match meta.task {
        Task::Classify => classify_lines(&crate::app::classify_json(model, sources, topk)?, predict_json, tol),
        Task::Detect => {
            detect_lines(&crate::app::detect_json(model, sources, None, None, None)?, predict_json, tol_px, tol)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_lines_catch_other_classes_and_far_probabilities() {
        let a = r#"{"image":"a.jpg","classes":[2,0],"names":[null,null],"probabilities":[0.7,0.2]}"#;
        let near = r#"{"image":"a.jpg","classes":[2,0],"names":[null,null],"probabilities":[0.70001,0.2]}"#;
        let d = classify_lines(a, near, 1e-4).unwrap();
        assert!((d.max_prob - 1e-5).abs() < 1e-9 && d.lines == 1);
        assert!(classify_lines(a, &near.replace("[2,0]", "[0,2]"), 1e-4).is_err());
        assert!(classify_lines(a, &near.replace("0.70001", "0.71"), 1e-4).is_err());
        assert!(classify_lines(a, "", 1e-4).is_err());
    }

    #[test]
    fn detect_lines_match_by_class_and_box() {
        let a = r#"{"source":"a.jpg","frame":null,"width":10,"height":10,"detections":[{"bbox":[1,1,5,5],"class":0,"name":"a","score":0.5},{"bbox":[2,2,6,6],"class":1,"name":"b","score":0.5}],"ms":1.0}"#;
        let swapped = r#"{"source":"a.jpg","frame":null,"width":10,"height":10,"detections":[{"bbox":[2,2,6.001,6],"class":1,"name":"b","score":0.50001},{"bbox":[1,1,5,5],"class":0,"name":"a","score":0.5}],"ms":3.0}"#;
        let d = detect_lines(a, swapped, 1e-2, 1e-4).unwrap();
        assert_eq!(d.detections, 2);
        assert!(d.max_bbox_px > 0.0009 && d.max_bbox_px < 0.0011);
        assert!(detect_lines(
            a,
            &swapped.replace("\"class\":1,\"name\":\"b\"", "\"class\":0,\"name\":\"a\""),
            1e-2,
            1e-4
        )
        .is_err());
        assert!(detect_lines(a, &swapped.replace("6.001", "7"), 1e-2, 1e-4).is_err());
        assert!(detect_lines(a, &swapped.replace("\"width\":10", "\"width\":11"), 1e-2, 1e-4).is_err());
    }
}

//! PASCAL VOC result files: one `comp4_det_<split>_<class>.txt` per class, one line per detection
//! `image_id score xmin ymin xmax ymax` (score with 6 decimals, box with 1, VOC 1-based pixels).

use super::voc_ap::DetectionRecord;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The devkit's file name for `class` on `split`: `comp4_det_<split>_<class>.txt`.
pub fn result_file_name(split: &str, class: &str) -> String {
    format!("comp4_det_{split}_{class}.txt")
}

/// Writes one result file per class into `dir` (created if needed), empty ones included, detections in
/// input order. Returns the files written.
pub fn write_result_files(
    dir: &Path,
    split: &str,
    class_names: &[String],
    dets: &[DetectionRecord],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder '{}'", dir.display()))?;
    let mut texts = vec![String::new(); class_names.len()];
    for d in dets {
        let Some(text) = texts.get_mut(d.class) else {
            bail!(
                "detection in image '{}' has class index {} but there are {} classes",
                d.image_id,
                d.class,
                class_names.len()
            );
        };
        if d.image_id.is_empty() || d.image_id.contains(char::is_whitespace) {
            bail!("image id {:?} cannot be written to a result file (empty or contains whitespace)", d.image_id);
        }
        let [x0, y0, x1, y1] = d.bbox;
        writeln!(text, "{} {:.6} {:.1} {:.1} {:.1} {:.1}", d.image_id, d.score, x0, y0, x1, y1)
            .expect("writing to a String");
    }
    let mut written = Vec::with_capacity(class_names.len());
    for (name, text) in class_names.iter().zip(texts) {
        let path = dir.join(result_file_name(split, name));
        std::fs::write(&path, text).with_context(|| format!("cannot write result file '{}'", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The class a result file name is for: `<anything>_det_<split>_<class>.txt` → `<class>` (the split is
/// the part up to the first `_` after `_det_`, so class names may contain underscores).
fn class_of_file_name(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".txt")?;
    let (_, rest) = stem.split_once("_det_")?;
    let (_split, class) = rest.split_once('_')?;
    (!class.is_empty()).then_some(class)
}

/// Reads every `*_det_*_<class>.txt` in `dir` for the given classes (files of other classes are
/// ignored; a missing class file means no detections of that class; two files for one class are an
/// error). Errors name the file and line of a malformed line.
pub fn read_result_files(dir: &Path, class_names: &[String]) -> Result<Vec<DetectionRecord>> {
    let index: HashMap<&str, usize> = class_names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut files: Vec<Option<PathBuf>> = vec![None; class_names.len()];
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read detections folder '{}'", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list '{}'", dir.display()))?.path();
        let Some(class) = path.file_name().and_then(|n| n.to_str()).and_then(class_of_file_name) else { continue };
        let Some(&c) = index.get(class) else { continue };
        if let Some(previous) = &files[c] {
            bail!(
                "two result files for class '{class}' in '{}': '{}' and '{}'",
                dir.display(),
                previous.display(),
                path.display()
            );
        }
        files[c] = Some(path);
    }
    let mut dets = Vec::new();
    for (c, path) in files.iter().enumerate() {
        if let Some(path) = path {
            read_one(path, c, &mut dets)?;
        }
    }
    Ok(dets)
}

fn read_one(path: &Path, class: usize, out: &mut Vec<DetectionRecord>) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read result file '{}'", path.display()))?;
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        if fields.len() != 6 {
            bail!("{}: expected 'image_id score xmin ymin xmax ymax', found {} fields in {line:?}", at(), fields.len());
        }
        let mut nums = [0f32; 5];
        for (k, (v, what)) in fields[1..].iter().zip(["score", "xmin", "ymin", "xmax", "ymax"]).enumerate() {
            nums[k] = v
                .parse::<f32>()
                .ok()
                .filter(|x| x.is_finite())
                .with_context(|| format!("{}: {what} {v:?} is not a finite number", at()))?;
        }
        out.push(DetectionRecord {
            image_id: fields[0].to_string(),
            class,
            score: nums[0],
            bbox: [nums[1], nums[2], nums[3], nums[4]],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["car", "potted_plant", "plant"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let dets = vec![
            DetectionRecord { image_id: "000001".into(), class: 1, score: 0.912345, bbox: [1.0, 2.5, 30.0, 40.5] },
            DetectionRecord { image_id: "000002".into(), class: 0, score: 0.5, bbox: [10.0, 20.0, 30.0, 40.0] },
            DetectionRecord { image_id: "000001".into(), class: 1, score: 0.25, bbox: [3.0, 4.0, 5.0, 6.0] },
        ];
        let files = write_result_files(dir.path(), "test", &names(), &dets).unwrap();
        assert_eq!(files.len(), 3);
        let text = std::fs::read_to_string(dir.path().join("comp4_det_test_potted_plant.txt")).unwrap();
        assert_eq!(text, "000001 0.912345 1.0 2.5 30.0 40.5\n000001 0.250000 3.0 4.0 5.0 6.0\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("comp4_det_test_plant.txt")).unwrap(), "");
        // Another method's file for an unknown class is ignored.
        std::fs::write(dir.path().join("comp3_det_test_dog.txt"), "x 1 2 3 4\n").unwrap();
        let mut back = read_result_files(dir.path(), &names()).unwrap();
        back.sort_by_key(|d| d.class);
        let mut want = dets.clone();
        want.sort_by_key(|d| d.class);
        assert_eq!(back, want);
        // A missing class file means no detections of it.
        std::fs::remove_file(dir.path().join("comp4_det_test_car.txt")).unwrap();
        assert_eq!(read_result_files(dir.path(), &names()).unwrap().len(), 2);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("comp4_det_val_car.txt"), "a 0.5 1 2 3 4\n\nb 0.5 1 2 3\n").unwrap();
        let e = read_result_files(dir.path(), &names()).unwrap_err().to_string();
        assert!(e.contains("comp4_det_val_car.txt:3") && e.contains("5 fields"), "{e}");
        std::fs::write(dir.path().join("comp4_det_val_car.txt"), "a 0.5 1 2 3 4\nb high 1 2 3 4\n").unwrap();
        let e = read_result_files(dir.path(), &names()).unwrap_err().to_string();
        assert!(e.contains("comp4_det_val_car.txt:2") && e.contains("score \"high\""), "{e}");
        std::fs::write(dir.path().join("comp4_det_test_car.txt"), "").unwrap();
        let e = read_result_files(dir.path(), &names()).unwrap_err().to_string();
        assert!(e.contains("two result files for class 'car'"), "{e}");
        let e = read_result_files(&dir.path().join("nope"), &names()).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn writer_rejects_unwritable_records() {
        let dir = tempfile::tempdir().unwrap();
        let bad = DetectionRecord { image_id: "a b".into(), class: 0, score: 0.5, bbox: [1.0; 4] };
        assert!(write_result_files(dir.path(), "test", &names(), std::slice::from_ref(&bad)).is_err());
        let bad = DetectionRecord { image_id: "a".into(), class: 9, ..bad };
        assert!(write_result_files(dir.path(), "test", &names(), &[bad])
            .unwrap_err()
            .to_string()
            .contains("class index 9"));
    }
}

//! A training run's curves, `curves.png` in its folder: one panel each for the losses, the learning
//! rate (log scale when it spans a decade or more), the validation quality (top-1/top-5 or mAP, 0–1) and
//! the throughput, against the epoch; panels without data are left out. Titled with the run's name.

use super::canvas::{nudge, palette, render, save, text_style, Area, TEXT, TITLE_PX};
use super::lines::{Axis, LegendPlace, LineChart, Series};
use anyhow::Result;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use skipblock_core::train::EpochRecord;
use std::path::Path;

/// The file [`save_training_curves`] writes in the run folder.
pub const CURVES_FILE: &str = "curves.png";

const PANEL_W: u32 = 700;
const PANEL_H: u32 = 440;
const TITLE_H: u32 = 50;

/// One series: `value` of every record that has it.
fn series(history: &[EpochRecord], name: &str, i: usize, value: impl Fn(&EpochRecord) -> Option<f64>) -> Series {
    let points = history.iter().filter_map(|r| Some((r.epoch as f64, value(r)?))).collect();
    Series::line(name, points, palette(i)).marker(if history.len() <= 30 { 3 } else { 0 })
}

fn has_data(s: &Series) -> bool {
    s.points.iter().any(|p| p.0.is_finite() && p.1.is_finite())
}

/// The panels with data, in order: losses, learning rate, quality, throughput.
pub fn panels(history: &[EpochRecord]) -> Vec<LineChart> {
    let panel = |title: &str, y: Axis, series: Vec<Series>| {
        let series: Vec<Series> = series.into_iter().filter(has_data).collect();
        let mut chart = LineChart::new(title, Axis::new("epoch").integer(), y);
        chart.legend = if series.len() > 1 { LegendPlace::Inside } else { LegendPlace::Hidden };
        chart.series = series;
        chart
    };
    let lr: Vec<f64> = history.iter().map(|r| r.lr).filter(|v| v.is_finite() && *v > 0.0).collect();
    let (lo, hi) = lr.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let lr_log = !lr.is_empty() && hi / lo >= 10.0;
    let classification = history.iter().any(|r| r.val.val_top1.is_some() || r.val.val_top5.is_some());
    let detection = history.iter().any(|r| r.val.val_map.is_some());
    let quality_label = match (classification, detection) {
        (true, false) => "accuracy",
        (false, true) => "mAP",
        _ => "metric",
    };
    let charts = vec![
        panel(
            "loss",
            Axis::new("loss"),
            vec![
                series(history, "train loss", 0, |r| Some(r.train_loss)),
                series(history, "val loss", 1, |r| r.val.val_loss),
            ],
        ),
        panel("learning rate", Axis::new("learning rate").log(lr_log), vec![series(history, "lr", 4, |r| Some(r.lr))]),
        panel(
            "validation",
            Axis::new(quality_label).range(0.0, 1.0),
            vec![
                series(history, "val top-1", 2, |r| r.val.val_top1),
                series(history, "val top-5", 3, |r| r.val.val_top5),
                series(history, "val mAP", 2, |r| r.val.val_map),
            ],
        ),
        panel("throughput", Axis::new("images/s"), vec![series(history, "images/s", 9, |r| Some(r.images_per_sec))]),
    ];
    charts.into_iter().filter(|c| !c.series.is_empty()).collect()
}

/// Draws `panels` two per row under `title`; `None` when there is nothing to draw.
pub fn render_panels(title: &str, panels: &[LineChart]) -> Result<Option<crate::RgbImage>> {
    if panels.is_empty() {
        return Ok(None);
    }
    let cols = panels.len().min(2);
    let rows = panels.len().div_ceil(2);
    let (w, h) = (PANEL_W * cols as u32, TITLE_H + PANEL_H * rows as u32);
    let img = render(w, h, |root: &Area| {
        let style = text_style(TITLE_PX + 2.0, TEXT).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(title, &style, (w as i32 / 2, TITLE_H as i32 / 2 + 4 + nudge(TITLE_PX)))?;
        let (_, body) = root.split_vertically(TITLE_H);
        for (panel, area) in panels.iter().zip(body.split_evenly((rows, cols))) {
            panel.draw(&area.margin(0, 10, 10, 10))?;
        }
        Ok(())
    })?;
    Ok(Some(img))
}

/// Draws the curves of a run from its per-epoch records into `dir`/[`CURVES_FILE`], titled with the
/// folder's name; nothing when there are no records. The file is replaced atomically.
pub fn save_training_curves(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "training run".into());
    match render_panels(&name, &panels(history))? {
        Some(img) => save(&dir.join(CURVES_FILE), &img),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skipblock_core::train::Validation;

    fn record(epoch: usize, val: Validation) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 3.0 / epoch as f64,
            val,
            lr: 0.1 * 0.5f64.powi(epoch as i32),
            images_per_sec: 900.0 + epoch as f64,
            ..Default::default()
        }
    }

    fn classification(epoch: usize) -> EpochRecord {
        let acc = 1.0 - 1.0 / (epoch as f64 + 1.0);
        record(
            epoch,
            Validation {
                val_loss: Some(2.5 / epoch as f64 + 0.2),
                val_top1: Some(acc * 0.8),
                val_top5: Some(acc),
                val_map: None,
            },
        )
    }

    #[test]
    fn four_panels_with_every_series_in_its_colour() {
        let history: Vec<EpochRecord> = (1..=12).map(classification).collect();
        let panels = panels(&history);
        assert_eq!(
            panels.iter().map(|p| p.title.as_str()).collect::<Vec<_>>(),
            ["loss", "learning rate", "validation", "throughput"]
        );
        assert!(panels[1].y.log, "0.05 … 2.4e-5 spans decades");
        assert_eq!(panels[2].y.label, "accuracy");
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("my-run");
        save_training_curves(&run, &history).unwrap();
        let img = crate::read_image(&run.join(CURVES_FILE)).unwrap();
        assert_eq!((img.width, img.height), (2 * PANEL_W, TITLE_H + 2 * PANEL_H));
        for c in [0, 1, 2, 3, 4, 9] {
            let n = img.data.chunks(3).filter(|p| *p == palette(c)).count();
            assert!(n > 100, "colour {c}: {n} pixels");
        }
        assert!(!run.read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("tmp")));
    }

    #[test]
    fn panels_without_data_are_left_out() {
        let detection: Vec<EpochRecord> = (1..=3)
            .map(|e| record(e, Validation { val_map: (e > 1).then_some(0.1 * e as f64), ..Default::default() }))
            .collect();
        let panels = panels(&detection);
        assert_eq!(panels.len(), 4);
        assert_eq!(panels[0].series.len(), 1, "no val loss in detection");
        assert_eq!(panels[2].y.label, "mAP");
        assert_eq!(panels[2].series[0].points.len(), 2);

        let nan = vec![EpochRecord { epoch: 1, train_loss: f64::NAN, lr: 0.0, ..Default::default() }];
        let panels = super::panels(&nan);
        assert_eq!(panels.len(), 2, "lr 0 and 0 images/s are data; a NaN loss is not");
        let dir = tempfile::tempdir().unwrap();
        save_training_curves(dir.path(), &nan).unwrap();
        save_training_curves(&dir.path().join("empty"), &[]).unwrap();
        assert!(!dir.path().join("empty").join(CURVES_FILE).exists());
        let img = crate::read_image(&dir.path().join(CURVES_FILE)).unwrap();
        assert_eq!((img.width, img.height), (2 * PANEL_W, TITLE_H + PANEL_H));
    }
}

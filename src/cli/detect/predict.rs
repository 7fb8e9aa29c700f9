//! `skipblock detect predict`: images, folders, video files and webcams through a trained detector;
//! annotated images / videos written to `--out`, one JSON record per image or frame with `--json`,
//! a live window with `--show`.

use crate::cli::GlobalArgs;
use anyhow::{bail, Result};
use clap::Args;
use skipblock_core::ui;
use skipblock_data::annotate::{text_box, Style};
use skipblock_data::predictions::{DetectionRecord, PostprocessConfig};
use skipblock_data::video::{is_video, VideoReader, VideoWriter, Window};
use skipblock_data::{folder, read_image, write_image, RgbImage};
use skipblock_detect::detector::{annotate, Detector, PixelDetection};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Detector checkpoint (from `detect train`).
    #[arg(long)]
    pub weights: PathBuf,
    /// Images, folders of images, or video files.
    pub sources: Vec<PathBuf>,
    /// Read frames from webcam N instead.
    #[arg(long)]
    pub webcam: Option<i32>,
    /// Score threshold.
    #[arg(long, default_value_t = 0.25)]
    pub conf: f32,
    /// Per-class NMS IoU.
    #[arg(long, default_value_t = 0.45)]
    pub iou: f32,
    /// Detections kept per image.
    #[arg(long, default_value_t = 100)]
    pub max_det: usize,
    /// Where annotated images and videos are written.
    #[arg(long, default_value = "runs/detect-predict")]
    pub out: PathBuf,
    /// Don't write annotated images or videos.
    #[arg(long)]
    pub no_save: bool,
    /// Show a window with the detections and the live FPS (q or Esc closes it).
    #[arg(long)]
    pub show: bool,
    /// One JSON record per image or frame on stdout.
    #[arg(long)]
    pub json: bool,
    /// Stop a video or webcam after this many frames.
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Mixed precision of the forward pass (autocast): off, bf16 (CPU and CUDA) or fp16 (CUDA).
    #[arg(long, value_enum, default_value_t = skipblock_core::recipe::Amp::Off)]
    pub amp: skipblock_core::recipe::Amp,
}

struct Session {
    detector: Detector,
    post: PostprocessConfig,
    window: Option<Window>,
    json: bool,
    images: usize,
    seconds: f64,
}

impl Session {
    fn detect(&mut self, img: &RgbImage) -> Result<(Vec<PixelDetection>, f64)> {
        let t = Instant::now();
        let dets = self.detector.detect(img, &self.post)?;
        let s = t.elapsed().as_secs_f64();
        self.images += 1;
        self.seconds += s;
        Ok((dets, s * 1e3))
    }

    fn emit(&self, source: &str, frame: Option<usize>, img: &RgbImage, dets: &[PixelDetection], ms: f64) -> Result<()> {
        let record = DetectionRecord {
            source: source.to_string(),
            frame,
            width: img.width,
            height: img.height,
            detections: dets,
            ms,
        };
        if self.json {
            println!("{}", serde_json::to_string(&record)?);
        } else if frame.is_none() {
            ui::info(record.text());
        }
        Ok(())
    }

    /// Shows a frame; false when the window was closed.
    fn show(&mut self, img: &RgbImage, fps: f64) -> Result<bool> {
        match self.window.as_mut() {
            Some(w) => {
                let mut shown = img.clone();
                let style = Style::for_image(img.width, img.height);
                let margin = style.line_width as i64;
                text_box(&mut shown, margin, margin, &format!("fps {fps:.1}"), &style, [255, 255, 255], [0, 0, 0]);
                w.show(&shown)
            }
            None => Ok(true),
        }
    }
}

/// `out/<name>`, with a numeric suffix when an earlier source of this run took the name.
fn unique_path(out: &Path, name: &str, used: &mut std::collections::HashSet<PathBuf>) -> PathBuf {
    let mut path = out.join(name);
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "jpg"));
    let mut i = 2;
    while used.contains(&path) {
        path = out.join(format!("{stem}_{i}.{ext}"));
        i += 1;
    }
    used.insert(path.clone());
    path
}

fn run_stream(
    s: &mut Session,
    mut reader: VideoReader,
    save: Option<PathBuf>,
    max_frames: Option<usize>,
) -> Result<usize> {
    let mut writer: Option<VideoWriter> = None;
    let mut frame = 0usize;
    let started = Instant::now();
    while let Some(img) = reader.next_frame()? {
        let (dets, ms) = s.detect(&img)?;
        s.emit(&reader.name, Some(frame), &img, &dets, ms)?;
        let annotated = annotate(&img, &dets);
        if let Some(path) = &save {
            if writer.is_none() {
                writer = Some(VideoWriter::create(path, reader.fps, img.width, img.height)?);
            }
            writer.as_mut().expect("created above").write(&annotated)?;
        }
        frame += 1;
        let fps = frame as f64 / started.elapsed().as_secs_f64().max(1e-9);
        if !s.show(&annotated, fps)? || max_frames.is_some_and(|m| frame >= m) {
            break;
        }
    }
    if let Some(path) = save.filter(|_| writer.is_some()) {
        ui::info(format!("{}: {frame} frame(s) -> {}", reader.name, path.display()));
    } else {
        ui::info(format!("{}: {frame} frame(s)", reader.name));
    }
    Ok(frame)
}

pub fn run(global: &GlobalArgs, a: &PredictArgs) -> Result<()> {
    if a.sources.is_empty() && a.webcam.is_none() {
        bail!("nothing to detect: give images, folders or videos, or --webcam N");
    }
    if !(0.0..=1.0).contains(&a.conf) || !(0.0..=1.0).contains(&a.iou) {
        bail!("--conf and --iou must be in [0, 1]");
    }
    let device = global.device()?;
    let detector = Detector::load(&a.weights, device)?;
    let post = PostprocessConfig::for_predict(a.conf, a.iou, a.max_det);
    let window = if a.show { Some(Window::open("skipblock detect")?) } else { None };
    let mut s = Session { detector, post, window, json: a.json, images: 0, seconds: 0.0 };
    let save = !a.no_save;
    if save {
        std::fs::create_dir_all(&a.out)?;
    }
    let mut used = std::collections::HashSet::new();
    // Videos are taken as they are; folders and images expand to image files.
    let mut items: Vec<PathBuf> = Vec::new();
    for src in &a.sources {
        if src.is_file() && is_video(src) {
            items.push(src.clone());
        } else {
            items.extend(folder::expand_sources(std::slice::from_ref(src))?);
        }
    }
    let mut written = 0;
    for path in &items {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "image.jpg".into());
        if is_video(path) {
            let reader = VideoReader::open_file(path)?;
            let stem = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "video".into());
            let out = save.then(|| unique_path(&a.out, &format!("{stem}.mp4"), &mut used));
            run_stream(&mut s, reader, out, a.max_frames)?;
            written += usize::from(save);
            continue;
        }
        let img = read_image(path)?;
        let (dets, ms) = s.detect(&img)?;
        s.emit(&path.display().to_string(), None, &img, &dets, ms)?;
        let annotated = annotate(&img, &dets);
        if save {
            write_image(&unique_path(&a.out, &name, &mut used), &annotated)?;
            written += 1;
        }
        if !s.show(&annotated, 1e3 / ms.max(1e-3))? {
            break;
        }
    }
    if let Some(index) = a.webcam {
        let reader = VideoReader::open_webcam(index)?;
        let out = save.then(|| unique_path(&a.out, &format!("webcam{index}.mp4"), &mut used));
        run_stream(&mut s, reader, out, a.max_frames)?;
    }
    ui::info(format!(
        "{} image(s)/frame(s), {:.1} ms each on average ({:.1} images/s){}",
        s.images,
        s.seconds * 1e3 / s.images.max(1) as f64,
        s.images as f64 / s.seconds.max(1e-9),
        if save && written > 0 { format!("; results in {}", a.out.display()) } else { String::new() }
    ));
    Ok(())
}

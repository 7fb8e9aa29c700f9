//! Video files, webcams and preview windows through OpenCV (`opencv` feature). The headless build has
//! the same API, and every function says clearly that it needs OpenCV.
//!
//! A stream that ends or closes gives `Ok(None)` from [`VideoReader::next_frame`]: callers stop cleanly.

use crate::image_io::RgbImage;
#[cfg(not(feature = "opencv"))]
use anyhow::bail;
use anyhow::Result;
use std::path::Path;

/// Extensions treated as video files.
pub const VIDEO_EXTENSIONS: [&str; 8] = ["mp4", "avi", "mov", "mkv", "webm", "m4v", "mpg", "mpeg"];

pub fn is_video(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[cfg(feature = "opencv")]
mod backend {
    use super::*;
    use anyhow::{anyhow, bail, Context};
    use opencv::{core, highgui, imgproc, prelude::*, videoio};

    fn to_rgb(frame: &Mat) -> Result<RgbImage> {
        let mut rgb = Mat::default();
        imgproc::cvt_color_def(frame, &mut rgb, imgproc::COLOR_BGR2RGB).map_err(|e| anyhow!("{e}"))?;
        let rgb = if rgb.is_continuous() { rgb } else { rgb.try_clone().map_err(|e| anyhow!("{e}"))? };
        RgbImage::new(rgb.cols() as u32, rgb.rows() as u32, rgb.data_bytes().map_err(|e| anyhow!("{e}"))?.to_vec())
    }

    fn to_bgr(img: &RgbImage) -> Result<Mat> {
        let flat = Mat::from_slice(&img.data).map_err(|e| anyhow!("{e}"))?;
        let rgb = flat.reshape(3, img.height as i32).map_err(|e| anyhow!("{e}"))?;
        let mut bgr = Mat::default();
        imgproc::cvt_color_def(&rgb, &mut bgr, imgproc::COLOR_RGB2BGR).map_err(|e| anyhow!("{e}"))?;
        Ok(bgr)
    }

    pub struct VideoReader {
        cap: videoio::VideoCapture,
        pub name: String,
        pub fps: f64,
    }

    impl VideoReader {
        pub fn open_file(path: &Path) -> Result<Self> {
            if !path.exists() {
                bail!("video '{}' does not exist", path.display());
            }
            let cap = videoio::VideoCapture::from_file(&path.to_string_lossy(), videoio::CAP_ANY)
                .with_context(|| format!("cannot open video '{}'", path.display()))?;
            if !cap.is_opened().unwrap_or(false) {
                bail!("cannot open video '{}' (unreadable or unsupported format)", path.display());
            }
            let fps = cap.get(videoio::CAP_PROP_FPS).unwrap_or(0.0);
            Ok(VideoReader { cap, name: path.display().to_string(), fps: if fps > 0.0 { fps } else { 25.0 } })
        }

        pub fn open_webcam(index: i32) -> Result<Self> {
            let cap = videoio::VideoCapture::new(index, videoio::CAP_ANY)
                .with_context(|| format!("cannot open webcam {index}"))?;
            if !cap.is_opened().unwrap_or(false) {
                bail!("cannot open webcam {index}: none connected at that index, or no permission to open it");
            }
            let fps = cap.get(videoio::CAP_PROP_FPS).unwrap_or(0.0);
            Ok(VideoReader { cap, name: format!("webcam {index}"), fps: if fps > 0.0 { fps } else { 30.0 } })
        }

        /// The next frame, or `None` when the stream has ended or closed.
        pub fn next_frame(&mut self) -> Result<Option<RgbImage>> {
            let mut frame = Mat::default();
            let ok = self.cap.read(&mut frame).unwrap_or(false);
            if !ok || frame.empty() {
                return Ok(None);
            }
            to_rgb(&frame).map(Some)
        }
    }

    pub struct VideoWriter {
        writer: videoio::VideoWriter,
        size: (u32, u32),
    }

    impl VideoWriter {
        /// An MP4 (`mp4v`) or AVI (`MJPG`) file by extension.
        pub fn create(path: &Path, fps: f64, width: u32, height: u32) -> Result<Self> {
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let code = if path.extension().and_then(|e| e.to_str()) == Some("avi") {
                ['M', 'J', 'P', 'G']
            } else {
                ['m', 'p', '4', 'v']
            };
            let fourcc =
                videoio::VideoWriter::fourcc(code[0], code[1], code[2], code[3]).map_err(|e| anyhow!("{e}"))?;
            let writer = videoio::VideoWriter::new(
                &path.to_string_lossy(),
                fourcc,
                fps,
                core::Size::new(width as i32, height as i32),
                true,
            )
            .with_context(|| format!("cannot create video '{}'", path.display()))?;
            if !writer.is_opened().unwrap_or(false) {
                bail!("cannot create video '{}' (codec unavailable?)", path.display());
            }
            Ok(VideoWriter { writer, size: (width, height) })
        }

        pub fn write(&mut self, img: &RgbImage) -> Result<()> {
            if (img.width, img.height) != self.size {
                bail!("frame {}x{} does not match the video's {}x{}", img.width, img.height, self.size.0, self.size.1);
            }
            self.writer.write(&to_bgr(img)?).map_err(|e| anyhow!("{e}"))
        }
    }

    /// A preview window; `show` returns false once the user pressed q or Esc (or closed it).
    pub struct Window {
        name: String,
    }

    impl Window {
        pub fn open(name: &str) -> Result<Self> {
            highgui::named_window(name, highgui::WINDOW_AUTOSIZE)
                .map_err(|e| anyhow!("cannot open a window (no display?): {e}"))?;
            Ok(Window { name: name.to_string() })
        }

        pub fn show(&mut self, img: &RgbImage) -> Result<bool> {
            highgui::imshow(&self.name, &to_bgr(img)?).map_err(|e| anyhow!("{e}"))?;
            let key = highgui::wait_key(1).unwrap_or(-1);
            let visible = highgui::get_window_property(&self.name, highgui::WND_PROP_VISIBLE).unwrap_or(0.0) >= 1.0;
            Ok(visible && key != 'q' as i32 && key != 27)
        }
    }

    impl Drop for Window {
        fn drop(&mut self) {
            let _ = highgui::destroy_window(&self.name);
        }
    }
}

#[cfg(not(feature = "opencv"))]
mod backend {
    use super::*;

    const NEEDS_OPENCV: &str =
        "this is the headless build (no OpenCV): video files, webcams and windows need the `opencv` feature";

    pub struct VideoReader {
        pub name: String,
        pub fps: f64,
    }

    impl VideoReader {
        pub fn open_file(path: &Path) -> Result<Self> {
            bail!("cannot open video '{}': {NEEDS_OPENCV}", path.display())
        }
        pub fn open_webcam(index: i32) -> Result<Self> {
            bail!("cannot open webcam {index}: {NEEDS_OPENCV}")
        }
        pub fn next_frame(&mut self) -> Result<Option<RgbImage>> {
            Ok(None)
        }
    }

    pub struct VideoWriter;

    impl VideoWriter {
        pub fn create(path: &Path, _fps: f64, _width: u32, _height: u32) -> Result<Self> {
            bail!("cannot create video '{}': {NEEDS_OPENCV}", path.display())
        }
        pub fn write(&mut self, _img: &RgbImage) -> Result<()> {
            bail!("{NEEDS_OPENCV}")
        }
    }

    pub struct Window;

    impl Window {
        pub fn open(_name: &str) -> Result<Self> {
            bail!("cannot open a window: {NEEDS_OPENCV}")
        }
        pub fn show(&mut self, _img: &RgbImage) -> Result<bool> {
            Ok(false)
        }
    }
}

pub use backend::{VideoReader, VideoWriter, Window};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_sources_are_clear_errors() {
        assert!(is_video(Path::new("a/b.MP4")) && !is_video(Path::new("a.jpg")));
        let err = VideoReader::open_file(Path::new("/no/such/clip.mp4")).err().unwrap().to_string();
        assert!(err.contains("/no/such/clip.mp4"), "{err}");
        // Index 99 is never a real camera: a clear error, not a hang.
        let err = VideoReader::open_webcam(99).err().unwrap().to_string();
        assert!(err.contains("webcam 99"), "{err}");
    }

    #[cfg(feature = "opencv")]
    #[test]
    fn a_written_video_reads_back_frame_by_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.avi");
        let mut w = VideoWriter::create(&path, 10.0, 64, 48).unwrap();
        for i in 0..5u8 {
            w.write(&RgbImage::filled(64, 48, [i * 50, 100, 200 - i * 40])).unwrap();
        }
        drop(w);
        let mut r = VideoReader::open_file(&path).unwrap();
        let mut n = 0;
        while let Some(frame) = r.next_frame().unwrap() {
            assert_eq!((frame.width, frame.height), (64, 48));
            let p = frame.pixel(10, 10);
            assert!((p[0] as i32 - n * 50).abs() < 20, "frame {n}: {p:?} (RGB order kept)");
            n += 1;
        }
        assert_eq!(n, 5);
        // A corrupt file is a clear error.
        let bad = dir.path().join("bad.mp4");
        std::fs::write(&bad, b"not a video").unwrap();
        assert!(VideoReader::open_file(&bad).err().unwrap().to_string().contains("bad.mp4"));
    }
}

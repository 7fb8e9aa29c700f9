//! `skipblock classify predict`: top-k classes of images and folders through a trained classifier.

use crate::cli::GlobalArgs;
use anyhow::{bail, Result};
use clap::Args;
use skipblock_core::ui;
use skipblock_data::predictions::ClassPrediction;
use skipblock_data::{folder, read_image};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: crate::cli::ClassifierWeights,
    /// Images or folders of images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[arg(long, default_value_t = 5)]
    pub topk: usize,
    /// Shorter side is resized to this before the centre crop (default: from the checkpoint's recipe;
    /// 256 for the authors' weights).
    #[arg(long)]
    pub resize: Option<u32>,
    /// Centre crop (default: the checkpoint's input size; 224 for the authors' weights).
    #[arg(long)]
    pub crop: Option<u32>,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// One JSON record per image on stdout.
    #[arg(long)]
    pub json: bool,
    /// Mixed precision of the forward pass (autocast): off, bf16 (CPU and CUDA) or fp16 (CUDA).
    #[arg(long, value_enum, default_value_t = skipblock_core::recipe::Amp::Off)]
    pub amp: skipblock_core::recipe::Amp,
}

pub fn run(global: &GlobalArgs, a: &PredictArgs) -> Result<()> {
    if a.topk == 0 {
        bail!("--topk must be at least 1");
    }
    let device = global.device()?;
    let images = folder::expand_sources(&a.images)?;
    let model = a.model.load(device)?.with_geometry(a.resize, a.crop);
    for chunk in images.chunks(a.batch.max(1)) {
        let inputs =
            chunk.iter().map(|p| read_image(p).map(|img| model.preprocess(&img))).collect::<Result<Vec<_>>>()?;
        for (path, top) in chunk.iter().zip(model.predict(&inputs, a.topk)?) {
            let prediction = ClassPrediction { image: path, top: &top };
            println!("{}", if a.json { serde_json::to_string(&prediction)? } else { prediction.text() });
        }
    }
    ui::debug(format!("{} images classified", images.len()));
    Ok(())
}

//! `skipblock classify …`: prediction (training and evaluation come with the classification pipeline).

use super::GlobalArgs;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use skipblock_core::model::loader;
use skipblock_core::ui;
use skipblock_data::{folder, read_image, transforms};
use std::path::PathBuf;
use tch::{Kind, Tensor};

#[derive(Subcommand, Debug)]
pub enum ClassifyCommand {
    /// Top-k classes of images (files or folders) with the release's evaluation preprocessing.
    Predict(PredictArgs),
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Checkpoint: `.safetensors` of ours, or the authors' `.pth` with --arch.
    #[arg(long)]
    pub weights: PathBuf,
    /// Images or folders of images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Architecture of a `.pth` state dict without a skipblock record.
    #[arg(long)]
    pub arch: Option<String>,
    #[arg(long, default_value_t = 5)]
    pub topk: usize,
    /// Shorter side is resized to this before the centre crop.
    #[arg(long, default_value_t = 256)]
    pub resize: u32,
    /// Centre crop (the network's input size).
    #[arg(long, default_value_t = 224)]
    pub crop: u32,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// One JSON record per image on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Prediction {
    image: PathBuf,
    classes: Vec<i64>,
    names: Vec<Option<String>>,
    probabilities: Vec<f64>,
}

pub fn run(global: &GlobalArgs, command: &ClassifyCommand) -> Result<()> {
    match command {
        ClassifyCommand::Predict(a) => predict(global, a),
    }
}

fn predict(global: &GlobalArgs, a: &PredictArgs) -> Result<()> {
    if a.topk == 0 {
        bail!("--topk must be at least 1");
    }
    let device = global.device()?;
    let images = folder::expand_sources(&a.images)?;
    let mut model = loader::load_classifier(&a.weights, a.arch.as_deref(), device)?;
    model.net.fuse_bn();
    let k = a.topk.min(model.meta.num_classes) as i64;
    for chunk in images.chunks(a.batch.max(1)) {
        let batch: Vec<Tensor> = chunk
            .iter()
            .map(|p| read_image(p).map(|img| transforms::eval_preprocess(&img, a.resize, a.crop)))
            .collect::<Result<_>>()?;
        let xs = Tensor::stack(&batch, 0).to_device(device);
        let probs = tch::no_grad(|| model.net.forward_t(&xs, false).logits.softmax(-1, Kind::Float));
        let (top_p, top_i) = probs.topk(k, -1, true, true);
        let (top_p, top_i) = (top_p.to_kind(Kind::Double).to_device(tch::Device::Cpu), top_i.to_device(tch::Device::Cpu));
        for (row, path) in chunk.iter().enumerate() {
            let classes = Vec::<i64>::try_from(top_i.get(row as i64))?;
            let record = Prediction {
                image: path.clone(),
                names: classes.iter().map(|&c| model.meta.class_names.get(c as usize).cloned()).collect(),
                probabilities: Vec::<f64>::try_from(top_p.get(row as i64))?,
                classes,
            };
            if a.json {
                println!("{}", serde_json::to_string(&record)?);
            } else {
                let tops: Vec<String> = record
                    .classes
                    .iter()
                    .zip(&record.names)
                    .zip(&record.probabilities)
                    .map(|((c, n), p)| format!("{} {:.3}", n.clone().unwrap_or_else(|| format!("#{c}")), p))
                    .collect();
                println!("{}: {}", path.display(), tops.join(", "));
            }
        }
    }
    ui::debug(format!("{} images classified", images.len()));
    Ok(())
}

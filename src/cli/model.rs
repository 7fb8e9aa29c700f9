//! `skipblock model …`: the list of architectures, their summaries, importing the authors' (or
//! torchvision's) weights, feature-variance analysis.

use super::GlobalArgs;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use skipblock_classify::classifier::{build_with, Classifier};
use skipblock_core::checkpoint::{self, CheckpointMeta};
use skipblock_core::model::{summary, trace, Arch, BlockOptions, NetOptions, Source, Stem};
use skipblock_core::{ui, Task};
use skipblock_data::{folder, read_image};
use std::path::PathBuf;
use tch::{Kind, Tensor};

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Every architecture: its task, where it comes from (paper, release, torchvision, ours) and its
    /// parameters (1000 classes for classifiers, 21 for detectors).
    List(ListArgs),
    /// Per-layer table and totals of parameters and multiply-adds of an architecture.
    Summary(SummaryArgs),
    /// Convert a PyTorch state dict (the authors' or torchvision's key names) to a skipblock checkpoint.
    Import(ImportArgs),
    /// Per-sample feature variance at the 5th, 20th and last conv layers over a folder of images
    /// (the paper's Table 5).
    Variance(VarianceArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON (one object per architecture).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// A classifier or a detector.
    #[arg(long, value_enum, ignore_case = true)]
    pub arch: Arch,
    /// Input stem of a model-zoo classifier (default: cifar for inputs of 64 and below where the
    /// architecture has one, else its standard stem).
    #[arg(long, value_enum, ignore_case = true)]
    pub stem: Option<Stem>,
    /// Square input size (default 224 for classifiers, 300 for detectors).
    #[arg(long)]
    pub input: Option<i64>,
    /// Number of classes (default 1000 for classifiers; 21 with the background for detectors).
    #[arg(long)]
    pub classes: Option<i64>,
    /// Print JSON (totals and every layer).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The `.pth`/`.pt` state dict (`torch.save(model.state_dict())`).
    pub weights: PathBuf,
    /// Architecture the weights belong to (a classifier; torchvision's key names for the model zoo, which
    /// is imported with its ImageNet stem).
    #[arg(long, ignore_case = true, value_parser = crate::cli::classifier_arch())]
    pub arch: Arch,
    /// Output `.safetensors` checkpoint (a `.json` record is written beside it).
    #[arg(long)]
    pub out: PathBuf,
    /// Class names, one per line, in output order.
    #[arg(long)]
    pub labels: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VarianceArgs {
    #[command(flatten)]
    pub model: crate::cli::ClassifierWeights,
    /// Folder of images (searched recursively).
    #[arg(long)]
    pub data: PathBuf,
    /// At most this many images (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, command: &ModelCommand) -> Result<()> {
    match command {
        ModelCommand::List(a) => run_list(a),
        ModelCommand::Summary(a) => run_summary(a),
        ModelCommand::Import(a) => run_import(a),
        ModelCommand::Variance(a) => run_variance(global, a),
    }
}

#[derive(Serialize)]
struct ListEntry {
    arch: Arch,
    task: Task,
    source: Source,
    /// Trainable parameters: classifiers at 1000 classes with their standard stem, detectors at 21.
    params: i64,
    classes: i64,
    stems: &'static [Stem],
}

/// Trainable parameters of `arch` with `classes` outputs, counted from the variable store.
fn param_count(arch: Arch, classes: i64) -> Result<i64> {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    match arch.task() {
        Task::Detect => {
            let config = skipblock_detect::SsdConfig::for_arch(arch, classes)?;
            skipblock_detect::Ssd::new(&vs.root(), &config, BlockOptions::default())?;
        }
        Task::Classify => {
            skipblock_core::model::build_classifier(
                &vs.root(),
                arch,
                classes,
                NetOptions::standard(arch, BlockOptions::default()),
            )?;
        }
    }
    Ok(vs.trainable_variables().iter().map(|t| t.numel() as i64).sum())
}

fn run_list(a: &ListArgs) -> Result<()> {
    let entries = Arch::ALL
        .into_iter()
        .map(|arch| {
            let classes = if arch.task() == Task::Detect { 21 } else { 1000 };
            Ok(ListEntry {
                arch,
                task: arch.task(),
                source: arch.source(),
                params: param_count(arch, classes)?,
                classes,
                stems: arch.stems(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!("{:<26} {:<9} {:<12} {:>12} {:>8}  stems", "arch", "task", "source", "params", "classes");
    for e in entries {
        let stems = e.stems.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",");
        println!(
            "{:<26} {:<9} {:<12} {:>12} {:>8}  {stems}",
            e.arch.name(),
            e.task.to_string(),
            e.source.to_string(),
            summary::group(e.params),
            e.classes
        );
    }
    Ok(())
}

fn run_summary(a: &SummaryArgs) -> Result<()> {
    let input = a.input.unwrap_or(match a.arch.task() {
        Task::Detect => 300,
        Task::Classify => 224,
    });
    if input < 32 {
        bail!("--input {input} is too small (at least 32)");
    }
    let s = match a.arch.task() {
        Task::Detect => {
            let mut config = skipblock_detect::SsdConfig::for_arch(a.arch, a.classes.unwrap_or(21))?;
            config.input_size = input;
            if input != 300 {
                config.priors.feature_maps.clear();
            }
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let ssd = skipblock_detect::Ssd::new(&vs.root(), &config, BlockOptions::default())?;
            ssd.summary(&vs)
        }
        Task::Classify => {
            let classes = a.classes.unwrap_or(1000);
            let stem = a.arch.resolve_stem(a.stem, input as usize)?;
            let opts = NetOptions { block: BlockOptions::default(), stem, dropout: None };
            let (vs, net) = build_with(a.arch, classes as usize, tch::Device::Cpu, opts)?;
            let mut s = summary::summarize(a.arch, &vs, input, classes, |xs| {
                let _ = net.forward_t(xs, false);
            });
            s.stem = Some(stem);
            s.table4 = a.arch.table4_params();
            s
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", s.table());
    }
    Ok(())
}

fn run_import(a: &ImportArgs) -> Result<()> {
    if a.out.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        bail!("--out '{}' must end in .safetensors", a.out.display());
    }
    let loaded = Classifier::load(&a.weights, Some(a.arch), tch::Device::Cpu)?;
    let class_names = match &a.labels {
        Some(p) => {
            let names = skipblock_data::voc::read_labels(p)?;
            if names.len() != loaded.meta.num_classes {
                bail!(
                    "labels file '{}' has {} names but the weights have {} classes",
                    p.display(),
                    names.len(),
                    loaded.meta.num_classes
                );
            }
            names
        }
        None => loaded.meta.class_names.clone(),
    };
    let meta = CheckpointMeta { class_names, ..loaded.meta.clone() };
    checkpoint::save(&loaded.vs, &a.out, &meta)?;
    ui::info(format!(
        "imported {} ({} classes, {} tensors) -> {}",
        meta.arch,
        meta.num_classes,
        loaded.vs.variables().len(),
        a.out.display()
    ));
    Ok(())
}

#[derive(Serialize)]
struct LayerVariance {
    /// Position among the conv layers in execution order: `5th`, `20th`, `last` (the bias loss's features).
    layer: &'static str,
    name: String,
    channels: i64,
    average: f64,
    max: f64,
    min: f64,
    /// The traced layer's index; `None` for `last`, the network's features output.
    #[serde(skip)]
    record_index: Option<usize>,
    #[serde(skip)]
    values: Vec<f64>,
}

/// The layers of Table 5 in a traced forward pass: the 5th and the 20th conv layer (where the network
/// has them), and the last conv layer's features as the bias loss sees them (the network's
/// [`ClassifierNet::features_name`](skipblock_core::model::ClassifierNet::features_name): SkipblockNet's
/// `conv.0`, ResNet's `layer4`, DenseNet's `features.norm5`, …).
fn table5_layers(records: &[trace::LayerRecord], features_name: &str, features: &Tensor) -> Vec<LayerVariance> {
    let convs: Vec<usize> = (0..records.len()).filter(|&i| records[i].kind.starts_with("conv")).collect();
    let layer = |layer, name: String, channels, record_index| LayerVariance {
        layer,
        name,
        channels,
        average: 0.0,
        max: f64::NEG_INFINITY,
        min: f64::INFINITY,
        record_index,
        values: Vec::new(),
    };
    let mut layers: Vec<LayerVariance> = [("5th", 4usize), ("20th", 19)]
        .into_iter()
        .filter_map(|(l, i)| convs.get(i).map(|&r| layer(l, records[r].name.clone(), records[r].output[1], Some(r))))
        .collect();
    layers.push(layer("last", features_name.to_string(), features.size()[1], None));
    layers
}

fn run_variance(global: &GlobalArgs, a: &VarianceArgs) -> Result<()> {
    let device = global.device()?;
    let loaded = a.model.load(device)?;
    let mut images = folder::list_images(&a.data)?;
    if a.limit > 0 {
        images.truncate(a.limit);
    }
    let mut layers: Vec<LayerVariance> = Vec::new();
    let bar = ui::progress_bar(images.len() as u64, "variance");
    for chunk in images.chunks(a.batch.max(1)) {
        let batch: Vec<_> =
            chunk.iter().map(|p| read_image(p).map(|img| loaded.preprocess(&img))).collect::<Result<_>>()?;
        let xs = loaded.input(&batch)?;
        let (out, records, outputs) = trace::traced(true, || tch::no_grad(|| loaded.net.forward_t(&xs, false)));
        if layers.is_empty() {
            layers = table5_layers(&records, loaded.net.features_name(), &out.features);
        }
        for layer in &mut layers {
            let tensor = layer.record_index.map_or(&out.features, |i| &outputs[i]);
            let v = skipblock_core::loss::bias::sample_variances(tensor).to_kind(Kind::Double);
            layer.values.extend(Vec::<f64>::try_from(&v)?);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for l in &mut layers {
        l.average = l.values.iter().sum::<f64>() / l.values.len().max(1) as f64;
        l.max = l.values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        l.min = l.values.iter().cloned().fold(f64::INFINITY, f64::min);
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"weights": a.model.weights, "arch": loaded.meta.arch, "images": images.len(), "layers": layers})
        );
    } else {
        println!("{} images, {}", images.len(), loaded.meta.arch);
        println!("{:<6} {:<28} {:>8} {:>12} {:>12} {:>12}", "layer", "name", "channels", "average", "max", "min");
        for r in layers {
            println!(
                "{:<6} {:<28} {:>8} {:>12.5} {:>12.5} {:>12.5}",
                r.layer, r.name, r.channels, r.average, r.max, r.min
            );
        }
    }
    Ok(())
}

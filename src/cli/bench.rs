//! `skipblock bench …`: our speed next to the reference a user would otherwise pick (PyTorch eager in
//! Python, the same architecture and weights, measured in the same run), with the ratio ours/reference
//! (< 1 means we are faster).

use super::GlobalArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use skipblock_classify::classifier::{build, Classifier};
use skipblock_core::loss::{Loss, LossConfig};
use skipblock_core::model::{Arch, BlockOptions};
use skipblock_core::recipe::OptimSection;
use skipblock_core::train::optim::Optimizer;
use skipblock_core::{checkpoint, ui};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// A classifier's forward pass (SkipblockNet-M unless --arch), batch 1, 224×224, one thread and all
    /// threads, vs PyTorch eager (torchvision's model for the model zoo).
    Backbone(CommonArgs),
    /// One training step (batch 32, 224×224, bias loss, SGD; SkipblockNet-M unless --arch) vs PyTorch eager.
    TrainStep(CommonArgs),
    /// The training step at full speed on --device: model-only SkipblockNet-M in NCHW / channels-last /
    /// bf16 vs PyTorch eager in the same modes, fused vs per-parameter optimiser, SSDLite-S, end to end
    /// with the loaders, and the loaders alone; --profile times the step's phases.
    Train(super::bench_train::TrainBenchArgs),
    /// Data loaders on all cores (images/s, and per core): classification (Inception crop to 224) and SSD
    /// augmentation (300), per CPU-second against torchvision's pipelines on one core; JPEG decoding on one
    /// thread, the loaders' decoder vs the build's default.
    Loaders(CommonArgs),
    /// SSDLite-SkipblockNet-S end to end on a JPEG folder: decode, preprocess, forward, NMS (images/s);
    /// batched NMS and prior matching vs the per-class and per-image paths.
    Detect(CommonArgs),
    /// VOC mAP of 5,000 images × 100 detections (20 classes): ours vs the Python devkit-style reference,
    /// both reading the XML annotations and result files.
    Map(CommonArgs),
    /// All of the above.
    All(CommonArgs),
    /// Batch-1 latency of one checkpoint exported to ONNX: the libtorch predictor's forward vs onnxruntime
    /// (Python, the reference) vs the edge binary `skipblock-edge` (tract), median and p90.
    Export(super::bench_export::ExportBenchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// Python with torch for the reference (default: .venv/bin/python, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip the PyTorch reference.
    #[arg(long)]
    pub no_reference: bool,
    /// The classifier of `backbone` and `train-step` (the model zoo's reference is torchvision's network,
    /// so densenet-100-k12, which torchvision lacks, needs --no-reference).
    #[arg(long, ignore_case = true, value_parser = crate::cli::classifier_arch(), default_value = "skipblocknet-m")]
    pub arch: Arch,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub(super) struct Row {
    pub name: String,
    pub unit: &'static str,
    pub ours: f64,
    pub reference: Option<f64>,
    /// ours / reference for times (< 1: faster than the reference); for images/s rows too (the
    /// reference's rate / ours).
    pub ratio: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time_ms(iters: usize, warmup: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    median(
        (0..iters.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// The reference script shipped with the repository.
pub(super) fn reference_script() -> Result<PathBuf> {
    let candidates = [
        PathBuf::from("tests/python/bench_ref.py"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/bench_ref.py"),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .context("tests/python/bench_ref.py not found: run bench from the repository root")
}

pub(super) fn python(args: &CommonArgs) -> PathBuf {
    args.python.clone().unwrap_or_else(|| {
        let venv = PathBuf::from(".venv/bin/python");
        if venv.exists() {
            venv
        } else {
            PathBuf::from("python3")
        }
    })
}

fn run_reference(args: &CommonArgs, what: &str, weights: &Path, threads: usize, batch: usize) -> Result<f64> {
    let weights = weights.to_str().context("weights path is not UTF-8")?;
    let (threads, iters, batch) = (threads.to_string(), args.iters.to_string(), batch.to_string());
    reference_ms(
        args,
        &[
            what,
            "--arch",
            args.arch.name(),
            "--weights",
            weights,
            "--threads",
            &threads,
            "--iters",
            &iters,
            "--batch",
            &batch,
        ],
    )
}

/// Runs `bench_ref.py ARGV` and reads its `ms_per_iter`.
pub(super) fn reference_ms(args: &CommonArgs, argv: &[&str]) -> Result<f64> {
    let out = Command::new(python(args))
        .arg(reference_script()?)
        .args(argv)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .with_context(|| format!("cannot run {}", python(args).display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string);
        bail!(
            "the PyTorch reference failed: {}",
            why.unwrap_or_else(|| format!("{} exited with {}", python(args).display(), out.status))
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("reference output")?;
    v["ms_per_iter"].as_f64().context("reference output has no ms_per_iter")
}

/// The benchmarked classifier (standard stem) with random weights (and non-trivial BN statistics), saved
/// for the reference.
fn model_with_weights(dir: &Path, arch: Arch) -> Result<(Classifier, PathBuf)> {
    let (vs, net) = build(arch, 1000, Device::Cpu, BlockOptions::default())?;
    let _ = net.forward_t(&Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu)), true);
    let meta = checkpoint::CheckpointMeta::new(arch, 1000, BlockOptions::default());
    let path = dir.join("m.safetensors");
    checkpoint::save(&vs, &path, &meta)?;
    Ok((Classifier::load(&path, None, Device::Cpu)?, path))
}

pub(super) fn all_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn bench_backbone(args: &CommonArgs) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let (mut model, weights) = model_with_weights(dir.path(), args.arch)?;
    model.net.fuse_bn();
    let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
    let mut rows = Vec::new();
    for threads in [1, all_threads()] {
        tch::set_num_threads(threads as i32);
        let ours = tch::no_grad(|| {
            time_ms(args.iters, 3, || {
                let _ = model.net.forward_t(&x, false);
            })
        });
        let reference =
            if args.no_reference { None } else { Some(run_reference(args, "forward", &weights, threads, 1)?) };
        rows.push(Row {
            name: format!("{} forward b1 224 {threads} thread(s)", args.arch),
            unit: "ms",
            ours,
            ratio: reference.map(|r| ours / r),
            reference,
        });
    }
    Ok(rows)
}

fn bench_train_step(args: &CommonArgs) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let (model, weights) = model_with_weights(dir.path(), args.arch)?;
    let threads = all_threads();
    tch::set_num_threads(threads as i32);
    let batch = 32;
    let x = Tensor::randn([batch, 3, 224, 224], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(1000, [batch], (Kind::Int64, Device::Cpu));
    let mut loss = Loss::new(LossConfig::default())?;
    let mut opt = Optimizer::new(&model.vs, &OptimSection { lr: 0.01, ..Default::default() });
    let iters = args.iters.clamp(1, 10);
    let ours = time_ms(iters, 2, || {
        opt.zero_grad();
        let out = model.net.forward_t(&x, true);
        let l = loss.compute(&out.logits, Some(&out.features), &y).expect("bias loss on a valid batch");
        l.loss.backward();
        opt.step().expect("an SGD step on valid gradients");
    });
    let reference = if args.no_reference {
        None
    } else {
        Some(run_reference(&CommonArgs { iters, ..args.clone() }, "train-step", &weights, threads, batch as usize)?)
    };
    Ok(vec![Row {
        name: format!("{} train step b{batch} 224 NCHW fp32 bias loss SGD {threads} thread(s)", args.arch),
        unit: "ms",
        ours,
        ratio: reference.map(|r| ours / r),
        reference,
    }])
}

fn throughput_row(name: String, images: usize, seconds: f64) -> Row {
    Row { name, unit: "img/s", ours: images as f64 / seconds.max(1e-9), reference: None, ratio: None }
}

/// A 500×375 photo-like JPEG (smooth shapes plus sensor-like noise) at quality 95, the size of a typical
/// ImageNet or VOC image.
fn photo_jpeg() -> Result<Vec<u8>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (w, h) = (500u32, 375u32);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let base = [(x * 255 / w) as i32, (y * 255 / h) as i32, (((x + y) / 4) % 256) as i32];
            for c in base {
                data.push((c + rng.gen_range(-12..=12)).clamp(0, 255) as u8);
            }
        }
    }
    skipblock_data::image_io::encode_image(&skipblock_data::RgbImage::new(w, h, data)?, Path::new("x.jpg"))
}

/// Decoding one 500×375 JPEG on one thread: the loaders' decoder vs this build's default one.
fn bench_decode(args: &CommonArgs) -> Result<Vec<Row>> {
    use skipblock_data::image_io::{backend, decode_image, decode_image_fast};
    let jpeg = photo_jpeg()?;
    let iters = args.iters.max(5) * 5;
    let default = time_ms(iters, 3, || {
        let _ = decode_image(&jpeg).expect("decodes");
    });
    let fast = time_ms(iters, 3, || {
        let _ = decode_image_fast(&jpeg).expect("decodes");
    });
    Ok(vec![Row {
        name: format!("decode 500x375 JPEG, 1 thread: zune-jpeg (loaders) vs {} (default)", backend()),
        unit: "ms",
        ours: fast,
        reference: Some(default),
        ratio: Some(fast / default),
    }])
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat`; `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Loads one epoch of `data`: (images, wall seconds, process CPU seconds).
fn time_epoch<D: skipblock_core::loader::Dataset>(
    data: std::sync::Arc<D>,
    config: &skipblock_core::loader::LoaderConfig,
) -> Result<(usize, f64, Option<f64>)> {
    let n = data.len();
    let (t, cpu) = (Instant::now(), process_cpu_seconds());
    for b in skipblock_core::loader::load_epoch(data, 0, config)? {
        b?;
    }
    let cpu = cpu.zip(process_cpu_seconds()).map(|(a, b)| b - a);
    Ok((n, t.elapsed().as_secs_f64(), cpu))
}

/// Throughput, throughput per core (wall clock) and images per CPU-second (what one core gives, also when
/// the machine is shared and the wall clock is not all ours), the last next to the reference's CPU
/// milliseconds per image on one core when there is one.
fn loader_rows(name: String, (images, seconds, cpu): (usize, f64, Option<f64>), reference_ms: Option<f64>) -> Vec<Row> {
    let cores = all_threads();
    let row = throughput_row(name, images, seconds);
    let per_core = Row {
        name: format!("  per core ({cores} cores, wall clock)"),
        unit: "img/s/core",
        ours: row.ours / cores as f64,
        reference: None,
        ratio: None,
    };
    let mut rows = vec![row, per_core];
    if let Some(cpu) = cpu {
        let ours_ms = cpu * 1e3 / images.max(1) as f64;
        let name = "  per CPU-second (images / process CPU time)".to_string();
        rows.push(Row { unit: "img/cpu-s", ..super::bench_train::rate_row(name, 1, ours_ms, reference_ms) });
    }
    rows
}

/// Both loaders on all cores, each against torchvision's pipeline for the same images on one core
/// (`bench_ref.py loader-cls|loader-ssd`: PIL decoding, `transforms` / `transforms.v2`), then decoding.
pub(super) fn bench_loaders(args: &CommonArgs) -> Result<Vec<Row>> {
    use skipblock_core::loader::LoaderConfig;
    use skipblock_data::classification::{open, Augment, ClsDataset, ClsTransform, Layout, Split};
    let dir = tempfile::tempdir()?;
    let cls = dir.path().join("food");
    skipblock_data::synth_cls::generate(
        &cls,
        &skipblock_data::synth_cls::SynthClsOptions {
            classes: 8,
            train_per_class: 40,
            test_per_class: 1,
            size: 256,
            ..Default::default()
        },
    )?;
    skipblock_data::synth_voc::generate(
        dir.path(),
        skipblock_data::synth_voc::SynthVocOptions { train: 200, test: 1, seed: 0, size: 300, ..Default::default() },
    )?;
    let root = dir.path().join("VOCdevkit/VOC2007");
    // torchvision may be missing where only torch is installed (a GPU machine): the loaders are then
    // measured without their reference.
    let reference = |what: &str, data: &Path, size: u32| -> Option<f64> {
        if args.no_reference {
            return None;
        }
        let data = data.to_str()?;
        reference_ms(args, &[what, "--dir", data, "--size", &size.to_string(), "--iters", "1"])
            .map_err(|e| ui::warn(format!("{what}: no torchvision reference ({e:#})")))
            .ok()
    };
    let config = LoaderConfig { batch_size: 32, shuffle: true, ..Default::default() };
    let set = open(&cls, Layout::Food101, Split::Train, 0.0, 0)?;
    let data = std::sync::Arc::new(ClsDataset::new(
        set,
        ClsTransform::new(Augment::Inception, 224, 256.0 / 224.0, 0.0, false)?,
    ));
    let cls_rows = loader_rows(
        format!("classification loader 256px JPEG -> Inception 224, flip, {} workers", all_threads()),
        time_epoch(data, &config)?,
        reference("loader-cls", &cls.join("images"), 224),
    );
    let classes = skipblock_data::voc::read_labels(&root.join("labels.txt"))?;
    let (voc, _) = skipblock_data::voc::VocDataset::open(std::slice::from_ref(&root), "trainval", &classes, true)?;
    let det = std::sync::Arc::new(skipblock_data::voc::DetDataset::new(voc, 300, true));
    let det_rows = loader_rows(
        format!("SSD loader 300px JPEG, full augmentation, {} workers", all_threads()),
        time_epoch(det, &config)?,
        reference("loader-ssd", &root, 300),
    );
    let mut rows: Vec<Row> = cls_rows.into_iter().chain(det_rows).collect();
    rows.extend(bench_decode(args)?);
    Ok(rows)
}

/// Batched NMS on the device vs the former host loop over classes, and the batched prior matcher vs the
/// per-image one: SSD300 priors (3,000), 21 classes, batch 8, all threads.
fn bench_detection_steps(args: &CommonArgs) -> Result<Vec<Row>> {
    use skipblock_core::boxes::BBox;
    use skipblock_detect::box_coder::BoxCoder;
    use skipblock_detect::postprocess::{postprocess_batched, postprocess_per_class, PostprocessConfig};
    let priors = skipblock_detect::anchors::priors(&skipblock_detect::anchors::PriorConfig::default())?;
    tch::manual_seed(3);
    let b = 8;
    let conf = Tensor::randn([b, priors.size()[0], 21], (Kind::Float, Device::Cpu)) * 2.0;
    let loc = Tensor::randn([b, priors.size()[0], 4], (Kind::Float, Device::Cpu)) * 0.5;
    let (coder, cfg) = (BoxCoder::default(), PostprocessConfig::default());
    let iters = args.iters.clamp(3, 20);
    let old = time_ms(iters, 1, || {
        let _ = postprocess_per_class(&loc, &conf, &priors, &coder, &cfg).expect("valid predictions");
    });
    let new = time_ms(iters, 1, || {
        let _ = postprocess_batched(&loc, &conf, &priors, &coder, &cfg).expect("valid predictions");
    });
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let images: Vec<(Vec<BBox>, Vec<usize>)> = (0..32)
        .map(|_| {
            let n = rng.gen_range(1..8);
            let boxes = (0..n)
                .map(|_| {
                    let (x, y) = (rng.gen_range(0.0..0.7f32), rng.gen_range(0.0..0.7f32));
                    BBox::new(x, y, x + rng.gen_range(0.05..0.3f32), y + rng.gen_range(0.05..0.3f32))
                })
                .collect();
            (boxes, (0..n).map(|_| rng.gen_range(1..21)).collect())
        })
        .collect();
    let matcher = skipblock_detect::matcher::Matcher::new(&priors, 0.5, BoxCoder::default());
    let per_image = time_ms(iters, 1, || {
        let _ = matcher.batch_targets(&images).expect("valid boxes");
    });
    let batched = time_ms(iters, 1, || {
        let _ = matcher.batch_targets_on(&images, Device::Cpu).expect("valid boxes");
    });
    Ok(vec![
        Row {
            name: format!("NMS, batch {b} x 3000 priors x 21 classes: batched vs per class"),
            unit: "ms",
            ours: new,
            reference: Some(old),
            ratio: Some(new / old),
        },
        Row {
            name: "prior matching, batch 32 x 3000 priors: batched vs per image".into(),
            unit: "ms",
            ours: batched,
            reference: Some(per_image),
            ratio: Some(batched / per_image),
        },
    ])
}

fn bench_detect(args: &CommonArgs) -> Result<Vec<Row>> {
    use skipblock_detect::detector::Detector;
    let dir = tempfile::tempdir()?;
    skipblock_data::synth_voc::generate(
        dir.path(),
        skipblock_data::synth_voc::SynthVocOptions { train: 1, test: 64, seed: 1, size: 300, ..Default::default() },
    )?;
    // A detector checkpoint with random weights (the speed does not depend on them).
    let config = skipblock_detect::SsdConfig::for_arch(Arch::SsdliteSkipblocknetS, 21)?;
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let ssd = skipblock_detect::Ssd::new(&vs.root(), &config, BlockOptions::default())?;
    let meta = checkpoint::CheckpointMeta {
        input_size: 300,
        model: serde_json::to_value(&ssd.config)?,
        ..checkpoint::CheckpointMeta::new(config.arch, 21, BlockOptions::default())
    };
    let weights = dir.path().join("det.safetensors");
    checkpoint::save(&vs, &weights, &meta)?;
    tch::set_num_threads(all_threads() as i32);
    let detector = Detector::load(&weights, Device::Cpu)?;
    let images = skipblock_data::folder::list_images(&dir.path().join("VOCdevkit/VOC2007/JPEGImages"))?;
    let post = skipblock_detect::postprocess::PostprocessConfig {
        score_threshold: 0.25,
        nms_iou: 0.45,
        top_k: 100,
        candidates_per_class: 200,
    };
    let _ = detector.detect(&skipblock_data::read_image(&images[0])?, &post)?;
    let t = Instant::now();
    for p in &images {
        let _ = detector.detect(&skipblock_data::read_image(p)?, &post)?;
    }
    let mut rows = vec![throughput_row(
        format!("ssdlite-skipblocknet-s 300 end to end, batch 1, {} threads", all_threads()),
        images.len(),
        t.elapsed().as_secs_f64(),
    )];
    rows.extend(bench_detection_steps(args)?);
    Ok(rows)
}

fn bench_map(args: &CommonArgs) -> Result<Vec<Row>> {
    use rand::{Rng, SeedableRng};
    use skipblock_data::voc::{write_annotation, VocAnnotation, VocObject};
    use skipblock_detect::voc_map::{
        mean_average_precision, read_result_files, write_result_files, DetectionRecord, GroundTruth, Metric,
    };
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("VOC2007");
    std::fs::create_dir_all(root.join("Annotations"))?;
    std::fs::create_dir_all(root.join("ImageSets/Main"))?;
    let classes = skipblock_data::voc::voc_classes();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (n_images, per_image) = (5000, 100);
    let mut gts = Vec::new();
    let mut dets = Vec::new();
    let mut list = String::new();
    for i in 0..n_images {
        let id = format!("{:06}", i + 1);
        list.push_str(&id);
        list.push('\n');
        let mut annotation = VocAnnotation::new(format!("{id}.jpg"), 500, 400);
        for _ in 0..rng.gen_range(1..6) {
            let c = rng.gen_range(0..classes.len());
            let (x, y) = (rng.gen_range(1..400) as f32, rng.gen_range(1..300) as f32);
            let b = [x, y, x + rng.gen_range(10..100) as f32, y + rng.gen_range(10..100) as f32];
            let difficult = rng.gen_bool(0.1);
            annotation.objects.push(VocObject { difficult, ..VocObject::new(&classes[c], b) });
            gts.push(GroundTruth { image_id: id.clone(), class: c, bbox: b, difficult });
        }
        write_annotation(&root.join(format!("Annotations/{id}.xml")), &annotation)?;
        for k in 0..per_image {
            let (class, bbox) = match gts.iter().rev().take(5).find(|g| g.image_id == id && k % 3 == 0) {
                Some(g) => (
                    g.class,
                    [g.bbox[0] + rng.gen_range(-5.0..5.0), g.bbox[1], g.bbox[2], g.bbox[3] + rng.gen_range(-5.0..5.0)],
                ),
                None => {
                    let (x, y) = (rng.gen_range(1.0..400.0), rng.gen_range(1.0..300.0));
                    (rng.gen_range(0..classes.len()), [x, y, x + 50.0, y + 40.0])
                }
            };
            dets.push(DetectionRecord { image_id: id.clone(), class, score: rng.gen_range(0.0..1.0), bbox });
        }
    }
    std::fs::write(root.join("ImageSets/Main/test.txt"), list)?;
    let results = dir.path().join("results");
    write_result_files(&results, "test", &classes, &dets)?;
    // Ours: parse the XML, read the result files, evaluate (VOC07).
    let t = Instant::now();
    let mut parsed = Vec::new();
    for i in 0..n_images {
        let id = format!("{:06}", i + 1);
        let a = skipblock_data::voc::read_annotation(&root.join(format!("Annotations/{id}.xml")))?;
        for o in a.objects {
            let class = classes.iter().position(|c| *c == o.name).context("class")?;
            parsed.push(GroundTruth { image_id: id.clone(), class, bbox: o.bndbox, difficult: o.difficult });
        }
    }
    let records = read_result_files(&results, &classes)?;
    let ours_result = mean_average_precision(&parsed, &records, &classes, Metric::Voc07, 0.5)?;
    let ours = t.elapsed().as_secs_f64() * 1e3;
    let reference = if args.no_reference {
        None
    } else {
        let script = reference_script()?.with_file_name("voc_eval_ref.py");
        let t = Instant::now();
        let out = Command::new(python(args))
            .arg(&script)
            .arg("--root")
            .arg(&root)
            .args(["--split", "test", "--detections"])
            .arg(&results)
            .args(["--classes", &classes.join(","), "--use07"])
            .output()?;
        if !out.status.success() {
            bail!("the Python reference failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
        }
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let theirs = v["map"].as_f64().context("reference map")?;
        if (theirs - ours_result.map).abs() > 1e-6 {
            bail!("mAP differs from the reference: {} vs {theirs}", ours_result.map);
        }
        Some(ms)
    };
    Ok(vec![Row {
        name: format!("VOC07 mAP, {n_images} images x {per_image} dets, XML + result files"),
        unit: "ms",
        ours,
        ratio: reference.map(|r| ours / r),
        reference,
    }])
}

pub fn run(global: &GlobalArgs, command: &BenchCommand) -> Result<()> {
    let (rows, args) = match command {
        BenchCommand::Export(a) => return super::bench_export::run(global, a),
        BenchCommand::Train(a) => (super::bench_train::bench_train(global, a)?, &a.common),
        BenchCommand::Backbone(a) => (bench_backbone(a)?, a),
        BenchCommand::TrainStep(a) => (bench_train_step(a)?, a),
        BenchCommand::Loaders(a) => (bench_loaders(a)?, a),
        BenchCommand::Detect(a) => (bench_detect(a)?, a),
        BenchCommand::Map(a) => (bench_map(a)?, a),
        BenchCommand::All(a) => {
            let mut rows = bench_backbone(a)?;
            rows.extend(bench_train_step(a)?);
            rows.extend(bench_loaders(a)?);
            rows.extend(bench_detect(a)?);
            rows.extend(bench_map(a)?);
            (rows, a)
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<64} {:>12} {:>14} {:>8}", "benchmark", "ours", "reference", "ratio");
    for r in &rows {
        let reference = r.reference.map_or("-".into(), |v| format!("{v:.2} {}", r.unit));
        let ratio = r.ratio.map_or("-".into(), |v| format!("{v:.2}"));
        println!("{:<64} {:>12} {:>14} {:>8}", r.name, format!("{:.2} {}", r.ours, r.unit), reference, ratio);
    }
    ui::info("reference: PyTorch eager (same architecture and weights), torchvision's data pipelines on one core (loaders), the Python devkit-style mAP, or our own slower path where named; ratio = ours / reference in time (< 1: faster)");
    Ok(())
}

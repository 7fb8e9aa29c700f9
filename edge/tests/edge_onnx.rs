//! skipblock-edge on exported files made by tests/python/edge_ref.py (torch.onnx with the contract's
//! metadata: a tiny classifier, a tiny SSD-like detector with and without `NonMaxSuppression`), against
//! onnxruntime run by Python on the same preprocessed inputs.

use skipblock_edge::classify::top_k;
use skipblock_edge::compare;
use skipblock_edge::detect::{from_selected, per_class_nms};
use skipblock_edge::meta::{ExportMeta, Task};
use skipblock_edge::model::{read_proto, EdgeModel};
use skipblock_edge::preprocess::input_tensor;
use skipblock_pixels::predictions::{to_pixels, ClassPrediction, DetectionRecord, PostprocessConfig};
use skipblock_pixels::transforms::{eval_preprocess, normalize_chw};
use skipblock_pixels::{read_image, write_image, RgbImage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn python() -> PathBuf {
    let p = repo().join(".venv/bin/python");
    assert!(p.exists(), "{} missing: run scripts/setup.sh (make test does)", p.display());
    p
}

/// `tests/python/edge_ref.py ARGS`, its stdout; panics with its stderr on failure.
fn edge_ref(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/python/edge_ref.py"))
        .args(args)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap();
    assert!(out.status.success(), "edge_ref.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skipblock-edge")).args(args).output().unwrap()
}

fn edge_ok(args: &[&str]) -> String {
    let out = edge(args);
    assert!(out.status.success(), "skipblock-edge {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

struct Fixtures {
    dir: PathBuf,
    cls: PathBuf,
    det: PathBuf,
    det_nms: PathBuf,
    /// The images of `dir/images`, in the order a folder expands to.
    images: Vec<PathBuf>,
}

/// A picture with structure: a gradient background, a bright disc and a dark bar, varying with `seed`.
fn picture(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    let (cx, cy, r) = ((w * (2 + seed % 3)) / 6, (h * (1 + seed % 4)) / 6, w.min(h) / 4);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
            let px = if dx * dx + dy * dy < (r * r) as i64 {
                [240, 200 - (seed * 40 % 120) as u8, 40]
            } else if (y * 5 / h) == 3 && x > w / 5 {
                [20, 30, 60 + (seed * 30 % 150) as u8]
            } else {
                [(x * 255 / w) as u8, (y * 255 / h) as u8, ((x + y + seed * 17) % 256) as u8]
            };
            data.extend_from_slice(&px);
        }
    }
    RgbImage::new(w, h, data).unwrap()
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-onnx");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("images/sub")).unwrap();
        let f = |n: &str| dir.join(n);
        let s = |p: &Path| p.to_str().unwrap().to_string();
        edge_ref(&["export-classifier", &s(&f("cls.onnx")), "--names"]);
        edge_ref(&["export-detector", &s(&f("det.onnx"))]);
        edge_ref(&["export-detector", &s(&f("det_nms.onnx")), "--nms"]);
        let shots = [
            ("images/a.png", 80, 60),
            ("images/b.jpg", 50, 90),
            ("images/sub/c.png", 64, 64),
            ("images/sub/d.jpg", 123, 77),
        ];
        for (i, (name, w, h)) in shots.iter().enumerate() {
            write_image(&f(name), &picture(*w, *h, i as u32)).unwrap();
        }
        let images = skipblock_pixels::folder::list_images(&f("images")).unwrap();
        Fixtures { cls: f("cls.onnx"), det: f("det.onnx"), det_nms: f("det_nms.onnx"), dir, images }
    })
}

fn meta_of(path: &Path) -> ExportMeta {
    read_proto(path).unwrap().1
}

/// onnxruntime's outputs for each image's preprocessed input (written as raw f32 for Python).
fn onnxruntime(model: &Path, meta: &ExportMeta, images: &[PathBuf], tag: &str) -> Vec<serde_json::Value> {
    let fx = fixtures();
    let mut files = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let x = input_tensor(meta, &read_image(img).unwrap());
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let file = fx.dir.join(format!("{tag}-{i}.f32"));
        std::fs::write(&file, bytes).unwrap();
        files.push(file.to_str().unwrap().to_string());
    }
    let mut args = vec!["run", model.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    edge_ref(&args).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn floats(v: &serde_json::Value, name: &str) -> Vec<f32> {
    v[name]["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn classify_matches_onnxruntime() {
    let fx = fixtures();
    let meta = meta_of(&fx.cls);
    assert_eq!((meta.task, meta.input, meta.classify_geometry()), (Task::Classify, 32, (36, 32)));
    let folder = fx.dir.join("images");
    let got =
        edge_ok(&["classify", "--model", fx.cls.to_str().unwrap(), folder.to_str().unwrap(), "--topk", "3", "--json"]);
    let ort = onnxruntime(&fx.cls, &meta, &fx.images, "cls");
    // The reference lines: onnxruntime's logits through the same top-k.
    let model = EdgeModel::load(&fx.cls, Some(Task::Classify), None).unwrap();
    let mut want = String::new();
    let mut logit_diff = 0f32;
    for (path, o) in fx.images.iter().zip(&ort) {
        let logits = floats(o, "logits");
        let tract = model.run(input_tensor(&meta, &read_image(path).unwrap())).unwrap();
        logit_diff = logit_diff.max(max_diff(tract[0].as_slice::<f32>().unwrap(), &logits));
        let top = top_k(&logits, 3, &meta.classes);
        want += &serde_json::to_string(&ClassPrediction { image: path, top: &top }).unwrap();
        want.push('\n');
    }
    let d = compare::classify_lines(&got, &want, 1e-4).unwrap();
    eprintln!(
        "classify: {} images, logits |tract - onnxruntime| <= {logit_diff:.2e}, probabilities <= {:.2e}",
        d.lines, d.max_prob
    );
    assert_eq!(d.lines, 4);
    assert!(logit_diff <= 1e-4, "{logit_diff}");
    assert!(got.contains("\"names\":[\"class-"), "{got}");
    // The library's entry point (for end-to-end tests) prints the same lines.
    assert_eq!(skipblock_edge::app::classify_json(&fx.cls, &[fx.dir.join("images")], 3).unwrap(), got);
    let images = [fx.dir.join("images")];
    assert_eq!(compare::edge_against_predict(&fx.cls, &images, &want, 3, 1e-4, 0.0).unwrap().lines, 4);
    // The same network with a symbolic batch (`--batch dynamic`) runs at batch 1 with the same answers.
    let dynamic = fx.dir.join("cls-dynamic.onnx");
    edge_ref(&["export-classifier", dynamic.to_str().unwrap(), "--names", "--dynamic"]);
    assert_eq!(meta_of(&dynamic).batch, skipblock_edge::meta::Batch::Dynamic);
    assert_eq!(skipblock_edge::app::classify_json(&dynamic, &[fx.dir.join("images")], 3).unwrap(), got);
}

/// SkipblockNet-M at 224 px (the paper's network, seeded random weights): the same top-5 as onnxruntime.
#[test]
fn skipblocknet_m_matches_onnxruntime() {
    let fx = fixtures();
    let m = fx.dir.join("skipblocknet-m.onnx");
    edge_ref(&["export-skipblocknet-m", m.to_str().unwrap()]);
    let meta = meta_of(&m);
    assert_eq!((meta.input, meta.classify_geometry()), (224, (256, 224)));
    let images = &fx.images[..2];
    let sources: Vec<&str> = images.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["classify", "--model", m.to_str().unwrap(), "--json"];
    args.extend(&sources);
    let got = edge_ok(&args);
    let ort = onnxruntime(&m, &meta, images, "m");
    let model = EdgeModel::load(&m, Some(Task::Classify), None).unwrap();
    let (mut want, mut logit_diff) = (String::new(), 0f32);
    for (path, o) in images.iter().zip(&ort) {
        let tract = model.run(input_tensor(&meta, &read_image(path).unwrap())).unwrap();
        logit_diff = logit_diff.max(max_diff(tract[0].as_slice::<f32>().unwrap(), &floats(o, "logits")));
        let top = top_k(&floats(o, "logits"), 5, &meta.classes);
        assert!(top.probabilities[0] > 0.005, "flat logits (uniform is 0.001): {top:?}");
        want += &serde_json::to_string(&ClassPrediction { image: path, top: &top }).unwrap();
        want.push('\n');
    }
    let d = compare::classify_lines(&got, &want, 1e-4).unwrap();
    eprintln!(
        "skipblocknet-m: logits |tract - onnxruntime| <= {logit_diff:.2e}, top-5 probabilities <= {:.2e}",
        d.max_prob
    );
    assert!(logit_diff <= 1e-2, "{logit_diff}");
}

/// The reference detections of each image from onnxruntime's outputs, as JSON lines.
fn reference_lines(
    images: &[PathBuf],
    ort: &[serde_json::Value],
    meta: &ExportMeta,
    t: &PostprocessConfig,
    graph: bool,
) -> String {
    let mut want = String::new();
    for (path, o) in images.iter().zip(ort) {
        let (boxes, scores) = (floats(o, "boxes"), floats(o, "scores"));
        let c = o["scores"]["shape"][2].as_u64().unwrap() as usize;
        let dets = if graph {
            let sel: Vec<i64> = o["selected"]["data"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
            from_selected(&sel, &boxes, &scores, c, t)
        } else {
            per_class_nms(&boxes, &scores, c, t)
        };
        let img = read_image(path).unwrap();
        let px = to_pixels(&dets, img.width, img.height, &meta.classes);
        let r = DetectionRecord {
            source: path.display().to_string(),
            frame: None,
            width: img.width,
            height: img.height,
            detections: &px,
            ms: 0.0,
        };
        want += &serde_json::to_string(&r).unwrap();
        want.push('\n');
    }
    want
}

#[test]
fn detect_matches_onnxruntime_with_and_without_nms_in_the_graph() {
    let fx = fixtures();
    let folder = fx.dir.join("images");
    let folder = folder.to_str().unwrap();
    // The graph's NonMaxSuppression (its baked thresholds: conf 0.3, iou 0.45, max-det 100).
    let meta = meta_of(&fx.det_nms);
    let nms = meta.nms.unwrap();
    let baked = PostprocessConfig::for_predict(nms.score_threshold, nms.iou_threshold, nms.max_det);
    let ort = onnxruntime(&fx.det_nms, &meta, &fx.images, "det");
    let got = edge_ok(&["detect", "--model", fx.det_nms.to_str().unwrap(), folder, "--json"]);
    let d = compare::detect_lines(&got, &reference_lines(&fx.images, &ort, &meta, &baked, true), 1e-4 * 123.0, 1e-4)
        .unwrap();
    eprintln!(
        "detect (graph NMS): {} detections, boxes <= {:.2e} px, scores <= {:.2e}",
        d.detections, d.max_bbox_px, d.max_prob
    );
    assert!(d.detections >= 8, "too few detections to compare: {}", d.detections);
    let lib = skipblock_edge::app::detect_json(&fx.det_nms, &[fx.dir.join("images")], None, None, None).unwrap();
    assert_eq!(compare::detect_lines(&lib, &got, 0.0, 0.0).unwrap().detections, d.detections);
    let want = reference_lines(&fx.images, &ort, &meta, &baked, true);
    let e2e = compare::edge_against_predict(&fx.det_nms, &[fx.dir.join("images")], &want, 5, 1e-4, 1e-2).unwrap();
    assert_eq!(e2e.detections, d.detections);
    // A stricter --conf is applied after the graph's NMS.
    let strict = PostprocessConfig { score_threshold: 0.5, ..baked };
    let got = edge_ok(&["detect", "--model", fx.det_nms.to_str().unwrap(), folder, "--json", "--conf", "0.5"]);
    compare::detect_lines(&got, &reference_lines(&fx.images, &ort, &meta, &strict, true), 1e-2, 1e-4).unwrap();
    // The predictor's postprocessing in Rust, on the same file and on the file without NMS.
    let got = edge_ok(&["detect", "--model", fx.det_nms.to_str().unwrap(), folder, "--json", "--rust-nms"]);
    let d = compare::detect_lines(&got, &reference_lines(&fx.images, &ort, &meta, &baked, false), 1e-2, 1e-4).unwrap();
    assert!(d.detections >= 8);
    let plain = meta_of(&fx.det);
    assert!(plain.nms.is_none());
    let ort = onnxruntime(&fx.det, &plain, &fx.images, "det-plain");
    let got = edge_ok(&["detect", "--model", fx.det.to_str().unwrap(), folder, "--json", "--iou", "0.3"]);
    let t = PostprocessConfig::for_predict(0.25, 0.3, 100);
    let d = compare::detect_lines(&got, &reference_lines(&fx.images, &ort, &plain, &t, false), 1e-2, 1e-4).unwrap();
    eprintln!(
        "detect (Rust NMS): {} detections, boxes <= {:.2e} px, scores <= {:.2e}",
        d.detections, d.max_bbox_px, d.max_prob
    );
    // A looser --conf than the file's NMS: suppressed in Rust, with a note on stderr.
    let out = edge(&["detect", "--model", fx.det_nms.to_str().unwrap(), folder, "--conf", "0.2"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("suppressing in Rust"));
}

#[test]
fn tract_outputs_and_nms_rows_equal_onnxruntime_s() {
    let fx = fixtures();
    let meta = meta_of(&fx.det_nms);
    let ort = onnxruntime(&fx.det_nms, &meta, &fx.images, "raw");
    let model = EdgeModel::load(&fx.det_nms, Some(Task::Detect), None).unwrap();
    assert_eq!(model.outputs, ["boxes", "scores", "selected"]);
    let (mut boxes, mut scores) = (0f32, 0f32);
    for (path, o) in fx.images.iter().zip(&ort) {
        let outs = model.run(input_tensor(&meta, &read_image(path).unwrap())).unwrap();
        boxes = boxes.max(max_diff(outs[0].as_slice::<f32>().unwrap(), &floats(o, "boxes")));
        scores = scores.max(max_diff(outs[1].as_slice::<f32>().unwrap(), &floats(o, "scores")));
        let sel = outs[2].cast_to::<i64>().unwrap();
        let mut ours: Vec<&[i64]> = sel.as_slice::<i64>().unwrap().chunks(3).collect();
        let theirs: Vec<i64> = o["selected"]["data"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        let mut theirs: Vec<&[i64]> = theirs.chunks(3).collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{}", path.display());
    }
    eprintln!("raw outputs: boxes |tract - onnxruntime| <= {boxes:.2e}, scores <= {scores:.2e}");
    assert!(boxes <= 1e-4 && scores <= 1e-4, "{boxes} {scores}");
}

#[test]
fn the_input_is_the_predictors_preprocessing() {
    let fx = fixtures();
    let meta = meta_of(&fx.cls);
    let img = read_image(&fx.images[1]).unwrap();
    let x = input_tensor(&meta, &img);
    assert_eq!(x, normalize_chw(&eval_preprocess(&img, 36, 32), meta.mean, meta.std));
    // Pixel (0, 0) of the crop, red plane, by hand: 50x90 → shorter side 36 → 36x64, crop offset 16.
    let small = skipblock_pixels::image_io::resize(&img, 36, 64);
    let want = (small.pixel(2, 16)[0] as f32 / 255.0 - 0.485) / 0.229;
    assert!((x[0] - want).abs() < 1e-6, "{} {want}", x[0]);
    let det = meta_of(&fx.det);
    let d = input_tensor(&det, &img);
    assert_eq!(d.len(), 3 * 64 * 64);
    let resized = skipblock_pixels::image_io::resize(&img, 64, 64);
    assert!((d[64 * 64 + 5] - (resized.pixel(5, 0)[1] as f32 / 255.0 - 0.456) / 0.224).abs() < 1e-6);
}

#[test]
fn info_and_bench_print_the_contract_s_json() {
    let fx = fixtures();
    let info = edge_ok(&["info", "--model", fx.det_nms.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(
        (v["task"].as_str(), v["input"].as_u64(), v["nms"]["max_det"].as_u64()),
        (Some("detect"), Some(64), Some(100))
    );
    assert_eq!(v["classes"], serde_json::json!(["obj-1", "obj-2", "obj-3"]));
    let text = edge_ok(&["info", "--model", fx.det_nms.to_str().unwrap()]);
    assert!(text.contains("outputs:  boxes, scores, selected"), "{text}");
    let bench = edge_ok(&["bench", "--model", fx.cls.to_str().unwrap(), "--runs", "3", "--warmup", "1"]);
    assert_eq!(bench.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(bench.trim()).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["median_ms", "p90_ms", "runs"]);
    assert_eq!(v["runs"], 3);
    assert!(v["median_ms"].as_f64().unwrap() > 0.0 && v["p90_ms"].as_f64() >= v["median_ms"].as_f64());
    // Another input side (the classifier pools globally).
    let bench =
        edge_ok(&["bench", "--model", fx.cls.to_str().unwrap(), "--runs", "1", "--warmup", "0", "--input", "48"]);
    assert!(bench.contains("\"runs\":1"));
}

/// One line on stderr starting with "error:", naming `needle`, a failure status and no panic.
fn fails_with(args: &[&str], needles: &[&str]) {
    let out = edge(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: ") && !err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err} lacks {n}");
    }
}

#[test]
fn bad_files_are_one_clear_error_line() {
    let fx = fixtures();
    let f = |n: &str| fx.dir.join(n).to_str().unwrap().to_string();
    std::fs::write(f("notes.onnx"), "this is not protobuf at all \u{1}\u{2}\u{3}").unwrap();
    let img = fx.images[0].to_str().unwrap();
    fails_with(&["classify", "--model", &f("notes.onnx"), img], &["notes.onnx", "not an ONNX file"]);
    fails_with(&["info", "--model", &f("missing.onnx")], &["missing.onnx"]);
    edge_ref(&["export-classifier", &f("bare.onnx"), "--no-meta"]);
    fails_with(&["classify", "--model", &f("bare.onnx"), img], &["bare.onnx", "no skipblock metadata"]);
    fails_with(&["classify", "--model", &f("det.onnx"), img], &["det.onnx", "detect network", "skipblock-edge detect"]);
    fails_with(&["detect", "--model", &f("cls.onnx"), img], &["cls.onnx", "classify network"]);
    std::fs::write(f("broken.jpg"), b"\xff\xd8\xff\xe0 not a jpeg").unwrap();
    fails_with(&["classify", "--model", &f("cls.onnx"), &f("broken.jpg")], &["broken.jpg"]);
    fails_with(&["detect", "--model", &f("det.onnx"), &f("nowhere.png")], &["nowhere.png", "does not exist"]);
    fails_with(&["classify", "--model", &f("cls.onnx"), img, "--topk", "0"], &["--topk"]);
}

/// The aarch64 build (scripts/build-edge-aarch64.sh) under qemu-user gives the x86_64 binary's JSON. Skips
/// (saying so) where qemu-aarch64 or that build is missing, as in CI.
#[test]
fn the_aarch64_binary_under_qemu_agrees() {
    let x86 = PathBuf::from(env!("CARGO_BIN_EXE_skipblock-edge"));
    let target = x86.parent().and_then(Path::parent).unwrap();
    let arm = target.join("aarch64-unknown-linux-gnu/release/skipblock-edge");
    let qemu = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("qemu-aarch64")).find(|q| q.exists()));
    let (Some(qemu), true) = (qemu, arm.exists()) else {
        eprintln!("skipped: needs qemu-aarch64 on PATH and {} (scripts/build-edge-aarch64.sh)", arm.display());
        return;
    };
    let fx = fixtures();
    let folder = fx.dir.join("images");
    let run = |model: &Path, cmd: &str| {
        let out = Command::new(&qemu)
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(&arm)
            .args([cmd, "--model", model.to_str().unwrap(), folder.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let x86_cls = edge_ok(&["classify", "--model", fx.cls.to_str().unwrap(), folder.to_str().unwrap(), "--json"]);
    let c = compare::classify_lines(&run(&fx.cls, "classify"), &x86_cls, 1e-5).unwrap();
    let x86_det = edge_ok(&["detect", "--model", fx.det_nms.to_str().unwrap(), folder.to_str().unwrap(), "--json"]);
    let d = compare::detect_lines(&run(&fx.det_nms, "detect"), &x86_det, 1e-3, 1e-5).unwrap();
    eprintln!(
        "aarch64 (qemu) vs x86_64: probabilities <= {:.2e}; {} detections, boxes <= {:.2e} px, scores <= {:.2e}",
        c.max_prob, d.detections, d.max_bbox_px, d.max_prob
    );
}

//! `skipblock-edge`'s network input is the libtorch predictors' input: the same image through the edge's
//! preprocessing (from the export metadata) and through `skipblock_data`'s (the classifier's
//! `eval_preprocess` and the detector's resize, normalised on the device by `network_input`).

use skipblock_data::transforms::{detect_preprocess, eval_preprocess, network_input, IMAGENET_MEAN, IMAGENET_STD};
use skipblock_data::RgbImage;
use skipblock_edge::meta::ExportMeta;
use skipblock_edge::preprocess::input_tensor;
use std::path::Path;
use tch::Device;

fn meta(task: &str, input: u32, resize: Option<u32>) -> ExportMeta {
    let json = serde_json::json!({
        "format_version": 1, "task": task, "arch": "skipblocknet-m", "input": input, "resize": resize,
        "crop": resize.map(|_| input), "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "classes": [], "nms": null,
        "batch": "1", "opset": 17
    });
    ExportMeta::parse(&json.to_string(), Path::new("m.onnx")).unwrap()
}

fn photo(w: u32, h: u32) -> RgbImage {
    let data = (0..w * h * 3).map(|i| ((i * 2654435761u32) >> 13) as u8 ^ (i / (3 * w)) as u8).collect();
    RgbImage::new(w, h, data).unwrap()
}

fn max_diff(edge: &[f32], predictor: &tch::Tensor) -> f32 {
    let p = Vec::<f32>::try_from(predictor.view([-1])).unwrap();
    assert_eq!(edge.len(), p.len());
    edge.iter().zip(&p).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[test]
fn the_edge_input_is_the_predictors_input() {
    for (w, h) in [(500, 375), (97, 211)] {
        let img = photo(w, h);
        let cls = meta("classify", 224, Some(256));
        let predictor = network_input(&[eval_preprocess(&img, 256, 224)], Device::Cpu).unwrap();
        let d = max_diff(&input_tensor(&cls, &img), &predictor);
        assert!(d <= 1e-6, "classify {w}x{h}: {d}");
        let det = meta("detect", 300, None);
        let predictor = network_input(&[detect_preprocess(&img, 300)], Device::Cpu).unwrap();
        let d = max_diff(&input_tensor(&det, &img), &predictor);
        assert!(d <= 1e-6, "detect {w}x{h}: {d}");
    }
}

//! End to end on the CPU: an SSDLite-XS learns two synthetic images (filled rectangles of two classes on
//! a plain background) with SGD and the bias-loss weighting; the multibox loss must at least halve and
//! post-processing must then find the objects.

use skipblock_core::boxes::BBox;
use skipblock_core::loss::{Loss, LossConfig};
use skipblock_core::model::{Arch, BlockOptions};
use skipblock_data::draw::{fill_shape, Shape};
use skipblock_data::image_io::{to_tensor, RgbImage};
use skipblock_detect::postprocess::PostprocessConfig;
use skipblock_detect::{ImageTargets, Ssd, SsdConfig};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

const SIZE: u32 = 224;
const COLORS: [[u8; 3]; 2] = [[220, 40, 40], [40, 60, 220]];

/// An image with (pixel box, 1-based class) rectangles, and its normalised ground truth.
fn scene(objects: &[([f32; 4], usize)]) -> (Tensor, Vec<BBox>, Vec<usize>) {
    let mut img = RgbImage::filled(SIZE, SIZE, [120, 120, 110]);
    for &([x0, y0, x1, y1], class) in objects {
        fill_shape(&mut img, Shape::Rectangle, x0, y0, x1, y1, COLORS[class - 1]);
    }
    let mean = Tensor::from_slice(&[0.485f32, 0.456, 0.406]).view([3, 1, 1]);
    let std = Tensor::from_slice(&[0.229f32, 0.224, 0.225]).view([3, 1, 1]);
    let xs = (to_tensor(&img).to_kind(Kind::Float) / 255.0 - mean) / std;
    let s = 1.0 / SIZE as f32;
    let boxes = objects.iter().map(|(b, _)| BBox::new(b[0], b[1], b[2], b[3]).scale(s, s)).collect();
    (xs, boxes, objects.iter().map(|o| o.1).collect())
}

#[test]
fn ssdlite_xs_overfits_two_images() {
    tch::manual_seed(0);
    tch::set_num_threads(2);
    let scenes = [
        scene(&[([30.0, 37.0, 112.0, 120.0], 1), ([134.0, 90.0, 209.0, 194.0], 2)]),
        scene(&[([22.0, 127.0, 97.0, 209.0], 2), ([120.0, 22.0, 202.0, 105.0], 1)]),
    ];
    let vs = nn::VarStore::new(Device::Cpu);
    // At 224×224 (to stay fast) the feature maps are taken from the network: 14, 7, 4, 2, 1, 1.
    let mut cfg = SsdConfig::for_arch(Arch::SsdliteSkipblocknetXs, 3).unwrap();
    cfg.input_size = SIZE as i64;
    cfg.priors.feature_maps.clear();
    let ssd = Ssd::new(&vs.root(), &cfg, BlockOptions::default()).unwrap();
    assert_eq!(ssd.feature_maps(), &[14, 7, 4, 2, 1, 1]);
    let xs = Tensor::stack(&scenes.iter().map(|s| s.0.shallow_clone()).collect::<Vec<_>>(), 0);
    let gt: Vec<ImageTargets> = scenes.iter().map(|s| (s.1.clone(), s.2.clone())).collect();
    // The classification term is weighted per image by the bias loss on the backbone's last features.
    let mut bias = Loss::new(LossConfig::default()).unwrap();
    let mut opt = nn::Sgd { momentum: 0.9, ..Default::default() }.build(&vs, 0.02).unwrap();
    let mut losses = Vec::new();
    for _ in 0..60 {
        let out = ssd.forward_t(&xs, true);
        let weights = bias.sample_weights(&out.features).unwrap();
        let l = ssd.compute_loss(&out, &gt, Some(&weights)).unwrap();
        let total = l.total();
        if losses.is_empty() {
            println!(
                "start: loc {:.3} conf {:.3} positives {}",
                l.loc_loss.double_value(&[]),
                l.conf_loss.double_value(&[]),
                l.num_pos
            );
        }
        opt.backward_step_clip_norm(&total, 10.0);
        losses.push(total.double_value(&[]));
    }
    let (first, last) = (losses[0], losses[losses.len() - 5..].iter().sum::<f64>() / 5.0);
    println!("multibox loss {first:.3} -> {last:.3}");
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(last < 0.5 * first, "the loss did not halve: {losses:?}");

    let dets = ssd.detect(&xs, &PostprocessConfig::default()).unwrap();
    for (i, (boxes, labels)) in gt.iter().enumerate() {
        let best = dets[i].first().unwrap_or_else(|| panic!("image {i}: no detections"));
        let hit = boxes.iter().zip(labels).any(|(b, &l)| l == best.label && b.iou(&best.bbox) > 0.5);
        assert!(hit, "image {i}: best detection {best:?} matches no ground truth {boxes:?}");
    }
}

//! Parameter and multiply-add budgets of the named detectors at 300×300 with 21 classes, counted as
//! `model summary` counts them (a traced forward pass; conv and linear layers).

use skipblock_core::model::{summary, Arch, BlockOptions};
use skipblock_detect::{Ssd, SsdConfig};
use tch::{nn::VarStore, Device};

fn summarize(name: Arch) -> summary::Summary {
    let vs = VarStore::new(Device::Cpu);
    let cfg = SsdConfig::for_arch(name, 21).unwrap();
    let ssd = Ssd::new(&vs.root(), &cfg, BlockOptions::default()).unwrap();
    let s = ssd.summary(&vs);
    assert_eq!((s.arch, s.input_size, s.num_classes), (name, 300, 21));
    s
}

#[test]
fn ssd_skipblocknet_s_lands_on_table_6() {
    let s = summarize(Arch::SsdSkipblocknetS);
    // Table 6, SkipblockNet-S + SSD: 9.4 M parameters, 1.4 B FLOPs.
    let (params, macs) = (s.params as f64 / 1e6, s.macs as f64 / 1e9);
    println!("ssd-skipblocknet-s: {params:.2} M params, {macs:.3} B MACs");
    assert!((params / 9.4 - 1.0).abs() < 0.15, "{params} M params");
    assert!((macs / 1.4 - 1.0).abs() < 0.15, "{macs} B MACs");
    // The head convolutions are traced too.
    assert!(s.layers.iter().any(|l| l.name == "heads.conf.0" && l.kind == "conv3x3"));
}

#[test]
fn every_detector_is_smaller_with_a_smaller_backbone_and_lite_heads() {
    let mut rows = Vec::new();
    for name in Arch::detectors() {
        let s = summarize(name);
        println!("{name:<26} {:>11} params {:>14} MACs", summary::group(s.params), summary::group(s.macs));
        rows.push((name, s.params, s.macs));
    }
    for w in rows[..4].windows(2).chain(rows[4..].windows(2)) {
        assert!(w[0].1 < w[1].1 && w[0].2 < w[1].2, "{w:?}");
    }
    for i in 0..4 {
        assert!(rows[i].1 < rows[i + 4].1 && rows[i].2 < rows[i + 4].2, "{:?} vs {:?}", rows[i], rows[i + 4]);
    }
    let lite = summarize(Arch::SsdliteSkipblocknetM);
    assert!(lite.layers.iter().any(|l| l.name == "heads.conf.0.3" && l.kind == "conv1x1"));
    assert!(lite.layers.iter().any(|l| l.name == "heads.conf.5" && l.kind == "conv1x1"));
}

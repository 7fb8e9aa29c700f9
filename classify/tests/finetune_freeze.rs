//! Fine-tuning with a frozen backbone: for `finetune.freeze_backbone_epochs` the backbone's weights *and*
//! its batch-norm statistics stay exactly as loaded, while the new head trains; afterwards everything
//! trains.

use skipblock_classify::classifier::build;
use skipblock_classify::pipeline::{self, StartFrom};
use skipblock_classify::ClassifyRecipe;
use skipblock_core::checkpoint::{self, CheckpointMeta};
use skipblock_core::model::{Arch, BlockOptions};
use skipblock_core::train::RunSettings;
use skipblock_core::{config, tensors};
use skipblock_data::classification::Layout;
use skipblock_data::synth_cls::{generate, SynthClsOptions};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn named(path: &Path) -> BTreeMap<String, Tensor> {
    tensors::read_named_tensors(path).unwrap().into_iter().collect()
}

fn finetune(dir: &Path, from: &Path, data: &Path, name: &str, epochs: usize) -> BTreeMap<String, Tensor> {
    let overrides = [
        "model.arch=skipblocknet-xs".to_string(),
        "model.input_size=32".into(),
        "model.bn_momentum=0.5".into(),
        "data.augment=cifar".into(),
        "data.workers=1".into(),
        format!("train.epochs={epochs}"),
        "train.batch_size=8".into(),
        "finetune.freeze_backbone_epochs=1".into(),
    ];
    let recipe: ClassifyRecipe = config::load_config(None, &overrides).unwrap();
    let run = RunSettings {
        runs_dir: dir.to_path_buf(),
        name: Some(name.into()),
        resume: false,
        exist_ok: false,
        stop_after: None,
        device: Device::Cpu,
        seed: 1,
    };
    let from = StartFrom { checkpoint: Some(from.to_path_buf()), arch: None };
    pipeline::train(&recipe, Some(data), &run, Some(&from)).unwrap();
    named(&dir.join(name).join("last.safetensors"))
}

#[test]
fn a_frozen_backbone_keeps_weights_and_batch_norm_statistics() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = SynthClsOptions {
        layout: Layout::Food101,
        classes: 3,
        train_per_class: 8,
        test_per_class: 2,
        seed: 0,
        size: 40,
    };
    generate(&data, &opts).unwrap();
    // The checkpoint to start from: random weights with non-trivial statistics, 5 classes (a new head).
    let (vs, net) = build(Arch::SkipblocknetXs, 5, Device::Cpu, BlockOptions::default()).unwrap();
    let _ = net.forward_t(&(Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 + 1.0), true);
    let source = dir.path().join("source.safetensors");
    checkpoint::save(&vs, &source, &CheckpointMeta::new(Arch::SkipblocknetXs, 5, BlockOptions::default())).unwrap();
    let before = named(&source);

    let frozen = finetune(dir.path(), &source, &data, "frozen", 1);
    for (key, value) in &frozen {
        if key.starts_with("classifier.") {
            continue;
        }
        assert!(value.equal(&before[key]), "{key} changed while the backbone was frozen");
    }
    let head = &frozen["classifier.0.weight"];
    assert!(!head.equal(&before["classifier.0.weight"]), "the head trains");
    assert_eq!(frozen["classifier.3.weight"].size(), vec![3, 1024], "a new 3-class head");

    // The epoch after the frozen one trains the backbone again, statistics included.
    let thawed = finetune(dir.path(), &source, &data, "thawed", 2);
    let key = "first_layer.1.running_mean";
    assert!(!thawed[key].equal(&before[key]), "{key} moves once the backbone trains");
    assert!(!thawed["first_layer.0.weight"].equal(&before["first_layer.0.weight"]));
}

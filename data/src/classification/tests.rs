//! Synthetic datasets in every layout, read back: class order, counts, labels, splits and errors.

use super::*;
use crate::loader::{Dataset, Rng};
use crate::synth_cls::{generate, SynthClsOptions, SynthClsSummary};
use rand::SeedableRng;

fn synth(root: &Path, layout: Layout, classes: usize, train: usize, test: usize, size: u32) -> SynthClsSummary {
    generate(root, &SynthClsOptions { layout, classes, train_per_class: train, test_per_class: test, seed: 11, size })
        .unwrap()
}

/// Every file sample sits in the folder of its class.
fn assert_labels_follow_folders(set: &ClassificationSet) {
    for (source, label) in &set.samples {
        let Source::File(path) = source else { panic!("expected files") };
        let folder = path.parent().and_then(|p| p.file_name()).unwrap().to_str().unwrap();
        assert_eq!(folder, set.class_names[*label], "{}", path.display());
    }
}

fn err_of(r: Result<ClassificationSet>) -> String {
    format!("{:#}", r.unwrap_err())
}

#[test]
fn food101_is_read_in_place_with_classes_txt_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("food");
    let summary = synth(&root, Layout::Food101, 4, 3, 2, 40);
    for layout in [Layout::Food101, Layout::Auto] {
        let train = open(&root, layout, Split::Train, 0.1, 0).unwrap();
        let val = open(&root, layout, Split::Val, 0.1, 0).unwrap();
        assert_eq!(train.layout, Layout::Food101);
        assert_eq!(train.class_names, summary.class_names);
        assert_eq!((train.class_counts(), val.class_counts()), (vec![3; 4], vec![2; 4]));
        assert_labels_follow_folders(&train);
        assert_labels_follow_folders(&val);
    }
    // The class order is classes.txt's, not the folders' alphabetical order.
    let classes = root.join("meta/classes.txt");
    let mut names = summary.class_names.clone();
    names.reverse();
    std::fs::write(&classes, names.join("\n") + "\n").unwrap();
    let set = open(&root, Layout::Auto, Split::Train, 0.1, 0).unwrap();
    assert_eq!(set.class_names, names);
    assert_labels_follow_folders(&set);
}

#[test]
fn food101_list_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("food");
    let summary = synth(&root, Layout::Food101, 2, 2, 1, 32);
    let train_txt = root.join("meta/train.txt");
    let good = std::fs::read_to_string(&train_txt).unwrap();
    std::fs::write(&train_txt, format!("{good}pizza/123\n")).unwrap();
    let err = err_of(open(&root, Layout::Food101, Split::Train, 0.1, 0));
    assert!(err.contains("train.txt") && err.contains("line 5") && err.contains("'pizza'"), "{err}");
    std::fs::write(&train_txt, format!("{good}{}/999\n", summary.class_names[1])).unwrap();
    let err = err_of(open(&root, Layout::Food101, Split::Train, 0.1, 0));
    assert!(err.contains("line 5") && err.contains("999.jpg") && err.contains("missing"), "{err}");
    // A class listed in classes.txt without training images, and an empty test list.
    let first: String =
        good.lines().filter(|l| l.starts_with(&summary.class_names[0])).map(|l| format!("{l}\n")).collect();
    std::fs::write(&train_txt, first).unwrap();
    let err = err_of(open(&root, Layout::Food101, Split::Train, 0.1, 0));
    assert!(err.contains(&summary.class_names[1]) && err.contains("no training images"), "{err}");
    std::fs::write(root.join("meta/test.txt"), "\n").unwrap();
    let err = err_of(open(&root, Layout::Auto, Split::Val, 0.1, 0));
    assert!(err.contains("no images") && err.contains("food"), "{err}");
}

#[test]
fn image_folders_split_deterministically_and_disjointly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("folder");
    let summary = synth(&root, Layout::Imagefolder, 3, 8, 4, 32);
    let train = open(&root, Layout::Auto, Split::Train, 0.25, 3).unwrap();
    let val = open(&root, Layout::Imagefolder, Split::Val, 0.25, 3).unwrap();
    assert_eq!(train.layout, Layout::Imagefolder);
    assert_eq!(train.class_names, summary.class_names);
    assert_eq!(train.len() + val.len(), 36);
    assert!(val.len() >= 3 && val.len() <= 18, "{} held out of 36 at 0.25", val.len());
    let paths = |s: &ClassificationSet| {
        s.samples.iter().map(|(src, _)| src.to_string()).collect::<std::collections::HashSet<_>>()
    };
    assert!(paths(&train).is_disjoint(&paths(&val)));
    assert_labels_follow_folders(&train);
    assert_labels_follow_folders(&val);
    let again = open(&root, Layout::Imagefolder, Split::Val, 0.25, 3).unwrap();
    assert_eq!(paths(&again), paths(&val), "the split is stable");
    let other = open(&root, Layout::Imagefolder, Split::Val, 0.25, 4).unwrap();
    assert_ne!(paths(&other), paths(&val), "and follows the seed");
    assert!(err_of(open(&root, Layout::Imagefolder, Split::Val, 0.0, 3)).contains("no images"));
    assert!(err_of(open(&root, Layout::Imagefolder, Split::Val, 1.5, 3)).contains("val_fraction"));
}

#[test]
fn cifar100_binaries_are_read_with_fine_labels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cifar");
    let summary = synth(&root.join("cifar-100-binary"), Layout::Cifar100, 6, 4, 2, 0);
    for (layout, at) in
        [(Layout::Cifar100, root.clone()), (Layout::Auto, root.clone()), (Layout::Auto, root.join("cifar-100-binary"))]
    {
        let train = open(&at, layout, Split::Train, 0.1, 0).unwrap();
        let val = open(&at, layout, Split::Val, 0.1, 0).unwrap();
        assert_eq!(train.layout, Layout::Cifar100);
        assert_eq!(train.class_names, summary.class_names);
        assert_eq!((train.class_counts(), val.class_counts()), (vec![4; 6], vec![2; 6]));
    }
    // The records hold the synthetic images: the fine label agrees with the coarse (shape) label.
    let bytes = std::fs::read(root.join("cifar-100-binary/train.bin")).unwrap();
    let shapes: Vec<String> = std::fs::read_to_string(root.join("cifar-100-binary/coarse_label_names.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for record in bytes.chunks(cifar100::RECORD_BYTES) {
        let fine = &summary.class_names[record[1] as usize];
        assert!(fine.starts_with(&shapes[record[0] as usize]), "{fine} vs {}", shapes[record[0] as usize]);
    }
    // Without label names: class_000…class_099.
    std::fs::remove_file(root.join("cifar-100-binary/fine_label_names.txt")).unwrap();
    let set = open(&root, Layout::Auto, Split::Val, 0.1, 0).unwrap();
    assert_eq!((set.num_classes(), set.class_names[7].as_str()), (100, "class_007"));
    let err = err_of(open(&root, Layout::Auto, Split::Train, 0.1, 0));
    assert!(err.contains("class_006") && err.contains("no training images"), "{err}");
}

/// The files in `dir`, sorted by name.
fn file_names(dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).unwrap();
    let mut names: Vec<String> = entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn generated_imagenet_folders_have_imagenets_layout_and_open_with_sorted_training_classes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("imagenet");
    let summary = synth(&root, Layout::Imagenet, 3, 3, 2, 24);
    assert_eq!(summary.layout, Layout::Imagenet);
    // Exactly ImageNet's layout: train/<class>/<class>_<id>.JPEG and val/<class>/ILSVRC2012_val_<n>.JPEG.
    assert_eq!(file_names(&root), ["train", "val"]);
    for split in ["train", "val"] {
        assert_eq!(file_names(&root.join(split)), summary.class_names, "{split}");
    }
    let first = &summary.class_names[0];
    let train_files = file_names(&root.join("train").join(first));
    assert_eq!(train_files, ["100000", "100001", "100002"].map(|id| format!("{first}_{id}.JPEG")));
    let val_files = file_names(&root.join("val").join(first));
    assert_eq!(val_files, ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]);
    assert_eq!(detect_layout(&root).unwrap(), Layout::Imagenet);
    for layout in [Layout::Imagenet, Layout::Auto] {
        let train = open(&root, layout, Split::Train, 0.1, 0).unwrap();
        let val = open(&root, layout, Split::Val, 0.1, 0).unwrap();
        assert_eq!(train.layout, Layout::Imagenet);
        assert_eq!(train.class_names, summary.class_names);
        assert_eq!(val.class_names, summary.class_names);
        assert_eq!((train.class_counts(), val.class_counts()), (vec![3; 3], vec![2; 3]));
        assert_labels_follow_folders(&train);
        assert_labels_follow_folders(&val);
        let image = train.samples[0].0.load().unwrap();
        assert_eq!((image.width, image.height), (24, 24));
    }
    // A validation split may lack classes; labels stay those of the training classes.
    std::fs::remove_dir_all(root.join("val").join(first)).unwrap();
    let val = open(&root, Layout::Auto, Split::Val, 0.1, 0).unwrap();
    assert_eq!((val.class_names.len(), val.class_counts()), (3, vec![0, 2, 2]));
    assert_labels_follow_folders(&val);
    std::fs::create_dir_all(root.join("val/zebra")).unwrap();
    let err = err_of(open(&root, Layout::Auto, Split::Val, 0.1, 0));
    assert!(err.contains("zebra"), "{err}");
    std::fs::create_dir_all(root.join("train/aardvark")).unwrap();
    let err = err_of(open(&root, Layout::Imagenet, Split::Train, 0.1, 0));
    assert!(err.contains("'aardvark' has no training images"), "{err}");
}

#[test]
fn layout_and_split_names_agree_across_serde_clap_parse_and_display() {
    use clap::ValueEnum;
    for layout in Layout::value_variants() {
        let name = layout.to_string();
        assert_eq!(name, layout.name());
        assert_eq!(name.parse::<Layout>().unwrap(), *layout);
        assert_eq!(layout.to_possible_value().unwrap().get_name(), name);
        assert_eq!(serde_json::to_string(layout).unwrap(), format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<Layout>(&format!("\"{name}\"")).unwrap(), *layout);
    }
    let names: Vec<String> = Layout::value_variants().iter().map(Layout::to_string).collect();
    assert_eq!(names, ["auto", "imagenet", "food101", "cifar100", "imagefolder"]);
    for (text, split) in [("train", Split::Train), ("val", Split::Val), ("test", Split::Val)] {
        assert_eq!(text.parse::<Split>().unwrap(), split, "{text}");
        assert_eq!(Split::from_str(text, false).unwrap(), split, "clap: {text}");
    }
    assert_eq!((Split::Train.to_string(), Split::Val.to_string()), ("train".into(), "val".into()));
    assert_eq!(" Test ".parse::<Split>().unwrap(), Split::Val);
    assert_eq!("ImageNet".parse::<Layout>().unwrap(), Layout::Imagenet);
    let err = "imagenet1k".parse::<Layout>().unwrap_err().to_string();
    assert!(err.contains("'imagenet1k'") && err.contains("auto, imagenet, food101, cifar100, imagefolder"), "{err}");
    let err = "valid".parse::<Split>().unwrap_err().to_string();
    assert!(err.contains("unknown split 'valid'") && err.contains("train, val"), "{err}");
}

#[test]
fn missing_and_empty_datasets_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    for layout in [Layout::Auto, Layout::Imagefolder, Layout::Food101] {
        assert!(err_of(open(&missing, layout, Split::Train, 0.1, 0)).contains("nowhere"));
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("cats")).unwrap();
    std::fs::write(empty.join("cats/notes.txt"), "not an image").unwrap();
    let err = err_of(open(&empty, Layout::Auto, Split::Train, 0.1, 0));
    assert!(err.contains("empty") && err.contains("no images"), "{err}");
    std::fs::remove_dir_all(empty.join("cats")).unwrap();
    assert!(err_of(open(&empty, Layout::Auto, Split::Train, 0.1, 0)).contains("no class folders"));
    assert!(err_of(open(&empty, Layout::Cifar100, Split::Train, 0.1, 0)).contains("train.bin"));
}

#[test]
fn the_dataset_augments_training_samples_and_names_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("food");
    synth(&root, Layout::Food101, 2, 2, 2, 48);
    let transform = ClsTransform::new(Augment::Inception, 40, 1.15, 0.0, false).unwrap();
    let train = ClsDataset::new(open(&root, Layout::Auto, Split::Train, 0.1, 0).unwrap(), transform.clone());
    let val = ClsDataset::new(open(&root, Layout::Auto, Split::Val, 0.1, 0).unwrap(), transform);
    assert!(train.augments() && !val.augments());
    let get = |d: &ClsDataset, seed| d.get(1, &mut Rng::seed_from_u64(seed)).unwrap();
    let (x, label) = get(&train, 1);
    assert_eq!((x.shape(), label), ([3, 40, 40], 0));
    assert_ne!(x, get(&train, 2).0, "training samples are augmented");
    assert_eq!(get(&val, 1).0, get(&val, 2).0, "validation samples are not");
    let Source::File(path) = &train.set.samples[1].0 else { panic!("files") };
    std::fs::write(path, b"\xff\xd8\xff\xe0 broken").unwrap();
    let err = format!("{:#}", train.get(1, &mut Rng::seed_from_u64(1)).unwrap_err());
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(train.get(99, &mut Rng::seed_from_u64(1)).is_err());
}

#[test]
fn inception_loading_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("food");
    synth(&root, Layout::Food101, 4, 16, 0, 128);
    let set = open(&root, Layout::Food101, Split::Train, 0.1, 0).unwrap();
    let dataset = ClsDataset::new(set, ClsTransform::new(Augment::Inception, 224, 256.0 / 224.0, 0.0, false).unwrap());
    let start = std::time::Instant::now();
    let mut rounds = 0;
    while rounds < 2 || start.elapsed().as_secs_f64() < 1.0 {
        for i in 0..dataset.len() {
            let (x, _) = dataset.get(i, &mut Rng::seed_from_u64(i as u64)).unwrap();
            assert_eq!(x.shape(), [3, 224, 224]);
        }
        rounds += 1;
    }
    let per_s = (rounds * dataset.len()) as f64 / start.elapsed().as_secs_f64();
    println!(
        "ClsDataset::get, 128x128 JPEG -> Inception 224x224: {per_s:.0} images/s on one thread ({})",
        crate::image_io::backend()
    );
}

#[test]
fn uint8_samples_normalised_on_the_device_match_the_old_host_float_path() {
    use crate::transforms::{network_input, normalize, IMAGENET_MEAN, IMAGENET_STD};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("food");
    synth(&root, Layout::Food101, 2, 3, 1, 56);
    for (kind, size) in [(Augment::Inception, 40), (Augment::Cifar, 32), (Augment::None, 48)] {
        let transform = ClsTransform::new(kind, size, 1.15, 15.0, true).unwrap();
        let train = ClsDataset::new(open(&root, Layout::Auto, Split::Train, 0.1, 0).unwrap(), transform.clone());
        for index in 0..train.len() {
            let seed = index as u64 + 11;
            let (x, _) = train.get(index, &mut Rng::seed_from_u64(seed)).unwrap();
            let new = network_input(&[x], tch::Device::Cpu).unwrap().get(0);
            // Before: the same augmentation, normalised to float on the host in the worker.
            let img = train.set.samples[index].0.load().unwrap();
            let old =
                normalize(&transform.augment_image(&img, &mut Rng::seed_from_u64(seed)), IMAGENET_MEAN, IMAGENET_STD);
            let diff = f64::try_from((new - old).abs().max()).unwrap();
            assert!(diff <= 1e-5, "{kind:?}, sample {index}: {diff}");
        }
    }
}

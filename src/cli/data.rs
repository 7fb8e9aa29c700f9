//! `skipblock data …`: synthetic datasets in the real layouts, checking a VOC dataset and writing its
//! split lists.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use skipblock_data::classification::Layout;
use skipblock_data::synth_cls::{self, SynthClsOptions};
use skipblock_data::synth_voc::{self, SynthVocOptions};
use skipblock_data::voc;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Write a synthetic classification dataset (shapes × patterns) in a real layout.
    SynthCls(SynthClsArgs),
    /// Write a synthetic detection dataset in PASCAL VOC2007's layout (with labels.txt).
    SynthVoc(SynthVocArgs),
    /// Check a VOC dataset: counts per class and split, and every problem found.
    Check(CheckArgs),
    /// Write ImageSets/Main/{train,val,trainval,test}.txt for a VOC export without split lists.
    Split(SplitArgs),
}

#[derive(Args, Debug)]
pub struct SynthClsArgs {
    /// Output folder (must be empty or absent).
    #[arg(long)]
    pub out: PathBuf,
    /// Layout written (every one the readers take except `auto`).
    #[arg(long, value_enum, default_value_t = Layout::Food101)]
    pub layout: Layout,
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Training images per class.
    #[arg(long, default_value_t = 40)]
    pub train: usize,
    /// Test images per class.
    #[arg(long, default_value_t = 10)]
    pub test: usize,
    /// Image side (CIFAR-100 is always 32).
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct SynthVocArgs {
    /// Output folder: VOCdevkit/VOC2007 is written inside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Images in trainval.
    #[arg(long, default_value_t = 200)]
    pub train: usize,
    /// Images in test.
    #[arg(long, default_value_t = 50)]
    pub test: usize,
    #[arg(long, default_value_t = 300)]
    pub size: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// VOC root(s) (folders with Annotations/, ImageSets/Main/, JPEGImages/); repeatable.
    #[arg(long = "voc", required = true)]
    pub roots: Vec<PathBuf>,
    /// Splits to check (default: trainval and test).
    #[arg(long = "split")]
    pub splits: Vec<String>,
    /// Class names, one per line (default: the 20 VOC classes).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// VOC root (a folder with Annotations/ and JPEGImages/); only ids with both their XML and image count.
    #[arg(long = "voc")]
    pub root: PathBuf,
    /// Fraction of the images for val (trainval = train + val).
    #[arg(long, default_value_t = 0.1)]
    pub val: f64,
    /// Fraction of the images for test.
    #[arg(long, default_value_t = 0.1)]
    pub test: f64,
    /// Seed of the random split: the same seed gives the same lists.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Overwrite existing split lists (without it an existing list is an error).
    #[arg(long)]
    pub force: bool,
}

/// The class list: `--labels FILE` or VOC's 20 classes.
pub fn class_list(labels: Option<&std::path::Path>) -> Result<Vec<String>> {
    match labels {
        Some(p) => voc::read_labels(p),
        None => Ok(voc::voc_classes()),
    }
}

pub fn run(command: &DataCommand) -> Result<()> {
    match command {
        DataCommand::SynthCls(a) => {
            let opts = SynthClsOptions {
                layout: a.layout,
                classes: a.classes,
                train_per_class: a.train,
                test_per_class: a.test,
                seed: a.seed,
                size: a.size,
            };
            println!("{}", synth_cls::generate(&a.out, &opts)?);
        }
        DataCommand::SynthVoc(a) => {
            let s = synth_voc::generate(
                &a.out,
                SynthVocOptions { train: a.train, test: a.test, seed: a.seed, size: a.size },
            )?;
            println!(
                "{}: {} trainval ({} train, {} val) and {} test images, {} objects ({} difficult); classes {} in {}",
                s.root.display(),
                s.trainval,
                s.train,
                s.val,
                s.test,
                s.objects,
                s.difficult,
                s.classes.join(", "),
                s.labels.display()
            );
        }
        DataCommand::Check(a) => {
            let classes = class_list(a.labels.as_deref())?;
            let splits =
                if a.splits.is_empty() { vec!["trainval".to_string(), "test".to_string()] } else { a.splits.clone() };
            let report = voc::check(&a.roots, &splits, &classes);
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            if !report.is_ok() {
                bail!("{} problem(s) found", report.problems.len());
            }
        }
        DataCommand::Split(a) => {
            let opts = voc::SplitOptions { val: a.val, test: a.test, seed: a.seed, force: a.force };
            let s = voc::write_splits(&a.root, &opts)?;
            println!(
                "{}: {} train, {} val ({} trainval), {} test images in {}",
                a.root.display(),
                s.train,
                s.val,
                s.train + s.val,
                s.test,
                a.root.join("ImageSets/Main").display()
            );
            if s.without_image > 0 {
                skipblock_core::ui::warn(format!("{} annotations without their image left out", s.without_image));
            }
        }
    }
    Ok(())
}

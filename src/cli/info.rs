//! `skipblock info`: what this binary runs on.

use super::GlobalArgs;
use anyhow::Result;
use clap::Args;
use serde::Serialize;
use skipblock_core::device::{self, RuntimeInfo};
use skipblock_core::dist::Backend;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Info {
    skipblock_version: &'static str,
    #[serde(flatten)]
    runtime: RuntimeInfo,
    /// What `--device` resolves to (or the error it gives).
    selected_device: String,
    opencv_version: Option<String>,
    image_backend: &'static str,
    features: Vec<&'static str>,
    /// The collective backends this build can use for data-parallel training (`--dist-backend`).
    dist_backends: Vec<&'static str>,
}

fn enabled_features() -> Vec<&'static str> {
    let mut features = Vec::new();
    if cfg!(feature = "opencv") {
        features.push("opencv");
    }
    features
}

pub fn run(global: &GlobalArgs, args: &InfoArgs) -> Result<()> {
    let info = Info {
        skipblock_version: env!("CARGO_PKG_VERSION"),
        runtime: RuntimeInfo::collect(),
        selected_device: match device::parse_device(&global.device) {
            Ok(d) => device::device_name(d),
            Err(e) => format!("error: {e}"),
        },
        opencv_version: skipblock_data::image_io::opencv_version(),
        image_backend: skipblock_data::image_io::backend(),
        features: enabled_features(),
        dist_backends: [Backend::Gloo, Backend::Nccl]
            .into_iter()
            .filter(|b| b.available())
            .map(Backend::name)
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    let r = &info.runtime;
    println!("skipblock        {}", info.skipblock_version);
    println!("libtorch         {}", r.libtorch_version);
    println!("libtorch lib     {}", r.libtorch_lib.as_deref().unwrap_or("?"));
    println!("cpu threads      {}", r.cpu_threads);
    println!("mkldnn           {}", r.mkldnn_available);
    println!("cuda available   {}", r.cuda_available);
    println!("cuda devices     {}", r.cuda_device_count);
    println!("cudnn            {}", r.cudnn_available);
    println!("device (--device {}) {}", global.device, info.selected_device);
    println!("opencv           {}", info.opencv_version.as_deref().unwrap_or("off (image crate decodes)"));
    println!("image backend    {}", info.image_backend);
    println!("features         {}", if info.features.is_empty() { "(none)".into() } else { info.features.join(", ") });
    println!("dist backends    {}", info.dist_backends.join(", "));
    Ok(())
}

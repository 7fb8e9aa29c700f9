//! Compute devices: parsing the `--device` flag and reporting what libtorch sees.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::Device;

include!("torch_version.rs");

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`. `auto` picks CUDA device 0 when libtorch sees one.
/// Asking for CUDA when none is available is an error, not a silent fall-back.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    let device = match spec.as_str() {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => Device::Cuda(0),
        s if s.starts_with("cuda:") => {
            let index: usize =
                s[5..].parse().with_context(|| format!("invalid device '{spec}': expected cuda:N with N a number"))?;
            Device::Cuda(index)
        }
        _ => bail!("invalid device '{spec}': expected auto, cpu, cuda or cuda:N"),
    };
    if let Device::Cuda(index) = device {
        let count = tch::Cuda::device_count() as usize;
        if index >= count {
            bail!(
                "device '{spec}' requested but libtorch sees {count} CUDA device(s){}",
                if count == 0 { " (CPU-only machine or libtorch_cuda not loaded)" } else { "" }
            );
        }
    }
    Ok(device)
}

/// A device as a short string (`cpu`, `cuda:0`), the inverse of [`parse_device`].
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// What `skipblock info` reports about the libtorch runtime.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    pub libtorch_version: String,
    /// Folder of the libtorch shared libraries this process loaded.
    pub libtorch_lib: Option<String>,
    pub cpu_threads: i32,
    pub cuda_available: bool,
    pub cuda_device_count: i64,
    pub cudnn_available: bool,
    pub mkldnn_available: bool,
}

impl RuntimeInfo {
    pub fn collect() -> Self {
        RuntimeInfo {
            libtorch_version: libtorch_version(),
            libtorch_lib: loaded_libtorch_dir().map(|p| p.display().to_string()),
            cpu_threads: tch::get_num_threads(),
            cuda_available: tch::Cuda::is_available(),
            cuda_device_count: tch::Cuda::device_count(),
            cudnn_available: tch::Cuda::cudnn_is_available(),
            mkldnn_available: tch::utils::has_mkldnn(),
        }
    }
}

/// The libtorch version this binary runs against: read next to the `libtorch_cpu.so` actually mapped
/// into this process (`torch/version.py` of a pip install, `build-version` of a libtorch zip), else the
/// version linked at build time.
pub fn libtorch_version() -> String {
    loaded_libtorch_dir()
        .and_then(|lib| read_torch_version(&lib.join("..")))
        .or_else(|| option_env!("SKIPBLOCK_BUILD_LIBTORCH_VERSION").map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The folder of the `libtorch_cpu` shared library loaded in this process (Linux: `/proc/self/maps`).
pub fn loaded_libtorch_dir() -> Option<std::path::PathBuf> {
    // Touch libtorch so that it is certainly loaded.
    let _ = tch::get_num_threads();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains("libtorch_cpu."))
        .and_then(|path| std::path::Path::new(path).parent().map(|p| p.to_path_buf()))
}

/// Applies `--threads` (0 = leave libtorch's default: one per core) and `--seed`.
pub fn configure_runtime(threads: usize, seed: Option<u64>) {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
        tch::set_num_interop_threads(threads as i32);
    }
    if let Some(seed) = seed {
        tch::manual_seed(seed as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_auto() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device(" CPU ").unwrap(), Device::Cpu);
        let auto = parse_device("auto").unwrap();
        assert_eq!(auto, Device::cuda_if_available());
        assert_eq!(device_name(Device::Cpu), "cpu");
        assert_eq!(device_name(Device::Cuda(1)), "cuda:1");
    }

    #[test]
    fn rejects_bad_specs() {
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("'tpu'"), "{err}");
        assert!(parse_device("cuda:x").is_err());
        if !tch::Cuda::is_available() {
            let err = parse_device("cuda").unwrap_err().to_string();
            assert!(err.contains("0 CUDA device"), "{err}");
        }
    }

    #[test]
    fn reports_libtorch_2_11() {
        let info = RuntimeInfo::collect();
        assert!(info.libtorch_version.starts_with("2.11"), "{}", info.libtorch_version);
        assert!(info.cpu_threads >= 1);
    }
}

/// The torch version recorded below a torch folder: `torch/version.py` (a pip install) or
/// `build-version` (a libtorch zip). Included by the build script and by `device.rs`.
fn read_torch_version(torch_dir: &std::path::Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(torch_dir.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__") {
                let value = rest.split_once('=').map(|(_, v)| v).unwrap_or(rest);
                return Some(value.trim().trim_matches(['\'', '"']).to_string());
            }
        }
    }
    std::fs::read_to_string(torch_dir.join("build-version")).ok().map(|s| s.trim().to_string())
}

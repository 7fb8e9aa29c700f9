//! Named-tensor files: `.safetensors` (ours, with string metadata) and PyTorch `torch.save` state dicts
//! (`.pth`, `.pt`, `.bin`), and assigning named tensors to a `VarStore` with every missing, unexpected or
//! mis-shaped name reported.

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Kind, Tensor};

/// A tensor's bytes, ready for the safetensors writer.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn kind_to_dtype(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        other => bail!("tensor kind {other:?} cannot be stored in safetensors"),
    })
}

fn dtype_to_kind(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        other => bail!("safetensors dtype {other:?} is not supported"),
    })
}

fn to_bytes(tensor: &Tensor) -> Result<Bytes> {
    let tensor = tensor.detach().to_device(tch::Device::Cpu).contiguous();
    let dtype = kind_to_dtype(tensor.kind())?;
    let shape: Vec<usize> = tensor.size().iter().map(|&d| d as usize).collect();
    let numel = tensor.numel();
    let mut data = vec![0u8; numel * tensor.kind().elt_size_in_bytes()];
    tensor.f_copy_data_u8(&mut data, numel)?;
    Ok(Bytes { dtype, shape, data })
}

/// Writes a file atomically: the bytes go to a temporary file in the same folder, which is flushed to
/// disk and then renamed over `path`. A crash leaves either the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder '{}'", dir.display()))?;
    let name = path.file_name().ok_or_else(|| anyhow!("'{}' is not a file path", path.display()))?;
    let tmp: PathBuf = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write '{}'", path.display()));
    }
    Ok(())
}

/// Saves named tensors (moved to the CPU) and string metadata as one `.safetensors` file, atomically.
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<()> {
    let mut bytes = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        bytes.push((name.clone(), to_bytes(tensor).with_context(|| format!("tensor '{name}'"))?));
    }
    let metadata: HashMap<String, String> = metadata.clone().into_iter().collect();
    let data = safetensors::serialize(
        bytes.iter().map(|(n, b)| (n.as_str(), b)),
        &if metadata.is_empty() { None } else { Some(metadata) },
    )
    .with_context(|| format!("cannot serialise '{}'", path.display()))?;
    write_atomic(path, &data)
}

/// Tensors with their names, in file order.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Reads a `.safetensors` file: its tensors (CPU) and its metadata.
pub fn read_safetensors(path: &Path) -> Result<(NamedTensors, BTreeMap<String, String>)> {
    let data = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&data)
        .map_err(|e| anyhow!("'{}' is not a valid safetensors file: {e}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&data)
        .map_err(|e| anyhow!("'{}' is not a valid safetensors file: {e}", path.display()))?;
    let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        let kind = dtype_to_kind(view.dtype()).with_context(|| format!("'{}': {name}", path.display()))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.push((name, Tensor::f_from_data_size(view.data(), &shape, kind)?));
    }
    Ok((tensors, metadata))
}

/// True for the extensions `torch.save` files usually carry.
pub fn is_pytorch_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
        Some("pth" | "pt" | "bin" | "ckpt" | "tar")
    )
}

/// Reads named tensors from either format: `.safetensors`, or a PyTorch `torch.save(state_dict)` zip.
pub fn read_named_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.exists() {
        bail!("weights file '{}' does not exist", path.display());
    }
    if is_pytorch_file(path) {
        crate::pytorch::read_state_dict(path)
            .map_err(|e| anyhow!("cannot read PyTorch file '{}': {e:#}", path.display()))
    } else {
        Ok(read_safetensors(path)?.0)
    }
}

/// How [`assign`] treats names.
#[derive(Debug, Default, Clone)]
pub struct AssignReport {
    pub loaded: usize,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub mismatched: Vec<String>,
}

impl AssignReport {
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    /// One line naming every problem, e.g. for an error.
    pub fn problems(&self) -> String {
        let mut parts = Vec::new();
        let list = |v: &Vec<String>| {
            let shown: Vec<_> = v.iter().take(12).cloned().collect();
            let more = if v.len() > 12 { format!(" (+{} more)", v.len() - 12) } else { String::new() };
            format!("{}{more}", shown.join(", "))
        };
        if !self.missing.is_empty() {
            parts.push(format!("{} missing: {}", self.missing.len(), list(&self.missing)));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("{} unexpected: {}", self.unexpected.len(), list(&self.unexpected)));
        }
        if !self.mismatched.is_empty() {
            parts.push(format!("{} mis-shaped: {}", self.mismatched.len(), list(&self.mismatched)));
        }
        parts.join("; ")
    }
}

/// Names found in PyTorch state dicts that carry no weight of ours (BN's step counter).
pub fn is_ignorable_key(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// Copies named tensors into the variables of `vs` with the same names. With `strict`, any missing,
/// unexpected or mis-shaped name is an error listing them all, and nothing is copied; otherwise the
/// matching ones are copied and the report says what was skipped (used for fine-tuning with a new head).
pub fn assign(vs: &VarStore, named: Vec<(String, Tensor)>, strict: bool) -> Result<AssignReport> {
    let mut variables = vs.variables();
    let mut report = AssignReport::default();
    let mut pairs = Vec::new();
    for (name, src) in named {
        if is_ignorable_key(&name) {
            continue;
        }
        match variables.remove(&name) {
            None => report.unexpected.push(name),
            Some(dst) => {
                if dst.size() != src.size() {
                    report.mismatched.push(format!("{name} (file {:?}, model {:?})", src.size(), dst.size()));
                } else {
                    pairs.push((dst, src));
                }
            }
        }
    }
    report.missing = variables.into_keys().collect();
    report.missing.sort();
    report.unexpected.sort();
    report.mismatched.sort();
    if strict && !report.is_exact() {
        bail!("{}", report.problems());
    }
    tch::no_grad(|| -> Result<()> {
        for (mut dst, src) in pairs {
            dst.f_copy_(&src.to_kind(dst.kind()).to_device(dst.device()))?;
        }
        Ok(())
    })?;
    report.loaded = vs.variables().len() - report.missing.len() - report.mismatched.len();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;

    #[test]
    fn safetensors_round_trip_with_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.safetensors");
        let a = Tensor::randn([3, 4], (Kind::Float, tch::Device::Cpu));
        let b = Tensor::from_slice(&[7i64]);
        let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
        write_safetensors(&p, &[("a".into(), a.shallow_clone()), ("b".into(), b.shallow_clone())], &meta).unwrap();
        let (t, m) = read_safetensors(&p).unwrap();
        assert_eq!(m, meta);
        let get = |n: &str| t.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
        assert!(get("a").allclose(&a, 0.0, 0.0, false));
        assert_eq!(get("b").int64_value(&[0]), 7);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_safetensors_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.safetensors");
        std::fs::write(&p, b"not a tensor file").unwrap();
        let err = read_named_tensors(&p).unwrap_err().to_string();
        assert!(err.contains("bad.safetensors"), "{err}");
        let err = read_named_tensors(&dir.path().join("none.pth")).unwrap_err().to_string();
        assert!(err.contains("none.pth") && err.contains("does not exist"), "{err}");
    }

    #[test]
    fn assign_reports_every_problem_by_name() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _l = nn::linear(vs.root() / "fc", 4, 2, Default::default());
        let named = vec![
            ("fc.weight".to_string(), Tensor::ones([2, 3], (Kind::Float, tch::Device::Cpu))),
            ("extra".to_string(), Tensor::ones([1], (Kind::Float, tch::Device::Cpu))),
            ("bn.num_batches_tracked".to_string(), Tensor::from_slice(&[1i64])),
        ];
        let err = assign(&vs, named, true).unwrap_err().to_string();
        assert!(err.contains("fc.bias"), "missing named: {err}");
        assert!(err.contains("extra"), "unexpected named: {err}");
        assert!(err.contains("fc.weight (file [2, 3], model [2, 4])"), "mis-shape named: {err}");
        assert!(!err.contains("num_batches_tracked"));

        let named = vec![("fc.bias".to_string(), Tensor::from_slice(&[1.5f32, -2.0]))];
        let report = assign(&vs, named, false).unwrap();
        assert_eq!(report.loaded, 1);
        assert_eq!(report.missing, vec!["fc.weight".to_string()]);
        let bias = vs.variables()["fc.bias"].shallow_clone();
        assert_eq!(f64::try_from(bias.get(1)).unwrap(), -2.0);
    }
}

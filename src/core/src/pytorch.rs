//! Reading PyTorch `torch.save` files (`.pth`, `.pt`): a zip archive holding `data.pkl` and the raw
//! tensor storages `data/<key>`. The pickle is interpreted by a small, non-executing pickle machine that
//! knows the few constructors a state dict uses (`collections.OrderedDict`, `torch._utils.
//! _rebuild_tensor_v2`, `_rebuild_parameter`, the typed storages) and ignores everything else, such as
//! the `_metadata` attribute PyTorch attaches to every state dict (which libtorch's own reader rejects).
//!
//! Checkpoints that wrap the state dict (`{"state_dict": …}`, `{"model": …}`) and keys saved through
//! `nn.DataParallel` (`module.` prefix) are unwrapped.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use tch::{Kind, Tensor};

/// Pickle values. Scalar payloads are only read through `Debug` (in error messages).
#[derive(Debug, Clone)]
#[allow(dead_code)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    /// A storage reference: (dtype, key in `data/`).
    Storage(Kind, String),
    /// A rebuilt tensor: storage, offset, size, stride (in elements).
    Tensor {
        kind: Kind,
        key: String,
        offset: i64,
        size: Vec<i64>,
        stride: Vec<i64>,
    },
    /// Anything else that was constructed: kept opaque.
    Object,
    Mark,
}

fn storage_kind(name: &str) -> Result<Kind> {
    Ok(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        other => bail!("unsupported storage type torch.{other}"),
    })
}

fn ints(v: &Value) -> Result<Vec<i64>> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) => Ok(*n),
                other => Err(anyhow!("expected an int, found {other:?}")),
            })
            .collect(),
        other => bail!("expected a tuple of ints, found {other:?}"),
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| anyhow!("truncated pickle"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| anyhow!("truncated pickle"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| anyhow!("pickle stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let at =
            self.stack.iter().rposition(|v| matches!(v, Value::Mark)).ok_or_else(|| anyhow!("pickle mark missing"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }
    fn top(&mut self) -> Result<&mut Value> {
        self.stack.last_mut().ok_or_else(|| anyhow!("pickle stack underflow"))
    }

    fn reduce(callable: Value, args: Value) -> Result<Value> {
        let args = match args {
            Value::Tuple(a) => a,
            _ => return Ok(Value::Object),
        };
        Ok(match callable {
            Value::Global(m, n) if m == "collections" && n == "OrderedDict" => Value::Dict(Vec::new()),
            Value::Global(m, n) if m == "torch._utils" && (n == "_rebuild_tensor_v2" || n == "_rebuild_tensor") => {
                let (kind, key) = match args.first() {
                    Some(Value::Storage(k, key)) => (*k, key.clone()),
                    other => bail!("tensor without storage: {other:?}"),
                };
                let offset = match args.get(1) {
                    Some(Value::Int(o)) => *o,
                    _ => 0,
                };
                let size = ints(args.get(2).ok_or_else(|| anyhow!("tensor without size"))?)?;
                let stride = ints(args.get(3).ok_or_else(|| anyhow!("tensor without stride"))?)?;
                Value::Tensor { kind, key, offset, size, stride }
            }
            Value::Global(m, n) if m == "torch._utils" && n == "_rebuild_parameter" => {
                args.into_iter().next().unwrap_or(Value::None)
            }
            _ => Value::Object,
        })
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v))
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.stack.push(Value::Int(v))
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into()?) as i64;
                    self.stack.push(Value::Int(v))
                }
                0x8a => {
                    // LONG1
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, b) in bytes.iter().enumerate().take(8) {
                        v |= (*b as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v))
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into()?);
                    self.stack.push(Value::Float(v))
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(Value::Str(s))
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(Value::Str(s))
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name))
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                        _ => bail!("bad STACK_GLOBAL"),
                    }
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    let v = self.memo.get(&i).cloned().ok_or_else(|| anyhow!("pickle memo {i} missing"))?;
                    self.stack.push(v)
                }
                b'j' => {
                    let i = self.u32()?;
                    let v = self.memo.get(&i).cloned().ok_or_else(|| anyhow!("pickle memo {i} missing"))?;
                    self.stack.push(v)
                }
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items))
                }
                0x85 => {
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a]))
                }
                0x86 => {
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a, b]))
                }
                0x87 => {
                    let c = self.pop()?;
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a, b, c]))
                }
                b'a' => {
                    let v = self.pop()?;
                    if let Value::List(l) = self.top()? {
                        l.push(v)
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    if let Value::List(l) = self.top()? {
                        l.extend(items)
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    if let Value::Dict(d) = self.top()? {
                        d.push((k, v))
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if let Value::Dict(d) = self.top()? {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.stack.push(Self::reduce(callable, args)?)
                }
                0x81 => {
                    // NEWOBJ
                    self.pop()?;
                    self.pop()?;
                    self.stack.push(Value::Object)
                }
                b'b' => {
                    // BUILD: object state (e.g. a state dict's `_metadata`): ignored.
                    self.pop()?;
                }
                b'Q' => {
                    // BINPERSID: ('storage', torch.XStorage, key, location, numel)
                    let pid = self.pop()?;
                    let v = match pid {
                        Value::Tuple(t) if t.len() >= 3 => match (&t[1], &t[2]) {
                            (Value::Global(_, name), Value::Str(key)) => {
                                Value::Storage(storage_kind(name)?, key.clone())
                            }
                            _ => bail!("unsupported persistent id {t:?}"),
                        },
                        other => bail!("unsupported persistent id {other:?}"),
                    };
                    self.stack.push(v)
                }
                b'0' => {
                    self.pop()?;
                }
                other => bail!("unsupported pickle opcode 0x{other:02x} at byte {}", self.pos - 1),
            }
        }
    }
}

/// Finds the dict of tensors in a loaded object: the object itself, or a `state_dict`/`model`/`ema`
/// entry of a wrapping checkpoint.
fn state_dict(value: Value) -> Result<Vec<(String, Value)>> {
    let Value::Dict(entries) = value else { bail!("the file does not hold a dict") };
    let tensors: Vec<(String, Value)> = entries
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Value::Str(k), t @ Value::Tensor { .. }) => Some((k.clone(), t.clone())),
            _ => None,
        })
        .collect();
    if !tensors.is_empty() {
        return Ok(tensors);
    }
    for wanted in ["state_dict", "model", "model_state_dict", "model_ema", "ema", "net"] {
        for (k, v) in &entries {
            if matches!(k, Value::Str(s) if s == wanted) {
                if let Ok(found) = state_dict(v.clone()) {
                    return Ok(found);
                }
            }
        }
    }
    bail!("no tensors found (expected a state dict, or a dict with a 'state_dict' or 'model' entry)")
}

/// Reads the named tensors of a `torch.save` zip file.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open '{}'", path.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| anyhow!("not a torch.save zip archive ({e}); legacy (pre-1.6) files are not supported"))?;
    let pkl_name = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("data.pkl"))
        .ok_or_else(|| anyhow!("no data.pkl in the archive"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut pkl = Vec::new();
    zip.by_name(&pkl_name)?.read_to_end(&mut pkl)?;
    let root = Machine { data: &pkl, pos: 0, stack: Vec::new(), memo: HashMap::new() }.run()?;
    let entries = state_dict(root)?;
    let strip_module = entries.iter().all(|(k, _)| k.starts_with("module."));
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let Value::Tensor { kind, key, offset, size, stride } = value else { continue };
        if !storages.contains_key(&key) {
            let mut bytes = Vec::new();
            zip.by_name(&format!("{prefix}data/{key}"))
                .with_context(|| format!("storage data/{key} of '{name}' missing"))?
                .read_to_end(&mut bytes)?;
            storages.insert(key.clone(), bytes);
        }
        let bytes = &storages[&key];
        let elt = kind.elt_size_in_bytes();
        let numel = (bytes.len() / elt) as i64;
        let storage = Tensor::f_from_data_size(bytes, &[numel], kind)?;
        let tensor = storage.f_as_strided(&size, &stride, Some(offset))?.contiguous();
        let name = if strip_module { name.trim_start_matches("module.").to_string() } else { name };
        out.push((name, tensor));
    }
    Ok(out)
}

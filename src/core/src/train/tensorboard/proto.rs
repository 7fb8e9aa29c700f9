//! The protobuf messages of TensorBoard's event files, encoded by hand (only the fields written here)
//! and decoded back (for checks and tests; unknown fields are skipped):
//!
//! * `tensorflow.Event`: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
//!   summary = 5 (`Summary`), session_log = 7 (`SessionLog`);
//! * `Summary`: repeated value = 1 (`Summary.Value`);
//! * `Summary.Value`: tag = 1 (string), simple_value = 2 (float), image = 4 (`Summary.Image`);
//! * `Summary.Image`: height = 1, width = 2, colorspace = 3 (int32; 3 = RGB), encoded_image_string = 4
//!   (PNG bytes);
//! * `SessionLog`: status = 1 (enum; START = 1).

use anyhow::{bail, Context, Result};

/// A PNG image and its size: what an image summary holds.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbPng {
    /// The encoded PNG file.
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for RgbPng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbPng({}x{}, {} bytes)", self.width, self.height, self.png.len())
    }
}

/// One event: when, at which step, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    pub step: i64,
    pub what: What,
}

/// The content of an [`Event`].
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// The first record of every file (`brain.Event:2`).
    FileVersion(String),
    /// Tagged values.
    Summary(Vec<(String, Value)>),
    /// A (re)start of training at `step`: TensorBoard drops what was logged earlier at this step or
    /// later (steps an interrupted run logged after its last checkpoint).
    SessionStart,
}

/// One value of a summary.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f32),
    Image(RgbPng),
}

const RGB_COLORSPACE: u64 = 3;
const SESSION_START: u64 = 1;

/// Protobuf wire format, written.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field << 3 | u32::from(wire_type)));
    }

    fn uint(&mut self, field: u32, v: u64) {
        self.key(field, 0);
        self.varint(v);
    }

    fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn float(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

/// The serialised `tensorflow.Event`.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut e = Writer::default();
    e.double(1, event.wall_time);
    e.uint(2, event.step as u64);
    match &event.what {
        What::FileVersion(v) => e.bytes(3, v.as_bytes()),
        What::Summary(values) => {
            let mut summary = Writer::default();
            for (tag, value) in values {
                summary.bytes(1, &encode_value(tag, value));
            }
            e.bytes(5, &summary.0);
        }
        What::SessionStart => {
            let mut log = Writer::default();
            log.uint(1, SESSION_START);
            e.bytes(7, &log.0);
        }
    }
    e.0
}

fn encode_value(tag: &str, value: &Value) -> Vec<u8> {
    let mut v = Writer::default();
    v.bytes(1, tag.as_bytes());
    match value {
        Value::Scalar(x) => v.float(2, *x),
        Value::Image(img) => {
            let mut i = Writer::default();
            i.uint(1, u64::from(img.height));
            i.uint(2, u64::from(img.width));
            i.uint(3, RGB_COLORSPACE);
            i.bytes(4, &img.png);
            v.bytes(4, &i.0);
        }
    }
    v.0
}

/// A field's value as the wire format carries it.
enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

/// The (field number, value) pairs of a message.
fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Field<'_>)>> {
    fn varint(buf: &mut &[u8]) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first().context("truncated varint")?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        bail!("varint longer than 10 bytes")
    }
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
        if buf.len() < n {
            bail!("truncated field ({n} bytes announced, {} left)", buf.len());
        }
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        Ok(head)
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let field = (key >> 3) as u32;
        let value = match key & 7 {
            0 => Field::Varint(varint(&mut buf)?),
            1 => Field::Fixed64(take(&mut buf, 8)?.try_into()?),
            2 => {
                let n = varint(&mut buf)? as usize;
                Field::Bytes(take(&mut buf, n)?)
            }
            5 => Field::Fixed32(take(&mut buf, 4)?.try_into()?),
            t => bail!("unsupported wire type {t} (field {field})"),
        };
        out.push((field, value));
    }
    Ok(out)
}

/// Parses a serialised `tensorflow.Event` (the parts [`encode`] writes).
pub fn decode(bytes: &[u8]) -> Result<Event> {
    let (mut wall_time, mut step, mut what) = (0.0, 0, None);
    for (field, value) in fields(bytes)? {
        match (field, value) {
            (1, Field::Fixed64(b)) => wall_time = f64::from_le_bytes(b),
            (2, Field::Varint(v)) => step = v as i64,
            (3, Field::Bytes(b)) => what = Some(What::FileVersion(String::from_utf8(b.to_vec())?)),
            (5, Field::Bytes(b)) => {
                let values = fields(b)?
                    .into_iter()
                    .filter_map(|(f, v)| match (f, v) {
                        (1, Field::Bytes(b)) => Some(decode_value(b)),
                        _ => None,
                    })
                    .collect::<Result<Vec<_>>>()?;
                what = Some(What::Summary(values));
            }
            (7, Field::Bytes(b)) => {
                let start = fields(b)?.iter().any(|(f, v)| *f == 1 && matches!(v, Field::Varint(SESSION_START)));
                if start {
                    what = Some(What::SessionStart);
                }
            }
            _ => {}
        }
    }
    Ok(Event { wall_time, step, what: what.context("an event without file_version, summary or session start")? })
}

fn decode_value(bytes: &[u8]) -> Result<(String, Value)> {
    let (mut tag, mut value) = (String::new(), None);
    for (field, v) in fields(bytes)? {
        match (field, v) {
            (1, Field::Bytes(b)) => tag = String::from_utf8(b.to_vec())?,
            (2, Field::Fixed32(b)) => value = Some(Value::Scalar(f32::from_le_bytes(b))),
            (4, Field::Bytes(b)) => {
                let mut img = RgbPng { png: Vec::new(), width: 0, height: 0 };
                for (f, v) in fields(b)? {
                    match (f, v) {
                        (1, Field::Varint(h)) => img.height = h as u32,
                        (2, Field::Varint(w)) => img.width = w as u32,
                        (4, Field::Bytes(png)) => img.png = png.to_vec(),
                        _ => {}
                    }
                }
                value = Some(Value::Image(img));
            }
            _ => {}
        }
    }
    Ok((tag.clone(), value.with_context(|| format!("summary value '{tag}' holds neither a scalar nor an image"))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_encode_as_protobuf_and_decode_back() {
        let version = Event { wall_time: 1.5, step: 0, what: What::FileVersion("brain.Event:2".into()) };
        let bytes = encode(&version);
        // wall_time (field 1, fixed64), step (field 2, varint 0), file_version (field 3, 13 bytes).
        assert_eq!(&bytes[..9], &[0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
        assert_eq!(&bytes[9..13], &[0x10, 0x00, 0x1a, 13]);
        assert_eq!(&bytes[13..], b"brain.Event:2");
        assert_eq!(decode(&bytes).unwrap(), version);

        let scalar = Event { wall_time: 2.0, step: 300, what: What::Summary(vec![("lr".into(), Value::Scalar(0.5))]) };
        let bytes = encode(&scalar);
        // step 300 = varint ac 02; summary (field 5) > value (field 1) > tag "lr", simple_value (field 2, fixed32).
        assert_eq!(&bytes[9..12], &[0x10, 0xac, 0x02]);
        assert_eq!(&bytes[12..], &[0x2a, 11, 0x0a, 9, 0x0a, 2, b'l', b'r', 0x15, 0, 0, 0, 0x3f]);
        assert_eq!(decode(&bytes).unwrap(), scalar);

        let img = RgbPng { png: vec![0x89, b'P', b'N', b'G'], width: 640, height: 480 };
        let image = Event {
            wall_time: 3.0,
            step: 5,
            what: What::Summary(vec![("a".into(), Value::Scalar(-1.0)), ("val/pr".into(), Value::Image(img))]),
        };
        assert_eq!(decode(&encode(&image)).unwrap(), image);
        let start = Event { wall_time: 4.0, step: 21, what: What::SessionStart };
        assert_eq!(&encode(&start)[11..], &[0x3a, 2, 0x08, 1], "session_log is field 7");
        assert_eq!(decode(&encode(&start)).unwrap(), start);
        assert!(decode(&encode(&start)[..12]).is_err(), "truncated");
    }
}

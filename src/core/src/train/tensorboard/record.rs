//! TFRecord framing, the container of TensorBoard's event files: each record is its length (u64
//! little-endian), the masked CRC-32C of those 8 bytes, the payload and the masked CRC-32C of the
//! payload (all CRCs little-endian u32).

use super::crc32c::masked_crc32c;
use anyhow::{bail, Result};
use std::io::{self, Write};

/// Appends one record holding `data`.
pub fn write_record(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc32c(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

/// The payloads of the records in `bytes`, both CRCs of each checked; a truncated record or a CRC
/// mismatch is an error naming its byte offset.
pub fn parse_records(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(header) = bytes.get(pos..pos + 12) else { bail!("truncated record header at byte {pos}") };
        let len_bytes = &header[..8];
        if u32_at(header, 8) != masked_crc32c(len_bytes) {
            bail!("length CRC mismatch in the record at byte {pos}");
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let start = pos + 12;
        let Some(end) = start.checked_add(len).filter(|&e| e + 4 <= bytes.len()) else {
            bail!("truncated record at byte {pos} ({len} bytes announced)");
        };
        let data = &bytes[start..end];
        if u32_at(bytes, end) != masked_crc32c(data) {
            bail!("data CRC mismatch in the record at byte {pos}");
        }
        records.push(data);
        pos = end + 4;
    }
    Ok(records)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_corruption_is_detected() {
        let mut out = Vec::new();
        for data in [&b"brain.Event:2"[..], b"", &[7u8; 300]] {
            write_record(&mut out, data).unwrap();
        }
        assert_eq!(out.len(), 3 * 16 + 13 + 300);
        assert_eq!(&out[..8], &13u64.to_le_bytes());
        let records = parse_records(&out).unwrap();
        assert_eq!(records, vec![&b"brain.Event:2"[..], b"", &[7u8; 300]]);

        let mut bad = out.clone();
        bad[14] ^= 1; // inside the first payload
        assert!(parse_records(&bad).unwrap_err().to_string().contains("data CRC mismatch in the record at byte 0"));
        let mut bad = out.clone();
        bad[29] ^= 1; // the second record's length
        assert!(parse_records(&bad).unwrap_err().to_string().contains("at byte 29"), "second record starts at 29");
        assert!(parse_records(&out[..out.len() - 1]).unwrap_err().to_string().contains("truncated"));
    }
}

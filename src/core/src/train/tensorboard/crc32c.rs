//! CRC-32C (Castagnoli), table-driven, and the masked form TFRecord files store
//! (`((crc >> 15) | (crc << 17)) + 0xa282ead8`).

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// CRC of every byte value, built at compile time.
const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8))
}

/// The masked CRC-32C TFRecord framing stores.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_test_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA, "RFC 3720 B.4: 32 zero bytes");
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43, "RFC 3720 B.4: 32 0xff bytes");
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn mask_is_the_rotation_plus_the_constant() {
        // ((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xa282ead8 (mod 2^32); TensorBoard's own
        // `masked_crc32c(b"123456789")` gives the same.
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }
}

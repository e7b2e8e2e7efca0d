//! Avro `decimal` <-> [`Decimal`]: the unscaled value as big-endian two's complement bytes.

use rust_decimal::Decimal;

/// Decodes the unscaled two's-complement bytes at `scale`. Fails when the value does not fit
/// rust_decimal (more than 96 bits of mantissa, or a scale above 28).
pub fn decimal_from_bytes(bytes: &[u8], scale: usize) -> Result<Decimal, String> {
    if bytes.is_empty() {
        return Ok(Decimal::new(0, scale.min(28) as u32));
    }
    // Strip redundant sign-extension bytes so a writer that pads (fixed, or long bytes) still fits.
    let negative = bytes[0] & 0x80 != 0;
    let pad = if negative { 0xff } else { 0x00 };
    let mut start = 0;
    while start + 1 < bytes.len() && bytes[start] == pad && (bytes[start + 1] & 0x80 != 0) == negative {
        start += 1;
    }
    let b = &bytes[start..];
    if b.len() > 16 {
        return Err(format!("decimal of {} bytes does not fit 128 bits", bytes.len()));
    }
    let mut buf = [pad; 16];
    buf[16 - b.len()..].copy_from_slice(b);
    let unscaled = i128::from_be_bytes(buf);
    Decimal::try_from_i128_with_scale(unscaled, scale as u32).map_err(|e| format!("decimal out of range: {e}"))
}

/// Encodes `d`, which must already have the schema's scale, as minimal two's-complement bytes (or
/// sign-extended to `fixed` bytes). Fails when its unscaled value has more than `precision` digits.
pub fn decimal_to_bytes(d: Decimal, precision: usize, fixed: Option<usize>) -> Result<Vec<u8>, String> {
    let unscaled = d.mantissa();
    if precision < 39 && unscaled.unsigned_abs() >= 10u128.pow(precision as u32) {
        return Err(format!("{d} has more than {precision} digits"));
    }
    let full = unscaled.to_be_bytes();
    let negative = unscaled < 0;
    let pad = if negative { 0xff } else { 0x00 };
    let mut start = 0;
    while start + 1 < full.len() && full[start] == pad && (full[start + 1] & 0x80 != 0) == negative {
        start += 1;
    }
    let minimal = &full[start..];
    match fixed {
        None => Ok(minimal.to_vec()),
        Some(size) if size >= minimal.len() => {
            let mut out = vec![pad; size];
            out[size - minimal.len()..].copy_from_slice(minimal);
            Ok(out)
        }
        Some(size) => Err(format!("{d} does not fit fixed({size})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn known_encodings() {
        // Values checked against the Java implementation's BigInteger.toByteArray().
        let cases =
            [("0.0000", vec![0x00]), ("0.0001", vec![0x01]), ("-0.0001", vec![0xff]), ("0.0128", vec![0x00, 0x80])];
        for (s, bytes) in cases {
            let d = Decimal::from_str(s).unwrap();
            assert_eq!(decimal_to_bytes(d, 18, None).unwrap(), bytes, "{s}");
            assert_eq!(decimal_from_bytes(&bytes, 4).unwrap(), d, "{s}");
        }
    }

    #[test]
    fn precision_is_enforced() {
        let max = Decimal::from_str("99999999999999.9999").unwrap();
        assert!(decimal_to_bytes(max, 18, None).is_ok());
        let over = Decimal::from_str("100000000000000.0000").unwrap();
        assert!(decimal_to_bytes(over, 18, None).unwrap_err().contains("18 digits"));
    }

    #[test]
    fn padded_and_fixed() {
        let d = Decimal::from_str("-1.5000").unwrap();
        let fixed = decimal_to_bytes(d, 18, Some(8)).unwrap();
        assert_eq!(fixed.len(), 8);
        assert_eq!(decimal_from_bytes(&fixed, 4).unwrap(), d);
        assert!(decimal_from_bytes(&[0u8; 17], 4).unwrap().is_zero());
        assert!(decimal_from_bytes(&[0x7f; 17], 4).is_err());
    }
}

//! The Confluent wire format: magic byte 0, the schema id as 4 big-endian bytes, then the Avro
//! binary datum. Every Confluent client (Java, Python, Go, .NET) reads and writes exactly this.

use streams::serde::SerdeError;

use crate::reason;

/// The only magic byte Confluent has defined.
pub const MAGIC_BYTE: u8 = 0;
/// Bytes before the Avro body.
pub const HEADER_LEN: usize = 5;

/// Appends the 5-byte header for `schema_id` to `out`.
pub fn write_header(schema_id: u32, out: &mut Vec<u8>) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Header plus `body`.
pub fn frame(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    write_header(schema_id, &mut out);
    out.extend_from_slice(body);
    out
}

/// Splits a payload into its schema id and Avro body. `empty_payload` for no bytes,
/// `bad_magic_byte` for a first byte other than 0 or a payload shorter than the header.
pub fn split(payload: &[u8]) -> Result<(u32, &[u8]), SerdeError> {
    match payload {
        [] => Err(SerdeError::new(reason::EMPTY_PAYLOAD, "empty value")),
        [m, ..] if *m != MAGIC_BYTE => {
            Err(SerdeError::new(reason::BAD_MAGIC_BYTE, format!("magic byte {m:#04x}, expected 0x00")))
        }
        [_, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        short => Err(SerdeError::new(
            reason::BAD_MAGIC_BYTE,
            format!("{} bytes is shorter than the {HEADER_LEN}-byte header", short.len()),
        )),
    }
}

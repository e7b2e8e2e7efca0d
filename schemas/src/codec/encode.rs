//! Writes a [`Datum`] with the writer [`Shape`] it was built for (our own schema: we always write
//! with the current contract).

use rust_decimal::Decimal;
use streams::serde::SerdeError;

use super::datum::{rescale_exact, Datum};
use super::decimal::decimal_to_bytes;
use super::shape::Shape;
use crate::reason;

fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

fn mismatch(shape: &Shape, d: &Datum) -> SerdeError {
    SerdeError::new(reason::AVRO_ENCODE, format!("cannot write {d:?} as {}", shape.kind()))
}

fn encode_decimal(d: Decimal, precision: usize, scale: usize, fixed: Option<usize>) -> Result<Vec<u8>, SerdeError> {
    let exact = rescale_exact(d, scale as u32).ok_or_else(|| {
        SerdeError::new(reason::DECIMAL_ROUNDING, format!("{d} has more than {scale} fractional digits"))
    })?;
    decimal_to_bytes(exact, precision, fixed).map_err(|m| SerdeError::new(reason::DECIMAL_OVERFLOW, m))
}

/// Appends the Avro binary encoding of `d` (as `shape`) to `out`. Decimals are brought to the
/// schema's scale exactly (1.5 is written as 1.5000) and rejected when that would round or when
/// they exceed the precision.
pub fn encode(shape: &Shape, d: &Datum, out: &mut Vec<u8>) -> Result<(), SerdeError> {
    match (shape, d) {
        (Shape::Null, Datum::Null) => {}
        (Shape::Boolean, Datum::Boolean(b)) => out.push(u8::from(*b)),
        (Shape::Int, Datum::Int(v)) => write_long(out, (*v).into()),
        (Shape::Long, Datum::Long(v)) => write_long(out, *v),
        (Shape::Float, Datum::Float(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Shape::Double, Datum::Double(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Shape::Bytes, Datum::Bytes(b)) => write_bytes(out, b),
        (Shape::String, Datum::String(s)) => write_bytes(out, s.as_bytes()),
        (Shape::Fixed { size, .. }, Datum::Fixed(b)) if b.len() == *size => out.extend_from_slice(b),
        (Shape::Decimal { precision, scale, fixed }, Datum::Decimal(v)) => {
            let bytes = encode_decimal(*v, *precision, *scale, *fixed)?;
            match fixed {
                Some(_) => out.extend_from_slice(&bytes),
                None => write_bytes(out, &bytes),
            }
        }
        (Shape::Enum { symbols, .. }, Datum::Enum(i)) if (*i as usize) < symbols.len() => write_long(out, (*i).into()),
        (Shape::Array(item), Datum::Array(items)) => {
            if !items.is_empty() {
                write_long(out, items.len() as i64);
                for it in items {
                    encode(item, it, out)?;
                }
            }
            write_long(out, 0);
        }
        (Shape::Map(value), Datum::Map(entries)) => {
            if !entries.is_empty() {
                write_long(out, entries.len() as i64);
                for (k, v) in entries {
                    write_bytes(out, k.as_bytes());
                    encode(value, v, out)?;
                }
            }
            write_long(out, 0);
        }
        (Shape::Union(branches), d) => {
            // Null goes to the null branch; anything else to the first branch that accepts it.
            let i = branches
                .iter()
                .position(|b| matches!((b, d), (Shape::Null, Datum::Null)) || accepts(b, d))
                .ok_or_else(|| mismatch(shape, d))?;
            write_long(out, i as i64);
            encode(&branches[i], d, out)?;
        }
        (Shape::Record { fields, name }, Datum::Record(values)) => {
            if fields.len() != values.len() {
                return Err(SerdeError::new(
                    reason::AVRO_ENCODE,
                    format!("{name}: schema has {} fields, value has {}", fields.len(), values.len()),
                ));
            }
            for (f, v) in fields.iter().zip(values) {
                encode(&f.shape, v, out)
                    .map_err(|e| SerdeError::new(e.reason, format!("{name}.{}: {}", f.name, e.message)))?;
            }
        }
        _ => return Err(mismatch(shape, d)),
    }
    Ok(())
}

fn accepts(shape: &Shape, d: &Datum) -> bool {
    matches!(
        (shape, d),
        (Shape::Boolean, Datum::Boolean(_))
            | (Shape::Int, Datum::Int(_))
            | (Shape::Long, Datum::Long(_))
            | (Shape::Float, Datum::Float(_))
            | (Shape::Double, Datum::Double(_))
            | (Shape::Bytes, Datum::Bytes(_))
            | (Shape::String, Datum::String(_))
            | (Shape::Fixed { .. }, Datum::Fixed(_))
            | (Shape::Decimal { .. }, Datum::Decimal(_))
            | (Shape::Enum { .. }, Datum::Enum(_))
            | (Shape::Array(_), Datum::Array(_))
            | (Shape::Map(_), Datum::Map(_))
            | (Shape::Record { .. }, Datum::Record(_))
    )
}

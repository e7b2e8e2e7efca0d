//! Runs a [`Plan`] over Avro binary. Lengths and counts are checked against the bytes left before
//! anything is allocated, so garbage input fails fast instead of allocating gigabytes.

use super::datum::{rescale_exact, Datum};
use super::decimal::decimal_from_bytes;
use super::plan::{FieldPlan, Plan};
use super::shape::Shape;

type R<T> = Result<T, String>;

/// Decodes one datum that must span all of `bytes` (trailing bytes mean the writer schema was not
/// the one the bytes were written with).
pub fn decode(plan: &Plan, bytes: &[u8]) -> R<Datum> {
    let mut input = bytes;
    let d = read(plan, &mut input)?;
    if !input.is_empty() {
        return Err(format!("{} trailing bytes after the datum", input.len()));
    }
    Ok(d)
}

fn read_varint(input: &mut &[u8]) -> R<u64> {
    let mut value = 0u64;
    for (i, &b) in input.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(value);
        }
    }
    Err(if input.len() < 10 { "truncated varint".into() } else { "varint longer than 10 bytes".into() })
}

fn read_long(input: &mut &[u8]) -> R<i64> {
    let z = read_varint(input)?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

fn read_int(input: &mut &[u8]) -> R<i32> {
    let v = read_long(input)?;
    i32::try_from(v).map_err(|_| format!("int out of range: {v}"))
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> R<&'a [u8]> {
    if input.len() < n {
        return Err(format!("needed {n} bytes, {} left", input.len()));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn read_len(input: &mut &[u8]) -> R<usize> {
    let n = read_long(input)?;
    let n = usize::try_from(n).map_err(|_| format!("negative length {n}"))?;
    if n > input.len() {
        return Err(format!("length {n} exceeds the {} bytes left", input.len()));
    }
    Ok(n)
}

fn read_bytes<'a>(input: &mut &'a [u8]) -> R<&'a [u8]> {
    let n = read_len(input)?;
    take(input, n)
}

fn read_str<'a>(input: &mut &'a [u8]) -> R<&'a str> {
    std::str::from_utf8(read_bytes(input)?).map_err(|e| format!("invalid UTF-8: {e}"))
}

fn read_f32(input: &mut &[u8]) -> R<f32> {
    Ok(f32::from_le_bytes(take(input, 4)?.try_into().expect("4 bytes")))
}

fn read_f64(input: &mut &[u8]) -> R<f64> {
    Ok(f64::from_le_bytes(take(input, 8)?.try_into().expect("8 bytes")))
}

/// Reads one block header of an array or map: the item count, or 0 at the end. A negative count is
/// followed by the block's size in bytes (which we do not need).
fn read_block_count(input: &mut &[u8], zero_width_items: bool) -> R<usize> {
    let count = read_long(input)?;
    let count = if count < 0 {
        read_long(input)?;
        count.checked_neg().ok_or("invalid block count")?
    } else {
        count
    };
    let count = count as u64;
    // Every non-null item takes at least one byte; null items take none, so cap those outright.
    let limit = if zero_width_items { 1_000_000 } else { input.len() as u64 };
    if count > limit {
        return Err(format!("block of {count} items exceeds the input"));
    }
    Ok(count as usize)
}

fn read(plan: &Plan, input: &mut &[u8]) -> R<Datum> {
    let mut d = Datum::Null;
    read_into(plan, input, &mut d)?;
    Ok(d)
}

/// Decodes one datum into `slot`. Containers push a placeholder and decode into it, so a
/// decoded value is written once where it lives instead of being returned through every level
/// (moving `Result<Datum, _>` values between frames cost a third of the decoding time).
fn read_into(plan: &Plan, input: &mut &[u8], slot: &mut Datum) -> R<()> {
    *slot = match plan {
        Plan::Null => Datum::Null,
        Plan::Boolean => match take(input, 1)?[0] {
            0 => Datum::Boolean(false),
            1 => Datum::Boolean(true),
            b => return Err(format!("invalid boolean byte {b}")),
        },
        Plan::Int => Datum::Int(read_int(input)?),
        Plan::Long => Datum::Long(read_long(input)?),
        Plan::Float => Datum::Float(read_f32(input)?),
        Plan::Double => Datum::Double(read_f64(input)?),
        Plan::IntAsLong => Datum::Long(read_int(input)?.into()),
        Plan::IntAsFloat => Datum::Float(read_int(input)? as f32),
        Plan::IntAsDouble => Datum::Double(read_int(input)?.into()),
        Plan::LongAsFloat => Datum::Float(read_long(input)? as f32),
        Plan::LongAsDouble => Datum::Double(read_long(input)? as f64),
        Plan::FloatAsDouble => Datum::Double(read_f32(input)?.into()),
        Plan::Bytes | Plan::StringAsBytes => Datum::Bytes(read_bytes(input)?.to_vec()),
        Plan::String | Plan::BytesAsString => Datum::String(read_str(input)?.to_owned()),
        Plan::Decimal { writer_scale, reader_scale, fixed } => {
            let raw = match fixed {
                Some(n) => take(input, *n)?,
                None => read_bytes(input)?,
            };
            let d = decimal_from_bytes(raw, *writer_scale)?;
            let d = rescale_exact(d, *reader_scale as u32)
                .ok_or_else(|| format!("decimal {d} does not fit scale {reader_scale} without rounding"))?;
            Datum::Decimal(d)
        }
        Plan::Fixed(n) => Datum::Fixed(take(input, *n)?.to_vec()),
        Plan::Enum(map) => {
            let i = read_int(input)?;
            let to = usize::try_from(i).ok().and_then(|i| map.get(i)).ok_or_else(|| format!("enum index {i}"))?;
            Datum::Enum(*to.as_ref().map_err(Clone::clone)?)
        }
        Plan::Array(item) => {
            let zero = matches!(**item, Plan::Null);
            let mut out = Vec::new();
            loop {
                let n = read_block_count(input, zero)?;
                if n == 0 {
                    break;
                }
                out.reserve(n);
                for _ in 0..n {
                    out.push(Datum::Null);
                    read_into(item, input, out.last_mut().expect("just pushed"))?;
                }
            }
            Datum::Array(out)
        }
        Plan::Map(value) => {
            let mut out = Vec::new();
            loop {
                let n = read_block_count(input, false)?;
                if n == 0 {
                    break;
                }
                out.reserve(n);
                for _ in 0..n {
                    let k = read_str(input)?.to_owned();
                    out.push((k, Datum::Null));
                    read_into(value, input, &mut out.last_mut().expect("just pushed").1)?;
                }
            }
            Datum::Map(out)
        }
        Plan::Record { fields, in_order: true, .. } => {
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                if let FieldPlan::Read { plan, .. } = f {
                    out.push(Datum::Null);
                    read_into(plan, input, out.last_mut().expect("just pushed"))?;
                }
            }
            Datum::Record(out)
        }
        Plan::Record { fields, defaults, in_order: false } => {
            let mut out = defaults.clone();
            for f in fields {
                match f {
                    FieldPlan::Read { to, plan } => read_into(plan, input, &mut out[*to])?,
                    FieldPlan::Skip(shape) => skip(shape, input)?,
                }
            }
            Datum::Record(out)
        }
        Plan::Union(branches) => {
            let i = read_long(input)?;
            let branch = usize::try_from(i)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| format!("union branch {i} out of range"))?;
            match branch {
                Ok(plan) => return read_into(plan, input, slot),
                Err(e) => return Err(format!("union branch {i} does not resolve: {e}")),
            }
        }
    };
    Ok(())
}

/// Skips one datum of the writer's `shape` without building it.
fn skip(shape: &Shape, input: &mut &[u8]) -> R<()> {
    match shape {
        Shape::Null => {}
        Shape::Boolean => {
            take(input, 1)?;
        }
        Shape::Int | Shape::Long | Shape::Enum { .. } => {
            read_long(input)?;
        }
        Shape::Float => {
            take(input, 4)?;
        }
        Shape::Double => {
            take(input, 8)?;
        }
        Shape::Bytes | Shape::String | Shape::Decimal { fixed: None, .. } => {
            read_bytes(input)?;
        }
        Shape::Decimal { fixed: Some(n), .. } | Shape::Fixed { size: n, .. } => {
            take(input, *n)?;
        }
        Shape::Array(item) => loop {
            let n = read_block_count(input, matches!(**item, Shape::Null))?;
            if n == 0 {
                break;
            }
            for _ in 0..n {
                skip(item, input)?;
            }
        },
        Shape::Map(value) => loop {
            let n = read_block_count(input, false)?;
            if n == 0 {
                break;
            }
            for _ in 0..n {
                read_bytes(input)?;
                skip(value, input)?;
            }
        },
        Shape::Union(branches) => {
            let i = read_long(input)?;
            let b = usize::try_from(i).ok().and_then(|i| branches.get(i)).ok_or("union branch out of range")?;
            skip(b, input)?;
        }
        Shape::Record { fields, .. } => {
            for f in fields {
                skip(&f.shape, input)?;
            }
        }
    }
    Ok(())
}

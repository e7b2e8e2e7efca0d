//! [`Datum`]: a decoded Avro value shaped by the reader schema.

use rust_decimal::Decimal;

/// An Avro value. Unlike apache-avro's `Value`, records are positional (field `i` is the reader
/// schema's field `i`, no names allocated per record), enums are reader symbol indexes, a
/// reader-side union holds its branch's value directly (our unions are all `["null", T]`), and
/// decimals are already [`Decimal`]s at the reader's scale.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    Boolean(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    String(String),
    Decimal(Decimal),
    Fixed(Vec<u8>),
    Enum(u32),
    Array(Vec<Datum>),
    Map(Vec<(String, Datum)>),
    Record(Vec<Datum>),
}

impl Datum {
    /// The Avro type name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Datum::Null => "null",
            Datum::Boolean(_) => "boolean",
            Datum::Int(_) => "int",
            Datum::Long(_) => "long",
            Datum::Float(_) => "float",
            Datum::Double(_) => "double",
            Datum::Bytes(_) => "bytes",
            Datum::String(_) => "string",
            Datum::Decimal(_) => "decimal",
            Datum::Fixed(_) => "fixed",
            Datum::Enum(_) => "enum",
            Datum::Array(_) => "array",
            Datum::Map(_) => "map",
            Datum::Record(_) => "record",
        }
    }
}

/// `d` with exactly `scale` fractional digits, or `None` when that would drop non-zero digits or
/// overflow.
pub(crate) fn rescale_exact(d: Decimal, scale: u32) -> Option<Decimal> {
    if d.scale() == scale {
        return Some(d);
    }
    let mut r = d;
    r.rescale(scale);
    (r == d && r.scale() == scale).then_some(r)
}

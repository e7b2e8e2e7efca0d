//! Writer → reader resolution, done once per writer schema (Avro specification, "Schema
//! Resolution"): field matching by name or alias, defaults for reader fields the writer lacks,
//! skipping of writer fields the reader lacks, numeric and string/bytes promotions, enum symbols
//! mapped to reader indexes (unknown ones to the reader's `default` symbol), and unions resolved
//! per writer branch so an unresolvable branch only fails the records that use it.

use super::datum::Datum;
use super::decimal::decimal_from_bytes;
use super::shape::{short, FieldShape, Shape};

/// Why a writer schema cannot be read with a reader schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The reader requires a field (no default) that the writer does not have.
    #[error("field {record}.{field} is required by the reader and missing from the writer schema")]
    MissingField { record: String, field: String },
    #[error("{0}")]
    Incompatible(String),
}

/// A compiled decoding program for one (writer, reader) pair. Build it with [`Plan::resolve`] and
/// keep it: that is the whole point.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    IntAsLong,
    IntAsFloat,
    IntAsDouble,
    LongAsFloat,
    LongAsDouble,
    FloatAsDouble,
    BytesAsString,
    StringAsBytes,
    /// Decimal bytes (or fixed of this size) at the writer's scale, brought to the reader's scale
    /// (never rounding: a value that would need it fails to decode).
    Decimal {
        writer_scale: usize,
        reader_scale: usize,
        fixed: Option<usize>,
    },
    Fixed(usize),
    /// Writer symbol index → reader symbol index, or the error for a symbol the reader cannot take.
    Enum(Vec<Result<u32, String>>),
    Array(Box<Plan>),
    Map(Box<Plan>),
    /// Writer fields in writer order; `defaults` is the reader record to start from (reader
    /// defaults filled in, placeholders where the writer supplies the value). `in_order` is the
    /// common case (writer fields are exactly the reader's, in order): values are then pushed
    /// instead of placed.
    Record {
        fields: Vec<FieldPlan>,
        defaults: Vec<Datum>,
        in_order: bool,
    },
    /// The writer wrote a union: one plan per writer branch.
    Union(Vec<Result<Plan, String>>),
}

/// What to do with one writer field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldPlan {
    /// Decode with the plan and store at reader position `to`.
    Read { to: usize, plan: Plan },
    /// The reader does not have this field: skip its bytes.
    Skip(Shape),
}

impl Plan {
    /// Resolves `writer` against `reader`.
    pub fn resolve(writer: &Shape, reader: &Shape) -> Result<Plan, ResolveError> {
        resolve(writer, reader)
    }
}

fn incompatible(writer: &Shape, reader: &Shape) -> ResolveError {
    ResolveError::Incompatible(format!("writer type {} cannot be read as {}", writer.kind(), reader.kind()))
}

fn resolve(writer: &Shape, reader: &Shape) -> Result<Plan, ResolveError> {
    use Shape as S;
    if let S::Union(branches) = writer {
        let plans = branches.iter().map(|b| resolve(b, reader).map_err(|e| e.to_string())).collect();
        return Ok(Plan::Union(plans));
    }
    if let S::Union(branches) = reader {
        // Prefer a branch of the same kind, then one reachable by promotion (specification: the
        // first matching branch).
        if let Some(b) = branches.iter().find(|b| same_kind(writer, b)) {
            return resolve(writer, b);
        }
        return branches.iter().find_map(|b| resolve(writer, b).ok()).ok_or_else(|| incompatible(writer, reader));
    }
    Ok(match (writer, reader) {
        (S::Null, S::Null) => Plan::Null,
        (S::Boolean, S::Boolean) => Plan::Boolean,
        (S::Int, S::Int) => Plan::Int,
        (S::Int, S::Long) => Plan::IntAsLong,
        (S::Int, S::Float) => Plan::IntAsFloat,
        (S::Int, S::Double) => Plan::IntAsDouble,
        (S::Long, S::Long) => Plan::Long,
        (S::Long, S::Float) => Plan::LongAsFloat,
        (S::Long, S::Double) => Plan::LongAsDouble,
        (S::Float, S::Float) => Plan::Float,
        (S::Float, S::Double) => Plan::FloatAsDouble,
        (S::Double, S::Double) => Plan::Double,
        (S::Bytes, S::Bytes) | (S::Decimal { fixed: None, .. }, S::Bytes) => Plan::Bytes,
        (S::String, S::String) => Plan::String,
        (S::Bytes, S::String) => Plan::BytesAsString,
        (S::String, S::Bytes) => Plan::StringAsBytes,
        (S::Decimal { scale: ws, fixed, .. }, S::Decimal { scale: rs, .. }) => {
            Plan::Decimal { writer_scale: *ws, reader_scale: *rs, fixed: *fixed }
        }
        (S::Fixed { name: wn, size: ws }, S::Fixed { name: rn, size: rs }) if short(wn) == short(rn) && ws == rs => {
            Plan::Fixed(*ws)
        }
        (S::Enum { name: wn, symbols: ws, .. }, S::Enum { name: rn, symbols: rs, default, .. })
            if short(wn) == short(rn) =>
        {
            let map = ws
                .iter()
                .map(|sym| match rs.iter().position(|r| r == sym).or(*default) {
                    Some(i) => Ok(i as u32),
                    None => Err(format!("enum {rn} has no symbol {sym} and no default")),
                })
                .collect();
            Plan::Enum(map)
        }
        (S::Array(w), S::Array(r)) => Plan::Array(Box::new(resolve(w, r)?)),
        (S::Map(w), S::Map(r)) => Plan::Map(Box::new(resolve(w, r)?)),
        (S::Record { name: wn, fields: wf }, S::Record { name: rn, fields: rf }) if short(wn) == short(rn) => {
            resolve_record(rn, wf, rf)?
        }
        _ => return Err(incompatible(writer, reader)),
    })
}

fn same_kind(writer: &Shape, reader: &Shape) -> bool {
    use Shape as S;
    match (writer, reader) {
        (S::Record { name: a, .. }, S::Record { name: b, .. })
        | (S::Enum { name: a, .. }, S::Enum { name: b, .. })
        | (S::Fixed { name: a, .. }, S::Fixed { name: b, .. }) => short(a) == short(b),
        (S::Decimal { .. }, S::Decimal { .. }) => true,
        _ => std::mem::discriminant(writer) == std::mem::discriminant(reader),
    }
}

fn resolve_record(record: &str, writer: &[FieldShape], reader: &[FieldShape]) -> Result<Plan, ResolveError> {
    let mut supplied = vec![false; reader.len()];
    let mut fields = Vec::with_capacity(writer.len());
    for wf in writer {
        let pos = reader
            .iter()
            .position(|rf| rf.name == wf.name)
            .or_else(|| reader.iter().position(|rf| rf.aliases.iter().any(|a| a == &wf.name)));
        match pos {
            Some(to) => {
                let plan = resolve(&wf.shape, &reader[to].shape).map_err(|e| match e {
                    ResolveError::Incompatible(m) => ResolveError::Incompatible(format!("{record}.{}: {m}", wf.name)),
                    missing => missing,
                })?;
                supplied[to] = true;
                fields.push(FieldPlan::Read { to, plan });
            }
            None => fields.push(FieldPlan::Skip(wf.shape.clone())),
        }
    }
    let mut defaults = Vec::with_capacity(reader.len());
    for (rf, supplied) in reader.iter().zip(supplied) {
        if supplied {
            defaults.push(Datum::Null);
            continue;
        }
        let Some(json) = &rf.default else {
            return Err(ResolveError::MissingField { record: short(record).to_string(), field: rf.name.clone() });
        };
        let d = default_datum(&rf.shape, json)
            .map_err(|m| ResolveError::Incompatible(format!("default of {record}.{}: {m}", rf.name)))?;
        defaults.push(d);
    }
    let in_order = fields.len() == reader.len()
        && fields.iter().enumerate().all(|(i, f)| matches!(f, FieldPlan::Read { to, .. } if *to == i));
    Ok(Plan::Record { fields, defaults, in_order })
}

/// Converts a JSON default (as written in a schema) to the datum of `shape`.
pub(crate) fn default_datum(shape: &Shape, json: &serde_json::Value) -> Result<Datum, String> {
    use serde_json::Value as J;
    use Shape as S;
    let bad = || format!("{json} is not a valid default for {}", shape.kind());
    let latin1 = |s: &str| -> Result<Vec<u8>, String> {
        s.chars().map(|c| u8::try_from(u32::from(c)).map_err(|_| bad())).collect()
    };
    Ok(match (shape, json) {
        (S::Null, J::Null) => Datum::Null,
        (S::Boolean, J::Bool(b)) => Datum::Boolean(*b),
        (S::Int, J::Number(n)) => Datum::Int(n.as_i64().and_then(|v| i32::try_from(v).ok()).ok_or_else(bad)?),
        (S::Long, J::Number(n)) => Datum::Long(n.as_i64().ok_or_else(bad)?),
        (S::Float, J::Number(n)) => Datum::Float(n.as_f64().ok_or_else(bad)? as f32),
        (S::Double, J::Number(n)) => Datum::Double(n.as_f64().ok_or_else(bad)?),
        (S::String, J::String(s)) => Datum::String(s.clone()),
        (S::Bytes, J::String(s)) => Datum::Bytes(latin1(s)?),
        (S::Fixed { .. }, J::String(s)) => Datum::Fixed(latin1(s)?),
        (S::Decimal { scale, .. }, J::String(s)) => Datum::Decimal(decimal_from_bytes(&latin1(s)?, *scale)?),
        (S::Enum { symbols, .. }, J::String(s)) => {
            Datum::Enum(symbols.iter().position(|x| x == s).ok_or_else(bad)? as u32)
        }
        (S::Array(items), J::Array(a)) => {
            Datum::Array(a.iter().map(|v| default_datum(items, v)).collect::<Result<_, _>>()?)
        }
        (S::Map(values), J::Object(o)) => Datum::Map(
            o.iter().map(|(k, v)| Ok((k.clone(), default_datum(values, v)?))).collect::<Result<_, String>>()?,
        ),
        // A union's default is for its first branch.
        (S::Union(branches), _) => default_datum(branches.first().ok_or_else(bad)?, json)?,
        (S::Record { fields, .. }, J::Object(o)) => Datum::Record(
            fields
                .iter()
                .map(|f| match o.get(&f.name).or(f.default.as_ref()) {
                    Some(v) => default_datum(&f.shape, v),
                    None => Err(bad()),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(bad()),
    })
}

/// Whether every datum `writer` can produce is readable with `reader` (the Avro specification's
/// resolution rules, strictly: unlike decoding, a writer union branch or enum symbol the reader
/// cannot take makes the pair incompatible). Used for the registry's compatibility checks
/// (apache-avro 0.21's `SchemaCompatibility` cannot compare `decimal` fields, which every money
/// field is).
pub fn can_read(writer: &Shape, reader: &Shape) -> Result<(), String> {
    fn strict(plan: &Plan) -> Result<(), String> {
        match plan {
            Plan::Enum(map) => map.iter().try_for_each(|m| m.as_ref().map(drop).map_err(Clone::clone)),
            Plan::Union(branches) => {
                branches.iter().try_for_each(|b| b.as_ref().map_err(Clone::clone).and_then(strict))
            }
            Plan::Array(p) | Plan::Map(p) => strict(p),
            Plan::Record { fields, .. } => fields.iter().try_for_each(|f| match f {
                FieldPlan::Read { plan, .. } => strict(plan),
                FieldPlan::Skip(_) => Ok(()),
            }),
            _ => Ok(()),
        }
    }
    let plan = resolve(writer, reader).map_err(|e| e.to_string())?;
    strict(&plan)
}

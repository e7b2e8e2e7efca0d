//! [`Shape`]: an Avro schema with named references inlined and logical types reduced to what the
//! binary encoding and our Rust types need.

use std::collections::HashMap;

use apache_avro::Schema;

/// A compiled Avro schema. Logical types other than `decimal` collapse into their underlying type
/// (`timestamp-millis` is a `Long`, `date` an `Int`, `uuid` a `String`): resolution ignores them as
/// the Avro specification allows, and the Rust types know what a field means.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    /// `decimal` on `bytes` (`fixed: None`) or on `fixed` of that size.
    Decimal {
        precision: usize,
        scale: usize,
        fixed: Option<usize>,
    },
    Fixed {
        name: String,
        size: usize,
    },
    Enum {
        name: String,
        symbols: Vec<String>,
        /// Index of the `default` symbol: where unknown writer symbols go.
        default: Option<usize>,
    },
    Array(Box<Shape>),
    Map(Box<Shape>),
    Union(Vec<Shape>),
    Record {
        name: String,
        fields: Vec<FieldShape>,
    },
}

/// One record field: its name, aliases (accepted when matching writer fields) and default (used
/// when the writer lacks the field).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldShape {
    pub name: String,
    pub aliases: Vec<String>,
    pub shape: Shape,
    pub default: Option<serde_json::Value>,
}

/// Nesting deeper than this is taken as a recursive schema, which finstream's contract never uses
/// and this codec does not support (inlining would not terminate).
const MAX_DEPTH: usize = 64;

impl Shape {
    /// Compiles a parsed schema. Fails on recursive schemas and unknown references.
    pub fn compile(schema: &Schema) -> Result<Shape, String> {
        let mut names = HashMap::new();
        compile(schema, &mut names, 0)
    }

    /// Parses schema JSON and compiles it.
    pub fn parse(json: &str) -> Result<Shape, String> {
        let schema = Schema::parse_str(json).map_err(|e| e.to_string())?;
        Shape::compile(&schema)
    }

    /// A short name for error messages.
    pub fn kind(&self) -> String {
        match self {
            Shape::Null => "null".into(),
            Shape::Boolean => "boolean".into(),
            Shape::Int => "int".into(),
            Shape::Long => "long".into(),
            Shape::Float => "float".into(),
            Shape::Double => "double".into(),
            Shape::Bytes => "bytes".into(),
            Shape::String => "string".into(),
            Shape::Decimal { precision, scale, .. } => format!("decimal({precision},{scale})"),
            Shape::Fixed { name, .. } | Shape::Enum { name, .. } | Shape::Record { name, .. } => name.clone(),
            Shape::Array(_) => "array".into(),
            Shape::Map(_) => "map".into(),
            Shape::Union(_) => "union".into(),
        }
    }

    /// The record's fields, or `None` when this is not a record.
    pub fn fields(&self) -> Option<&[FieldShape]> {
        match self {
            Shape::Record { fields, .. } => Some(fields),
            _ => None,
        }
    }
}

/// Unqualified name, used to match named types across schemas (readers of other namespaces
/// interoperate, as the specification's "unqualified names match" rule says).
pub(crate) fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn compile(schema: &Schema, names: &mut HashMap<String, Shape>, depth: usize) -> Result<Shape, String> {
    if depth > MAX_DEPTH {
        return Err("schema nests too deep (recursive schemas are not supported)".into());
    }
    let d = depth + 1;
    Ok(match schema {
        Schema::Null => Shape::Null,
        Schema::Boolean => Shape::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Shape::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Shape::Long,
        Schema::Float => Shape::Float,
        Schema::Double => Shape::Double,
        Schema::Bytes | Schema::BigDecimal => Shape::Bytes,
        Schema::String | Schema::Uuid => Shape::String,
        Schema::Duration => Shape::Fixed { name: "duration".into(), size: 12 },
        Schema::Decimal(dec) => {
            let fixed = match dec.inner.as_ref() {
                Schema::Fixed(f) => {
                    let shape = Shape::Fixed { name: f.name.fullname(None), size: f.size };
                    names.insert(f.name.fullname(None), shape);
                    Some(f.size)
                }
                _ => None,
            };
            Shape::Decimal { precision: dec.precision, scale: dec.scale, fixed }
        }
        Schema::Fixed(f) => {
            let shape = Shape::Fixed { name: f.name.fullname(None), size: f.size };
            names.insert(f.name.fullname(None), shape.clone());
            shape
        }
        Schema::Enum(e) => {
            let default = e.default.as_ref().and_then(|s| e.symbols.iter().position(|x| x == s));
            let shape = Shape::Enum { name: e.name.fullname(None), symbols: e.symbols.clone(), default };
            names.insert(e.name.fullname(None), shape.clone());
            shape
        }
        Schema::Array(a) => Shape::Array(Box::new(compile(&a.items, names, d)?)),
        Schema::Map(m) => Shape::Map(Box::new(compile(&m.types, names, d)?)),
        Schema::Union(u) => Shape::Union(u.variants().iter().map(|v| compile(v, names, d)).collect::<Result<_, _>>()?),
        Schema::Record(r) => {
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                fields.push(FieldShape {
                    name: f.name.clone(),
                    aliases: f.aliases.clone().unwrap_or_default(),
                    shape: compile(&f.schema, names, d)?,
                    default: f.default.clone(),
                });
            }
            let shape = Shape::Record { name: r.name.fullname(None), fields };
            names.insert(r.name.fullname(None), shape.clone());
            shape
        }
        Schema::Ref { name } => {
            let full = name.fullname(None);
            names.get(&full).cloned().ok_or_else(|| format!("reference to unknown or recursive type {full}"))?
        }
    })
}

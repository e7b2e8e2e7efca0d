//! A small Avro binary codec built for the hot path.
//!
//! apache-avro's `from_avro_datum` rebuilds its name table and re-resolves writer against reader
//! for every record, and builds `Value::Record`s that allocate every field name. Here a writer
//! schema is compiled once, against our reader schema, into a [`Plan`]; decoding then walks the
//! plan and produces [`Datum`]s whose record fields are positional in the *reader* schema, so the
//! Rust types read them without name lookups. apache-avro is still used to parse schemas and, in
//! the registry, to check compatibility.

mod datum;
mod decimal;
mod decode;
mod encode;
mod plan;
mod shape;

pub use datum::Datum;
pub use decimal::{decimal_from_bytes, decimal_to_bytes};
pub use decode::decode;
pub use encode::encode;
pub use plan::{can_read, Plan, ResolveError};
pub use shape::{FieldShape, Shape};

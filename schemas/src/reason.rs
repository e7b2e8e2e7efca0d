//! The `SerdeError::reason` classes this crate produces. They are stable strings because they end
//! up in `<topic>-dlq` headers and in metric labels that dashboards and alerts select on.

/// The payload has no bytes at all (a tombstone reaching a value deserializer).
pub const EMPTY_PAYLOAD: &str = "empty_payload";
/// First byte is not the Confluent magic byte 0, or the payload is shorter than the 5-byte header.
pub const BAD_MAGIC_BYTE: &str = "bad_magic_byte";
/// The registry does not know the schema id in the header.
pub const UNKNOWN_SCHEMA_ID: &str = "unknown_schema_id";
/// The writer schema cannot be read with our schema (type changes, unparseable writer schema...).
pub const SCHEMA_RESOLUTION: &str = "schema_resolution";
/// The Avro body does not decode with its writer schema (truncated, garbage, trailing bytes).
pub const AVRO_DECODE: &str = "avro_decode";
/// The writer schema lacks a field that our schema requires and that has no default.
pub const MISSING_FIELD: &str = "missing_field";
/// Validation: an amount that must be a positive magnitude is negative.
pub const NEGATIVE_AMOUNT: &str = "negative_amount";
/// Validation: a currency that is not an active ISO 4217 code.
pub const UNKNOWN_CURRENCY: &str = "unknown_currency";
/// Validation: a TRANSFER without `counterparty_account_id`.
pub const TRANSFER_WITHOUT_COUNTERPARTY: &str = "transfer_without_counterparty";
/// Validation: any other field outside its domain (empty id, zero amount, UNKNOWN kind, more
/// fractional digits than the currency has, a decimal that does not fit our scale, ...).
pub const INVALID_FIELD: &str = "invalid_field";
/// Encoding: a decimal has more integer digits than the schema's precision allows.
pub const DECIMAL_OVERFLOW: &str = "decimal_overflow";
/// Encoding: a decimal has more fractional digits than the schema's scale (we never round money).
pub const DECIMAL_ROUNDING: &str = "decimal_rounding";
/// Encoding: the value does not match the schema it is written with (a bug in this crate).
pub const AVRO_ENCODE: &str = "avro_encode";
/// The registry could not be reached or answered an unexpected error. This is not a fault of the
/// record: callers should retry or stop rather than dead-letter.
pub const REGISTRY_UNAVAILABLE: &str = "registry_unavailable";

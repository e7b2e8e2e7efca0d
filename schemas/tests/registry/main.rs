//! Registry tests: the Confluent REST endpoints of the embedded server (through the router, no
//! socket), the HTTP client against a real listener, persistence through the store.

mod client;
mod endpoints;
mod persistence;

/// A record schema with the given extra fields (JSON fragments).
pub fn record(name: &str, extra: &[&str]) -> String {
    let mut fields = vec![r#"{"name":"id","type":"string"}"#.to_string()];
    fields.extend(extra.iter().map(|s| s.to_string()));
    format!(r#"{{"type":"record","name":"{name}","namespace":"t","fields":[{}]}}"#, fields.join(","))
}

pub const OPTIONAL_NOTE: &str = r#"{"name":"note","type":["null","string"],"default":null}"#;
pub const REQUIRED_NOTE: &str = r#"{"name":"note","type":"string"}"#;
pub const MONEY: &str = r#"{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4}}"#;

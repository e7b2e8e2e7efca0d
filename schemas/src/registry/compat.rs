//! Compatibility levels and checks, with Confluent's semantics: BACKWARD means the new schema can
//! read data written with the previous one (consumers upgrade first), FORWARD the reverse, FULL
//! both; `_TRANSITIVE` checks against every earlier version instead of only the latest.
//!
//! The reader/writer check is [`crate::codec::can_read`], the same resolution rules the decoder
//! uses, so "the registry accepted it" and "finstream can decode it" cannot disagree.
//! (apache-avro 0.21's `SchemaCompatibility::can_read` was the first choice, but it answers
//! "inconclusive" for any `decimal` field.)

use std::str::FromStr;

use crate::codec::{can_read, Shape};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl FromStr for CompatibilityLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase()))
            .map_err(|_| format!("invalid compatibility level {s:?}"))
    }
}

/// Checks `new` against the existing versions (oldest first) at `level`. The error lists the first
/// incompatibility found.
pub fn check_compatibility(level: CompatibilityLevel, new: &Shape, existing: &[&Shape]) -> Result<(), String> {
    use CompatibilityLevel as L;
    let against: &[&Shape] =
        if level.transitive() { existing } else { existing.last().map_or(&[], std::slice::from_ref) };
    for (i, old) in against.iter().enumerate() {
        let backward =
            || can_read(old, new).map_err(|e| format!("new schema cannot read data written with the old one: {e}"));
        let forward =
            || can_read(new, old).map_err(|e| format!("old schema cannot read data written with the new one: {e}"));
        let result = match level {
            L::None => Ok(()),
            L::Backward | L::BackwardTransitive => backward(),
            L::Forward | L::ForwardTransitive => forward(),
            L::Full | L::FullTransitive => backward().and_then(|_| forward()),
        };
        result.map_err(|e| if against.len() > 1 { format!("version #{}: {e}", i + 1) } else { e })?;
    }
    Ok(())
}

//! Persistence of the embedded registry, shaped like Confluent's compacted `_schemas` topic: every
//! change is one [`StoreRecord`] with a compaction [`StoreRecord::key`] and a JSON value, and the
//! registry's state is the replay of all records in order. A Kafka-backed store only has to
//! produce `(key, to_json())` and, at start, consume the topic from the beginning.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::CompatibilityLevel;

/// One registered version of a subject. Deleting a subject appends its versions again with
/// `deleted: true` (a soft delete, as in Confluent: ids stay valid for old data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRecord {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
    pub deleted: bool,
}

/// A change to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StoreRecord {
    Schema(SchemaRecord),
    /// Compatibility level of a subject, or the global one when `subject` is `None`.
    Config {
        subject: Option<String>,
        compatibility_level: CompatibilityLevel,
    },
}

impl StoreRecord {
    /// The compaction key: later records with the same key replace earlier ones.
    pub fn key(&self) -> String {
        let key = match self {
            StoreRecord::Schema(s) => {
                serde_json::json!({"keytype": "SCHEMA", "subject": s.subject, "version": s.version})
            }
            StoreRecord::Config { subject, .. } => serde_json::json!({"keytype": "CONFIG", "subject": subject}),
        };
        key.to_string()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("records serialize")
    }

    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }
}

/// Where the embedded registry keeps its records. `append` must be durable before it returns:
/// the registry answers a registration only after it.
pub trait SchemaStore: Send + Sync {
    fn append(&self, record: &StoreRecord) -> Result<(), String>;
    /// Every record, oldest first (or, after compaction, the latest per key in order).
    fn load(&self) -> Result<Vec<StoreRecord>, String>;
}

/// A store in memory: for tests and for an embedded registry that need not survive a restart.
#[derive(Debug, Default)]
pub struct MemorySchemaStore {
    records: Mutex<Vec<StoreRecord>>,
}

impl MemorySchemaStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SchemaStore for MemorySchemaStore {
    fn append(&self, record: &StoreRecord) -> Result<(), String> {
        self.records.lock().expect("lock").push(record.clone());
        Ok(())
    }
    fn load(&self) -> Result<Vec<StoreRecord>, String> {
        Ok(self.records.lock().expect("lock").clone())
    }
}

//! Schema registry: the client trait the serde uses, a Confluent REST client, the embedded
//! registry (also usable in-process, without HTTP) and its Confluent-compatible HTTP server.

mod compat;
mod embedded;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "server")]
pub mod server;
mod store;

pub use compat::{check_compatibility, CompatibilityLevel};
pub use embedded::{EmbeddedRegistry, VersionSel};
#[cfg(feature = "http")]
pub use http::HttpRegistry;
pub use store::{MemorySchemaStore, SchemaRecord, SchemaStore, StoreRecord};

use serde::{Deserialize, Serialize};

/// The subject of a topic's values under the TopicNameStrategy.
pub fn subject_for(topic: &str) -> String {
    format!("{topic}-value")
}

/// Confluent error codes (returned in `{"error_code": .., "message": ..}` bodies).
pub mod codes {
    pub const SUBJECT_NOT_FOUND: u32 = 40401;
    pub const VERSION_NOT_FOUND: u32 = 40402;
    pub const SCHEMA_NOT_FOUND: u32 = 40403;
    pub const SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED: u32 = 40408;
    pub const INCOMPATIBLE_SCHEMA: u32 = 409;
    pub const INVALID_SCHEMA: u32 = 42201;
    pub const INVALID_VERSION: u32 = 42202;
    pub const INVALID_COMPATIBILITY_LEVEL: u32 = 42203;
    pub const STORE_ERROR: u32 = 50001;
}

/// One registered version of a subject (the body of `GET /subjects/{s}/versions/{v}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredSchema {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}

/// A registry failure. `Api` carries Confluent's HTTP status and error code, so the embedded
/// registry and a remote one fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry error {error_code} (HTTP {status}): {message}")]
    Api { status: u16, error_code: u32, message: String },
    #[error("schema registry unreachable: {0}")]
    Transport(String),
}

impl RegistryError {
    pub fn api(status: u16, error_code: u32, message: impl Into<String>) -> Self {
        RegistryError::Api { status, error_code, message: message.into() }
    }

    /// The Confluent error code, when the registry answered one.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            RegistryError::Api { error_code, .. } => Some(*error_code),
            RegistryError::Transport(_) => None,
        }
    }

    /// A 404 of any kind (subject, version or schema not found).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Api { status: 404, .. })
    }
}

/// What finstream needs from a schema registry. Blocking, because it is called from the engine's
/// (synchronous) stream threads, and rarely: implementations cache.
pub trait SchemaRegistry: Send + Sync {
    /// Registers `schema` (Avro JSON) under `subject`, or finds it there; returns its global id.
    /// Registering the same schema again returns the same id.
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError>;
    /// The schema JSON with this id.
    fn schema_by_id(&self, id: u32) -> Result<String, RegistryError>;
    /// The newest version of a subject.
    fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError>;
}

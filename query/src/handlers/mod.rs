//! Handlers, one module per resource family. Each one authenticates, validates, finds the
//! key's owner (answering from local committed state or forwarding), then shapes the body.

pub mod accounts;
pub mod ops;
pub mod users;

use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Decodes a store value (JSON written by the processors).
pub(crate) fn decode<T: DeserializeOwned>(store: &str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Internal(format!("store {store} holds an undecodable value: {e}")))
}

//! Handlers, one module per resource family. Each one authenticates, validates, finds the
//! key's owner (answering from local committed state or forwarding), then shapes the body.

pub mod accounts;
pub mod ops;
pub mod stores;
pub mod users;

use streams::KvStoreDef;

use crate::error::ApiError;
use crate::reader::StateReader;

/// The committed value of `key` in `store`'s local `partition`, with the key encoded and the
/// value decoded by the typed handle the processors write through: no handler repeats a
/// store's key layout or value type.
pub(crate) fn read<K: 'static, V: 'static>(
    reader: &dyn StateReader,
    store: &KvStoreDef<K, V>,
    partition: i32,
    key: &K,
) -> Result<Option<V>, ApiError> {
    let k = store.encode_key(key).map_err(|e| ApiError::Internal(format!("store {}: {e}", store.name())))?;
    reader.get(store.name(), partition, &k)?.map(|bytes| decode(store, &bytes)).transpose()
}

/// Decodes a committed value of `store` with its handle.
pub(crate) fn decode<K: 'static, V: 'static>(store: &KvStoreDef<K, V>, bytes: &[u8]) -> Result<V, ApiError> {
    store
        .decode_value(bytes)
        .map_err(|e| ApiError::Internal(format!("store {} holds an undecodable value: {e}", store.name())))
}

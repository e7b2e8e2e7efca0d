//! Typed keys and values at the topology's edges (sources, sinks, stores, changelogs).
//!
//! The engine moves Rust values between processors and only turns them into bytes where they
//! leave the process, so a `Serde` is needed exactly at sources, sinks and stores. Keeping the
//! trait here (and not in an Avro crate) is what keeps the engine independent of Avro.

use std::marker::PhantomData;

/// Why a record could not be turned into a value (or back). `reason` is a short, stable,
/// snake_case class (`bad_magic_byte`, `unknown_schema_id`, `invalid_amount`, ...) that goes
/// into dead-letter headers and metric labels; `message` is for humans.
///
/// `retriable` marks failures that are not the record's fault (a schema registry that cannot be
/// reached): the engine must not dead-letter such a record but retry it later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct SerdeError {
    pub reason: String,
    pub message: String,
    pub retriable: bool,
}

impl SerdeError {
    /// A failure caused by the bytes themselves: retrying cannot help.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        SerdeError { reason: reason.into(), message: message.into(), retriable: false }
    }

    /// A failure of something the serde depends on; the same bytes may decode later.
    pub fn retriable(reason: impl Into<String>, message: impl Into<String>) -> Self {
        SerdeError { reason: reason.into(), message: message.into(), retriable: true }
    }
}

/// Converts `T` to and from the bytes of one topic or store. `topic` is passed so that
/// registry-backed formats can use the TopicNameStrategy (`<topic>-value`).
pub trait Serde<T>: Send + Sync + 'static {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError>;
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError>;
}

/// A shared serde serves several sources, sinks and stores: registry-backed serdes cache schema
/// ids and resolved readers, and sharing one keeps those caches in one place.
impl<T, S: Serde<T> + ?Sized> Serde<T> for std::sync::Arc<S> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        (**self).serialize(topic, value)
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        (**self).deserialize(topic, bytes)
    }
}

/// UTF-8 strings as Kafka's StringSerializer writes them (keys of every finstream topic).
#[derive(Debug, Default, Clone, Copy)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Vec<u8>, SerdeError> {
        Ok(value.as_bytes().to_vec())
    }
    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<String, SerdeError> {
        String::from_utf8(bytes.to_vec()).map_err(|e| SerdeError::new("invalid_utf8", e.to_string()))
    }
}

/// Raw bytes, unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, _topic: &str, value: &Vec<u8>) -> Result<Vec<u8>, SerdeError> {
        Ok(value.clone())
    }
    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<Vec<u8>, SerdeError> {
        Ok(bytes.to_vec())
    }
}

/// Big-endian i64, as Kafka's LongSerializer writes it.
#[derive(Debug, Default, Clone, Copy)]
pub struct I64Serde;

impl Serde<i64> for I64Serde {
    fn serialize(&self, _topic: &str, value: &i64) -> Result<Vec<u8>, SerdeError> {
        Ok(value.to_be_bytes().to_vec())
    }
    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<i64, SerdeError> {
        let arr: [u8; 8] = bytes
            .try_into()
            .map_err(|_| SerdeError::new("invalid_length", format!("expected 8 bytes, got {}", bytes.len())))?;
        Ok(i64::from_be_bytes(arr))
    }
}

/// JSON through serde: the default for state stores, where the format is private to the
/// application and readability of changelog topics helps when debugging.
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    /// `const`, so typed store handles can be declared as constants (`&JsonSerde::new()`).
    pub const fn new() -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        JsonSerde::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for JsonSerde<T> {}

impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, _topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        serde_json::to_vec(value).map_err(|e| SerdeError::new("json_encode", e.to_string()))
    }
    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        serde_json::from_slice(bytes).map_err(|e| SerdeError::new("json_decode", e.to_string()))
    }
}

//! [`AvroSerde`]: the engine's `Serde<T>` for contract records, over the Confluent wire format and
//! a schema registry.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use streams::serde::{Serde, SerdeError};

use crate::codec::{decode, encode, Plan, ResolveError, Shape};
use crate::contract::AvroRecord;
use crate::reason;
use crate::registry::{subject_for, RegistryError, SchemaRegistry};
use crate::wire;

/// Decodes Avro bodies written with one writer schema into `T`, through a plan resolved once.
#[derive(Debug)]
pub struct Decoder<T> {
    plan: Plan,
    validate: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: AvroRecord> Decoder<T> {
    /// Resolves `writer_schema` (JSON) against `T`'s contract schema. `missing_field` when the
    /// writer lacks a field we require, `schema_resolution` for any other mismatch.
    pub fn new(writer_schema: &str, validate: bool) -> Result<Self, SerdeError> {
        let writer = Shape::parse(writer_schema)
            .map_err(|e| SerdeError::new(reason::SCHEMA_RESOLUTION, format!("unusable writer schema: {e}")))?;
        let plan = Plan::resolve(&writer, &T::contract().shape).map_err(|e| match e {
            ResolveError::MissingField { .. } => SerdeError::new(reason::MISSING_FIELD, e.to_string()),
            ResolveError::Incompatible(m) => SerdeError::new(reason::SCHEMA_RESOLUTION, format!("{}: {m}", T::NAME)),
        })?;
        Ok(Decoder { plan, validate, _t: PhantomData })
    }

    /// Decodes one Avro body (no wire header), then validates when asked to.
    pub fn decode(&self, body: &[u8]) -> Result<T, SerdeError> {
        let datum =
            decode(&self.plan, body).map_err(|m| SerdeError::new(reason::AVRO_DECODE, format!("{}: {m}", T::NAME)))?;
        let value = T::from_record(datum)?;
        if self.validate {
            value.validate()?;
        }
        Ok(value)
    }
}

/// How long an unknown schema id is remembered as unknown before the registry is asked again, so
/// a stream of garbage with random ids does not turn into a stream of registry requests.
const UNKNOWN_ID_TTL: Duration = Duration::from_secs(30);

enum Cached<T> {
    Ready(Arc<Decoder<T>>),
    /// Resolution failed: deterministic for a schema id, kept for good.
    Failed(SerdeError),
    Unknown(Instant),
}

/// `Serde<T>` for a contract record: writes with `T`'s `.avsc` registered under `<topic>-value`
/// (TopicNameStrategy; the id is cached per topic after the first record) and reads any registered
/// writer schema that resolves to it (a plan per schema id, built once). Input events are
/// validated after decoding, so bad records surface as `SerdeError`s with a DLQ reason.
pub struct AvroSerde<T> {
    registry: Arc<dyn SchemaRegistry>,
    validate: bool,
    writer_ids: RwLock<HashMap<String, u32>>,
    readers: RwLock<HashMap<u32, Cached<T>>>,
}

impl<T: AvroRecord> AvroSerde<T> {
    /// A serde that validates decoded records (`T::validate`).
    pub fn new(registry: Arc<dyn SchemaRegistry>) -> Self {
        AvroSerde { registry, validate: true, writer_ids: RwLock::default(), readers: RwLock::default() }
    }

    /// Skips `T::validate` on deserialize (e.g. for reading back our own derived topics).
    pub fn without_validation(mut self) -> Self {
        self.validate = false;
        self
    }

    /// The schema id records for `topic` are written with, registering `T`'s schema on first use.
    pub fn writer_id(&self, topic: &str) -> Result<u32, SerdeError> {
        if let Some(id) = self.writer_ids.read().expect("lock").get(topic) {
            return Ok(*id);
        }
        let id = self.registry.register(&subject_for(topic), T::contract().json).map_err(registry_error)?;
        self.writer_ids.write().expect("lock").insert(topic.to_string(), id);
        Ok(id)
    }

    fn decoder(&self, id: u32) -> Result<Arc<Decoder<T>>, SerdeError> {
        match self.readers.read().expect("lock").get(&id) {
            Some(Cached::Ready(d)) => return Ok(d.clone()),
            Some(Cached::Failed(e)) => return Err(e.clone()),
            Some(Cached::Unknown(at)) if at.elapsed() < UNKNOWN_ID_TTL => return Err(unknown_id(id)),
            _ => {}
        }
        let entry = match self.registry.schema_by_id(id) {
            Ok(schema) => match Decoder::new(&schema, self.validate) {
                Ok(d) => Cached::Ready(Arc::new(d)),
                Err(e) => Cached::Failed(SerdeError::new(e.reason, format!("schema id {id}: {}", e.message))),
            },
            Err(e) if e.is_not_found() => Cached::Unknown(Instant::now()),
            Err(e) => return Err(registry_error(e)),
        };
        let result = match &entry {
            Cached::Ready(d) => Ok(d.clone()),
            Cached::Failed(e) => Err(e.clone()),
            Cached::Unknown(_) => Err(unknown_id(id)),
        };
        self.readers.write().expect("lock").insert(id, entry);
        result
    }
}

fn unknown_id(id: u32) -> SerdeError {
    SerdeError::new(reason::UNKNOWN_SCHEMA_ID, format!("schema id {id} is not registered"))
}

fn registry_error(e: RegistryError) -> SerdeError {
    SerdeError::retriable(reason::REGISTRY_UNAVAILABLE, e.to_string())
}

impl<T: AvroRecord> Serde<T> for AvroSerde<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        let id = self.writer_id(topic)?;
        let mut out = Vec::with_capacity(128);
        wire::write_header(id, &mut out);
        encode(&T::contract().shape, &value.to_datum(), &mut out)?;
        Ok(out)
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        let (id, body) = wire::split(bytes)?;
        self.decoder(id)?.decode(body)
    }
}

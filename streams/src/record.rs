//! Records as processors see them, and as they leave a task.

/// Kafka record headers, in order. Duplicated names are allowed, as in Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Vec<u8>)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }
    /// Sets `name`, replacing any earlier value, so lineage written at every hop stays single.
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_string(), value.into()));
    }
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Header names the engine writes. Lineage names the *original* input record that caused a
/// derived record, so they survive repartition hops (they are only set when absent).
pub mod header {
    pub const SOURCE_TOPIC: &str = "finstream.source.topic";
    pub const SOURCE_PARTITION: &str = "finstream.source.partition";
    pub const SOURCE_OFFSET: &str = "finstream.source.offset";
    pub const ERROR_CLASS: &str = "finstream.error.class";
    pub const ERROR_MESSAGE: &str = "finstream.error.message";
    pub const ERROR_PROCESSOR: &str = "finstream.error.processor";
    /// Deterministic id of a derived record (see `TaskCore::output_id`).
    pub const OUTPUT_ID: &str = "finstream.output.id";
    /// On a record in a placement topic: the user topic it was found on, on a partition its
    /// key does not belong to.
    pub const PLACEMENT_ORIGIN: &str = "finstream.placement.topic";
}

/// A typed record flowing between processors.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    pub key: K,
    pub value: V,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Record { key, value, timestamp, headers: Headers::new() }
    }
    pub fn with_key<K2>(self, key: K2) -> Record<K2, V> {
        Record { key, value: self.value, timestamp: self.timestamp, headers: self.headers }
    }
    pub fn with_value<V2>(self, value: V2) -> Record<K, V2> {
        Record { key: self.key, value, timestamp: self.timestamp, headers: self.headers }
    }
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }
}

/// Where a record came from: the input the task is processing right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordMeta {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A serialized record read from a topic partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Headers,
}

/// A serialized record a task wants written. `partition: None` means "partition by key with
/// murmur2", the Java client's default partitioner, which downstream Java consumers of user
/// topics expect. Records into the application's own repartition and placement topics carry
/// their partition, chosen with the reading sub-topology's partitioner
/// ([`crate::partitioner::PartitionPlan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Headers,
}

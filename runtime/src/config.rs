//! Instance configuration, with Kafka Streams' names (snake_case) and defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use streams::ErrorHandling;

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingGuarantee {
    /// Outputs, changelog records and input offsets commit atomically in one Kafka transaction
    /// per stream thread (Kafka Streams' EOS v2).
    #[default]
    ExactlyOnceV2,
    /// Outputs are flushed before offsets are committed: nothing is lost, a crash may repeat.
    AtLeastOnce,
}

/// Configuration of one finstream instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamsConfig {
    /// `application.id`: consumer group id and prefix of internal topics and transactional ids.
    pub application_id: String,
    /// `bootstrap.servers` of the Kafka cluster.
    pub bootstrap_servers: String,
    pub processing_guarantee: ProcessingGuarantee,
    /// `commit.interval.ms`; unset means 100 under exactly-once and 30000 under at-least-once.
    pub commit_interval_ms: Option<u64>,
    /// `num.stream.threads`: each has its own consumer, producer and tasks.
    pub num_stream_threads: usize,
    /// `state.dir`: RocksDB stores live in `<state_dir>/<application_id>/<task>/<store>`.
    pub state_dir: PathBuf,
    /// `max.task.idle.ms`: how long a task waits for data on an empty input partition before
    /// processing its other partitions out of timestamp order.
    pub max_task_idle_ms: i64,
    /// What happens to records that fail to decode or that processors reject.
    pub error_handling: ErrorHandling,
    /// Shared RocksDB block cache for all stores of the process, in bytes.
    pub rocksdb_block_cache_bytes: usize,
    /// Shared RocksDB memtable budget for all stores of the process, in bytes.
    pub rocksdb_write_buffer_bytes: usize,
    /// `application.server`: the URL other instances use to forward interactive queries here.
    pub application_server: Option<String>,
    /// `transaction.timeout.ms` of the exactly-once producers: a transaction open longer is
    /// aborted by the broker. Kafka Streams' EOS default; it bounds how long a restore waits
    /// for a crashed owner's open transaction. Must exceed `commit_interval_ms`.
    pub transaction_timeout_ms: Option<u64>,
    /// Records buffered per input partition before the partition is paused (Kafka Streams'
    /// `buffered.records.per.partition`): bounds memory when one input runs ahead.
    pub buffered_records_per_partition: usize,
    /// How often repartition topics are purged up to the committed offsets
    /// (`repartition.purge.interval.ms`).
    pub repartition_purge_interval_ms: u64,
    /// The partitioner that placed each user source topic's keys (`murmur2`, `crc32` —
    /// librdkafka's `consistent_random`, the default of non-Java clients —, `fnv1a`, or a
    /// librdkafka `partitioner` name). Unset topics are detected from their records at the first
    /// start; set it when the first start meets empty topics written by non-Java producers.
    pub partitioners: BTreeMap<String, String>,
    /// librdkafka settings passed verbatim to every consumer and producer (security, timeouts).
    /// Keys the engine's guarantees rest on are refused (see [`PROTECTED_KAFKA_KEYS`]).
    pub kafka: BTreeMap<String, String>,
}

/// librdkafka settings the engine sets itself; `[kafka]` may not override them.
pub const PROTECTED_KAFKA_KEYS: &[&str] = &[
    "transactional.id",
    "isolation.level",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "group.id",
    "bootstrap.servers",
    "transaction.timeout.ms",
];

/// Why a configuration is refused at start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("[kafka] may not set {0:?}: the engine sets it (use the engine's own setting where there is one)")]
    Protected(String),
    #[error("transaction_timeout_ms ({timeout}) must be larger than commit_interval_ms ({interval})")]
    TransactionTimeout { timeout: u64, interval: u64 },
    #[error("partition.assignment.strategy {0:?} does not keep co-partitioned topics together; use \"range\" (the default) or group.protocol = \"consumer\" with group.remote.assignor = \"range\"")]
    Assignor(String),
    #[error("group.remote.assignor {0:?} does not keep co-partitioned topics together; use \"range\"")]
    RemoteAssignor(String),
}

pub const fn default_num_stream_threads() -> usize {
    1
}
pub const fn default_eos_commit_interval_ms() -> u64 {
    100
}
pub const fn default_alos_commit_interval_ms() -> u64 {
    30_000
}
pub const fn default_transaction_timeout_ms() -> u64 {
    10_000
}
pub const fn default_repartition_purge_interval_ms() -> u64 {
    30_000
}
pub const fn default_buffered_records_per_partition() -> usize {
    1_000
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            application_id: "finstream".into(),
            bootstrap_servers: "localhost:9092".into(),
            processing_guarantee: ProcessingGuarantee::default(),
            commit_interval_ms: None,
            num_stream_threads: default_num_stream_threads(),
            state_dir: std::env::temp_dir().join("finstream"),
            max_task_idle_ms: 0,
            error_handling: ErrorHandling::default(),
            rocksdb_block_cache_bytes: state::default_block_cache_bytes(),
            rocksdb_write_buffer_bytes: state::default_write_buffer_bytes(),
            application_server: None,
            transaction_timeout_ms: None,
            buffered_records_per_partition: default_buffered_records_per_partition(),
            repartition_purge_interval_ms: default_repartition_purge_interval_ms(),
            partitioners: BTreeMap::new(),
            kafka: BTreeMap::new(),
        }
    }
}

impl StreamsConfig {
    pub fn commit_interval_ms(&self) -> u64 {
        self.commit_interval_ms.unwrap_or(match self.processing_guarantee {
            ProcessingGuarantee::ExactlyOnceV2 => default_eos_commit_interval_ms(),
            ProcessingGuarantee::AtLeastOnce => default_alos_commit_interval_ms(),
        })
    }
    pub fn transaction_timeout_ms(&self) -> u64 {
        self.transaction_timeout_ms.unwrap_or(default_transaction_timeout_ms())
    }
    /// Whether the group uses the KIP-848 `consumer` rebalance protocol (else the classic one).
    pub fn consumer_protocol(&self) -> bool {
        self.kafka.get("group.protocol").is_some_and(|p| p.eq_ignore_ascii_case("consumer"))
    }
    /// Refuses settings that would break the engine's guarantees.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(k) = self.kafka.keys().find(|k| PROTECTED_KAFKA_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::Protected(k.clone()));
        }
        if self.exactly_once() && self.transaction_timeout_ms() <= self.commit_interval_ms() {
            return Err(ConfigError::TransactionTimeout {
                timeout: self.transaction_timeout_ms(),
                interval: self.commit_interval_ms(),
            });
        }
        if let Some(s) = self.kafka.get("partition.assignment.strategy") {
            if s.split(',').any(|a| a.trim() != "range") {
                return Err(ConfigError::Assignor(s.clone()));
            }
        }
        if let Some(a) = self.kafka.get("group.remote.assignor") {
            if a != "range" {
                return Err(ConfigError::RemoteAssignor(a.clone()));
            }
        }
        Ok(())
    }
    pub fn exactly_once(&self) -> bool {
        self.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2
    }
    /// Directory of this application's local state.
    pub fn app_state_dir(&self) -> PathBuf {
        self.state_dir.join(&self.application_id)
    }
}

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
    /// librdkafka settings passed verbatim to every consumer and producer (security, timeouts).
    pub kafka: BTreeMap<String, String>,
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
    pub fn exactly_once(&self) -> bool {
        self.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2
    }
    /// Directory of this application's local state.
    pub fn app_state_dir(&self) -> PathBuf {
        self.state_dir.join(&self.application_id)
    }
}

//! finstream's engine API: Topology, Processor, ProcessorContext, state stores, windows and an
//! in-memory test driver. Nothing here talks to Kafka or RocksDB; the `runtime` crate runs the
//! same tasks against a Kafka cluster with RocksDB stores.

pub mod context;
pub mod cycle;
pub mod driver;
pub mod dsl;
pub mod examples;
mod input;
pub mod metrics;
pub mod murmur2;
pub mod partitioner;
pub mod processor;
pub mod record;
pub mod serde;
mod source;
pub mod store;
pub mod task;
pub mod time;
pub mod topology;
pub mod window;

pub use context::{GlobalStores, ProcessorContext, TaskId};
pub use cycle::{CycleError, FailPoint, LogError, Recovery, TaskSet, TxnLog};
pub use driver::{Crash, DriverConfig, TopologyTestDriver};
pub use dsl::StreamsBuilder;
pub use metrics::StreamsMetrics;
pub use partitioner::{PartitionPlan, Partitioner, PartitionerDecision, PartitionerDetector};
pub use processor::{ProcessError, Processor, PunctuationType};
pub use record::{Headers, OutRecord, RawRecord, Record, RecordMeta};
pub use serde::{BytesSerde, I64Serde, JsonSerde, Serde, SerdeError, StringSerde};
pub use source::SourceOptions;
pub use store::typed::{KvStoreDef, SessionStoreDef, StoreDef, WindowStoreDef};
pub use store::{BackendProvider, KeyValueStore, KvBackend, MemoryBackend, StoreError};
pub use task::{CommitPlan, ErrorHandling, Task, TaskConfig, TaskError};
pub use time::{EventTime, TaskClocks, TimestampExtractor};
pub use topology::{BuiltTopology, StoreSpec, Topology, TopologyError};
pub use window::calendar::{CalendarUnit, CalendarWindows};
pub use window::{EmitStrategy, TimeWindows, WindowStore, Windowed, WindowedAggregate};

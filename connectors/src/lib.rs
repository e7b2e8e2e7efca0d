//! finstream connectors.
//!
//! - [`generator`]: deterministic synthetic finance data (the core of `finstream generate`): users,
//!   profiles, accounts, budgets, goals, daily-life transactions, exchange rates, duplicates, late
//!   events and labelled fraud scenarios, as input [`Event`]s with topic, key and timestamp.
//! - [`produce`] and [`generate`]: those events produced to any Kafka cluster in the Confluent Avro
//!   wire format (`finstream generate`, and the demo's traffic).
//! - [`import`]: a CSV or JSON Lines file of transactions validated against the contract and
//!   produced to `transactions` (`finstream import`).
//! - [`reference`]: the independent reference model of the money rules (issue 4 and
//!   `docs/money-rules.md`) that the end-to-end test compares the processors with.

pub mod event;
pub mod generate;
pub mod generator;
pub mod import;
pub mod produce;
pub mod reference;

use std::path::{Path, PathBuf};

pub use event::{topics, Event};
pub use generate::{generate, start_of_day, EventSource, GenerateOptions, GenerateSummary};
pub use generator::{FraudLabel, FraudScenario, Generator, GeneratorConfig};
pub use produce::{EventProducer, KafkaTarget};
pub use reference::{compute, compute_in_order, ReferenceConfig, ReferenceOutput};

/// Why a connector stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("serializing for {topic} ({reason}): {message}")]
    Serialize { topic: String, reason: String, message: String },
    #[error("{0}")]
    Delivery(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Config(String),
}

impl ConnectorError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ConnectorError::Io { path: path.to_path_buf(), source }
    }
}

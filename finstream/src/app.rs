//! The finance application on the engine: the money processors' topology with its registry, and
//! the embedded Kafka-protocol cluster the demo and the end-to-end tests run it on.

use std::sync::Arc;

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use runtime::topics::TopicPlan;
use runtime::KafkaStreams;
use schemas::registry::{EmbeddedRegistry, SchemaRegistry};
use streams::{BuiltTopology, StreamsMetrics};

use crate::config::AppConfig;

/// The finance topology (balances, budgets, goals, notifications) as a Kafka Streams instance.
pub fn finance_streams(
    config: &AppConfig,
    registry: Arc<dyn SchemaRegistry>,
    metrics: StreamsMetrics,
) -> anyhow::Result<KafkaStreams> {
    let topology = processors::finance_topology(&config.finance, registry).context("building the topology")?;
    KafkaStreams::new(topology, config.streams.clone(), metrics).context("creating the streams instance")
}

/// The finance topology as `config` builds it, for what needs its shape but runs nothing
/// (`finstream topology`, `finstream reset`): serdes never reach the registry while building,
/// so an in-memory one stands in and no registry needs to be up.
pub fn built_topology(config: &AppConfig) -> anyhow::Result<Arc<BuiltTopology>> {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let t = processors::finance_topology(&config.finance, registry).context("building the topology")?;
    t.build(&config.streams.application_id).context("building the topology")
}

/// librdkafka's mock cluster: the real Kafka protocol on a loopback TCP port, in process. The
/// engine only ever sees its `bootstrap_servers`.
pub type EmbeddedCluster = MockCluster<'static, DefaultProducerContext>;

/// Starts an embedded cluster. Topics come later from [`create_topics`], once the topology
/// (which needs the registry, which lives in a topic) says which ones exist.
pub fn embedded_cluster() -> anyhow::Result<EmbeddedCluster> {
    MockCluster::new(1).context("starting the embedded Kafka-protocol cluster")
}

/// Creates every topic of `plan` with `partitions` partitions (changelogs and the commit log
/// must match their tasks' count). The mock has no CreateTopics, so this uses its own API.
pub fn create_topics(mock: &EmbeddedCluster, plan: &[TopicPlan], partitions: i32) -> anyhow::Result<()> {
    for t in plan {
        mock.create_topic(&t.name, partitions, 1).with_context(|| format!("creating {}", t.name))?;
    }
    Ok(())
}

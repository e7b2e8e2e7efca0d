//! Internal topics: repartition topics and compacted changelogs, created with the partition
//! count of the inputs they pair with. Brokers that refuse CreateTopics (or where topics exist
//! already) are tolerated: the partition counts are then checked from metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use streams::BuiltTopology;

use crate::config::StreamsConfig;
use crate::kafka::client_config;
use crate::RuntimeError;

/// Partition counts of existing topics.
pub(crate) fn partition_counts(config: &StreamsConfig) -> Result<BTreeMap<String, i32>, RuntimeError> {
    let consumer: BaseConsumer = client_config(config).create()?;
    let md = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}

pub(crate) fn ensure_internal_topics(config: &StreamsConfig, topology: &BuiltTopology) -> Result<(), RuntimeError> {
    let existing = partition_counts(config)?;
    let user_max = topology
        .subtopologies
        .iter()
        .flat_map(|s| s.source_topics.iter())
        .filter(|t| !topology.repartition_topics.contains(t))
        .filter_map(|t| existing.get(t).copied())
        .max()
        .unwrap_or(1);
    let mut wanted: Vec<(String, i32, bool)> = Vec::new();
    for t in &topology.repartition_topics {
        wanted.push((t.clone(), user_max, false));
    }
    if config.exactly_once() {
        wanted.push((crate::marker::commit_topic(&config.application_id), user_max, true));
    }
    if config.application_server.is_some() {
        wanted.push((crate::hosts::hosts_topic(&config.application_id), 1, true));
    }
    for sub in &topology.subtopologies {
        let parts = sub.source_topics.iter().filter_map(|t| existing.get(t).copied()).max().unwrap_or(user_max);
        for store in &sub.stores {
            if topology.store_spec(store).map(|s| s.logged).unwrap_or(false) {
                wanted.push((topology.changelog_topic(store), parts, true));
            }
        }
    }
    let missing: Vec<(String, i32, bool)> =
        wanted.iter().filter(|(t, _, _)| !existing.contains_key(t)).cloned().collect();
    create_topics(config, &missing)?;
    let after = partition_counts(config)?;
    for (t, p, _) in &wanted {
        if let Some(actual) = after.get(t) {
            if actual != p {
                tracing::warn!(topic = %t, expected = p, actual, "internal topic partition count differs from its inputs");
            }
        }
    }
    Ok(())
}

/// A topic the application reads or writes, as an operator (or an embedded cluster) creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPlan {
    pub name: String,
    /// Changelogs, the commit log and global tables are compacted: only the latest per key matters.
    pub compacted: bool,
}

/// Every topic `topology` touches under `config`: inputs, outputs, dead-letter topics, global
/// tables, repartition topics, changelogs, (with exactly-once) the commit log and (with an
/// `application_server`) the query hosts topic. Sorted and
/// without duplicates.
pub fn plan(config: &StreamsConfig, topology: &BuiltTopology) -> Vec<TopicPlan> {
    let mut all: BTreeMap<String, bool> = BTreeMap::new();
    for sub in &topology.subtopologies {
        for t in &sub.source_topics {
            all.insert(t.clone(), false);
            all.insert(streams::task::dead_letter_topic(t), false);
        }
        for t in &sub.sink_topics {
            all.entry(t.clone()).or_insert(false);
        }
    }
    for g in &topology.globals {
        all.insert(g.topic.clone(), true);
    }
    for (_, t) in topology.changelog_topics() {
        all.insert(t, true);
    }
    if config.exactly_once() {
        all.insert(crate::marker::commit_topic(&config.application_id), true);
    }
    if config.application_server.is_some() {
        all.insert(crate::hosts::hosts_topic(&config.application_id), true);
    }
    all.into_iter().map(|(name, compacted)| TopicPlan { name, compacted }).collect()
}

/// Creates a compacted topic unless it exists (the registry's `_schemas`).
pub(crate) fn create_compacted(config: &StreamsConfig, topic: &str, partitions: i32) -> Result<(), RuntimeError> {
    if partition_counts(config)?.contains_key(topic) {
        return Ok(());
    }
    create_topics(config, &[(topic.to_string(), partitions, true)])
}

/// Asks the broker to create `(name, partitions, compacted)` topics; a broker that refuses is
/// logged, not fatal, because auto-creation may still provide them.
fn create_topics(config: &StreamsConfig, topics: &[(String, i32, bool)]) -> Result<(), RuntimeError> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config(config).create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, p, compact)| {
            let nt = NewTopic::new(t, *p, TopicReplication::Fixed(-1));
            if *compact {
                nt.set("cleanup.policy", "compact")
            } else {
                nt
            }
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    match futures_lite_block_on(admin.create_topics(&new, &opts)) {
        Ok(results) => {
            for r in results {
                if let Err((topic, code)) = r {
                    tracing::warn!(%topic, error = %code, "could not create topic; relying on the broker to auto-create it");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "CreateTopics not available; relying on broker auto-creation"),
    }
    Ok(())
}

/// The admin API is async; this runs one future to completion on the calling thread without
/// pulling a runtime into the engine.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

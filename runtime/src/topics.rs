//! Topics: the checks made before a stream thread subscribes, and the internal topics the engine
//! creates (repartition topics, compacted changelogs, dead-letter topics, the query hosts topic).
//!
//! Internal topics exist before the consumer subscribes, with the partition count of the
//! sub-topology that reads them (co-partitioning); a source topic that is missing, or a
//! sub-topology whose topics have different partition counts, is refused at start with a
//! message naming the topics, never discovered later as silently split state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use streams::BuiltTopology;

use crate::config::StreamsConfig;
use crate::kafka::client_config;
use crate::RuntimeError;

const META_TIMEOUT: Duration = Duration::from_secs(10);
/// How long created topics may take to show in metadata.
const CREATE_WAIT: Duration = Duration::from_secs(30);

/// Partition counts of existing topics.
pub(crate) fn partition_counts(config: &StreamsConfig) -> Result<BTreeMap<String, i32>, RuntimeError> {
    let consumer: BaseConsumer = client_config(config).create()?;
    let md = consumer.fetch_metadata(None, META_TIMEOUT)?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}

/// Refuses exactly-once on a broker that cannot provide it: librdkafka's mock cluster shows
/// aborted records to `read_committed` readers and drops transactional offset commits
/// (`runtime/tests/broker_semantics.rs` pins this), so on it only at-least-once is honest.
pub(crate) fn check_broker(config: &StreamsConfig) -> Result<(), RuntimeError> {
    if !config.exactly_once() {
        return Ok(());
    }
    let consumer: BaseConsumer = client_config(config).create()?;
    let id = consumer.client().fetch_cluster_id(META_TIMEOUT);
    if id.as_deref().is_some_and(is_mock_cluster_id) {
        return Err(RuntimeError::Broker(
            "processing_guarantee = exactly_once_v2 needs a broker that isolates transactions; this is librdkafka's \
             mock cluster, which shows aborted records and drops transactional offset commits. Use \
             processing_guarantee = \"at_least_once\" on it, or a real Kafka cluster"
                .into(),
        ));
    }
    Ok(())
}

/// librdkafka names its mock clusters `mockCluster<hex>`.
pub fn is_mock_cluster_id(id: &str) -> bool {
    id.starts_with("mockCluster")
}

/// Refuses missing source topics and sub-topologies whose topics disagree on their partition
/// count, before anything else reads them.
pub(crate) fn check_sources(topology: &BuiltTopology, existing: &BTreeMap<String, i32>) -> Result<(), RuntimeError> {
    subtopology_partitions(topology, existing).map(|_| ())
}

/// A topic the engine creates, with its partition count, whether it is compacted and whether it
/// keeps its records until the engine purges them (repartition topics).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    name: String,
    partitions: i32,
    compacted: bool,
    purged: bool,
}

/// The partition count of each sub-topology: that of its user source topics (which must agree),
/// or for one fed only by repartition topics the largest user topic's (as Kafka Streams does).
fn subtopology_partitions(
    topology: &BuiltTopology,
    existing: &BTreeMap<String, i32>,
) -> Result<Vec<i32>, RuntimeError> {
    let user = |t: &String| !topology.repartition_topics.contains(t);
    let mut missing = Vec::new();
    let mut counts = Vec::new();
    for s in &topology.subtopologies {
        let mut seen: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
        for t in s.source_topics.iter().filter(|t| user(t)) {
            match existing.get(t) {
                Some(n) => seen.entry(*n).or_default().push(t),
                None => missing.push(t.clone()),
            }
        }
        if seen.len() > 1 {
            return Err(RuntimeError::Topics(format!(
                "the topics of sub-topology {} must have the same number of partitions (they are joined by key), \
                 but they have {seen:?}; recreate them with one partition count",
                s.id
            )));
        }
        counts.push(seen.keys().next().copied());
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(RuntimeError::Topics(format!(
            "source topics {missing:?} do not exist; create them (with the partition count of the application's \
             other inputs) before starting"
        )));
    }
    let max = counts.iter().flatten().max().copied().unwrap_or(1);
    Ok(counts.into_iter().map(|c| c.unwrap_or(max)).collect())
}

/// Every internal topic `topology` needs under `config`, with its partition count.
fn wanted(
    config: &StreamsConfig,
    topology: &BuiltTopology,
    existing: &BTreeMap<String, i32>,
) -> Result<Vec<Wanted>, RuntimeError> {
    let counts = subtopology_partitions(topology, existing)?;
    let mut wanted = Vec::new();
    for (s, &n) in topology.subtopologies.iter().zip(&counts) {
        for t in &s.source_topics {
            if topology.repartition_topics.contains(t) {
                wanted.push(Wanted { name: t.clone(), partitions: n, compacted: false, purged: true });
            }
            // Re-placed records are dead-lettered to their original topic's DLQ.
            if !topology.placement_topics.contains(t) {
                wanted.push(Wanted {
                    name: streams::task::dead_letter_topic(t),
                    partitions: n,
                    compacted: false,
                    purged: false,
                });
            }
        }
        for store in &s.stores {
            if topology.store_spec(store).is_some_and(|s| s.logged) {
                wanted.push(Wanted {
                    name: topology.changelog_topic(store),
                    partitions: n,
                    compacted: true,
                    purged: false,
                });
            }
        }
    }
    if config.application_server.is_some() {
        wanted.push(Wanted {
            name: crate::hosts::hosts_topic(&config.application_id),
            partitions: 1,
            compacted: true,
            purged: false,
        });
    }
    wanted.sort_by(|a, b| a.name.cmp(&b.name));
    wanted.dedup_by(|a, b| a.name == b.name);
    Ok(wanted)
}

/// Creates the missing internal topics, waits until metadata shows them, and refuses internal
/// topics whose partition count no longer matches their sub-topology.
pub(crate) fn ensure_internal_topics(config: &StreamsConfig, topology: &BuiltTopology) -> Result<(), RuntimeError> {
    let existing = partition_counts(config)?;
    let wanted = wanted(config, topology, &existing)?;
    for w in &wanted {
        if let Some(&actual) = existing.get(&w.name) {
            // Dead-letter topics are not read by key: any count will do.
            if actual != w.partitions && !w.name.ends_with("-dlq") {
                return Err(RuntimeError::Topics(format!(
                    "internal topic {} has {actual} partitions but its sub-topology has {}; delete it (finstream reset) \
                     so it is created again",
                    w.name, w.partitions
                )));
            }
        }
    }
    let missing: Vec<&Wanted> = wanted.iter().filter(|w| !existing.contains_key(&w.name)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    create_topics(config, &missing)?;
    let deadline = Instant::now() + CREATE_WAIT;
    loop {
        let now = partition_counts(config)?;
        let absent: Vec<&str> =
            missing.iter().filter(|w| !now.contains_key(&w.name)).map(|w| w.name.as_str()).collect();
        if absent.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::Topics(format!("created topics {absent:?} did not appear within 30 s")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A topic the application reads or writes, as an operator (or an embedded cluster) creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPlan {
    pub name: String,
    /// Changelogs, global tables and the hosts topic are compacted: only the latest per key matters.
    pub compacted: bool,
    /// Repartition and placement topics keep their records without time limit (`retention.ms=-1`)
    /// until the engine purges what was committed: their records carry event time, however old.
    pub purged: bool,
}

/// Every topic `topology` touches under `config`: inputs, outputs, dead-letter topics, global
/// tables, repartition and placement topics, changelogs, the partitioner decisions and (with an
/// `application_server`) the query hosts topic. Sorted and without duplicates.
pub fn plan(config: &StreamsConfig, topology: &BuiltTopology) -> Vec<TopicPlan> {
    let mut all: BTreeMap<String, bool> = BTreeMap::new();
    for sub in &topology.subtopologies {
        for t in &sub.source_topics {
            all.insert(t.clone(), false);
            if !topology.placement_topics.contains(t) {
                all.insert(streams::task::dead_letter_topic(t), false);
            }
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
    if config.application_server.is_some() {
        all.insert(crate::hosts::hosts_topic(&config.application_id), true);
    }
    all.insert(crate::partitioning::partitioners_topic(&config.application_id), false);
    all.into_iter()
        .map(|(name, compacted)| {
            let purged = topology.repartition_topics.contains(&name);
            TopicPlan { name, compacted, purged }
        })
        .collect()
}

/// Creates the topics of `plan` that do not exist yet, `partitions` each (the set-up an operator
/// does before the first start; the embedded demo and `finstream demo --bootstrap-servers` use it).
pub fn create_planned(config: &StreamsConfig, plan: &[TopicPlan], partitions: i32) -> Result<(), RuntimeError> {
    let existing = partition_counts(config)?;
    let missing: Vec<Wanted> = plan
        .iter()
        .filter(|t| !existing.contains_key(&t.name))
        .map(|t| Wanted { name: t.name.clone(), partitions, compacted: t.compacted, purged: t.purged })
        .collect();
    create_topics(config, &missing.iter().collect::<Vec<_>>())
}

/// Creates a compacted topic unless it exists (the registry's `_schemas`).
pub(crate) fn create_compacted(config: &StreamsConfig, topic: &str, partitions: i32) -> Result<(), RuntimeError> {
    if partition_counts(config)?.contains_key(topic) {
        return Ok(());
    }
    create_topics(config, &[&Wanted { name: topic.to_string(), partitions, compacted: true, purged: false }])
}

/// CreateTopics; a topic created meanwhile by another instance is fine, any other refusal is
/// an error (the engine cannot run without its internal topics).
fn create_topics(config: &StreamsConfig, topics: &[&Wanted]) -> Result<(), RuntimeError> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config(config).create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|w| {
            let nt = NewTopic::new(&w.name, w.partitions, TopicReplication::Fixed(-1));
            if w.compacted {
                nt.set("cleanup.policy", "compact")
            } else if w.purged {
                // As Kafka Streams does: records stay until the engine purges what its tasks
                // committed (DeleteRecords). They carry event time, so a time-based retention
                // would delete a backfill's records (last year's statement) before they are read.
                nt.set("retention.ms", "-1")
            } else {
                nt
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(META_TIMEOUT)).request_timeout(Some(META_TIMEOUT));
    let results = block_on(admin.create_topics(&new, &opts))
        .map_err(|e| RuntimeError::Topics(format!("CreateTopics failed: {e}")))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(RuntimeError::Topics(format!("could not create {topic}: {code}"))),
        }
    }
    Ok(())
}

/// The admin API is async; this runs one future to completion on the calling thread without
/// pulling a runtime into the engine.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
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

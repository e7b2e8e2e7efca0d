//! Commit markers: exactly-once that does not depend on the broker hiding aborted data.
//!
//! At every exactly-once commit, after a task's outputs and changelog records are acknowledged
//! and before the transaction commits, the task writes a marker to `<application.id>-commits`
//! (compacted, keyed by task): the input positions it committed, and how far its changelog and
//! output partitions had got. On Apache Kafka the marker is part of the transaction, so it is
//! visible exactly when the transaction committed and nothing changes. On a broker that does
//! not isolate transactions (librdkafka's mock cluster shows aborted records and drops
//! transactional offset commits), the last visible marker is still a consistent cut, and a
//! recovering task:
//! - restores each store only up to the marker's changelog end, and re-writes the keys that an
//!   unfinished attempt left after it with their committed values;
//! - resumes input from the marker's positions (skipping records before them);
//! - finds the outputs an unfinished attempt already wrote (by their deterministic
//!   `finstream.output.id`) after the marker's output ends, and does not write them again.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Headers as _;
use rdkafka::Message;
use serde::{Deserialize, Serialize};
use streams::record::header;
use streams::{BuiltTopology, TaskId};

use crate::restore::{consume_to_end, restore_consumer};
use crate::{RuntimeError, StreamsConfig};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Next offset to process per input topic (at the task's partition).
    pub positions: BTreeMap<String, i64>,
    /// Per store: changelog offset up to which records belong to committed work.
    pub changelog_ends: BTreeMap<String, i64>,
    /// Per `topic:partition` the task writes to: offset after which any record carrying one of
    /// this task's output ids was written by an unfinished attempt.
    pub output_ends: BTreeMap<String, i64>,
    /// Output ids an unfinished attempt wrote that have not been regenerated yet: they stay
    /// suppressed across further crashes until the task reaches them again.
    #[serde(default)]
    pub pending_ids: Vec<String>,
}

pub fn commit_topic(app: &str) -> String {
    format!("{app}-commits")
}

/// A task's key in the commit topic, from its source topics (explicit names, not positions).
pub fn task_key(topology: &BuiltTopology, id: TaskId) -> String {
    format!("{}#{}", topology.subtopologies[id.subtopology].source_topics.join(","), id.partition)
}

pub fn tp_key(topic: &str, partition: i32) -> String {
    format!("{topic}:{partition}")
}

const META_TIMEOUT: Duration = Duration::from_secs(10);

/// Number of partitions of `topic`, if it exists.
pub fn partitions_of<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str) -> Option<i32> {
    let md = consumer.fetch_metadata(Some(topic), META_TIMEOUT).ok()?;
    md.topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .filter(|n| *n > 0)
}

/// The latest marker of a task, if it ever committed.
pub fn read_latest(
    config: &StreamsConfig,
    topology: &BuiltTopology,
    id: TaskId,
) -> Result<Option<Marker>, RuntimeError> {
    let consumer = restore_consumer(config, "markers")?;
    let topic = commit_topic(&config.application_id);
    let Some(n) = partitions_of(&consumer, &topic) else { return Ok(None) };
    let key = task_key(topology, id);
    let mut latest = None;
    consume_to_end(&consumer, &[(topic, id.partition % n, 0)], |m| {
        if m.key() == Some(key.as_bytes()) {
            if let Some(v) = m.payload() {
                latest =
                    Some(serde_json::from_slice(v).map_err(|e| RuntimeError::Restore(format!("corrupt marker: {e}")))?);
            }
        }
        Ok(())
    })?;
    Ok(latest)
}

/// Whether an output id was produced by task `id` (whose inputs are `inputs`).
fn owned_by(output_id: &str, id: TaskId, inputs: &[String]) -> bool {
    let task = id.to_string();
    let mut parts = output_id.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some("p" | "i"), Some(t)) => t == task,
        (Some(topic), Some(partition)) => {
            partition.parse::<i32>().ok() == Some(id.partition) && inputs.iter().any(|i| i == topic)
        }
        _ => false,
    }
}

/// What an unfinished attempt of a task already wrote to its output partitions.
#[derive(Debug, Default)]
pub struct Written {
    pub ids: HashSet<String>,
    /// New output ends: each scanned partition's end at scan time.
    pub ends: BTreeMap<String, i64>,
}

/// Scans the task's output partitions after `marker.output_ends` for records carrying its ids.
pub fn scan_outputs(
    config: &StreamsConfig,
    topology: &BuiltTopology,
    id: TaskId,
    marker: Option<&Marker>,
) -> Result<Written, RuntimeError> {
    let consumer = restore_consumer(config, "scan")?;
    let sub = &topology.subtopologies[id.subtopology];
    let mut topics: Vec<String> = sub.sink_topics.clone();
    topics.extend(sub.source_topics.iter().map(|t| format!("{t}-dlq")));
    let mut plan = Vec::new();
    let mut written = Written::default();
    for t in topics {
        let Some(n) = partitions_of(&consumer, &t) else { continue };
        for p in 0..n {
            let key = tp_key(&t, p);
            let from = marker.and_then(|m| m.output_ends.get(&key)).copied().unwrap_or(0);
            let (_, high) = consumer.fetch_watermarks(&t, p, META_TIMEOUT)?;
            written.ends.insert(key, high.max(from));
            plan.push((t.clone(), p, from));
        }
    }
    let inputs = sub.source_topics.clone();
    consume_to_end(&consumer, &plan, |m| {
        if let Some(h) = m.headers() {
            for hdr in h.iter() {
                if hdr.key == header::OUTPUT_ID {
                    if let Some(v) = hdr.value.and_then(|v| std::str::from_utf8(v).ok()) {
                        if owned_by(v, id, &inputs) {
                            written.ids.insert(v.to_string());
                        }
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_ids_belong_to_the_task_that_read_their_input() {
        let id = TaskId { subtopology: 1, partition: 3 };
        let inputs = vec!["app-by-user-repartition".to_string()];
        assert!(owned_by("app-by-user-repartition/3/17/0", id, &inputs));
        assert!(!owned_by("app-by-user-repartition/2/17/0", id, &inputs));
        assert!(!owned_by("transactions/3/17/0", id, &inputs));
        assert!(owned_by("p/1_3/4/1000/0", id, &inputs));
        assert!(!owned_by("p/0_3/4/1000/0", id, &inputs));
    }
}

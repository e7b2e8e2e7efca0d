//! `finstream reset`, like `kafka-streams-application-reset`: makes the next start of the
//! application reprocess its inputs from the beginning with empty state. It deletes
//! - the local state directory (`<state_dir>/<application_id>`),
//! - the internal topics: changelogs, repartition topics (and their dead-letter topics), and the
//!   commit log — the topology's plan says which; only those that exist are touched,
//! - the consumer group's committed offsets: DeleteGroups, or where the broker does not offer it,
//!   every input partition's committed offset set back to its beginning (what the Java tool's
//!   `--to-earliest` does).
//!
//! Input and output topics are never touched. The application must be stopped everywhere first:
//! a group with live members refuses both the deletion and the offset commit.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use streams::BuiltTopology;

use crate::config::AppConfig;

const TIMEOUT: Duration = Duration::from_secs(15);

/// What a reset would delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPlan {
    pub state_dir: PathBuf,
    /// Internal topics of the topology that exist on the cluster.
    pub internal_topics: Vec<String>,
    /// The consumer group (the application id).
    pub group: String,
    /// Input topics whose committed offsets go back to the beginning if the group cannot be
    /// deleted.
    pub input_topics: Vec<String>,
}

/// How the committed offsets were removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsOutcome {
    /// DeleteGroups succeeded.
    GroupDeleted,
    /// The broker refused DeleteGroups (`reason`); the group's offsets were committed back to each
    /// input partition's beginning instead.
    RewoundToEarliest { partitions: usize, delete_groups_error: String },
    /// The group had no committed offsets.
    NothingCommitted,
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetReport {
    pub state_deleted: bool,
    pub topics_deleted: Vec<String>,
    /// Topics the broker refused to delete, with its error.
    pub topics_failed: Vec<(String, String)>,
    pub offsets: OffsetsOutcome,
}

/// Internal topics a topology may have created under `application_id`: changelogs, repartition
/// topics and their dead-letter topics, and the commit log that earlier versions (commit
/// markers for the mock cluster) created.
pub fn internal_topics(app_id: &str, topology: &BuiltTopology) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = topology.changelog_topics().into_iter().map(|(_, t)| t).collect();
    for t in &topology.repartition_topics {
        out.insert(t.clone());
        out.insert(streams::task::dead_letter_topic(t));
    }
    out.insert(format!("{app_id}-commits"));
    out.insert(runtime::partitioning::partitioners_topic(app_id));
    out
}

fn existing_topics(config: &AppConfig) -> anyhow::Result<BTreeSet<String>> {
    let consumer: BaseConsumer =
        runtime::client_config(&config.streams).create().context("creating a metadata client")?;
    let md = consumer.fetch_metadata(None, TIMEOUT).context("fetching cluster metadata")?;
    Ok(md.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name().to_string()).collect())
}

/// Looks at the cluster and says what [`execute`] would delete.
pub fn plan(config: &AppConfig) -> anyhow::Result<ResetPlan> {
    let topology = crate::app::built_topology(config)?;
    let existing = existing_topics(config)?;
    let internal = internal_topics(&config.streams.application_id, &topology);
    let repartition: BTreeSet<&String> = topology.repartition_topics.iter().collect();
    let inputs: BTreeSet<String> = topology
        .subtopologies
        .iter()
        .flat_map(|s| s.source_topics.iter())
        .filter(|t| !repartition.contains(t))
        .cloned()
        .collect();
    Ok(ResetPlan {
        state_dir: config.streams.app_state_dir(),
        internal_topics: internal.intersection(&existing).cloned().collect(),
        group: config.streams.application_id.clone(),
        input_topics: inputs.intersection(&existing).cloned().collect(),
    })
}

fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("admin runtime")?;
    Ok(rt.block_on(f))
}

/// Deletes what `plan` lists. Topic deletions that fail are reported, not fatal; the offsets must
/// be gone one way or the other, or this fails.
pub fn execute(config: &AppConfig, plan: &ResetPlan) -> anyhow::Result<ResetReport> {
    let state_deleted = plan.state_dir.exists();
    if state_deleted {
        std::fs::remove_dir_all(&plan.state_dir).with_context(|| format!("deleting {}", plan.state_dir.display()))?;
    }
    let admin: AdminClient<DefaultClientContext> =
        runtime::client_config(&config.streams).create().context("creating an admin client")?;
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let mut topics_deleted = Vec::new();
    let mut topics_failed = Vec::new();
    let mut timed_out = false;
    if !plan.internal_topics.is_empty() {
        let names: Vec<&str> = plan.internal_topics.iter().map(String::as_str).collect();
        match block_on(admin.delete_topics(&names, &opts))? {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(t) => topics_deleted.push(t),
                        Err((t, code)) => topics_failed.push((t, code.to_string())),
                    }
                }
            }
            Err(e) => {
                timed_out |= matches!(e, KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut));
                topics_failed.extend(plan.internal_topics.iter().map(|t| (t.clone(), e.to_string())));
            }
        }
    }
    let delete_groups_error = match block_on(admin.delete_groups(&[plan.group.as_str()], &opts))? {
        Ok(results) => match results.into_iter().next() {
            Some(Ok(_)) => None,
            Some(Err((_, code))) => Some(code.to_string()),
            None => Some("no result".to_string()),
        },
        Err(e) => Some(e.to_string()),
    };
    if timed_out {
        // librdkafka aborts the process (rd_kafka_q_destroy0 refcount assertion) when a client is
        // destroyed with an admin request the broker never answered, as librdkafka's mock cluster
        // does with DeleteTopics. The command exits right after, so the client is left alive.
        std::mem::forget(admin);
    }
    let offsets = match delete_groups_error {
        None => OffsetsOutcome::GroupDeleted,
        Some(error) => rewind(config, plan, error)?,
    };
    Ok(ResetReport { state_deleted, topics_deleted, topics_failed, offsets })
}

/// Commits each input partition's low watermark for the group, joining it as its only member:
/// this succeeds only while no instance of the application is running.
fn rewind(config: &AppConfig, plan: &ResetPlan, delete_groups_error: String) -> anyhow::Result<OffsetsOutcome> {
    let consumer: BaseConsumer = runtime::client_config(&config.streams)
        .set("group.id", &plan.group)
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a consumer in the application's group")?;
    let mut all = TopicPartitionList::new();
    let md = consumer.fetch_metadata(None, TIMEOUT).context("fetching metadata")?;
    for t in md.topics().iter().filter(|t| plan.input_topics.iter().any(|i| i == t.name())) {
        for p in t.partitions() {
            all.add_partition(t.name(), p.id());
        }
    }
    let committed = consumer.committed_offsets(all, TIMEOUT).context("reading the group's committed offsets")?;
    let mut rewind = TopicPartitionList::new();
    for e in committed.elements() {
        if let Offset::Offset(_) = e.offset() {
            let (low, _) = consumer
                .fetch_watermarks(e.topic(), e.partition(), TIMEOUT)
                .with_context(|| format!("watermarks of {}[{}]", e.topic(), e.partition()))?;
            rewind.add_partition_offset(e.topic(), e.partition(), Offset::Offset(low))?;
        }
    }
    if rewind.count() == 0 {
        return Ok(OffsetsOutcome::NothingCommitted);
    }
    // Commit as the group's only member: brokers (the mock among them) refuse commits from
    // outside the group, and a member that gets every input partition proves no instance runs.
    let inputs: Vec<&str> = plan.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&inputs).context("joining the application's group")?;
    let total = committed.count();
    let deadline = std::time::Instant::now() + 2 * TIMEOUT;
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) < total {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "DeleteGroups failed ({delete_groups_error}) and the group did not hand this reset all {total} input \
             partitions: is an instance still running?"
        );
        // Records are not looked at; polling only drives the group protocol.
        let _ = consumer.poll(Duration::from_millis(100));
    }
    consumer.commit(&rewind, CommitMode::Sync).with_context(|| {
        format!("DeleteGroups failed ({delete_groups_error}) and rewinding the group's offsets failed too; is an instance still running?")
    })?;
    consumer.unsubscribe();
    Ok(OffsetsOutcome::RewoundToEarliest { partitions: rewind.count(), delete_groups_error })
}

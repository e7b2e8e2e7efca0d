//! Each sub-topology's partitioner P and partition count, from its user source topics.
//!
//! The user source topics of one sub-topology are co-partitioned: a key must be on the same
//! partition of each, or a task would see one topic's records for a key and not the other's.
//! So their partitioners must agree (a [`DecisionBasis::Default`] decision, made without
//! evidence, takes whatever the others say), and so must their partition counts. Anything else
//! is refused at start with a message that names the topics and the fix. A sub-topology read
//! only through internal topics is the engine's own to place: murmur2.

use std::collections::BTreeMap;

use super::{DecisionBasis, Partitioner, PartitionerDecision};
use crate::topology::BuiltTopology;

/// Why an application cannot start with its inputs as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "topics {first} ({first_p}) and {second} ({second_p}) are co-partitioned (read by sub-topology {subtopology}, \
         which needs a key on the same partition of both) but their producers use different partitioners. Fix: \
         produce both with the same partitioner — e.g. configure the producers of {second} with {setting} — and \
         re-produce {second}, or set its partitioner explicitly if the detection was wrong"
    )]
    Disagree {
        subtopology: usize,
        first: String,
        first_p: Partitioner,
        second: String,
        second_p: Partitioner,
        setting: &'static str,
    },
    #[error(
        "topics {first} ({first_n} partitions) and {second} ({second_n} partitions) are co-partitioned (read by \
         sub-topology {subtopology}) but have different partition counts. Fix: give {second} {first_n} partitions \
         (kafka-topics --alter --partitions, then re-produce it) or {first} {second_n}"
    )]
    PartitionCount { subtopology: usize, first: String, first_n: i32, second: String, second_n: i32 },
    #[error("source topic {0} does not exist (no partition count known); create it before starting")]
    MissingTopic(String),
}

/// How one sub-topology's keys map to its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubPartitioning {
    pub partitioner: Partitioner,
    /// Partitions of its source topics = its task count.
    pub partitions: i32,
}

impl SubPartitioning {
    /// The task (partition) that owns `key`.
    pub fn partition(&self, key: &[u8]) -> i32 {
        self.partitioner.partition(key, self.partitions)
    }
}

/// The partitioning of every sub-topology of an application. Built once at start (from the
/// persisted decisions) and shared by every task and by query routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionPlan {
    subtopologies: Vec<Option<SubPartitioning>>,
}

impl PartitionPlan {
    /// Resolves each sub-topology's partitioner from `decisions` (per user source topic) and
    /// `partitions` (per topic; internal topics may be missing before they are created).
    pub fn new(
        topology: &BuiltTopology,
        decisions: &BTreeMap<String, PartitionerDecision>,
        partitions: &BTreeMap<String, i32>,
    ) -> Result<Self, PlanError> {
        let mut subtopologies = Vec::new();
        for sub in &topology.subtopologies {
            if sub.source_topics.is_empty() {
                subtopologies.push(None);
                continue;
            }
            let user: Vec<&String> = sub.source_topics.iter().filter(|t| !topology.is_internal_topic(t)).collect();
            let mut counted: Option<(&String, i32)> = None;
            for t in &user {
                let n = *partitions.get(*t).ok_or_else(|| PlanError::MissingTopic(t.to_string()))?;
                match counted {
                    Some((first, first_n)) if first_n != n => {
                        return Err(PlanError::PartitionCount {
                            subtopology: sub.id,
                            first: first.clone(),
                            first_n,
                            second: t.to_string(),
                            second_n: n,
                        })
                    }
                    None => counted = Some((t, n)),
                    _ => {}
                }
            }
            let internal_max = sub.source_topics.iter().filter_map(|t| partitions.get(t).copied()).max();
            let n = counted.map(|(_, n)| n).or(internal_max).unwrap_or(1);
            let mut chosen: Option<(&String, Partitioner)> = None;
            for t in &user {
                let Some(d) = decisions.get(*t).filter(|d| d.basis != DecisionBasis::Default) else { continue };
                match chosen {
                    Some((first, p)) if p != d.partitioner => {
                        return Err(PlanError::Disagree {
                            subtopology: sub.id,
                            first: first.clone(),
                            first_p: p,
                            second: t.to_string(),
                            second_p: d.partitioner,
                            setting: p.producer_setting(),
                        })
                    }
                    None => chosen = Some((t, d.partitioner)),
                    _ => {}
                }
            }
            let partitioner = chosen.map(|(_, p)| p).unwrap_or(Partitioner::Murmur2);
            subtopologies.push(Some(SubPartitioning { partitioner, partitions: n }));
        }
        Ok(PartitionPlan { subtopologies })
    }

    /// Every sub-topology with `partitioner` over `partitions` (tests, and deployments that set
    /// one partitioner for all inputs).
    pub fn uniform(topology: &BuiltTopology, partitioner: Partitioner, partitions: i32) -> Self {
        PartitionPlan {
            subtopologies: topology
                .subtopologies
                .iter()
                .map(|s| (!s.source_topics.is_empty()).then_some(SubPartitioning { partitioner, partitions }))
                .collect(),
        }
    }

    /// The partitioning of sub-topology `sub`.
    pub fn subtopology(&self, sub: usize) -> Option<&SubPartitioning> {
        self.subtopologies.get(sub).and_then(|s| s.as_ref())
    }

    /// The partition (= task) of sub-topology `sub` that owns `key`; for query routing, the
    /// key is the record key the store's sub-topology is partitioned by.
    pub fn partition_for(&self, sub: usize, key: &[u8]) -> Option<i32> {
        self.subtopology(sub).map(|s| s.partition(key))
    }
}

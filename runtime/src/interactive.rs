//! Interactive queries (Kafka Streams' `KafkaStreams.store()` / `queryMetadataForKey`): reads of
//! the committed local state of this instance, and where every task of the group lives.
//!
//! Reads go to the backends the stream threads register once a task is restored; those hold
//! only what a committed transaction applied (see `streams::store`), so a query never sees a
//! half-applied batch. Each store's batch is applied atomically, but two stores of one task are
//! applied one after the other: a query that reads two stores may see the second one a commit
//! behind the first.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use streams::store::{KvBackend, KvPairs};
use streams::{BuiltTopology, StreamsMetrics, TaskId};

use crate::{Instance, RuntimeError};

/// What one stream thread holds after its last rebalance.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadAssignment {
    /// Its tasks, each with whether it is still being created or restored.
    pub tasks: BTreeMap<TaskId, bool>,
    /// Between a revocation and the next assignment.
    pub rebalancing: bool,
}

/// One task as advertised to the other instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskAssignment {
    pub subtopology: usize,
    pub partition: i32,
    /// Assigned here but not restored yet: queries for it answer "try again".
    pub restoring: bool,
}

/// Where a store partition stands on this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Restored and running: its committed state can be read here.
    Active,
    /// Assigned here, being restored (or recreated after an abort).
    Restoring,
    /// Not assigned to this instance.
    NotAssigned,
}

/// A cheap, cloneable read handle on one instance's state, for query servers.
#[derive(Clone)]
pub struct StateHandle {
    pub(crate) instance: Arc<Instance>,
}

impl StateHandle {
    pub fn application_id(&self) -> &str {
        &self.instance.config.application_id
    }

    /// Stable id of this instance (also the key of its entry in the hosts topic).
    pub fn process_id(&self) -> &str {
        &self.instance.process_id
    }

    pub fn metrics(&self) -> &StreamsMetrics {
        &self.instance.metrics
    }

    /// The sub-topology whose tasks hold `store`.
    pub fn subtopology_of_store(&self, store: &str) -> Option<usize> {
        self.instance.topology.subtopologies.iter().position(|s| s.stores.iter().any(|n| n == store))
    }

    /// Partitions (= tasks) of the sub-topology holding `store`, known once the instance started.
    pub fn partitions_of_store(&self, store: &str) -> Option<i32> {
        let sub = self.subtopology_of_store(store)?;
        self.instance.partitions.read().expect("poisoned").get(&sub).copied()
    }

    /// The partition a key belongs to in `store`'s sub-topology: the sub-topology's partitioner
    /// (the one its producers use, see `runtime::partitioning`) over the serialized *record key*
    /// the sub-topology is partitioned by (which is not always the store key, e.g. `cash-flow` is
    /// keyed `user|month` but partitioned by user).
    pub fn partition_for(&self, store: &str, routing_key: &[u8]) -> Option<i32> {
        let sub = self.subtopology_of_store(store)?;
        let plan = self.instance.plan.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        plan.partition_for(sub, routing_key)
    }

    pub fn task_status(&self, store: &str, partition: i32) -> TaskStatus {
        let Some(sub) = self.subtopology_of_store(store) else { return TaskStatus::NotAssigned };
        let local = self.instance.local_stores.read().expect("poisoned");
        if local.contains_key(&(store.to_string(), partition, sub)) {
            return TaskStatus::Active;
        }
        drop(local);
        let id = TaskId { subtopology: sub, partition };
        let assigned = self.instance.assignments.read().expect("poisoned").values().any(|a| a.tasks.contains_key(&id));
        if assigned {
            TaskStatus::Restoring
        } else {
            TaskStatus::NotAssigned
        }
    }

    /// Committed value of `key` in `store`'s task `partition`; `Ok(None)` when the task is not
    /// active here, `Ok(Some(None))` when it is and the key is absent.
    pub fn get(&self, store: &str, partition: i32, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, RuntimeError> {
        let Some(sub) = self.subtopology_of_store(store) else { return Ok(None) };
        let backend =
            self.instance.local_stores.read().expect("poisoned").get(&(store.to_string(), partition, sub)).cloned();
        match backend {
            Some(b) => Ok(Some(b.get(key)?)),
            None => Ok(None),
        }
    }

    /// Committed entries of `store`'s task `partition` with `from <= key < to`, in key order;
    /// `None` when the task is not active here.
    pub fn range(
        &self,
        store: &str,
        partition: i32,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<Option<KvPairs>, RuntimeError> {
        let Some(sub) = self.subtopology_of_store(store) else { return Ok(None) };
        let backend =
            self.instance.local_stores.read().expect("poisoned").get(&(store.to_string(), partition, sub)).cloned();
        let Some(b) = backend else { return Ok(None) };
        let mut out = Vec::new();
        for item in b.range(from, to)? {
            out.push(item?);
        }
        Ok(Some(out))
    }

    /// The committed backend of `store`'s task `partition` (`None`: not active here), for
    /// readers that page through a store lazily instead of copying a range (the generic query
    /// endpoint). It stays readable after a revocation, as a copied range would be.
    pub fn committed_store(&self, store: &str, partition: i32) -> Option<Arc<dyn KvBackend>> {
        let sub = self.subtopology_of_store(store)?;
        self.instance.local_stores.read().expect("poisoned").get(&(store.to_string(), partition, sub)).cloned()
    }

    /// The backend of a global store (`None`: no such global store).
    pub fn global_store(&self, store: &str) -> Option<Arc<dyn KvBackend>> {
        self.instance.globals.get(store).cloned()
    }

    /// The topology this instance runs (its stores are what the query endpoint can read).
    pub fn topology(&self) -> &Arc<BuiltTopology> {
        &self.instance.topology
    }

    /// Value of `key` in a global store (`None`: no such store or key).
    pub fn global_get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, RuntimeError> {
        match self.instance.globals.get(store) {
            Some(b) => Ok(b.get(key)?),
            None => Ok(None),
        }
    }

    /// Tasks of this instance's threads, and a counter that changes whenever they change.
    pub fn assignment(&self) -> (u64, Vec<TaskAssignment>) {
        let generation = self.instance.assignment_generation.load(Ordering::SeqCst);
        let mut tasks: Vec<TaskAssignment> = Vec::new();
        for a in self.instance.assignments.read().expect("poisoned").values() {
            tasks.extend(a.tasks.iter().map(|(t, restoring)| TaskAssignment {
                subtopology: t.subtopology,
                partition: t.partition,
                restoring: *restoring || a.rebalancing,
            }));
        }
        tasks.sort();
        (generation, tasks)
    }

    /// Started, no thread failed, every thread had its first assignment and every assigned
    /// task is restored.
    pub fn is_ready(&self) -> bool {
        let i = &self.instance;
        if !i.started.load(Ordering::SeqCst)
            || i.shutdown.load(Ordering::SeqCst)
            || i.error.lock().expect("poisoned").is_some()
        {
            return false;
        }
        let a = i.assignments.read().expect("poisoned");
        a.len() >= i.config.num_stream_threads.max(1)
            && a.values().all(|t| !t.rebalancing && t.tasks.values().all(|restoring| !restoring))
    }

    /// Instances of the group that advertise a query URL (this one included once published),
    /// by process id. Empty without `application_server`.
    pub fn hosts(&self) -> BTreeMap<String, crate::hosts::HostInfo> {
        self.instance.hosts.live()
    }

    /// The advertised URL of the live instance whose assignment holds `(store's sub-topology,
    /// partition)`, with whether that task is still restoring there. When two instances claim a
    /// task (one of them has not published its revocation yet) the later assignment wins.
    pub fn host_for(&self, store: &str, partition: i32) -> Option<(crate::hosts::HostInfo, bool)> {
        let sub = self.subtopology_of_store(store)?;
        let mut best: Option<(crate::hosts::HostInfo, bool)> = None;
        for h in self.instance.hosts.live().into_values() {
            if let Some(t) = h.tasks.iter().find(|t| t.subtopology == sub && t.partition == partition) {
                let restoring = t.restoring;
                if best.as_ref().is_none_or(|(b, _)| h.assigned_at_ms > b.assigned_at_ms) {
                    best = Some((h.clone(), restoring));
                }
            }
        }
        best
    }
}

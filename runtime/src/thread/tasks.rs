//! A stream thread's tasks through their life: assigned (pending), restoring, active, closed;
//! and the rebalance callbacks that move them.
//!
//! Callbacks run inside `poll` on the stream thread itself. A revocation commits every task (one
//! transaction holds them all) before the partitions move, then closes the revoked ones; an
//! assignment only records the new partitions and pauses them: tasks are created, restored and
//! resumed by the main loop, a bounded slice at a time, so neither restore nor task creation
//! runs inside a callback or keeps the thread from polling. Both eager (`range`) and incremental
//! (the KIP-848 `consumer` protocol) rebalances go through the same bookkeeping: a revocation
//! lists exactly the partitions to give up.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use streams::{Task, TaskConfig, TaskId, TaskSet};

use super::ends::EndProbe;
use super::log::{KafkaLog, ThreadProducer};
use crate::failpoint::FailPoints;
use crate::interactive::ThreadAssignment;
use crate::restore::ChangelogReader;
use crate::{Instance, RuntimeError};

pub(crate) type TopicPartition = (String, i32);

pub(crate) struct ThreadState {
    pub instance: Arc<Instance>,
    pub thread_idx: usize,
    pub active: TaskSet,
    pub restoring: BTreeMap<TaskId, Task>,
    pub reader: ChangelogReader,
    pub producer: ThreadProducer,
    pub fail_points: FailPoints,
    /// Sub-topology of each input topic.
    pub sub_of_topic: HashMap<String, usize>,
    /// Partitions the group gave this thread.
    pub assigned: BTreeSet<TopicPartition>,
    /// Tasks whose partitions are assigned but which are not created yet.
    pub pending: BTreeSet<TaskId>,
    /// Input partitions paused (task not active yet, or its queue full).
    pub paused: BTreeSet<TopicPartition>,
    /// Positions input was rewound to: records polled before them are stale.
    pub rewound_to: HashMap<TopicPartition, i64>,
    /// Uncommitted work was aborted inside a callback: rewind before processing more.
    pub needs_rewind: bool,
    /// Between a revocation and the next assignment.
    pub rebalancing: bool,
    /// A failure inside a callback, surfaced by the main loop.
    pub error: Option<RuntimeError>,
    /// Asks the broker where an activated task's inputs start and end ([`EndProbe`]).
    pub probes: EndProbe,
    /// Active tasks whose probe has not answered yet, with when they were activated: their
    /// ends are unknown until it does (librdkafka's may be stale).
    pub unprobed: HashMap<TaskId, Instant>,
}

impl ThreadState {
    pub fn task_of(&self, topic: &str, partition: i32) -> Option<TaskId> {
        self.sub_of_topic.get(topic).map(|&subtopology| TaskId { subtopology, partition })
    }

    pub fn input_partitions(&self, id: TaskId) -> Vec<TopicPartition> {
        self.instance.topology.subtopologies[id.subtopology]
            .source_topics
            .iter()
            .map(|t| (t.clone(), id.partition))
            .collect()
    }

    /// Publishes what this thread holds (interactive queries, the hosts topic, readiness).
    pub fn publish_assignment(&self) {
        let mut tasks: BTreeMap<TaskId, bool> = BTreeMap::new();
        for t in self.active.iter() {
            tasks.insert(t.id(), false);
        }
        for id in self.restoring.keys().chain(self.pending.iter()) {
            tasks.insert(*id, true);
        }
        self.instance.set_assignment(self.thread_idx, Some(ThreadAssignment { tasks, rebalancing: self.rebalancing }));
    }

    /// Commits every task (before partitions move, or at shutdown). On failure the uncommitted
    /// work is aborted and the tasks that stay must rewind.
    pub fn commit_or_abort<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let mut log = KafkaLog::new(&mut self.producer, consumer, &self.fail_points);
        if let Err(e) = self.active.commit(&mut log) {
            tracing::warn!(thread = self.thread_idx, error = %e, "commit before rebalance failed; aborting");
            if let Err(e) = self.active.abort(&mut log) {
                tracing::warn!(error = %e, "abort failed");
            }
            self.needs_rewind = true;
        }
    }

    /// Closes task `id` wherever it is in its life and forgets its local stores.
    pub fn close_task(&mut self, id: TaskId) {
        self.pending.remove(&id);
        self.unprobed.remove(&id);
        if let Some(mut t) = self.active.remove(id) {
            t.close();
        }
        if self.restoring.remove(&id).is_some() {
            if let Err(e) = self.reader.remove(id) {
                tracing::warn!(task = %id, error = %e, "could not stop restoring");
            }
        }
        let mut local = self.instance.local_stores.write().unwrap_or_else(|e| e.into_inner());
        local.retain(|(_, p, sub), _| !(*p == id.partition && *sub == id.subtopology));
    }

    /// Creates the pending tasks whose input partitions are all assigned here and starts their
    /// restore; tasks with nothing to restore become active at once.
    pub fn create_pending<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        now_ms: i64,
    ) -> Result<(), RuntimeError> {
        let config = TaskConfig {
            errors: self.instance.config.error_handling,
            max_task_idle_ms: self.instance.config.max_task_idle_ms,
        };
        for id in std::mem::take(&mut self.pending) {
            let missing: Vec<TopicPartition> =
                self.input_partitions(id).into_iter().filter(|tp| !self.assigned.contains(tp)).collect();
            if !missing.is_empty() {
                return Err(RuntimeError::Assignment(format!(
                    "task {id} got only part of its co-partitioned inputs ({missing:?} went elsewhere); \
                     the assignor must keep partitions with the same number of a sub-topology's topics together"
                )));
            }
            let mut task = Task::new(
                self.instance.topology.clone(),
                id,
                self.instance.provider.as_ref(),
                self.instance.globals.clone(),
                self.instance.metrics.clone(),
                config.clone(),
            )?;
            if let Some(plan) = self.instance.plan.read().unwrap_or_else(|e| e.into_inner()).clone() {
                task.set_partitioning(plan);
            }
            if self.reader.register(&mut task)? {
                self.restoring.insert(id, task);
            } else {
                self.activate(consumer, task, now_ms)?;
            }
        }
        Ok(())
    }

    /// Moves restored tasks to active.
    pub fn restore_step<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        now_ms: i64,
        budget: Duration,
    ) -> Result<(), RuntimeError> {
        for id in self.reader.poll(&mut self.restoring, budget)? {
            if let Some(task) = self.restoring.remove(&id) {
                self.activate(consumer, task, now_ms)?;
            }
        }
        Ok(())
    }

    /// Initializes a restored task, makes its stores queryable and resumes its input.
    fn activate<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        mut task: Task,
        now_ms: i64,
    ) -> Result<(), RuntimeError> {
        let id = task.id();
        task.initialize(now_ms)?;
        {
            let mut local = self.instance.local_stores.write().unwrap_or_else(|e| e.into_inner());
            for store in &self.instance.topology.subtopologies[id.subtopology].stores {
                if let Some(b) = task.store_backend(store) {
                    local.insert((store.clone(), id.partition, id.subtopology), b);
                }
            }
        }
        self.active.insert(task);
        let activated = Instant::now();
        self.unprobed.insert(id, activated);
        self.probes.ask(id, activated, self.input_partitions(id));
        let resume: Vec<TopicPartition> =
            self.input_partitions(id).into_iter().filter(|tp| self.paused.contains(tp)).collect();
        self.resume(consumer, &resume)?;
        tracing::debug!(thread = self.thread_idx, task = %id, "task active");
        Ok(())
    }

    pub fn pause<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        parts: &[TopicPartition],
    ) -> Result<(), RuntimeError> {
        let tpl = tpl_of(parts.iter().filter(|tp| !self.paused.contains(*tp)));
        if tpl.count() > 0 {
            consumer.pause(&tpl)?;
            self.paused.extend(parts.iter().cloned());
        }
        Ok(())
    }

    pub fn resume<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        parts: &[TopicPartition],
    ) -> Result<(), RuntimeError> {
        let tpl = tpl_of(parts.iter().filter(|tp| self.paused.contains(*tp)));
        if tpl.count() > 0 {
            consumer.resume(&tpl)?;
            for tp in parts {
                self.paused.remove(tp);
            }
        }
        Ok(())
    }

    /// After an abort: every task is recreated from committed state (its processors too) and
    /// input rewinds to the committed offsets.
    pub fn rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), RuntimeError> {
        let ids: Vec<TaskId> = self.active.ids().into_iter().chain(self.restoring.keys().copied()).collect();
        for id in &ids {
            self.close_task(*id);
        }
        let parts: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        let committed = committed_offsets(consumer, &parts)?;
        let mut seek = TopicPartitionList::new();
        self.rewound_to.clear();
        for (tp, offset) in committed {
            if let Offset::Offset(o) = offset {
                self.rewound_to.insert(tp.clone(), o);
            }
            seek.add_partition_offset(&tp.0, tp.1, offset)?;
        }
        self.pause(consumer, &parts)?;
        if seek.count() > 0 {
            consumer.seek_partitions(seek, Duration::from_secs(10))?;
        }
        self.pending = parts.iter().filter_map(|(t, p)| self.task_of(t, *p)).collect();
        self.active.forget_partition_counts();
        self.needs_rewind = false;
        Ok(())
    }
}

/// Committed group offsets of `parts` (`Beginning` where none: `auto.offset.reset = earliest`).
pub(super) fn committed_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    parts: &[TopicPartition],
) -> Result<Vec<(TopicPartition, Offset)>, RuntimeError> {
    let mut attempt = 0;
    let committed = loop {
        match consumer.committed_offsets(tpl_of(parts.iter()), Duration::from_secs(10)) {
            Ok(c) => break c,
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "fetching committed offsets failed; retrying");
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok(committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            ((e.topic().to_string(), e.partition()), offset)
        })
        .collect())
}

pub(crate) fn tpl_of<'a>(parts: impl Iterator<Item = &'a TopicPartition>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    tpl
}

/// The consumer context: rebalance callbacks run inside `poll` on the stream thread.
pub(crate) struct ThreadContext {
    pub state: Arc<Mutex<Option<ThreadState>>>,
    /// Last stable offset of each assigned partition, from librdkafka's statistics: how far the
    /// broker holds committed records, for KIP-695's "wait for data the broker has". librdkafka
    /// keeps a partition's last value across a revocation, so a task takes these only after
    /// its [`EndProbe`] answered, and only to raise an end.
    pub stable_ends: Mutex<HashMap<TopicPartition, i64>>,
}

impl ClientContext for ThreadContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut ends = self.stable_ends.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, t) in statistics.topics {
            for (p, part) in t.partitions {
                if p >= 0 && part.ls_offset >= 0 {
                    ends.insert((topic.clone(), p), part.ls_offset);
                }
            }
        }
    }
}

impl ConsumerContext for ThreadContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = guard.as_mut() else { return };
        state.rebalancing = true;
        let revoked: Vec<TopicPartition> =
            tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        tracing::info!(
            thread = state.thread_idx,
            partitions = revoked.len(),
            lost = consumer.assignment_lost(),
            "partitions revoked"
        );
        if consumer.assignment_lost() {
            // The group moved on without us: our transaction cannot commit its offsets.
            let mut log = KafkaLog::new(&mut state.producer, consumer, &state.fail_points);
            if let Err(e) = state.active.abort(&mut log) {
                tracing::warn!(error = %e, "abort after lost assignment failed");
            }
            state.needs_rewind = true;
        } else {
            state.commit_or_abort(consumer);
        }
        let tasks: BTreeSet<TaskId> = revoked.iter().filter_map(|(t, p)| state.task_of(t, *p)).collect();
        for id in tasks {
            state.close_task(id);
        }
        for tp in &revoked {
            state.assigned.remove(tp);
            state.paused.remove(tp);
            state.rewound_to.remove(tp);
        }
        state.publish_assignment();
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let Some(state) = guard.as_mut() else { return };
                let added: Vec<TopicPartition> =
                    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
                tracing::info!(thread = state.thread_idx, partitions = added.len(), "partitions assigned");
                state.assigned.extend(added.iter().cloned());
                for (t, p) in &added {
                    if let Some(id) = state.task_of(t, *p) {
                        if !state.active.contains(id) && !state.restoring.contains_key(&id) {
                            state.pending.insert(id);
                        }
                    }
                }
                // Input waits until its task is restored.
                if let Err(e) = state.pause(consumer, &added) {
                    state.error = Some(e);
                }
                state.rebalancing = false;
                state.publish_assignment();
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

//! The commit cycle of a stream thread, in one place for the Kafka runtime and the test driver.
//!
//! A stream thread owns tasks and one connection to a log: a transactional producer on Kafka,
//! an in-memory log in [`crate::TopologyTestDriver`]. Between commits the tasks process records
//! and what they emit is sent into the open transaction. A commit then
//! 1. sends the rest of the tasks' outputs and, per task, one changelog record per dirty key;
//! 2. flushes: every record is acknowledged and the log says how far each partition got;
//! 3. adds the tasks' input offsets to the transaction (`send_offsets_to_transaction`);
//! 4. commits the transaction;
//! 5. applies each task's drained write cache to its local store, in one batch with the
//!    changelog offset reached.
//!
//! A failure before 4 leaves nothing visible: the transaction is aborted, uncommitted work is
//! dropped and input rewinds to the committed offsets (the caller recreates tasks and seeks).
//! A crash between 4 and 5 leaves a local store behind its changelog, which the next restore
//! replays. So local stores only ever hold committed data, and what a crash can cost is
//! replaying the changelog tail. The [`FailPoint`]s name the places between the steps, so tests
//! can crash exactly there (the driver in memory, the runtime by aborting its process).

use std::collections::{BTreeMap, HashMap};

use crate::context::TaskId;
use crate::murmur2::partition_for_key;
use crate::record::OutRecord;
use crate::task::{Task, TaskError};

/// Next offset after the last record each task wrote, per (task, topic, partition), since the
/// previous flush.
pub type Delivered = HashMap<(TaskId, String, i32), i64>;

/// Named points inside a commit where tests crash a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailPoint {
    /// Outputs and changelog records are acknowledged; the offsets are not in the transaction.
    AfterChangelogFlush,
    /// The input offsets are in the transaction; it is not committed.
    AfterSendOffsets,
    /// The transaction committed; no local store has applied its batch.
    AfterTransactionCommit,
}

impl FailPoint {
    pub const ALL: [FailPoint; 3] =
        [FailPoint::AfterChangelogFlush, FailPoint::AfterSendOffsets, FailPoint::AfterTransactionCommit];

    /// The name used by `FINSTREAM_FAIL_POINT` and in logs.
    pub fn name(self) -> &'static str {
        match self {
            FailPoint::AfterChangelogFlush => "after_changelog_flush",
            FailPoint::AfterSendOffsets => "after_send_offsets",
            FailPoint::AfterTransactionCommit => "after_transaction_commit",
        }
    }

    pub fn parse(name: &str) -> Option<FailPoint> {
        FailPoint::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What a log error means for the cycle, in librdkafka's terms.
pub trait LogError: std::error::Error + Send + Sync + 'static {
    /// The connection cannot go on (e.g. the producer was fenced): it must be recreated, or the
    /// thread stopped when another instance took over its identity.
    fn is_fatal(&self) -> bool;
    /// The same call may succeed if repeated (the log implementation has already retried).
    fn is_retriable(&self) -> bool;
    /// The open transaction must be aborted; work since the last commit is redone.
    fn txn_requires_abort(&self) -> bool;
}

/// The log a stream thread writes to (see the module docs for the order of calls).
pub trait TxnLog {
    type Error: LogError;

    /// Partition count of `topic`, `None` while it does not exist.
    fn partitions(&mut self, topic: &str) -> Result<Option<i32>, Self::Error>;
    /// Sends `record` (its partition already chosen) within the open transaction; `task` comes
    /// back in [`Delivered`].
    fn send(&mut self, task: TaskId, record: OutRecord) -> Result<(), Self::Error>;
    /// Waits until every record sent is acknowledged.
    fn flush(&mut self) -> Result<Delivered, Self::Error>;
    /// Called after the flush with each task's input positions and what was delivered; a log
    /// that needs commit markers writes them here (see `runtime::marker`).
    fn before_offsets(
        &mut self,
        _positions: &[(TaskId, BTreeMap<String, i64>)],
        _delivered: &Delivered,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Adds the next input offsets `(topic, partition, offset)` to the transaction (under
    /// at-least-once: remembers them for `commit`).
    fn send_offsets(&mut self, offsets: &[(String, i32, i64)]) -> Result<(), Self::Error>;
    /// Commits the transaction (or the offsets) and begins the next transaction.
    fn commit(&mut self) -> Result<(), Self::Error>;
    /// Aborts the open transaction and begins the next one.
    fn abort(&mut self) -> Result<(), Self::Error>;
    /// A test hook between the steps of a commit: an error here is a crash at `point`.
    fn fail_point(&mut self, _point: FailPoint) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Why a cycle step failed, and so what the owner of the thread must do.
#[derive(Debug, thiserror::Error)]
pub enum CycleError<E: LogError> {
    #[error("log: {0}")]
    Log(#[source] E),
    #[error(transparent)]
    Task(TaskError),
    /// The transaction committed but a local store could not apply its batch: the store is
    /// behind its changelog and must be restored.
    #[error("applying committed state: {0}")]
    Apply(#[source] TaskError),
}

/// The recovery a [`CycleError`] calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Abort, drop uncommitted work, recreate tasks from committed state and rewind input.
    Rewind,
    /// As `Rewind`, after a pause: the environment failed and may recover (a registry outage).
    RewindAfterPause,
    /// The log connection is unusable: recreate it, then rewind.
    RecreateLog,
    /// Nothing the thread can do (a permanent delivery failure, a bug, a fenced identity).
    Stop,
}

impl<E: LogError> CycleError<E> {
    pub fn recovery(&self) -> Recovery {
        match self {
            CycleError::Log(e) if e.is_fatal() => Recovery::RecreateLog,
            CycleError::Log(e) if e.txn_requires_abort() || e.is_retriable() => Recovery::RewindAfterPause,
            CycleError::Log(_) => Recovery::Stop,
            CycleError::Task(t) if t.is_retriable() => Recovery::RewindAfterPause,
            CycleError::Task(_) => Recovery::Stop,
            CycleError::Apply(_) => Recovery::Rewind,
        }
    }

    /// The `finstream_retries_total` reason label for errors that pause.
    pub fn retry_reason(&self) -> &str {
        match self {
            CycleError::Task(t) => t.retriable_reason().unwrap_or("task"),
            CycleError::Log(_) => "log",
            CycleError::Apply(_) => "apply",
        }
    }
}

/// The tasks of one stream thread and the state of the open transaction.
#[derive(Default)]
pub struct TaskSet {
    tasks: BTreeMap<TaskId, Task>,
    /// Records processed, or outputs sent, since the last commit: the transaction has content.
    pending: usize,
    /// Partition counts of output topics (`None`: not there yet; looked up again next cycle).
    partition_counts: HashMap<String, i32>,
}

impl TaskSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, task: Task) {
        self.tasks.insert(task.id(), task);
    }

    pub fn remove(&mut self, id: TaskId) -> Option<Task> {
        self.tasks.remove(&id)
    }

    pub fn get(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(&id)
    }

    pub fn get_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        self.tasks.get_mut(&id)
    }

    pub fn contains(&self, id: TaskId) -> bool {
        self.tasks.contains_key(&id)
    }

    pub fn ids(&self) -> Vec<TaskId> {
        self.tasks.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Task> {
        self.tasks.values_mut()
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Removes every task (they are closed by the caller or dropped after a crash).
    pub fn drain(&mut self) -> Vec<Task> {
        self.pending = 0;
        std::mem::take(&mut self.tasks).into_values().collect()
    }

    /// Whether the open transaction holds anything a commit must make durable.
    pub fn needs_commit(&self) -> bool {
        self.pending > 0 || self.tasks.values().any(|t| t.has_uncommitted())
    }

    /// Counts records processed outside [`TaskSet::process_task`] (e.g. by a driver loop).
    pub fn mark_processed(&mut self, n: usize) {
        self.pending += n;
    }

    /// Processes up to `budget` records of one task; returns how many.
    pub fn process_task(&mut self, id: TaskId, now_ms: i64, budget: usize) -> Result<usize, TaskError> {
        let Some(task) = self.tasks.get_mut(&id) else { return Ok(0) };
        let mut n = 0;
        while n < budget && task.process_next(now_ms)? {
            n += 1;
        }
        self.pending += n;
        Ok(n)
    }

    /// Fires due wall-clock punctuations of every task.
    pub fn punctuate_wall_clock(&mut self, now_ms: i64) -> Result<(), TaskError> {
        for task in self.tasks.values_mut() {
            task.punctuate_wall_clock(now_ms)?;
        }
        Ok(())
    }

    /// Sends what the tasks emitted into the open transaction. Keyed records without a partition
    /// go where the Java client's murmur2 puts their key, so every client reading the output agrees.
    pub fn send_outputs<L: TxnLog>(&mut self, log: &mut L) -> Result<(), CycleError<L::Error>> {
        for (id, task) in self.tasks.iter_mut() {
            for mut out in task.take_output() {
                if out.partition.is_none() {
                    if let Some(key) = &out.key {
                        let n = match self.partition_counts.get(&out.topic) {
                            Some(n) => Some(*n),
                            None => {
                                let n = log.partitions(&out.topic).map_err(CycleError::Log)?;
                                if let Some(n) = n {
                                    self.partition_counts.insert(out.topic.clone(), n);
                                }
                                n
                            }
                        };
                        out.partition = n.map(|n| partition_for_key(key, n));
                    }
                }
                log.send(*id, out).map_err(CycleError::Log)?;
                self.pending += 1;
            }
        }
        Ok(())
    }

    /// Commits every task in one transaction (steps 1–5 of the module docs). Returns whether
    /// there was anything to commit.
    pub fn commit<L: TxnLog>(&mut self, log: &mut L) -> Result<bool, CycleError<L::Error>> {
        if !self.needs_commit() {
            return Ok(false);
        }
        self.send_outputs(log)?;
        let mut offsets = Vec::new();
        let mut positions = Vec::new();
        for (id, task) in self.tasks.iter_mut() {
            let plan = task.prepare_commit();
            for rec in plan.changelog {
                log.send(*id, rec).map_err(CycleError::Log)?;
            }
            positions.push((*id, plan.offsets.iter().map(|(t, _, o)| (t.clone(), *o)).collect()));
            offsets.extend(plan.offsets);
        }
        let delivered = log.flush().map_err(CycleError::Log)?;
        log.fail_point(FailPoint::AfterChangelogFlush).map_err(CycleError::Log)?;
        log.before_offsets(&positions, &delivered).map_err(CycleError::Log)?;
        log.send_offsets(&offsets).map_err(CycleError::Log)?;
        log.fail_point(FailPoint::AfterSendOffsets).map_err(CycleError::Log)?;
        log.commit().map_err(CycleError::Log)?;
        self.pending = 0;
        log.fail_point(FailPoint::AfterTransactionCommit).map_err(CycleError::Log)?;
        for (id, task) in self.tasks.iter_mut() {
            let next: HashMap<String, i64> = delivered
                .iter()
                .filter(|((t, _, p), _)| t == id && *p == id.partition)
                .map(|((_, topic, _), o)| (topic.clone(), *o))
                .collect();
            task.commit_succeeded(&next).map_err(CycleError::Apply)?;
        }
        Ok(true)
    }

    /// Aborts the open transaction and drops every task's uncommitted work. The caller then
    /// rewinds input to the committed offsets (and recreates tasks, so processors start from
    /// committed state too).
    pub fn abort<L: TxnLog>(&mut self, log: &mut L) -> Result<(), L::Error> {
        for task in self.tasks.values_mut() {
            task.abort();
        }
        self.pending = 0;
        log.abort()
    }

    /// Forgets cached partition counts (after a rebalance topics may have been created).
    pub fn forget_partition_counts(&mut self) {
        self.partition_counts.clear();
    }
}

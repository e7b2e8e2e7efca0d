//! An in-memory test driver in the spirit of Kafka Streams' TopologyTestDriver, but with
//! partitions, transactions and crashes.
//!
//! Topics are in-memory logs with several partitions and Kafka's transactional visibility
//! ([`log`]). All tasks run as one stream thread through the same commit cycle as the Kafka
//! runtime ([`crate::cycle::TaskSet`]): outputs, changelog records and input offsets become
//! visible together. A crash (between records, or at a named [`FailPoint`] inside a commit)
//! drops everything uncommitted, recreates the tasks, restores their stores from the committed
//! changelog (from scratch if the state is wiped) and replays input from the committed
//! offsets, so a scenario run straight and with crashes must produce identical committed
//! outputs and stores.

mod log;

mod input;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::context::{GlobalStores, TaskId};
use crate::cycle::{CycleError, FailPoint, Recovery, TaskSet};
use crate::metrics::StreamsMetrics;
use crate::partitioner::{PartitionPlan, Partitioner, PartitionerDecision, PlanError};
use crate::record::{OutRecord, Record};
use crate::serde::Serde;
use crate::store::{BackendProvider, KvBackend, MemoryBackend, StoreError};
use crate::task::{Task, TaskConfig, TaskError};
use crate::topology::BuiltTopology;

pub use log::DriverLogError;
use log::{MemLog, Visibility};

/// How the driver commits and where it crashes.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Partitions of every topic (inputs, repartition topics, changelogs, outputs).
    pub partitions: i32,
    /// Commit after this many processed records (and whenever input runs dry).
    pub commit_every: usize,
    /// Crash after these many processed records in total, in increasing order.
    pub crashes: Vec<(usize, Crash)>,
    pub task: TaskConfig,
    /// Records fetched per input partition per round (a consumer's fetch size): with a small
    /// value a task's inputs arrive in slices, as in a backfill, and the task's wait for
    /// records the broker holds but it has not fetched (KIP-695) shows. Default: all there is.
    pub fetch_max_records: usize,
    /// Partitioners configured per user source topic; the others are detected from the input
    /// appended before the first `run`, as the runtime does at start (see [`crate::partitioner`]).
    pub partitioners: BTreeMap<String, Partitioner>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            partitions: 4,
            commit_every: 100,
            crashes: Vec::new(),
            task: TaskConfig::default(),
            fetch_max_records: usize::MAX,
            partitioners: BTreeMap::new(),
        }
    }
}

/// Kinds of simulated failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The process dies between records: uncommitted work is lost, local state survives.
    Process,
    /// The process dies in a commit once outputs and changelog records are acknowledged.
    AfterChangelogFlush,
    /// The process dies in a commit once the offsets are in the transaction.
    AfterSendOffsets,
    /// The process dies after the transaction committed but before the local state batch was
    /// written: the store must catch up from its changelog tail.
    AfterTransactionCommit,
    /// The process dies and the state directory is lost: stores rebuild from changelogs.
    WipeState,
    /// No crash: the next commit fails at this point with an abortable error, and the thread
    /// aborts and rewinds to the last commit as the runtime does.
    Abort(FailPoint),
}

impl Crash {
    /// Every kind, for golden tests that must hold under each.
    pub const ALL: [Crash; 8] = [
        Crash::Process,
        Crash::AfterChangelogFlush,
        Crash::AfterSendOffsets,
        Crash::AfterTransactionCommit,
        Crash::WipeState,
        Crash::Abort(FailPoint::AfterChangelogFlush),
        Crash::Abort(FailPoint::AfterSendOffsets),
        Crash::Abort(FailPoint::AfterTransactionCommit),
    ];

    /// Where in a commit this crash happens, if it is one of the commit's fail points.
    fn fail_point(self) -> Option<(FailPoint, bool)> {
        match self {
            Crash::AfterChangelogFlush => Some((FailPoint::AfterChangelogFlush, true)),
            Crash::AfterSendOffsets => Some((FailPoint::AfterSendOffsets, true)),
            Crash::AfterTransactionCommit => Some((FailPoint::AfterTransactionCommit, true)),
            Crash::Abort(p) => Some((p, false)),
            Crash::Process | Crash::WipeState => None,
        }
    }
}

/// Backends survive simulated crashes (they are "on disk") unless state is wiped.
#[derive(Default)]
struct DriverProvider {
    backends: Mutex<HashMap<(String, String), Arc<MemoryBackend>>>,
}

impl BackendProvider for DriverProvider {
    fn open(&self, task: &str, store: &str) -> Result<Arc<dyn KvBackend>, StoreError> {
        let mut map = self.backends.lock().expect("poisoned");
        let b = map.entry((task.to_string(), store.to_string())).or_default().clone();
        Ok(b)
    }
}

pub struct TopologyTestDriver {
    topology: Arc<BuiltTopology>,
    config: DriverConfig,
    log: MemLog,
    fetch_positions: HashMap<(String, i32), i64>,
    tasks: TaskSet,
    provider: DriverProvider,
    globals: Arc<GlobalStores>,
    metrics: StreamsMetrics,
    processed_total: usize,
    since_commit: usize,
    next_crash: usize,
    wall_clock: i64,
    /// Number of simulated failures (crashes and injected aborts) performed so far; tests
    /// assert they really happened.
    pub crashes_done: usize,
    /// Times uncommitted work was abandoned and redone after a retriable or abortable error.
    pub retries_done: usize,
    /// Each sub-topology's partitioner, decided at the first `run` and kept across crashes
    /// (the runtime persists it).
    plan: Option<Arc<PartitionPlan>>,
    decisions: BTreeMap<String, PartitionerDecision>,
}

/// Consecutive retriable failures after which `run` gives up and returns the error.
const MAX_CONSECUTIVE_RETRIES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cycle(#[from] CycleError<DriverLogError>),
    /// The inputs cannot be processed as they are (co-partitioned topics that disagree).
    #[error("refusing to start: {0}")]
    Plan(#[from] PlanError),
}

impl TopologyTestDriver {
    pub fn new(topology: Arc<BuiltTopology>, config: DriverConfig) -> Result<Self, DriverError> {
        let globals: GlobalStores = topology
            .globals
            .iter()
            .map(|g| (g.store.name.clone(), Arc::new(MemoryBackend::default()) as Arc<dyn KvBackend>))
            .collect();
        let mut d = TopologyTestDriver {
            topology,
            log: MemLog::new(config.partitions),
            config,
            fetch_positions: HashMap::new(),
            tasks: TaskSet::new(),
            provider: DriverProvider::default(),
            globals: Arc::new(globals),
            metrics: StreamsMetrics::default(),
            processed_total: 0,
            since_commit: 0,
            next_crash: 0,
            wall_clock: 0,
            crashes_done: 0,
            retries_done: 0,
            plan: None,
            decisions: BTreeMap::new(),
        };
        d.start_tasks()?;
        Ok(d)
    }

    pub fn metrics(&self) -> &StreamsMetrics {
        &self.metrics
    }

    pub fn topology(&self) -> &Arc<BuiltTopology> {
        &self.topology
    }

    /// Creates every task from committed state: stores restored from their changelogs (from
    /// their checkpoints), input from the committed offsets.
    fn start_tasks(&mut self) -> Result<(), DriverError> {
        self.tasks.drain();
        self.fetch_positions.clear();
        for sub in &self.topology.subtopologies {
            if sub.source_topics.is_empty() {
                continue;
            }
            for p in 0..self.config.partitions {
                let id = TaskId { subtopology: sub.id, partition: p };
                let mut task = Task::new(
                    self.topology.clone(),
                    id,
                    &self.provider,
                    self.globals.clone(),
                    self.metrics.clone(),
                    self.config.task.clone(),
                )?;
                self.restore(&mut task)?;
                if let Some(plan) = &self.plan {
                    task.set_partitioning(plan.clone());
                }
                task.initialize(self.wall_clock)?;
                for t in &sub.source_topics {
                    let committed = self.log.committed_offsets.get(&(t.clone(), p)).copied().unwrap_or(0);
                    self.fetch_positions.insert((t.clone(), p), committed);
                }
                self.tasks.insert(task);
            }
        }
        Ok(())
    }

    fn restore(&self, task: &mut Task) -> Result<(), DriverError> {
        let p = task.id().partition;
        for (store, topic, from) in task.restore_plan()? {
            if from > self.log.end(&topic, p) {
                task.wipe_stores()?;
                return self.restore(task);
            }
            let (records, next) = self.log.read_committed(&topic, p, from);
            let entries: Vec<_> =
                records.into_iter().filter_map(|(_, r)| r.key.clone().map(|k| (k, r.value.clone()))).collect();
            task.restore(&store, &entries, next)?;
        }
        Ok(())
    }

    /// Processes until no task has work, committing every `commit_every` records and at the end.
    pub fn run(&mut self) -> Result<(), DriverError> {
        self.decide_partitioners()?;
        let mut consecutive_retries = 0;
        let mut waited = 0;
        loop {
            let mut progressed = false;
            for id in self.tasks.ids() {
                self.fetch(id);
                loop {
                    match self.step(id) {
                        Ok(false) => break,
                        Ok(true) => {
                            consecutive_retries = 0;
                            progressed = true;
                        }
                        Err(e) => {
                            self.recover(e, &mut consecutive_retries)?;
                            progressed = true;
                            break;
                        }
                    }
                    if self.crash_due()? {
                        break;
                    }
                    if self.since_commit >= self.config.commit_every {
                        if let Err(e) = self.commit() {
                            self.recover(e, &mut consecutive_retries)?;
                            break;
                        }
                    }
                }
            }
            if !progressed {
                if self.tasks.needs_commit() {
                    if let Err(e) = self.commit() {
                        self.recover(e, &mut consecutive_retries)?;
                    }
                    continue;
                }
                // Tasks hold records but wait for an empty input (max.task.idle.ms): let the
                // idle time pass, as it would on the wall clock, then they process on.
                if waited < 2 && self.config.task.max_task_idle_ms > 0 && self.tasks.iter().any(|t| t.buffered() > 0) {
                    waited += 1;
                    self.wall_clock += self.config.task.max_task_idle_ms;
                    self.tasks.punctuate_wall_clock(self.wall_clock)?;
                    self.tasks.send_outputs(&mut self.log)?;
                    continue;
                }
                return Ok(());
            }
            waited = 0;
        }
    }

    /// Processes one record of a task and sends what it emitted; false when it has none ready.
    fn step(&mut self, id: TaskId) -> Result<bool, DriverError> {
        if self.tasks.process_task(id, self.wall_clock, 1)? == 0 {
            return Ok(false);
        }
        self.tasks.send_outputs(&mut self.log)?;
        self.processed_total += 1;
        self.since_commit += 1;
        Ok(true)
    }

    /// What the runtime does with a failed step: crash, rewind, or give up.
    fn recover(&mut self, e: DriverError, consecutive: &mut usize) -> Result<(), DriverError> {
        let recovery = match &e {
            DriverError::Cycle(CycleError::Log(DriverLogError::Crash(_))) => {
                self.crashes_done += 1;
                return self.restart_from_commit();
            }
            DriverError::Cycle(c) => c.recovery(),
            DriverError::Task(t) if t.is_retriable() => Recovery::RewindAfterPause,
            _ => Recovery::Stop,
        };
        if recovery == Recovery::Stop || *consecutive >= MAX_CONSECUTIVE_RETRIES {
            return Err(e);
        }
        let reason = match &e {
            DriverError::Task(t) => t.retriable_reason().unwrap_or("task").to_string(),
            DriverError::Cycle(c) => c.retry_reason().to_string(),
            DriverError::Store(_) => "store".into(),
            DriverError::Plan(_) => "plan".into(),
        };
        self.metrics.retries.with_label_values(&[&reason]).inc();
        *consecutive += 1;
        self.retries_done += 1;
        self.tasks.abort(&mut self.log).expect("the in-memory log aborts");
        self.restart_from_commit()
    }

    fn crash_due(&mut self) -> Result<bool, DriverError> {
        let Some(&(at, kind)) = self.config.crashes.get(self.next_crash) else { return Ok(false) };
        if self.processed_total < at {
            return Ok(false);
        }
        self.next_crash += 1;
        self.crash(kind)?;
        Ok(true)
    }

    /// Simulates a crash of the whole instance (or, for [`Crash::Abort`], a failed commit) and
    /// restarts it from committed state.
    pub fn crash(&mut self, kind: Crash) -> Result<(), DriverError> {
        if let Some(fail) = kind.fail_point() {
            self.log.fail = Some(fail);
            let mut consecutive = 0;
            return match self.tasks.commit(&mut self.log) {
                Ok(_) => {
                    // Nothing to commit, so the fail point was not reached: crash between records.
                    self.log.fail = None;
                    self.crashes_done += 1;
                    self.restart_from_commit()
                }
                Err(e) => {
                    if matches!(kind, Crash::Abort(_)) {
                        self.crashes_done += 1;
                    }
                    self.recover(e.into(), &mut consecutive)
                }
            };
        }
        if kind == Crash::WipeState {
            self.provider.backends.lock().expect("poisoned").clear();
        }
        self.crashes_done += 1;
        self.restart_from_commit()
    }

    /// Aborts what the open transaction holds (as the coordinator does when the next
    /// incarnation starts) and recreates the tasks from committed state and offsets.
    fn restart_from_commit(&mut self) -> Result<(), DriverError> {
        self.log.abort_open();
        self.since_commit = 0;
        self.start_tasks()
    }

    /// Commits all tasks atomically through the shared commit cycle.
    pub fn commit(&mut self) -> Result<(), DriverError> {
        self.tasks.commit(&mut self.log)?;
        self.since_commit = 0;
        Ok(())
    }

    /// Moves the wall clock and fires due wall-clock punctuations.
    pub fn advance_wall_clock(&mut self, ms: i64) -> Result<(), DriverError> {
        self.wall_clock += ms;
        self.tasks.punctuate_wall_clock(self.wall_clock)?;
        self.tasks.send_outputs(&mut self.log)?;
        self.run()
    }

    /// Committed records of a topic, in append order across partitions.
    pub fn read_raw(&self, topic: &str) -> Vec<OutRecord> {
        let mut all: Vec<(u64, OutRecord)> = self
            .log
            .logs
            .iter()
            .filter(|((t, _), _)| t == topic)
            .flat_map(|((t, p), log)| {
                log.iter().filter(|r| r.visibility == Visibility::Committed).map(move |r| {
                    (
                        r.seq,
                        OutRecord {
                            topic: t.clone(),
                            partition: Some(*p),
                            key: r.key.clone(),
                            value: r.value.clone(),
                            timestamp: r.timestamp,
                            headers: r.headers.clone(),
                        },
                    )
                })
            })
            .collect();
        all.sort_by_key(|(s, _)| *s);
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// Committed records of an output topic, decoded.
    pub fn read_output<K: 'static, V: 'static>(
        &self,
        topic: &str,
        ks: &dyn Serde<K>,
        vs: &dyn Serde<V>,
    ) -> Vec<Record<K, V>> {
        self.read_raw(topic)
            .into_iter()
            .map(|r| {
                let mut rec = Record::new(
                    ks.deserialize(topic, r.key.as_deref().unwrap_or_default()).expect("output key decodes"),
                    vs.deserialize(topic, r.value.as_deref().unwrap_or_default()).expect("output value decodes"),
                    r.timestamp,
                );
                rec.headers = r.headers;
                rec
            })
            .collect()
    }

    /// Committed contents of a store across all tasks, sorted by key bytes.
    pub fn store_raw(&self, store: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        for task in self.tasks.iter() {
            if let Some(b) = task.store_backend(store) {
                for item in b.range(None, None).expect("memory backend never fails") {
                    all.push(item.expect("memory backend never fails"));
                }
            }
        }
        all.sort();
        all
    }

    /// Committed contents of a store in the task of `partition`, sorted by key bytes: where
    /// a query for a key that partition owns is answered.
    pub fn store_raw_in(&self, store: &str, partition: i32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        for task in self.tasks.iter().filter(|t| t.id().partition == partition) {
            if let Some(b) = task.store_backend(store) {
                for item in b.range(None, None).expect("memory backend never fails") {
                    all.push(item.expect("memory backend never fails"));
                }
            }
        }
        all.sort();
        all
    }

    /// Committed contents of a key-value store across all tasks.
    pub fn store_all<K, V>(&self, store: &str) -> Vec<(K, V)>
    where
        K: 'static,
        V: 'static,
    {
        let spec = self.topology.store_spec(store).expect("store declared");
        let (ks, vs) = crate::context::typed_serdes::<K, V>(spec).expect("store types match");
        self.store_raw(store)
            .into_iter()
            .map(|(k, v)| {
                (ks.deserialize(store, &k).expect("key decodes"), vs.deserialize(store, &v).expect("value decodes"))
            })
            .collect()
    }
}

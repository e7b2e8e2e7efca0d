//! A stream thread: one group consumer, one (transactional) producer, and its tasks.
//!
//! The loop polls, hands records to tasks, advances restores a slice at a time, processes a
//! bounded batch per task, sends what they emitted into the open transaction, and commits every
//! `commit.interval.ms` through the shared commit cycle ([`streams::TaskSet::commit`], the same
//! code the test driver runs). What a failure calls for comes from the cycle's classification
//! ([`streams::Recovery`]): rewind to the last commit, after a pause when the environment
//! failed; recreate the producer when librdkafka says it is unusable; stop otherwise.

mod ends;
mod log;
mod offsets;
mod purge;
mod tasks;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Offset;
use streams::{CycleError, Recovery, TaskId, TaskSet};

pub use log::KafkaLogError;
use log::{KafkaLog, ThreadProducer};
use purge::Purger;
use tasks::{ThreadContext, ThreadState, TopicPartition};

use crate::failpoint::FailPoints;
use crate::kafka::{cached_watermarks, client_config_for, to_raw, Role};
use crate::restore::ChangelogReader;
use crate::{Instance, RuntimeError};

/// Pause before redoing work after a failure the environment caused; doubles up to the maximum
/// while the failure persists, so an outage costs little CPU and recovery is quick.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Records taken from the consumer per loop iteration.
const POLL_BATCH: usize = 2_000;
/// Records a task processes per loop iteration before the others get their turn.
const PROCESS_BATCH: usize = 1_000;
/// Time given to restoring per loop iteration.
const RESTORE_SLICE: Duration = Duration::from_millis(100);

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn lock(state: &Mutex<Option<ThreadState>>) -> MutexGuard<'_, Option<ThreadState>> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// This thread's transactional id: stable across restarts with the same state directory, so a
/// restarted instance fences its previous incarnation (Kafka Streams' EOS v2 naming).
fn transactional_id(instance: &Instance, thread_idx: usize) -> Option<String> {
    let c = &instance.config;
    c.exactly_once().then(|| format!("{}-{}-{}", c.application_id, instance.process_id, thread_idx))
}

fn group_consumer(
    instance: &Instance,
    thread_idx: usize,
    context: ThreadContext,
) -> Result<BaseConsumer<ThreadContext>, RuntimeError> {
    let config = &instance.config;
    let mut cc = client_config_for(config, Role::Consumer);
    cc.set("group.id", &config.application_id)
        .set("client.id", format!("{}-{}-{}", config.application_id, instance.process_id, thread_idx))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", if config.exactly_once() { "read_committed" } else { "read_uncommitted" });
    // Partition ends for KIP-695 (see `ThreadContext::stats`): how soon a task sees records
    // arrive beyond its end, so reports come often.
    cc.set("statistics.interval.ms", stats_interval_ms(config).to_string());
    if config.consumer_protocol() {
        // The broker assigns; `range` keeps equal partition numbers of co-partitioned topics together.
        if !config.kafka.contains_key("group.remote.assignor") {
            cc.set("group.remote.assignor", "range");
        }
    } else {
        cc.set("partition.assignment.strategy", "range");
    }
    let consumer: BaseConsumer<ThreadContext> = cc.create_with_context(context)?;
    let topics = instance.topology.source_topics();
    consumer.subscribe(&topics.iter().map(|s| s.as_str()).collect::<Vec<_>>())?;
    Ok(consumer)
}

/// Runs one stream thread until the instance shuts down or a failure stops it.
pub(crate) fn run(instance: Arc<Instance>, thread_idx: usize) -> Result<(), RuntimeError> {
    let producer = ThreadProducer::create(&instance.config, transactional_id(&instance, thread_idx))?;
    let sub_of_topic: HashMap<String, usize> = instance
        .topology
        .subtopologies
        .iter()
        .flat_map(|s| s.source_topics.iter().map(move |t| (t.clone(), s.id)))
        .collect();
    let shared = Arc::new(Mutex::new(Some(ThreadState {
        instance: instance.clone(),
        thread_idx,
        active: TaskSet::new(),
        restoring: Default::default(),
        reader: ChangelogReader::new(&instance.config, instance.metrics.clone())?,
        producer,
        fail_points: FailPoints::from_env(),
        sub_of_topic,
        assigned: Default::default(),
        pending: Default::default(),
        paused: Default::default(),
        rewound_to: Default::default(),
        needs_rewind: false,
        rebalancing: true,
        error: None,
        probes: ends::EndProbe::new(&instance.config)?,
        unprobed: Default::default(),
    })));
    lock(&shared).as_ref().expect("state present").publish_assignment();
    let consumer = group_consumer(
        &instance,
        thread_idx,
        ThreadContext { state: shared.clone(), stable_ends: Default::default() },
    )?;
    let mut lp = Loop {
        commit_interval: Duration::from_millis(instance.config.commit_interval_ms()),
        last_commit: Instant::now(),
        backoff: Duration::ZERO,
        last_lag: Instant::now(),
        last_ends: Instant::now(),
        busy: false,
        purger: Purger::new(&instance.config, &instance.topology.repartition_topics)?,
    };
    let result = loop {
        if instance.shutdown.load(Ordering::Relaxed) {
            break Ok(());
        }
        let polled = poll_batch(&consumer, lp.busy);
        let mut guard = lock(&shared);
        let state = guard.as_mut().expect("state present while running");
        match lp.iteration(state, &consumer, polled) {
            Ok(()) => {}
            Err(e) => break Err(e),
        }
    };
    // Clean shutdown: commit and close (a crash skips this, which is what EOS is for).
    let mut guard = lock(&shared);
    if let Some(state) = guard.as_mut() {
        if result.is_ok() {
            state.commit_or_abort(&consumer);
        }
        for id in state.active.ids().into_iter().chain(state.restoring.keys().copied().collect::<Vec<_>>()) {
            state.close_task(id);
        }
    }
    instance.set_assignment(thread_idx, None);
    *guard = None;
    drop(guard);
    consumer.unsubscribe();
    result
}

/// Takes what the consumer has (blocking briefly when there is nothing to do).
fn poll_batch(consumer: &BaseConsumer<ThreadContext>, busy: bool) -> Vec<streams::RawRecord> {
    let mut polled = Vec::new();
    let mut next = consumer.poll(if busy { Duration::ZERO } else { Duration::from_millis(20) });
    while let Some(m) = next {
        match m {
            Ok(m) => polled.push(to_raw(&m)),
            Err(e) => tracing::warn!(error = %e, "consumer error"),
        }
        if polled.len() >= POLL_BATCH {
            break;
        }
        next = consumer.poll(Duration::ZERO);
    }
    polled
}

/// The loop's own clocks.
struct Loop {
    commit_interval: Duration,
    last_commit: Instant,
    backoff: Duration,
    last_lag: Instant,
    last_ends: Instant,
    /// The last iteration processed something: poll without waiting.
    busy: bool,
    purger: Purger,
}

impl Loop {
    fn iteration(
        &mut self,
        state: &mut ThreadState,
        consumer: &BaseConsumer<ThreadContext>,
        mut polled: Vec<streams::RawRecord>,
    ) -> Result<(), RuntimeError> {
        if let Some(e) = state.error.take() {
            return Err(e);
        }
        if state.needs_rewind {
            state.rewind(consumer)?;
            // Everything this batch holds was fetched before the seek to the committed offsets:
            // it is fetched again from there, so handing it on would process it twice.
            polled.clear();
        }
        let now = now_ms();
        if !state.pending.is_empty() {
            state.create_pending(consumer, now)?;
            state.publish_assignment();
        }
        if !state.restoring.is_empty() {
            state.restore_step(consumer, now, RESTORE_SLICE)?;
            if state.restoring.is_empty() {
                state.publish_assignment();
            }
        }
        route(state, polled);
        backpressure(state, consumer)?;
        take_probe_answers(state);
        if self.last_ends.elapsed() >= Duration::from_millis(100) {
            report_ends(state, consumer);
            self.last_ends = Instant::now();
        }
        let step = self.process(state, consumer, now);
        let step = step.and_then(|()| {
            if self.last_commit.elapsed() < self.commit_interval {
                return Ok(());
            }
            self.last_commit = Instant::now();
            let mut log = KafkaLog::new(&mut state.producer, consumer, &state.fail_points);
            let started = Instant::now();
            if state.active.commit(&mut log)? {
                state.instance.metrics.commits.inc();
                state.instance.metrics.commit_latency.observe(started.elapsed().as_secs_f64());
                self.purger.after_commit(&state.active);
            }
            self.backoff = Duration::ZERO;
            Ok(())
        });
        if let Err(e) = step {
            self.recover(state, consumer, e)?;
        }
        if self.last_lag.elapsed() >= Duration::from_secs(5) {
            record_lag(&state.instance, consumer);
            self.last_lag = Instant::now();
        }
        Ok(())
    }

    /// Processes a batch per active task, fires wall-clock punctuations, sends the outputs.
    fn process(
        &mut self,
        state: &mut ThreadState,
        consumer: &BaseConsumer<ThreadContext>,
        now: i64,
    ) -> Result<(), StepError> {
        let mut processed = 0;
        for id in state.active.ids() {
            let tasks = &mut state.active;
            processed += catch_unwind(AssertUnwindSafe(|| tasks.process_task(id, now, PROCESS_BATCH)))
                .map_err(|p| StepError::Panic(id, panic_message(p)))??;
        }
        self.busy = processed > 0;
        state.active.punctuate_wall_clock(now)?;
        let mut log = KafkaLog::new(&mut state.producer, consumer, &state.fail_points);
        state.active.send_outputs(&mut log)?;
        Ok(())
    }

    /// Carries out what a failed step calls for.
    fn recover(
        &mut self,
        state: &mut ThreadState,
        consumer: &BaseConsumer<ThreadContext>,
        e: StepError,
    ) -> Result<(), RuntimeError> {
        let cycle = match e {
            StepError::Panic(id, message) => return Err(RuntimeError::Panic(id, message)),
            StepError::Cycle(c) => c,
        };
        let recovery = cycle.recovery();
        if recovery == Recovery::Stop {
            return Err(RuntimeError::Cycle(cycle));
        }
        let metrics = &state.instance.metrics;
        metrics.retries.with_label_values(&[cycle.retry_reason()]).inc();
        metrics.aborts.inc();
        if recovery != Recovery::Rewind {
            self.backoff = (self.backoff * 2).clamp(RETRY_BACKOFF_MIN, RETRY_BACKOFF_MAX);
        }
        tracing::warn!(thread = state.thread_idx, error = %cycle, ?recovery, backoff_ms = self.backoff.as_millis() as u64, "rewinding to the last commit");
        std::thread::sleep(self.backoff);
        match recovery {
            Recovery::RecreateLog => {
                for t in state.active.iter_mut() {
                    t.abort();
                }
                let id = state.producer.transactional_id.clone();
                // Initializing the same transactional id fences the broken producer's epoch and
                // aborts whatever it left open.
                state.producer = ThreadProducer::create(&state.instance.config, id)?;
            }
            _ => {
                let mut log = KafkaLog::new(&mut state.producer, consumer, &state.fail_points);
                if let Err(abort) = state.active.abort(&mut log) {
                    if matches!(abort, KafkaLogError::FencedByAnotherInstance(_)) {
                        return Err(RuntimeError::Cycle(CycleError::Log(abort)));
                    }
                    tracing::warn!(error = %abort, "abort failed; recreating the producer");
                    let id = state.producer.transactional_id.clone();
                    state.producer = ThreadProducer::create(&state.instance.config, id)?;
                }
            }
        }
        state.rewind(consumer)?;
        self.last_commit = Instant::now();
        Ok(())
    }
}

/// Why a loop step failed.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Cycle(#[from] CycleError<KafkaLogError>),
    #[error("processor panicked in task {0}: {1}")]
    Panic(TaskId, String),
}

impl From<streams::TaskError> for StepError {
    fn from(e: streams::TaskError) -> Self {
        StepError::Cycle(CycleError::Task(e))
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Hands polled records to their tasks (active or still restoring: a record is never dropped
/// while its partition is ours). Records from before a rewind are stale and skipped.
fn route(state: &mut ThreadState, polled: Vec<streams::RawRecord>) {
    for raw in polled {
        let tp: TopicPartition = (raw.topic.clone(), raw.partition);
        if state.rewound_to.get(&tp).is_some_and(|o| raw.offset < *o) {
            continue;
        }
        let Some(id) = state.task_of(&raw.topic, raw.partition) else { continue };
        if let Some(task) = state.active.get_mut(id) {
            task.add_records([raw]);
        } else if let Some(task) = state.restoring.get_mut(&id) {
            task.add_records([raw]);
        }
    }
}

/// Pauses input partitions whose task has a full queue and resumes them once it has drained
/// to half (Kafka Streams' `buffered.records.per.partition`).
fn backpressure(state: &mut ThreadState, consumer: &BaseConsumer<ThreadContext>) -> Result<(), RuntimeError> {
    let limit = state.instance.config.buffered_records_per_partition.max(1);
    let mut pause = Vec::new();
    let mut resume = Vec::new();
    for task in state.active.iter() {
        for topic in task.input_topics() {
            let tp = (topic.clone(), task.id().partition);
            let queued = task.queued(topic);
            if queued >= limit && !state.paused.contains(&tp) {
                pause.push(tp);
            } else if queued <= limit / 2 && state.paused.contains(&tp) {
                resume.push(tp);
            }
        }
    }
    state.pause(consumer, &pause)?;
    state.resume(consumer, &resume)
}

/// The group consumer's `statistics.interval.ms`: `[kafka]`'s, else 250 ms.
fn stats_interval_ms(config: &crate::StreamsConfig) -> u64 {
    config.kafka.get("statistics.interval.ms").and_then(|v| v.parse().ok()).unwrap_or(250)
}

/// Hands each task the answer of its [`ends::EndProbe`]: where its inputs start (the committed
/// offsets, so an input with records waiting is not taken as fetched) and end. A failed probe
/// is asked again; an answer for a task closed or recreated since is dropped.
fn take_probe_answers(state: &mut ThreadState) {
    for answer in state.probes.answers() {
        if state.unprobed.get(&answer.id) != Some(&answer.activated) {
            continue;
        }
        match answer.extents {
            Ok(extents) => {
                if let Some(task) = state.active.get_mut(answer.id) {
                    for x in extents {
                        task.set_fetch_position(&x.partition.0, x.start);
                        task.set_end_offset(&x.partition.0, x.end);
                    }
                }
                state.unprobed.remove(&answer.id);
            }
            Err(e) => {
                tracing::warn!(task = %answer.id, error = %e, "looking up the input ends failed; asking again");
                let parts = state.input_partitions(answer.id);
                state.probes.ask(answer.id, answer.activated, parts);
            }
        }
    }
}

/// Tells each task how far its input partitions are fetched and, once its probe answered, how
/// far librdkafka last saw them reach, so it waits for records the broker holds instead of
/// running ahead (KIP-695).
fn report_ends(state: &mut ThreadState, consumer: &BaseConsumer<ThreadContext>) {
    let Ok(positions) = consumer.position() else { return };
    let ends = consumer.context().stable_ends.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for e in positions.elements() {
        let Some(id) = state.task_of(e.topic(), e.partition()) else { continue };
        let probed = !state.unprobed.contains_key(&id);
        let Some(task) = state.active.get_mut(id) else { continue };
        if let Offset::Offset(pos) = e.offset() {
            task.set_fetch_position(e.topic(), pos);
        }
        if let Some(end) = ends.get(&(e.topic().to_string(), e.partition())).filter(|_| probed) {
            task.set_end_offset(e.topic(), *end);
        }
    }
}

fn record_lag(instance: &Instance, consumer: &BaseConsumer<ThreadContext>) {
    let Ok(positions) = consumer.position() else { return };
    for e in positions.elements() {
        if let (Offset::Offset(pos), Some((_, high))) =
            (e.offset(), cached_watermarks(consumer.client(), e.topic(), e.partition()))
        {
            instance
                .metrics
                .consumer_lag
                .with_label_values(&[e.topic(), &e.partition().to_string()])
                .set((high - pos).max(0));
        }
    }
}

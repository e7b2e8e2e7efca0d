//! The stream thread's [`TxnLog`] on Kafka: a transactional (or, under at-least-once, an
//! idempotent) `BaseProducer` plus the group consumer whose offsets it commits.
//!
//! Errors carry librdkafka's classification (`is_fatal`, `is_retriable`, `txn_requires_abort`)
//! up to the commit cycle, which decides between rewinding, recreating the producer and stopping.
//! Retriable transactional calls are retried here a few times first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use streams::cycle::{Delivered, FailPoint, LogError, TxnLog};
use streams::{OutRecord, TaskId};

use super::offsets::{self, OffsetsSender, Outcome};
use crate::failpoint::FailPoints;
use crate::kafka::{client_config_for, send, sender, DeliveryFailure, DeliveryTracker, Role};
use crate::{RuntimeError, StreamsConfig};

/// Longest a flush or a transactional call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What the commit cycle sees of a Kafka failure.
#[derive(Debug, thiserror::Error)]
pub enum KafkaLogError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("delivery to {} failed: {}", .0.topic, .0.message)]
    Delivery(DeliveryFailure),
    /// Another producer initialized this thread's transactional id while its transaction was
    /// young: a second instance runs with the same identity (a copied state directory).
    #[error("fenced: another instance uses transactional id {0} (a copy of this instance's state directory?)")]
    FencedByAnotherInstance(String),
    /// librdkafka's producer is in a fatal state (e.g. fenced after its transaction timed out).
    #[error("producer failed fatally: {0}")]
    Fatal(String),
}

impl LogError for KafkaLogError {
    fn is_fatal(&self) -> bool {
        match self {
            KafkaLogError::Kafka(KafkaError::Transaction(e)) => e.is_fatal(),
            KafkaLogError::Fatal(_) => true,
            _ => false,
        }
    }
    fn is_retriable(&self) -> bool {
        match self {
            KafkaLogError::Kafka(KafkaError::Transaction(e)) => e.is_retriable(),
            // A flush that timed out or a broker hiccup: the transaction is redone.
            KafkaLogError::Kafka(KafkaError::Flush(_)) => true,
            KafkaLogError::Kafka(KafkaError::ConsumerCommit(c)) => {
                !matches!(c, RDKafkaErrorCode::GroupAuthorizationFailed | RDKafkaErrorCode::TopicAuthorizationFailed)
            }
            KafkaLogError::Kafka(KafkaError::MetadataFetch(_)) => true,
            KafkaLogError::Delivery(f) => !f.is_permanent(),
            _ => false,
        }
    }
    fn txn_requires_abort(&self) -> bool {
        match self {
            KafkaLogError::Kafka(KafkaError::Transaction(e)) => e.txn_requires_abort(),
            KafkaLogError::Delivery(f) => !f.is_permanent(),
            _ => false,
        }
    }
}

/// A stream thread's producer and the state of its open transaction.
pub(crate) struct ThreadProducer {
    pub producer: Arc<BaseProducer<DeliveryTracker>>,
    pub transactional_id: Option<String>,
    /// Under exactly-once: where offsets go into the transaction (see [`offsets`]).
    offsets: Option<OffsetsSender>,
    /// When the open transaction first wrote (the broker times a transaction from its first
    /// partition, not from `begin_transaction`): tells a timed-out transaction from a second
    /// instance.
    began: Option<Instant>,
    transaction_timeout: Duration,
}

impl ThreadProducer {
    /// Creates the producer; under exactly-once initializes its transactional id (fencing any
    /// earlier incarnation and aborting what it left open) and begins a transaction.
    pub fn create(config: &StreamsConfig, transactional_id: Option<String>) -> Result<Self, RuntimeError> {
        let mut pc = client_config_for(config, Role::Producer);
        pc.set("enable.idempotence", "true");
        if !config.kafka.contains_key("linger.ms") {
            pc.set("linger.ms", "5");
        }
        if let Some(id) = &transactional_id {
            pc.set("transactional.id", id).set("transaction.timeout.ms", config.transaction_timeout_ms().to_string());
        }
        let producer: Arc<BaseProducer<DeliveryTracker>> =
            Arc::new(pc.create_with_context(DeliveryTracker::default())?);
        let mut offsets = None;
        if transactional_id.is_some() {
            retry(|| producer.init_transactions(CALL_TIMEOUT))?;
            producer.begin_transaction()?;
            offsets = Some(OffsetsSender::new(producer.clone())?);
        }
        Ok(ThreadProducer {
            producer,
            transactional_id,
            offsets,
            began: None,
            transaction_timeout: Duration::from_millis(config.transaction_timeout_ms()),
        })
    }

    fn eos(&self) -> bool {
        self.transactional_id.is_some()
    }

    /// Turns librdkafka's error into the cycle's: a fatal producer (librdkafka says so on any
    /// later call) is `Fatal`, or `FencedByAnotherInstance` when it was fenced while its
    /// transaction was younger than its timeout — then only a newer producer with the same
    /// transactional id can have done it.
    fn classify(&self, e: KafkaError) -> KafkaLogError {
        let Some((code, reason)) = self.producer.client().fatal_error() else { return KafkaLogError::Kafka(e) };
        let fenced = matches!(code, RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced);
        if fenced && self.began.is_none_or(|b| b.elapsed() < self.transaction_timeout) {
            return KafkaLogError::FencedByAnotherInstance(self.transactional_id.clone().unwrap_or_default());
        }
        KafkaLogError::Fatal(format!("{code}: {reason}"))
    }

    fn begin(&mut self) -> Result<(), KafkaLogError> {
        if self.eos() {
            self.producer.begin_transaction().map_err(|e| self.classify(e))?;
        }
        self.began = None;
        Ok(())
    }

    fn wrote(&mut self) {
        self.began.get_or_insert_with(Instant::now);
    }
}

/// One commit cycle's view of the thread's producer and group consumer.
pub(crate) struct KafkaLog<'a, C: ConsumerContext> {
    pub producer: &'a mut ThreadProducer,
    pub consumer: &'a BaseConsumer<C>,
    pub fail_points: &'a FailPoints,
    pub offsets: TopicPartitionList,
}

impl<'a, C: ConsumerContext> KafkaLog<'a, C> {
    pub fn new(producer: &'a mut ThreadProducer, consumer: &'a BaseConsumer<C>, fail_points: &'a FailPoints) -> Self {
        KafkaLog { producer, consumer, fail_points, offsets: TopicPartitionList::new() }
    }
}

impl<C: ConsumerContext> TxnLog for KafkaLog<'_, C> {
    type Error = KafkaLogError;

    fn partitions(&mut self, topic: &str) -> Result<Option<i32>, KafkaLogError> {
        let md = self.consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|n| *n > 0))
    }

    fn send(&mut self, task: TaskId, record: OutRecord) -> Result<(), KafkaLogError> {
        self.producer.wrote();
        send(&self.producer.producer, &record, sender(task)).map_err(|e| match e {
            KafkaError::MessageProduction(RDKafkaErrorCode::Fatal) => self.producer.classify(e),
            KafkaError::MessageProduction(code) => KafkaLogError::Delivery(DeliveryFailure {
                topic: record.topic.clone(),
                code: Some(code),
                message: format!("{e} (record of {} bytes)", record.value.as_ref().map_or(0, Vec::len)),
            }),
            e => KafkaLogError::Kafka(e),
        })
    }

    fn flush(&mut self) -> Result<Delivered, KafkaLogError> {
        let p = &self.producer.producer;
        p.flush(CALL_TIMEOUT).map_err(|e| self.producer.classify(e))?;
        if let Some(failure) = p.context().take_failure() {
            if p.client().fatal_error().is_some() {
                return Err(self.producer.classify(KafkaError::Flush(RDKafkaErrorCode::Fatal)));
            }
            return Err(KafkaLogError::Delivery(failure));
        }
        Ok(p.context().take())
    }

    fn send_offsets(&mut self, offsets: &[(String, i32, i64)]) -> Result<(), KafkaLogError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
        }
        if !self.producer.eos() || tpl.count() == 0 {
            self.offsets = tpl;
            return Ok(());
        }
        self.producer.wrote();
        let sender = self.producer.offsets.as_mut().expect("an exactly-once producer has an offsets sender");
        let consumer = self.consumer;
        let mut wedged = false;
        let result = retry(|| {
            // Each attempt takes the group's metadata afresh (it moves to the helper thread).
            let cgm = consumer.group_metadata().ok_or(KafkaError::ConsumerCommit(RDKafkaErrorCode::UnknownMemberId))?;
            match sender.send(tpl.clone(), cgm) {
                Outcome::Done(answer) => answer,
                Outcome::Wedged => {
                    wedged = true;
                    Err(KafkaError::Canceled)
                }
            }
        });
        // A wedged producer is given up, unless it was fenced meanwhile and says so (then
        // recreating it would fence the newer instance back).
        match (result.map_err(|e| self.producer.classify(e)), wedged) {
            (Err(KafkaLogError::Kafka(_)), true) => Err(KafkaLogError::Fatal(format!(
                "send_offsets_to_transaction did not return within {:?} (librdkafka #5456/#5511: \
                 the group coordinator's broker is gone); recreating the producer",
                offsets::DEADLINE
            ))),
            (result, _) => result,
        }
    }

    fn commit(&mut self) -> Result<(), KafkaLogError> {
        if self.producer.eos() {
            let producer = &self.producer.producer;
            retry(|| producer.commit_transaction(CALL_TIMEOUT)).map_err(|e| self.producer.classify(e))?;
        } else if self.offsets.count() > 0 {
            self.consumer.commit(&self.offsets, CommitMode::Sync)?;
        }
        self.offsets = TopicPartitionList::new();
        self.producer.begin()
    }

    /// Aborts first, then drops the delivery reports and failures of the aborted records (the
    /// purge reports each as failed; kept, they would fail the next commit too).
    fn abort(&mut self) -> Result<(), KafkaLogError> {
        self.offsets = TopicPartitionList::new();
        let p = &self.producer;
        if p.eos() {
            retry(|| p.producer.abort_transaction(CALL_TIMEOUT)).map_err(|e| p.classify(e))?;
        }
        p.producer.poll(Duration::ZERO);
        p.producer.context().take();
        p.producer.context().take_failure();
        self.producer.begin()
    }

    fn fail_point(&mut self, point: FailPoint) -> Result<(), KafkaLogError> {
        self.fail_points.hit(point);
        Ok(())
    }
}

/// Repeats a transactional call while librdkafka says it is retriable, a few times.
pub(crate) fn retry<T>(mut op: impl FnMut() -> Result<T, KafkaError>) -> Result<T, KafkaError> {
    let mut attempts = 0;
    loop {
        match op() {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempts < 5 => {
                attempts += 1;
                tracing::debug!(error = %e, attempts, "retrying transactional call");
                std::thread::sleep(Duration::from_millis(50 << attempts));
            }
            other => return other,
        }
    }
}

//! The Processor API: one required method, lifecycle hooks with defaults.

use std::any::Any;

use crate::context::ProcessorContext;
use crate::record::Record;
use crate::serde::SerdeError;
use crate::store::StoreError;

/// What kind of clock drives a punctuation, as in Kafka Streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// Fires as event time (the largest timestamp the task has seen) passes each interval:
    /// deterministic, so replays after a crash fire at the same points.
    StreamTime,
    /// Fires on the machine clock: for housekeeping that must happen even without traffic.
    WallClockTime,
}

/// Why processing a record failed, tagged with who is at fault, which decides what happens:
/// `Data` errors are the input's fault (a retry cannot help), so the record goes to the
/// configured handler (dead-letter topic by default) and processing continues; `Internal`
/// errors are ours and stop the task; `Retriable` errors are the environment's (a dependency
/// that is down): the engine abandons the uncommitted work, backs off and processes the same
/// records again, so no record is dead-lettered for someone else's outage.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{reason}: {message}")]
    Data { reason: String, message: String },
    #[error("{reason} (will retry): {message}")]
    Retriable { reason: String, message: String },
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl ProcessError {
    /// A record the processor cannot accept; `reason` becomes the dead-letter error class.
    pub fn data(reason: impl Into<String>, message: impl Into<String>) -> Self {
        ProcessError::Data { reason: reason.into(), message: message.into() }
    }
    /// Short class used in dead-letter headers and metric labels.
    pub fn class(&self) -> &str {
        match self {
            ProcessError::Data { reason, .. } | ProcessError::Retriable { reason, .. } => reason,
            ProcessError::Store(_) => "store_error",
            ProcessError::Internal(_) => "internal_error",
        }
    }
}

impl From<SerdeError> for ProcessError {
    fn from(e: SerdeError) -> Self {
        if e.retriable {
            ProcessError::Retriable { reason: e.reason, message: e.message }
        } else {
            ProcessError::Data { reason: e.reason, message: e.message }
        }
    }
}

/// A stream processor over records with key `K` and value `V`.
///
/// Implementations keep no state outside declared stores if they want it to survive crashes and
/// rebalances: fields of the struct are rebuilt from scratch whenever a task is (re)created.
pub trait Processor<K, V>: Send + 'static {
    /// Called once per task before the first record, after the task's stores are restored.
    /// Schedule punctuations here.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        Ok(())
    }

    fn process(&mut self, record: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError>;

    /// Called for each schedule registered with `ProcessorContext::schedule`.
    fn punctuate(
        &mut self,
        _kind: PunctuationType,
        _timestamp: i64,
        _ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Called when the task is closed (revocation, shutdown). Not called on a crash.
    fn close(&mut self) {}
}

/// A processor with its record types erased, so nodes of different types live in one graph.
pub(crate) trait ErasedProcessor: Send {
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError>;
    fn process_any(&mut self, record: Box<dyn Any + Send>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError>;
    fn punctuate(&mut self, kind: PunctuationType, ts: i64, ctx: &mut ProcessorContext<'_>)
        -> Result<(), ProcessError>;
    fn close(&mut self);
}

pub(crate) struct Typed<P, K, V> {
    pub inner: P,
    pub _types: std::marker::PhantomData<fn(K, V)>,
}

impl<P, K, V> ErasedProcessor for Typed<P, K, V>
where
    P: Processor<K, V>,
    K: Send + 'static,
    V: Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        self.inner.init(ctx)
    }
    fn process_any(&mut self, record: Box<dyn Any + Send>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        match record.downcast::<Record<K, V>>() {
            Ok(r) => self.inner.process(*r, ctx),
            Err(_) => Err(ProcessError::Internal(format!(
                "processor {} expects Record<{}, {}> but its parent forwarded another type",
                ctx.node_name(),
                std::any::type_name::<K>(),
                std::any::type_name::<V>()
            ))),
        }
    }
    fn punctuate(
        &mut self,
        kind: PunctuationType,
        ts: i64,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        self.inner.punctuate(kind, ts, ctx)
    }
    fn close(&mut self) {
        self.inner.close()
    }
}

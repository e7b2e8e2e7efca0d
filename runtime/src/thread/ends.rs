//! Where a just-activated task's inputs start and end, asked of the broker.
//!
//! KIP-695 ordering (a task waits for an input the broker holds records of, rather than run
//! ahead on its other inputs) needs, per input partition, how far it is fetched and how far the
//! broker reaches. Neither is known after an activation from what librdkafka reports on its own:
//! - the consumer's position stays unknown until a record of the partition is consumed, so an
//!   input with records waiting and none fetched yet looked fetched to its end;
//! - the statistics keep a partition's last end across a revocation, and under load the first
//!   fetch after the resume can come seconds later: an end from before the revocation, below
//!   the committed offset, reads as "caught up".
//!
//! Either let a by-user task apply months of a user's transactions before that user's goal
//! events (seen on CI: goals saved 0 of 57 559). So on activation the stream thread asks this
//! helper for each input's committed offset (where the task starts; the log start when nothing
//! is committed) and its end (the last stable offset under read_committed, a `ListOffsets`
//! request, never a cached value). Until the answer comes the task treats the ends as unknown
//! and waits; afterwards librdkafka's statistics only ever raise an end.
//!
//! The lookups block for a round trip (longer while a leader is elected), so they run on their
//! own thread with their own consumer handle, never on the stream thread.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, DefaultConsumerContext};
use rdkafka::Offset;
use streams::TaskId;

use super::tasks::{committed_offsets, TopicPartition};
use crate::kafka::{client_config_for, Role};
use crate::restore::watermarks;
use crate::RuntimeError;

/// One partition's start (committed offset) and end (last stable offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    pub partition: TopicPartition,
    pub start: i64,
    pub end: i64,
}

/// What the stream thread asks: the inputs of task `id` as activated at `activated`.
struct Request {
    id: TaskId,
    activated: Instant,
    parts: Vec<TopicPartition>,
}

/// The answer to a [`Request`]; the activation instant tells a stale answer (the task was
/// closed or recreated since) from a current one.
pub struct Answer {
    pub id: TaskId,
    pub activated: Instant,
    pub extents: Result<Vec<Extent>, String>,
}

/// The helper thread and its channels.
pub struct EndProbe {
    requests: Sender<Request>,
    answers: Receiver<Answer>,
}

impl EndProbe {
    pub fn new(config: &crate::StreamsConfig) -> Result<Self, RuntimeError> {
        let mut cc = client_config_for(config, Role::Consumer);
        cc.set("group.id", &config.application_id)
            .set("client.id", format!("{}-end-probe", config.application_id))
            .set("enable.auto.commit", "false")
            .set("isolation.level", if config.exactly_once() { "read_committed" } else { "read_uncommitted" });
        let consumer: BaseConsumer<DefaultConsumerContext> = cc.create()?;
        let (requests, incoming) = channel::<Request>();
        let (reply, answers) = channel();
        std::thread::Builder::new().name("end-probe".into()).spawn(move || {
            // Ends when the stream thread drops its sender or stops listening.
            while let Ok(req) = incoming.recv() {
                let extents = extents(&consumer, &req.parts).map_err(|e| e.to_string());
                if reply.send(Answer { id: req.id, activated: req.activated, extents }).is_err() {
                    break;
                }
            }
        })?;
        Ok(EndProbe { requests, answers })
    }

    /// Asks for the extents of `parts`, the inputs of task `id` activated at `activated`.
    pub fn ask(&self, id: TaskId, activated: Instant, parts: Vec<TopicPartition>) {
        // A closed channel means the helper died; the task then waits out the bounded wait for
        // unknown ends, as before any answer.
        if self.requests.send(Request { id, activated, parts }).is_err() {
            tracing::warn!(task = %id, "end-probe thread is gone; the task cannot learn its input ends");
        }
    }

    /// The answers that came in since the last call.
    pub fn answers(&self) -> Vec<Answer> {
        self.answers.try_iter().collect()
    }
}

/// Committed offset and end of each partition (retried inside [`committed_offsets`] and
/// [`watermarks`]).
fn extents(
    consumer: &BaseConsumer<DefaultConsumerContext>,
    parts: &[TopicPartition],
) -> Result<Vec<Extent>, RuntimeError> {
    let committed = committed_offsets(consumer, parts)?;
    let mut out = Vec::with_capacity(committed.len());
    for ((topic, partition), offset) in committed {
        let Some((low, end)) = watermarks(consumer, &topic, partition)? else {
            return Err(RuntimeError::Broker(format!("input {topic}[{partition}] does not exist")));
        };
        // Nothing committed: the group starts at the log start (`auto.offset.reset = earliest`).
        let start = match offset {
            Offset::Offset(o) => o,
            _ => low,
        };
        out.push(Extent { partition: (topic, partition), start, end });
    }
    Ok(out)
}

//! `send_offsets_to_transaction` under a deadline of our own.
//!
//! librdkafka (2.12) can block in `rd_kafka_send_offsets_to_transaction` far past its timeout
//! when the group coordinator's broker dies: the request's timeout is never checked
//! (confluentinc/librdkafka#5456) and a coordinator whose broker left the metadata is never
//! looked up again (#5511). Seen on the 3-node failover test: the stream thread sat in the call
//! for ten minutes, past `max.poll.interval.ms`, and lost its group membership.
//!
//! So the call runs on a helper thread that owns a handle to the producer; the stream thread
//! waits for its answer at most [`DEADLINE`]. A call that misses it leaves the producer wedged:
//! the caller reports it fatal, the commit cycle recreates the producer (whose
//! `init_transactions` fences the wedged one and aborts its transaction) and rewinds. The
//! helper and the old producer are released whenever librdkafka returns.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::TopicPartitionList;

use crate::kafka::DeliveryTracker;

/// librdkafka's own timeout for one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the stream thread waits for the helper before it gives the producer up.
pub const DEADLINE: Duration = Duration::from_secs(35);

type Request = (TopicPartitionList, ConsumerGroupMetadata);
type Answer = Result<(), KafkaError>;

/// The result of one guarded call.
pub enum Outcome {
    Done(Answer),
    /// librdkafka did not return within [`DEADLINE`]: this producer cannot be used again.
    Wedged,
}

/// A helper thread that sends offsets into the producer's open transaction.
pub struct OffsetsSender {
    requests: Sender<Request>,
    answers: Receiver<Answer>,
    wedged: bool,
}

impl OffsetsSender {
    pub fn new(producer: Arc<BaseProducer<DeliveryTracker>>) -> std::io::Result<Self> {
        let (requests, incoming) = channel::<Request>();
        let (reply, answers) = channel();
        std::thread::Builder::new().name("txn-offsets".into()).spawn(move || {
            // Ends when the owner is dropped (its sender closes) or stops listening.
            while let Ok((offsets, group)) = incoming.recv() {
                let answer = producer.send_offsets_to_transaction(&offsets, &group, CALL_TIMEOUT);
                if reply.send(answer).is_err() {
                    break;
                }
            }
        })?;
        Ok(OffsetsSender { requests, answers, wedged: false })
    }

    /// Sends `offsets` of `group` into the open transaction, waiting at most [`DEADLINE`].
    pub fn send(&mut self, offsets: TopicPartitionList, group: ConsumerGroupMetadata) -> Outcome {
        if self.wedged || self.requests.send((offsets, group)).is_err() {
            return Outcome::Wedged;
        }
        match self.answers.recv_timeout(DEADLINE) {
            Ok(answer) => Outcome::Done(answer),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                self.wedged = true;
                Outcome::Wedged
            }
        }
    }
}

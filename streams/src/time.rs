//! Event time, defined once per source, and the clocks a task keeps on it.
//!
//! Producers rarely set the Kafka timestamp to when something happened: it is the send time,
//! while the record's own field (`occurred_at`) says when the money moved; a card settlement
//! arrives days late, an imported statement a year late. A source therefore declares where its
//! event time comes from ([`EventTime`], Kafka Streams' `TimestampExtractor`), and from the
//! source on that time is the record's timestamp: [`crate::Record::timestamp`], what sinks and
//! repartition sinks write as the Kafka timestamp (so internal topics need no extractor), stream
//! time, stream-time punctuation, window assignment, the watermark.
//!
//! A task keeps three clocks on it:
//! - **partition time** per input partition: the largest event time processed from it
//!   ([`crate::ProcessorContext::input_time`] for the current record's input);
//! - **stream time**: the largest over all inputs (Kafka Streams' meaning), which drives
//!   stream-time punctuation;
//! - the **watermark**: the smallest partition time over the inputs that have carried a record
//!   ([`crate::ProcessorContext::watermark`]). Every input is at least that far, so it is the
//!   safe horizon for retention and window closing: when one input runs months ahead of another
//!   (a backfill, where direct inputs outrun repartitioned ones), stream time runs with the
//!   fastest, the watermark waits for the slowest. An input that has never carried a record does
//!   not count (it would hold the watermark back forever on a topic nobody writes, e.g. goals in
//!   a deployment without goals); when it carries its first record, older than the watermark,
//!   the watermark moves back to it, so retention never drops state that the late input's own
//!   records would still need. Once every input has carried a record the watermark only moves
//!   forward.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::serde::SerdeError;

/// Why a record has no usable event time of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeError {
    /// The record carries no time (an optional field left empty).
    Missing,
    /// The record carries a time that cannot be one (negative, unparsable).
    Invalid(String),
}

/// Reads a record's event time in milliseconds since the epoch (Kafka Streams'
/// `TimestampExtractor`). Closures `Fn(&K, &V) -> Option<i64>` are extractors (`None` is
/// [`TimeError::Missing`], a negative time [`TimeError::Invalid`]).
pub trait TimestampExtractor<K, V>: Send + Sync + 'static {
    fn extract(&self, key: &K, value: &V) -> Result<i64, TimeError>;
}

impl<K, V, F> TimestampExtractor<K, V> for F
where
    F: Fn(&K, &V) -> Option<i64> + Send + Sync + 'static,
{
    fn extract(&self, key: &K, value: &V) -> Result<i64, TimeError> {
        match self(key, value) {
            None => Err(TimeError::Missing),
            Some(t) if t < 0 => Err(TimeError::Invalid(format!("negative event time {t}"))),
            Some(t) => Ok(t),
        }
    }
}

/// Dead-letter reasons of records without a usable time.
pub mod reason {
    /// The source requires the record's own time and it has none.
    pub const MISSING_EVENT_TIME: &str = "missing_event_time";
    /// The source requires the record's own time and it is not a valid time.
    pub const INVALID_EVENT_TIME: &str = "invalid_event_time";
    /// The time comes from the Kafka timestamp and it is negative (no timestamp).
    pub const INVALID_TIMESTAMP: &str = "invalid_timestamp";
}

/// Where a source's event time comes from. The rule:
/// - [`EventTime::kafka_timestamp`] (the default): the Kafka timestamp; a negative one (a record
///   without timestamp) is dead-lettered as `invalid_timestamp`, as Kafka Streams'
///   `FailOnInvalidTimestamp` refuses it.
/// - [`EventTime::extract`]: the record's own time, required: a record without one, or with an
///   invalid one, is dead-lettered (`missing_event_time` / `invalid_event_time`).
/// - [`EventTime::or_kafka_timestamp`] on an extractor: the record's own time when it has a valid
///   one, else its Kafka timestamp (counted on `finstream_event_time_fallbacks_total{topic}`),
///   else dead-lettered as `invalid_timestamp`.
pub struct EventTime<K, V> {
    extractor: Option<Arc<dyn TimestampExtractor<K, V>>>,
    fallback: bool,
}

impl<K, V> Clone for EventTime<K, V> {
    fn clone(&self) -> Self {
        EventTime { extractor: self.extractor.clone(), fallback: self.fallback }
    }
}

impl<K: 'static, V: 'static> Default for EventTime<K, V> {
    fn default() -> Self {
        Self::kafka_timestamp()
    }
}

/// An event time and whether it fell back to the Kafka timestamp.
pub(crate) struct Extracted {
    pub time: i64,
    pub fell_back: bool,
}

impl<K: 'static, V: 'static> EventTime<K, V> {
    /// The record's Kafka timestamp (for topics whose producers set it to the event time, and
    /// for internal topics, which finstream writes with the event time).
    pub fn kafka_timestamp() -> Self {
        EventTime { extractor: None, fallback: true }
    }

    /// The record's own time, required.
    pub fn extract(extractor: impl TimestampExtractor<K, V>) -> Self {
        EventTime { extractor: Some(Arc::new(extractor)), fallback: false }
    }

    /// Falls back to the Kafka timestamp when the record has no valid time of its own.
    pub fn or_kafka_timestamp(mut self) -> Self {
        self.fallback = true;
        self
    }

    pub(crate) fn resolve(&self, key: &K, value: &V, kafka_timestamp: i64) -> Result<Extracted, SerdeError> {
        let own = match &self.extractor {
            None => Err(None),
            Some(x) => x.extract(key, value).map_err(Some),
        };
        match own {
            Ok(time) => Ok(Extracted { time, fell_back: false }),
            Err(why) if self.fallback => {
                if kafka_timestamp < 0 {
                    return Err(SerdeError::new(
                        reason::INVALID_TIMESTAMP,
                        format!("no usable event time: Kafka timestamp {kafka_timestamp} is negative"),
                    ));
                }
                Ok(Extracted { time: kafka_timestamp, fell_back: why.is_some() })
            }
            Err(Some(TimeError::Missing)) | Err(None) => {
                Err(SerdeError::new(reason::MISSING_EVENT_TIME, "the record carries no event time"))
            }
            Err(Some(TimeError::Invalid(why))) => Err(SerdeError::new(reason::INVALID_EVENT_TIME, why)),
        }
    }
}

/// A task's clocks, per input partition, for persisting with a commit (as Kafka Streams keeps
/// partition time in the committed offset's metadata), so a restarted task resumes with the
/// watermark and stream time it had rather than rebuilding them from the first records it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskClocks {
    /// Input topic → partition time (the largest event time processed from it).
    pub inputs: BTreeMap<String, i64>,
}

/// The live clocks of a task, indexed by input (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Clocks {
    /// Partition time per input; `i64::MIN` for an input that has not carried a record.
    inputs: Vec<i64>,
    pub watermark: i64,
    /// The input of the record being processed.
    pub current: Option<usize>,
}

impl Clocks {
    pub fn new(inputs: usize) -> Self {
        Clocks { inputs: vec![i64::MIN; inputs], watermark: i64::MIN, current: None }
    }

    /// A record with event time `t` from input `i` is being processed.
    pub fn observe(&mut self, i: usize, t: i64) {
        self.current = Some(i);
        if t > self.inputs[i] {
            self.inputs[i] = self.inputs[i].max(t);
            self.recompute();
        }
    }

    fn recompute(&mut self) {
        self.watermark = self.inputs.iter().copied().filter(|t| *t != i64::MIN).min().unwrap_or(i64::MIN);
    }

    pub fn input_time(&self, i: usize) -> Option<i64> {
        self.inputs.get(i).copied().filter(|t| *t != i64::MIN)
    }

    /// Restores partition times (never lowering one already observed).
    pub fn restore(&mut self, i: usize, t: i64) {
        self.inputs[i] = self.inputs[i].max(t);
        self.recompute();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_is_the_slowest_input_that_carried_data() {
        let mut c = Clocks::new(3);
        assert_eq!(c.watermark, i64::MIN);
        c.observe(0, 100);
        assert_eq!(c.watermark, 100, "one input carried data: it alone");
        c.observe(0, 500);
        assert_eq!(c.watermark, 500);
        c.observe(1, 50);
        assert_eq!(c.watermark, 50, "a late input's first record moves it back");
        c.observe(1, 40);
        assert_eq!(c.watermark, 50, "partition time never decreases");
        c.observe(1, 700);
        assert_eq!(c.watermark, 500);
        assert_eq!(c.input_time(2), None);
    }

    #[test]
    fn the_rule_for_missing_and_invalid_times() {
        let required: EventTime<(), Option<i64>> = EventTime::extract(|_: &(), v: &Option<i64>| *v);
        assert_eq!(required.resolve(&(), &Some(7), 99).unwrap().time, 7);
        assert_eq!(required.resolve(&(), &None, 99).err().unwrap().reason, reason::MISSING_EVENT_TIME);
        assert_eq!(required.resolve(&(), &Some(-5), 99).err().unwrap().reason, reason::INVALID_EVENT_TIME);
        let lenient = required.clone().or_kafka_timestamp();
        let got = lenient.resolve(&(), &None, 99).unwrap();
        assert!(got.fell_back && got.time == 99);
        assert!(!lenient.resolve(&(), &Some(7), 99).unwrap().fell_back);
        assert_eq!(lenient.resolve(&(), &None, -1).err().unwrap().reason, reason::INVALID_TIMESTAMP);
        let kafka: EventTime<(), Option<i64>> = EventTime::kafka_timestamp();
        let got = kafka.resolve(&(), &Some(7), 99).unwrap();
        assert!(!got.fell_back && got.time == 99);
        assert_eq!(kafka.resolve(&(), &None, -1).err().unwrap().reason, reason::INVALID_TIMESTAMP);
    }
}

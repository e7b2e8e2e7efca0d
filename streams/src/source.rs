//! How a source turns bytes into records: decoding (once per record, whatever the number of
//! children), event time, and whether its records must sit on the partition their key hashes to.

use std::any::Any;
use std::sync::Arc;

use crate::record::{RawRecord, Record};
use crate::serde::{Serde, SerdeError};
use crate::time::EventTime;

/// How a source is declared beyond its topics and serdes.
///
/// ```
/// # use streams::{SourceOptions, time::EventTime};
/// struct Payment { account: String, occurred_at: i64 }
/// let opts = SourceOptions::<String, Payment>::new()
///     .event_time(EventTime::extract(|_: &String, p: &Payment| Some(p.occurred_at)))
///     .key_placed();
/// ```
pub struct SourceOptions<K, V> {
    pub(crate) time: EventTime<K, V>,
    pub(crate) key_placed: bool,
}

impl<K: 'static, V: 'static> Default for SourceOptions<K, V> {
    fn default() -> Self {
        SourceOptions { time: EventTime::kafka_timestamp(), key_placed: false }
    }
}

impl<K: 'static, V: 'static> SourceOptions<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the records' event time comes from (default: the Kafka timestamp).
    pub fn event_time(mut self, time: EventTime<K, V>) -> Self {
        self.time = time;
        self
    }

    /// The source's records are looked up by key (state per key), so each must be processed by
    /// the task that owns its key under the sub-topology's partitioner. A record a producer put
    /// on another partition (a second producer with another partitioner) is not processed where
    /// it is but re-placed through `<application.id>-<source>-placement-repartition`, which the
    /// same source reads, and counted on `finstream_misplaced_records_total{topic}`.
    pub fn key_placed(mut self) -> Self {
        self.key_placed = true;
        self
    }
}

/// A decoded record behind `dyn Any` (a `Record<K, V>`), with its event time.
pub(crate) struct Decoded {
    pub record: Box<dyn Any + Send>,
    pub time: i64,
    pub fell_back: bool,
}

/// Raw bytes of a source topic → typed record with its event time as timestamp. The `&str` is
/// the topic the serdes are told (for a record re-placed through a placement topic, the user
/// topic it was produced to, so TopicNameStrategy serdes see the producer's topic).
pub(crate) type Decoder = Arc<dyn Fn(&RawRecord, &str) -> Result<Decoded, SerdeError> + Send + Sync>;

/// Clones a decoded `Record<K, V>` for all children of a source but the last.
pub(crate) type Cloner = fn(&(dyn Any + Send)) -> Box<dyn Any + Send>;

pub(crate) fn decoder<K, V>(key_serde: impl Serde<K>, value_serde: impl Serde<V>, time: EventTime<K, V>) -> Decoder
where
    K: Send + 'static,
    V: Send + 'static,
{
    Arc::new(move |raw: &RawRecord, topic: &str| {
        let key = key_serde.deserialize(topic, raw.key.as_deref().unwrap_or_default())?;
        let value = value_serde.deserialize(topic, raw.value.as_deref().unwrap_or_default())?;
        let t = time.resolve(&key, &value, raw.timestamp)?;
        let mut rec = Record::new(key, value, t.time);
        rec.headers = raw.headers.clone();
        Ok(Decoded { record: Box::new(rec), time: t.time, fell_back: t.fell_back })
    })
}

pub(crate) fn cloner<K, V>() -> Cloner
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    |any| {
        let rec = any.downcast_ref::<Record<K, V>>().expect("a source's cloner gets the source's own records");
        Box::new(rec.clone())
    }
}

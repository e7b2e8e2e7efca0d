//! A task's input side (Kafka Streams' `PartitionGroup` and `RecordQueue`): one queue per input
//! partition, records decoded when they are queued, and the choice of the next record.
//!
//! The next record is the queued head with the smallest event time, so a task merges its
//! inputs in event-time order. That only works while every input has something queued: a task
//! that processed on while one input is empty would run ahead of it. So, as in KIP-695, a task
//! does not process while an input partition is empty and
//! - the broker holds records for it that are not fetched yet (the end offset the runtime
//!   reported is beyond the fetch position): it waits, with no time limit, for the fetch;
//! - nothing is known to be missing: it waits `max.task.idle.ms` of wall-clock time for data
//!   to show up, then processes the others ("enforced processing") until that input has data;
//! - `max.task.idle.ms = -1`: it never waits.
//!
//! A partition whose end offset was never reported counts as caught up, so a runtime that does
//! not report end offsets gets the plain `max.task.idle.ms` behaviour.
//!
//! Records that cannot be processed (they failed to decode or have no valid event time) and
//! records that belong to another task are dealt with as soon as they reach the head of their
//! queue, whatever their timestamp: they change no state and no clock.

use std::any::Any;
use std::collections::{HashMap, VecDeque};

use prometheus::IntCounter;

use crate::processor::ProcessError;
use crate::record::RawRecord;

/// What a queued record is ready for.
pub(crate) enum Item {
    /// Decoded: a `Record<K, V>` of the input's source, timestamp = event time.
    Ready(Box<dyn Any + Send>),
    /// The record's fault (bytes, event time): dead-lettered by the error handler.
    Bad(ProcessError),
    /// Not the record's fault (e.g. the schema registry is down): the task fails retriably
    /// and the runtime redoes the work since the last commit.
    Retry(ProcessError),
    /// Its key belongs to this partition of the sub-topology, not to this task.
    Misplaced { partition: i32 },
}

pub(crate) struct Queued {
    pub raw: RawRecord,
    /// Event time (the Kafka timestamp for records that did not decode).
    pub time: i64,
    pub item: Item,
}

/// One input partition of a task.
pub(crate) struct InputPartition {
    pub topic: String,
    /// The source node reading it.
    pub source: usize,
    /// Records must be on the partition their key hashes to (a key-placed source's user topic).
    pub placed: bool,
    /// The source's placement topic, if it is key-placed.
    pub placement: Option<String>,
    queue: VecDeque<Queued>,
    /// Next offset known to be fetched from the broker (`None`: unknown).
    fetched: Option<i64>,
    /// End offset (last stable offset under read_committed) last reported by the runtime.
    end: Option<i64>,
    /// Wall-clock time until which the task waits for this empty partition.
    idle_deadline: Option<i64>,
    /// Wall-clock time until which the task waits to learn how far this empty partition reaches.
    unknown_deadline: Option<i64>,
    pub misplaced: IntCounter,
    pub fallbacks: IntCounter,
}

impl InputPartition {
    pub fn new(
        topic: String,
        source: usize,
        placement: Option<String>,
        misplaced: IntCounter,
        fallbacks: IntCounter,
    ) -> Self {
        let placed = placement.as_ref().is_some_and(|p| *p != topic);
        InputPartition {
            topic,
            source,
            placed,
            placement,
            queue: VecDeque::new(),
            fetched: None,
            end: None,
            idle_deadline: None,
            unknown_deadline: None,
            misplaced,
            fallbacks,
        }
    }

    /// Records in the broker not fetched yet; 0 when unknown.
    fn unfetched(&self) -> i64 {
        match (self.end, self.fetched) {
            (Some(end), Some(fetched)) => (end - fetched).max(0),
            _ => 0,
        }
    }
}

/// How long a task waits, at most, to learn the end offset of an empty input partition before it
/// processes its other inputs. The runtime asks the broker on activation (a round trip, longer
/// while a leader is elected); the bound only matters should the broker never answer.
pub const UNKNOWN_END_WAIT_MS: i64 = 30_000;

/// The inputs of a task, ordered by topic name (the tie-break between equal timestamps).
pub(crate) struct PartitionGroup {
    pub inputs: Vec<InputPartition>,
    by_topic: HashMap<String, usize>,
    max_idle_ms: i64,
}

impl PartitionGroup {
    pub fn new(mut inputs: Vec<InputPartition>, max_idle_ms: i64) -> Self {
        inputs.sort_by(|a, b| a.topic.cmp(&b.topic));
        let by_topic = inputs.iter().enumerate().map(|(i, x)| (x.topic.clone(), i)).collect();
        PartitionGroup { inputs, by_topic, max_idle_ms }
    }

    pub fn index(&self, topic: &str) -> Option<usize> {
        self.by_topic.get(topic).copied()
    }

    pub fn push(&mut self, i: usize, q: Queued) {
        let input = &mut self.inputs[i];
        let next = q.raw.offset + 1;
        input.fetched = Some(input.fetched.map_or(next, |f| f.max(next)));
        input.queue.push_back(q);
    }

    pub fn pop(&mut self, i: usize) -> Option<Queued> {
        self.inputs[i].queue.pop_front()
    }

    /// The runtime's view of the partition's end (the last stable offset under read_committed).
    /// Ends only grow: a lower report is an old one and is ignored.
    pub fn set_end_offset(&mut self, i: usize, end: i64) {
        let input = &mut self.inputs[i];
        input.end = Some(input.end.map_or(end, |e| e.max(end)));
    }

    /// The consumer's fetch position: past everything fetched, including control records and
    /// aborted data that never reach the task.
    pub fn set_fetch_position(&mut self, i: usize, position: i64) {
        let input = &mut self.inputs[i];
        input.fetched = Some(input.fetched.map_or(position, |f| f.max(position)));
    }

    /// Unfetched records of input `i` as far as the task knows.
    pub fn unfetched(&self, i: usize) -> i64 {
        self.inputs[i].unfetched()
    }

    /// Forgets queued records and what was known about fetching (after an abort, the runtime
    /// seeks back to the committed offsets and reports again).
    pub fn clear(&mut self) {
        for x in &mut self.inputs {
            x.queue.clear();
            x.fetched = None;
            x.end = None;
            x.idle_deadline = None;
            x.unknown_deadline = None;
        }
    }

    pub fn buffered(&self) -> usize {
        self.inputs.iter().map(|x| x.queue.len()).sum()
    }

    /// Records queued on input `i`.
    pub fn queued(&self, i: usize) -> usize {
        self.inputs[i].queue.len()
    }

    /// The input whose head is processed next at wall-clock time `now_ms`, or `None` to wait.
    pub fn next(&mut self, now_ms: i64) -> Option<usize> {
        let unordered = |q: &Queued| !matches!(q.item, Item::Ready(_));
        if let Some(i) = self.inputs.iter().position(|x| x.queue.front().is_some_and(unordered)) {
            return Some(i);
        }
        if self.inputs.iter().all(|x| x.queue.is_empty()) {
            for x in &mut self.inputs {
                x.idle_deadline = None;
            }
            return None;
        }
        if self.max_idle_ms >= 0 {
            for x in &mut self.inputs {
                if !x.queue.is_empty() {
                    x.idle_deadline = None;
                    continue;
                }
                if x.end.is_none() {
                    // How far the partition reaches is not known yet (a task just created or
                    // rewound): as Kafka Streams does for an unknown lag, wait for it rather
                    // than run ahead on the other inputs; bounded, should it never be reported.
                    let deadline = *x.unknown_deadline.get_or_insert(now_ms.saturating_add(UNKNOWN_END_WAIT_MS));
                    if now_ms < deadline {
                        return None;
                    }
                } else if x.unfetched() > 0 {
                    // KIP-695: data is on the broker; wait for the fetch, however long.
                    x.idle_deadline = None;
                    return None;
                }
                let deadline = *x.idle_deadline.get_or_insert(now_ms.saturating_add(self.max_idle_ms));
                if now_ms < deadline {
                    return None;
                }
            }
        }
        self.inputs.iter().enumerate().filter_map(|(i, x)| x.queue.front().map(|q| (q.time, i))).min().map(|(_, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> PartitionGroup {
        let counter = || IntCounter::new("c", "c").unwrap();
        let input = |t: &str| InputPartition::new(t.into(), 0, None, counter(), counter());
        PartitionGroup::new(vec![input("a"), input("b")], 0)
    }

    fn record(topic: &str, time: i64) -> Queued {
        let raw = RawRecord {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            key: None,
            value: None,
            timestamp: time,
            headers: Default::default(),
        };
        Queued { raw, time, item: Item::Ready(Box::new(())) }
    }

    /// KIP-695: with `max.task.idle.ms` 0 an empty input whose end is not known yet holds the
    /// others back (bounded), one known to have unfetched records holds them back until
    /// fetched, and one known to be caught up does not.
    #[test]
    fn an_empty_input_of_unknown_or_unfetched_end_holds_the_others_back() {
        let mut g = group();
        g.push(0, record("a", 10));
        assert_eq!(g.next(1_000), None, "b's end is unknown");
        assert_eq!(g.next(1_000 + UNKNOWN_END_WAIT_MS), Some(0), "bounded wait");

        let mut g = group();
        g.push(0, record("a", 10));
        g.set_end_offset(1, 5);
        g.set_fetch_position(1, 3);
        assert_eq!(g.next(1_000), None, "b has records on the broker");
        assert_eq!(g.next(1_000_000), None, "however long");
        g.set_end_offset(1, 4);
        assert_eq!(g.next(1_000), None, "an older, lower end does not lower it");
        g.set_fetch_position(1, 5);
        assert_eq!(g.next(1_000), Some(0), "b is caught up");
    }
}

//! The driver's in-memory log: partitioned topics with Kafka's transactional visibility.
//!
//! Records sent inside a transaction take their offsets at once (as on a broker) but stay
//! invisible until the transaction commits; an abort leaves them invisible for good. Each
//! commit or abort writes a control marker into every partition the transaction touched, so
//! offsets have the gaps they have on Kafka and restore and checkpoint arithmetic is tested
//! against them. Readers see committed records up to the first open one (the last stable
//! offset), like a `read_committed` consumer.

use std::collections::{BTreeMap, HashMap};

use crate::context::TaskId;
use crate::cycle::{Delivered, FailPoint, LogError, TxnLog};
use crate::record::{Headers, OutRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    Committed,
    Open,
    Aborted,
    /// A commit or abort marker: takes an offset, carries no data.
    Control,
}

#[derive(Debug, Clone)]
pub(crate) struct LogRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Headers,
    /// Global append order, so reads across partitions are deterministic.
    pub seq: u64,
    pub visibility: Visibility,
}

/// What the driver's log fails with: a crash the test asked for, or an injected abortable error.
#[derive(Debug, thiserror::Error)]
pub enum DriverLogError {
    #[error("simulated crash at {}", .0.name())]
    Crash(FailPoint),
    #[error("simulated abortable failure at {}", .0.name())]
    Abortable(FailPoint),
}

impl LogError for DriverLogError {
    fn is_fatal(&self) -> bool {
        false
    }
    fn is_retriable(&self) -> bool {
        false
    }
    fn txn_requires_abort(&self) -> bool {
        matches!(self, DriverLogError::Abortable(_))
    }
}

#[derive(Default)]
pub(crate) struct MemLog {
    pub partitions: i32,
    pub logs: HashMap<(String, i32), Vec<LogRecord>>,
    pub committed_offsets: HashMap<(String, i32), i64>,
    seq: u64,
    /// Partitions the open transaction wrote to, with its first offset there.
    open: BTreeMap<(String, i32), usize>,
    pending_offsets: Vec<(String, i32, i64)>,
    delivered: Delivered,
    /// The next commit fails here (a crash or an abortable error).
    pub fail: Option<(FailPoint, bool)>,
}

impl MemLog {
    pub fn new(partitions: i32) -> Self {
        MemLog { partitions, ..Default::default() }
    }

    /// Appends one record; returns its offset.
    pub fn append(&mut self, topic: &str, partition: i32, record: OutRecordParts, visibility: Visibility) -> i64 {
        self.seq += 1;
        let log = self.logs.entry((topic.to_string(), partition)).or_default();
        log.push(LogRecord {
            key: record.key,
            value: record.value,
            timestamp: record.timestamp,
            headers: record.headers,
            seq: self.seq,
            visibility,
        });
        log.len() as i64 - 1
    }

    /// Committed records of one partition from `from`, up to the first open record; returns
    /// them with their offsets and the position after the last one read.
    pub fn read_committed(&self, topic: &str, partition: i32, from: i64) -> (Vec<(i64, &LogRecord)>, i64) {
        self.read_committed_max(topic, partition, from, usize::MAX)
    }

    /// As [`MemLog::read_committed`], at most `max` records (a consumer's fetch size). The
    /// position returned is past any control markers and aborted records that follow the last
    /// record read, as a consumer's fetch position is.
    pub fn read_committed_max(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> (Vec<(i64, &LogRecord)>, i64) {
        let Some(log) = self.logs.get(&(topic.to_string(), partition)) else { return (Vec::new(), from) };
        let mut out = Vec::new();
        let mut pos = from.max(0);
        while let Some(r) = log.get(pos as usize) {
            match r.visibility {
                Visibility::Open => break,
                Visibility::Committed if out.len() >= max => break,
                Visibility::Committed => out.push((pos, r)),
                Visibility::Aborted | Visibility::Control => {}
            }
            pos += 1;
        }
        (out, pos)
    }

    /// The last stable offset of a partition: the first record of an open transaction, or the
    /// end of the log. A read_committed consumer's end offset.
    pub fn stable_end(&self, topic: &str, partition: i32) -> i64 {
        let key = (topic.to_string(), partition);
        match self.open.get(&key) {
            Some(first_open) => *first_open as i64,
            None => self.logs.get(&key).map_or(0, |l| l.len() as i64),
        }
    }

    /// End offset (the high watermark) of a partition.
    pub fn end(&self, topic: &str, partition: i32) -> i64 {
        self.logs.get(&(topic.to_string(), partition)).map_or(0, |l| l.len() as i64)
    }

    fn end_transaction(&mut self, outcome: Visibility) {
        for ((topic, p), first) in std::mem::take(&mut self.open) {
            let log = self.logs.get_mut(&(topic.clone(), p)).expect("written partition exists");
            for r in &mut log[first..] {
                if r.visibility == Visibility::Open {
                    r.visibility = outcome;
                }
            }
            let marker = OutRecordParts { key: None, value: None, timestamp: 0, headers: Headers::new() };
            self.append(&topic, p, marker, Visibility::Control);
        }
        self.pending_offsets.clear();
        self.delivered.clear();
    }

    /// A crashed producer's transaction is aborted by the coordinator when the next
    /// incarnation initializes.
    pub fn abort_open(&mut self) {
        self.end_transaction(Visibility::Aborted);
    }

    fn check(&mut self, point: FailPoint) -> Result<(), DriverLogError> {
        match self.fail {
            Some((p, crash)) if p == point => {
                self.fail = None;
                Err(if crash { DriverLogError::Crash(p) } else { DriverLogError::Abortable(p) })
            }
            _ => Ok(()),
        }
    }
}

/// The parts of a record the log stores.
pub(crate) struct OutRecordParts {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Headers,
}

impl TxnLog for MemLog {
    type Error = DriverLogError;

    fn partitions(&mut self, _topic: &str) -> Result<Option<i32>, DriverLogError> {
        Ok(Some(self.partitions))
    }

    fn send(&mut self, task: TaskId, record: OutRecord) -> Result<(), DriverLogError> {
        let p = record.partition.unwrap_or(0);
        let topic = record.topic;
        let parts = OutRecordParts {
            key: record.key,
            value: record.value,
            timestamp: record.timestamp,
            headers: record.headers,
        };
        let offset = self.append(&topic, p, parts, Visibility::Open);
        self.open.entry((topic.clone(), p)).or_insert(offset as usize);
        let next = self.delivered.entry((task, topic, p)).or_insert(0);
        *next = (*next).max(offset + 1);
        Ok(())
    }

    fn flush(&mut self) -> Result<Delivered, DriverLogError> {
        Ok(std::mem::take(&mut self.delivered))
    }

    fn send_offsets(&mut self, offsets: &[(String, i32, i64)]) -> Result<(), DriverLogError> {
        self.pending_offsets.extend_from_slice(offsets);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), DriverLogError> {
        for (t, p, o) in std::mem::take(&mut self.pending_offsets) {
            self.committed_offsets.insert((t, p), o);
        }
        self.end_transaction(Visibility::Committed);
        Ok(())
    }

    fn abort(&mut self) -> Result<(), DriverLogError> {
        self.end_transaction(Visibility::Aborted);
        Ok(())
    }

    fn fail_point(&mut self, point: FailPoint) -> Result<(), DriverLogError> {
        self.check(point)
    }
}

//! The time-driven state every DSL operator with a clock keeps in one store (`<name>-index`):
//! the operator's clock (the largest timestamp it has seen), a record sequence number, and
//! entries due at a time, in due order (windows to expire, buffered results to emit, join
//! buffers to purge).
//!
//! The clock is state like any other: it is restored with the store after a crash or a lost
//! state directory, so lateness and closing decide the same way on a replay as the first time
//! (the task's stream time restarts from the replayed records and would not). Due entries are
//! ordered by time, so closing or expiring reads only what is due, never the whole store.

use crate::context::ProcessorContext;
use crate::processor::ProcessError;
use crate::serde::{BytesSerde, Serde, SerdeError};
use crate::store::typed::KvStoreDef;

/// Keys of an index store: `[0]` for the operator state, `[1] ++ due ++ tag ++ id` for entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IndexKey {
    State,
    Due { at: i64, tag: u8, id: Vec<u8> },
}

const STATE: u8 = 0;
const DUE: u8 = 1;

fn flip(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn unflip(b: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63)) as i64)
}

pub(crate) struct IndexKeySerde;

impl Serde<IndexKey> for IndexKeySerde {
    fn serialize(&self, _: &str, key: &IndexKey) -> Result<Vec<u8>, SerdeError> {
        Ok(match key {
            IndexKey::State => vec![STATE],
            IndexKey::Due { at, tag, id } => {
                let mut k = Vec::with_capacity(10 + id.len());
                k.push(DUE);
                k.extend_from_slice(&flip(*at));
                k.push(*tag);
                k.extend_from_slice(id);
                k
            }
        })
    }
    fn deserialize(&self, _: &str, bytes: &[u8]) -> Result<IndexKey, SerdeError> {
        let bad = || SerdeError::new("invalid_index_key", "undecodable operator index key");
        match bytes.first() {
            Some(&STATE) if bytes.len() == 1 => Ok(IndexKey::State),
            Some(&DUE) if bytes.len() >= 10 => {
                Ok(IndexKey::Due { at: unflip(&bytes[1..9]).ok_or_else(bad)?, tag: bytes[9], id: bytes[10..].to_vec() })
            }
            _ => Err(bad()),
        }
    }
}

/// The operator's clock and record counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpState {
    /// Largest record timestamp seen (`i64::MIN` before the first record).
    pub clock: i64,
    /// Next sequence number for records the operator buffers.
    pub seq: u64,
}

/// An entry that is due.
pub(crate) struct Due {
    pub at: i64,
    pub tag: u8,
    pub id: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Typed access to one operator's index store.
#[derive(Clone)]
pub(crate) struct OperatorIndex {
    pub def: KvStoreDef<IndexKey, Vec<u8>>,
}

impl OperatorIndex {
    pub fn new(name: String) -> Self {
        OperatorIndex { def: KvStoreDef::with_serdes(name, IndexKeySerde, BytesSerde) }
    }

    pub fn state(&self, ctx: &mut ProcessorContext<'_>) -> Result<OpState, ProcessError> {
        let raw = ctx.store(&self.def)?.get(&IndexKey::State)?;
        Ok(match raw.as_deref().filter(|b| b.len() == 16) {
            Some(b) => OpState {
                clock: unflip(&b[..8]).unwrap_or(i64::MIN),
                seq: u64::from_be_bytes(b[8..].try_into().unwrap_or_default()),
            },
            None => OpState { clock: i64::MIN, seq: 0 },
        })
    }

    pub fn save_state(&self, ctx: &mut ProcessorContext<'_>, s: OpState) -> Result<(), ProcessError> {
        let mut v = flip(s.clock).to_vec();
        v.extend_from_slice(&s.seq.to_be_bytes());
        Ok(ctx.store(&self.def)?.put(&IndexKey::State, &v)?)
    }

    pub fn put(
        &self,
        ctx: &mut ProcessorContext<'_>,
        at: i64,
        tag: u8,
        id: &[u8],
        payload: &[u8],
    ) -> Result<(), ProcessError> {
        let key = IndexKey::Due { at, tag, id: id.to_vec() };
        Ok(ctx.store(&self.def)?.put(&key, &payload.to_vec())?)
    }

    pub fn get(
        &self,
        ctx: &mut ProcessorContext<'_>,
        at: i64,
        tag: u8,
        id: &[u8],
    ) -> Result<Option<Vec<u8>>, ProcessError> {
        Ok(ctx.store(&self.def)?.get(&IndexKey::Due { at, tag, id: id.to_vec() })?)
    }

    pub fn remove(&self, ctx: &mut ProcessorContext<'_>, at: i64, tag: u8, id: &[u8]) -> Result<(), ProcessError> {
        Ok(ctx.store(&self.def)?.delete(&IndexKey::Due { at, tag, id: id.to_vec() })?)
    }

    /// Entries due at or before `now`, oldest first (not removed: the caller does).
    pub fn due(&self, ctx: &mut ProcessorContext<'_>, now: i64) -> Result<Vec<Due>, ProcessError> {
        let mut upper = vec![DUE];
        match now.checked_add(1) {
            Some(n) => upper.extend_from_slice(&flip(n)),
            None => upper = vec![DUE + 1],
        }
        let entries = ctx.store(&self.def)?.range_bytes(Some(&[DUE]), Some(&upper))?;
        Ok(entries
            .into_iter()
            .filter_map(|(k, payload)| match k {
                IndexKey::Due { at, tag, id } => Some(Due { at, tag, id, payload }),
                IndexKey::State => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_state_first_then_by_due_time() {
        let s = IndexKeySerde;
        let enc = |k: &IndexKey| s.serialize("i", k).unwrap();
        let due = |at, tag, id: &[u8]| IndexKey::Due { at, tag, id: id.to_vec() };
        let keys =
            [IndexKey::State, due(i64::MIN, 9, b"z"), due(-1, 0, b""), due(0, 0, b"a"), due(0, 1, b""), due(7, 0, b"")];
        for w in keys.windows(2) {
            assert!(enc(&w[0]) < enc(&w[1]), "{:?} < {:?}", w[0], w[1]);
        }
        for k in keys {
            assert_eq!(s.deserialize("i", &enc(&k)).unwrap(), k);
        }
        assert!(s.deserialize("i", &[1, 2]).is_err());
    }
}

//! Event-time windows: tumbling and hopping windows with a grace period, a window store, and a
//! windowed aggregation processor that sends late records to a late path instead of dropping them.

use std::marker::PhantomData;

use crate::context::ProcessorContext;
use crate::processor::{ProcessError, Processor, PunctuationType};
use crate::record::Record;
use crate::serde::Serde;
use crate::store::{prefix_end, CachedStore, StoreError};

pub mod assign;
pub mod calendar;

/// Window sizes in milliseconds. `advance == size` is tumbling; `advance < size` is hopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub size: i64,
    pub advance: i64,
    /// How long after a window's end records for it are still accepted.
    pub grace: i64,
}

impl TimeWindows {
    pub fn tumbling(size: i64, grace: i64) -> Self {
        TimeWindows { size, advance: size, grace }
    }
    pub fn hopping(size: i64, advance: i64, grace: i64) -> Self {
        TimeWindows { size, advance, grace }
    }
    /// Starts of all windows containing `ts`, oldest first (windows are aligned to the epoch).
    pub fn windows_for(&self, ts: i64) -> Vec<i64> {
        let last = ts - ts.rem_euclid(self.advance);
        let mut starts = Vec::new();
        let mut s = last;
        while s > ts - self.size {
            starts.push(s);
            s -= self.advance;
        }
        starts.reverse();
        starts
    }
}

/// A window of a key: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Windowed<K> {
    pub key: K,
    pub start: i64,
    pub end: i64,
}

/// Composite key: length-prefixed key bytes, then the window start with its sign bit flipped so
/// byte order equals time order. The prefix keeps `ab` and `abc` apart in range scans.
pub(crate) fn window_key(key: &[u8], start: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 12);
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    k
}

pub(crate) fn split_window_key(k: &[u8]) -> Option<(&[u8], i64)> {
    let len = u32::from_be_bytes(k.get(..4)?.try_into().ok()?) as usize;
    let key = k.get(4..4 + len)?;
    let ts: [u8; 8] = k.get(4 + len..12 + len)?.try_into().ok()?;
    Some((key, (u64::from_be_bytes(ts) ^ (1 << 63)) as i64))
}

/// Typed access to a window store: values per (key, window start).
pub struct WindowStore<'a, K, V> {
    pub(crate) store: &'a mut CachedStore,
    pub(crate) key_serde: &'a dyn Serde<K>,
    pub(crate) value_serde: &'a dyn Serde<V>,
}

impl<K: 'static, V: 'static> WindowStore<'_, K, V> {
    fn err(&self, source: crate::serde::SerdeError) -> StoreError {
        StoreError::Serde { store: self.store.name.clone(), source }
    }
    pub fn get(&mut self, key: &K, start: i64) -> Result<Option<V>, StoreError> {
        let k = self.key_serde.serialize(&self.store.name, key).map_err(|e| self.err(e))?;
        match self.store.get(&window_key(&k, start))? {
            Some(v) => self.value_serde.deserialize(&self.store.name, &v).map(Some).map_err(|e| self.err(e)),
            None => Ok(None),
        }
    }
    pub fn put(&mut self, key: &K, start: i64, value: &V) -> Result<(), StoreError> {
        let k = self.key_serde.serialize(&self.store.name, key).map_err(|e| self.err(e))?;
        let v = self.value_serde.serialize(&self.store.name, value).map_err(|e| self.err(e))?;
        self.store.put(window_key(&k, start), v);
        Ok(())
    }
    pub fn delete(&mut self, key: &K, start: i64) -> Result<(), StoreError> {
        let k = self.key_serde.serialize(&self.store.name, key).map_err(|e| self.err(e))?;
        self.store.delete(window_key(&k, start));
        Ok(())
    }
    /// Windows of `key` starting in `[from, to]`, oldest first.
    pub fn fetch(&mut self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V)>, StoreError> {
        let k = self.key_serde.serialize(&self.store.name, key).map_err(|e| self.err(e))?;
        let (lo, hi) = (window_key(&k, from), window_key(&k, to.saturating_add(1)));
        let raw = self.store.range(Some(&lo), Some(&hi))?;
        raw.into_iter()
            .map(|(wk, v)| {
                let start = split_window_key(&wk).map(|(_, s)| s).unwrap_or(from);
                Ok((start, self.value_serde.deserialize(&self.store.name, &v).map_err(|e| self.err(e))?))
            })
            .collect()
    }
}

/// Reads windows straight from committed bytes (for interactive queries).
pub fn decode_window_entry<K: 'static, V: 'static>(
    key_serde: &dyn Serde<K>,
    value_serde: &dyn Serde<V>,
    store: &str,
    raw_key: &[u8],
    raw_value: &[u8],
) -> Option<(K, i64, V)> {
    let (k, start) = split_window_key(raw_key)?;
    Some((key_serde.deserialize(store, k).ok()?, start, value_serde.deserialize(store, raw_value).ok()?))
}

/// The key range of one key's windows in a window store's backend.
pub fn window_range_for(key: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut p = Vec::with_capacity(key.len() + 4);
    p.extend_from_slice(&(key.len() as u32).to_be_bytes());
    p.extend_from_slice(key);
    let end = prefix_end(&p);
    (p, end)
}

/// When results of a windowed aggregation are forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    /// On every update (Kafka Streams' default with caching off).
    #[default]
    OnUpdate,
    /// Once per window, when stream time passes its end plus grace (`suppress(untilWindowCloses)`).
    OnWindowClose,
}

/// Aggregates values per key into windows held in `store`; forwards `Record<Windowed<K>, A>` to
/// its children, and late records (all windows closed) to the child named `late_child` if set.
///
/// For `OnWindowClose` it keeps a second store, `<store>-open`, of windows not yet emitted,
/// ordered by end time, so closing is a range scan and survives crashes like any state.
///
/// Windows close on the task's **watermark** ([`ProcessorContext::watermark`]), not on stream
/// time: closing cannot be undone, and a task whose inputs are not equally far (a backfill, where
/// a direct input runs ahead of a repartitioned one) would otherwise close windows that the
/// slower input's records still belong to and drop them as late. With a single input, or inputs
/// in step, the two clocks are the same. A window emitted on close stays closed even if the
/// watermark moves back (an input carrying its first, older record): such records are late.
pub struct WindowedAggregate<K, V, A, I, F> {
    pub store: String,
    pub windows: TimeWindows,
    pub emit: EmitStrategy,
    pub late_child: Option<String>,
    pub initializer: I,
    pub aggregator: F,
    pub _t: PhantomData<fn(K, V, A)>,
}

impl<K, V, A, I, F> WindowedAggregate<K, V, A, I, F> {
    pub fn open_store_name(store: &str) -> String {
        format!("{store}-open")
    }
}

impl<K, V, A, I, F> Processor<K, V> for WindowedAggregate<K, V, A, I, F>
where
    K: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: Clone + Send + 'static,
    A: Clone + Send + 'static,
    I: Fn() -> A + Send + 'static,
    F: Fn(&K, &V, A) -> A + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        if self.emit == EmitStrategy::OnWindowClose {
            // Closing is checked after every record via stream-time punctuation at 1 ms steps;
            // the scan only touches windows that are due.
            ctx.schedule(1, PunctuationType::StreamTime);
        }
        Ok(())
    }

    fn process(&mut self, record: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let (watermark, stream_time) = (ctx.watermark(), ctx.stream_time());
        let mut any_open = false;
        for start in self.windows.windows_for(record.timestamp) {
            let end = start + self.windows.size;
            let closes = end + self.windows.grace;
            if closes <= watermark {
                continue; // this window closed already
            }
            // The watermark only moves back when an input carries its first record; a window it
            // had closed (only possible if stream time passed its close too) was emitted.
            if self.emit == EmitStrategy::OnWindowClose
                && closes <= stream_time
                && self.emitted(ctx, &record.key, start)?
            {
                continue;
            }
            any_open = true;
            let agg = {
                let mut ws = ctx.window_store::<K, A>(&self.store)?;
                let current = ws.get(&record.key, start)?.unwrap_or_else(&self.initializer);
                let next = (self.aggregator)(&record.key, &record.value, current);
                ws.put(&record.key, start, &next)?;
                next
            };
            let windowed = Windowed { key: record.key.clone(), start, end };
            match self.emit {
                EmitStrategy::OnUpdate => {
                    let out = Record {
                        key: windowed,
                        value: agg,
                        timestamp: record.timestamp,
                        headers: record.headers.clone(),
                    };
                    for child in self.result_children(ctx) {
                        ctx.forward_to(&child, out.clone())?;
                    }
                }
                EmitStrategy::OnWindowClose => {
                    let open = Self::open_store_name(&self.store);
                    let mut idx = ctx.kv_store::<(i64, Windowed<K>), ()>(&open)?;
                    idx.put(&(end, windowed), &())?;
                }
            }
        }
        if !any_open {
            ctx.count_late();
            if let Some(late) = self.late_child.clone() {
                ctx.forward_to(&late, record)?;
            }
        }
        // Stream-time punctuation fires when stream time moves; a watermark that moves while
        // stream time stands (a slower input catching up) is checked here.
        if self.emit == EmitStrategy::OnWindowClose && ctx.watermark() < ctx.stream_time() {
            self.close_due(ctx)?;
        }
        Ok(())
    }

    fn punctuate(
        &mut self,
        _kind: PunctuationType,
        _now: i64,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        if self.emit != EmitStrategy::OnWindowClose {
            return Ok(());
        }
        self.close_due(ctx)
    }
}

impl<K, V, A, I, F> WindowedAggregate<K, V, A, I, F>
where
    K: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: Clone + Send + 'static,
    A: Clone + Send + 'static,
{
    /// Whether window `start` of `key` was emitted on close: it has a value but is no longer
    /// in the open index.
    fn emitted(&self, ctx: &mut ProcessorContext<'_>, key: &K, start: i64) -> Result<bool, ProcessError> {
        let end = start + self.windows.size;
        if ctx.window_store::<K, A>(&self.store)?.get(key, start)?.is_none() {
            return Ok(false);
        }
        let open = Self::open_store_name(&self.store);
        let windowed = Windowed { key: key.clone(), start, end };
        Ok(ctx.kv_store::<(i64, Windowed<K>), ()>(&open)?.get(&(end, windowed))?.is_none())
    }

    /// Emits and forgets every open window whose end plus grace the watermark has reached.
    fn close_due(&self, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let now = ctx.watermark();
        if now == i64::MIN {
            return Ok(());
        }
        let open = Self::open_store_name(&self.store);
        let due: Vec<(i64, Windowed<K>)> = {
            let mut idx = ctx.kv_store::<(i64, Windowed<K>), ()>(&open)?;
            // Keys start with the end time, order-preserving: scan only windows due to close.
            let upper = ((now.saturating_sub(self.windows.grace).saturating_add(1) as u64) ^ (1 << 63)).to_be_bytes();
            idx.range_bytes(None, Some(&upper))?.into_iter().map(|(k, _)| k).collect()
        };
        for (end, w) in due {
            let value = ctx.window_store::<K, A>(&self.store)?.get(&w.key, w.start)?;
            ctx.kv_store::<(i64, Windowed<K>), ()>(&open)?.delete(&(end, w.clone()))?;
            if let Some(agg) = value {
                let out = Record::new(w, agg, end - 1);
                for child in self.result_children(ctx) {
                    ctx.forward_to(&child, out.clone())?;
                }
            }
        }
        Ok(())
    }
}

impl<K, V, A, I, F> WindowedAggregate<K, V, A, I, F> {
    fn result_children(&self, ctx: &ProcessorContext<'_>) -> Vec<String> {
        ctx.child_names().into_iter().filter(|n| Some(n) != self.late_child.as_ref()).collect()
    }
}

/// Order-preserving serde for the open-window index: end time first (sign-flipped big-endian)
/// so a range scan returns windows in closing order, then the JSON of the window.
pub struct OpenWindowSerde<K>(PhantomData<fn() -> K>);

impl<K> OpenWindowSerde<K> {
    /// `const`, so an index store can be declared as a typed handle constant.
    pub const fn new() -> Self {
        OpenWindowSerde(PhantomData)
    }
}

impl<K> Default for OpenWindowSerde<K> {
    fn default() -> Self {
        OpenWindowSerde::new()
    }
}

impl<K> Serde<(i64, Windowed<K>)> for OpenWindowSerde<K>
where
    K: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, _t: &str, value: &(i64, Windowed<K>)) -> Result<Vec<u8>, crate::serde::SerdeError> {
        let mut out = ((value.0 as u64) ^ (1 << 63)).to_be_bytes().to_vec();
        out.extend(
            serde_json::to_vec(&value.1).map_err(|e| crate::serde::SerdeError::new("json_encode", e.to_string()))?,
        );
        Ok(out)
    }
    fn deserialize(&self, _t: &str, bytes: &[u8]) -> Result<(i64, Windowed<K>), crate::serde::SerdeError> {
        let bad = || crate::serde::SerdeError::new("invalid_window_key", "short key");
        let end =
            (u64::from_be_bytes(bytes.get(..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?) ^ (1 << 63)) as i64;
        let w = serde_json::from_slice(&bytes[8..])
            .map_err(|e| crate::serde::SerdeError::new("json_decode", e.to_string()))?;
        Ok((end, w))
    }
}

/// Serde for `()` values (index stores).
#[derive(Default, Clone, Copy)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize(&self, _t: &str, _v: &()) -> Result<Vec<u8>, crate::serde::SerdeError> {
        Ok(Vec::new())
    }
    fn deserialize(&self, _t: &str, _b: &[u8]) -> Result<(), crate::serde::SerdeError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_hopping_assignment() {
        let t = TimeWindows::tumbling(10, 0);
        assert_eq!(t.windows_for(0), vec![0]);
        assert_eq!(t.windows_for(9), vec![0]);
        assert_eq!(t.windows_for(10), vec![10]);
        assert_eq!(t.windows_for(-1), vec![-10]);
        let h = TimeWindows::hopping(10, 5, 0);
        assert_eq!(h.windows_for(7), vec![0, 5]);
        assert_eq!(h.windows_for(10), vec![5, 10]);
    }

    #[test]
    fn window_keys_sort_by_key_then_time() {
        let a = window_key(b"ab", 5);
        let b = window_key(b"ab", -5);
        let c = window_key(b"abc", -100);
        assert!(b < a);
        assert!(a < c, "a shorter key never interleaves with a longer one");
        assert_eq!(split_window_key(&b), Some((&b"ab"[..], -5)));
    }
}

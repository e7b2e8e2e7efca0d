//! Windowed aggregations (time, calendar and session windows) into windowed tables, and
//! `suppress(until_window_closes)`.
//!
//! Each windowed aggregation keeps its windows in the handle's store and its clock (the largest
//! timestamp it has seen) plus an expiry index in `<store>-index`. A window accepts records
//! until the clock passes its end plus grace (a session: its last record plus gap plus grace);
//! later records are late: counted on `finstream_late_records_total{processor}` and dropped, so
//! a closed window never changes. A closed window is deleted once the clock passes its close
//! plus the handle's retention. Suppression buffers the latest result per window in
//! `<name>-store` and emits it once, when the window closes.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::context::ProcessorContext;
use crate::processor::{ProcessError, Processor};
use crate::record::Record;
use crate::serde::{Serde, SerdeError};
use crate::store::typed::{SerdeRef, SessionKeySerde, SessionStoreDef, StoreDef, WindowStoreDef};
use crate::window::assign::WindowAssigner;
use crate::window::{split_window_key, window_key, Windowed};

use super::graph::Shared;
use super::index::{OpState, OperatorIndex};
use super::stream::KStream;
use super::table::Step;
use super::Data;

const EXPIRE: u8 = 1;
const BUFFERED: u8 = 2;

fn index_of(store: &str) -> OperatorIndex {
    OperatorIndex::new(format!("{store}-index"))
}

/// A grouped stream with windows, ready to be aggregated per (key, window).
pub struct TimeWindowedKStream<K, V, W> {
    graph: Shared,
    node: usize,
    windows: Arc<W>,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K: Data, V: Data, W: WindowAssigner<K, V>> TimeWindowedKStream<K, V, W> {
    pub(crate) fn new(graph: Shared, node: usize, windows: W) -> Self {
        TimeWindowedKStream { graph, node, windows: Arc::new(windows), _t: PhantomData }
    }

    fn aggregate_with<A: Data>(&self, store: &WindowStoreDef<K, A>, step: Arc<Step<K, V, A>>) -> WindowedKTable<K, A> {
        let index = index_of(store.name());
        let (def, windows, idx) = (store.clone(), self.windows.clone(), index.clone());
        let mut g = self.graph.borrow_mut();
        let node = g.processor::<K, V, _, _>(store.name().to_string(), vec![self.node], move || WindowAggregate {
            windows: windows.clone(),
            store: def.clone(),
            index: idx.clone(),
            step: step.clone(),
        });
        g.store(store.spec(), &[node]);
        g.store(index.def.spec(), &[node]);
        drop(g);
        WindowedKTable {
            graph: self.graph.clone(),
            node,
            close_after: self.windows.grace(),
            key: store.key_serde().clone(),
            value: store.value_serde().clone(),
            _t: PhantomData,
        }
    }

    /// Records per key and window.
    pub fn count(&self, store: &WindowStoreDef<K, i64>) -> WindowedKTable<K, i64> {
        self.aggregate_with(store, Arc::new(|_: &K, _: &V, n: Option<i64>| Ok(n.unwrap_or(0) + 1)))
    }

    /// Combines the values of each key and window with `f`.
    pub fn reduce<F>(&self, f: F, store: &WindowStoreDef<K, V>) -> WindowedKTable<K, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        self.aggregate_with(
            store,
            Arc::new(move |_: &K, v: &V, acc: Option<V>| {
                Ok(match acc {
                    Some(acc) => f(acc, v),
                    None => v.clone(),
                })
            }),
        )
    }

    /// Folds the values of each key and window into an aggregate starting as `init()`.
    pub fn aggregate<A: Data, I, F>(&self, init: I, agg: F, store: &WindowStoreDef<K, A>) -> WindowedKTable<K, A>
    where
        I: Fn() -> A + Send + Sync + 'static,
        F: Fn(&K, &V, A) -> A + Send + Sync + 'static,
    {
        self.try_aggregate(init, move |k, v, a| Ok(agg(k, v, a)), store)
    }

    /// As `aggregate`, for aggregators that can reject a record.
    pub fn try_aggregate<A: Data, I, F>(&self, init: I, agg: F, store: &WindowStoreDef<K, A>) -> WindowedKTable<K, A>
    where
        I: Fn() -> A + Send + Sync + 'static,
        F: Fn(&K, &V, A) -> Result<A, ProcessError> + Send + Sync + 'static,
    {
        self.aggregate_with(store, Arc::new(move |k: &K, v: &V, a: Option<A>| agg(k, v, a.unwrap_or_else(&init))))
    }
}

struct WindowAggregate<K: 'static, V, A: 'static, W> {
    windows: Arc<W>,
    store: WindowStoreDef<K, A>,
    index: OperatorIndex,
    step: Arc<Step<K, V, A>>,
}

impl<K: Data, V: Data, A: Data, W: WindowAssigner<K, V>> Processor<K, V> for WindowAggregate<K, V, A, W> {
    fn process(&mut self, r: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let windows = self.windows.assign(&r.key, &r.value, r.timestamp, ctx)?;
        let state = self.index.state(ctx)?;
        let clock = state.clock.max(r.timestamp);
        let grace = self.windows.grace();
        // Every fallible step before the first write: a rejected record changes nothing.
        let mut updates = Vec::new();
        {
            let mut ws = ctx.store(&self.store)?;
            for (start, end) in windows {
                if end.saturating_add(grace) <= clock {
                    continue;
                }
                let current = ws.get(&r.key, start)?;
                let fresh = current.is_none();
                updates.push((start, end, (self.step)(&r.key, &r.value, current)?, fresh));
            }
        }
        if updates.is_empty() {
            ctx.count_late();
        }
        let kb = self.store.key_serde().serialize(self.store.name(), &r.key)?;
        for (start, end, next, fresh) in updates {
            ctx.store(&self.store)?.put(&r.key, start, &next)?;
            if fresh {
                let expiry = end.saturating_add(grace).saturating_add(self.store.retention_ms());
                self.index.put(ctx, expiry, EXPIRE, &window_key(&kb, start), &[])?;
            }
            let key = Windowed { key: r.key.clone(), start, end };
            ctx.forward(Record { key, value: Some(next), timestamp: r.timestamp, headers: r.headers.clone() })?;
        }
        if clock > state.clock {
            self.index.save_state(ctx, OpState { clock, ..state })?;
            for d in self.index.due(ctx, clock)? {
                self.index.remove(ctx, d.at, d.tag, &d.id)?;
                if let Some((kb, start)) = split_window_key(&d.id) {
                    let key = self.store.key_serde().deserialize(self.store.name(), kb)?;
                    ctx.store(&self.store)?.delete(&key, start)?;
                }
            }
        }
        Ok(())
    }
}

/// Sessions of activity per key: records at most `gap` apart belong to one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub gap: i64,
    pub grace: i64,
}

impl SessionWindows {
    /// Records at most `gap_ms` (at least 1) apart belong to one session.
    pub fn with_inactivity_gap(gap_ms: i64) -> Self {
        SessionWindows { gap: gap_ms.max(1), grace: 0 }
    }
    pub fn grace(mut self, ms: i64) -> Self {
        self.grace = ms.max(0);
        self
    }
    /// When a session whose last record is at `end` closes.
    fn close(&self, end: i64) -> i64 {
        end.saturating_add(self.gap).saturating_add(self.grace)
    }
}

type Merge<K, A> = dyn Fn(&K, A, A) -> A + Send + Sync;
type Start<A> = dyn Fn() -> Option<A> + Send + Sync;

/// A grouped stream with session windows, ready to be aggregated per (key, session).
pub struct SessionWindowedKStream<K, V> {
    graph: Shared,
    node: usize,
    windows: SessionWindows,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K: Data + PartialEq, V: Data> SessionWindowedKStream<K, V> {
    pub(crate) fn new(graph: Shared, node: usize, windows: SessionWindows) -> Self {
        SessionWindowedKStream { graph, node, windows, _t: PhantomData }
    }

    fn aggregate_with<A: Data>(
        &self,
        store: &SessionStoreDef<K, A>,
        start: Arc<Start<A>>,
        step: Arc<Step<K, V, A>>,
        merge: Arc<Merge<K, A>>,
    ) -> WindowedKTable<K, A> {
        let index = index_of(store.name());
        let (def, windows, idx) = (store.clone(), self.windows, index.clone());
        let mut g = self.graph.borrow_mut();
        let node = g.processor::<K, V, _, _>(store.name().to_string(), vec![self.node], move || SessionAggregate {
            windows,
            store: def.clone(),
            index: idx.clone(),
            start: start.clone(),
            step: step.clone(),
            merge: merge.clone(),
        });
        g.store(store.spec(), &[node]);
        g.store(index.def.spec(), &[node]);
        drop(g);
        WindowedKTable {
            graph: self.graph.clone(),
            node,
            close_after: self.windows.gap.saturating_add(self.windows.grace),
            key: store.key_serde().clone(),
            value: store.value_serde().clone(),
            _t: PhantomData,
        }
    }

    /// Records per key and session.
    pub fn count(&self, store: &SessionStoreDef<K, i64>) -> WindowedKTable<K, i64> {
        self.aggregate_with(
            store,
            Arc::new(|| Some(0)),
            Arc::new(|_: &K, _: &V, n: Option<i64>| Ok(n.unwrap_or(0) + 1)),
            Arc::new(|_: &K, a, b| a + b),
        )
    }

    /// Combines the values of each session with `f` (merged sessions too).
    pub fn reduce<F>(&self, f: F, store: &SessionStoreDef<K, V>) -> WindowedKTable<K, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let g = f.clone();
        self.aggregate_with(
            store,
            Arc::new(|| None),
            Arc::new(move |_: &K, v: &V, acc: Option<V>| {
                Ok(match acc {
                    Some(acc) => f(acc, v),
                    None => v.clone(),
                })
            }),
            Arc::new(move |_: &K, a, b| g(a, &b)),
        )
    }

    /// Folds each session's values into an aggregate starting as `init()`; when a record joins
    /// sessions, their aggregates are combined with `merge` first (as in Kafka Streams).
    pub fn aggregate<A: Data, I, F, M>(
        &self,
        init: I,
        agg: F,
        merge: M,
        store: &SessionStoreDef<K, A>,
    ) -> WindowedKTable<K, A>
    where
        I: Fn() -> A + Send + Sync + 'static,
        F: Fn(&K, &V, A) -> A + Send + Sync + 'static,
        M: Fn(&K, A, A) -> A + Send + Sync + 'static,
    {
        let init = Arc::new(init);
        let i2 = init.clone();
        self.aggregate_with(
            store,
            Arc::new(move || Some(init())),
            Arc::new(move |k: &K, v: &V, a: Option<A>| Ok(agg(k, v, a.unwrap_or_else(|| i2())))),
            Arc::new(merge),
        )
    }
}

struct SessionAggregate<K: 'static, V, A: 'static> {
    windows: SessionWindows,
    store: SessionStoreDef<K, A>,
    index: OperatorIndex,
    start: Arc<Start<A>>,
    step: Arc<Step<K, V, A>>,
    merge: Arc<Merge<K, A>>,
}

impl<K: Data + PartialEq, V: Data, A: Data> SessionAggregate<K, V, A> {
    fn id(&self, w: &Windowed<K>) -> Result<Vec<u8>, SerdeError> {
        SessionKeySerde(self.store.key_serde().clone()).serialize(self.store.name(), w)
    }
    fn expiry(&self, end: i64) -> i64 {
        self.windows.close(end).saturating_add(self.store.retention_ms())
    }
}

impl<K: Data + PartialEq, V: Data, A: Data> Processor<K, V> for SessionAggregate<K, V, A> {
    fn process(&mut self, r: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let (ts, w) = (r.timestamp, self.windows);
        let state = self.index.state(ctx)?;
        let clock = state.clock.max(ts);
        let overlapping: Vec<(Windowed<K>, A)> = ctx
            .store(&self.store)?
            .sessions(&r.key, ts.saturating_add(w.gap))?
            .into_iter()
            .filter(|(s, _)| s.end >= ts.saturating_sub(w.gap))
            .collect();
        // Late: the record's own session is closed, or it would change a closed one (which a
        // suppression downstream may already have emitted). Its time still counts.
        if w.close(ts) <= clock || overlapping.iter().any(|(s, _)| w.close(s.end) <= clock) {
            ctx.count_late();
            return self.advance(ctx, state, clock);
        }
        let (mut start, mut end, mut agg) = (ts, ts, (self.start)());
        for (s, a) in &overlapping {
            start = start.min(s.start);
            end = end.max(s.end);
            agg = Some(match agg {
                Some(x) => (self.merge)(&r.key, x, a.clone()),
                None => a.clone(),
            });
        }
        let agg = (self.step)(&r.key, &r.value, agg)?;
        let merged = Windowed { key: r.key.clone(), start, end };
        for (s, _) in &overlapping {
            if *s != merged {
                ctx.store(&self.store)?.remove(s)?;
                self.index.remove(ctx, self.expiry(s.end), EXPIRE, &self.id(s)?)?;
                ctx.forward(Record { key: s.clone(), value: None::<A>, timestamp: ts, headers: r.headers.clone() })?;
            }
        }
        ctx.store(&self.store)?.put(&merged, &agg)?;
        if !overlapping.iter().any(|(s, _)| *s == merged) {
            self.index.put(ctx, self.expiry(end), EXPIRE, &self.id(&merged)?, &[])?;
        }
        ctx.forward(Record { key: merged, value: Some(agg), timestamp: ts, headers: r.headers })?;
        self.advance(ctx, state, clock)
    }
}

impl<K: Data + PartialEq, V: Data, A: Data> SessionAggregate<K, V, A> {
    /// Moves the clock and deletes sessions whose retention has passed.
    fn advance(&self, ctx: &mut ProcessorContext<'_>, state: OpState, clock: i64) -> Result<(), ProcessError> {
        if clock <= state.clock {
            return Ok(());
        }
        self.index.save_state(ctx, OpState { clock, ..state })?;
        let serde = SessionKeySerde(self.store.key_serde().clone());
        for d in self.index.due(ctx, clock)? {
            self.index.remove(ctx, d.at, d.tag, &d.id)?;
            let s = serde.deserialize(self.store.name(), &d.id)?;
            ctx.store(&self.store)?.remove(&s)?;
        }
        Ok(())
    }
}

/// A table keyed by window: updates as `Record<Windowed<K>, Option<A>>` (`None`: a session
/// merged into another).
pub struct WindowedKTable<K: 'static, A: 'static> {
    graph: Shared,
    node: usize,
    /// How long after a window's end it closes (grace; for sessions gap plus grace).
    close_after: i64,
    key: SerdeRef<K>,
    value: SerdeRef<A>,
    _t: PhantomData<fn() -> (K, A)>,
}

/// `suppress(Suppressed::until_window_closes("name"))`: one final result per window.
pub struct Suppressed {
    name: String,
}

impl Suppressed {
    /// Buffers each window's latest result in `<name>-store` until the window closes.
    pub fn until_window_closes(name: &str) -> Self {
        Suppressed { name: name.to_string() }
    }
}

impl<K: Data, A: Data> WindowedKTable<K, A> {
    /// Holds back every update and emits each window's final result once, when it closes.
    pub fn suppress(&self, suppressed: Suppressed) -> WindowedKTable<K, A> {
        let index = OperatorIndex::new(format!("{}-store", suppressed.name));
        let (idx, key, value, close_after) = (index.clone(), self.key.clone(), self.value.clone(), self.close_after);
        let mut g = self.graph.borrow_mut();
        let node = g.processor::<Windowed<K>, Option<A>, _, _>(suppressed.name, vec![self.node], move || Suppress {
            index: idx.clone(),
            key: key.clone(),
            value: value.clone(),
            close_after,
        });
        g.store(index.def.spec(), &[node]);
        drop(g);
        WindowedKTable { node, key: self.key.clone(), value: self.value.clone(), graph: self.graph.clone(), ..*self }
    }

    /// The table's updates as a stream (deletions of merged sessions are not forwarded).
    pub fn to_stream(&self) -> KStream<Windowed<K>, A> {
        let node =
            self.graph.borrow_mut().stateless("TOSTREAM", vec![self.node], |r: Record<Windowed<K>, Option<A>>, ctx| {
                let Record { key, value, timestamp, headers } = r;
                match value {
                    Some(value) => ctx.forward(Record { key, value, timestamp, headers }),
                    None => Ok(()),
                }
            });
        KStream::new(self.graph.clone(), node, false)
    }
}

struct Suppress<K: 'static, A: 'static> {
    index: OperatorIndex,
    key: SerdeRef<K>,
    value: SerdeRef<A>,
    close_after: i64,
}

fn flip(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}
fn unflip(b: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63)) as i64)
}

impl<K: Data, A: Data> Processor<Windowed<K>, Option<A>> for Suppress<K, A> {
    fn process(
        &mut self,
        r: Record<Windowed<K>, Option<A>>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let topic = self.index.def.name().to_string();
        let state = self.index.state(ctx)?;
        let clock = state.clock.max(r.timestamp);
        let mut id = flip(r.key.start).to_vec();
        id.extend_from_slice(&flip(r.key.end));
        id.extend_from_slice(&self.key.serialize(&topic, &r.key.key)?);
        let due = r.key.end.saturating_add(self.close_after);
        match &r.value {
            Some(a) => {
                let mut payload = r.timestamp.to_be_bytes().to_vec();
                payload.extend_from_slice(&self.value.serialize(&topic, a)?);
                self.index.put(ctx, due, BUFFERED, &id, &payload)?;
            }
            None => self.index.remove(ctx, due, BUFFERED, &id)?,
        }
        if clock > state.clock {
            self.index.save_state(ctx, OpState { clock, ..state })?;
        }
        let bad = || SerdeError::new("invalid_suppress_entry", "undecodable suppression buffer entry");
        for d in self.index.due(ctx, clock)? {
            self.index.remove(ctx, d.at, d.tag, &d.id)?;
            if d.id.len() < 16 || d.payload.len() < 8 {
                return Err(bad().into());
            }
            let (start, end) = (unflip(&d.id[..8]).ok_or_else(bad)?, unflip(&d.id[8..16]).ok_or_else(bad)?);
            let key = self.key.deserialize(&topic, &d.id[16..])?;
            let ts = unflip(&d.payload[..8]).ok_or_else(bad)? ^ i64::MIN;
            let value = self.value.deserialize(&topic, &d.payload[8..])?;
            ctx.forward(Record::new(Windowed { key, start, end }, Some(value), ts))?;
        }
        Ok(())
    }
}

/// Windowed keys for output topics: the key's bytes, then start and end (big-endian i64), so
/// a consumer can split them without a schema.
pub struct WindowedSerde<K: 'static>(SerdeRef<K>);

impl<K: 'static> WindowedSerde<K> {
    pub fn new(key: impl Serde<K>) -> Self {
        WindowedSerde(SerdeRef::shared(key))
    }
}

impl<K: 'static> Serde<Windowed<K>> for WindowedSerde<K> {
    fn serialize(&self, topic: &str, w: &Windowed<K>) -> Result<Vec<u8>, SerdeError> {
        let mut out = self.0.serialize(topic, &w.key)?;
        out.extend_from_slice(&w.start.to_be_bytes());
        out.extend_from_slice(&w.end.to_be_bytes());
        Ok(out)
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Windowed<K>, SerdeError> {
        let bad = || SerdeError::new("invalid_windowed_key", "windowed key shorter than 16 bytes");
        let split = bytes.len().checked_sub(16).ok_or_else(bad)?;
        let (key, times) = bytes.split_at(split);
        let start = i64::from_be_bytes(times[..8].try_into().map_err(|_| bad())?);
        let end = i64::from_be_bytes(times[8..].try_into().map_err(|_| bad())?);
        Ok(Windowed { key: self.0.deserialize(topic, key)?, start, end })
    }
}

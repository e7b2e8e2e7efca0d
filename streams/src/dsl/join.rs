//! Joins of a stream with a table, a global table, or another stream (windowed).
//!
//! Stream–stream joins buffer each side's records in a store (`<name>-this-store`,
//! `<name>-other-store`, key `(key, timestamp, sequence)`) and keep one clock for both sides in
//! `<name>-index`. A record at `t` joins the other side's records in `[t - before, t + after]`
//! (seen from the left). A record is late, and dropped, once `t + before + after + grace` is
//! behind the clock. Buffered records stay exactly as long as a non-late record could still
//! match them; when that time passes, a record that never matched is emitted alone by left and
//! outer joins. So each pair is emitted once, when its second record arrives, and an unmatched
//! record only when no match is possible any more (no spurious left/outer results).

use std::marker::PhantomData;
use std::sync::Arc;

use crate::context::ProcessorContext;
use crate::processor::{ProcessError, Processor};
use crate::record::Record;
use crate::serde::{Serde, SerdeError};
use crate::store::typed::{KvStoreDef, SerdeRef};
use crate::window::{split_window_key, window_key};

use super::graph::DslError;
use super::index::OperatorIndex;
use super::stream::KStream;
use super::table::{GlobalKTable, KTable, LeftSide, RightSide};
use super::Data;

type Both<L, R, O> = dyn Fn(&L, &R) -> O + Send + Sync;
type LeftOpt<L, R, O> = dyn Fn(&L, Option<&R>) -> O + Send + Sync;
type Outer<L, R, O> = dyn Fn(Option<&L>, Option<&R>) -> O + Send + Sync;

/// The three join kinds over (left, right) values.
pub(crate) enum Joiner<L, R, O> {
    Inner(Arc<Both<L, R, O>>),
    Left(Arc<LeftOpt<L, R, O>>),
    Outer(Arc<Outer<L, R, O>>),
}

impl<L, R, O> Joiner<L, R, O> {
    /// The result for the values present, if this kind of join has one.
    pub fn join(&self, l: Option<&L>, r: Option<&R>) -> Option<O> {
        match (self, l, r) {
            (Joiner::Inner(f), Some(l), Some(r)) => Some(f(l, r)),
            (Joiner::Left(f), Some(l), r) => Some(f(l, r)),
            (Joiner::Outer(f), l, r) if l.is_some() || r.is_some() => Some(f(l, r)),
            _ => None,
        }
    }
}

/// Which records of two streams join: the right side's timestamp within `before` ms before
/// and `after` ms after the left side's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    pub before: i64,
    pub after: i64,
    pub grace: i64,
}

impl JoinWindows {
    /// At most `ms` apart, either way.
    pub fn of(ms: i64) -> Self {
        JoinWindows { before: ms.max(0), after: ms.max(0), grace: 0 }
    }
    pub fn before(mut self, ms: i64) -> Self {
        self.before = ms.max(0);
        self
    }
    pub fn after(mut self, ms: i64) -> Self {
        self.after = ms.max(0);
        self
    }
    /// How far behind the clock a record may arrive and still join.
    pub fn grace(mut self, ms: i64) -> Self {
        self.grace = ms.max(0);
        self
    }
    fn span(&self) -> i64 {
        self.before.saturating_add(self.after)
    }
}

/// The name of a stream–stream join (its stores are `<name>-this-store`, `<name>-other-store`
/// and `<name>-index`) and the serdes of what it buffers.
pub struct StreamJoined<K: 'static, V: 'static, V2: 'static> {
    name: String,
    key: SerdeRef<K>,
    this: SerdeRef<V>,
    other: SerdeRef<V2>,
}

impl<K: 'static, V: 'static, V2: 'static> StreamJoined<K, V, V2> {
    pub fn with(name: &str, key: impl Serde<K>, this: impl Serde<V>, other: impl Serde<V2>) -> Self {
        StreamJoined {
            name: name.to_string(),
            key: SerdeRef::shared(key),
            this: SerdeRef::shared(this),
            other: SerdeRef::shared(other),
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    fn table_lookup<TV: Data, VR: Data, F>(&self, kind: &str, table: &KTable<K, TV>, f: F) -> KStream<K, VR>
    where
        F: Fn(&V, Option<&TV>) -> Option<VR> + Send + Sync + 'static,
    {
        let mut g = self.graph.borrow_mut();
        if self.key_changed {
            g.error(DslError::NeedsRepartition { operator: format!("join with table {}", table.store.name()) });
        }
        let def = table.store.clone();
        let node = g.stateless(kind, vec![self.node], move |r: Record<K, V>, ctx| {
            let t = ctx.store(&def)?.get(&r.key)?;
            match f(&r.value, t.as_ref()) {
                Some(v) => ctx.forward(r.with_value(v)),
                None => Ok(()),
            }
        });
        g.connect(table.store.name(), node);
        drop(g);
        KStream::new(self.graph.clone(), node, false)
    }

    /// Joins each record with the table's current value for its key (records whose key the
    /// table lacks are dropped). Stream and table must be co-partitioned.
    pub fn join_table<TV: Data, VR: Data, F>(&self, table: &KTable<K, TV>, joiner: F) -> KStream<K, VR>
    where
        F: Fn(&V, &TV) -> VR + Send + Sync + 'static,
    {
        self.table_lookup("JOIN", table, move |v, t| t.map(|t| joiner(v, t)))
    }

    /// As `join_table`, keeping records whose key the table lacks.
    pub fn left_join_table<TV: Data, VR: Data, F>(&self, table: &KTable<K, TV>, joiner: F) -> KStream<K, VR>
    where
        F: Fn(&V, Option<&TV>) -> VR + Send + Sync + 'static,
    {
        self.table_lookup("LEFTJOIN", table, move |v, t| Some(joiner(v, t)))
    }

    fn global_lookup<GK: Send + 'static, GV: Send + 'static, VR: Data, KF, F>(
        &self,
        kind: &str,
        table: &GlobalKTable<GK, GV>,
        key: KF,
        f: F,
    ) -> KStream<K, VR>
    where
        KF: Fn(&K, &V) -> GK + Send + Sync + 'static,
        F: Fn(&V, Option<&GV>) -> Option<VR> + Send + Sync + 'static,
    {
        let def = table.store.clone();
        let node = self.graph.borrow_mut().stateless(kind, vec![self.node], move |r: Record<K, V>, ctx| {
            let g = ctx.global(&def).get(&key(&r.key, &r.value))?;
            match f(&r.value, g.as_ref()) {
                Some(v) => ctx.forward(r.with_value(v)),
                None => Ok(()),
            }
        });
        KStream::new(self.graph.clone(), node, self.key_changed)
    }

    /// Joins each record with the global table's value under `key(k, v)`; no co-partitioning
    /// is needed (every instance holds the whole table).
    pub fn join_global<GK: Send + 'static, GV: Send + 'static, VR: Data, KF, F>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key: KF,
        joiner: F,
    ) -> KStream<K, VR>
    where
        KF: Fn(&K, &V) -> GK + Send + Sync + 'static,
        F: Fn(&V, &GV) -> VR + Send + Sync + 'static,
    {
        self.global_lookup("JOIN", table, key, move |v, g| g.map(|g| joiner(v, g)))
    }

    /// As `join_global`, keeping records without a table value.
    pub fn left_join_global<GK: Send + 'static, GV: Send + 'static, VR: Data, KF, F>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key: KF,
        joiner: F,
    ) -> KStream<K, VR>
    where
        KF: Fn(&K, &V) -> GK + Send + Sync + 'static,
        F: Fn(&V, Option<&GV>) -> VR + Send + Sync + 'static,
    {
        self.global_lookup("LEFTJOIN", table, key, move |v, g| Some(joiner(v, g)))
    }

    /// Inner windowed join with another stream (same key, timestamps within `windows`).
    pub fn join<V2: Data, VR: Data, F>(
        &self,
        other: &KStream<K, V2>,
        joiner: F,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR>
    where
        F: Fn(&V, &V2) -> VR + Send + Sync + 'static,
    {
        self.join_streams(other, Joiner::Inner(Arc::new(joiner)), windows, joined)
    }

    /// Left windowed join: records of this stream that never match are emitted alone once no
    /// match is possible.
    pub fn left_join<V2: Data, VR: Data, F>(
        &self,
        other: &KStream<K, V2>,
        joiner: F,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR>
    where
        F: Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
    {
        self.join_streams(other, Joiner::Left(Arc::new(joiner)), windows, joined)
    }

    /// Outer windowed join: unmatched records of either stream are emitted alone.
    pub fn outer_join<V2: Data, VR: Data, F>(
        &self,
        other: &KStream<K, V2>,
        joiner: F,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR>
    where
        F: Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
    {
        self.join_streams(other, Joiner::Outer(Arc::new(joiner)), windows, joined)
    }

    fn join_streams<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: Joiner<V, V2, VR>,
        w: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR> {
        let name = joined.name;
        let mut g = self.graph.borrow_mut();
        if !std::rc::Rc::ptr_eq(&self.graph, &other.graph) {
            g.error(DslError::OtherBuilder(format!("join {name}")));
        }
        if self.key_changed || other.key_changed {
            g.error(DslError::NeedsRepartition { operator: format!("join {name}") });
        }
        let left_buf =
            KvStoreDef::with_serdes(format!("{name}-this-store"), BufKeySerde(joined.key.clone()), joined.this);
        let right_buf =
            KvStoreDef::with_serdes(format!("{name}-other-store"), BufKeySerde(joined.key.clone()), joined.other);
        let index = OperatorIndex::new(format!("{name}-index"));
        let span = w.span();
        let left = SideCfg {
            this_buf: left_buf.clone(),
            other_buf: right_buf.clone(),
            key: joined.key.clone(),
            index: index.clone(),
            back: w.before,
            fwd: w.after,
            span,
            grace: w.grace,
            this_tag: LEFT,
        };
        let right = SideCfg {
            this_buf: right_buf.clone(),
            other_buf: left_buf.clone(),
            key: joined.key,
            index: index.clone(),
            back: w.after,
            fwd: w.before,
            span,
            grace: w.grace,
            this_tag: RIGHT,
        };
        let joiner = Arc::new(joiner);
        let j = joiner.clone();
        let this_node = g.processor::<K, V, _, _>(format!("{name}-this"), vec![self.node], move || StreamJoinSide::<
            K,
            V,
            V2,
            V,
            V2,
            VR,
            LeftSide,
        > {
            cfg: left.clone(),
            joiner: j.clone(),
            _s: PhantomData,
        });
        let other_node =
            g.processor::<K, V2, _, _>(format!("{name}-other"), vec![other.node], move || StreamJoinSide::<
                K,
                V2,
                V,
                V,
                V2,
                VR,
                RightSide,
            > {
                cfg: right.clone(),
                joiner: joiner.clone(),
                _s: PhantomData,
            });
        let both = [this_node, other_node];
        use crate::store::typed::StoreDef;
        g.store(left_buf.spec(), &both);
        g.store(right_buf.spec(), &both);
        g.store(index.def.spec(), &both);
        let out = g.processor::<K, VR, _, _>(name, both.to_vec(), || {
            super::graph::FnProcessor::new(Arc::new(|r: Record<K, VR>, ctx: &mut ProcessorContext<'_>| ctx.forward(r)))
        });
        drop(g);
        KStream::new(self.graph.clone(), out, false)
    }
}

const LEFT: u8 = 1;
const RIGHT: u8 = 2;
const UNMATCHED: u8 = 0;
const MATCHED: u8 = 1;

/// A buffered record: its key, timestamp and a sequence number that keeps records with the same
/// key and timestamp apart.
pub(crate) struct BufKey<K> {
    key: K,
    ts: i64,
    seq: u64,
}

/// `window_key(key, ts) ++ seq`: one key's records are a range in time order.
struct BufKeySerde<K: 'static>(SerdeRef<K>);

impl<K: 'static> Serde<BufKey<K>> for BufKeySerde<K> {
    fn serialize(&self, topic: &str, b: &BufKey<K>) -> Result<Vec<u8>, SerdeError> {
        let mut k = window_key(&self.0.serialize(topic, &b.key)?, b.ts);
        k.extend_from_slice(&b.seq.to_be_bytes());
        Ok(k)
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<BufKey<K>, SerdeError> {
        let bad = || SerdeError::new("invalid_join_key", "undecodable join buffer key");
        let split = bytes.len().checked_sub(8).ok_or_else(bad)?;
        let (head, seq) = bytes.split_at(split);
        let (key, ts) = split_window_key(head).ok_or_else(bad)?;
        let seq = u64::from_be_bytes(seq.try_into().map_err(|_| bad())?);
        Ok(BufKey { key: self.0.deserialize(topic, key)?, ts, seq })
    }
}

/// One side's view: its buffer (`T`), the other side's (`O`), and how far the other side's
/// timestamps may lie behind (`back`) and ahead (`fwd`) of this side's.
struct SideCfg<K: 'static, T: 'static, O: 'static> {
    this_buf: KvStoreDef<BufKey<K>, T>,
    other_buf: KvStoreDef<BufKey<K>, O>,
    key: SerdeRef<K>,
    index: OperatorIndex,
    back: i64,
    fwd: i64,
    span: i64,
    grace: i64,
    this_tag: u8,
}

impl<K: 'static, T: 'static, O: 'static> Clone for SideCfg<K, T, O> {
    fn clone(&self) -> Self {
        SideCfg {
            this_buf: self.this_buf.clone(),
            other_buf: self.other_buf.clone(),
            key: self.key.clone(),
            index: self.index.clone(),
            ..*self
        }
    }
}

impl<K: Data, T: Data, O: Data> SideCfg<K, T, O> {
    /// When a record of this side at `ts` can no longer be matched.
    fn this_due(&self, ts: i64) -> i64 {
        ts.saturating_add(self.fwd).saturating_add(self.span).saturating_add(self.grace).saturating_add(1)
    }
    fn other_due(&self, ts: i64) -> i64 {
        ts.saturating_add(self.back).saturating_add(self.span).saturating_add(self.grace).saturating_add(1)
    }

    fn process<VR: Data>(
        &self,
        r: Record<K, T>,
        ctx: &mut ProcessorContext<'_>,
        pair: impl Fn(&T, &O) -> Option<VR>,
        alone_this: impl Fn(&T) -> Option<VR>,
        alone_other: impl Fn(&O) -> Option<VR>,
    ) -> Result<(), ProcessError> {
        let mut state = self.index.state(ctx)?;
        let clock = state.clock.max(r.timestamp);
        let ts = r.timestamp;
        if ts.saturating_add(self.span).saturating_add(self.grace) < clock {
            ctx.count_late();
            return Ok(());
        }
        let kb = self.key.serialize(self.other_buf.name(), &r.key)?;
        let (lo, hi) = (ts.saturating_sub(self.back), ts.saturating_add(self.fwd));
        let partners = ctx
            .store(&self.other_buf)?
            .range_bytes(Some(&window_key(&kb, lo)), Some(&window_key(&kb, hi.saturating_add(1))))?;
        let other_tag = LEFT + RIGHT - self.this_tag;
        let bufs = BufKeySerde(self.key.clone());
        let (this_name, other_name) = (self.this_buf.name(), self.other_buf.name());
        let mut outs = Vec::new();
        for (b, o) in &partners {
            if let Some(v) = pair(&r.value, o) {
                outs.push(Record { key: r.key.clone(), value: v, timestamp: ts.max(b.ts), headers: r.headers.clone() });
            }
            let (due, id) = (self.other_due(b.ts), bufs.serialize(other_name, b)?);
            if self.index.get(ctx, due, other_tag, &id)?.as_deref() == Some(&[UNMATCHED]) {
                self.index.put(ctx, due, other_tag, &id, &[MATCHED])?;
            }
        }
        let this = BufKey { key: r.key.clone(), ts, seq: state.seq };
        state.seq += 1;
        state.clock = clock;
        self.index.save_state(ctx, state)?;
        ctx.store(&self.this_buf)?.put(&this, &r.value)?;
        let flag = if partners.is_empty() { UNMATCHED } else { MATCHED };
        self.index.put(ctx, self.this_due(ts), self.this_tag, &bufs.serialize(this_name, &this)?, &[flag])?;
        for out in outs {
            ctx.forward(out)?;
        }
        self.expire(ctx, clock, &bufs, alone_this, alone_other)
    }

    /// Drops buffered records no record can match any more, emitting unmatched ones alone.
    fn expire<VR: Data>(
        &self,
        ctx: &mut ProcessorContext<'_>,
        clock: i64,
        bufs: &BufKeySerde<K>,
        alone_this: impl Fn(&T) -> Option<VR>,
        alone_other: impl Fn(&O) -> Option<VR>,
    ) -> Result<(), ProcessError> {
        for d in self.index.due(ctx, clock)? {
            self.index.remove(ctx, d.at, d.tag, &d.id)?;
            let unmatched = d.payload.as_slice() == [UNMATCHED];
            let out = if d.tag == self.this_tag {
                let b = bufs.deserialize(self.this_buf.name(), &d.id)?;
                let mut buf = ctx.store(&self.this_buf)?;
                let v = buf.get(&b)?;
                buf.delete(&b)?;
                v.filter(|_| unmatched).and_then(|v| alone_this(&v)).map(|v| (b, v))
            } else {
                let b = bufs.deserialize(self.other_buf.name(), &d.id)?;
                let mut buf = ctx.store(&self.other_buf)?;
                let v = buf.get(&b)?;
                buf.delete(&b)?;
                v.filter(|_| unmatched).and_then(|v| alone_other(&v)).map(|v| (b, v))
            };
            if let Some((b, v)) = out {
                ctx.forward(Record::new(b.key, v, b.ts))?;
            }
        }
        Ok(())
    }
}

/// The processor of one side of a stream–stream join (`S` says which).
struct StreamJoinSide<K: 'static, T: 'static, O: 'static, L, R, VR, S> {
    cfg: SideCfg<K, T, O>,
    joiner: Arc<Joiner<L, R, VR>>,
    _s: PhantomData<fn(S)>,
}

impl<K: Data, L: Data, R: Data, VR: Data> Processor<K, L> for StreamJoinSide<K, L, R, L, R, VR, LeftSide> {
    fn process(&mut self, r: Record<K, L>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let j = &self.joiner;
        self.cfg.process(r, ctx, |l, r| j.join(Some(l), Some(r)), |l| j.join(Some(l), None), |r| j.join(None, Some(r)))
    }
}

impl<K: Data, L: Data, R: Data, VR: Data> Processor<K, R> for StreamJoinSide<K, R, L, L, R, VR, RightSide> {
    fn process(&mut self, r: Record<K, R>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let j = &self.joiner;
        self.cfg.process(r, ctx, |r, l| j.join(Some(l), Some(r)), |r| j.join(None, Some(r)), |l| j.join(Some(l), None))
    }
}

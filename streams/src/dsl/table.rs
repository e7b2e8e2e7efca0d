//! Grouped streams and their aggregations into tables, `KTable` (updates as `Option<V>`, `None`
//! deleting the key) with table–table joins, and `GlobalKTable`.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::context::ProcessorContext;
use crate::processor::{ProcessError, Processor};
use crate::record::Record;
use crate::store::typed::{KvStoreDef, StoreDef};
use crate::window::assign::WindowAssigner;

use super::graph::{DslError, Shared};
use super::join::Joiner;
use super::stream::KStream;
use super::windowed::{SessionWindowedKStream, SessionWindows, TimeWindowedKStream};
use super::Data;

/// One aggregation step: the key, the new value, the current aggregate (if any) → the next.
pub(crate) type Step<K, V, A> = dyn Fn(&K, &V, Option<A>) -> Result<A, ProcessError> + Send + Sync;

/// A stream grouped by key, ready to be aggregated.
pub struct KGroupedStream<K: 'static, V: 'static> {
    pub(crate) graph: Shared,
    pub(crate) node: usize,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(graph: Shared, node: usize) -> Self {
        KGroupedStream { graph, node, _t: PhantomData }
    }

    fn aggregate_with<A: Data>(&self, store: &KvStoreDef<K, A>, step: Arc<Step<K, V, A>>) -> KTable<K, A> {
        let mut g = self.graph.borrow_mut();
        let def = store.clone();
        let node = g.processor::<K, V, _, _>(store.name().to_string(), vec![self.node], move || Aggregate {
            store: def.clone(),
            step: step.clone(),
        });
        g.store(store.spec(), &[node]);
        drop(g);
        KTable::new(self.graph.clone(), node, store.clone())
    }

    /// Records per key, in `store`.
    pub fn count(&self, store: &KvStoreDef<K, i64>) -> KTable<K, i64> {
        self.aggregate_with(store, Arc::new(|_: &K, _: &V, n: Option<i64>| Ok(n.unwrap_or(0) + 1)))
    }

    /// Combines each key's values with `f` (the first value is the first aggregate).
    pub fn reduce<F>(&self, f: F, store: &KvStoreDef<K, V>) -> KTable<K, V>
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

    /// Folds each key's values into an aggregate that starts as `init()`.
    pub fn aggregate<A: Data, I, F>(&self, init: I, agg: F, store: &KvStoreDef<K, A>) -> KTable<K, A>
    where
        I: Fn() -> A + Send + Sync + 'static,
        F: Fn(&K, &V, A) -> A + Send + Sync + 'static,
    {
        self.try_aggregate(init, move |k, v, a| Ok(agg(k, v, a)), store)
    }

    /// As `aggregate`, for aggregators that can reject a record (an overflowing balance): the
    /// error dead-letters the record and leaves the aggregate as it was.
    pub fn try_aggregate<A: Data, I, F>(&self, init: I, agg: F, store: &KvStoreDef<K, A>) -> KTable<K, A>
    where
        I: Fn() -> A + Send + Sync + 'static,
        F: Fn(&K, &V, A) -> Result<A, ProcessError> + Send + Sync + 'static,
    {
        self.aggregate_with(store, Arc::new(move |k: &K, v: &V, a: Option<A>| agg(k, v, a.unwrap_or_else(&init))))
    }

    /// Aggregates per window: `TimeWindows` (tumbling, hopping) or `CalendarWindows`.
    pub fn windowed_by<W: WindowAssigner<K, V>>(&self, windows: W) -> TimeWindowedKStream<K, V, W> {
        TimeWindowedKStream::new(self.graph.clone(), self.node, windows)
    }

    /// Aggregates per session of activity.
    pub fn session_windowed_by(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V>
    where
        K: PartialEq,
    {
        SessionWindowedKStream::new(self.graph.clone(), self.node, windows)
    }
}

/// The processor of `count` / `reduce` / `aggregate`: read, step, write, forward the update.
pub(crate) struct Aggregate<K: 'static, V: 'static, A: 'static> {
    pub store: KvStoreDef<K, A>,
    pub step: Arc<Step<K, V, A>>,
}

impl<K: Data, V: Data, A: Data> Processor<K, V> for Aggregate<K, V, A> {
    fn process(&mut self, r: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let current = ctx.store(&self.store)?.get(&r.key)?;
        let next = (self.step)(&r.key, &r.value, current)?;
        ctx.store(&self.store)?.put(&r.key, &next)?;
        ctx.forward(Record { key: r.key, value: Some(next), timestamp: r.timestamp, headers: r.headers })
    }
}

/// Writes table updates into the table's store and passes on those that change it.
pub(crate) struct TableMaterialize<K: 'static, V: 'static> {
    pub store: KvStoreDef<K, V>,
}

impl<K: Data, V: Data> Processor<K, Option<V>> for TableMaterialize<K, V> {
    fn process(&mut self, r: Record<K, Option<V>>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let mut store = ctx.store(&self.store)?;
        match &r.value {
            Some(v) => store.put(&r.key, v)?,
            None if store.get(&r.key)?.is_none() => return Ok(()),
            None => store.delete(&r.key)?,
        }
        ctx.forward(r)
    }
}

/// A changelog stream seen as a table: the latest value per key, in a named store.
pub struct KTable<K: 'static, V: 'static> {
    pub(crate) graph: Shared,
    pub(crate) node: usize,
    pub(crate) store: KvStoreDef<K, V>,
}

impl<K: Data, V: Data> KTable<K, V> {
    pub(crate) fn new(graph: Shared, node: usize, store: KvStoreDef<K, V>) -> Self {
        KTable { graph, node, store }
    }

    /// The store holding the table (for queries and inspection).
    pub fn store(&self) -> &KvStoreDef<K, V> {
        &self.store
    }

    /// The table's updates as a stream (deletions are not forwarded).
    pub fn to_stream(&self) -> KStream<K, V> {
        let node = self.graph.borrow_mut().stateless("TOSTREAM", vec![self.node], |r: Record<K, Option<V>>, ctx| {
            let Record { key, value, timestamp, headers } = r;
            match value {
                Some(value) => ctx.forward(Record { key, value, timestamp, headers }),
                None => Ok(()),
            }
        });
        KStream::new(self.graph.clone(), node, false)
    }

    /// Inner table–table join, materialized in `store`: a key has a result while both tables
    /// have it.
    pub fn join<V2: Data, VR: Data, F>(
        &self,
        other: &KTable<K, V2>,
        joiner: F,
        store: &KvStoreDef<K, VR>,
    ) -> KTable<K, VR>
    where
        F: Fn(&V, &V2) -> VR + Send + Sync + 'static,
    {
        self.join_tables(other, Joiner::Inner(Arc::new(joiner)), store)
    }

    /// Left table–table join: a key has a result while this table has it.
    pub fn left_join<V2: Data, VR: Data, F>(
        &self,
        other: &KTable<K, V2>,
        joiner: F,
        store: &KvStoreDef<K, VR>,
    ) -> KTable<K, VR>
    where
        F: Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
    {
        self.join_tables(other, Joiner::Left(Arc::new(joiner)), store)
    }

    /// Outer table–table join: a key has a result while either table has it.
    pub fn outer_join<V2: Data, VR: Data, F>(
        &self,
        other: &KTable<K, V2>,
        joiner: F,
        store: &KvStoreDef<K, VR>,
    ) -> KTable<K, VR>
    where
        F: Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
    {
        self.join_tables(other, Joiner::Outer(Arc::new(joiner)), store)
    }

    /// Each side's update looks up the other side's store and forwards the new result (or its
    /// deletion) to a node that materializes the joined table.
    fn join_tables<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: Joiner<V, V2, VR>,
        store: &KvStoreDef<K, VR>,
    ) -> KTable<K, VR> {
        if !std::rc::Rc::ptr_eq(&self.graph, &other.graph) {
            self.graph.borrow_mut().error(DslError::OtherBuilder(format!("join into {}", store.name())));
        }
        let joiner = Arc::new(joiner);
        let (this_def, other_def) = (self.store.clone(), other.store.clone());
        let mut g = self.graph.borrow_mut();
        let j = joiner.clone();
        let this_side = g.processor::<K, Option<V>, _, _>(format!("{}-join-this", store.name()), vec![self.node], {
            move || TableJoinSide::<_, _, _, _, _, LeftSide> {
                other: other_def.clone(),
                joiner: j.clone(),
                _side: PhantomData,
            }
        });
        let other_side =
            g.processor::<K, Option<V2>, _, _>(format!("{}-join-other", store.name()), vec![other.node], {
                move || TableJoinSide::<_, _, _, _, _, RightSide> {
                    other: this_def.clone(),
                    joiner: joiner.clone(),
                    _side: PhantomData,
                }
            });
        g.connect(other.store.name(), this_side);
        g.connect(self.store.name(), other_side);
        let def = store.clone();
        let node =
            g.processor::<K, Option<VR>, _, _>(store.name().to_string(), vec![this_side, other_side], move || {
                TableMaterialize { store: def.clone() }
            });
        g.store(store.spec(), &[node]);
        drop(g);
        KTable::new(self.graph.clone(), node, store.clone())
    }
}

/// Markers for the two sides of a join, so each side's processor has its own impl.
pub(crate) struct LeftSide;
pub(crate) struct RightSide;

/// One side of a table–table join: looks up `other` (the other side's store). The joiner
/// always takes (left, right).
struct TableJoinSide<K: 'static, O: 'static, L, R, VR, S> {
    other: KvStoreDef<K, O>,
    joiner: Arc<Joiner<L, R, VR>>,
    _side: PhantomData<fn(S)>,
}

impl<K: Data, L: Data, R: Data, VR: Data> Processor<K, Option<L>> for TableJoinSide<K, R, L, R, VR, LeftSide> {
    fn process(&mut self, r: Record<K, Option<L>>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let other = ctx.store(&self.other)?.get(&r.key)?;
        let out = self.joiner.join(r.value.as_ref(), other.as_ref());
        ctx.forward(Record { key: r.key, value: out, timestamp: r.timestamp, headers: r.headers })
    }
}

impl<K: Data, L: Data, R: Data, VR: Data> Processor<K, Option<R>> for TableJoinSide<K, L, L, R, VR, RightSide> {
    fn process(&mut self, r: Record<K, Option<R>>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let this = ctx.store(&self.other)?.get(&r.key)?;
        let out = self.joiner.join(this.as_ref(), r.value.as_ref());
        ctx.forward(Record { key: r.key, value: out, timestamp: r.timestamp, headers: r.headers })
    }
}

/// A table replicated on every instance; see `StreamsBuilder::global_table`.
pub struct GlobalKTable<K: 'static, V: 'static> {
    pub(crate) store: KvStoreDef<K, V>,
}

impl<K: 'static, V: 'static> GlobalKTable<K, V> {
    pub fn store(&self) -> &KvStoreDef<K, V> {
        &self.store
    }
}

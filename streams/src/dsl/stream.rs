//! `KStream`: a typed stream of records and its stateless operators, sinks, repartitioning and
//! grouping (aggregations are in `table`, windows in `windowed`, joins in `join`).

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::context::ProcessorContext;
use crate::processor::{ProcessError, Processor};
use crate::record::Record;
use crate::serde::Serde;
use crate::store::typed::SerdeRef;

use super::graph::{DslError, FnProcessor, Shared};
use super::table::KGroupedStream;
use super::Data;

/// Serdes (and optionally a node name) of a source.
pub struct Consumed<K: 'static, V: 'static> {
    pub(crate) key: SerdeRef<K>,
    pub(crate) value: SerdeRef<V>,
    pub(crate) name: Option<String>,
}

impl<K: 'static, V: 'static> Consumed<K, V> {
    pub fn with(key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Consumed { key: SerdeRef::shared(key), value: SerdeRef::shared(value), name: None }
    }
    /// Names the source node instead of `KSTREAM-SOURCE-…`.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// Serdes (and optionally a node name) of a sink.
pub struct Produced<K: 'static, V: 'static> {
    key: SerdeRef<K>,
    value: SerdeRef<V>,
    name: Option<String>,
}

impl<K: 'static, V: 'static> Produced<K, V> {
    pub fn with(key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Produced { key: SerdeRef::shared(key), value: SerdeRef::shared(value), name: None }
    }
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// The name and serdes of a grouping's repartition topic `<application.id>-<name>-repartition`
/// (used when the key was changed before grouping).
pub struct Grouped<K: 'static, V: 'static> {
    pub(crate) name: String,
    pub(crate) key: SerdeRef<K>,
    pub(crate) value: SerdeRef<V>,
}

impl<K: 'static, V: 'static> Grouped<K, V> {
    pub fn with(name: &str, key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Grouped { name: name.to_string(), key: SerdeRef::shared(key), value: SerdeRef::shared(value) }
    }
}

/// The name and serdes of an explicit repartition topic `<application.id>-<name>-repartition`.
pub struct Repartitioned<K: 'static, V: 'static> {
    name: String,
    key: SerdeRef<K>,
    value: SerdeRef<V>,
}

impl<K: 'static, V: 'static> Repartitioned<K, V> {
    pub fn with(name: &str, key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Repartitioned { name: name.to_string(), key: SerdeRef::shared(key), value: SerdeRef::shared(value) }
    }
}

/// A stream of `Record<K, V>`. Cheap to clone; using one stream in several operators fans its
/// records out to all of them.
pub struct KStream<K, V> {
    pub(crate) graph: Shared,
    pub(crate) node: usize,
    /// Set by operators that may change the key: a later grouping repartitions first, a later
    /// join refuses to build until the stream is repartitioned.
    pub(crate) key_changed: bool,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream { graph: self.graph.clone(), node: self.node, key_changed: self.key_changed, _t: PhantomData }
    }
}

type Pred<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;
/// A split's branches as they are added: the branch node and its predicate (None: default).
type Branches<K, V> = Rc<RefCell<Vec<(usize, Option<Pred<K, V>>)>>>;
/// A splitter's routes: branch node name and predicate.
type Routes<K, V> = Arc<Vec<(String, Option<Pred<K, V>>)>>;

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(graph: Shared, node: usize, key_changed: bool) -> Self {
        KStream { graph, node, key_changed, _t: PhantomData }
    }

    fn child<K2, V2>(&self, node: usize, key_changed: bool) -> KStream<K2, V2> {
        KStream { graph: self.graph.clone(), node, key_changed, _t: PhantomData }
    }

    fn stateless<K2: Data, V2: Data, F>(&self, kind: &str, key_changed: bool, f: F) -> KStream<K2, V2>
    where
        F: Fn(Record<K, V>, &mut ProcessorContext<'_>) -> Result<(), ProcessError> + Send + Sync + 'static,
    {
        let node = self.graph.borrow_mut().stateless(kind, vec![self.node], f);
        self.child(node, key_changed)
    }

    /// The name of the node producing this stream (to attach Processor-API nodes to it).
    pub fn node_name(&self) -> String {
        self.graph.borrow().name(self.node).to_string()
    }

    /// Names the node producing this stream instead of its generated name.
    pub fn named(self, name: &str) -> Self {
        self.graph.borrow_mut().rename(self.node, name);
        self
    }

    /// Keeps the records `pred` accepts.
    pub fn filter<F>(&self, pred: F) -> KStream<K, V>
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.stateless(
            "FILTER",
            self.key_changed,
            move |r, ctx| {
                if pred(&r.key, &r.value) {
                    ctx.forward(r)
                } else {
                    Ok(())
                }
            },
        )
    }

    /// Drops the records `pred` accepts.
    pub fn filter_not<F>(&self, pred: F) -> KStream<K, V>
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.filter(move |k, v| !pred(k, v))
    }

    /// Replaces key and value (timestamp and headers are kept).
    pub fn map<K2: Data, V2: Data, F>(&self, f: F) -> KStream<K2, V2>
    where
        F: Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    {
        self.stateless("MAP", true, move |r: Record<K, V>, ctx| {
            let Record { key, value, timestamp, headers } = r;
            let (key, value) = f(key, value);
            ctx.forward(Record { key, value, timestamp, headers })
        })
    }

    /// Replaces the value; the key (and so the partitioning) is unchanged.
    pub fn map_values<V2: Data, F>(&self, f: F) -> KStream<K, V2>
    where
        F: Fn(V) -> V2 + Send + Sync + 'static,
    {
        self.stateless("MAPVALUES", self.key_changed, move |r: Record<K, V>, ctx| {
            let Record { key, value, timestamp, headers } = r;
            ctx.forward(Record { key, value: f(value), timestamp, headers })
        })
    }

    /// Zero or more records per record.
    pub fn flat_map<K2: Data, V2: Data, I, F>(&self, f: F) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
        F: Fn(K, V) -> I + Send + Sync + 'static,
    {
        self.stateless("FLATMAP", true, move |r: Record<K, V>, ctx| {
            let Record { key, value, timestamp, headers } = r;
            for (key, value) in f(key, value) {
                ctx.forward(Record { key, value, timestamp, headers: headers.clone() })?;
            }
            Ok(())
        })
    }

    /// Zero or more values per record, under the same key.
    pub fn flat_map_values<V2: Data, I, F>(&self, f: F) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2>,
        F: Fn(V) -> I + Send + Sync + 'static,
    {
        self.stateless("FLATMAPVALUES", self.key_changed, move |r: Record<K, V>, ctx| {
            let Record { key, value, timestamp, headers } = r;
            for value in f(value) {
                ctx.forward(Record { key: key.clone(), value, timestamp, headers: headers.clone() })?;
            }
            Ok(())
        })
    }

    /// Sets a new key computed from key and value.
    pub fn select_key<K2: Data, F>(&self, f: F) -> KStream<K2, V>
    where
        F: Fn(&K, &V) -> K2 + Send + Sync + 'static,
    {
        self.stateless("KEY-SELECT", true, move |r: Record<K, V>, ctx| {
            let key = f(&r.key, &r.value);
            ctx.forward(r.with_key(key))
        })
    }

    /// Looks at each record (metrics, logs) and passes it on unchanged.
    pub fn peek<F>(&self, f: F) -> KStream<K, V>
    where
        F: Fn(&K, &V) + Send + Sync + 'static,
    {
        self.stateless("PEEK", self.key_changed, move |r, ctx| {
            f(&r.key, &r.value);
            ctx.forward(r)
        })
    }

    /// Splits the stream by predicates (Kafka Streams' `split().branch(..)`): each record goes
    /// to the first branch whose predicate accepts it, or to the default branch.
    pub fn split(&self, name: &str) -> Split<K, V> {
        let branches: Branches<K, V> = Rc::default();
        let list = branches.clone();
        let node = self.graph.borrow_mut().add(
            name.to_string(),
            vec![self.node],
            Box::new(move |t, n| {
                let routes: Vec<(String, Option<Pred<K, V>>)> =
                    list.borrow().iter().map(|(node, p)| (n.name_of(*node).to_string(), p.clone())).collect();
                let routes = Arc::new(routes);
                t.add_processor::<K, V, _, _>(n.name, move || Splitter { routes: routes.clone() }, &n.parents).map(drop)
            }),
        );
        Split { stream: self.child(node, self.key_changed), name: name.to_string(), branches }
    }

    /// Records of both streams in one stream.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        if !Rc::ptr_eq(&self.graph, &other.graph) {
            self.graph.borrow_mut().error(DslError::OtherBuilder("merge".into()));
        }
        let node = self
            .graph
            .borrow_mut()
            .stateless("MERGE", vec![self.node, other.node], |r: Record<K, V>, ctx| ctx.forward(r));
        self.child(node, self.key_changed || other.key_changed)
    }

    /// Writes the stream to `topic`, partitioned by murmur2 of the serialized key.
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        let mut g = self.graph.borrow_mut();
        let name = produced.name.clone().unwrap_or_else(|| g.generated("SINK"));
        let (topic, ks, vs) = (topic.to_string(), produced.key, produced.value);
        g.add(
            name,
            vec![self.node],
            Box::new(move |t, n| t.add_sink::<K, V>(n.name, &topic, ks, vs, &n.parents).map(drop)),
        );
    }

    /// Writes the stream through `<application.id>-<name>-repartition` and reads it back, so
    /// records with the same key meet in the same task.
    pub fn repartition(&self, r: Repartitioned<K, V>) -> KStream<K, V> {
        let node = repartition_node(&self.graph, self.node, r.name, r.key, r.value);
        self.child(node, false)
    }

    /// Groups by the current key, repartitioning first (through `grouped`'s topic) if an
    /// earlier operator may have changed it.
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        let node = if self.key_changed {
            repartition_node(&self.graph, self.node, grouped.name, grouped.key, grouped.value)
        } else {
            self.node
        };
        KGroupedStream::new(self.graph.clone(), node)
    }

    /// Groups by a new key, always through `grouped`'s repartition topic.
    pub fn group_by<K2: Data, F>(&self, f: F, grouped: Grouped<K2, V>) -> KGroupedStream<K2, V>
    where
        F: Fn(&K, &V) -> K2 + Send + Sync + 'static,
    {
        self.select_key(f).group_by_key(grouped)
    }

    /// Runs a Processor-API processor on the stream; `stores` (declared with
    /// `StreamsBuilder::add_store`) are connected to it. The output types are the caller's
    /// declaration of what `P` forwards.
    pub fn process<K2: Data, V2: Data, P, F>(&self, name: &str, supplier: F, stores: &[&str]) -> KStream<K2, V2>
    where
        P: Processor<K, V>,
        F: Fn() -> P + Send + Sync + 'static,
    {
        let mut g = self.graph.borrow_mut();
        let node = g.processor::<K, V, P, F>(name.to_string(), vec![self.node], supplier);
        for s in stores {
            g.connect(s, node);
        }
        drop(g);
        self.child(node, true)
    }
}

pub(crate) fn repartition_node<K: Data, V: Data>(
    graph: &Shared,
    parent: usize,
    name: String,
    ks: SerdeRef<K>,
    vs: SerdeRef<V>,
) -> usize {
    graph.borrow_mut().add(
        name,
        vec![parent],
        Box::new(move |t, n| t.add_repartition::<K, V>(n.name, ks, vs, &n.parents).map(drop)),
    )
}

/// Branches of a split, added one by one; see [`KStream::split`].
pub struct Split<K, V> {
    stream: KStream<K, V>,
    name: String,
    branches: Branches<K, V>,
}

impl<K: Data, V: Data> Split<K, V> {
    fn add(&self, branch: &str, pred: Option<Pred<K, V>>) -> KStream<K, V> {
        let name = format!("{}-{branch}", self.name);
        let pass: fn(Record<K, V>, &mut ProcessorContext<'_>) -> Result<(), ProcessError> = |r, ctx| ctx.forward(r);
        let f = Arc::new(pass);
        let node = self
            .stream
            .graph
            .borrow_mut()
            .processor::<K, V, _, _>(name, vec![self.stream.node], move || FnProcessor::new(f.clone()));
        self.branches.borrow_mut().push((node, pred));
        self.stream.child(node, self.stream.key_changed)
    }

    /// Records `pred` accepts (and no earlier branch did), as node `<split>-<branch>`.
    pub fn branch<F>(&self, branch: &str, pred: F) -> KStream<K, V>
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.add(branch, Some(Arc::new(pred)))
    }

    /// Records no branch accepted.
    pub fn default_branch(&self, branch: &str) -> KStream<K, V> {
        self.add(branch, None)
    }
}

/// Forwards each record to the first branch whose predicate accepts it.
struct Splitter<K, V> {
    routes: Routes<K, V>,
}

impl<K: Data, V: Data> Processor<K, V> for Splitter<K, V> {
    fn process(&mut self, r: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let routes = self.routes.clone();
        for (child, pred) in routes.iter() {
            if pred.as_ref().is_none_or(|p| p(&r.key, &r.value)) {
                return ctx.forward_to(child, r);
            }
        }
        Ok(())
    }
}

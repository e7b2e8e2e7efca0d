//! The builder's graph: operators are recorded as pending nodes (name, parents, and how to add
//! themselves to a `Topology`) and only compiled by `build`, so a node can still be renamed, a
//! splitter can learn its branches, and a store its processors after the operator that made
//! them returned.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::context::ProcessorContext;
use crate::processor::{ProcessError, Processor};
use crate::record::Record;
use crate::store::typed::{KvStoreDef, SerdeRef, StoreDef};
use crate::topology::{StoreSpec, Topology, TopologyError};

use super::stream::{Consumed, KStream};
use super::table::{GlobalKTable, KTable, TableMaterialize};
use super::Data;

/// Why a DSL topology cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DslError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("{operator}: the stream's key was changed; call .repartition(Repartitioned::with(..)) first so records with the same new key meet in one task")]
    NeedsRepartition { operator: String },
    #[error("{0}: streams from two different StreamsBuilders cannot be combined")]
    OtherBuilder(String),
    #[error("processor {processor} uses store {store}, which is not declared (StreamsBuilder::add_store)")]
    UnknownStore { store: String, processor: String },
}

/// How a pending node adds itself: it gets its final name, its parents' names and the names of
/// every node (for splitters that address their branches).
pub(crate) type AddFn = Box<dyn FnOnce(&mut Topology, &NodeCtx<'_>) -> Result<(), TopologyError>>;

pub(crate) struct NodeCtx<'a> {
    pub name: &'a str,
    pub parents: Vec<&'a str>,
    names: &'a [String],
}

impl NodeCtx<'_> {
    pub fn name_of(&self, node: usize) -> &str {
        &self.names[node]
    }
}

struct PendingNode {
    name: String,
    parents: Vec<usize>,
    add: Option<AddFn>,
}

struct PendingStore {
    spec: StoreSpec,
    nodes: Vec<usize>,
}

#[derive(Default)]
pub(crate) struct Graph {
    nodes: Vec<PendingNode>,
    stores: Vec<PendingStore>,
    globals: Vec<(StoreSpec, String)>,
    counter: usize,
    errors: Vec<DslError>,
}

pub(crate) type Shared = Rc<RefCell<Graph>>;

impl Graph {
    /// Kafka Streams' generated node name: `KSTREAM-<KIND>-<10-digit counter>`.
    pub fn generated(&mut self, kind: &str) -> String {
        let n = self.counter;
        self.counter += 1;
        format!("KSTREAM-{kind}-{n:010}")
    }

    pub fn add(&mut self, name: String, parents: Vec<usize>, add: AddFn) -> usize {
        self.nodes.push(PendingNode { name, parents, add: Some(add) });
        self.nodes.len() - 1
    }

    /// A processor node: `supplier` makes one instance per task.
    pub fn processor<K, V, P, F>(&mut self, name: String, parents: Vec<usize>, supplier: F) -> usize
    where
        K: Send + 'static,
        V: Send + 'static,
        P: Processor<K, V>,
        F: Fn() -> P + Send + Sync + 'static,
    {
        self.add(
            name,
            parents,
            Box::new(move |t, n| t.add_processor::<K, V, P, F>(n.name, supplier, &n.parents).map(drop)),
        )
    }

    /// A stateless node running `f` on each record.
    pub fn stateless<K, V, F>(&mut self, kind: &str, parents: Vec<usize>, f: F) -> usize
    where
        K: Send + 'static,
        V: Send + 'static,
        F: Fn(Record<K, V>, &mut ProcessorContext<'_>) -> Result<(), ProcessError> + Send + Sync + 'static,
    {
        let name = self.generated(kind);
        let f = Arc::new(f);
        self.processor::<K, V, _, _>(name, parents, move || FnProcessor { f: f.clone(), _t: PhantomData })
    }

    pub fn rename(&mut self, node: usize, name: &str) {
        self.nodes[node].name = name.to_string();
    }

    pub fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// Declares a store used by `nodes`. A name declared twice is an error: two operators
    /// materializing into one handle would silently share (and corrupt) each other's state.
    pub fn store(&mut self, spec: StoreSpec, nodes: &[usize]) {
        let taken = self.stores.iter().any(|s| s.spec.name == spec.name)
            || self.globals.iter().any(|(g, _)| g.name == spec.name);
        if taken {
            self.error(DslError::Topology(TopologyError::Duplicate(spec.name)));
            return;
        }
        self.stores.push(PendingStore { spec, nodes: nodes.to_vec() });
    }

    /// Connects an already declared store (a table's, or one from `add_store`) to one more
    /// processor. Global stores need no connection: every processor may read them.
    pub fn connect(&mut self, store: &str, node: usize) {
        if let Some(s) = self.stores.iter_mut().find(|s| s.spec.name == store) {
            s.nodes.push(node);
        } else if !self.globals.iter().any(|(g, _)| g.name == store) {
            let processor = self.nodes[node].name.clone();
            self.error(DslError::UnknownStore { store: store.to_string(), processor });
        }
    }

    pub fn global(&mut self, spec: StoreSpec, topic: &str) {
        if self.stores.iter().any(|s| s.spec.name == spec.name) || self.globals.iter().any(|(g, _)| g.name == spec.name)
        {
            self.error(DslError::Topology(TopologyError::Duplicate(spec.name)));
            return;
        }
        self.globals.push((spec, topic.to_string()));
    }

    pub fn error(&mut self, e: DslError) {
        self.errors.push(e);
    }
}

/// Runs a closure per record: every stateless operator is one of these.
pub(crate) struct FnProcessor<K, V, F> {
    f: Arc<F>,
    _t: PhantomData<fn(K, V)>,
}

impl<K, V, F> FnProcessor<K, V, F> {
    pub fn new(f: Arc<F>) -> Self {
        FnProcessor { f, _t: PhantomData }
    }
}

impl<K, V, F> Processor<K, V> for FnProcessor<K, V, F>
where
    K: Send + 'static,
    V: Send + 'static,
    F: Fn(Record<K, V>, &mut ProcessorContext<'_>) -> Result<(), ProcessError> + Send + Sync + 'static,
{
    fn process(&mut self, record: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        (self.f)(record, ctx)
    }
}

/// Entry point of the DSL, as in Kafka Streams: declare streams and tables, then `build`.
#[derive(Default)]
pub struct StreamsBuilder {
    graph: Shared,
}

impl StreamsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A stream of the records of `topic`.
    pub fn stream<K: Data, V: Data>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V> {
        self.streams(&[topic], consumed)
    }

    /// One stream of the records of several topics (they must be co-partitioned).
    pub fn streams<K: Data, V: Data>(&self, topics: &[&str], consumed: Consumed<K, V>) -> KStream<K, V> {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let mut g = self.graph.borrow_mut();
        let name = consumed.name.clone().unwrap_or_else(|| g.generated("SOURCE"));
        let (ks, vs) = (consumed.key, consumed.value);
        let node = g.add(
            name,
            Vec::new(),
            Box::new(move |t, n| {
                let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
                t.add_source::<K, V>(n.name, &topics, ks, vs).map(drop)
            }),
        );
        drop(g);
        KStream::new(self.graph.clone(), node, false)
    }

    /// A table of the latest value per key of `topic` (a null or empty value deletes the key),
    /// materialized in `store`.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        store: &KvStoreDef<K, V>,
    ) -> KTable<K, V> {
        let mut g = self.graph.borrow_mut();
        let source_name = consumed.name.clone().unwrap_or_else(|| g.generated("SOURCE"));
        let (ks, vs) = (consumed.key, TombstoneSerde(consumed.value));
        let topic = topic.to_string();
        let source = g.add(
            source_name,
            Vec::new(),
            Box::new(move |t, n| t.add_source::<K, Option<V>>(n.name, &[&topic], ks, vs).map(drop)),
        );
        let def = store.clone();
        let node = g.processor::<K, Option<V>, _, _>(store.name().to_string(), vec![source], move || {
            TableMaterialize { store: def.clone() }
        });
        g.store(store.spec(), &[node]);
        drop(g);
        KTable::new(self.graph.clone(), node, store.clone())
    }

    /// A table replicated in full on every instance, filled from all partitions of `topic`
    /// before processing starts; joined by a key derived from each record.
    pub fn global_table<K: Send + 'static, V: Send + 'static>(
        &self,
        topic: &str,
        store: &KvStoreDef<K, V>,
    ) -> GlobalKTable<K, V> {
        self.graph.borrow_mut().global(store.spec(), topic);
        GlobalKTable { store: store.clone() }
    }

    /// Declares a store for Processor-API nodes added with `KStream::process`.
    pub fn add_store<D: StoreDef>(&self, store: &D) {
        self.graph.borrow_mut().store(store.spec(), &[]);
    }

    /// Compiles the DSL into a `Topology` (Processor-API nodes may still be added to it).
    pub fn build(self) -> Result<Topology, DslError> {
        let mut t = Topology::new();
        self.build_into(&mut t)?;
        Ok(t)
    }

    /// Compiles the DSL into an existing topology, next to its hand-written nodes.
    pub fn build_into(self, t: &mut Topology) -> Result<(), DslError> {
        let mut g = self.graph.borrow_mut();
        if let Some(e) = std::mem::take(&mut g.errors).into_iter().next() {
            return Err(e);
        }
        let names: Vec<String> = g.nodes.iter().map(|n| n.name.clone()).collect();
        for node in &mut g.nodes {
            let Some(add) = node.add.take() else { continue };
            let parents = node.parents.iter().map(|&p| names[p].as_str()).collect();
            add(t, &NodeCtx { name: &node.name, parents, names: &names })?;
        }
        for s in std::mem::take(&mut g.stores) {
            let nodes: Vec<&str> = s.nodes.iter().map(|&n| names[n].as_str()).collect();
            t.add_state_store(s.spec, &nodes)?;
        }
        for (spec, topic) in std::mem::take(&mut g.globals) {
            t.add_global_store(spec, &topic)?;
        }
        Ok(())
    }
}

/// Reads a table topic's values: a null (or empty) value is a deletion.
pub(crate) struct TombstoneSerde<V: 'static>(pub SerdeRef<V>);

impl<V: 'static> crate::serde::Serde<Option<V>> for TombstoneSerde<V> {
    fn serialize(&self, topic: &str, value: &Option<V>) -> Result<Vec<u8>, crate::serde::SerdeError> {
        match value {
            Some(v) => self.0.serialize(topic, v),
            None => Ok(Vec::new()),
        }
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Option<V>, crate::serde::SerdeError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        self.0.deserialize(topic, bytes).map(Some)
    }
}

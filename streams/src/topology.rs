//! Declaring a topology: sources, processors, stores, sinks, repartition topics, global tables.
//!
//! Every node, store and internal topic is named by the data engineer, never derived from its
//! position, so adding a processor later does not rename (and so orphan) existing state.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;

use crate::context::ProcessorContext;
use crate::processor::{ErasedProcessor, ProcessError, Processor, Typed};
use crate::record::{OutRecord, Record};
use crate::serde::Serde;
use crate::source::{cloner, decoder, Cloner, Decoder, SourceOptions};
use crate::store::query::QueryableStore;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error("name {0} is used twice")]
    Duplicate(String),
    #[error("{node} names unknown parent {parent}")]
    UnknownParent { node: String, parent: String },
    #[error("{0} cannot have children (it is a sink)")]
    SinkParent(String),
    #[error("store {store} is connected to unknown processor {processor}")]
    UnknownProcessor { store: String, processor: String },
    #[error("topic {0} is read by two sources")]
    TopicTwice(String),
    #[error("the topology has no source")]
    Empty,
}

type Supplier = Arc<dyn Fn() -> Box<dyn ErasedProcessor> + Send + Sync>;

pub(crate) enum NodeKind {
    Source {
        /// User topics, then (for a key-placed source) its placement topic.
        topics: Vec<String>,
        decoder: Decoder,
        cloner: Cloner,
        /// `<application.id>-<name>-placement-repartition` for a key-placed source.
        placement: Option<String>,
    },
    Processor {
        supplier: Supplier,
    },
}

pub(crate) struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub parents: Vec<String>,
}

/// A declared store. Serdes are kept type-erased (`Arc<dyn Serde<K>>` inside `Any`) and
/// recovered by the typed accessors on `ProcessorContext`.
#[derive(Clone)]
pub struct StoreSpec {
    pub name: String,
    /// Whether every change is written to `<application.id>-<store>-changelog`.
    pub logged: bool,
    pub(crate) key_serde: Arc<dyn Any + Send + Sync>,
    pub(crate) value_serde: Arc<dyn Any + Send + Sync>,
    pub(crate) type_names: (&'static str, &'static str),
    /// Set when the store answers the generic interactive-query endpoint (see `store::query`).
    pub(crate) query: Option<Arc<dyn QueryableStore>>,
}

impl StoreSpec {
    /// A key-value store with changelog, the default for anything that must survive a crash.
    pub fn key_value<K: 'static, V: 'static>(
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> StoreSpec {
        let k: Arc<dyn Serde<K>> = Arc::new(key_serde);
        let v: Arc<dyn Serde<V>> = Arc::new(value_serde);
        StoreSpec {
            name: name.to_string(),
            logged: true,
            key_serde: Arc::new(k),
            value_serde: Arc::new(v),
            type_names: (std::any::type_name::<K>(), std::any::type_name::<V>()),
            query: None,
        }
    }

    /// Marks the store queryable (typed handles do this from their `QuerySpec`).
    pub fn with_query(mut self, query: Arc<dyn QueryableStore>) -> Self {
        self.query = Some(query);
        self
    }

    /// How the generic query endpoint reads this store, if it is queryable.
    pub fn query(&self) -> Option<&Arc<dyn QueryableStore>> {
        self.query.as_ref()
    }

    /// Keeps the store local only (rebuilt from nothing if the state directory is lost).
    pub fn without_changelog(mut self) -> Self {
        self.logged = false;
        self
    }
}

/// A store filled from every partition of one topic on every instance (e.g. exchange rates).
#[derive(Clone)]
pub struct GlobalSpec {
    pub store: StoreSpec,
    pub topic: String,
}

/// A group of nodes connected by edges or shared stores: it runs as one task per partition.
#[derive(Debug, Clone)]
pub struct SubTopology {
    pub id: usize,
    pub source_topics: Vec<String>,
    pub nodes: Vec<usize>,
    pub stores: Vec<String>,
    /// Topics this sub-topology's sinks write (outputs and repartition topics).
    pub sink_topics: Vec<String>,
}

/// Builder for a processing graph. See `build` for validation.
#[derive(Default)]
pub struct Topology {
    nodes: Vec<Node>,
    stores: Vec<(StoreSpec, Vec<String>)>,
    globals: Vec<GlobalSpec>,
    repartitions: Vec<String>,
    /// Sink node name → topic it writes (before `application.id` is resolved).
    sinks: Vec<(String, String)>,
}

impl Topology {
    pub fn new() -> Self {
        Self::default()
    }

    fn check_name(&self, name: &str) -> Result<(), TopologyError> {
        if self.nodes.iter().any(|n| n.name == name) {
            return Err(TopologyError::Duplicate(name.to_string()));
        }
        Ok(())
    }

    /// Reads `topics`, decoding keys and values with the given serdes; event time is the Kafka
    /// timestamp. See [`Topology::add_source_with`] for event time from the record itself and
    /// for key placement.
    pub fn add_source<K, V>(
        &mut self,
        name: &str,
        topics: &[&str],
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<&mut Self, TopologyError>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        self.add_source_with(name, topics, key_serde, value_serde, SourceOptions::default())
    }

    /// Reads `topics` as declared by `options`: where event time comes from, and whether
    /// records must be processed by the task their key belongs to (then a placement topic
    /// `<application.id>-<name>-placement-repartition` is added to the source).
    ///
    /// Each record is decoded once, when it is fetched; every child but the last gets a clone.
    pub fn add_source_with<K, V>(
        &mut self,
        name: &str,
        topics: &[&str],
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        options: SourceOptions<K, V>,
    ) -> Result<&mut Self, TopologyError>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        self.check_name(name)?;
        let mut topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let placement = options.key_placed.then(|| {
            let placement_name = format!("{name}-placement");
            self.repartitions.push(placement_name.clone());
            repartition_placeholder(&placement_name)
        });
        topics.extend(placement.clone());
        self.nodes.push(Node {
            name: name.to_string(),
            kind: NodeKind::Source {
                topics,
                decoder: decoder(key_serde, value_serde, options.time),
                cloner: cloner::<K, V>(),
                placement,
            },
            parents: Vec::new(),
        });
        Ok(self)
    }

    /// Adds a processor fed by `parents`; `supplier` makes one instance per task.
    pub fn add_processor<K, V, P, F>(
        &mut self,
        name: &str,
        supplier: F,
        parents: &[&str],
    ) -> Result<&mut Self, TopologyError>
    where
        K: Send + 'static,
        V: Send + 'static,
        P: Processor<K, V>,
        F: Fn() -> P + Send + Sync + 'static,
    {
        self.check_name(name)?;
        let supplier: Supplier = Arc::new(move || {
            Box::new(Typed { inner: supplier(), _types: PhantomData::<fn(K, V)> }) as Box<dyn ErasedProcessor>
        });
        self.nodes.push(Node {
            name: name.to_string(),
            kind: NodeKind::Processor { supplier },
            parents: parents.iter().map(|p| p.to_string()).collect(),
        });
        Ok(self)
    }

    /// Writes records from `parents` to `topic`, partitioned by key: with murmur2 for user
    /// topics (what downstream Java consumers expect), with the reading sub-topology's
    /// partitioner for the application's own repartition topics.
    pub fn add_sink<K, V>(
        &mut self,
        name: &str,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        parents: &[&str],
    ) -> Result<&mut Self, TopologyError>
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        self.sinks.push((name.to_string(), topic.to_string()));
        let (topic, key_serde, value_serde) =
            (topic.to_string(), Arc::new(key_serde) as Arc<dyn Serde<K>>, Arc::new(value_serde) as Arc<dyn Serde<V>>);
        self.add_processor::<K, V, _, _>(
            name,
            move || SharedSink { topic: topic.clone(), key_serde: key_serde.clone(), value_serde: value_serde.clone() },
            parents,
        )
    }

    /// Re-keys through `<application.id>-<name>-repartition`: `parents` write to it, and a source
    /// node called `name` reads it in a new sub-topology, so records with the same new key meet
    /// in the same task.
    pub fn add_repartition<K, V>(
        &mut self,
        name: &str,
        key_serde: impl Serde<K> + Clone,
        value_serde: impl Serde<V> + Clone,
        parents: &[&str],
    ) -> Result<&mut Self, TopologyError>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let topic = repartition_placeholder(name);
        self.add_sink::<K, V>(&format!("{name}-sink"), &topic, key_serde.clone(), value_serde.clone(), parents)?;
        self.add_source::<K, V>(name, &[&topic], key_serde, value_serde)?;
        self.repartitions.push(name.to_string());
        Ok(self)
    }

    /// Declares a store and the processors that may use it.
    pub fn add_state_store(&mut self, spec: StoreSpec, processors: &[&str]) -> Result<&mut Self, TopologyError> {
        if self.stores.iter().any(|(s, _)| s.name == spec.name)
            || self.globals.iter().any(|g| g.store.name == spec.name)
        {
            return Err(TopologyError::Duplicate(spec.name));
        }
        self.stores.push((spec, processors.iter().map(|p| p.to_string()).collect()));
        Ok(self)
    }

    /// Declares a global store kept equal to `topic` (all partitions) on every instance. The
    /// store's serdes must read the topic's bytes; a null value deletes the key.
    pub fn add_global_store(&mut self, spec: StoreSpec, topic: &str) -> Result<&mut Self, TopologyError> {
        if self.stores.iter().any(|(s, _)| s.name == spec.name)
            || self.globals.iter().any(|g| g.store.name == spec.name)
        {
            return Err(TopologyError::Duplicate(spec.name));
        }
        self.globals.push(GlobalSpec { store: spec, topic: topic.to_string() });
        Ok(self)
    }

    /// Validates the graph, names internal topics after `application_id` and splits it into
    /// sub-topologies.
    pub fn build(self, application_id: &str) -> Result<Arc<BuiltTopology>, TopologyError> {
        let index: HashMap<String, usize> = self.nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
        let mut children = vec![Vec::new(); self.nodes.len()];
        let mut uf: Vec<usize> = (0..self.nodes.len()).collect();
        fn find(uf: &mut [usize], i: usize) -> usize {
            let mut r = i;
            while uf[r] != r {
                r = uf[r];
            }
            uf[i] = r;
            r
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for p in &n.parents {
                let pi = *index
                    .get(p)
                    .ok_or_else(|| TopologyError::UnknownParent { node: n.name.clone(), parent: p.clone() })?;
                children[pi].push(i);
                let (a, b) = (find(&mut uf, i), find(&mut uf, pi));
                uf[a] = b;
            }
        }
        let mut store_nodes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (spec, procs) in &self.stores {
            let mut ids = Vec::new();
            for p in procs {
                let pi = *index.get(p).ok_or_else(|| TopologyError::UnknownProcessor {
                    store: spec.name.clone(),
                    processor: p.clone(),
                })?;
                ids.push(pi);
            }
            for w in ids.windows(2) {
                let (a, b) = (find(&mut uf, w[0]), find(&mut uf, w[1]));
                uf[a] = b;
            }
            store_nodes.insert(spec.name.clone(), ids);
        }
        let resolve = |t: &str| resolve_topic(t, application_id);
        // Group nodes by root, ordering sub-topologies by their first node so ids are stable.
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut order: Vec<usize> = Vec::new();
        for i in 0..self.nodes.len() {
            let r = find(&mut uf, i);
            if !groups.contains_key(&r) {
                order.push(r);
            }
            groups.entry(r).or_default().push(i);
        }
        let mut seen_topics = BTreeSet::new();
        let mut subtopologies = Vec::new();
        let mut node_sub = vec![0; self.nodes.len()];
        for root in order {
            let nodes = groups.remove(&root).unwrap_or_default();
            let id = subtopologies.len();
            let mut source_topics = Vec::new();
            let mut sink_topics = Vec::new();
            for &i in &nodes {
                node_sub[i] = id;
                if let NodeKind::Source { topics, .. } = &self.nodes[i].kind {
                    for t in topics {
                        let t = resolve(t);
                        if !seen_topics.insert(t.clone()) {
                            return Err(TopologyError::TopicTwice(t));
                        }
                        source_topics.push(t);
                    }
                }
                if let Some((_, topic)) = self.sinks.iter().find(|(n, _)| *n == self.nodes[i].name) {
                    sink_topics.push(resolve(topic));
                }
            }
            let stores = store_nodes
                .iter()
                .filter(|(_, ids)| ids.iter().any(|i| nodes.contains(i)))
                .map(|(s, _)| s.clone())
                .collect();
            // Two sinks may write one topic (e.g. notifications from two processors).
            sink_topics.sort();
            sink_topics.dedup();
            subtopologies.push(SubTopology { id, source_topics, nodes, stores, sink_topics });
        }
        if subtopologies.iter().all(|s| s.source_topics.is_empty()) {
            return Err(TopologyError::Empty);
        }
        let mut node_stores = vec![Vec::new(); self.nodes.len()];
        for (name, ids) in &store_nodes {
            for &i in ids {
                node_stores[i].push(name.clone());
            }
        }
        let node_sinks =
            self.nodes.iter().map(|n| self.sinks.iter().find(|(s, _)| *s == n.name).map(|(_, t)| resolve(t))).collect();
        let nodes: Vec<Node> = self
            .nodes
            .into_iter()
            .map(|mut n| {
                if let NodeKind::Source { topics, placement, .. } = &mut n.kind {
                    *topics = topics.iter().map(|t| resolve(t)).collect();
                    *placement = placement.as_deref().map(resolve);
                }
                n
            })
            .collect();
        let repartition_topics: Vec<String> =
            self.repartitions.iter().map(|r| resolve(&repartition_placeholder(r))).collect();
        let topic_subtopology =
            subtopologies.iter().flat_map(|s| s.source_topics.iter().map(move |t| (t.clone(), s.id))).collect();
        let placement_topics = nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Source { placement, .. } => placement.clone(),
                NodeKind::Processor { .. } => None,
            })
            .collect();
        Ok(Arc::new(BuiltTopology {
            application_id: application_id.to_string(),
            nodes,
            children,
            node_stores,
            node_sinks,
            stores: self.stores.into_iter().map(|(s, _)| (s.name.clone(), s)).collect(),
            globals: self.globals,
            subtopologies,
            repartition_topics,
            placement_topics,
            topic_subtopology,
        }))
    }
}

const INTERNAL_PREFIX: &str = "${application.id}-";

fn repartition_placeholder(name: &str) -> String {
    format!("{INTERNAL_PREFIX}{name}-repartition")
}

fn resolve_topic(topic: &str, app: &str) -> String {
    match topic.strip_prefix(INTERNAL_PREFIX) {
        Some(rest) => format!("{app}-{rest}"),
        None => topic.to_string(),
    }
}

/// A validated topology bound to an `application.id`.
pub struct BuiltTopology {
    pub application_id: String,
    pub(crate) nodes: Vec<Node>,
    pub(crate) children: Vec<Vec<usize>>,
    pub(crate) node_stores: Vec<Vec<String>>,
    /// The topic each sink node writes (None for other nodes).
    pub(crate) node_sinks: Vec<Option<String>>,
    pub(crate) stores: BTreeMap<String, StoreSpec>,
    pub globals: Vec<GlobalSpec>,
    pub subtopologies: Vec<SubTopology>,
    /// Topics the application writes and reads back: repartition topics and the placement
    /// topics of key-placed sources (created with the partition count of the inputs).
    pub repartition_topics: Vec<String>,
    /// `<application.id>-<source>-placement-repartition` of each key-placed source.
    pub placement_topics: Vec<String>,
    /// Source topic → the sub-topology that reads it.
    topic_subtopology: HashMap<String, usize>,
}

impl BuiltTopology {
    /// `<application.id>-<store>-changelog`.
    pub fn changelog_topic(&self, store: &str) -> String {
        format!("{}-{store}-changelog", self.application_id)
    }
    /// Every topic read by a task (user inputs and repartition topics).
    pub fn source_topics(&self) -> Vec<String> {
        self.subtopologies.iter().flat_map(|s| s.source_topics.clone()).collect()
    }
    pub fn subtopology_of_topic(&self, topic: &str) -> Option<usize> {
        self.topic_subtopology.get(topic).copied()
    }
    /// The sub-topology whose tasks hold `store`.
    pub fn subtopology_of_store(&self, store: &str) -> Option<usize> {
        self.subtopologies.iter().position(|s| s.stores.iter().any(|n| n == store))
    }
    /// Whether the application writes `topic` itself (repartition and placement topics).
    pub fn is_internal_topic(&self, topic: &str) -> bool {
        self.repartition_topics.iter().any(|t| t == topic)
    }
    /// User source topics whose partitioner must be decided: every source topic that is not
    /// internal, with the sub-topology reading it.
    pub fn user_source_topics(&self) -> Vec<(String, usize)> {
        self.subtopologies
            .iter()
            .flat_map(|s| s.source_topics.iter().map(move |t| (t.clone(), s.id)))
            .filter(|(t, _)| !self.is_internal_topic(t))
            .collect()
    }
    /// User topics of key-placed sources: records on them are checked against the
    /// sub-topology's partitioner (and re-placed through [`BuiltTopology::placement_topics`]).
    pub fn key_placed_topics(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Source { topics, placement: Some(p), .. } => {
                    Some(topics.iter().filter(move |t| *t != p).cloned())
                }
                _ => None,
            })
            .flatten()
            .collect()
    }
    /// How the generic query endpoint reads each store, global stores included: typed (owner
    /// rule, JSON renderers) where the store's handle has a `QuerySpec`, for administrators
    /// only and from raw bytes otherwise. Global stores answer where a request arrives
    /// ([`QueryableStore::everywhere`]), whatever routing their spec names.
    pub fn queryable_stores(&self) -> Vec<Arc<dyn QueryableStore>> {
        use crate::store::query::{GlobalStore, RawStore};
        let queryable = |s: &StoreSpec| match &s.query {
            Some(q) => q.clone(),
            None => Arc::new(RawStore { name: s.name.clone() }) as Arc<dyn QueryableStore>,
        };
        let globals =
            self.globals.iter().map(|g| Arc::new(GlobalStore(queryable(&g.store))) as Arc<dyn QueryableStore>);
        self.stores.values().map(queryable).chain(globals).collect()
    }
    pub fn store_spec(&self, name: &str) -> Option<&StoreSpec> {
        self.stores.get(name).or_else(|| self.globals.iter().find(|g| g.store.name == name).map(|g| &g.store))
    }
    /// Changelog topics of all logged stores, with their store names.
    pub fn changelog_topics(&self) -> Vec<(String, String)> {
        self.stores.values().filter(|s| s.logged).map(|s| (s.name.clone(), self.changelog_topic(&s.name))).collect()
    }
    /// The topology as Kafka Streams' `TopologyDescription` prints it: each sub-topology with
    /// its sources (and topics), processors (and stores), sinks (and topics), successors
    /// (`-->`) and predecessors (`<--`); then global stores, repartition and changelog topics.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = String::from("Topologies:\n");
        for s in &self.subtopologies {
            let _ = writeln!(out, "   Sub-topology: {}", s.id);
            for i in self.describe_order(&s.nodes) {
                let n = &self.nodes[i];
                let _ = match (&n.kind, &self.node_sinks[i]) {
                    (NodeKind::Source { topics, .. }, _) => {
                        writeln!(out, "    Source: {} (topics: [{}])", n.name, topics.join(", "))
                    }
                    (_, Some(topic)) => writeln!(out, "    Sink: {} (topic: {topic})", n.name),
                    _ => writeln!(out, "    Processor: {} (stores: [{}])", n.name, self.node_stores[i].join(", ")),
                };
                let kids: Vec<&str> = self.children[i].iter().map(|&c| self.nodes[c].name.as_str()).collect();
                if !kids.is_empty() {
                    let _ = writeln!(out, "      --> {}", kids.join(", "));
                }
                if !n.parents.is_empty() {
                    let _ = writeln!(out, "      <-- {}", n.parents.join(", "));
                }
            }
            out.push('\n');
        }
        for g in &self.globals {
            let _ = writeln!(out, "  Global store: {} (topic: {})", g.store.name, g.topic);
        }
        if !self.repartition_topics.is_empty() {
            let _ = writeln!(out, "  Repartition topics: [{}]", self.repartition_topics.join(", "));
        }
        let changelogs: Vec<String> = self.changelog_topics().into_iter().map(|(_, t)| t).collect();
        if !changelogs.is_empty() {
            let _ = writeln!(out, "  Changelog topics: [{}]", changelogs.join(", "));
        }
        out
    }

    /// Sources first, then every node after its parents where the graph allows (breadth first,
    /// in declaration order), so the description reads from input to output.
    fn describe_order(&self, nodes: &[usize]) -> Vec<usize> {
        let mut order: Vec<usize> =
            nodes.iter().copied().filter(|&i| matches!(self.nodes[i].kind, NodeKind::Source { .. })).collect();
        let mut seen: BTreeSet<usize> = order.iter().copied().collect();
        let mut next = 0;
        while next < order.len() {
            for &c in &self.children[order[next]] {
                if seen.insert(c) {
                    order.push(c);
                }
            }
            next += 1;
        }
        order.extend(nodes.iter().copied().filter(|i| !seen.contains(i)));
        order
    }
}

/// Writes typed records to a topic (its timestamp is the record's, i.e. event time): a
/// processor like any other, so sinks need no special path.
/// Created per task from serdes shared by all tasks.
struct SharedSink<K, V> {
    topic: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
}

impl<K: Send + 'static, V: Send + 'static> Processor<K, V> for SharedSink<K, V> {
    fn process(&mut self, record: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let topic = ctx.resolve_topic(&self.topic);
        let key = self.key_serde.serialize(&topic, &record.key)?;
        let value = self.value_serde.serialize(&topic, &record.value)?;
        // Into the application's own repartition topics, keys go where the reading
        // sub-topology's partitioner puts them; `None` (user topics) is murmur2 at send.
        let partition = ctx.internal_partition(&topic, &key);
        ctx.emit(OutRecord {
            topic,
            partition,
            key: Some(key),
            value: Some(value),
            timestamp: record.timestamp,
            headers: record.headers,
        });
        Ok(())
    }
}

pub(crate) fn resolve_internal(topic: &str, app: &str) -> String {
    resolve_topic(topic, app)
}

//! The streams DSL: `StreamsBuilder`, `KStream`, `KTable`, `GlobalKTable` and their operators,
//! compiled to the Processor API (`Topology::add_source / add_processor / add_sink /
//! add_repartition / add_state_store / add_global_store`), so DSL and hand-written processors
//! mix in one topology and run on the same tasks, commit cycle and test driver.
//!
//! ```
//! use streams::dsl::{Consumed, Grouped, Produced, StreamsBuilder};
//! use streams::store::typed::KvStoreDef;
//! use streams::{I64Serde, StringSerde};
//!
//! const COUNTS: KvStoreDef<String, i64> = KvStoreDef::new("word-counts", &StringSerde, &I64Serde);
//!
//! let b = StreamsBuilder::new();
//! b.stream("lines", Consumed::with(StringSerde, StringSerde))
//!     .flat_map(|_, line: String| line.split_whitespace().map(|w| (w.to_lowercase(), w.to_string())).collect::<Vec<_>>())
//!     .group_by_key(Grouped::with("words", StringSerde, StringSerde))
//!     .count(&COUNTS)
//!     .to_stream()
//!     .to("word-counts", Produced::with(StringSerde, I64Serde));
//! let topology = b.build().unwrap().build("wordcount").unwrap();
//! assert_eq!(topology.repartition_topics, vec!["wordcount-words-repartition".to_string()]);
//! ```
//!
//! Names: every store is named by its typed handle and every repartition topic by the
//! operator that needs it (`Grouped`, `Repartitioned`, `StreamJoined`, `Suppressed`), so a
//! topology can grow without renaming (and so orphaning) state. Stateless nodes get Kafka
//! Streams' generated names (`KSTREAM-FILTER-0000000003`), which only label metrics and
//! `describe()`; `.named("...")` pins one.
//!
//! Types: a `KStream<K, V>` only offers operators whose closures take `K` and `V`, and stores
//! and serdes are typed by the same `K` and `V`, so a mismatch across operators is a compile
//! error. Table updates flow as `Record<K, Option<V>>` (`None` deletes the key).

mod graph;
pub(crate) mod index;
mod join;
mod stream;
mod table;
mod windowed;

pub use graph::{DslError, StreamsBuilder};
pub use join::{JoinWindows, StreamJoined};
pub use stream::{Consumed, Grouped, KStream, Produced, Repartitioned, Split};
pub use table::{GlobalKTable, KGroupedStream, KTable};
pub use windowed::{
    SessionWindowedKStream, SessionWindows, Suppressed, TimeWindowedKStream, WindowedKTable, WindowedSerde,
};

/// What flows between DSL operators: cloned when one record feeds several children.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

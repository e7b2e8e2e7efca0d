//! Typed store handles: a store is declared once, as a constant, with its name and its key and
//! value serdes, and everything that touches the store goes through that declaration:
//!
//! ```
//! use streams::store::typed::KvStoreDef;
//! use streams::{I64Serde, StringSerde};
//!
//! /// account id → balance in cents.
//! pub const BALANCES: KvStoreDef<String, i64> = KvStoreDef::new("balances", &StringSerde, &I64Serde);
//! ```
//!
//! - the topology declares it: `topology.add_store(&BALANCES, &["balances"])`;
//! - a processor opens it: `ctx.store(&BALANCES)?` is a `KeyValueStore<String, i64>`, so asking
//!   for other types is a compile error, not a runtime downcast;
//! - the DSL materializes into it: `grouped.count(&COUNTS)`;
//! - the test driver reads it: `driver.store(&BALANCES)` is a `Vec<(String, i64)>`;
//! - the query service encodes keys with it: `BALANCES.encode_key(&id)` instead of
//!   re-deriving the byte layout by hand.
//!
//! The handle's types are the view's, checked by the compiler:
//!
//! ```
//! # use streams::store::typed::KvStoreDef;
//! # use streams::{I64Serde, KeyValueStore, ProcessError, ProcessorContext, StringSerde};
//! # const BALANCES: KvStoreDef<String, i64> = KvStoreDef::new("balances", &StringSerde, &I64Serde);
//! fn deposit(ctx: &mut ProcessorContext<'_>, account: &String, cents: i64) -> Result<(), ProcessError> {
//!     let mut balances: KeyValueStore<'_, String, i64> = ctx.store(&BALANCES)?;
//!     let next = balances.get(account)?.unwrap_or(0) + cents;
//!     Ok(balances.put(account, &next)?)
//! }
//! ```
//!
//! ```compile_fail
//! # use streams::store::typed::KvStoreDef;
//! # use streams::{I64Serde, KeyValueStore, ProcessError, ProcessorContext, StringSerde};
//! # const BALANCES: KvStoreDef<String, i64> = KvStoreDef::new("balances", &StringSerde, &I64Serde);
//! fn deposit(ctx: &mut ProcessorContext<'_>, account: &String, cents: i64) -> Result<(), ProcessError> {
//!     // The handle holds i64 values: asking for strings does not compile.
//!     let mut balances: KeyValueStore<'_, String, String> = ctx.store(&BALANCES)?;
//!     Ok(())
//! }
//! ```
//!
//! Serdes are `&'static` references for serdes that can be built in a constant (every
//! zero-sized serde, `JsonSerde::new()`), or shared `Arc`s for serdes built at run time (a
//! registry-backed Avro serde): [`KvStoreDef::with_serdes`]. The handle never holds the store
//! itself; the store belongs to the task that runs the processor.

use std::borrow::Cow;
use std::sync::Arc;

use crate::context::ProcessorContext;
use crate::driver::TopologyTestDriver;
use crate::serde::{Serde, SerdeError};
use crate::store::query::{QuerySpec, QueryableKv, QueryableSession, QueryableWindow};
use crate::store::{prefix_end, KeyValueStore, StoreError};
use crate::topology::{StoreSpec, Topology, TopologyError};
use crate::window::{decode_window_entry, window_key, window_range_for, WindowStore, Windowed};

/// A serde held by a store handle: a `'static` reference (so the handle can be a `const`) or a
/// shared one built at run time.
pub enum SerdeRef<T: 'static> {
    Static(&'static dyn Serde<T>),
    Shared(Arc<dyn Serde<T>>),
}

impl<T: 'static> SerdeRef<T> {
    pub fn shared(serde: impl Serde<T>) -> Self {
        SerdeRef::Shared(Arc::new(serde))
    }
    pub fn get(&self) -> &dyn Serde<T> {
        match self {
            SerdeRef::Static(s) => *s,
            SerdeRef::Shared(s) => s.as_ref(),
        }
    }
}

impl<T: 'static> Clone for SerdeRef<T> {
    fn clone(&self) -> Self {
        match self {
            SerdeRef::Static(s) => SerdeRef::Static(*s),
            SerdeRef::Shared(s) => SerdeRef::Shared(s.clone()),
        }
    }
}

impl<T: 'static> Serde<T> for SerdeRef<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        self.get().serialize(topic, value)
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        self.get().deserialize(topic, bytes)
    }
}

/// What every typed store handle offers: its name, the `StoreSpec` a topology declares, how a
/// processor opens it, and how its committed bytes decode (for the driver's inspection).
pub trait StoreDef: Send + Sync + 'static {
    /// The typed view a processor gets from `ctx.store(&def)`.
    type View<'a>;
    /// One committed entry, decoded.
    type Entry;
    fn name(&self) -> &str;
    /// The declaration `Topology::add_state_store` takes (serdes and queryability included).
    fn spec(&self) -> StoreSpec;
    fn open<'a>(&self, ctx: &'a mut ProcessorContext<'_>) -> Result<Self::View<'a>, StoreError>;
    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<Self::Entry, StoreError>;
}

fn serde_err(store: &str, source: SerdeError) -> StoreError {
    StoreError::Serde { store: store.to_string(), source }
}

/// A key-value store: `K → V`.
pub struct KvStoreDef<K: 'static, V: 'static> {
    name: Cow<'static, str>,
    key: SerdeRef<K>,
    value: SerdeRef<V>,
    logged: bool,
    query: Option<QuerySpec<K, V>>,
}

impl<K: 'static, V: 'static> Clone for KvStoreDef<K, V> {
    fn clone(&self) -> Self {
        KvStoreDef {
            name: self.name.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            logged: self.logged,
            query: self.query,
        }
    }
}

impl<K: 'static, V: 'static> KvStoreDef<K, V> {
    /// A changelogged store, declarable as a `const`.
    pub const fn new(name: &'static str, key: &'static dyn Serde<K>, value: &'static dyn Serde<V>) -> Self {
        KvStoreDef {
            name: Cow::Borrowed(name),
            key: SerdeRef::Static(key),
            value: SerdeRef::Static(value),
            logged: true,
            query: None,
        }
    }

    /// A store whose serdes (or name) are only known at run time.
    pub fn with_serdes(name: impl Into<String>, key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Self::from_refs(name, SerdeRef::shared(key), SerdeRef::shared(value))
    }

    pub fn from_refs(name: impl Into<String>, key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        KvStoreDef { name: Cow::Owned(name.into()), key, value, logged: true, query: None }
    }

    /// Kept local only: rebuilt from nothing when the state directory is lost.
    pub const fn without_changelog(mut self) -> Self {
        self.logged = false;
        self
    }

    /// Marks the store queryable by the generic interactive-query endpoint.
    pub const fn queryable(mut self, query: QuerySpec<K, V>) -> Self {
        self.query = Some(query);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn query_spec(&self) -> Option<&QuerySpec<K, V>> {
        self.query.as_ref()
    }
    pub fn key_serde(&self) -> &SerdeRef<K> {
        &self.key
    }
    pub fn value_serde(&self) -> &SerdeRef<V> {
        &self.value
    }
    /// The store's key bytes for `key`, as processors write them (for readers of committed state).
    pub fn encode_key(&self, key: &K) -> Result<Vec<u8>, SerdeError> {
        self.key.serialize(&self.name, key)
    }
    pub fn decode_key(&self, bytes: &[u8]) -> Result<K, SerdeError> {
        self.key.deserialize(&self.name, bytes)
    }
    pub fn encode_value(&self, value: &V) -> Result<Vec<u8>, SerdeError> {
        self.value.serialize(&self.name, value)
    }
    pub fn decode_value(&self, bytes: &[u8]) -> Result<V, SerdeError> {
        self.value.deserialize(&self.name, bytes)
    }
    /// The byte range `[from, to)` of every key whose encoding starts with `prefix`'s.
    pub fn prefix_range(&self, prefix: &K) -> Result<(Vec<u8>, Option<Vec<u8>>), SerdeError> {
        let from = self.encode_key(prefix)?;
        let to = prefix_end(&from);
        Ok((from, to))
    }
}

impl<K: Send + 'static, V: Send + 'static> StoreDef for KvStoreDef<K, V> {
    type View<'a> = KeyValueStore<'a, K, V>;
    type Entry = (K, V);

    fn name(&self) -> &str {
        &self.name
    }
    fn spec(&self) -> StoreSpec {
        let spec = StoreSpec::key_value::<K, V>(&self.name, self.key.clone(), self.value.clone());
        let spec = if self.logged { spec } else { spec.without_changelog() };
        match self.query {
            Some(q) => spec.with_query(Arc::new(QueryableKv {
                name: self.name.to_string(),
                key: self.key.clone(),
                value: self.value.clone(),
                spec: q,
            })),
            None => spec,
        }
    }
    fn open<'a>(&self, ctx: &'a mut ProcessorContext<'_>) -> Result<KeyValueStore<'a, K, V>, StoreError> {
        ctx.kv_store::<K, V>(&self.name)
    }
    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<(K, V), StoreError> {
        let k = self.decode_key(key).map_err(|e| serde_err(&self.name, e))?;
        let v = self.decode_value(value).map_err(|e| serde_err(&self.name, e))?;
        Ok((k, v))
    }
}

/// A window store: `(K, window start) → V`, in the engine's window-key layout (see
/// `window::WindowStore`).
pub struct WindowStoreDef<K: 'static, V: 'static> {
    inner: KvStoreDef<K, V>,
    retention_ms: i64,
}

impl<K: 'static, V: 'static> Clone for WindowStoreDef<K, V> {
    fn clone(&self) -> Self {
        WindowStoreDef { inner: self.inner.clone(), retention_ms: self.retention_ms }
    }
}

/// How long a closed window stays queryable unless a handle says otherwise (Kafka Streams'
/// default window retention is one day too).
pub const DEFAULT_WINDOW_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

impl<K: 'static, V: 'static> WindowStoreDef<K, V> {
    pub const fn new(name: &'static str, key: &'static dyn Serde<K>, value: &'static dyn Serde<V>) -> Self {
        WindowStoreDef { inner: KvStoreDef::new(name, key, value), retention_ms: DEFAULT_WINDOW_RETENTION_MS }
    }
    pub fn with_serdes(name: impl Into<String>, key: impl Serde<K>, value: impl Serde<V>) -> Self {
        WindowStoreDef { inner: KvStoreDef::with_serdes(name, key, value), retention_ms: DEFAULT_WINDOW_RETENTION_MS }
    }
    /// How long after it closes (end + grace) a window is kept; then the DSL deletes it.
    pub const fn retention(mut self, ms: i64) -> Self {
        self.retention_ms = ms;
        self
    }
    pub const fn queryable(mut self, query: QuerySpec<K, V>) -> Self {
        self.inner.query = Some(query);
        self
    }
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn retention_ms(&self) -> i64 {
        self.retention_ms
    }
    pub fn key_serde(&self) -> &SerdeRef<K> {
        &self.inner.key
    }
    pub fn value_serde(&self) -> &SerdeRef<V> {
        &self.inner.value
    }
    /// The committed key of one window.
    pub fn encode_key(&self, key: &K, start: i64) -> Result<Vec<u8>, SerdeError> {
        Ok(window_key(&self.inner.encode_key(key)?, start))
    }
    /// The byte range holding every window of `key`.
    pub fn key_range(&self, key: &K) -> Result<(Vec<u8>, Option<Vec<u8>>), SerdeError> {
        Ok(window_range_for(&self.inner.encode_key(key)?))
    }
}

impl<K: Send + 'static, V: Send + 'static> StoreDef for WindowStoreDef<K, V> {
    type View<'a> = WindowStore<'a, K, V>;
    /// (key, window start, value)
    type Entry = (K, i64, V);

    fn name(&self) -> &str {
        &self.inner.name
    }
    fn spec(&self) -> StoreSpec {
        let i = &self.inner;
        let spec = StoreSpec::key_value::<K, V>(&i.name, i.key.clone(), i.value.clone());
        match i.query {
            Some(q) => spec.with_query(Arc::new(QueryableWindow {
                name: i.name.to_string(),
                key: i.key.clone(),
                value: i.value.clone(),
                spec: q,
            })),
            None => spec,
        }
    }
    fn open<'a>(&self, ctx: &'a mut ProcessorContext<'_>) -> Result<WindowStore<'a, K, V>, StoreError> {
        ctx.window_store::<K, V>(&self.inner.name)
    }
    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<(K, i64, V), StoreError> {
        let i = &self.inner;
        decode_window_entry(i.key.get(), i.value.get(), &i.name, key, value).ok_or_else(|| {
            serde_err(&i.name, SerdeError::new("invalid_window_entry", "undecodable window store entry"))
        })
    }
}

/// A session store: `Windowed<K>` (key, first and last record time) → V. Keys are the window
/// layout of the start followed by the end, so one key's sessions are a range in start order.
pub struct SessionStoreDef<K: 'static, V: 'static> {
    inner: KvStoreDef<K, V>,
    retention_ms: i64,
}

impl<K: 'static, V: 'static> Clone for SessionStoreDef<K, V> {
    fn clone(&self) -> Self {
        SessionStoreDef { inner: self.inner.clone(), retention_ms: self.retention_ms }
    }
}

impl<K: 'static, V: 'static> SessionStoreDef<K, V> {
    pub const fn new(name: &'static str, key: &'static dyn Serde<K>, value: &'static dyn Serde<V>) -> Self {
        SessionStoreDef { inner: KvStoreDef::new(name, key, value), retention_ms: DEFAULT_WINDOW_RETENTION_MS }
    }
    pub fn with_serdes(name: impl Into<String>, key: impl Serde<K>, value: impl Serde<V>) -> Self {
        SessionStoreDef { inner: KvStoreDef::with_serdes(name, key, value), retention_ms: DEFAULT_WINDOW_RETENTION_MS }
    }
    /// How long after it closes a session is kept.
    pub const fn retention(mut self, ms: i64) -> Self {
        self.retention_ms = ms;
        self
    }
    pub const fn queryable(mut self, query: QuerySpec<K, V>) -> Self {
        self.inner.query = Some(query);
        self
    }
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn retention_ms(&self) -> i64 {
        self.retention_ms
    }
    pub fn key_serde(&self) -> &SerdeRef<K> {
        &self.inner.key
    }
    pub fn value_serde(&self) -> &SerdeRef<V> {
        &self.inner.value
    }
    fn session_serde(&self) -> SessionKeySerde<K> {
        SessionKeySerde(self.inner.key.clone())
    }
}

impl<K: Send + 'static, V: Send + 'static> StoreDef for SessionStoreDef<K, V> {
    type View<'a> = SessionStore<'a, K, V>;
    type Entry = (Windowed<K>, V);

    fn name(&self) -> &str {
        &self.inner.name
    }
    fn spec(&self) -> StoreSpec {
        let i = &self.inner;
        let spec = StoreSpec::key_value::<Windowed<K>, V>(&i.name, self.session_serde(), i.value.clone());
        match i.query {
            Some(q) => spec.with_query(Arc::new(QueryableSession {
                name: i.name.to_string(),
                key: i.key.clone(),
                value: i.value.clone(),
                spec: q,
            })),
            None => spec,
        }
    }
    fn open<'a>(&self, ctx: &'a mut ProcessorContext<'_>) -> Result<SessionStore<'a, K, V>, StoreError> {
        let key = self.inner.key.clone();
        let store = ctx.kv_store::<Windowed<K>, V>(&self.inner.name)?;
        Ok(SessionStore { store, key })
    }
    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<(Windowed<K>, V), StoreError> {
        let i = &self.inner;
        let k = self.session_serde().deserialize(&i.name, key).map_err(|e| serde_err(&i.name, e))?;
        let v = i.decode_value(value).map_err(|e| serde_err(&i.name, e))?;
        Ok((k, v))
    }
}

/// `window_key(key, start)` followed by the end (sign-flipped big-endian, like the start).
pub struct SessionKeySerde<K: 'static>(pub SerdeRef<K>);

impl<K: 'static> Serde<Windowed<K>> for SessionKeySerde<K> {
    fn serialize(&self, topic: &str, w: &Windowed<K>) -> Result<Vec<u8>, SerdeError> {
        let mut k = window_key(&self.0.serialize(topic, &w.key)?, w.start);
        k.extend_from_slice(&((w.end as u64) ^ (1 << 63)).to_be_bytes());
        Ok(k)
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Windowed<K>, SerdeError> {
        let bad = || SerdeError::new("invalid_session_key", "session key too short");
        let split = bytes.len().checked_sub(8).ok_or_else(bad)?;
        let (head, end) = bytes.split_at(split);
        let (key, start) = crate::window::split_window_key(head).ok_or_else(bad)?;
        let end = (u64::from_be_bytes(end.try_into().map_err(|_| bad())?) ^ (1 << 63)) as i64;
        Ok(Windowed { key: self.0.deserialize(topic, key)?, start, end })
    }
}

/// Typed access to a session store, from `ctx.store(&SESSIONS)`.
pub struct SessionStore<'a, K: 'static, V> {
    store: KeyValueStore<'a, Windowed<K>, V>,
    key: SerdeRef<K>,
}

impl<K: 'static, V: 'static> SessionStore<'_, K, V> {
    /// Sessions of `key` that start at or before `latest_start`, in start order.
    pub fn sessions(&mut self, key: &K, latest_start: i64) -> Result<Vec<(Windowed<K>, V)>, StoreError> {
        let kb = self.key.serialize("session", key).map_err(|e| serde_err("session", e))?;
        let (from, _) = window_range_for(&kb);
        let to = window_key(&kb, latest_start.saturating_add(1));
        self.store.range_bytes(Some(&from), Some(&to))
    }
    pub fn get(&mut self, session: &Windowed<K>) -> Result<Option<V>, StoreError> {
        self.store.get(session)
    }
    pub fn put(&mut self, session: &Windowed<K>, value: &V) -> Result<(), StoreError> {
        self.store.put(session, value)
    }
    pub fn remove(&mut self, session: &Windowed<K>) -> Result<(), StoreError> {
        self.store.delete(session)
    }
}

impl ProcessorContext<'_> {
    /// The typed view of a store declared with a handle: `ctx.store(&BALANCES)?.get(&id)?`.
    /// The handle's types decide the view's, so asking for the wrong types does not compile;
    /// the store must be connected to this processor (`NotConnected` otherwise).
    pub fn store<D: StoreDef>(&mut self, def: &D) -> Result<D::View<'_>, StoreError> {
        def.open(self)
    }

    /// Typed reads of a global store declared with a handle.
    pub fn global<'c, K: 'static, V: 'static>(&'c self, def: &'c KvStoreDef<K, V>) -> GlobalKv<'c, K, V> {
        GlobalKv { ctx: self, def }
    }
}

/// Typed reads of a global store, from `ctx.global(&RATES)`.
pub struct GlobalKv<'c, K: 'static, V: 'static> {
    ctx: &'c ProcessorContext<'c>,
    def: &'c KvStoreDef<K, V>,
}

impl<K: 'static, V: 'static> GlobalKv<'_, K, V> {
    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        self.ctx.global_get::<K, V>(&self.def.name, key)
    }
}

impl Topology {
    /// Declares the store of a typed handle and the processors that may use it.
    pub fn add_store<D: StoreDef>(&mut self, def: &D, processors: &[&str]) -> Result<&mut Self, TopologyError> {
        self.add_state_store(def.spec(), processors)
    }

    /// Declares a global store from a typed handle, kept equal to `topic` on every instance.
    pub fn add_global_table<K: Send + 'static, V: Send + 'static>(
        &mut self,
        def: &KvStoreDef<K, V>,
        topic: &str,
    ) -> Result<&mut Self, TopologyError> {
        self.add_global_store(def.spec(), topic)
    }
}

impl TopologyTestDriver {
    /// Committed contents of a store across all tasks, decoded with its handle, in key-byte
    /// order. Panics on undecodable entries (a test tool).
    pub fn store<D: StoreDef>(&self, def: &D) -> Vec<D::Entry> {
        self.store_raw(def.name())
            .into_iter()
            .map(|(k, v)| def.decode_entry(&k, &v).unwrap_or_else(|e| panic!("store {}: {e}", def.name())))
            .collect()
    }

    /// The committed value of one key (whichever task holds it).
    pub fn store_get<K: Send + 'static, V: Send + 'static>(&self, def: &KvStoreDef<K, V>, key: &K) -> Option<V> {
        let k = def.encode_key(key).expect("test key encodes");
        self.store_raw(def.name())
            .into_iter()
            .find(|(raw, _)| *raw == k)
            .map(|(_, v)| def.decode_value(&v).expect("store value decodes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::{I64Serde, JsonSerde, StringSerde};

    const COUNTS: KvStoreDef<String, i64> = KvStoreDef::new("counts", &StringSerde, &I64Serde);
    const SPEND: WindowStoreDef<String, Vec<i64>> =
        WindowStoreDef::new("spend", &StringSerde, &JsonSerde::new()).retention(1000);

    #[test]
    fn handles_are_constants_and_encode_like_the_stores() {
        assert_eq!(COUNTS.name(), "counts");
        assert_eq!(COUNTS.encode_key(&"a".to_string()).unwrap(), b"a");
        assert_eq!(COUNTS.decode_value(&7i64.to_be_bytes()).unwrap(), 7);
        assert_eq!(SPEND.retention_ms(), 1000);
        let k = SPEND.encode_key(&"ab".to_string(), 5).unwrap();
        assert_eq!(k, window_key(b"ab", 5));
        let (from, to) = SPEND.key_range(&"ab".to_string()).unwrap();
        assert!(k >= from && k < to.unwrap());
        assert!(COUNTS.spec().logged);
        assert!(!COUNTS.without_changelog().spec().logged);
    }

    #[test]
    fn session_keys_round_trip_and_sort_by_key_then_start() {
        let s = SessionKeySerde(SerdeRef::Static(&StringSerde));
        let w = |k: &str, start, end| Windowed { key: k.to_string(), start, end };
        for win in [w("a", -5, 3), w("ab", 0, 0), w("", 7, 9)] {
            assert_eq!(s.deserialize("t", &s.serialize("t", &win).unwrap()).unwrap(), win);
        }
        assert!(s.serialize("t", &w("a", 1, 100)).unwrap() < s.serialize("t", &w("a", 2, 3)).unwrap());
        assert!(s.serialize("t", &w("a", 9, 9)).unwrap() < s.serialize("t", &w("ab", -9, -9)).unwrap());
    }
}

//! What makes a store answerable by a generic interactive-query endpoint, with no handler code
//! per store: a [`QuerySpec`] on the store's typed handle says how a key is written in a URL,
//! how keys and values render as JSON, which record key routes a request to the partition that
//! holds it, and which part of the key or value names the entry's owner (a user id). A store
//! without an owner rule is for administrators only.
//!
//! The HTTP side (routing between instances, JWT, OpenAPI) lives in the query service; this
//! module gives it the store-independent pieces: [`QueryableStore`] (the erased spec a
//! `BuiltTopology` lists for every queryable store) and [`run_query`], which answers a point
//! lookup or a prefix / range scan with a limit from committed bytes, enforcing the owner rule.
//! A store whose handle has no `QuerySpec` still answers administrators, through [`RawStore`]:
//! keys are read as UTF-8 text and values shown as JSON when they are JSON, else as text or hex.

use std::sync::Arc;

use serde_json::Value;

use crate::serde::Serde;
use crate::store::typed::{SerdeRef, SessionKeySerde};
use crate::store::{prefix_end, KvIter, StoreError};
use crate::window::{split_window_key, window_range_for, Windowed};

/// Who may read an entry of a queryable store.
pub enum Owner<K, V> {
    /// Administrators only.
    AdminOnly,
    /// The user id is (part of) the key, e.g. the account owner before the first `|`.
    Key(for<'a> fn(&'a K) -> Option<&'a str>),
    /// The user id is a field of the value, e.g. `BalanceState::user_id`.
    Value(for<'a> fn(&'a V) -> Option<&'a str>),
}

impl<K, V> Clone for Owner<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Owner<K, V> {}

/// Which partition holds a key: the one of the record key the store's sub-topology is
/// partitioned by (murmur2 of its bytes, as every Kafka client computes it).
#[derive(Clone, Copy)]
pub enum Routing {
    /// The store key is that record key, encoded by the store's key serde.
    StoreKey,
    /// The record key's bytes follow from the key (or prefix) as written in the request, e.g.
    /// the user id of `user|category`; `None` when the text does not determine it.
    Derived(fn(&str) -> Option<Vec<u8>>),
    /// Every instance holds all of the store (global stores).
    Everywhere,
}

/// How a store is queried; attached to a handle with `.queryable(..)`.
pub struct QuerySpec<K, V> {
    /// A key (or key prefix, for scans) as written in a URL → the typed key.
    pub parse_key: fn(&str) -> Result<K, String>,
    pub key_json: fn(&K) -> Value,
    pub value_json: fn(&V) -> Value,
    pub owner: Owner<K, V>,
    pub routing: Routing,
}

impl<K, V> Clone for QuerySpec<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for QuerySpec<K, V> {}

fn parse_string(s: &str) -> Result<String, String> {
    Ok(s.to_string())
}
#[allow(clippy::ptr_arg)] // its type is fixed: `QuerySpec<String, _>::key_json`
fn string_json(s: &String) -> Value {
    Value::String(s.clone())
}
fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| Value::String(format!("<unrenderable: {e}>")))
}

impl<V: serde::Serialize> QuerySpec<String, V> {
    /// String keys routed by themselves, values rendered through `serde`, admin only until an
    /// owner rule is added.
    pub const fn string_keys() -> Self {
        QuerySpec {
            parse_key: parse_string,
            key_json: string_json,
            value_json: to_json::<V>,
            owner: Owner::AdminOnly,
            routing: Routing::StoreKey,
        }
    }
}

impl<K, V> QuerySpec<K, V> {
    pub const fn owned_by(mut self, owner: Owner<K, V>) -> Self {
        self.owner = owner;
        self
    }
    pub const fn routed_by(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }
}

/// The owner rule of a store, without its types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    AdminOnly,
    PerOwner,
}

/// How a store lays out its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    KeyValue,
    /// Values per (key, window start).
    Window,
    /// Values per (key, session start, session end).
    Session,
}

/// One entry, rendered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryEntry {
    pub key: Value,
    /// Window or session start (epoch millis), for windowed layouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Session end (epoch millis), for sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    pub value: Value,
    /// The user who may read it (`None`: administrators only).
    #[serde(skip)]
    pub owner: Option<String>,
}

/// Why a query cannot be answered; the endpoint maps these to 400 / 403 / 404 / 500.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("bad key: {0}")]
    BadKey(String),
    #[error("store {0} is readable by administrators only")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("a scan of {0} by a user must name a key or prefix that routes to one partition")]
    Unroutable(String),
    #[error("limit must be between 1 and {max}")]
    BadLimit { max: usize },
    /// A selector the store's layout cannot answer, e.g. a prefix scan of a window store.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which entries a request asks for. Texts are keys as [`QuerySpec::parse_key`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector<'a> {
    /// One key (for windowed layouts: all windows of that key).
    Key(&'a str),
    /// Every key whose encoding starts with this key's encoding (composite string keys).
    Prefix(&'a str),
    /// Keys in `[from, to)`, for key serdes that preserve order; `None` is unbounded.
    Range { from: Option<&'a str>, to: Option<&'a str> },
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    Admin,
    User(&'a str),
}

/// A queryable store, types erased: what `BuiltTopology::queryable_stores` lists.
pub trait QueryableStore: Send + Sync {
    fn name(&self) -> &str;
    fn layout(&self) -> Layout;
    fn access(&self) -> Access;
    /// The record key bytes whose partition holds the selected entries; `None` when the
    /// selector does not determine one partition (an administrator's scan then asks each).
    fn routing_key(&self, selector: Selector<'_>) -> Result<Option<Vec<u8>>, QueryError>;
    /// Whether every instance holds the whole store.
    fn everywhere(&self) -> bool;
    /// The committed-byte range `[from, to)` holding the selected entries.
    fn byte_range(&self, selector: Selector<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>), QueryError>;
    fn render(&self, key: &[u8], value: &[u8]) -> Result<QueryEntry, QueryError>;
}

/// Committed bytes of one store partition, as the query service reads them.
pub trait CommittedBytes {
    fn scan<'a>(&'a self, from: &[u8], to: Option<&[u8]>) -> Result<KvIter<'a>, StoreError>;
}

impl<B: crate::store::KvBackend + ?Sized> CommittedBytes for B {
    fn scan<'a>(&'a self, from: &[u8], to: Option<&[u8]>) -> Result<KvIter<'a>, StoreError> {
        self.range(Some(from), to)
    }
}

/// Largest page a query may ask for.
pub const MAX_QUERY_LIMIT: usize = 1000;

/// Answers `selector` from one partition's committed bytes: at most `limit` entries the caller
/// may read, in key order. A user's point lookup of an entry someone else owns is `NotFound`,
/// like an absent one, so ids of other users cannot be probed; a user's scan skips entries it
/// does not own and must route to one partition.
pub fn run_query(
    store: &dyn QueryableStore,
    bytes: &dyn CommittedBytes,
    caller: Caller<'_>,
    selector: Selector<'_>,
    limit: usize,
) -> Result<Vec<QueryEntry>, QueryError> {
    let out: Vec<QueryEntry> =
        query_page(store, bytes, caller, selector, None, limit)?.into_iter().map(|(_, e)| e).collect();
    if out.is_empty() && is_point_lookup(store, selector) {
        return Err(QueryError::NotFound);
    }
    Ok(out)
}

/// Whether `selector` names one entry (a key of a key-value layout), whose absence is a 404
/// rather than an empty page.
pub fn is_point_lookup(store: &dyn QueryableStore, selector: Selector<'_>) -> bool {
    matches!(selector, Selector::Key(_)) && store.layout() == Layout::KeyValue
}

/// [`run_query`] as one page of a longer answer: entries strictly after the stored key `after`
/// (the last one of the previous page), each with its stored key, so a caller can resume the
/// scan and merge pages of several partitions in key order. An empty page is not an error
/// (the caller decides whether absence is a 404, once every partition answered).
pub fn query_page(
    store: &dyn QueryableStore,
    bytes: &dyn CommittedBytes,
    caller: Caller<'_>,
    selector: Selector<'_>,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, QueryEntry)>, QueryError> {
    if limit == 0 || limit > MAX_QUERY_LIMIT {
        return Err(QueryError::BadLimit { max: MAX_QUERY_LIMIT });
    }
    let user = match caller {
        Caller::Admin => None,
        Caller::User(_) if store.access() == Access::AdminOnly => {
            return Err(QueryError::Forbidden(store.name().to_string()))
        }
        Caller::User(u) => Some(u),
    };
    if user.is_some() && !store.everywhere() && store.routing_key(selector)?.is_none() {
        return Err(QueryError::Unroutable(store.name().to_string()));
    }
    let (mut from, to) = store.byte_range(selector)?;
    if let Some(after) = after {
        // The smallest key greater than `after`; the upper bound stays the selector's, so a
        // cursor cannot widen what the selector reads.
        let next = [after, &[0]].concat();
        if next > from {
            from = next;
        }
    }
    let mut out = Vec::new();
    if to.as_deref().is_some_and(|t| t <= from.as_slice()) {
        return Ok(out);
    }
    for item in bytes.scan(&from, to.as_deref())? {
        let (k, v) = item?;
        let entry = store.render(&k, &v)?;
        if user.is_some_and(|u| entry.owner.as_deref() != Some(u)) {
            continue;
        }
        out.push((k, entry));
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}

fn bad_key(e: impl std::fmt::Display) -> QueryError {
    QueryError::BadKey(e.to_string())
}

/// The typed parts every erased layout shares.
struct Typed<'a, K: 'static, V: 'static> {
    name: &'a str,
    key: &'a SerdeRef<K>,
    value: &'a SerdeRef<V>,
    spec: &'a QuerySpec<K, V>,
}

impl<K: 'static, V: 'static> Typed<'_, K, V> {
    fn key_bytes(&self, text: &str) -> Result<Vec<u8>, QueryError> {
        let k = (self.spec.parse_key)(text).map_err(QueryError::BadKey)?;
        self.key.serialize(self.name, &k).map_err(bad_key)
    }
    fn routing(&self, selector: Selector<'_>) -> Result<Option<Vec<u8>>, QueryError> {
        let text = match selector {
            Selector::Key(t) | Selector::Prefix(t) => t,
            Selector::Range { .. } => return Ok(None),
        };
        match self.spec.routing {
            Routing::StoreKey if matches!(selector, Selector::Key(_)) => self.key_bytes(text).map(Some),
            Routing::StoreKey => Ok(None),
            Routing::Derived(f) => Ok(f(text)),
            Routing::Everywhere => Ok(None),
        }
    }
    fn access(&self) -> Access {
        match self.spec.owner {
            Owner::AdminOnly => Access::AdminOnly,
            _ => Access::PerOwner,
        }
    }
    fn entry(&self, key: K, value: V, start: Option<i64>, end: Option<i64>) -> QueryEntry {
        let owner = match self.spec.owner {
            Owner::AdminOnly => None,
            Owner::Key(f) => f(&key).map(str::to_string),
            Owner::Value(f) => f(&value).map(str::to_string),
        };
        QueryEntry { key: (self.spec.key_json)(&key), start, end, value: (self.spec.value_json)(&value), owner }
    }
    fn decode(&self, key: &[u8], value: &[u8]) -> Result<(K, V), QueryError> {
        let k = self.key.deserialize(self.name, key).map_err(|e| store_err(self.name, e))?;
        let v = self.value.deserialize(self.name, value).map_err(|e| store_err(self.name, e))?;
        Ok((k, v))
    }
}

fn store_err(name: &str, source: crate::serde::SerdeError) -> QueryError {
    QueryError::Store(StoreError::Serde { store: name.to_string(), source })
}

macro_rules! typed {
    ($s:expr) => {
        Typed { name: &$s.name, key: &$s.key, value: &$s.value, spec: &$s.spec }
    };
}

/// A queryable key-value store.
pub(crate) struct QueryableKv<K: 'static, V: 'static> {
    pub name: String,
    pub key: SerdeRef<K>,
    pub value: SerdeRef<V>,
    pub spec: QuerySpec<K, V>,
}

impl<K: 'static, V: 'static> QueryableStore for QueryableKv<K, V> {
    fn name(&self) -> &str {
        &self.name
    }
    fn layout(&self) -> Layout {
        Layout::KeyValue
    }
    fn access(&self) -> Access {
        typed!(self).access()
    }
    fn everywhere(&self) -> bool {
        matches!(self.spec.routing, Routing::Everywhere)
    }
    fn routing_key(&self, selector: Selector<'_>) -> Result<Option<Vec<u8>>, QueryError> {
        typed!(self).routing(selector)
    }
    fn byte_range(&self, selector: Selector<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>), QueryError> {
        let t = typed!(self);
        match selector {
            Selector::Key(k) => {
                let from = t.key_bytes(k)?;
                let mut to = from.clone();
                to.push(0);
                Ok((from, Some(to)))
            }
            Selector::Prefix(p) => {
                let from = t.key_bytes(p)?;
                let to = prefix_end(&from);
                Ok((from, to))
            }
            Selector::Range { from, to } => {
                let from = from.map(|f| t.key_bytes(f)).transpose()?.unwrap_or_default();
                Ok((from, to.map(|x| t.key_bytes(x)).transpose()?))
            }
        }
    }
    fn render(&self, key: &[u8], value: &[u8]) -> Result<QueryEntry, QueryError> {
        let t = typed!(self);
        let (k, v) = t.decode(key, value)?;
        Ok(t.entry(k, v, None, None))
    }
}

/// The byte range of the selected keys' windows in a window or session layout.
fn windowed_range<K: 'static, V: 'static>(
    t: &Typed<'_, K, V>,
    selector: Selector<'_>,
) -> Result<(Vec<u8>, Option<Vec<u8>>), QueryError> {
    match selector {
        Selector::Key(k) => Ok(window_range_for(&t.key_bytes(k)?)),
        Selector::Range { from: None, to: None } => Ok((Vec::new(), None)),
        // Window keys are length-prefixed, so a prefix or a bound of the key is not one of the
        // bytes: answering would mean reading everything and presenting it as the selection.
        _ => Err(QueryError::Unsupported(format!(
            "{} is a windowed store: it answers key lookups (every window of the key) and full scans, \
             not prefix or range scans",
            t.name
        ))),
    }
}

/// A queryable window store.
pub(crate) struct QueryableWindow<K: 'static, V: 'static> {
    pub name: String,
    pub key: SerdeRef<K>,
    pub value: SerdeRef<V>,
    pub spec: QuerySpec<K, V>,
}

impl<K: 'static, V: 'static> QueryableStore for QueryableWindow<K, V> {
    fn name(&self) -> &str {
        &self.name
    }
    fn layout(&self) -> Layout {
        Layout::Window
    }
    fn access(&self) -> Access {
        typed!(self).access()
    }
    fn everywhere(&self) -> bool {
        false
    }
    fn routing_key(&self, selector: Selector<'_>) -> Result<Option<Vec<u8>>, QueryError> {
        typed!(self).routing(selector)
    }
    fn byte_range(&self, selector: Selector<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>), QueryError> {
        windowed_range(&typed!(self), selector)
    }
    fn render(&self, key: &[u8], value: &[u8]) -> Result<QueryEntry, QueryError> {
        let t = typed!(self);
        let (k, start) = split_window_key(key).ok_or_else(|| QueryError::BadKey("not a window key".into()))?;
        let (k, v) = t.decode(k, value)?;
        Ok(t.entry(k, v, Some(start), None))
    }
}

/// A queryable session store.
pub(crate) struct QueryableSession<K: 'static, V: 'static> {
    pub name: String,
    pub key: SerdeRef<K>,
    pub value: SerdeRef<V>,
    pub spec: QuerySpec<K, V>,
}

impl<K: 'static, V: 'static> QueryableStore for QueryableSession<K, V> {
    fn name(&self) -> &str {
        &self.name
    }
    fn layout(&self) -> Layout {
        Layout::Session
    }
    fn access(&self) -> Access {
        typed!(self).access()
    }
    fn everywhere(&self) -> bool {
        false
    }
    fn routing_key(&self, selector: Selector<'_>) -> Result<Option<Vec<u8>>, QueryError> {
        typed!(self).routing(selector)
    }
    fn byte_range(&self, selector: Selector<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>), QueryError> {
        windowed_range(&typed!(self), selector)
    }
    fn render(&self, key: &[u8], value: &[u8]) -> Result<QueryEntry, QueryError> {
        let t = typed!(self);
        let w: Windowed<K> = SessionKeySerde(self.key.clone()).deserialize(&self.name, key).map_err(bad_key)?;
        let v = self.value.deserialize(&self.name, value).map_err(|e| store_err(&self.name, e))?;
        Ok(t.entry(w.key, v, Some(w.start), Some(w.end)))
    }
}

/// Any store, for administrators: what `BuiltTopology::queryable_stores` lists for stores
/// declared without a `QuerySpec`. Key texts are the keys' UTF-8 bytes (every finstream key is a
/// string); values render as the JSON they hold, else as text, else as hex.
pub(crate) struct RawStore {
    pub name: String,
}

fn raw_json(bytes: &[u8]) -> Value {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return v;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => Value::String(s.to_string()),
        _ => Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

impl QueryableStore for RawStore {
    fn name(&self) -> &str {
        &self.name
    }
    fn layout(&self) -> Layout {
        Layout::KeyValue
    }
    fn access(&self) -> Access {
        Access::AdminOnly
    }
    fn everywhere(&self) -> bool {
        false
    }
    /// Never known: without a spec nothing says the store key is the record key its
    /// sub-topology is partitioned by (`cash-flow` is keyed `user|month` but partitioned by
    /// user), so an administrator's lookup asks every partition rather than guess one.
    fn routing_key(&self, _selector: Selector<'_>) -> Result<Option<Vec<u8>>, QueryError> {
        Ok(None)
    }
    fn byte_range(&self, selector: Selector<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>), QueryError> {
        Ok(match selector {
            Selector::Key(k) => (k.as_bytes().to_vec(), Some([k.as_bytes(), &[0]].concat())),
            Selector::Prefix(p) => (p.as_bytes().to_vec(), prefix_end(p.as_bytes())),
            Selector::Range { from, to } => {
                (from.unwrap_or_default().as_bytes().to_vec(), to.map(|t| t.as_bytes().to_vec()))
            }
        })
    }
    fn render(&self, key: &[u8], value: &[u8]) -> Result<QueryEntry, QueryError> {
        let key = match std::str::from_utf8(key) {
            Ok(k) => Value::String(k.to_string()),
            Err(_) => raw_json(key),
        };
        Ok(QueryEntry { key, start: None, end: None, value: raw_json(value), owner: None })
    }
}

/// A global store as the query endpoint sees it: every instance holds all of it, so requests
/// are answered where they arrive, whatever the inner spec's routing says.
pub(crate) struct GlobalStore(pub Arc<dyn QueryableStore>);

impl QueryableStore for GlobalStore {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn layout(&self) -> Layout {
        self.0.layout()
    }
    fn access(&self) -> Access {
        self.0.access()
    }
    fn everywhere(&self) -> bool {
        true
    }
    fn routing_key(&self, _selector: Selector<'_>) -> Result<Option<Vec<u8>>, QueryError> {
        Ok(None)
    }
    fn byte_range(&self, selector: Selector<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>), QueryError> {
        self.0.byte_range(selector)
    }
    fn render(&self, key: &[u8], value: &[u8]) -> Result<QueryEntry, QueryError> {
        self.0.render(key, value)
    }
}

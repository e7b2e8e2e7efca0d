//! `/v1/stores`: every store of the topology, queryable over HTTP with no handler per store
//! (Faust's table routes; Kafka Streams leaves this RPC layer to each application). A store
//! says through its handle's `QuerySpec` how keys are written, how entries render, which record
//! key routes a request and who owns an entry; `streams::store::query` answers from committed
//! bytes under that rule, and this module adds what every other endpoint does: the owner of the
//! partition answers (forwarded there otherwise, 503 + Retry-After while it moves), under the
//! same bearer tokens.
//!
//! A request whose key (or prefix) determines a partition goes to that partition's owner. One
//! that does not (a range, a raw store's key) is an administrator's: every partition is asked
//! (each instance once, for all the partitions it holds, with `partitions=`) and the pages are
//! merged in key order up to the limit. Global stores answer where asked.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use streams::store::query::{
    is_point_lookup, query_page, Access, Caller, CommittedBytes, Layout, QueryEntry, QueryError, QueryableStore,
    Selector, MAX_QUERY_LIMIT,
};
use streams::store::{KvBackend, KvIter, StoreError};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::model::{StoreEntries, StoreEntry, StoreInfo, StoreList};
use crate::params;
use crate::reader::Owner;
use crate::routing::{locate_key, Located, FORWARDED_HEADER};
use crate::AppState;

/// Entries per page when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 100;
/// Longest key, prefix or bound accepted, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

fn info(s: &dyn QueryableStore) -> StoreInfo {
    StoreInfo {
        name: s.name().to_string(),
        layout: match s.layout() {
            Layout::KeyValue => "key_value",
            Layout::Window => "window",
            Layout::Session => "session",
        }
        .into(),
        access: match s.access() {
            Access::AdminOnly => "admin_only",
            Access::PerOwner => "per_owner",
        }
        .into(),
        everywhere: s.everywhere(),
    }
}

/// The stores the caller may query: all of them for administrators, the per-owner ones for
/// users.
#[utoipa::path(get, path = "/v1/stores", tag = "stores",
    responses((status = 200, body = StoreList), (status = 401, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Json<StoreList>, ApiError> {
    let who = st.auth.principal(&headers)?;
    let stores = st
        .stores
        .iter()
        .filter(|s| who == Principal::Admin || s.access() == Access::PerOwner)
        .map(|s| info(s.as_ref()))
        .collect();
    Ok(Json(StoreList { stores }))
}

/// Point lookup: the entry of `key` (for window and session stores, every window of it).
#[utoipa::path(get, path = "/v1/stores/{store}/keys/{key}", tag = "stores",
    params(
        ("store" = String, Path, description = "Store name (see GET /v1/stores)"),
        ("key" = String, Path, description = "Key as the store's spec writes it, percent-encoded (`|` is `%7C`)"),
        ("limit" = Option<usize>, Query, description = "Windows per page for windowed stores (1-1000; default 100)"),
        ("after" = Option<String>, Query, description = "Continue after this cursor (a previous page's `next`)"),
        ("partitions" = Option<String>, Query, description = "Administrators: only these partitions, e.g. `0,2` (what instances send each other; an absent key is then an empty page, not a 404)"),
    ),
    responses(
        (status = 200, body = StoreEntries),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Administrators-only store, user token"),
        (status = 404, body = ErrorBody, description = "Unknown store, absent key, or an entry the user does not own"),
        (status = 503, body = ErrorBody, description = "Partition moving or restoring; see Retry-After"),
    ))]
pub async fn lookup(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (store, key) = params::path(path)?;
    let q = params::query(query)?;
    params::only(&q, &["limit", "after", "partitions"])?;
    let selector = Selector::Key(text("key", &key)?);
    answer(&st, &uri, &headers, &store, selector, &q).await
}

/// Scan: keys starting with `prefix`, or in `[from, to)` (either bound optional; neither: the
/// whole store), in key order, at most `limit`. A user's scan must name a prefix that routes to
/// one partition and lists only the entries they own.
#[utoipa::path(get, path = "/v1/stores/{store}", tag = "stores",
    params(
        ("store" = String, Path, description = "Store name (see GET /v1/stores)"),
        ("prefix" = Option<String>, Query, description = "Keys starting with this key text (key-value stores)"),
        ("from" = Option<String>, Query, description = "Keys from this one, inclusive (not with prefix)"),
        ("to" = Option<String>, Query, description = "Keys before this one (not with prefix)"),
        ("limit" = Option<usize>, Query, description = "Entries per page (1-1000; default 100)"),
        ("after" = Option<String>, Query, description = "Continue after this cursor (a previous page's `next`)"),
        ("partitions" = Option<String>, Query, description = "Administrators: only these partitions, e.g. `0,2`"),
    ),
    responses(
        (status = 200, body = StoreEntries),
        (status = 400, body = ErrorBody, description = "Bad parameter, or a user's scan that does not route to one partition"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Administrators-only store, user token"),
        (status = 404, body = ErrorBody, description = "Unknown store"),
        (status = 503, body = ErrorBody, description = "A partition is moving or restoring; see Retry-After"),
    ))]
pub async fn scan(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store = params::path(path)?;
    let q = params::query(query)?;
    params::only(&q, &["prefix", "from", "to", "limit", "after", "partitions"])?;
    let bound = |name: &str| q.get(name).map(|v| text(name, v)).transpose();
    let selector = match q.get("prefix") {
        Some(_) if q.contains_key("from") || q.contains_key("to") => {
            return Err(ApiError::BadRequest("prefix cannot be combined with from or to".into()))
        }
        Some(p) => Selector::Prefix(text("prefix", p)?),
        None => Selector::Range { from: bound("from")?, to: bound("to")? },
    };
    answer(&st, &uri, &headers, &store, selector, &q).await
}

fn text<'a>(what: &str, v: &'a str) -> Result<&'a str, ApiError> {
    if v.len() > MAX_KEY_LEN {
        return Err(ApiError::BadRequest(format!("{what} is longer than {MAX_KEY_LEN} bytes")));
    }
    Ok(v)
}

fn limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_QUERY_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_QUERY_LIMIT}, got {v:?}"))),
        },
    }
}

/// A cursor is the entry's stored key in lowercase hex, which sorts like the bytes.
fn cursor(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_cursor(c: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadRequest(format!("after must be a cursor from a previous page, got {c:?}"));
    if c.len() > 4 * MAX_KEY_LEN || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    c.as_bytes()
        .chunks(2)
        .map(|h| match h {
            [_, _] => std::str::from_utf8(h).ok().and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(bad),
            _ => Err(bad()),
        })
        .collect()
}

fn partition_list(v: &str, count: Option<i32>) -> Result<Vec<i32>, ApiError> {
    let count = count.ok_or_else(|| ApiError::Unavailable("the store's partitions are not known yet".into()))?;
    let mut out = Vec::new();
    for p in v.split(',') {
        match p.trim().parse::<i32>() {
            Ok(p) if (0..count).contains(&p) => out.push(p),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "partitions must list partition numbers from 0 to {}, got {v:?}",
                    count - 1
                )))
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The request's URI with `partitions=` set to `list`: what one instance asks another.
fn with_partitions(uri: &Uri, list: &[i32]) -> Result<Uri, ApiError> {
    let mut pairs: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("partitions="))
        .map(String::from)
        .collect();
    pairs.push(format!("partitions={}", list.iter().map(i32::to_string).collect::<Vec<_>>().join(",")));
    format!("{}?{}", uri.path(), pairs.join("&"))
        .parse()
        .map_err(|e| ApiError::Internal(format!("forwarded URI for {uri}: {e}")))
}

fn entries(page: Vec<(Vec<u8>, QueryEntry)>) -> Vec<StoreEntry> {
    page.into_iter()
        .map(|(k, e)| StoreEntry { key: e.key, start: e.start, end: e.end, value: e.value, cursor: cursor(&k) })
        .collect()
}

/// What one request asks, once validated.
struct Ask<'a> {
    store: &'a dyn QueryableStore,
    caller: Caller<'a>,
    selector: Selector<'a>,
    after: Option<Vec<u8>>,
    limit: usize,
}

impl Ask<'_> {
    fn page(&self, backend: &dyn KvBackend) -> Result<Vec<StoreEntry>, ApiError> {
        let bytes = Committed(backend);
        Ok(entries(query_page(self.store, &bytes, self.caller, self.selector, self.after.as_deref(), self.limit)?))
    }
}

/// A committed backend as `query_page` reads it.
struct Committed<'a>(&'a dyn KvBackend);

impl CommittedBytes for Committed<'_> {
    fn scan<'a>(&'a self, from: &[u8], to: Option<&[u8]>) -> Result<KvIter<'a>, StoreError> {
        self.0.range(Some(from), to)
    }
}

async fn answer(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    name: &str,
    selector: Selector<'_>,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let who = st.auth.principal(headers)?;
    let store: Arc<dyn QueryableStore> =
        st.stores.get(name).cloned().ok_or_else(|| ApiError::NotFound(format!("no store named {name:?}")))?;
    let caller = match &who {
        Principal::Admin => Caller::Admin,
        Principal::User(u) => Caller::User(u),
    };
    let ask = Ask {
        store: store.as_ref(),
        caller,
        selector,
        after: q.get("after").map(|c| parse_cursor(c)).transpose()?,
        limit: limit(q)?,
    };
    // Refused here rather than by the owner: no forwarding for what no instance would answer.
    if let Caller::User(_) = caller {
        if store.access() == Access::AdminOnly {
            return Err(QueryError::Forbidden(name.to_string()).into());
        }
        if q.contains_key("partitions") {
            return Err(ApiError::Forbidden("partitions is for administrators".into()));
        }
    }
    store.byte_range(selector)?; // the key parses and the layout can select it
    let mut page = if store.everywhere() {
        let bytes = st
            .reader
            .global_committed(name)
            .ok_or_else(|| ApiError::Internal(format!("global store {name} is not held here")))?;
        ask.page(bytes.as_ref())?
    } else {
        let targets = match (q.get("partitions"), store.routing_key(selector)?) {
            (Some(list), _) => partition_list(list, st.reader.partitions(name))?,
            (None, Some(routing_key)) => match locate_key(st, uri, headers, name, &routing_key).await? {
                Located::Here(p) => vec![p],
                Located::Forwarded(resp) => return Ok(resp),
            },
            (None, None) if matches!(caller, Caller::User(_)) => {
                return Err(QueryError::Unroutable(name.to_string()).into())
            }
            (None, None) => {
                let n = st.reader.partitions(name).ok_or_else(|| {
                    ApiError::Unavailable(format!("store {name} is not available yet; retry shortly"))
                })?;
                (0..n).collect()
            }
        };
        match gather(st, uri, headers, &ask, &targets).await? {
            Ok(page) => page,
            Err(remote_failure) => return Ok(remote_failure),
        }
    };
    if page.is_empty() && is_point_lookup(store.as_ref(), selector) && !q.contains_key("partitions") {
        return Err(ApiError::NotFound(format!("no entry for that key in {name}")));
    }
    page.truncate(ask.limit);
    let next = (page.len() == ask.limit).then(|| page.last().map(|e| e.cursor.clone())).flatten();
    Ok(Json(StoreEntries { store: name.to_string(), entries: page, next }).into_response())
}

/// Reads `targets` where they are held: local partitions here, the others from their owners
/// (one request per instance, concurrently), merged in key order and cut to the limit.
/// `Err(resp)`: an owner's answer that was not a page (e.g. its 503), returned as it is.
async fn gather(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    ask: &Ask<'_>,
    targets: &[i32],
) -> Result<Result<Vec<StoreEntry>, Response>, ApiError> {
    let name = ask.store.name();
    let forwarded = headers.contains_key(FORWARDED_HEADER);
    let (mut local, mut remote) = (Vec::new(), BTreeMap::<String, Vec<i32>>::new());
    for &p in targets {
        match st.reader.partition_owner(name, p) {
            Owner::Local(p) => local.push(p),
            Owner::Unavailable(why) => return Err(ApiError::Unavailable(why)),
            // Loop protection, as for keys: a forwarded request is answered here or not at all.
            Owner::Remote(_) if forwarded => {
                return Err(ApiError::Unavailable(format!("partition {p} of {name} is moving; retry shortly")))
            }
            Owner::Remote(url) => remote.entry(url).or_default().push(p),
        }
    }
    let mut asks = tokio::task::JoinSet::new();
    for (url, parts) in remote {
        let (forwarder, uri, headers) = (st.forwarder.clone(), with_partitions(uri, &parts)?, headers.clone());
        asks.spawn(async move { forwarder.forward(&url, &uri, &headers).await });
    }
    let mut page = Vec::new();
    for p in local {
        page.extend(ask.page(st.reader.committed(name, p)?.as_ref())?);
    }
    while let Some(answer) = asks.join_next().await {
        let resp = answer.map_err(|e| ApiError::Internal(format!("forwarding task: {e}")))??;
        if resp.status() != StatusCode::OK {
            return Ok(Err(resp));
        }
        let body = resp.into_body().collect().await.map_err(|e| ApiError::BadGateway(e.to_string()))?.to_bytes();
        let remote: StoreEntries = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadGateway(format!("an instance answered {name} with no page: {e}")))?;
        page.extend(remote.entries);
    }
    // Each key lives in one partition, so cursors are distinct and the order is total.
    page.sort_by(|a, b| a.cursor.cmp(&b.cursor));
    page.truncate(ask.limit);
    Ok(Ok(page))
}

//! Scale-out: a request for a key whose partition another instance owns is forwarded there
//! (plain HTTP/1.1 to its advertised URL, with the caller's Authorization) and its answer is
//! returned unchanged.
//!
//! The partition that owns a key is `P(key)`, where P is the partitioner of the store's
//! sub-topology (`streams::partitioner::PartitionPlan`): the partitioner its input topics'
//! producers use (murmur2 for Java clients, CRC32 for librdkafka-based ones such as Python's
//! confluent-kafka, ...), applied to the record key the sub-topology is partitioned by. The
//! engine places keys the same way (key-placed sources re-place records a producer put
//! elsewhere), so routing and state agree whatever client wrote the topics.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Request, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use streams::partitioner::Partitioner;

use crate::error::ApiError;
use crate::reader::Owner;
use crate::AppState;

/// Marks a forwarded request: its receiver answers from local state or 503, never forwards
/// again, so two instances with stale views of the assignment cannot bounce a request forever.
pub const FORWARDED_HEADER: &str = "x-finstream-forwarded";
/// How long the owner may take to answer a forwarded request.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP client for forwarding, with pooled keep-alive connections to the other instances.
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder { client: Client::builder(TokioExecutor::new()).build_http() }
    }
}

impl Forwarder {
    /// Sends `GET <base><path?query>` with the caller's Authorization and returns the answer.
    pub async fn forward(&self, base: &str, uri: &Uri, headers: &HeaderMap) -> Result<Response, ApiError> {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let target = format!("{}{}", base.trim_end_matches('/'), path);
        let mut req = Request::get(&target)
            .header(FORWARDED_HEADER, "1")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ApiError::BadGateway(format!("owner URL {target:?}: {e}")))?;
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            req.headers_mut().insert(header::AUTHORIZATION, auth.clone());
        }
        let resp = tokio::time::timeout(FORWARD_TIMEOUT, self.client.request(req))
            .await
            // An owner that is gone or hung loses its partitions within the group's session
            // timeout: the key is moving, and a retry helps.
            .map_err(|_| ApiError::Unavailable(format!("owner at {base} did not answer in time")))?
            .map_err(|e| ApiError::Unavailable(format!("owner at {base} unreachable: {e}")))?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(|e| ApiError::BadGateway(format!("owner at {base}: {e}")))?.to_bytes();
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() = parts.status;
        for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
            if let Some(v) = parts.headers.get(&name) {
                out.headers_mut().insert(name, v.clone());
            }
        }
        out.headers_mut()
            .insert("x-finstream-served-by", HeaderValue::from_str(base).unwrap_or(HeaderValue::from_static("remote")));
        Ok(out)
    }
}

/// The partition that owns `routing_key` under the sub-topology's partitioner, out of
/// `partitions` (its task count). With a `streams::PartitionPlan` at hand, use
/// `plan.partition_for(subtopology, key)`, which is this with the plan's partitioner and count.
pub fn partition_of(partitioner: Partitioner, routing_key: &[u8], partitions: i32) -> i32 {
    partitioner.partition(routing_key, partitions)
}

/// Where a request for `routing_key` in `store` is answered.
pub enum Located {
    /// Here, from this partition.
    Here(i32),
    /// By the owner, whose answer this is.
    Forwarded(Response),
}

/// Finds the key's owner; forwards unless it is this instance.
pub async fn locate(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    store: &str,
    routing_key: &str,
) -> Result<Located, ApiError> {
    locate_key(st, uri, headers, store, routing_key.as_bytes()).await
}

/// [`locate`] for a routing key in its serialized form (the generic store endpoint gets it from
/// the store's `QuerySpec`, not from a path id).
pub async fn locate_key(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    store: &str,
    routing_key: &[u8],
) -> Result<Located, ApiError> {
    match st.reader.owner(store, routing_key) {
        Owner::Local(p) => Ok(Located::Here(p)),
        Owner::Unavailable(why) => Err(ApiError::Unavailable(why)),
        Owner::Remote(_) if headers.contains_key(FORWARDED_HEADER) => Err(ApiError::Unavailable(format!(
            "the partition of {:?} in {store} is moving; retry shortly",
            String::from_utf8_lossy(routing_key)
        ))),
        Owner::Remote(url) => Ok(Located::Forwarded(st.forwarder.forward(&url, uri, headers).await?.into_response())),
    }
}

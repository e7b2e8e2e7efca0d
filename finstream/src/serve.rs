//! Starting the query service next to the stream threads: exposure checks, the advertised URL
//! (`application.server`) and the HTTP server on its own small tokio runtime.

use std::net::ToSocketAddrs;
use std::sync::Arc;

use anyhow::{bail, Context};
use query::{AppState, AuthMode, Authenticator, QueryConfig, StateReader};
use schemas::registry::SchemaRegistry;
use streams::StreamsMetrics;
use tokio::sync::oneshot;

use crate::config::AppConfig;
use crate::dashboard::{self, Feed};

/// Worker threads of the query server's runtime (point lookups are short; stream threads get
/// the rest of the cores).
pub const QUERY_WORKER_THREADS: usize = 2;

/// Whether every address `listen` resolves to is a loopback address.
pub fn is_loopback(listen: &str) -> bool {
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// `finstream run` refuses to expose unauthenticated state beyond loopback unless told to.
pub fn check_exposure(config: &QueryConfig, insecure: bool) -> anyhow::Result<()> {
    if config.enabled && config.auth.mode == AuthMode::None && !is_loopback(&config.listen) && !insecure {
        bail!(
            "query.auth.mode = none on non-loopback listener {}: configure [query.auth] mode = \"jwt\", \
             listen on 127.0.0.1, or pass --insecure",
            config.listen
        );
    }
    Ok(())
}

/// Copies `query.advertised_url` into the engine's `application_server`, so the instance
/// publishes it with its assignment.
pub fn apply_advertised_url(config: &mut AppConfig) {
    if config.query.enabled && !config.query.advertised_url.is_empty() {
        config.streams.application_server = Some(config.query.advertised_url.clone());
    }
}

/// The running query server; dropping it stops it.
pub struct QueryServer {
    /// Where it answers, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for QueryServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// Binds `config.listen` and serves the query API over `reader`, plus the dashboard when a
/// feed is given.
pub fn start(
    config: &QueryConfig,
    reader: Arc<dyn StateReader>,
    registry: Arc<dyn SchemaRegistry>,
    metrics: StreamsMetrics,
    feed: Option<Arc<Feed>>,
) -> anyhow::Result<QueryServer> {
    let auth = Authenticator::new(&config.auth).context("query.auth")?;
    let state = AppState::new(reader, registry, auth, metrics);
    let mut router = query::app(state.clone());
    if let Some(feed) = feed {
        router = router.merge(dashboard::router(feed, state.auth.clone()));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(QUERY_WORKER_THREADS)
        .thread_name("query-api")
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&config.listen))
        .with_context(|| format!("query API cannot listen on {}", config.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = oneshot::channel::<()>();
    rt.spawn(async move {
        if let Err(e) = query::serve(listener, router, async move { drop(rx.await) }).await {
            tracing::error!(error = %e, "query API stopped");
        }
    });
    tracing::info!(%url, auth = ?config.auth.mode, "query API listening");
    Ok(QueryServer { url, stop: Some(tx), runtime: Some(rt) })
}

/// Serves the query API and the dashboard over `app`'s state when `[query] enabled`; the
/// dashboard's activity feed reads the alert and fraud topics of `config.finance`.
pub fn start_for(
    config: &AppConfig,
    app: &runtime::KafkaStreams,
    registry: Arc<dyn SchemaRegistry>,
    metrics: StreamsMetrics,
) -> anyhow::Result<Option<QueryServer>> {
    if !config.query.enabled {
        return Ok(None);
    }
    let topics = &config.finance.topics;
    let feed = Feed::start(
        runtime::client_config(&config.streams),
        registry.clone(),
        &topics.budget_alerts,
        &topics.fraud_scores,
    )?;
    start(&config.query, Arc::new(app.state_handle()), registry, metrics, Some(Arc::new(feed))).map(Some)
}

/// Ids and dates that exist in the demo's data, for its example requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub account_id: String,
    pub user_id: String,
    /// First and last day of the example spending range (YYYY-MM-DD).
    pub from: String,
    pub to: String,
    /// YYYY-MM.
    pub month: String,
}

impl Default for Example {
    fn default() -> Self {
        Example {
            account_id: "<account_id>".into(),
            user_id: "<user_id>".into(),
            from: "2026-01-01".into(),
            to: "2026-01-31".into(),
            month: "2026-01".into(),
        }
    }
}

/// What the demo prints about the query API and the dashboard.
pub fn demo_help(url: &str, ex: &Example) -> String {
    let Example { account_id: a, user_id: u, from, to, month } = ex;
    [
        format!("query API: {url}"),
        format!("dashboard: {url}/?account={a}&user={u}&from={from}&to={to}"),
        format!("  curl -s {url}/ready"),
        format!("  curl -s {url}/v1/accounts/{a}/balance"),
        format!("  curl -s '{url}/v1/accounts/{a}/lineage?limit=5'"),
        format!("  curl -s '{url}/v1/users/{u}/budgets?at={from}'"),
        format!("  curl -s {url}/v1/users/{u}/goals"),
        format!("  curl -s '{url}/v1/users/{u}/spending?from={from}&to={to}'"),
        format!("  curl -s '{url}/v1/users/{u}/cash-flow?month={month}'"),
        format!("  curl -s {url}/openapi.json    curl -s {url}/metrics"),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_rules() {
        let mut c = QueryConfig::default();
        assert!(check_exposure(&c, false).is_ok(), "loopback with auth none is fine");
        c.listen = "0.0.0.0:8080".into();
        let e = check_exposure(&c, false).unwrap_err().to_string();
        assert!(e.contains("--insecure"), "{e}");
        assert!(check_exposure(&c, true).is_ok());
        c.auth.mode = AuthMode::Jwt;
        assert!(check_exposure(&c, false).is_ok());
        assert!(is_loopback("localhost:8080"));
        assert!(is_loopback("[::1]:8080"));
        assert!(!is_loopback("0.0.0.0:1"));
        assert!(!is_loopback("not an address"));
    }
}

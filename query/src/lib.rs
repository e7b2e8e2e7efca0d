//! finstream's query service: read-only HTTP over the committed state of the money processors
//! (balances, lineage, fraud scores, budgets, goals, spending, cash flow), and of every store of
//! the topology through one generic endpoint (`/v1/stores`, driven by each store's `QuerySpec`),
//! answered by the instance that owns the key's partition (forwarded there otherwise), behind
//! bearer-token authorization, described by a generated OpenAPI document.
//!
//! [`app`] builds the axum `Router`; tests drive it with `tower::ServiceExt::oneshot`, servers
//! with [`serve`]. State comes through the [`StateReader`] trait: a running
//! `runtime::KafkaStreams` (via its `StateHandle`) or [`LocalStores`].

pub mod auth;
pub mod catalog;
pub mod config;
pub mod error;
mod handlers;
pub mod model;
pub mod openapi;
pub mod params;
pub mod reader;
pub mod routing;
pub mod tables;

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use schemas::registry::SchemaRegistry;
use streams::StreamsMetrics;

pub use auth::{AuthConfig, AuthMode, Authenticator, Claims, Principal, Role};
pub use config::QueryConfig;
pub use error::{ApiError, ErrorBody};
pub use reader::{LocalStores, Owner, StateReader};
pub use routing::Forwarder;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub reader: Arc<dyn StateReader>,
    pub auth: Arc<Authenticator>,
    /// The process's one Prometheus registry, served at `/metrics`.
    pub metrics: StreamsMetrics,
    pub tables: Arc<tables::Tables>,
    pub forwarder: Forwarder,
    /// The stores `/v1/stores` serves: the reader's topology's.
    pub stores: Arc<catalog::Catalog>,
}

impl AppState {
    pub fn new(
        reader: Arc<dyn StateReader>,
        registry: Arc<dyn SchemaRegistry>,
        auth: Authenticator,
        metrics: StreamsMetrics,
    ) -> Self {
        let stores = Arc::new(catalog::Catalog::of(reader.topology().as_deref()));
        AppState {
            stores,
            reader,
            auth: Arc::new(auth),
            metrics,
            tables: Arc::new(tables::Tables::new(registry)),
            forwarder: Forwarder::default(),
        }
    }
}

/// The query API.
pub fn app(state: AppState) -> Router {
    use handlers::{accounts, ops, stores, users};
    Router::new()
        .route("/v1/accounts/{account_id}/balance", get(accounts::balance))
        .route("/v1/accounts/{account_id}/lineage", get(accounts::lineage))
        .route("/v1/accounts/{account_id}/fraud-scores", get(accounts::fraud_scores))
        .route("/v1/accounts/{account_id}/fraud-scores/{transaction_id}", get(accounts::fraud_score))
        .route("/v1/users/{user_id}/budgets", get(users::budgets))
        .route("/v1/users/{user_id}/goals", get(users::goals))
        .route("/v1/users/{user_id}/spending", get(users::spending))
        .route("/v1/users/{user_id}/cash-flow", get(users::cash_flow))
        .route("/v1/stores", get(stores::list))
        .route("/v1/stores/{store}", get(stores::scan))
        .route("/v1/stores/{store}/keys/{key}", get(stores::lookup))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi_json))
        .fallback(ops::not_found)
        .with_state(state)
}

/// Serves `router` ([`app`], possibly merged with more routes such as the dashboard) on
/// `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

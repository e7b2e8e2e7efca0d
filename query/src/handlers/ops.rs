//! Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document.

use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::{ApiError, ErrorBody};
use crate::model;
use crate::AppState;

/// Alive: the process answers HTTP.
#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, body = model::Health)))]
pub async fn health() -> Json<model::Health> {
    Json(model::Health { status: "ok".into() })
}

/// Ready: every task assigned to this instance is restored and running.
#[utoipa::path(get, path = "/ready", tag = "ops",
    responses((status = 200, body = model::Health), (status = 503, body = ErrorBody)))]
pub async fn ready(State(st): State<AppState>) -> Result<Json<model::Health>, ApiError> {
    if st.reader.ready() {
        Ok(Json(model::Health { status: "ok".into() }))
    } else {
        Err(ApiError::Unavailable("not ready: a rebalance or restore is in progress".into()))
    }
}

/// The engine's Prometheus registry in text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], st.metrics.render()).into_response()
}

/// This document, with the stores this instance's topology serves on `/v1/stores`.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, content_type = "application/json", description = "This OpenAPI document")))]
pub async fn openapi_json(State(st): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document(&st.stores))
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

//! The embedded registry over HTTP, speaking the Confluent Schema Registry REST API (the subset
//! clients use: register, lookup, get by id, subjects and versions, delete, compatibility, config),
//! with Confluent's JSON shapes and error codes, so off-the-shelf clients (Java, Python's
//! confluent-kafka, kcat) work against it unchanged.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{codes, CompatibilityLevel, EmbeddedRegistry, RegistryError, VersionSel};

/// The port Confluent's registry listens on, and so the embedded one by default.
pub const DEFAULT_PORT: u16 = 8081;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Registry = Arc<EmbeddedRegistry>;

/// The registry's routes. Handlers run the (blocking, store-appending) registry calls on tokio's
/// blocking pool so a slow store never stalls the runtime.
pub fn router(state: Registry) -> Router {
    Router::new()
        .route("/", get(|| async { reply(Ok(json!({}))) }))
        .route("/schemas/types", get(|| async { reply(Ok(json!(["AVRO"]))) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(compatibility))
        .route("/config", get(global_config).put(put_global_config))
        .route("/config/{subject}", get(subject_config).put(put_subject_config))
        .with_state(state)
}

/// Serves the registry on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: Registry) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

fn reply<T: Serialize>(result: Result<T, RegistryError>) -> Response {
    let (status, body) = match result {
        Ok(v) => (StatusCode::OK, serde_json::to_vec(&v).expect("serializable")),
        Err(RegistryError::Api { status, error_code, message }) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({ "error_code": error_code, "message": message }).to_string().into_bytes(),
        ),
        Err(e @ RegistryError::Transport(_)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error_code": codes::STORE_ERROR, "message": e.to_string() }).to_string().into_bytes(),
        ),
    };
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

async fn blocking<T: Send + 'static>(
    registry: Registry,
    f: impl FnOnce(&EmbeddedRegistry) -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(move || f(&registry))
        .await
        .unwrap_or_else(|e| Err(RegistryError::api(500, codes::STORE_ERROR, e.to_string())))
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

fn schema_body(body: &[u8]) -> Result<String, RegistryError> {
    let invalid = |m: String| RegistryError::api(422, codes::INVALID_SCHEMA, m);
    let b: SchemaBody = serde_json::from_slice(body).map_err(|e| invalid(format!("Invalid request body: {e}")))?;
    match b.schema_type.as_deref() {
        None | Some("AVRO") => Ok(b.schema),
        Some(other) => Err(invalid(format!("Schema type {other} is not supported (only AVRO)"))),
    }
}

async fn register(State(r): State<Registry>, Path(subject): Path<String>, body: Bytes) -> Response {
    let result = match schema_body(&body) {
        Ok(schema) => blocking(r, move |r| r.register_schema(&subject, &schema)).await.map(|s| json!({ "id": s.id })),
        Err(e) => Err(e),
    };
    reply(result)
}

async fn lookup(State(r): State<Registry>, Path(subject): Path<String>, body: Bytes) -> Response {
    let result = match schema_body(&body) {
        Ok(schema) => blocking(r, move |r| r.lookup(&subject, &schema)).await,
        Err(e) => Err(e),
    };
    reply(result)
}

async fn schema_by_id(State(r): State<Registry>, Path(id): Path<String>) -> Response {
    let result = match id.parse::<u32>() {
        Ok(id) => blocking(r, move |r| r.schema(id)).await.map(|schema| json!({ "schema": schema })),
        Err(_) => Err(RegistryError::api(404, codes::SCHEMA_NOT_FOUND, format!("Schema {id} not found"))),
    };
    reply(result)
}

async fn subjects(State(r): State<Registry>) -> Response {
    reply(blocking(r, |r| Ok(r.subjects())).await)
}

async fn versions(State(r): State<Registry>, Path(subject): Path<String>) -> Response {
    reply(blocking(r, move |r| r.versions(&subject)).await)
}

async fn version(State(r): State<Registry>, Path((subject, version)): Path<(String, String)>) -> Response {
    let result = match version.parse::<VersionSel>() {
        Ok(sel) => blocking(r, move |r| r.version(&subject, sel)).await,
        Err(e) => Err(e),
    };
    reply(result)
}

async fn delete_subject(State(r): State<Registry>, Path(subject): Path<String>) -> Response {
    reply(blocking(r, move |r| r.delete_subject(&subject)).await)
}

async fn compatibility(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let result = async {
        let sel = version.parse::<VersionSel>()?;
        let schema = schema_body(&body)?;
        blocking(r, move |r| r.is_compatible(&subject, sel, &schema)).await
    }
    .await;
    reply(result.map(|ok| json!({ "is_compatible": ok })))
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: String,
}

fn level_body(body: &[u8]) -> Result<CompatibilityLevel, RegistryError> {
    let invalid = |m: String| RegistryError::api(422, codes::INVALID_COMPATIBILITY_LEVEL, m);
    let b: ConfigBody = serde_json::from_slice(body).map_err(|e| invalid(format!("Invalid request body: {e}")))?;
    b.compatibility.parse::<CompatibilityLevel>().map_err(|e| invalid(format!("Invalid compatibility level: {e}")))
}

async fn global_config(State(r): State<Registry>) -> Response {
    reply(Ok(json!({ "compatibilityLevel": r.global_level().as_str() })))
}

async fn put_global_config(State(r): State<Registry>, body: Bytes) -> Response {
    let result = match level_body(&body) {
        Ok(level) => {
            blocking(r, move |r| r.set_level(None, level)).await.map(|_| json!({ "compatibility": level.as_str() }))
        }
        Err(e) => Err(e),
    };
    reply(result)
}

#[derive(Deserialize)]
struct ConfigQuery {
    #[serde(rename = "defaultToGlobal", default)]
    default_to_global: bool,
}

async fn subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    Query(q): Query<ConfigQuery>,
) -> Response {
    let level = match r.subject_level(&subject) {
        Some(level) => Ok(level),
        None if q.default_to_global => Ok(r.global_level()),
        None => Err(RegistryError::api(
            404,
            codes::SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )),
    };
    reply(level.map(|l| json!({ "compatibilityLevel": l.as_str() })))
}

async fn put_subject_config(State(r): State<Registry>, Path(subject): Path<String>, body: Bytes) -> Response {
    let result = match level_body(&body) {
        Ok(level) => blocking(r, move |r| r.set_level(Some(&subject), level))
            .await
            .map(|_| json!({ "compatibility": level.as_str() })),
        Err(e) => Err(e),
    };
    reply(result)
}

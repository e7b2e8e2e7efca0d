//! The one error type of the API. Every failure a client can see is a variant here, so status
//! codes and error codes stay consistent across handlers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a client should wait before retrying a key whose partition is moving or restoring.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `bad_request`, `unauthorized`.
    pub error: String,
    /// What was wrong, for humans.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed id or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// No (valid) bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// A resource the caller may never read whatever the id, e.g. an administrators-only store
    /// asked by a user token (which stores exist is no secret: `/openapi.json` lists them).
    #[error("{0}")]
    Forbidden(String),
    /// Unknown id, or a resource the caller may not read (indistinguishable on purpose).
    #[error("{0}")]
    NotFound(String),
    /// The key's partition is moving between instances or restoring.
    #[error("{0}")]
    Unavailable(String),
    /// The owning instance could not be reached or answered nonsense.
    #[error("{0}")]
    BadGateway(String),
    /// State that does not decode, a store failure: our fault, not the caller's.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::BadGateway(_) => "bad_gateway",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(m) = &self {
            tracing::error!(message = %m, "query failed");
        }
        let status = self.status();
        let body = ErrorBody { error: self.code().to_string(), message: self.to_string() };
        let mut resp = (status, Json(body)).into_response();
        match &self {
            ApiError::Unavailable(_) => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            ApiError::Unauthorized(_) => {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

impl From<runtime::RuntimeError> for ApiError {
    fn from(e: runtime::RuntimeError) -> Self {
        ApiError::Internal(format!("state store: {e}"))
    }
}

impl From<streams::store::StoreError> for ApiError {
    fn from(e: streams::store::StoreError) -> Self {
        ApiError::Internal(format!("state store: {e}"))
    }
}

impl From<streams::store::query::QueryError> for ApiError {
    fn from(e: streams::store::query::QueryError) -> Self {
        use streams::store::query::QueryError as Q;
        match e {
            Q::BadKey(_) | Q::Unroutable(_) | Q::BadLimit { .. } | Q::Unsupported(_) => {
                ApiError::BadRequest(e.to_string())
            }
            Q::Forbidden(_) => ApiError::Forbidden(e.to_string()),
            Q::NotFound => ApiError::NotFound(e.to_string()),
            Q::Store(e) => ApiError::Internal(format!("state store: {e}")),
        }
    }
}

//! The dashboard: one static page served at `/` by the query service, drawing everything from
//! the query API (`/metrics`, `/v1/accounts/…`, `/v1/users/…/spending`) plus the activity feed
//! at `/v1/activity`. No build step and no script from the internet: the chart is plain SVG.

pub mod feed;

use std::sync::Arc;

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};

pub use feed::{Activity, Feed};

const PAGE: &str = include_str!("index.html");

/// `/` (the page) and `/v1/activity` (the newest budget alerts and fraud decisions).
pub fn router(feed: Arc<Feed>) -> Router {
    Router::new().route("/", get(page)).route("/v1/activity", get(activity)).with_state(feed)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn activity(State(feed): State<Arc<Feed>>) -> impl IntoResponse {
    Json(feed.snapshot())
}

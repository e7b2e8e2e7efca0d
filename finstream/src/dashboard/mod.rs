//! The dashboard: one static page served at `/` by the query service, drawing everything from
//! the query API (`/metrics`, `/v1/accounts/…`, `/v1/users/…/spending`) plus the activity feed
//! at `/v1/activity`. No build step and no script from the internet: the chart is plain SVG.

pub mod feed;

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use query::{ApiError, Authenticator};

pub use feed::{Activity, Feed};

const PAGE: &str = include_str!("index.html");

#[derive(Clone)]
struct DashboardState {
    feed: Arc<Feed>,
    auth: Arc<Authenticator>,
}

/// `/` (the page) and `/v1/activity` (the newest budget alerts and fraud decisions), behind the
/// same bearer-token rules as the query API: the page itself is public (it holds no data), the
/// activity answers 401 without a token under jwt and shows a user only their own items.
pub fn router(feed: Arc<Feed>, auth: Arc<Authenticator>) -> Router {
    Router::new().route("/", get(page)).route("/v1/activity", get(activity)).with_state(DashboardState { feed, auth })
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn activity(State(st): State<DashboardState>, headers: HeaderMap) -> Result<Json<Activity>, ApiError> {
    let who = st.auth.principal(&headers)?;
    let mut a = st.feed.snapshot();
    a.budget_alerts.retain(|x| who.may_read_user(&x.user_id));
    a.fraud_decisions.retain(|x| who.may_read_user(&x.user_id));
    Ok(Json(a))
}

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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use query::{AuthConfig, AuthMode, Claims, Role};
    use tower::ServiceExt;

    use super::*;
    use crate::dashboard::feed::AlertItem;

    const SECRET: &str = "dashboard-test-secret";

    fn alert(user: &str) -> AlertItem {
        AlertItem {
            alert_id: format!("{user}-b:2026-03-01:80"),
            user_id: user.into(),
            budget_id: format!("{user}-b"),
            category: "dining".into(),
            level: "WARNING".into(),
            threshold_percent: 80,
            spent: "80.0000".into(),
            limit: "100.0000".into(),
            currency: "EUR".into(),
            occurred_at: "2026-03-02T10:00:00.000Z".into(),
        }
    }

    fn fraud(user: &str) -> query::model::FraudScoreItem {
        query::model::FraudScoreItem {
            transaction_id: format!("{user}-t1"),
            account_id: format!("{user}-a1"),
            user_id: user.into(),
            score: 85,
            decision: "DECLINE".into(),
            reasons: vec!["VELOCITY +40: 7 transactions in 10 minutes".into()],
            model_version: "rules-v2".into(),
            scored_at: "2026-03-02T10:00:00.000Z".into(),
        }
    }

    fn jwt_router() -> Router {
        let mut activity = Activity::default();
        for u in ["alice", "bob"] {
            activity.budget_alerts.push_back(alert(u));
            activity.fraud_decisions.push_back(fraud(u));
        }
        let auth = AuthConfig { mode: AuthMode::Jwt, hs256_secret: SECRET.into(), ..Default::default() };
        router(Arc::new(Feed::fixed(activity)), Arc::new(Authenticator::new(&auth).unwrap()))
    }

    fn token(sub: &str, role: Role) -> String {
        let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
        encode(&Header::default(), &Claims { sub: sub.into(), role, exp }, &EncodingKey::from_secret(SECRET.as_bytes()))
            .unwrap()
    }

    async fn get(app: Router, path: &str, token: Option<String>) -> (StatusCode, serde_json::Value) {
        let mut req = Request::get(path);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    fn users(v: &serde_json::Value, list: &str) -> Vec<String> {
        v[list].as_array().unwrap().iter().map(|x| x["user_id"].as_str().unwrap().to_string()).collect()
    }

    #[tokio::test]
    async fn activity_follows_the_query_api_authorization() {
        let (status, body) = get(jwt_router(), "/v1/activity", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["message"].is_string(), "{body}");

        let (status, body) = get(jwt_router(), "/v1/activity", Some(token("alice", Role::User))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(users(&body, "budget_alerts"), ["alice"]);
        assert_eq!(users(&body, "fraud_decisions"), ["alice"]);

        let (_, body) = get(jwt_router(), "/v1/activity", Some(token("root", Role::Admin))).await;
        assert_eq!(users(&body, "budget_alerts"), ["alice", "bob"]);
        assert_eq!(users(&body, "fraud_decisions"), ["alice", "bob"]);

        // The page itself holds no data and loads without a token.
        let page = jwt_router().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
    }
}

//! `/v1/users/{user_id}/...`: budgets, goals, spending and cash flow. Their stores live in the
//! users sub-topology, partitioned by user id (the store keys `user|category` and `user|month`
//! are not the routing key; the user id is).

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Days, NaiveDate};
use chrono_tz::Tz;
use processors::analytics::{cash_flow_key, CashFlow, DailySpending, CASH_FLOW_STORE};
use processors::budgets::{covers, UserBudgets, BUDGETS_STORE};
use processors::goals::{UserGoals, GOALS_STORE};
use processors::periods::{date_key, local_date, local_midnight_ms, period_containing};
use processors::stores;
use rust_decimal::Decimal;
use schemas::Category;
use streams::window::{decode_window_entry, window_range_for};
use streams::{JsonSerde, StringSerde};

use super::read;
use crate::error::{ApiError, ErrorBody};
use crate::model::{self, amount, instant, percent};
use crate::params;
use crate::routing::{locate, Located};
use crate::AppState;

fn not_found(user_id: &str) -> ApiError {
    ApiError::NotFound(format!("user {user_id} not found"))
}

/// Authenticates, checks the caller may read this user, validates the id and finds the owner
/// of the user's partition. `Err(resp)`: the owner's forwarded answer.
async fn start(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<Result<i32, Response>, ApiError> {
    let who = st.auth.principal(headers)?;
    params::id("user_id", user_id)?;
    if !who.may_read_user(user_id) {
        return Err(not_found(user_id));
    }
    match locate(st, uri, headers, stores::BUDGETS, user_id).await? {
        Located::Here(p) => Ok(Ok(p)),
        Located::Forwarded(resp) => Ok(Err(resp)),
    }
}

fn load_budgets(st: &AppState, p: i32, user_id: &str) -> Result<Option<UserBudgets>, ApiError> {
    read(st.reader.as_ref(), &BUDGETS_STORE, p, &user_id.to_string())
}

fn load_goals(st: &AppState, p: i32, user_id: &str) -> Result<Option<UserGoals>, ApiError> {
    read(st.reader.as_ref(), &GOALS_STORE, p, &user_id.to_string())
}

/// A user is known when a profile, budgets or goals exist for them: known users without data
/// get empty answers, unknown ones 404.
fn known(st: &AppState, p: i32, user_id: &str) -> Result<bool, ApiError> {
    let r = st.reader.as_ref();
    Ok(r.global_get(stores::USER_PROFILES, user_id.as_bytes())?.is_some()
        || r.get(stores::BUDGETS, p, user_id.as_bytes())?.is_some()
        || r.get(stores::GOALS, p, user_id.as_bytes())?.is_some())
}

fn tz_of(st: &AppState, user_id: &str) -> Result<Tz, ApiError> {
    st.tables.timezone(st.reader.as_ref(), user_id)
}

/// Budgets and their status in the period containing `at`.
#[utoipa::path(get, path = "/v1/users/{user_id}/budgets", tag = "users",
    params(("user_id" = String, Path, description = "User id"),
           ("at" = Option<String>, Query, description = "Local date YYYY-MM-DD (default: today in the user's timezone)")),
    responses(
        (status = 200, body = model::Budgets),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn budgets(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user_id = params::path(path)?;
    let q = params::query(query)?;
    params::only(&q, &["at"])?;
    let at = q.get("at").map(|v| params::date("at", v)).transpose()?;
    let p = match start(&st, &uri, &headers, &user_id).await? {
        Ok(p) => p,
        Err(forwarded) => return Ok(forwarded),
    };
    let state = match load_budgets(&st, p, &user_id)? {
        Some(s) => s,
        None if known(&st, p, &user_id)? => UserBudgets::default(),
        None => return Err(not_found(&user_id)),
    };
    let tz = tz_of(&st, &user_id)?;
    let at = at.unwrap_or_else(|| chrono::Utc::now().with_timezone(&tz).date_naive());
    let reader = st.reader.as_ref();
    let mut out = Vec::new();
    for b in state.budgets.values() {
        let Some(period) = period_containing(b.period, tz, at) else { continue };
        if !covers(b, &period) {
            continue;
        }
        let convert = |v: Decimal, from: &str| {
            processors::fx::convert_with(v, from, &b.currency, |c| {
                st.tables.usd_rate(reader, c).map_err(|e| streams::ProcessError::data("rate", e.to_string()))
            })
        };
        let spent = state
            .spent(b.category.symbol(), &period, &convert)
            .map_err(|e| ApiError::Internal(format!("budget {}: {e}", b.budget_id)))?;
        let prefix = format!("{}:{}:", b.budget_id, date_key(period.start_date));
        let mut alerts: Vec<i32> =
            state.alerts.iter().filter_map(|a| a.strip_prefix(&prefix)).filter_map(|t| t.parse().ok()).collect();
        alerts.sort_unstable();
        let pct = if b.limit > Decimal::ZERO {
            spent.checked_mul(Decimal::ONE_HUNDRED).and_then(|x| x.checked_div(b.limit)).unwrap_or_default()
        } else {
            Decimal::ZERO
        };
        out.push(model::BudgetStatus {
            budget_id: b.budget_id.clone(),
            category: b.category.symbol().to_string(),
            period: b.period.symbol().to_string(),
            period_start: instant(period.start_ms),
            period_end: instant(period.end_ms),
            limit: amount(b.limit),
            spent: amount(spent),
            remaining: amount(b.limit - spent),
            percent: percent(pct),
            currency: b.currency.clone(),
            alerts_raised: alerts,
        });
    }
    Ok(Json(model::Budgets { user_id, at: date_key(at), timezone: tz.name().to_string(), budgets: out })
        .into_response())
}

/// Savings goals and their progress.
#[utoipa::path(get, path = "/v1/users/{user_id}/goals", tag = "users",
    params(("user_id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = model::Goals),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn goals(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user_id = params::path(path)?;
    params::only(&params::query(query)?, &[])?;
    let p = match start(&st, &uri, &headers, &user_id).await? {
        Ok(p) => p,
        Err(forwarded) => return Ok(forwarded),
    };
    let state = match load_goals(&st, p, &user_id)? {
        Some(s) => s,
        None if known(&st, p, &user_id)? => UserGoals::default(),
        None => return Err(not_found(&user_id)),
    };
    let goals = state
        .goals
        .into_values()
        .map(|g| model::Goal {
            percent: percent(g.percent()),
            status: if g.achieved { "ACHIEVED" } else { "IN_PROGRESS" }.to_string(),
            target_date: g
                .target_date
                .and_then(|d| NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(d.into())))
                .map(date_key),
            goal_id: g.goal_id,
            name: g.name,
            saved: amount(g.saved),
            target: amount(g.target),
            currency: g.currency,
            account_id: g.account_id,
            milestones_reached: g.milestones,
        })
        .collect();
    Ok(Json(model::Goals { user_id, goals }).into_response())
}

/// Daily spending per category between two local dates (both included).
#[utoipa::path(get, path = "/v1/users/{user_id}/spending", tag = "users",
    params(("user_id" = String, Path, description = "User id"),
           ("from" = String, Query, description = "First local date, YYYY-MM-DD"),
           ("to" = String, Query, description = "Last local date (included), YYYY-MM-DD; at most 366 days after from")),
    responses(
        (status = 200, body = model::Spending),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn spending(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user_id = params::path(path)?;
    let q = params::query(query)?;
    params::only(&q, &["from", "to"])?;
    let from = params::required_date(&q, "from")?;
    let to = params::required_date(&q, "to")?;
    if to < from {
        return Err(ApiError::BadRequest(format!("to ({to}) is before from ({from})")));
    }
    if (to - from).num_days() >= params::MAX_SPENDING_DAYS {
        return Err(ApiError::BadRequest(format!("from..to spans more than {} days", params::MAX_SPENDING_DAYS)));
    }
    let p = match start(&st, &uri, &headers, &user_id).await? {
        Ok(p) => p,
        Err(forwarded) => return Ok(forwarded),
    };
    let tz = tz_of(&st, &user_id)?;
    let lo = local_midnight_ms(tz, from);
    let hi = local_midnight_ms(tz, to.checked_add_days(Days::new(1)).unwrap_or(to));
    let value_serde = JsonSerde::<DailySpending>::default();
    let mut days = Vec::new();
    for category in Category::SYMBOLS {
        let key = format!("{user_id}|{category}");
        let (start, end) = window_range_for(key.as_bytes());
        for (k, v) in st.reader.range(stores::SPENDING_DAILY, p, &start, end.as_deref())? {
            let Some((_, window_start, s)) =
                decode_window_entry(&StringSerde, &value_serde, stores::SPENDING_DAILY, &k, &v)
            else {
                return Err(ApiError::Internal(format!("undecodable {} entry for {key}", stores::SPENDING_DAILY)));
            };
            if window_start < lo || window_start >= hi {
                continue;
            }
            let date = local_date(tz, window_start).map_err(|e| ApiError::Internal(e.to_string()))?;
            days.push(model::SpendingDay {
                date: date_key(date),
                category: s.category.symbol().to_string(),
                total: amount(s.total),
                count: s.count,
                currency: s.currency,
            });
        }
    }
    if days.is_empty() && !known(&st, p, &user_id)? {
        return Err(not_found(&user_id));
    }
    days.sort_by(|a, b| (&a.date, &a.category).cmp(&(&b.date, &b.category)));
    Ok(Json(model::Spending { user_id, from: date_key(from), to: date_key(to), timezone: tz.name().to_string(), days })
        .into_response())
}

/// Money in and out in one local month.
#[utoipa::path(get, path = "/v1/users/{user_id}/cash-flow", tag = "users",
    params(("user_id" = String, Path, description = "User id"),
           ("month" = String, Query, description = "Local month, YYYY-MM")),
    responses(
        (status = 200, body = model::CashFlow),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn cash_flow(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user_id = params::path(path)?;
    let q = params::query(query)?;
    params::only(&q, &["month"])?;
    let month =
        q.get("month").ok_or_else(|| ApiError::BadRequest("query parameter month=YYYY-MM is required".into()))?;
    let month = params::month("month", month)?;
    let p = match start(&st, &uri, &headers, &user_id).await? {
        Ok(p) => p,
        Err(forwarded) => return Ok(forwarded),
    };
    let key = cash_flow_key(&user_id, &month);
    let cf: CashFlow = match read(st.reader.as_ref(), &CASH_FLOW_STORE, p, &key)? {
        Some(cf) => cf,
        None if known(&st, p, &user_id)? => {
            let currency =
                st.tables.profile(st.reader.as_ref(), &user_id)?.map(|p| p.base_currency).unwrap_or_default();
            CashFlow {
                user_id: user_id.clone(),
                month: month.clone(),
                money_in: Decimal::ZERO,
                money_out: Decimal::ZERO,
                transfers_out: Decimal::ZERO,
                transfers_in: Decimal::ZERO,
                count: 0,
                currency,
            }
        }
        None => return Err(not_found(&user_id)),
    };
    let net = cf.money_in + cf.transfers_in - cf.money_out - cf.transfers_out;
    Ok(Json(model::CashFlow {
        user_id,
        month,
        money_in: amount(cf.money_in),
        money_out: amount(cf.money_out),
        transfers_in: amount(cf.transfers_in),
        transfers_out: amount(cf.transfers_out),
        net: amount(net),
        count: cf.count,
        currency: cf.currency,
    })
    .into_response())
}

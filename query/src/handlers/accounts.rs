//! `/v1/accounts/{account_id}/...`: balance, lineage and fraud scores. All three stores live in
//! the accounts sub-topology, partitioned by account id, so the owner of the balance (which
//! says who owns the account) also holds the lineage and the scores.

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use processors::balances::{lineage_range, lineage_seq, BalanceState, BALANCES_STORE, LINEAGE_STORE};
use processors::fraud::FRAUD_SCORES_STORE;
use processors::legs::Leg;
use processors::stores;
use schemas::FraudScore;

use super::{decode, read};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::model::{self, amount, instant};
use crate::params;
use crate::routing::{locate, Located};
use crate::AppState;

/// Scores listed when no `limit` is given (the processors keep 20 by default).
pub const DEFAULT_SCORES: usize = 20;

fn not_found(account_id: &str) -> ApiError {
    ApiError::NotFound(format!("account {account_id} not found"))
}

/// The account's balance and fraud scores, if it exists and `who` may read it. Ownership is the
/// balance's `user_id`, or for an account with scores but no applied leg yet, the scores'.
struct Account {
    balance: Option<BalanceState>,
    scores: Vec<FraudScore>,
}

fn load(st: &AppState, p: i32, account_id: &str, who: &Principal) -> Result<Account, ApiError> {
    let r = st.reader.as_ref();
    let id = account_id.to_string();
    let balance: Option<BalanceState> = read(r, &BALANCES_STORE, p, &id)?;
    let scores: Vec<FraudScore> = read(r, &FRAUD_SCORES_STORE, p, &id)?.unwrap_or_default();
    let owner = match &balance {
        Some(b) if !b.user_id.is_empty() => Some(b.user_id.as_str()),
        _ => scores.first().map(|s| s.user_id.as_str()),
    };
    let exists = balance.is_some() || !scores.is_empty();
    let allowed = match who {
        Principal::Admin => true,
        Principal::User(_) => owner.is_some_and(|o| who.may_read_user(o)),
    };
    if !exists || !allowed {
        return Err(not_found(account_id));
    }
    Ok(Account { balance, scores })
}

/// Authenticates, validates the id and finds its owner. `Err(Ok(resp))`: forwarded answer.
async fn start(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    account_id: &str,
) -> Result<Result<(Principal, i32), Response>, ApiError> {
    let who = st.auth.principal(headers)?;
    params::id("account_id", account_id)?;
    match locate(st, uri, headers, stores::BALANCES, account_id).await? {
        Located::Here(p) => Ok(Ok((who, p))),
        Located::Forwarded(resp) => Ok(Err(resp)),
    }
}

/// Current balance of an account.
#[utoipa::path(get, path = "/v1/accounts/{account_id}/balance", tag = "accounts",
    params(("account_id" = String, Path, description = "Account id")),
    responses(
        (status = 200, body = model::Balance),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "Partition moving or restoring; see Retry-After"),
    ))]
pub async fn balance(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account_id = params::path(path)?;
    let (who, p) = match start(&st, &uri, &headers, &account_id).await? {
        Ok(v) => v,
        Err(forwarded) => return Ok(forwarded),
    };
    let b = load(&st, p, &account_id, &who)?.balance.ok_or_else(|| not_found(&account_id))?;
    Ok(Json(model::Balance {
        account_id: b.account_id,
        user_id: b.user_id,
        balance: amount(b.balance),
        currency: b.currency,
        applied_count: b.applied_count,
        last_transaction_id: b.last_transaction_id,
        updated_at: instant(b.updated_at),
    })
    .into_response())
}

/// The last applied legs of an account, newest first.
#[utoipa::path(get, path = "/v1/accounts/{account_id}/lineage", tag = "accounts",
    params(("account_id" = String, Path, description = "Account id"),
           ("limit" = Option<usize>, Query, description = "At most this many legs (1-1000; default: all kept)")),
    responses(
        (status = 200, body = model::Lineage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn lineage(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account_id = params::path(path)?;
    let q = params::query(query)?;
    params::only(&q, &["limit"])?;
    let limit = params::limit(&q, params::MAX_LIMIT)?;
    let (who, p) = match start(&st, &uri, &headers, &account_id).await? {
        Ok(v) => v,
        Err(forwarded) => return Ok(forwarded),
    };
    load(&st, p, &account_id, &who)?;
    let (from, to) = lineage_range(&account_id);
    let entries = st.reader.range(LINEAGE_STORE.name(), p, &from, to.as_deref())?;
    // Keys end with the sequence number in fixed width: newest last.
    let mut legs = Vec::new();
    for (k, v) in entries.iter().rev() {
        if legs.len() == limit {
            break;
        }
        if lineage_seq(&account_id, k).is_some() {
            legs.push(decode(&LINEAGE_STORE, v)?);
        }
    }
    let legs = legs
        .into_iter()
        .map(|l| model::LineageLeg {
            transaction_id: l.transaction_id,
            leg: match l.leg {
                Leg::Debit => "DEBIT",
                Leg::Credit => "CREDIT",
            }
            .to_string(),
            amount: amount(l.amount),
            balance_after: amount(l.balance_after),
            occurred_at: instant(l.occurred_at),
        })
        .collect();
    Ok(Json(model::Lineage { account_id, legs }).into_response())
}

/// The latest fraud scores of an account, newest first.
#[utoipa::path(get, path = "/v1/accounts/{account_id}/fraud-scores", tag = "accounts",
    params(("account_id" = String, Path, description = "Account id"),
           ("limit" = Option<usize>, Query, description = "At most this many scores (1-1000; default 20)")),
    responses(
        (status = 200, body = model::FraudScores),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn fraud_scores(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account_id = params::path(path)?;
    let q = params::query(query)?;
    params::only(&q, &["limit"])?;
    let limit = params::limit(&q, DEFAULT_SCORES)?;
    let (who, p) = match start(&st, &uri, &headers, &account_id).await? {
        Ok(v) => v,
        Err(forwarded) => return Ok(forwarded),
    };
    let account = load(&st, p, &account_id, &who)?;
    let scores = account.scores.into_iter().take(limit).map(model::FraudScoreItem::from).collect();
    Ok(Json(model::FraudScores { account_id, scores }).into_response())
}

/// The fraud score of one transaction of an account.
#[utoipa::path(get, path = "/v1/accounts/{account_id}/fraud-scores/{transaction_id}", tag = "accounts",
    params(("account_id" = String, Path, description = "Account id"),
           ("transaction_id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, body = model::FraudScoreItem),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn fraud_score(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (account_id, transaction_id) = params::path(path)?;
    params::id("transaction_id", &transaction_id)?;
    let (who, p) = match start(&st, &uri, &headers, &account_id).await? {
        Ok(v) => v,
        Err(forwarded) => return Ok(forwarded),
    };
    let account = load(&st, p, &account_id, &who)?;
    let score = account.scores.into_iter().find(|s| s.transaction_id == transaction_id).ok_or_else(|| {
        ApiError::NotFound(format!("no fraud score for transaction {transaction_id} of account {account_id}"))
    })?;
    Ok(Json(model::FraudScoreItem::from(score)).into_response())
}

//! Budgets (keyed by user): spending per (category, local date, currency) from COMPLETED
//! PAYMENT, WITHDRAWAL, FEE (minus REFUND), budgets from the `budgets` topic, and WARNING (80 %)
//! / EXCEEDED (100 %) alerts once per (budget, period, threshold). See docs/money-rules.md,
//! "Budgets".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use schemas::{
    AlertLevel, BudgetAction, BudgetAlert, BudgetEvent, BudgetPeriod, Category, Notification, TimestampMillis,
    TransactionEvent,
};
use serde::{Deserialize, Serialize};
use streams::store::query::{Owner, QuerySpec};
use streams::{JsonSerde, KvStoreDef, ProcessError, Processor, ProcessorContext, Record, StringSerde};

use crate::dedupe::{user_key, Dedupe, Lane};
use crate::legs::{moves_money, spending_delta};
use crate::periods::{date_key, local_date, period_containing, user_tz, Period};
use crate::topology::{nodes, stores, Shared, UserInput};
use crate::{fx, notifications};

/// Typed handle of the `budgets` store: user_id → budgets, spending, alerts raised.
///
/// Queryable on `/v1/stores/budgets` by the user it is keyed by.
pub const BUDGETS_STORE: KvStoreDef<String, UserBudgets> =
    KvStoreDef::new(stores::BUDGETS, &StringSerde, &JsonSerde::new())
        .queryable(QuerySpec::string_keys().owned_by(Owner::Key(|user| Some(user.as_str()))));

/// Dead-letter reason for an event whose key is not its `user_id`.
pub const KEY_MISMATCH: &str = "key_mismatch";

/// Value of the `budgets` store (key: user_id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBudgets {
    /// budget_id → budget.
    pub budgets: BTreeMap<String, BudgetState>,
    /// category symbol → local date `YYYY-MM-DD` → currency → net spending in that currency.
    pub spending: BTreeMap<String, BTreeMap<String, BTreeMap<String, Decimal>>>,
    /// Alert ids raised so far (`{budget_id}:{period_start_local_date}:{threshold}`); kept after
    /// a budget is deleted, so each alerts once ever.
    pub alerts: BTreeSet<String>,
}

/// One budget as last SET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetState {
    pub budget_id: String,
    pub category: Category,
    pub limit: Decimal,
    pub currency: String,
    pub period: BudgetPeriod,
    /// Local start date (`YYYY-MM-DD`) of the period containing the SET's `updated_at`: the
    /// budget covers that period and every later one.
    pub covers_from: String,
    /// `updated_at` of the last SET (epoch millis).
    pub updated_at: i64,
}

impl UserBudgets {
    /// Net spending in `category` over the local dates of `period`, each currency's sum converted
    /// with `convert` (into the budget's currency: latest rate, half-even; same currency exact).
    /// Public for the query service, which reports `spent` exactly as alerts compute it.
    pub fn spent(
        &self,
        category: &str,
        period: &Period,
        convert: &dyn Fn(Decimal, &str) -> Result<Decimal, ProcessError>,
    ) -> Result<Decimal, ProcessError> {
        let Some(days) = self.spending.get(category) else { return Ok(Decimal::ZERO) };
        let mut per_currency: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (_, sums) in days.range(date_key(period.start_date)..date_key(period.end_date)) {
            for (c, v) in sums {
                *per_currency.entry(c.as_str()).or_default() += *v;
            }
        }
        let mut total = Decimal::ZERO;
        for (c, v) in per_currency {
            total += convert(v, c)?;
        }
        Ok(total)
    }
}

/// What triggered an evaluation: a transaction (its id) or a SET (`""`), at event time `at`.
struct Trigger<'a> {
    transaction_id: &'a str,
    at: i64,
}

/// Alerts newly raised for `budget` in `period` at spending `spent` (WARNING before EXCEEDED).
fn evaluate(
    user_id: &str,
    budget: &BudgetState,
    period: &Period,
    spent: Decimal,
    raised: &mut BTreeSet<String>,
    trigger: &Trigger<'_>,
) -> Vec<BudgetAlert> {
    let mut out = Vec::new();
    if spent <= Decimal::ZERO {
        return out;
    }
    for (pct, level) in [(80, AlertLevel::Warning), (100, AlertLevel::Exceeded)] {
        let bar = budget.limit * Decimal::new(pct, 2);
        if spent < bar {
            continue;
        }
        let alert_id = format!("{}:{}:{pct}", budget.budget_id, date_key(period.start_date));
        if !raised.insert(alert_id.clone()) {
            continue;
        }
        out.push(BudgetAlert {
            alert_id,
            user_id: user_id.to_string(),
            budget_id: budget.budget_id.clone(),
            category: budget.category,
            period_start: TimestampMillis(period.start_ms),
            period_end: TimestampMillis(period.end_ms),
            spent,
            limit: budget.limit,
            currency: budget.currency.clone(),
            threshold_percent: pct as i32,
            level,
            transaction_id: trigger.transaction_id.to_string(),
            occurred_at: TimestampMillis(trigger.at),
        });
    }
    out
}

/// Whether `budget` applies to `period` (it covers the period it was SET in and later ones).
pub fn covers(budget: &BudgetState, period: &Period) -> bool {
    date_key(period.start_date) >= budget.covers_from
}

pub struct BudgetsProcessor {
    shared: Arc<Shared>,
    dedupe: Dedupe,
}

impl BudgetsProcessor {
    pub fn new(shared: Arc<Shared>) -> Self {
        let dedupe = shared.dedupe(stores::BUDGETS_DEDUPE, Lane::TransactionsByUser);
        BudgetsProcessor { shared, dedupe }
    }

    fn load(ctx: &mut ProcessorContext<'_>, user: &str) -> Result<UserBudgets, ProcessError> {
        Ok(ctx.store(&BUDGETS_STORE)?.get(&user.to_string())?.unwrap_or_default())
    }

    fn emit(ctx: &mut ProcessorContext<'_>, alerts: Vec<BudgetAlert>) -> Result<(), ProcessError> {
        for alert in alerts {
            let at = alert.occurred_at.0;
            let user = alert.user_id.clone();
            let n = notifications::budget(&alert);
            ctx.forward_to(nodes::BUDGET_ALERTS_SINK, Record::new(user.clone(), alert, at))?;
            ctx.forward_to::<String, Notification>(nodes::USER_NOTIFICATIONS_SINK, Record::new(user, n, at))?;
        }
        Ok(())
    }

    fn transaction(&mut self, tx: &TransactionEvent, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        if !moves_money(tx) {
            return Ok(());
        }
        let key = user_key(&tx.user_id, &tx.transaction_id);
        if self.dedupe.seen(ctx, &key)? {
            return Ok(());
        }
        let at = tx.occurred_at.0;
        let Some(delta) = spending_delta(tx) else {
            return self.dedupe.remember(ctx, &key, at);
        };
        let tz = user_tz(&self.shared.tables, ctx, &tx.user_id)?;
        let date = local_date(tz, at)?;
        let mut state = Self::load(ctx, &tx.user_id)?;
        let category = tx.category.symbol().to_string();
        let day = state.spending.entry(category.clone()).or_default().entry(date_key(date)).or_default();
        *day.entry(tx.currency.clone()).or_default() += delta;

        let trigger = Trigger { transaction_id: &tx.transaction_id, at };
        let mut alerts = Vec::new();
        let budgets: Vec<BudgetState> = state.budgets.values().filter(|b| b.category == tx.category).cloned().collect();
        for budget in budgets {
            let Some(period) = period_containing(budget.period, tz, date) else { continue };
            if !covers(&budget, &period) {
                continue;
            }
            let spent = self.spent(ctx, &state, &category, &period, &budget.currency)?;
            alerts.extend(evaluate(&tx.user_id, &budget, &period, spent, &mut state.alerts, &trigger));
        }
        Self::emit(ctx, alerts)?;
        ctx.store(&BUDGETS_STORE)?.put(&tx.user_id, &state)?;
        self.dedupe.remember(ctx, &key, at)
    }

    fn spent(
        &self,
        ctx: &ProcessorContext<'_>,
        state: &UserBudgets,
        category: &str,
        period: &Period,
        currency: &str,
    ) -> Result<Decimal, ProcessError> {
        let tables = &self.shared.tables;
        state.spent(category, period, &|v, from| fx::convert(tables, ctx, v, from, currency))
    }

    fn budget_event(
        &mut self,
        ev: &BudgetEvent,
        key: &str,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        if ev.user_id != key {
            return Err(ProcessError::data(
                KEY_MISMATCH,
                format!("budget {} keyed {key:?}, user {:?}", ev.budget_id, ev.user_id),
            ));
        }
        let mut state = Self::load(ctx, &ev.user_id)?;
        let alerts = match ev.action {
            BudgetAction::Set => {
                let tz = user_tz(&self.shared.tables, ctx, &ev.user_id)?;
                let date: NaiveDate = local_date(tz, ev.updated_at.0)?;
                let period = period_containing(ev.period, tz, date).ok_or_else(|| {
                    ProcessError::data(
                        schemas::reason::INVALID_FIELD,
                        format!("budget {} has no known period", ev.budget_id),
                    )
                })?;
                let budget = BudgetState {
                    budget_id: ev.budget_id.clone(),
                    category: ev.category,
                    limit: ev.limit,
                    currency: ev.currency.clone(),
                    period: ev.period,
                    covers_from: date_key(period.start_date),
                    updated_at: ev.updated_at.0,
                };
                let spent = self.spent(ctx, &state, ev.category.symbol(), &period, &budget.currency)?;
                let trigger = Trigger { transaction_id: "", at: ev.updated_at.0 };
                let alerts = evaluate(&ev.user_id, &budget, &period, spent, &mut state.alerts, &trigger);
                state.budgets.insert(budget.budget_id.clone(), budget);
                alerts
            }
            BudgetAction::Delete => {
                state.budgets.remove(&ev.budget_id);
                Vec::new()
            }
            BudgetAction::Unknown => {
                return Err(ProcessError::data(schemas::reason::INVALID_FIELD, "budget action UNKNOWN"));
            }
        };
        Self::emit(ctx, alerts)?;
        ctx.store(&BUDGETS_STORE)?.put(&ev.user_id, &state)?;
        Ok(())
    }
}

impl Processor<String, UserInput> for BudgetsProcessor {
    fn process(
        &mut self,
        record: Record<String, UserInput>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        match &record.value {
            UserInput::Transaction(tx) => self.transaction(tx, ctx),
            UserInput::Budget(ev) => self.budget_event(ev, &record.key, ctx),
            UserInput::Goal(_) | UserInput::TransferIn(_) => Ok(()),
        }
    }
}

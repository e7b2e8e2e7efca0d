//! Goals (keyed by user): net money that flowed toward each goal since it was created, in the
//! goal's currency, with `GoalProgress` on every change, milestones 25/50/75/100 once each,
//! sticky ACHIEVED and DELETED. See docs/money-rules.md, "Goals".
//!
//! Transactions arrive as the user's copy (`transactions-by-user`, keyed by the user who made
//! them); transfers from *other* users into an account arrive as its owner's transfers in
//! (`transfers-in-by-user`, routed through the `accounts` table, [`crate::transfers_in`]), so a
//! goal linked to an account also counts what others send to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};
use schemas::{
    GoalEvent, GoalEventType, GoalProgress, GoalStatus, Notification, TimestampMillis, TransactionEvent,
    TransactionKind,
};
use serde::{Deserialize, Serialize};
use streams::store::query::{Owner, QuerySpec};
use streams::{JsonSerde, KvStoreDef, ProcessError, Processor, ProcessorContext, Record, StringSerde};

use crate::budgets::KEY_MISMATCH;
use crate::dedupe::{user_key, Dedupe, Lane};
use crate::legs::moves_money;
use crate::topology::{nodes, stores, Shared, UserInput};
use crate::{fx, notifications};

/// Typed handle of the `goals` store: user_id → the user's goals.
///
/// Queryable on `/v1/stores/goals` by the user it is keyed by.
pub const GOALS_STORE: KvStoreDef<String, UserGoals> = KvStoreDef::new(stores::GOALS, &StringSerde, &JsonSerde::new())
    .queryable(QuerySpec::string_keys().owned_by(Owner::Key(|user| Some(user.as_str()))));

/// Dead-letter reason for a GOAL_UPDATED that changes the goal's currency.
pub const INVALID_GOAL_UPDATE: &str = "invalid_goal_update";

/// Milestones, in percent.
pub const MILESTONES: [i32; 4] = [25, 50, 75, 100];

/// Value of the `goals` store (key: user_id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGoals {
    /// goal_id → goal.
    pub goals: BTreeMap<String, GoalState>,
}

/// One tracked goal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalState {
    pub goal_id: String,
    pub user_id: String,
    pub name: String,
    pub target: Decimal,
    pub currency: String,
    /// Avro `date` (days since epoch), as in the event.
    pub target_date: Option<i32>,
    pub account_id: Option<String>,
    /// `occurred_at` of the event that created the goal: earlier transactions do not count.
    pub created_at: i64,
    /// Net amount that flowed toward the goal, in its currency.
    pub saved: Decimal,
    /// Milestones already reached (emitted), ascending.
    pub milestones: Vec<i32>,
    /// Sticky once percent reached 100.
    pub achieved: bool,
    /// Event time of the last change.
    pub updated_at: i64,
}

impl GoalState {
    /// `min(100, saved / target × 100)` half-even to 2 places; 0 when saved < 0 (or no target).
    pub fn percent(&self) -> Decimal {
        if self.saved <= Decimal::ZERO || self.target <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        let p = self
            .saved
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|x| x.checked_div(self.target))
            .unwrap_or(Decimal::ONE_HUNDRED);
        p.min(Decimal::ONE_HUNDRED).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
    }

    /// Records milestones newly reached; returns them ascending.
    fn reach_milestones(&mut self) -> Vec<i32> {
        let percent = self.percent();
        let new: Vec<i32> =
            MILESTONES.into_iter().filter(|m| percent >= Decimal::from(*m) && !self.milestones.contains(m)).collect();
        self.milestones.extend(&new);
        self.milestones.sort_unstable();
        if new.contains(&100) {
            self.achieved = true;
        }
        new
    }

    fn progress(&self, status: GoalStatus, milestone: Option<i32>) -> GoalProgress {
        GoalProgress {
            goal_id: self.goal_id.clone(),
            user_id: self.user_id.clone(),
            saved: self.saved,
            target: self.target,
            currency: self.currency.clone(),
            percent: self.percent(),
            status,
            milestone,
            updated_at: TimestampMillis(self.updated_at),
        }
    }

    /// What a transfer from another user into an account of this goal's user moves toward the
    /// goal: its amount when the account is the goal's (tags are the sender's business).
    pub fn delta_in(&self, tx: &TransactionEvent) -> Option<Decimal> {
        if !moves_money(tx) || tx.kind != TransactionKind::Transfer || tx.occurred_at.0 < self.created_at {
            return None;
        }
        let acc = self.account_id.as_deref()?;
        (tx.counterparty_account_id.as_deref() == Some(acc)).then_some(tx.amount)
    }

    /// The signed amount (in the transaction's currency) `tx` moves toward this goal, if it counts.
    pub fn delta(&self, tx: &TransactionEvent) -> Option<Decimal> {
        if !moves_money(tx) || tx.occurred_at.0 < self.created_at {
            return None;
        }
        use TransactionKind::*;
        if let Some(acc) = self.account_id.as_deref() {
            let from = tx.account_id == acc;
            let into = tx.kind == Transfer && tx.counterparty_account_id.as_deref() == Some(acc);
            if from || into {
                return match tx.kind {
                    Transfer if from && into => Some(Decimal::ZERO),
                    Transfer if into => Some(tx.amount),
                    Transfer => Some(-tx.amount),
                    Deposit | Interest | Refund => Some(tx.amount),
                    Withdrawal | Payment | Fee => Some(-tx.amount),
                    Unknown => None,
                };
            }
        }
        if tx.goal_id.as_deref() == Some(self.goal_id.as_str()) {
            return match tx.kind {
                Deposit | Interest | Refund | Transfer => Some(tx.amount),
                Withdrawal | Payment | Fee => Some(-tx.amount),
                Unknown => None,
            };
        }
        None
    }
}

pub struct GoalsProcessor {
    shared: Arc<Shared>,
    /// The user's own transactions.
    dedupe: Dedupe,
    /// Transfers in from other users: their own stream, so their own clock.
    dedupe_in: Dedupe,
}

/// One output of a change: progress plus the notifications of newly reached milestones.
fn outputs(goal: &mut GoalState) -> (GoalProgress, Vec<Notification>) {
    let new = goal.reach_milestones();
    let status = if goal.achieved { GoalStatus::Achieved } else { GoalStatus::InProgress };
    let progress = goal.progress(status, new.last().copied());
    let notes = new.iter().map(|m| notifications::goal(&progress, &goal.name, *m)).collect();
    (progress, notes)
}

impl GoalsProcessor {
    pub fn new(shared: Arc<Shared>) -> Self {
        let dedupe = shared.dedupe(stores::GOALS_DEDUPE, Lane::TransactionsByUser);
        let dedupe_in = shared.dedupe(stores::GOALS_DEDUPE, Lane::TransfersInByUser);
        GoalsProcessor { shared, dedupe, dedupe_in }
    }

    fn load(ctx: &mut ProcessorContext<'_>, user: &str) -> Result<UserGoals, ProcessError> {
        Ok(ctx.store(&GOALS_STORE)?.get(&user.to_string())?.unwrap_or_default())
    }

    fn emit(
        ctx: &mut ProcessorContext<'_>,
        progress: GoalProgress,
        notes: Vec<Notification>,
    ) -> Result<(), ProcessError> {
        let at = progress.updated_at.0;
        let user = progress.user_id.clone();
        ctx.forward_to(nodes::GOAL_PROGRESS_SINK, Record::new(user.clone(), progress, at))?;
        for n in notes {
            ctx.forward_to(nodes::USER_NOTIFICATIONS_SINK, Record::new(user.clone(), n, at))?;
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
        self.apply(&tx.user_id, tx, GoalState::delta, ctx)?;
        self.dedupe.remember(ctx, &key, tx.occurred_at.0)
    }

    /// A transfer into an account of `owner` (routed by the `accounts` table). One the owner
    /// made themselves was already counted from their own copy of it.
    fn transfer_in(
        &mut self,
        owner: &str,
        tx: &TransactionEvent,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        if !moves_money(tx) || tx.user_id == owner {
            return Ok(());
        }
        let key = format!("{}|in", user_key(owner, &tx.transaction_id));
        if self.dedupe_in.seen(ctx, &key)? {
            return Ok(());
        }
        self.apply(owner, tx, GoalState::delta_in, ctx)?;
        self.dedupe_in.remember(ctx, &key, tx.occurred_at.0)
    }

    /// Adds what `tx` moves toward each of `user`'s goals (`delta`), emitting their progress.
    fn apply(
        &mut self,
        user: &str,
        tx: &TransactionEvent,
        delta: fn(&GoalState, &TransactionEvent) -> Option<Decimal>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let at = tx.occurred_at.0;
        let mut state = Self::load(ctx, user)?;
        // Convert first (fallible), apply after.
        let mut changes = Vec::new();
        for goal in state.goals.values() {
            if let Some(delta) = delta(goal, tx) {
                let magnitude = fx::convert(&self.shared.tables, ctx, delta.abs(), &tx.currency, &goal.currency)?;
                let signed = if delta.is_sign_negative() { -magnitude } else { magnitude };
                changes.push((goal.goal_id.clone(), signed));
            }
        }
        let changed = !changes.is_empty();
        for (goal_id, amount) in changes {
            let Some(goal) = state.goals.get_mut(&goal_id) else { continue };
            goal.saved += amount;
            goal.updated_at = at;
            let (progress, notes) = outputs(goal);
            Self::emit(ctx, progress, notes)?;
        }
        if changed {
            ctx.store(&GOALS_STORE)?.put(&user.to_string(), &state)?;
        }
        Ok(())
    }

    fn goal_event(&mut self, ev: &GoalEvent, key: &str, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        if ev.user_id != key {
            return Err(ProcessError::data(
                KEY_MISMATCH,
                format!("goal {} keyed {key:?}, user {:?}", ev.goal_id, ev.user_id),
            ));
        }
        let mut state = Self::load(ctx, &ev.user_id)?;
        let at = ev.occurred_at.0;
        match ev.event_type {
            GoalEventType::GoalCreated | GoalEventType::GoalUpdated => {
                let goal = match state.goals.get_mut(&ev.goal_id) {
                    Some(goal) => {
                        if goal.currency != ev.currency {
                            return Err(ProcessError::data(
                                INVALID_GOAL_UPDATE,
                                format!("goal {} currency {} cannot become {}", ev.goal_id, goal.currency, ev.currency),
                            ));
                        }
                        goal.name = ev.name.clone();
                        goal.target = ev.target_amount;
                        goal.target_date = ev.target_date.map(|d| d.0);
                        goal.account_id = ev.account_id.clone();
                        goal.updated_at = at;
                        goal
                    }
                    None => state.goals.entry(ev.goal_id.clone()).or_insert(GoalState {
                        goal_id: ev.goal_id.clone(),
                        user_id: ev.user_id.clone(),
                        name: ev.name.clone(),
                        target: ev.target_amount,
                        currency: ev.currency.clone(),
                        target_date: ev.target_date.map(|d| d.0),
                        account_id: ev.account_id.clone(),
                        created_at: at,
                        saved: Decimal::ZERO,
                        milestones: Vec::new(),
                        achieved: false,
                        updated_at: at,
                    }),
                };
                let (progress, notes) = outputs(goal);
                Self::emit(ctx, progress, notes)?;
            }
            GoalEventType::GoalDeleted => {
                let Some(mut goal) = state.goals.remove(&ev.goal_id) else { return Ok(()) };
                goal.updated_at = at;
                Self::emit(ctx, goal.progress(GoalStatus::Deleted, None), Vec::new())?;
            }
            GoalEventType::Unknown => {
                return Err(ProcessError::data(schemas::reason::INVALID_FIELD, "goal event type UNKNOWN"));
            }
        }
        ctx.store(&GOALS_STORE)?.put(&ev.user_id, &state)?;
        Ok(())
    }
}

impl Processor<String, UserInput> for GoalsProcessor {
    fn process(
        &mut self,
        record: Record<String, UserInput>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        match &record.value {
            UserInput::Transaction(tx) => self.transaction(tx, ctx),
            UserInput::Goal(ev) => self.goal_event(ev, &record.key, ctx),
            UserInput::TransferIn(tx) => self.transfer_in(&record.key, tx, ctx),
            UserInput::Budget(_) => Ok(()),
        }
    }
}

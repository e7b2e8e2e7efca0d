//! Notification builders (docs/money-rules.md, "Notifications"). Ids derive from the source
//! event only, so a replay produces the same ids:
//! `budget:{alert_id}`, `goal:{goal_id}:{milestone}`, `low-balance:{account}:{transaction}:{leg}`.
//! `created_at` is the source event's time.

use rust_decimal::Decimal;
use schemas::{AlertLevel, BudgetAlert, GoalProgress, Notification, NotificationKind, TimestampMillis};

use crate::legs::Leg;
use crate::money_fmt::format_money;

/// LOW_BALANCE: the balance of `account_id` went below `threshold` with `transaction_id`.
#[allow(clippy::too_many_arguments)]
pub fn low_balance(
    user_id: &str,
    account_id: &str,
    transaction_id: &str,
    leg: Leg,
    balance: Decimal,
    threshold: Decimal,
    currency: &str,
    at: i64,
) -> Notification {
    Notification {
        notification_id: format!("low-balance:{account_id}:{transaction_id}:{}", leg.as_str()),
        user_id: user_id.to_string(),
        kind: NotificationKind::LowBalance,
        title: "Low balance".to_string(),
        message: format!(
            "The balance of account {account_id} is {}, below {}.",
            format_money(balance, currency),
            format_money(threshold, currency)
        ),
        source_event_id: transaction_id.to_string(),
        created_at: TimestampMillis(at),
    }
}

/// BUDGET_WARNING / BUDGET_EXCEEDED for an alert.
pub fn budget(alert: &BudgetAlert) -> Notification {
    let (kind, title) = match alert.level {
        AlertLevel::Exceeded => (NotificationKind::BudgetExceeded, "Budget exceeded"),
        _ => (NotificationKind::BudgetWarning, "Budget almost used"),
    };
    Notification {
        notification_id: format!("budget:{}", alert.alert_id),
        user_id: alert.user_id.clone(),
        kind,
        title: title.to_string(),
        message: format!(
            "You have spent {} of your {} {} budget ({}%).",
            format_money(alert.spent, &alert.currency),
            format_money(alert.limit, &alert.currency),
            alert.category.symbol(),
            alert.threshold_percent
        ),
        source_event_id: alert.alert_id.clone(),
        created_at: alert.occurred_at,
    }
}

/// GOAL_MILESTONE (25, 50, 75) or GOAL_ACHIEVED (100) for goal `name`.
pub fn goal(progress: &GoalProgress, name: &str, milestone: i32) -> Notification {
    let saved = format_money(progress.saved, &progress.currency);
    let target = format_money(progress.target, &progress.currency);
    let (kind, title, message) = if milestone >= 100 {
        (
            NotificationKind::GoalAchieved,
            "Goal achieved".to_string(),
            format!("You reached your goal \"{name}\": {saved} of {target}."),
        )
    } else {
        (
            NotificationKind::GoalMilestone,
            format!("Goal {milestone}% reached"),
            format!("Your goal \"{name}\" is {milestone}% there: {saved} of {target}."),
        )
    };
    Notification {
        notification_id: format!("goal:{}:{milestone}", progress.goal_id),
        user_id: progress.user_id.clone(),
        kind,
        title,
        message,
        source_event_id: progress.goal_id.clone(),
        created_at: progress.updated_at,
    }
}

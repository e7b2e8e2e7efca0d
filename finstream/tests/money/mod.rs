//! What the money end-to-end tests share: the generated input, its Avro encoding, the processors'
//! final state read back from stores and topics, and the comparison with the independent
//! reference model (`connectors::reference`), reported as a list of differences.
#![allow(dead_code)]

pub mod kafka;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use connectors::reference::{self, ReferenceConfig, ReferenceOutput};
use connectors::{Event, Generator, GeneratorConfig};
use processors::analytics::{CashFlow, DailySpending};
use processors::balances::BalanceState;
use processors::budgets::UserBudgets;
use processors::goals::UserGoals;
use processors::stores;
use rust_decimal::Decimal;
use schemas::registry::SchemaRegistry;
use schemas::{AvroRecord, AvroSerde, BudgetAlert, GoalStatus, Notification};
use streams::window::decode_window_entry;
use streams::{DriverConfig, JsonSerde, Serde, StringSerde, TopologyTestDriver};

/// A raw record as read back from a topic or a store: key bytes, value bytes.
pub type Raw = (Vec<u8>, Vec<u8>);

/// Spending windows' grace in these tests: longer than the input, so no record is late. Lateness
/// depends on how repartitioned records from several upstream tasks interleave, i.e. on timing;
/// the driver tests in `processors/tests/analytics*.rs` pin the late path.
pub const GRACE_MS: i64 = 365 * 24 * 3_600_000;

/// The finance configuration of these tests.
pub fn finance_config() -> processors::FinanceConfig {
    let mut cfg = processors::FinanceConfig::default();
    cfg.analytics.grace_ms = GRACE_MS;
    cfg
}

/// The generated input and what the reference expects from it.
pub struct Input {
    pub events: Vec<Event>,
    pub expected: ReferenceOutput,
    /// USD rates of the input (they never change in the e2e preset).
    pub rates: BTreeMap<String, Decimal>,
}

pub fn input(seed: u64) -> Input {
    input_of(GeneratorConfig::e2e(seed))
}

/// The input of a generator configuration (an order-robust one: see `GeneratorConfig::e2e`).
pub fn input_of(generator: GeneratorConfig) -> Input {
    let (events, _labels) = Generator::generate_all(generator);
    let mut cfg = ReferenceConfig::default();
    cfg.analytics.grace_ms = GRACE_MS;
    let expected = reference::compute(&events, &cfg);
    let rates = events
        .iter()
        .filter_map(|e| match e {
            Event::Rate(r) => Some((r.currency.clone(), r.usd_rate)),
            _ => None,
        })
        .collect();
    Input { events, expected, rates }
}

/// Event time covered by one batch of [`Input::batches`]: the generator stamps budget and goal
/// changes at least four hours away from their user's transactions.
pub const BATCH_MS: i64 = 4 * 3_600_000;

impl Input {
    /// The events in delivery order, global tables first, cut into slices of [`BATCH_MS`] of
    /// event time (late events stay where they were delivered). Feeding one slice at a time and
    /// letting the pipeline catch up is how live traffic reaches it: a budget change is not
    /// processed before transactions hours older that travel through a repartition topic.
    pub fn batches(&self) -> Vec<Vec<&Event>> {
        let (globals, rest): (Vec<&Event>, Vec<&Event>) =
            self.events.iter().partition(|e| matches!(e, Event::Rate(_) | Event::Profile(_)));
        let mut out = vec![globals];
        let (mut high, mut current) = (i64::MIN, None);
        for ev in rest {
            high = high.max(ev.timestamp().0);
            let slice = high.div_euclid(BATCH_MS);
            if current != Some(slice) {
                current = Some(slice);
                out.push(Vec::new());
            }
            out.last_mut().expect("a batch").push(ev);
        }
        out
    }

    pub fn transactions(&self) -> usize {
        self.events.iter().filter(|e| matches!(e, Event::Transaction(_))).count()
    }
    pub fn users(&self) -> usize {
        self.events.iter().filter(|e| matches!(e, Event::Profile(_))).count()
    }
    /// Legs the balances processor applies, i.e. `account-balances` records expected.
    pub fn applied_legs(&self) -> i64 {
        self.expected.accounts.values().map(|a| a.applied_count).sum()
    }
}

fn encode_with<T: AvroRecord>(registry: &Arc<dyn SchemaRegistry>, topic: &str, v: &T) -> Vec<u8> {
    AvroSerde::<T>::new(registry.clone()).serialize(topic, v).expect("generated events encode")
}

/// The event's value in the Confluent wire format, its schema registered under `<topic>-value`.
pub fn encode(registry: &Arc<dyn SchemaRegistry>, ev: &Event) -> Vec<u8> {
    let topic = ev.topic();
    match ev {
        Event::Rate(v) => encode_with(registry, topic, v),
        Event::Profile(v) => encode_with(registry, topic, v),
        Event::Account(v) => encode_with(registry, topic, v),
        Event::Budget(v) => encode_with(registry, topic, v),
        Event::Goal(v) => encode_with(registry, topic, v),
        Event::Transaction(v) => encode_with(registry, topic, v),
    }
}

/// The clean run: the finance topology on the in-memory test driver (4 partitions), fed
/// `input` slice by slice.
pub fn drive(registry: &Arc<dyn SchemaRegistry>, input: &Input) -> TopologyTestDriver {
    let topology = processors::finance_topology(&finance_config(), registry.clone())
        .expect("the finance topology builds")
        .build("finance")
        .expect("the finance topology is valid");
    let mut d = TopologyTestDriver::new(topology, DriverConfig { partitions: 4, ..Default::default() })
        .expect("the driver starts");
    for batch in input.batches() {
        for ev in batch {
            let value = encode(registry, ev);
            d.append_raw(ev.topic(), Some(ev.key().as_bytes().to_vec()), Some(value), ev.timestamp().0);
        }
        d.run().expect("the clean run processes its input");
    }
    d
}

/// Driver output records as (key, value).
pub fn raw(records: Vec<streams::OutRecord>) -> Vec<Raw> {
    records.into_iter().map(|r| (r.key.unwrap_or_default(), r.value.unwrap_or_default())).collect()
}

/// Decodes an output topic's values (Avro, Confluent wire format).
pub fn decode_all<T: AvroRecord>(registry: &Arc<dyn SchemaRegistry>, topic: &str, records: &[Raw]) -> Vec<T> {
    let serde = AvroSerde::<T>::new(registry.clone()).without_validation();
    records.iter().map(|(_, v)| serde.deserialize(topic, v).expect("output decodes")).collect()
}

fn json_store<V: serde::de::DeserializeOwned>(raw: Vec<Raw>) -> BTreeMap<String, V> {
    raw.into_iter()
        .map(|(k, v)| (String::from_utf8(k).expect("utf-8 key"), serde_json::from_slice(&v).expect("store value")))
        .collect()
}

/// The processors' final state and outputs.
pub struct Actual {
    pub balances: BTreeMap<String, BalanceState>,
    pub budgets: BTreeMap<String, UserBudgets>,
    pub goals: BTreeMap<String, UserGoals>,
    /// `spending-daily` window store: (user, category symbol, window start) → window.
    pub spending: BTreeMap<(String, String, i64), DailySpending>,
    /// `cash-flow` store: (user, `YYYY-MM`) → month.
    pub cash_flow: BTreeMap<(String, String), CashFlow>,
    /// Records on `account-balances`.
    pub balance_records: usize,
    /// `alert_id`s on `budget-alerts`, in order (duplicates would show).
    pub alert_ids: Vec<String>,
    /// `notification_id`s on `notifications`, in order.
    pub notification_ids: Vec<String>,
    /// Records per dead-letter topic.
    pub dead_letters: BTreeMap<String, usize>,
    /// Ignored duplicates per processor node (`finstream_processor_events_total{event="duplicate"}`);
    /// `None` when no one process saw every record (instances that were killed took their
    /// counters with them), then only the outcomes of deduplication are compared.
    pub duplicates: Option<BTreeMap<String, u64>>,
}

/// Dead-letter topics the finance topology can write, by input name.
pub fn dlq_topics(app: &str) -> Vec<String> {
    ["transactions", "accounts", "budgets", "financial-goals"]
        .iter()
        .map(|t| format!("{t}-dlq"))
        .chain(
            ["transfer-credits", "transactions-by-user", "transfers-in-by-user"]
                .iter()
                .map(|r| format!("{app}-{r}-repartition-dlq")),
        )
        .collect()
}

impl Actual {
    /// `store(name)` returns a store's committed entries; `topic(name)` a topic's records;
    /// `metrics` those of the one process that processed everything, if there is one.
    pub fn read(
        registry: &Arc<dyn SchemaRegistry>,
        app: &str,
        metrics: Option<&streams::StreamsMetrics>,
        store: impl Fn(&str) -> Vec<Raw>,
        topic: impl Fn(&str) -> Vec<Raw>,
    ) -> Actual {
        let alerts: Vec<BudgetAlert> = decode_all(registry, "budget-alerts", &topic("budget-alerts"));
        let notifications: Vec<Notification> = decode_all(registry, "notifications", &topic("notifications"));
        let duplicates = metrics.map(|metrics| {
            ["balances", "balance-credits", "budgets", "goals"]
                .iter()
                .map(|n| (n.to_string(), metrics.events.with_label_values(&[n, "duplicate"]).get()))
                .collect()
        });
        Actual {
            balances: json_store(store(stores::BALANCES)),
            budgets: json_store(store(stores::BUDGETS)),
            goals: json_store(store(stores::GOALS)),
            spending: store(stores::SPENDING_DAILY)
                .iter()
                .filter_map(|(k, v)| {
                    decode_window_entry(
                        &StringSerde,
                        &JsonSerde::<DailySpending>::default(),
                        stores::SPENDING_DAILY,
                        k,
                        v,
                    )
                })
                .map(|(_, start, w)| ((w.user_id.clone(), w.category.symbol().to_string(), start), w))
                .collect(),
            cash_flow: json_store::<CashFlow>(store(stores::CASH_FLOW))
                .into_values()
                .map(|c| ((c.user_id.clone(), c.month.clone()), c))
                .collect(),
            balance_records: topic("account-balances").len(),
            alert_ids: alerts.into_iter().map(|a| a.alert_id).collect(),
            notification_ids: notifications.into_iter().map(|n| n.notification_id).collect(),
            dead_letters: dlq_topics(app).into_iter().map(|t| (t.clone(), topic(&t).len())).collect(),
            duplicates,
        }
    }
}

/// Every difference between the processors' results and the reference; empty when they agree.
pub fn differences(actual: &Actual, input: &Input) -> Vec<String> {
    let mut out = Vec::new();
    let exp = &input.expected;

    // Balances: every account, to the last minor unit.
    for (id, e) in &exp.accounts {
        match actual.balances.get(id) {
            None => out.push(format!("account {id}: missing (expected balance {})", e.balance)),
            Some(a) => {
                let got = (&a.user_id, a.balance, &a.currency, a.applied_count);
                let want = (&e.user_id, e.balance, &e.currency, e.applied_count);
                if got != want {
                    out.push(format!("account {id}: (user, balance, currency, legs) {got:?}, expected {want:?}"));
                }
            }
        }
    }
    for id in actual.balances.keys().filter(|id| !exp.accounts.contains_key(*id)) {
        out.push(format!("account {id}: not expected"));
    }
    if actual.balance_records as i64 != input.applied_legs() {
        out.push(format!(
            "account-balances: {} records, expected one per applied leg: {}",
            actual.balance_records,
            input.applied_legs()
        ));
    }

    // Budgets: spending per (budget, period) and every alert, once.
    let stored_alerts: BTreeSet<String> = actual.budgets.values().flat_map(|b| b.alerts.iter().cloned()).collect();
    let expected_alerts = exp.alert_ids();
    set_difference(&mut out, "alert ids in the budgets store", &stored_alerts, &expected_alerts);
    once_each(&mut out, "budget-alerts", &actual.alert_ids, &expected_alerts);
    for e in exp.budgets.values().filter(|b| !b.deleted) {
        let Some(user) = actual.budgets.get(&e.user_id) else {
            out.push(format!("budget {}: user {} has no budgets state", e.budget_id, e.user_id));
            continue;
        };
        let Some(b) = user.budgets.get(&e.budget_id) else {
            out.push(format!("budget {}: missing", e.budget_id));
            continue;
        };
        let latest = exp.budgets.range((e.budget_id.clone(), i64::MIN)..=(e.budget_id.clone(), i64::MAX)).next_back();
        let is_latest = latest.is_some_and(|(_, l)| l.period_start == e.period_start);
        if is_latest && (b.limit, &b.currency, b.category) != (e.limit, &e.currency, e.category) {
            out.push(format!("budget {}: limit/currency/category differ: {b:?} vs {e:?}", e.budget_id));
        }
        match spent(user, e.category.symbol(), e.period, e.period_start_date, &e.currency, &input.rates) {
            Some(s) if s == e.spent => {}
            got => out.push(format!(
                "budget {} period {}: spent {got:?}, expected {}",
                e.budget_id, e.period_start_date, e.spent
            )),
        }
    }

    // Goals: saved, percent, status, milestones; deleted goals are forgotten.
    let goals: BTreeMap<&String, &processors::goals::GoalState> =
        actual.goals.values().flat_map(|u| u.goals.iter()).collect();
    for (id, e) in &exp.goals {
        match (goals.get(id), e.status) {
            (None, GoalStatus::Deleted) => {}
            (Some(_), GoalStatus::Deleted) => out.push(format!("goal {id}: deleted, still tracked")),
            (None, _) => out.push(format!("goal {id}: missing")),
            (Some(a), _) => {
                let status = if a.achieved { GoalStatus::Achieved } else { GoalStatus::InProgress };
                let milestones: BTreeSet<i32> = a.milestones.iter().copied().collect();
                let got = (a.saved, a.percent(), status, &milestones, a.target, &a.currency);
                let want = (e.saved, e.percent, e.status, &e.milestones, e.target, &e.currency);
                if got != want {
                    out.push(format!(
                        "goal {id}: (saved, percent, status, milestones, target, currency) {got:?}, expected {want:?}"
                    ));
                }
            }
        }
    }
    for id in goals.keys().filter(|id| !exp.goals.contains_key(**id)) {
        out.push(format!("goal {id}: not expected"));
    }

    // Spending analytics: every daily window and every month of cash flow.
    for (key, e) in &exp.spending_daily {
        let got = actual.spending.get(key).map(|w| (w.window_end, w.total, w.count, &w.currency));
        if got != Some((e.window_end, e.total, e.count, &e.currency)) {
            out.push(format!("spending window {key:?}: {got:?}, expected {e:?}"));
        }
    }
    for key in actual.spending.keys().filter(|k| !exp.spending_daily.contains_key(*k)) {
        out.push(format!("spending window {key:?}: not expected"));
    }
    if !exp.late_records.is_empty() {
        out.push(format!(
            "the reference found {} late records; the grace should exceed the input",
            exp.late_records.len()
        ));
    }
    for (key, e) in &exp.cash_flow {
        let got = actual
            .cash_flow
            .get(key)
            .map(|c| (c.money_in, c.money_out, c.transfers_out, c.transfers_in, c.count, &c.currency));
        let want = (e.money_in, e.money_out, e.transfers_out, e.transfers_in, e.count, &e.currency);
        if got != Some(want) {
            out.push(format!("cash flow {key:?}: {got:?}, expected {want:?}"));
        }
    }
    for key in actual.cash_flow.keys().filter(|k| !exp.cash_flow.contains_key(*k)) {
        out.push(format!("cash flow {key:?}: not expected"));
    }

    // Notifications (fraud alerts belong to the fraud issue's checks).
    let money_notifications: Vec<String> =
        actual.notification_ids.iter().filter(|n| !n.starts_with("fraud:")).cloned().collect();
    once_each(&mut out, "notifications", &money_notifications, &exp.notifications);

    // Duplicates and dead letters.
    if let Some(duplicates) = &actual.duplicates {
        let dup = |n: &str| duplicates.get(n).copied().unwrap_or(0);
        let got = (dup("balances") + dup("balance-credits"), dup("budgets"), dup("goals"));
        let want = (exp.duplicates.balances, exp.duplicates.budgets, exp.duplicates.goals);
        if got != want {
            out.push(format!("duplicates (balance legs, budgets, goals): {got:?}, expected {want:?}"));
        }
    }
    let dead: usize = actual.dead_letters.values().sum();
    if dead != exp.dead_letters.len() {
        out.push(format!(
            "dead letters: {:?}, expected {} ({:?})",
            actual.dead_letters,
            exp.dead_letters.len(),
            exp.dead_letters
        ));
    }
    out
}

/// The processors' `spent` for one budget period, from their per-day, per-currency sums, each
/// currency's sum converted once (docs/money-rules.md, "Budgets").
fn spent(
    user: &UserBudgets,
    category: &str,
    period: schemas::BudgetPeriod,
    start: chrono::NaiveDate,
    currency: &str,
    rates: &BTreeMap<String, Decimal>,
) -> Option<Decimal> {
    let (from, to) = reference::period_dates(period, start);
    let (from, to) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
    let mut per_currency: BTreeMap<&str, Decimal> = BTreeMap::new();
    if let Some(days) = user.spending.get(category) {
        for (_, sums) in days.range(from..to) {
            for (c, v) in sums {
                *per_currency.entry(c).or_default() += *v;
            }
        }
    }
    per_currency.into_iter().map(|(c, v)| reference::convert(v, c, currency, rates)).sum()
}

fn set_difference(out: &mut Vec<String>, what: &str, got: &BTreeSet<String>, want: &BTreeSet<String>) {
    let missing: Vec<_> = want.difference(got).take(10).collect();
    let extra: Vec<_> = got.difference(want).take(10).collect();
    if !missing.is_empty() || !extra.is_empty() {
        out.push(format!(
            "{what}: {} missing (e.g. {missing:?}), {} unexpected (e.g. {extra:?})",
            want.difference(got).count(),
            got.difference(want).count()
        ));
    }
}

/// `ids` (as written to a topic) hold each expected id exactly once and nothing else.
fn once_each(out: &mut Vec<String>, topic: &str, ids: &[String], want: &BTreeSet<String>) {
    let mut seen = BTreeSet::new();
    let repeated: Vec<&String> = ids.iter().filter(|id| !seen.insert(id.as_str())).take(10).collect();
    if !repeated.is_empty() {
        out.push(format!("{topic}: ids written more than once, e.g. {repeated:?}"));
    }
    let got: BTreeSet<String> = ids.iter().cloned().collect();
    set_difference(out, topic, &got, want);
}

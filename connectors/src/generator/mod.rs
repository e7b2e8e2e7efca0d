//! Deterministic synthetic finance data: the core of `finstream generate` (issue 7), without
//! Kafka. A [`Generator`] yields input [`Event`]s in delivery order; a caller produces each one to
//! [`Event::topic`] with [`Event::key`] and [`Event::timestamp`].
//!
//! # What it makes
//! Users with a profile (base currency, IANA timezone, home country; a few keep the app default
//! `UTC` and, unless [`GeneratorConfig::profile_updates`] is off, fix it later), one to three
//! accounts (checking in the base currency, often a savings account, sometimes an account in a
//! foreign currency), each with its ACCOUNT_OPENED record before its first transaction, budgets (MONTHLY and WEEKLY, occasionally raised, lowered or deleted),
//! goals (linked to a savings account or fed by `goal_id` tags), and daily life in the user's
//! timezone between 07:00 and 23:00: monthly salary and rent, utilities, weekly groceries, dining,
//! transport, shopping, ATM withdrawals, transfers to own and other users' accounts, refunds days
//! after a purchase, fees, monthly interest on savings, trips abroad paid in the local currency,
//! PENDING purchases completed a day or two later under the same `transaction_id`, declined
//! (FAILED) purchases, and goal deposits. Exchange rates for every currency used come first; with
//! [`GeneratorConfig::rate_updates`] they then move slowly (one update per currency per day).
//!
//! A share of transactions is delivered twice ([`GeneratorConfig::duplicate_ratio`]: an exact copy
//! seconds to minutes later) or late ([`GeneratorConfig::late_ratio`]: delivered 10 minutes to
//! [`GeneratorConfig::max_late_ms`] after its `occurred_at`, so after events that happened later).
//! With [`GeneratorConfig::fraud`], labelled fraud scenarios are mixed in; their labels are only
//! available through [`Generator::labels`], never inside the events.
//!
//! # Timestamps
//! Every event of a user has its own timestamp: strictly increasing per user in delivery order,
//! except deliberate late events (and exact duplicates, which repeat their original). The
//! millisecond part of a user's timestamps is `user index % 1000`, so with at most 1000 users no two
//! events of different users tie either. Rates are stamped before every profile, profiles before
//! everything else.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Days, NaiveDate, TimeZone};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use schemas::{
    AccountEvent, AccountEventType, AccountType, BudgetAction, BudgetEvent, BudgetPeriod, Category, Channel, DateDays,
    ExchangeRate, GoalEvent, GoalEventType, Location, Merchant, TimestampMillis, TransactionEvent, TransactionKind,
    TransactionStatus, UserProfile,
};
use serde::{Deserialize, Serialize};

use crate::event::Event;

mod delivery;
mod fraud;
mod life;
mod setup;

const SECOND: i64 = 1000;
/// Life days before fraud scenarios may start (see `life`).
const FRAUD_WARM_UP_DAYS: u32 = 10;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// What to generate. See [`GeneratorConfig::default`] and [`GeneratorConfig::e2e`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// Same seed (and config) → the same events, byte for byte.
    pub seed: u64,
    /// Number of users (default 50).
    pub users: usize,
    /// Event-time start, epoch millis (default 2026-03-02T00:00:00Z, a Monday). Rates and profiles
    /// are stamped from here, then a set-up day (opening deposits, budgets, goals).
    pub start_ms: i64,
    /// Days of daily life after the set-up day (default 30).
    pub days: u32,
    /// Share of transactions delivered a second time, seconds to minutes later (default 0.01).
    pub duplicate_ratio: f64,
    /// Share of transactions delivered late (default 0.01).
    pub late_ratio: f64,
    /// Longest delivery delay of a late transaction (default 6 h).
    pub max_late_ms: i64,
    /// Mix in labelled fraud scenarios (default false).
    pub fraud: bool,
    /// Exchange rates move slowly, one update per currency per day (default true).
    pub rate_updates: bool,
    /// Users who kept the default `UTC` timezone fix it during the run (default true).
    pub profile_updates: bool,
    /// Make results independent of the processing order the engine can only approximate; see
    /// [`GeneratorConfig::e2e`] (default false).
    pub order_robust: bool,
    /// Budgets and goals change after the set-up day: limits and targets set again, some
    /// deleted (default true). Without changes every budget and goal is set once, before any
    /// transaction, so no outcome depends on which version a transaction meets: the input of a
    /// backfill, where direct inputs run ahead of repartitioned transactions (see
    /// [`GeneratorConfig::backfill`]).
    #[serde(default = "yes")]
    pub settings_changes: bool,
    /// Prefix of every generated id, so runs with different prefixes never collide (default "").
    pub id_prefix: String,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 42,
            users: 50,
            start_ms: NaiveDate::from_ymd_opt(2026, 3, 2)
                .expect("date")
                .and_hms_opt(0, 0, 0)
                .expect("time")
                .and_utc()
                .timestamp_millis(),
            days: 30,
            duplicate_ratio: 0.01,
            late_ratio: 0.01,
            max_late_ms: 6 * HOUR,
            fraud: false,
            rate_updates: true,
            profile_updates: true,
            order_robust: false,
            settings_changes: true,
            id_prefix: String::new(),
        }
    }
}

impl GeneratorConfig {
    /// The end-to-end test's input: 260 users over 75 days of life (over 20,000 transactions),
    /// 2 % duplicates, 1 % late, no fraud.
    ///
    /// The engine processes each partition in order and merges co-partitioned inputs by
    /// timestamp, but some orders it can only approximate: global tables (rates, profiles) are
    /// updated by their own thread, transfer credit legs reach the counterparty through a
    /// repartition topic, a user's transactions from different accounts reach budgets and goals
    /// through another, and late events sit where they were delivered. The reference model assumes
    /// timestamp order; this preset makes every checked result independent of those differences:
    /// - rates and profiles are all emitted first and never change, so every conversion and every
    ///   local date is the same whenever a record is processed;
    /// - balances and `applied_count` are sums, which commute; every account's own first COMPLETED
    ///   transaction (its opening deposit, never late) is stamped on the set-up day, over a day
    ///   before any transfer into it, so its currency is well defined; an account's last leg is a
    ///   closing INTEREST stamped after two quiet days, so `last_transaction_id` is unambiguous;
    /// - no balance ever goes below a safety margin, whatever order credits arrive in (the
    ///   generator counts a credit as available only two days after it), so there is no
    ///   LOW_BALANCE notification whose existence depends on order;
    /// - all spending that budgets count (PAYMENT, WITHDRAWAL, FEE, REFUND in a budgeted category)
    ///   is on the user's checking account, i.e. comes from one partition in order, and refunds
    ///   follow their purchase by days;
    /// - goals only ever gain money (no debits from a goal's account, no negative tagged kinds), so
    ///   the milestones reached only depend on the final sum and the goal's target;
    /// - budget and goal changes after set-up are stamped at 03:00–04:00 local time, at least four
    ///   hours from any transaction of that user;
    /// - only order-insensitive transactions are late: untagged DEPOSITs into accounts no goal is
    ///   linked to (never an opening deposit).
    pub fn e2e(seed: u64) -> Self {
        GeneratorConfig {
            seed,
            users: 260,
            days: 75,
            duplicate_ratio: 0.02,
            late_ratio: 0.01,
            fraud: false,
            rate_updates: false,
            profile_updates: false,
            order_robust: true,
            ..GeneratorConfig::default()
        }
    }

    /// The e2e preset for a backfill or catch-up (input already in the topics when the
    /// application starts): budgets and goals are set once on the set-up day and never change,
    /// since which version of a budget or goal a transaction meets depends on processing order
    /// there (docs/money-rules.md, "Processing order").
    pub fn backfill(seed: u64) -> Self {
        GeneratorConfig { settings_changes: false, ..GeneratorConfig::e2e(seed) }
    }
}

fn yes() -> bool {
    true
}

/// A fraud scenario the generator can mix in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FraudScenario {
    /// A burst of tiny online payments at one merchant at night, many declined.
    CardTesting,
    /// Two card payments far apart in space and close in time: the cardholder's own purchase at
    /// home (not labelled) and, 20-60 minutes later, the stolen card used abroad (labelled).
    ImpossibleTravel,
    /// Quick large withdrawals and transfers out emptying the account (90 % of it in 3-5 steps
    /// a few minutes apart, at night).
    AccountDrain,
    /// One purchase many times larger than the user's usual ones.
    LargeAnomalousPurchase,
}

/// Ground truth for one fraudulent transaction (written to a side file by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudLabel {
    pub transaction_id: String,
    pub account_id: String,
    pub user_id: String,
    pub scenario: FraudScenario,
    /// Groups the transactions of one scenario instance.
    pub scenario_id: String,
    pub occurred_at: i64,
}

struct Place {
    country: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    tz: &'static str,
    currency: &'static str,
}

const fn place(
    country: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    tz: &'static str,
    currency: &'static str,
) -> Place {
    Place { country, city, lat, lon, tz, currency }
}

/// Homes, with their weight.
const HOMES: &[(Place, u32)] = &[
    (place("US", "New York", 40.7128, -74.006, "America/New_York", "USD"), 20),
    (place("US", "San Francisco", 37.7749, -122.4194, "America/Los_Angeles", "USD"), 10),
    (place("GB", "London", 51.5074, -0.1278, "Europe/London", "GBP"), 12),
    (place("DE", "Berlin", 52.52, 13.405, "Europe/Berlin", "EUR"), 10),
    (place("FR", "Paris", 48.8566, 2.3522, "Europe/Paris", "EUR"), 8),
    (place("JP", "Tokyo", 35.6762, 139.6503, "Asia/Tokyo", "JPY"), 10),
    (place("KW", "Kuwait City", 29.3759, 47.9774, "Asia/Kuwait", "KWD"), 6),
    (place("CH", "Zurich", 47.3769, 8.5417, "Europe/Zurich", "CHF"), 6),
    (place("AU", "Sydney", -33.8688, 151.2093, "Australia/Sydney", "AUD"), 5),
    (place("IN", "Mumbai", 19.076, 72.8777, "Asia/Kolkata", "INR"), 5),
    (place("CA", "Toronto", 43.6532, -79.3832, "America/Toronto", "CAD"), 5),
    (place("BH", "Manama", 26.2285, 50.586, "Asia/Bahrain", "BHD"), 3),
];

/// Travel destinations (besides other homes).
const TRIPS: &[Place] = &[
    place("TH", "Bangkok", 13.7563, 100.5018, "Asia/Bangkok", "THB"),
    place("MX", "Mexico City", 19.4326, -99.1332, "America/Mexico_City", "MXN"),
    place("TR", "Istanbul", 41.0082, 28.9784, "Europe/Istanbul", "TRY"),
    place("ES", "Barcelona", 41.3874, 2.1686, "Europe/Madrid", "EUR"),
    place("US", "Miami", 25.7617, -80.1918, "America/New_York", "USD"),
    place("GB", "Edinburgh", 55.9533, -3.1883, "Europe/London", "GBP"),
    place("JP", "Osaka", 34.6937, 135.5023, "Asia/Tokyo", "JPY"),
];

/// Starting value of one unit in USD.
const RATES: &[(&str, &str)] = &[
    ("AUD", "0.6600"),
    ("BHD", "2.6596"),
    ("CAD", "0.7400"),
    ("CHF", "1.1300"),
    ("EUR", "1.0850"),
    ("GBP", "1.2650"),
    ("INR", "0.0120"),
    ("JPY", "0.006700"),
    ("KWD", "3.2500"),
    ("MXN", "0.0580"),
    ("THB", "0.0280"),
    ("TRY", "0.0310"),
    ("USD", "1"),
];

/// Categories budgets are set on, with their period.
const BUDGETED: &[(Category, BudgetPeriod)] = &[
    (Category::Groceries, BudgetPeriod::Monthly),
    (Category::Dining, BudgetPeriod::Weekly),
    (Category::Transport, BudgetPeriod::Monthly),
    (Category::Shopping, BudgetPeriod::Monthly),
    (Category::Entertainment, BudgetPeriod::Weekly),
];

fn merchants(cat: Category) -> (&'static [&'static str], &'static str) {
    match cat {
        Category::Groceries => (&["FreshMart", "Green Grocer", "SuperSave", "Corner Market"], "5411"),
        Category::Dining => (&["Luigi's", "Sushi Go", "The Daily Grind", "Burger Barn", "Taco Stand"], "5812"),
        Category::Transport => (&["Metro Transit", "CityCab", "RideNow", "FuelStop"], "4111"),
        Category::Utilities => (&["PowerCo", "AquaWorks", "FiberNet"], "4900"),
        Category::Entertainment => (&["Cineplex", "StreamFlix", "Live Arena"], "7832"),
        Category::Shopping => (&["MegaStore", "StyleHub", "TechWorld", "BookNook"], "5311"),
        Category::Health => (&["CarePharmacy", "City Clinic"], "5912"),
        Category::Travel => (&["SkyAir", "Grand Hotel", "TravelDesk"], "4722"),
        Category::Rent => (&["Landlord Ltd"], "6513"),
        _ => (&["Misc Co"], "5999"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccountKind {
    Checking,
    Savings,
    Foreign,
}

struct Account {
    id: String,
    currency: &'static str,
    kind: AccountKind,
    /// Money the generator knows is there, in USD: debits at once, credits once mature.
    safe_usd: f64,
    /// Credits not yet counted in `safe_usd`: (occurred_at, usd).
    maturing: Vec<(i64, f64)>,
    /// A goal names this account (its money only grows in order-robust mode).
    goal_linked: bool,
}

struct BudgetPlan {
    id: String,
    category: Category,
    period: BudgetPeriod,
    currency: &'static str,
    limit: Decimal,
    alive: bool,
}

struct GoalPlan {
    id: String,
    name: String,
    currency: &'static str,
    target: Decimal,
    target_date: Option<DateDays>,
    account: Option<String>,
    alive: bool,
}

struct User {
    idx: usize,
    id: String,
    /// The zone the user lives in (life is scheduled in it).
    home_tz: Tz,
    home: &'static Place,
    /// What the profile says: the home zone or the app default "UTC".
    profile_tz: String,
    base: &'static str,
    accounts: Vec<Account>,
    /// Local date of the set-up day; life day `d` is `day0 + d`.
    day0: NaiveDate,
    salary_usd: f64,
    salary_day: u32,
    rent_usd: f64,
    rent_day: u32,
    grocery_weekday: u32,
    has_fee_plan: bool,
    budgets: Vec<BudgetPlan>,
    goals: Vec<GoalPlan>,
    /// Events planned for later days.
    scheduled: Vec<Item>,
    /// The trip in progress: (last local date, destination).
    trip: Option<(NaiveDate, &'static Place)>,
    fraud_done: bool,
    last_ts: i64,
}

#[derive(Clone, Copy, Default)]
struct Flags {
    /// May be delivered late.
    late_ok: bool,
    /// May get a refund later.
    refundable: bool,
    /// A PENDING record whose COMPLETED update is to be scheduled.
    complete_later: bool,
    /// Part of a fraud scenario (bypasses the balance check).
    fraud: Option<FraudScenario>,
}

struct Item {
    ts: i64,
    ev: Event,
    /// Index of the account the transaction is on (transactions only).
    account: usize,
    flags: Flags,
}

/// Yields events deterministically for a [`GeneratorConfig`].
pub struct Generator {
    cfg: GeneratorConfig,
    rng: ChaCha8Rng,
    users: Vec<User>,
    rates: BTreeMap<&'static str, Decimal>,
    /// Account id → (user, account index), to credit transfers.
    account_index: HashMap<String, (usize, usize)>,
    /// Events ready or waiting for delivery, by (delivery time, sequence).
    pending: BTreeMap<(i64, u64), Event>,
    seq: u64,
    /// Next batch: 0 = rates, profiles and set-up; 1..=days life; then closing (order-robust).
    next_batch: u32,
    txn_counter: u64,
    labels: Vec<FraudLabel>,
    scenario_counter: u64,
}

impl Generator {
    pub fn new(cfg: GeneratorConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let rates = RATES.iter().map(|(c, r)| (*c, r.parse::<Decimal>().expect("rate literal"))).collect();
        let mut g = Generator {
            cfg,
            rng,
            users: Vec::new(),
            rates,
            account_index: HashMap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            next_batch: 0,
            txn_counter: 0,
            labels: Vec::new(),
            scenario_counter: 0,
        };
        g.make_users();
        g
    }

    /// The configuration in use.
    pub fn config(&self) -> &GeneratorConfig {
        &self.cfg
    }

    /// The next event in delivery order, `None` at the end.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let last = self.last_batch();
            if self.next_batch > last {
                return self.pop_pending(i64::MAX);
            }
            let watermark = self.watermark(self.next_batch.saturating_sub(1));
            if self.next_batch > 0 {
                if let Some(e) = self.pop_pending(watermark) {
                    return Some(e);
                }
            }
            let b = self.next_batch;
            self.next_batch += 1;
            self.batch(b);
        }
    }

    /// Labels of the fraudulent transactions generated so far (complete once the iterator is
    /// exhausted). Never part of any event.
    pub fn labels(&self) -> &[FraudLabel] {
        &self.labels
    }

    /// All events of `cfg` and the fraud labels.
    pub fn generate_all(cfg: GeneratorConfig) -> (Vec<Event>, Vec<FraudLabel>) {
        let mut g = Generator::new(cfg);
        let events: Vec<Event> = g.by_ref().collect();
        (events, g.labels)
    }

    fn last_batch(&self) -> u32 {
        if self.cfg.order_robust {
            self.cfg.days + 2
        } else {
            self.cfg.days
        }
    }

    /// After batch `b`, no later batch has an event stamped before this: the earliest local
    /// midnight of day `b + 1` over all users.
    fn watermark(&self, b: u32) -> i64 {
        self.users
            .iter()
            .map(|u| local_ts(u.home_tz, u.day0 + Days::new(u64::from(b) + 1), 0))
            .min()
            .unwrap_or(i64::MAX)
    }

    fn pop_pending(&mut self, before: i64) -> Option<Event> {
        let (&key, _) = self.pending.iter().next()?;
        if key.0 >= before {
            return None;
        }
        self.pending.remove(&key)
    }

    fn deliver(&mut self, at: i64, ev: Event) {
        self.seq += 1;
        self.pending.insert((at, self.seq), ev);
    }

    fn id(&self, body: String) -> String {
        format!("{}{body}", self.cfg.id_prefix)
    }

    fn rate(&self, cur: &str) -> f64 {
        self.rates.get(cur).and_then(|r| r.to_f64()).unwrap_or(1.0)
    }

    /// `usd` worth of `cur`, rounded to its minor units (at least one minor unit).
    fn money(&self, usd: f64, cur: &str) -> Decimal {
        let minor = schemas::currency::minor_units(cur).unwrap_or(2);
        let v = Decimal::from_f64(usd / self.rate(cur)).unwrap_or(Decimal::ONE);
        let v = v.round_dp_with_strategy(minor, RoundingStrategy::MidpointNearestEven);
        v.max(Decimal::new(1, minor)).normalize()
    }

    /// A round amount (whole units) worth about `usd`.
    fn round_money(&self, usd: f64, cur: &str) -> Decimal {
        let v = (usd / self.rate(cur)).round().max(1.0);
        Decimal::from_f64(v).unwrap_or(Decimal::ONE).round_dp(0).normalize()
    }

    fn usd(&self, amount: Decimal, cur: &str) -> f64 {
        amount.to_f64().unwrap_or(0.0) * self.rate(cur)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p.min(1.0))
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        self.rng.random_range(lo..hi)
    }

    /// A random time of day between `from_h` and `to_h` hours, in seconds.
    fn time_of_day(&mut self, from_h: u32, to_h: u32) -> u32 {
        self.rng.random_range(from_h * 3600..to_h * 3600)
    }
}

impl Iterator for Generator {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        self.next_event()
    }
}

/// Typical monthly spending in a budgeted category, in USD.
fn expected_monthly_usd(cat: Category) -> f64 {
    match cat {
        Category::Groceries => 450.0,
        Category::Dining => 420.0,
        Category::Transport => 150.0,
        Category::Shopping => 600.0,
        Category::Entertainment => 200.0,
        _ => 100.0,
    }
}

fn set_timestamp(ev: &mut Event, ts: i64) {
    let ts = TimestampMillis(ts);
    match ev {
        Event::Rate(r) => r.as_of = ts,
        Event::Profile(p) => p.updated_at = ts,
        Event::Account(a) => a.occurred_at = ts,
        Event::Budget(b) => b.updated_at = ts,
        Event::Goal(g) => g.occurred_at = ts,
        Event::Transaction(t) => t.occurred_at = ts,
    }
}

/// UTC millis of `secs` after local midnight of `date` in `tz` (the earliest instant when the
/// local time is ambiguous, an hour later when it falls in a DST gap).
fn local_ts(tz: Tz, date: NaiveDate, secs: u32) -> i64 {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight") + chrono::Duration::seconds(i64::from(secs));
    match tz.from_local_datetime(&naive).earliest() {
        Some(dt) => dt.timestamp_millis(),
        None => tz
            .from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()
            .map(|dt| dt.timestamp_millis())
            .unwrap_or_else(|| naive.and_utc().timestamp_millis()),
    }
}

fn local_date(tz: Tz, ms: i64) -> NaiveDate {
    tz.timestamp_millis_opt(ms).single().map(|d| d.date_naive()).unwrap_or_default()
}

trait CategoryName {
    fn as_str_lower(&self) -> String;
}

impl CategoryName for Category {
    fn as_str_lower(&self) -> String {
        format!("{self}").to_lowercase()
    }
}

//! Deterministic synthetic finance data: the core of `finstream generate` (issue 7), without
//! Kafka. A [`Generator`] yields input [`Event`]s in delivery order; a caller produces each one to
//! [`Event::topic`] with [`Event::key`] and [`Event::timestamp`].
//!
//! # What it makes
//! Users with a profile (base currency, IANA timezone, home country; a few keep the app default
//! `UTC` and, unless [`GeneratorConfig::profile_updates`] is off, fix it later), one to three
//! accounts (checking in the base currency, often a savings account, sometimes an account in a
//! foreign currency), budgets (MONTHLY and WEEKLY, occasionally raised, lowered or deleted),
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
    BudgetAction, BudgetEvent, BudgetPeriod, Category, Channel, DateDays, ExchangeRate, GoalEvent, GoalEventType,
    Location, Merchant, TimestampMillis, TransactionEvent, TransactionKind, TransactionStatus, UserProfile,
};
use serde::{Deserialize, Serialize};

use crate::event::Event;

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

    // ------------------------------------------------------------------ set-up

    fn make_users(&mut self) {
        let total: u32 = HOMES.iter().map(|(_, w)| w).sum();
        for idx in 0..self.cfg.users {
            let mut pick = self.rng.random_range(0..total);
            let mut home = &HOMES[0].0;
            for (p, w) in HOMES {
                if pick < *w {
                    home = p;
                    break;
                }
                pick -= w;
            }
            let home_tz: Tz = home.tz.parse().expect("known zone");
            let profile_tz = if self.chance(0.06) { "UTC".to_string() } else { home.tz.to_string() };
            let id = self.id(format!("u{idx:05}"));
            let n_accounts = match self.rng.random_range(0..10) {
                0..=2 => 1,
                3..=7 => 2,
                _ => 3,
            };
            let mut accounts = Vec::new();
            for a in 0..n_accounts {
                let (kind, currency) = match a {
                    0 => (AccountKind::Checking, home.currency),
                    1 => (AccountKind::Savings, home.currency),
                    _ if self.chance(0.5) => (AccountKind::Savings, home.currency),
                    _ => (AccountKind::Foreign, if home.currency == "USD" { "EUR" } else { "USD" }),
                };
                let acc_id = self.id(format!("a{idx:05}-{}", a + 1));
                self.account_index.insert(acc_id.clone(), (idx, a));
                accounts.push(Account {
                    id: acc_id,
                    currency,
                    kind,
                    safe_usd: 0.0,
                    maturing: Vec::new(),
                    goal_linked: false,
                });
            }
            let salary_usd = self.between(2500.0, 9000.0);
            let day0 = local_date(home_tz, self.cfg.start_ms);
            let user = User {
                idx,
                id,
                home_tz,
                home,
                profile_tz,
                base: home.currency,
                accounts,
                day0,
                salary_usd,
                salary_day: self.rng.random_range(1..=28),
                rent_usd: salary_usd * self.between(0.22, 0.35),
                rent_day: self.rng.random_range(1..=5),
                grocery_weekday: self.rng.random_range(0..7),
                has_fee_plan: self.chance(0.5),
                budgets: Vec::new(),
                goals: Vec::new(),
                scheduled: Vec::new(),
                trip: None,
                fraud_done: false,
                last_ts: i64::MIN,
            };
            self.users.push(user);
        }
    }

    /// Batch 0: rates, profiles, then per user opening deposits, budgets and goals.
    fn setup(&mut self) {
        let start = self.cfg.start_ms;
        let rates: Vec<(&'static str, Decimal)> = self.rates.iter().map(|(c, r)| (*c, *r)).collect();
        for (i, (cur, r)) in rates.into_iter().enumerate() {
            let ev = Event::Rate(ExchangeRate {
                currency: cur.to_string(),
                usd_rate: r,
                as_of: TimestampMillis(start + i as i64),
            });
            self.deliver(start + i as i64, ev);
        }
        for u in 0..self.users.len() {
            let mut items = Vec::new();
            let user = &self.users[u];
            let profile = UserProfile {
                user_id: user.id.clone(),
                base_currency: user.base.to_string(),
                timezone: user.profile_tz.clone(),
                home_country: user.home.country.to_string(),
                updated_at: TimestampMillis(0),
            };
            items.push(Item { ts: start + MINUTE, ev: Event::Profile(profile), account: 0, flags: Flags::default() });
            // Opening deposits: about three months of salary on checking, some savings elsewhere.
            for a in 0..self.users[u].accounts.len() {
                let usd = match self.users[u].accounts[a].kind {
                    AccountKind::Checking => self.users[u].salary_usd * self.between(1.5, 3.0),
                    _ => self.users[u].salary_usd * self.between(0.2, 1.0),
                };
                let ts = start + HOUR + self.rng.random_range(0..2 * HOUR);
                let t = self.txn(u, a, TransactionKind::Deposit, usd, Category::Income, Channel::BankTransfer);
                items.push(Item { ts, ev: Event::Transaction(t), account: a, flags: Flags::default() });
            }
            // Budgets on two to four categories.
            let n = self.rng.random_range(2..=4);
            for k in 0..n {
                let (category, mut period) = BUDGETED[(u + k) % BUDGETED.len()];
                if self.chance(0.2) {
                    period = if period == BudgetPeriod::Weekly { BudgetPeriod::Monthly } else { BudgetPeriod::Weekly };
                }
                let monthly_usd = expected_monthly_usd(category);
                let per_period = if period == BudgetPeriod::Weekly { monthly_usd * 7.0 / 30.0 } else { monthly_usd };
                let base = self.users[u].base;
                let currency = if base != "USD" && self.chance(0.1) { "USD" } else { base };
                let factor = self.between(0.9, 2.2);
                let limit = self.round_money(per_period * factor, currency);
                let id = self.id(format!("b{u:05}-{}", k + 1));
                let plan = BudgetPlan { id, category, period, currency, limit, alive: true };
                let ts = start + 3 * HOUR + self.rng.random_range(0..2 * HOUR);
                items.push(self.budget_item(u, &plan, BudgetAction::Set, ts));
                self.users[u].budgets.push(plan);
            }
            // Goals: one linked to a savings account, and/or one fed by tags.
            let savings = self.users[u].accounts.iter().position(|a| a.kind == AccountKind::Savings);
            let monthly_saving = self.users[u].salary_usd * 0.15;
            let months = f64::from(self.cfg.days) / 30.0;
            if let Some(s) = savings.filter(|_| self.chance(0.5)) {
                let acc = self.users[u].accounts[s].id.clone();
                self.users[u].accounts[s].goal_linked = true;
                let target_usd = monthly_saving * months * self.between(0.8, 2.5);
                items.push(self.new_goal(u, "Emergency fund", Some(acc), target_usd, start + 5 * HOUR));
            }
            if self.chance(0.5) {
                let target_usd = monthly_saving * months * self.between(0.3, 1.2);
                items.push(self.new_goal(u, "Vacation", None, target_usd, start + 5 * HOUR + 30 * MINUTE));
            }
            self.schedule_items(u, items);
        }
    }

    fn new_goal(&mut self, u: usize, name: &str, account: Option<String>, target_usd: f64, ts: i64) -> Item {
        let base = self.users[u].base;
        let currency = if base != "USD" && self.chance(0.1) { "USD" } else { base };
        let n = self.users[u].goals.len() + 1;
        let id = self.id(format!("g{u:05}-{n}"));
        let target = self.round_money(target_usd.max(50.0), currency);
        let end = self.users[u].day0 + Days::new(u64::from(self.cfg.days) + 60);
        let target_date = Some(DateDays((end - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32));
        let plan = GoalPlan { id, name: name.to_string(), currency, target, target_date, account, alive: true };
        let item = self.goal_item(u, &plan, GoalEventType::GoalCreated, ts);
        self.users[u].goals.push(plan);
        item
    }

    fn budget_item(&self, u: usize, p: &BudgetPlan, action: BudgetAction, ts: i64) -> Item {
        let ev = Event::Budget(BudgetEvent {
            budget_id: p.id.clone(),
            user_id: self.users[u].id.clone(),
            category: p.category,
            limit: p.limit,
            currency: p.currency.to_string(),
            period: p.period,
            action,
            updated_at: TimestampMillis(0),
        });
        Item { ts, ev, account: 0, flags: Flags::default() }
    }

    fn goal_item(&self, u: usize, p: &GoalPlan, event_type: GoalEventType, ts: i64) -> Item {
        let ev = Event::Goal(GoalEvent {
            event_type,
            goal_id: p.id.clone(),
            user_id: self.users[u].id.clone(),
            name: p.name.clone(),
            target_amount: p.target,
            currency: p.currency.to_string(),
            target_date: p.target_date,
            account_id: p.account.clone(),
            occurred_at: TimestampMillis(0),
        });
        Item { ts, ev, account: 0, flags: Flags::default() }
    }

    /// A COMPLETED transaction of about `usd` in the account's currency (timestamp set later).
    fn txn(
        &mut self,
        u: usize,
        a: usize,
        kind: TransactionKind,
        usd: f64,
        category: Category,
        channel: Channel,
    ) -> TransactionEvent {
        let currency = self.users[u].accounts[a].currency;
        let amount = self.money(usd, currency);
        self.txn_in(u, a, kind, amount, currency, category, channel)
    }

    #[allow(clippy::too_many_arguments)]
    fn txn_in(
        &mut self,
        u: usize,
        a: usize,
        kind: TransactionKind,
        amount: Decimal,
        currency: &str,
        category: Category,
        channel: Channel,
    ) -> TransactionEvent {
        self.txn_counter += 1;
        let user = &self.users[u];
        let (merchant, location) = if matches!(channel, Channel::Card | Channel::Online)
            && matches!(kind, TransactionKind::Payment | TransactionKind::Refund)
        {
            let (names, mcc) = merchants(category);
            let i = self.rng.random_range(0..names.len());
            let place = user.trip.map(|(_, p)| p).unwrap_or(user.home);
            let m = Merchant {
                merchant_id: format!("m-{}-{}", category.as_str_lower(), i + 1),
                name: names[i].to_string(),
                mcc: mcc.to_string(),
            };
            let loc = (channel == Channel::Card).then(|| Location {
                country: place.country.to_string(),
                city: place.city.to_string(),
                lat: place.lat,
                lon: place.lon,
            });
            (Some(m), loc)
        } else {
            (None, None)
        };
        TransactionEvent {
            transaction_id: format!("{}t{:08}", self.cfg.id_prefix, self.txn_counter),
            account_id: user.accounts[a].id.clone(),
            user_id: user.id.clone(),
            kind,
            amount,
            currency: currency.to_string(),
            status: TransactionStatus::Completed,
            category,
            counterparty_account_id: None,
            merchant,
            goal_id: None,
            channel,
            location,
            occurred_at: TimestampMillis(0),
        }
    }

    // ------------------------------------------------------------------ batches

    fn batch(&mut self, b: u32) {
        if b == 0 {
            self.setup();
            return;
        }
        if b > self.cfg.days {
            if b == self.cfg.days + 2 {
                self.closing();
            }
            return;
        }
        if self.cfg.rate_updates {
            self.move_rates(b);
        }
        for u in 0..self.users.len() {
            let date = self.users[u].day0 + Days::new(u64::from(b));
            let mut items = self.life(u, date, b);
            // Events planned earlier for this date.
            let tz = self.users[u].home_tz;
            let (lo, hi) = (local_ts(tz, date, 0), local_ts(tz, date + Days::new(1), 0));
            let sched = std::mem::take(&mut self.users[u].scheduled);
            let (now, later): (Vec<Item>, Vec<Item>) = sched.into_iter().partition(|i| i.ts >= lo && i.ts < hi);
            self.users[u].scheduled = later;
            items.extend(now);
            self.schedule_items(u, items);
        }
    }

    fn move_rates(&mut self, b: u32) {
        let day_start = self.cfg.start_ms + i64::from(b) * DAY;
        let codes: Vec<&'static str> = self.rates.keys().copied().filter(|c| *c != "USD").collect();
        for (i, cur) in codes.into_iter().enumerate() {
            let step = self.between(-0.003, 0.003);
            let r = self.rates[cur];
            let moved = (r * Decimal::from_f64(1.0 + step).unwrap_or(Decimal::ONE)).round_dp(10).normalize();
            self.rates.insert(cur, moved);
            let ts = day_start + i as i64;
            self.deliver(
                ts,
                Event::Rate(ExchangeRate { currency: cur.to_string(), usd_rate: moved, as_of: TimestampMillis(ts) }),
            );
        }
    }

    /// Quiet time (order-robust: 03:00-04:00 local, away from any transaction) or a daytime moment.
    fn admin_time(&mut self, u: usize, date: NaiveDate) -> i64 {
        let tz = self.users[u].home_tz;
        let secs = if self.cfg.order_robust { self.time_of_day(3, 4) } else { self.time_of_day(7, 23) };
        local_ts(tz, date, secs)
    }

    /// One local day of a user's life.
    fn life(&mut self, u: usize, date: NaiveDate, b: u32) -> Vec<Item> {
        let mut items: Vec<Item> = Vec::new();
        let tz = self.users[u].home_tz;
        let at = |s: u32| local_ts(tz, date, s);
        let robust = self.cfg.order_robust;
        let dom = date.day();
        let last_dom = (date + Days::new(1)).day() == 1;
        let base = self.users[u].base;
        let has_savings = self.users[u].accounts.iter().position(|a| a.kind == AccountKind::Savings);
        let foreign = self.users[u].accounts.iter().position(|a| a.kind == AccountKind::Foreign);

        // Trips: start one now and then, end it when due. The day a trip starts and the day after
        // it ends the user is travelling: no card-present payments, so consecutive located
        // payments are always a flight apart (over 30 hours), never "impossible travel".
        let mut in_transit = false;
        if let Some((end, _)) = self.users[u].trip {
            if date > end {
                self.users[u].trip = None;
                in_transit = true;
            }
        } else if self.chance(0.012) {
            let i = self.rng.random_range(0..TRIPS.len() + HOMES.len());
            let dest = if i < TRIPS.len() { &TRIPS[i] } else { &HOMES[i - TRIPS.len()].0 };
            if dest.currency != base || dest.country != self.users[u].home.country {
                let len = self.rng.random_range(2..7);
                self.users[u].trip = Some((date + Days::new(len), dest));
                in_transit = true;
            }
        }
        let spend_currency = self.users[u].trip.map(|(_, p)| p.currency).unwrap_or(base);

        // Salary and rent.
        if dom == self.users[u].salary_day {
            let usd = self.users[u].salary_usd * self.between(0.98, 1.02);
            let ts = at(self.time_of_day(7, 9));
            let t = self.txn(u, 0, TransactionKind::Deposit, usd, Category::Income, Channel::BankTransfer);
            items.push(Item {
                ts,
                ev: Event::Transaction(t),
                account: 0,
                flags: Flags { late_ok: true, ..Flags::default() },
            });
            // Part of it goes to savings the next morning (scheduled now, on the next date).
            if let Some(s) = has_savings.filter(|_| b > 0) {
                let usd = self.users[u].salary_usd * self.between(0.08, 0.2);
                let ts = local_ts(tz, date + Days::new(1), self.time_of_day(8, 10));
                let mut t = self.txn(u, 0, TransactionKind::Transfer, usd, Category::Savings, Channel::Mobile);
                t.counterparty_account_id = Some(self.users[u].accounts[s].id.clone());
                t.goal_id = self.tag_goal(u, 0.7);
                self.users[u].scheduled.push(Item {
                    ts,
                    ev: Event::Transaction(t),
                    account: 0,
                    flags: Flags::default(),
                });
            }
        }
        if dom == self.users[u].rent_day {
            let usd = self.users[u].rent_usd;
            let ts = at(self.time_of_day(9, 11));
            let t = self.txn(u, 0, TransactionKind::Payment, usd, Category::Rent, Channel::BankTransfer);
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        if dom == 10 {
            let usd = self.between(60.0, 220.0);
            let ts = at(self.time_of_day(9, 12));
            let t = self.txn(u, 0, TransactionKind::Payment, usd, Category::Utilities, Channel::BankTransfer);
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        if dom == 1 && self.users[u].has_fee_plan {
            let usd = self.between(2.0, 10.0);
            let ts = at(self.time_of_day(7, 8));
            let t = self.txn(u, 0, TransactionKind::Fee, usd, Category::Other, Channel::BankTransfer);
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        if last_dom {
            for a in 0..self.users[u].accounts.len() {
                if self.users[u].accounts[a].kind == AccountKind::Savings {
                    let usd = (self.users[u].accounts[a].safe_usd * 0.003).max(0.05);
                    let ts = at(self.time_of_day(7, 8));
                    let t = self.txn(u, a, TransactionKind::Interest, usd, Category::Savings, Channel::BankTransfer);
                    items.push(Item { ts, ev: Event::Transaction(t), account: a, flags: Flags::default() });
                }
            }
        }

        // Everyday spending on checking (in the local currency while abroad).
        let weekday = date.weekday().num_days_from_monday();
        let mut spend = Vec::new();
        if weekday == self.users[u].grocery_weekday || self.chance(0.05) {
            spend.push((Category::Groceries, self.between(40.0, 160.0), (16, 21)));
        }
        if self.chance(0.4) {
            spend.push((Category::Dining, self.between(8.0, 70.0), if self.chance(0.5) { (12, 14) } else { (19, 22) }));
        }
        if weekday < 5 && self.chance(0.55) {
            spend.push((Category::Transport, self.between(2.0, 25.0), (7, 9)));
        }
        if self.chance(0.15) {
            spend.push((Category::Shopping, self.between(15.0, 250.0), (10, 20)));
        }
        if self.chance(0.1) {
            spend.push((Category::Entertainment, self.between(10.0, 80.0), (18, 22)));
        }
        if self.chance(0.04) {
            spend.push((Category::Health, self.between(10.0, 120.0), (9, 18)));
        }
        if self.users[u].trip.is_some() && self.chance(0.5) {
            spend.push((Category::Travel, self.between(50.0, 300.0), (9, 21)));
        }
        for (cat, usd, (h0, h1)) in spend {
            let online = matches!(cat, Category::Shopping | Category::Entertainment) && self.chance(0.4);
            let channel = if online { Channel::Online } else { Channel::Card };
            if in_transit && channel == Channel::Card {
                continue;
            }
            let amount = self.money(usd, spend_currency);
            let mut t = self.txn_in(u, 0, TransactionKind::Payment, amount, spend_currency, cat, channel);
            let ts = at(self.time_of_day(h0, h1));
            let mut flags = Flags { refundable: true, ..Flags::default() };
            let r: f64 = self.rng.random();
            if r < 0.02 {
                t.status = TransactionStatus::Failed;
            } else if r < 0.05 {
                t.status = TransactionStatus::Pending;
                flags.complete_later = true;
            }
            let abroad = spend_currency != self.users[u].accounts[0].currency;
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags });
            if abroad && self.chance(0.5) {
                // Foreign transaction fee, on the account's currency.
                let fee = self.money(usd * 0.025, self.users[u].accounts[0].currency);
                let acc_cur = self.users[u].accounts[0].currency;
                let f = self.txn_in(u, 0, TransactionKind::Fee, fee, acc_cur, Category::Other, Channel::Card);
                items.push(Item { ts: ts + MINUTE, ev: Event::Transaction(f), account: 0, flags: Flags::default() });
            }
        }
        // Online purchase from abroad in another currency now and then.
        if self.chance(0.02) {
            let cur = ["USD", "EUR", "GBP", "JPY"][self.rng.random_range(0..4)];
            let usd = self.rng.random_range(10.0..120.0);
            let amount = self.money(usd, cur);
            let t = self.txn_in(u, 0, TransactionKind::Payment, amount, cur, Category::Shopping, Channel::Online);
            let ts = at(self.time_of_day(10, 22));
            items.push(Item {
                ts,
                ev: Event::Transaction(t),
                account: 0,
                flags: Flags { refundable: true, ..Flags::default() },
            });
        }
        // ATM.
        if self.chance(0.04) {
            let usd = self.rng.random_range(20.0..200.0);
            let amount = self.round_money(usd, spend_currency);
            let t =
                self.txn_in(u, 0, TransactionKind::Withdrawal, amount, spend_currency, Category::Other, Channel::Atm);
            let ts = at(self.time_of_day(8, 22));
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        // Transfers to other users (from day 2 on: every account has long been opened).
        if b >= 2 && self.users.len() > 1 && self.chance(0.04) {
            let mut v = self.rng.random_range(0..self.users.len() - 1);
            if v >= u {
                v += 1;
            }
            let usd = self.between(10.0, 150.0);
            let ts = at(self.time_of_day(9, 22));
            let mut t = self.txn(u, 0, TransactionKind::Transfer, usd, Category::Other, Channel::Mobile);
            t.counterparty_account_id = Some(self.users[v].accounts[0].id.clone());
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        // To the foreign-currency account (converted on the credit leg), and spending from it.
        if let Some(f) = foreign.filter(|_| b >= 2) {
            if self.chance(0.02) {
                let usd = self.between(50.0, 400.0);
                let ts = at(self.time_of_day(9, 21));
                let mut t = self.txn(u, 0, TransactionKind::Transfer, usd, Category::Savings, Channel::Mobile);
                t.counterparty_account_id = Some(self.users[u].accounts[f].id.clone());
                items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
            }
            if self.chance(0.03) {
                let usd = self.between(10.0, 90.0);
                let ts = at(self.time_of_day(10, 21));
                let t = self.txn(u, f, TransactionKind::Payment, usd, Category::Travel, Channel::Online);
                items.push(Item { ts, ev: Event::Transaction(t), account: f, flags: Flags::default() });
            }
        }
        // Savings: gifts toward goals, and (unless order-robust) taking money back out.
        if let Some(s) = has_savings {
            if self.chance(0.02) {
                let usd = self.between(20.0, 300.0);
                let ts = at(self.time_of_day(10, 20));
                let mut t = self.txn(u, s, TransactionKind::Deposit, usd, Category::Savings, Channel::BankTransfer);
                t.goal_id = self.tag_goal(u, 0.6);
                let late_ok = t.goal_id.is_none() && !self.users[u].accounts[s].goal_linked;
                items.push(Item {
                    ts,
                    ev: Event::Transaction(t),
                    account: s,
                    flags: Flags { late_ok, ..Flags::default() },
                });
            }
            let linked = self.users[u].accounts[s].goal_linked;
            if !(robust && linked) && b >= 2 && self.chance(0.015) {
                let usd = self.between(50.0, 300.0);
                let ts = at(self.time_of_day(9, 21));
                let mut t = self.txn(u, s, TransactionKind::Transfer, usd, Category::Savings, Channel::Mobile);
                t.counterparty_account_id = Some(self.users[u].accounts[0].id.clone());
                items.push(Item { ts, ev: Event::Transaction(t), account: s, flags: Flags::default() });
            }
        } else if self.chance(0.02) {
            let usd = self.between(20.0, 200.0);
            let ts = at(self.time_of_day(10, 20));
            let mut t = self.txn(u, 0, TransactionKind::Deposit, usd, Category::Savings, Channel::BankTransfer);
            t.goal_id = self.tag_goal(u, 0.8);
            let late_ok = t.goal_id.is_none();
            items.push(Item {
                ts,
                ev: Event::Transaction(t),
                account: 0,
                flags: Flags { late_ok, ..Flags::default() },
            });
        }
        if !robust && self.chance(0.005) {
            // Spending goal money (negative for a tag-fed goal).
            if let Some(g) = self.tag_goal(u, 1.0) {
                let usd = self.between(20.0, 150.0);
                let ts = at(self.time_of_day(10, 20));
                let mut t = self.txn(u, 0, TransactionKind::Withdrawal, usd, Category::Travel, Channel::Atm);
                t.goal_id = Some(g);
                items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
            }
        }

        // Budget and goal changes.
        for k in 0..self.users[u].budgets.len() {
            if !self.users[u].budgets[k].alive {
                continue;
            }
            if self.chance(0.004) {
                let ts = self.admin_time(u, date);
                self.users[u].budgets[k].alive = false;
                let item = self.budget_item(u, &self.users[u].budgets[k], BudgetAction::Delete, ts);
                items.push(item);
            } else if self.chance(1.0 / 30.0) {
                let factor = self.between(0.7, 1.4);
                let p = &self.users[u].budgets[k];
                let cur = p.currency;
                let new_limit = self.round_money(self.usd(p.limit, cur) * factor, cur);
                self.users[u].budgets[k].limit = new_limit;
                let ts = self.admin_time(u, date);
                let item = self.budget_item(u, &self.users[u].budgets[k], BudgetAction::Set, ts);
                items.push(item);
            }
        }
        for k in 0..self.users[u].goals.len() {
            if !self.users[u].goals[k].alive {
                continue;
            }
            if self.chance(0.003) {
                let ts = self.admin_time(u, date);
                self.users[u].goals[k].alive = false;
                let item = self.goal_item(u, &self.users[u].goals[k], GoalEventType::GoalDeleted, ts);
                items.push(item);
            } else if self.chance(1.0 / 40.0) {
                let factor = self.between(0.7, 1.3);
                let cur = self.users[u].goals[k].currency;
                let t = self.round_money(self.usd(self.users[u].goals[k].target, cur) * factor, cur);
                self.users[u].goals[k].target = t;
                let ts = self.admin_time(u, date);
                let item = self.goal_item(u, &self.users[u].goals[k], GoalEventType::GoalUpdated, ts);
                items.push(item);
            }
        }
        // A user who kept the default UTC zone fixes the profile.
        if self.cfg.profile_updates && self.users[u].profile_tz == "UTC" && self.chance(0.05) {
            let user = &mut self.users[u];
            user.profile_tz = user.home.tz.to_string();
            let profile = UserProfile {
                user_id: user.id.clone(),
                base_currency: user.base.to_string(),
                timezone: user.profile_tz.clone(),
                home_country: user.home.country.to_string(),
                updated_at: TimestampMillis(0),
            };
            let ts = at(self.time_of_day(7, 23));
            items.push(Item { ts, ev: Event::Profile(profile), account: 0, flags: Flags::default() });
        }
        // Every generated account opens on the set-up day, unlike a bank's accounts, which mostly
        // have years of history when fraud strikes: scenarios start after a warm-up of
        // FRAUD_WARM_UP_DAYS days of normal life.
        if self.cfg.fraud && !self.users[u].fraud_done && b >= FRAUD_WARM_UP_DAYS && self.chance(0.004) {
            self.users[u].fraud_done = true;
            self.fraud(u, date, &mut items);
        }
        items
    }

    /// The id of a live tag-fed goal of the user, with probability `p`.
    fn tag_goal(&mut self, u: usize, p: f64) -> Option<String> {
        let ids: Vec<String> =
            self.users[u].goals.iter().filter(|g| g.alive && g.account.is_none()).map(|g| g.id.clone()).collect();
        if ids.is_empty() || !self.chance(p) {
            return None;
        }
        Some(ids[self.rng.random_range(0..ids.len())].clone())
    }

    fn fraud(&mut self, u: usize, date: NaiveDate, items: &mut Vec<Item>) {
        let tz = self.users[u].home_tz;
        self.scenario_counter += 1;
        let scenario = match self.rng.random_range(0..4) {
            0 => FraudScenario::CardTesting,
            1 => FraudScenario::ImpossibleTravel,
            2 => FraudScenario::AccountDrain,
            _ => FraudScenario::LargeAnomalousPurchase,
        };
        let flags = Flags { fraud: Some(scenario), ..Flags::default() };
        let cur = self.users[u].accounts[0].currency;
        match scenario {
            FraudScenario::CardTesting => {
                let mut ts = local_ts(tz, date, self.time_of_day(2, 4));
                for _ in 0..self.rng.random_range(6..12) {
                    let usd = self.rng.random_range(0.5..2.0);
                    let amount = self.money(usd, cur);
                    let mut t =
                        self.txn_in(u, 0, TransactionKind::Payment, amount, cur, Category::Shopping, Channel::Online);
                    t.merchant = Some(Merchant {
                        merchant_id: "m-x-giftcards".into(),
                        name: "QuickGiftCards".into(),
                        mcc: "5999".into(),
                    });
                    if self.chance(0.5) {
                        t.status = TransactionStatus::Failed;
                    }
                    items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags });
                    ts += self.rng.random_range(20..90) * SECOND;
                }
            }
            FraudScenario::ImpossibleTravel => {
                // The cardholder's own purchase (not fraud, not labelled), then the stolen card
                // used far away shortly after: only that one is fraudulent.
                let ts = local_ts(tz, date, self.time_of_day(10, 18));
                let usd = self.rng.random_range(20.0..80.0);
                let amount = self.money(usd, cur);
                let t = self.txn_in(u, 0, TransactionKind::Payment, amount, cur, Category::Shopping, Channel::Card);
                items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
                let far = &TRIPS[self.rng.random_range(0..3)];
                let usd = self.rng.random_range(100.0..600.0);
                let amount = self.money(usd, far.currency);
                let mut t = self.txn_in(
                    u,
                    0,
                    TransactionKind::Payment,
                    amount,
                    far.currency,
                    Category::Shopping,
                    Channel::Card,
                );
                t.location =
                    Some(Location { country: far.country.into(), city: far.city.into(), lat: far.lat, lon: far.lon });
                let later = ts + self.rng.random_range(20..60) * MINUTE;
                items.push(Item { ts: later, ev: Event::Transaction(t), account: 0, flags });
            }
            FraudScenario::AccountDrain => {
                // Steps of 30-50 % of what is left; the last one takes the rest (90 % in all).
                let mut ts = local_ts(tz, date, self.time_of_day(1, 4));
                let mut left = self.users[u].accounts[0].safe_usd.max(500.0) * 0.9;
                let steps = self.rng.random_range(3..6);
                for i in 0..steps {
                    let share = self.between(0.3, 0.5);
                    let usd = if i + 1 == steps { left } else { left * share };
                    left -= usd;
                    let t = if i % 2 == 0 {
                        let mut t = self.txn(u, 0, TransactionKind::Transfer, usd, Category::Other, Channel::Online);
                        t.counterparty_account_id = Some(self.id(format!("ext-{:05}", self.scenario_counter)));
                        t
                    } else {
                        self.txn(u, 0, TransactionKind::Withdrawal, usd, Category::Other, Channel::Atm)
                    };
                    items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags });
                    ts += self.rng.random_range(2..10) * MINUTE;
                }
            }
            FraudScenario::LargeAnomalousPurchase => {
                // Stolen card details spent online at a shop the cardholder never used.
                let ts = local_ts(tz, date, self.time_of_day(0, 24));
                let usd = self.between(2000.0, 6000.0);
                let mut t = self.txn(u, 0, TransactionKind::Payment, usd, Category::Shopping, Channel::Online);
                t.merchant = Some(Merchant {
                    merchant_id: "m-x-electronics".into(),
                    name: "GadgetHub Online".into(),
                    mcc: "5732".into(),
                });
                items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags });
            }
        }
    }

    /// Order-robust only: after two quiet days, one INTEREST per account, its last leg.
    fn closing(&mut self) {
        let b = self.cfg.days + 2;
        for u in 0..self.users.len() {
            let date = self.users[u].day0 + Days::new(u64::from(b));
            let tz = self.users[u].home_tz;
            let mut items = Vec::new();
            for a in 0..self.users[u].accounts.len() {
                let ts = local_ts(tz, date, 12 * 3600 + a as u32 * 60);
                let t = self.txn(u, a, TransactionKind::Interest, 0.5, Category::Savings, Channel::BankTransfer);
                items.push(Item { ts, ev: Event::Transaction(t), account: a, flags: Flags::default() });
            }
            self.schedule_items(u, items);
        }
    }

    // ------------------------------------------------------------------ delivery

    /// Sorts a user's items, gives them distinct timestamps (strictly increasing per user, the
    /// millisecond part = user index % 1000), applies the balance check, plans follow-ups
    /// (refunds, completions), and hands them to delivery, some late, some twice.
    fn schedule_items(&mut self, u: usize, mut items: Vec<Item>) {
        items.sort_by_key(|i| i.ts);
        let offset = (self.users[u].idx % 1000) as i64;
        for mut item in items {
            let mut ts = item.ts.div_euclid(SECOND) * SECOND + offset;
            if ts <= self.users[u].last_ts {
                ts = self.users[u].last_ts + SECOND;
            }
            self.users[u].last_ts = ts;
            set_timestamp(&mut item.ev, ts);
            item.ts = ts;
            let mut deliver_at = ts;
            if let Event::Transaction(t) = &mut item.ev {
                self.check_balance(u, item.account, t, item.flags);
                self.follow_ups(u, item.account, t, item.flags);
                if let Some(s) = item.flags.fraud {
                    self.labels.push(FraudLabel {
                        transaction_id: t.transaction_id.clone(),
                        account_id: t.account_id.clone(),
                        user_id: t.user_id.clone(),
                        scenario: s,
                        scenario_id: format!("{}f{:05}", self.cfg.id_prefix, self.scenario_counter),
                        occurred_at: ts,
                    });
                }
                let late_allowed = !self.cfg.order_robust || item.flags.late_ok;
                if item.flags.fraud.is_none() && late_allowed && self.chance(self.cfg.late_ratio) {
                    deliver_at = ts + self.rng.random_range(10 * MINUTE..self.cfg.max_late_ms.max(10 * MINUTE + 1));
                }
                if self.chance(self.cfg.duplicate_ratio) {
                    let again = deliver_at + self.rng.random_range(SECOND..10 * MINUTE);
                    self.deliver(again, item.ev.clone());
                }
            }
            self.deliver(deliver_at, item.ev);
        }
    }

    /// Declines (FAILED) a debit the account cannot cover, and books the transaction in the
    /// generator's view of the balances. Credits count `maturity` after their time.
    fn check_balance(&mut self, u: usize, a: usize, t: &mut TransactionEvent, flags: Flags) {
        if t.status != TransactionStatus::Completed {
            return;
        }
        let (maturity, margin) = if self.cfg.order_robust { (2 * DAY, 50.0) } else { (0, 0.0) };
        let now = t.occurred_at.0;
        let usd = self.usd(t.amount, &t.currency);
        let acc = &mut self.users[u].accounts[a];
        let (ready, waiting): (Vec<_>, Vec<_>) = acc.maturing.iter().partition(|(at, _)| at + maturity <= now);
        acc.maturing = waiting;
        acc.safe_usd += ready.iter().map(|(_, v)| v).sum::<f64>();
        let credit = matches!(t.kind, TransactionKind::Deposit | TransactionKind::Interest | TransactionKind::Refund);
        if credit {
            acc.maturing.push((now, usd));
            return;
        }
        if flags.fraud.is_none() && acc.safe_usd - usd < margin {
            t.status = TransactionStatus::Failed;
            return;
        }
        acc.safe_usd -= usd;
        if t.kind == TransactionKind::Transfer {
            if let Some(&(v, b)) = t.counterparty_account_id.as_ref().and_then(|c| self.account_index.get(c)) {
                self.users[v].accounts[b].maturing.push((now, usd));
            }
        }
    }

    fn follow_ups(&mut self, u: usize, a: usize, t: &TransactionEvent, flags: Flags) {
        let tz = self.users[u].home_tz;
        let date = local_date(tz, t.occurred_at.0);
        if flags.complete_later && self.chance(0.8) {
            // The same transaction, COMPLETED a day or two later.
            let d = date + Days::new(self.rng.random_range(1..3));
            let ts = local_ts(tz, d, self.time_of_day(7, 23));
            let mut done = t.clone();
            done.status = TransactionStatus::Completed;
            let flags = Flags { refundable: true, ..Flags::default() };
            self.users[u].scheduled.push(Item { ts, ev: Event::Transaction(done), account: a, flags });
        }
        if flags.refundable && t.status == TransactionStatus::Completed && self.chance(0.06) {
            let d = date + Days::new(self.rng.random_range(2..10));
            let ts = local_ts(tz, d, self.time_of_day(7, 23));
            let minor = schemas::currency::minor_units(&t.currency).unwrap_or(2);
            let amount = if self.chance(0.6) {
                t.amount
            } else {
                (t.amount * Decimal::from_f64(self.between(0.2, 0.9)).unwrap_or(Decimal::ONE))
                    .round_dp(minor)
                    .max(Decimal::new(1, minor))
                    .normalize()
            };
            let mut r = self.txn_in(u, a, TransactionKind::Refund, amount, &t.currency, t.category, t.channel);
            r.merchant = t.merchant.clone();
            r.location = t.location.clone();
            self.users[u].scheduled.push(Item { ts, ev: Event::Transaction(r), account: a, flags: Flags::default() });
        }
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

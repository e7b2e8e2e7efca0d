//! Windowed DSL aggregations: tumbling (with grace, late records and retention), hopping,
//! session windows, `suppress(until_window_closes)`, and calendar windows in a zone taken from
//! the record or from a global table. Each is checked against a plain simulation of the window
//! rules, and everything runs straight and with every kind of crash.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveTime, TimeZone};
use chrono_tz::Tz;
use common::{config, decoded, golden, raw_sorted, rec, Input};
use serde::{Deserialize, Serialize};
use streams::dsl::{Consumed, Grouped, Produced, SessionWindows, StreamsBuilder, Suppressed, WindowedSerde};
use streams::murmur2::partition_for_key;
use streams::store::typed::{KvStoreDef, SessionStoreDef, WindowStoreDef};
use streams::topology::BuiltTopology;
use streams::window::calendar::{zone_or_utc, CalendarWindows};
use streams::{I64Serde, JsonSerde, StringSerde, TimeWindows, TopologyTestDriver, Windowed};

const TUMBLING: WindowStoreDef<String, i64> = WindowStoreDef::new("tumbling", &StringSerde, &I64Serde).retention(300);
const HOPPING: WindowStoreDef<String, i64> = WindowStoreDef::new("hopping", &StringSerde, &I64Serde);
const SESSIONS: SessionStoreDef<String, i64> = SessionStoreDef::new("sessions", &StringSerde, &I64Serde);
const DAILY: WindowStoreDef<String, i64> = WindowStoreDef::new("daily-spend", &StringSerde, &I64Serde);
const MONTHLY: WindowStoreDef<String, i64> = WindowStoreDef::new("monthly-spend", &StringSerde, &I64Serde);
const ZONES: KvStoreDef<String, String> = KvStoreDef::new("zones", &StringSerde, &StringSerde);

const PARTITIONS: i32 = 3;
const TUMBLE: (i64, i64) = (100, 20); // size, grace
const HOP: (i64, i64) = (100, 40); // size, advance (grace 0)
const GAP: (i64, i64) = (30, 10); // gap, grace
const HOUR: i64 = 3_600_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Card {
    amount: i64,
    zone: String,
}

fn topology() -> Arc<BuiltTopology> {
    let b = StreamsBuilder::new();
    let windowed = || Produced::with(WindowedSerde::new(StringSerde), I64Serde);
    let spend = b.stream("spend", Consumed::with(StringSerde, I64Serde)).group_by_key(Grouped::with(
        "spend-by-user",
        StringSerde,
        I64Serde,
    ));
    let tumbling = spend.windowed_by(TimeWindows::tumbling(TUMBLE.0, TUMBLE.1)).reduce(|a, b| a + b, &TUMBLING);
    tumbling.to_stream().to("tumbling-updates", windowed());
    tumbling.suppress(Suppressed::until_window_closes("tumbling-final")).to_stream().to("tumbling-final", windowed());
    spend
        .windowed_by(TimeWindows::hopping(HOP.0, HOP.1, 0))
        .count(&HOPPING)
        .to_stream()
        .to("hopping-counts", windowed());
    spend
        .session_windowed_by(SessionWindows::with_inactivity_gap(GAP.0).grace(GAP.1))
        .reduce(|a, b| a + b, &SESSIONS)
        .suppress(Suppressed::until_window_closes("session-final"))
        .to_stream()
        .to("session-final", windowed());

    // Calendar windows: local days in the zone the record names, local months in the zone of
    // the user's profile (a global table).
    let zones = b.global_table("zones", &ZONES);
    let cards = b.stream("cards", Consumed::with(StringSerde, JsonSerde::<Card>::new())).group_by_key(Grouped::with(
        "cards-by-user",
        StringSerde,
        JsonSerde::<Card>::new(),
    ));
    cards
        .windowed_by(CalendarWindows::days(|_, c: &Card, _| Ok(zone_or_utc(&c.zone))).grace(HOUR))
        .aggregate(|| 0, |_, c, total| total + c.amount, &DAILY)
        .suppress(Suppressed::until_window_closes("daily-final"))
        .to_stream()
        .to("daily-final", windowed());
    let zone_store = zones.store().clone();
    cards
        .windowed_by(CalendarWindows::months(move |user: &String, _: &Card, ctx| {
            Ok(ctx.global(&zone_store).get(user)?.map(|z| zone_or_utc(&z)).unwrap_or(Tz::UTC))
        }))
        .aggregate(|| 0, |_, c, total| total + c.amount, &MONTHLY);
    b.build().unwrap().build("win").unwrap()
}

/// (user, amount, timestamp): out of order by up to 240 ms, so some records are late.
fn spend(n: usize) -> Vec<(String, i64, i64)> {
    (0..n)
        .map(|i| (format!("u{}", i % 5), (i as i64 * 7) % 50 + 1, 10_000 + i as i64 * 13 - (i as i64 % 7) * 40))
        .collect()
}

fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

const USERS: [(&str, &str); 3] = [("alice", "Europe/Berlin"), ("bob", "America/New_York"), ("chandra", "Asia/Kolkata")];

/// Card payments around the 2026 European DST change and a month end, with a record's zone
/// sometimes differing from the profile's (travel).
fn cards() -> Vec<(String, Card, i64)> {
    let start = ms("2026-03-27T00:00:00Z");
    (0..150)
        .map(|i| {
            let (user, home) = USERS[i % 3];
            let zone = if i % 10 == 7 { "Asia/Tokyo" } else { home };
            let ts = start + i as i64 * 47 * 60_000 - (i as i64 % 4) * 30 * 60_000;
            (user.to_string(), Card { amount: 100 + (i as i64 % 9) * 25, zone: zone.into() }, ts)
        })
        .collect()
}

fn inputs(n: usize) -> Vec<Input> {
    let mut v: Vec<Input> = USERS
        .iter()
        .map(|(u, z)| rec("zones", &u.to_string(), &z.to_string(), 0, &StringSerde, &StringSerde))
        .collect();
    v.extend(spend(n).iter().map(|(u, a, ts)| rec("spend", u, a, *ts, &StringSerde, &I64Serde)));
    v.extend(cards().iter().map(|(u, c, ts)| rec("cards", u, c, *ts, &StringSerde, &JsonSerde::new())));
    v
}

fn partition(key: &str) -> i32 {
    partition_for_key(key.as_bytes(), PARTITIONS)
}

/// What a windowed aggregation should hold, simulated without the engine: per partition a clock
/// (largest timestamp so far); a record updates the windows containing it that are not closed
/// (end + grace > clock).
#[derive(Default, Debug)]
struct Sim {
    windows: BTreeMap<(String, i64), (i64, i64, i64)>, // (key, start) -> (end, value, last update ts)
    late: u64,
    clocks: BTreeMap<i32, i64>,
    updates: usize,
}

fn simulate(
    records: &[(String, i64, i64)],
    assign: impl Fn(&str, i64) -> Vec<(i64, i64)>,
    grace: i64,
    step: impl Fn(i64, i64) -> i64,
) -> Sim {
    let mut sim = Sim::default();
    for (k, v, ts) in records {
        let clock = sim.clocks.entry(partition(k)).or_insert(i64::MIN);
        *clock = (*clock).max(*ts);
        let open: Vec<_> = assign(k, *ts).into_iter().filter(|(_, e)| e + grace > *clock).collect();
        if open.is_empty() {
            sim.late += 1;
        }
        for (s, e) in open {
            let w = sim.windows.entry((k.clone(), s)).or_insert((e, 0, 0));
            *w = (e, step(w.1, *v), *ts);
            sim.updates += 1;
        }
    }
    sim
}

impl Sim {
    fn clock(&self, key: &str) -> i64 {
        self.clocks[&partition(key)]
    }
    /// The store after retention: windows closed for longer than `retention` are gone.
    fn store(&self, grace: i64, retention: i64) -> Vec<(String, i64, i64)> {
        let mut v: Vec<_> = self
            .windows
            .iter()
            .filter(|((k, _), (e, _, _))| e + grace + retention > self.clock(k))
            .map(|((k, s), (_, v, _))| (k.clone(), *s, *v))
            .collect();
        v.sort();
        v
    }
    /// Suppressed output: one final result per closed window.
    fn finals(&self, close_after: i64) -> Vec<(Windowed<String>, i64, i64)> {
        let mut v: Vec<_> = self
            .windows
            .iter()
            .filter(|((k, _), (e, _, _))| e + close_after <= self.clock(k))
            .map(|((k, s), (e, v, ts))| (Windowed { key: k.clone(), start: *s, end: *e }, *v, *ts))
            .collect();
        v.sort_by_key(|x| format!("{x:?}"));
        v
    }
}

fn tumbling(ts: i64) -> Vec<(i64, i64)> {
    let s = ts.div_euclid(TUMBLE.0) * TUMBLE.0;
    vec![(s, s + TUMBLE.0)]
}

fn hopping(ts: i64) -> Vec<(i64, i64)> {
    let mut v = Vec::new();
    let mut s = ts.div_euclid(HOP.1) * HOP.1;
    while s > ts - HOP.0 {
        v.push((s, s + HOP.0));
        s -= HOP.1;
    }
    v.reverse();
    v
}

/// Local midnights around `ts` in `zone`, computed with chrono directly (no gaps at midnight in
/// these zones).
fn local_period(zone: &str, ts: i64, month: bool) -> (i64, i64) {
    let tz: Tz = zone.parse().unwrap();
    let date = tz.timestamp_millis_opt(ts).unwrap().date_naive();
    let (first, next) = if month {
        let first = date.with_day0(0).unwrap();
        (first, first.checked_add_months(chrono::Months::new(1)).unwrap())
    } else {
        (date, date.succ_opt().unwrap())
    };
    let at = |d: chrono::NaiveDate| {
        tz.from_local_datetime(&d.and_time(NaiveTime::MIN)).earliest().unwrap().timestamp_millis()
    };
    (at(first), at(next))
}

use chrono::Datelike;

fn sorted_windows(d: &TopologyTestDriver, def: &WindowStoreDef<String, i64>) -> Vec<(String, i64, i64)> {
    let mut v = d.store(def);
    v.sort();
    v
}

#[test]
fn time_windows_match_a_simulation_of_the_window_rules() {
    let n = 400;
    let input = spend(n);
    let (_, _) = common::run(&topology, config(), &inputs(n), &|d| {
        // Tumbling: grace, late records, retention and suppression.
        let sim = simulate(&input, |_, ts| tumbling(ts), TUMBLE.1, |a, b| a + b);
        assert!(sim.late > 20, "the input has late records: {}", sim.late);
        assert_eq!(d.metrics().late_records.with_label_values(&["tumbling"]).get(), sim.late);
        let kept = sim.store(TUMBLE.1, TUMBLING.retention_ms());
        assert!(kept.len() < sim.windows.len(), "retention deleted old windows");
        assert_eq!(sorted_windows(d, &TUMBLING), kept);
        assert_eq!(d.read_raw("tumbling-updates").len(), sim.updates, "one update per accepted record");
        let finals = decoded(d, "tumbling-final", &WindowedSerde::new(StringSerde), &I64Serde);
        assert_eq!(finals, sim.finals(TUMBLE.1));
        assert!(finals.len() > 10);

        // Hopping: each record counts in every window containing it.
        let hop = simulate(&input, |_, ts| hopping(ts), 0, |c, _| c + 1);
        assert_eq!(sorted_windows(d, &HOPPING), hop.store(0, HOPPING.retention_ms()));
        assert_eq!(d.read_raw("hopping-counts").len(), hop.updates);
        assert!(hop.updates > input.len(), "records land in two windows");
    });
}

/// Per key: (start, end, sum, last update timestamp) of each session.
type SimSessions = BTreeMap<String, Vec<(i64, i64, i64, i64)>>;

/// Sessions, simulated: a record joins every session of its key within `gap`; it is late if its
/// own session or one it would join is closed (last record + gap + grace <= clock). Returns the
/// sessions and, per partition, the clock of the suppression (which only sees accepted records).
fn simulate_sessions(records: &[(String, i64, i64)]) -> (SimSessions, BTreeMap<i32, i64>) {
    let (gap, grace) = GAP;
    let close = |end: i64| end + gap + grace;
    let mut sessions = SimSessions::new();
    let (mut clocks, mut accepted) = (BTreeMap::new(), BTreeMap::new());
    for (k, v, ts) in records {
        let clock = clocks.entry(partition(k)).or_insert(i64::MIN);
        *clock = (*clock).max(*ts);
        let list = sessions.entry(k.clone()).or_default();
        let (near, far): (Vec<_>, Vec<_>) = list.iter().partition(|(s, e, _, _)| *s <= ts + gap && *e >= ts - gap);
        if close(*ts) <= *clock || near.iter().any(|(_, e, _, _)| close(*e) <= *clock) {
            continue;
        }
        let start = near.iter().map(|x| x.0).chain([*ts]).min().unwrap();
        let end = near.iter().map(|x| x.1).chain([*ts]).max().unwrap();
        let sum = near.iter().map(|x| x.2).sum::<i64>() + v;
        *list = far.into_iter().chain([(start, end, sum, *ts)]).collect();
        let a = accepted.entry(partition(k)).or_insert(i64::MIN);
        *a = (*a).max(*ts);
    }
    (sessions, accepted)
}

#[test]
fn session_windows_merge_and_emit_final_sessions() {
    let n = 400;
    let input = spend(n);
    let (_, _) = common::run(&topology, config(), &inputs(n), &|d| {
        let (sessions, clocks) = simulate_sessions(&input);
        let mut expected: Vec<(Windowed<String>, i64)> = sessions
            .iter()
            .flat_map(|(k, l)| l.iter().map(move |(s, e, v, _)| (Windowed { key: k.clone(), start: *s, end: *e }, *v)))
            .collect();
        expected.sort_by_key(|x| format!("{x:?}"));
        let mut got = d.store(&SESSIONS);
        got.sort_by_key(|x| format!("{x:?}"));
        assert_eq!(got, expected);
        assert!(got.iter().any(|(w, _)| w.start < w.end), "some sessions span several records");
        let mut finals: Vec<(Windowed<String>, i64, i64)> = sessions
            .iter()
            .flat_map(|(k, l)| {
                let clock = clocks[&partition(k)];
                l.iter()
                    .filter(move |(_, e, _, _)| e + GAP.0 + GAP.1 <= clock)
                    .map(move |(s, e, v, ts)| (Windowed { key: k.clone(), start: *s, end: *e }, *v, *ts))
            })
            .collect();
        finals.sort_by_key(|x| format!("{x:?}"));
        assert_eq!(decoded(d, "session-final", &WindowedSerde::new(StringSerde), &I64Serde), finals);
        assert!(!finals.is_empty());
    });
}

#[test]
fn calendar_windows_follow_each_users_local_days_and_months() {
    let input = cards();
    let (_, _) = common::run(&topology, config(), &inputs(10), &|d| {
        let flat: Vec<(String, i64, i64)> = input.iter().map(|(u, c, ts)| (u.clone(), c.amount, *ts)).collect();
        // Days in the record's zone: simulate with the zone of each record.
        let zone_of: BTreeMap<(String, i64), String> =
            input.iter().map(|(u, c, ts)| ((u.clone(), *ts), c.zone.clone())).collect();
        let daily =
            simulate(&flat, |u, ts| vec![local_period(&zone_of[&(u.to_string(), ts)], ts, false)], HOUR, |a, b| a + b);
        assert_eq!(sorted_windows(d, &DAILY), daily.store(HOUR, DAILY.retention_ms()));
        let finals = decoded(d, "daily-final", &WindowedSerde::new(StringSerde), &I64Serde);
        assert_eq!(finals, daily.finals(HOUR));
        // Alice's Sunday 2026-03-29 in Berlin lasts 23 hours.
        let short =
            finals.iter().find(|(w, _, _)| w.key == "alice" && w.start == ms("2026-03-29T00:00:00+01:00")).unwrap();
        assert_eq!(short.0.end - short.0.start, 23 * HOUR);
        // Months in the profile's zone (from the global table).
        let home: BTreeMap<&str, &str> = USERS.into_iter().collect();
        let monthly = simulate(&flat, |u, ts| vec![local_period(home[u], ts, true)], 0, |a, b| a + b);
        assert_eq!(sorted_windows(d, &MONTHLY), monthly.store(0, MONTHLY.retention_ms()));
        let march = d.store(&MONTHLY).into_iter().find(|(u, s, _)| u == "bob" && *s == ms("2026-03-01T00:00:00-05:00"));
        assert!(march.is_some(), "bob's March starts at midnight in New York");
    });
}

#[test]
fn windowed_aggregations_are_identical_with_and_without_crashes() {
    let observe = |d: &TopologyTestDriver| {
        let mut sessions = d.store(&SESSIONS);
        sessions.sort_by_key(|x| format!("{x:?}"));
        (
            sorted_windows(d, &TUMBLING),
            sorted_windows(d, &HOPPING),
            sessions,
            sorted_windows(d, &DAILY),
            sorted_windows(d, &MONTHLY),
            ["tumbling-updates", "tumbling-final", "hopping-counts", "session-final", "daily-final"]
                .map(|t| raw_sorted(d, t)),
        )
    };
    golden(&topology, config(), &inputs(300), &[25, 160, 161, 420], &observe);
}

//! Daily card spend per user and category, in each user's own calendar: windows run from local
//! midnight to local midnight in the time zone of the user's profile (a global table), so a day
//! of a daylight-saving change lasts 23 or 25 hours. One final total per day, after a grace
//! hour for late payments.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use streams::dsl::{Consumed, DslError, Grouped, Produced, Suppressed, WindowedSerde};
use streams::window::calendar::zone_or_utc;
use streams::{CalendarWindows, JsonSerde, KvStoreDef, StreamsBuilder, StringSerde, Topology, WindowStoreDef};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub user_id: String,
    pub category: String,
    pub amount: Decimal,
}

pub const HOUR: i64 = 3_600_000;
/// user id → IANA time zone (the `user-zones` topic, on every instance).
pub const ZONES: KvStoreDef<String, String> = KvStoreDef::new("user-zones", &StringSerde, &StringSerde);
/// `user|category` + local day start → total spent; kept 400 days after the day closes.
pub const DAILY: WindowStoreDef<String, Decimal> =
    WindowStoreDef::new("daily-spend", &StringSerde, &JsonSerde::new()).retention(400 * 24 * HOUR);

pub fn topology(payments: &str, zones: &str, out: &str) -> Result<Topology, DslError> {
    let builder = StreamsBuilder::new();
    let zones = builder.global_table(zones, &ZONES).store().clone();
    let days = CalendarWindows::days(move |_: &String, p: &Payment, ctx| {
        Ok(zone_or_utc(&ctx.global(&zones).get(&p.user_id)?.unwrap_or_default()))
    });
    builder
        .stream(payments, Consumed::with(StringSerde, JsonSerde::<Payment>::new()))
        .group_by(
            |_, p| format!("{}|{}", p.user_id, p.category),
            Grouped::with("spend-by-category", StringSerde, JsonSerde::new()),
        )
        .windowed_by(days.grace(HOUR))
        .aggregate(|| Decimal::ZERO, |_, p, total| total + p.amount, &DAILY)
        .suppress(Suppressed::until_window_closes("daily-spend-final"))
        .to_stream()
        .to(out, Produced::with(WindowedSerde::new(StringSerde), JsonSerde::new()));
    builder.build()
}

fn main() {
    let topology = topology("payments", "user-zones", "daily-spend").expect("valid").build("spend").expect("builds");
    println!("{}", topology.describe());
}

#[cfg(test)]
mod tests {
    use streams::{Crash, DriverConfig, TopologyTestDriver, Windowed};

    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    /// Alice (Berlin) pays every 40 minutes for 80 hours from Saturday 2026-03-28 (DST starts Sunday).
    fn run(config: DriverConfig) -> (Vec<(Windowed<String>, Decimal)>, usize) {
        let topo = topology("payments", "user-zones", "daily").unwrap().build("spend").unwrap();
        let mut d = TopologyTestDriver::new(topo, config).unwrap();
        d.append_raw("user-zones", Some(b"alice".to_vec()), Some(b"Europe/Berlin".to_vec()), 0);
        let start = ms("2026-03-28T00:00:00+01:00");
        for i in 0..120 {
            let p = Payment { user_id: "alice".into(), category: "GROCERIES".into(), amount: Decimal::new(250, 2) };
            d.append_raw(
                "payments",
                Some(b"card-1".to_vec()),
                Some(serde_json::to_vec(&p).unwrap()),
                start + i * 40 * 60_000,
            );
        }
        d.run().unwrap();
        let out =
            d.read_output::<Windowed<String>, Decimal>("daily", &WindowedSerde::new(StringSerde), &JsonSerde::new());
        (out.into_iter().map(|r| (r.key, r.value)).collect(), d.crashes_done)
    }

    #[test]
    fn one_final_total_per_local_day_and_the_dst_day_is_23_hours() {
        let (days, _) = run(DriverConfig { commit_every: 13, ..Default::default() });
        let key = "alice|GROCERIES".to_string();
        let day = |start: &str, end: &str| Windowed { key: key.clone(), start: ms(start), end: ms(end) };
        // 80 hours of payments every 40 minutes: Saturday (24 h) has 36, Sunday (23 h) 35, Monday
        // 36; Tuesday is still open (it closes an hour after its midnight).
        let expected = vec![
            (day("2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00"), Decimal::new(9000, 2)),
            (day("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"), Decimal::new(8750, 2)),
            (day("2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00"), Decimal::new(9000, 2)),
        ];
        assert_eq!(days, expected);
        assert_eq!(expected[1].0.end - expected[1].0.start, 23 * HOUR);
        for kind in Crash::ALL {
            let crashed =
                run(DriverConfig { commit_every: 13, crashes: vec![(25, kind), (90, kind)], ..Default::default() });
            assert_eq!(crashed, (days.clone(), 2), "{kind:?}");
        }
    }
}

//! A small test topology, not a finance one, whose stores the query service has no handler
//! for: they are served by the generic `/v1/stores` endpoint only, through their `QuerySpec`s.
//! Payments arrive keyed by user id (the sub-topology is partitioned by user):
//!
//! - `ledger-totals`: user → total, owned by the value's `user_id`, routed by its key;
//! - `ledger-payments`: `user|payment` → cents, owned by the key's user part and routed by it;
//! - `ledger-hourly`: a window store of cents per user and hour, owned by its key;
//! - `ledger-audit`: payment id → `user:cents`, no spec: administrators only, raw;
//! - `ledger-limits`: a global table user → limit, owned by its key.

use std::sync::Arc;

use jsonwebtoken::{encode, EncodingKey, Header};
use query::{AuthConfig, AuthMode, Authenticator, Claims, LocalStores, Role};
use serde::{Deserialize, Serialize};
use streams::store::query::{Owner, QuerySpec, Routing};
use streams::store::{KvBackend, MemoryBackend};
use streams::{
    BuiltTopology, DriverConfig, I64Serde, JsonSerde, KvStoreDef, ProcessError, Processor, ProcessorContext, Record,
    StringSerde, Topology, TopologyTestDriver, WindowStoreDef,
};

pub const PAYMENTS_TOPIC: &str = "ledger-payments-in";
pub const LIMITS_TOPIC: &str = "ledger-limits-in";
pub const HOUR: i64 = 3_600_000;
/// 2026-03-05T00:00:00Z.
pub const T0: i64 = 1_772_668_800_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Total {
    pub user_id: String,
    pub cents: i64,
    pub payments: u64,
}

fn total_owner(t: &Total) -> Option<&str> {
    Some(&t.user_id)
}

/// `user|...` routes by the user, once the text has its `|`.
fn user_part(text: &str) -> Option<Vec<u8>> {
    text.split_once('|').map(|(u, _)| u.as_bytes().to_vec()).filter(|u| !u.is_empty())
}

pub const TOTALS: KvStoreDef<String, Total> = KvStoreDef::new("ledger-totals", &StringSerde, &JsonSerde::new())
    .queryable(QuerySpec::string_keys().owned_by(Owner::Value(total_owner)));
pub const PAYMENTS: KvStoreDef<String, i64> = KvStoreDef::new("ledger-payments", &StringSerde, &I64Serde).queryable(
    QuerySpec::string_keys().owned_by(Owner::Key(|k| k.split('|').next())).routed_by(Routing::Derived(user_part)),
);
pub const HOURLY: WindowStoreDef<String, i64> = WindowStoreDef::new("ledger-hourly", &StringSerde, &I64Serde)
    .queryable(QuerySpec::string_keys().owned_by(Owner::Key(|k| Some(k.as_str()))));
pub const AUDIT: KvStoreDef<String, String> = KvStoreDef::new("ledger-audit", &StringSerde, &StringSerde);
pub const LIMITS: KvStoreDef<String, i64> = KvStoreDef::new("ledger-limits", &StringSerde, &I64Serde)
    .queryable(QuerySpec::string_keys().owned_by(Owner::Key(|k| Some(k.as_str()))));

/// The partitioned stores, as `LocalStores` copies them.
pub const PARTITIONED: [&str; 4] = ["ledger-totals", "ledger-payments", "ledger-hourly", "ledger-audit"];

struct Apply;

impl Processor<String, Payment> for Apply {
    fn process(&mut self, r: Record<String, Payment>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let user = r.key.clone();
        let mut totals = ctx.store(&TOTALS)?;
        let mut t = totals.get(&user)?.unwrap_or(Total { user_id: user.clone(), cents: 0, payments: 0 });
        t.cents += r.value.cents;
        t.payments += 1;
        totals.put(&user, &t)?;
        ctx.store(&PAYMENTS)?.put(&format!("{user}|{}", r.value.id), &r.value.cents)?;
        ctx.store(&AUDIT)?.put(&r.value.id, &format!("{user}:{}", r.value.cents))?;
        let hour = r.timestamp - r.timestamp.rem_euclid(HOUR);
        let mut hourly = ctx.store(&HOURLY)?;
        let moved = hourly.get(&user, hour)?.unwrap_or(0) + r.value.cents;
        hourly.put(&user, hour, &moved)?;
        Ok(())
    }
}

pub fn topology() -> Topology {
    let mut t = Topology::new();
    t.add_source::<String, Payment>("payments", &[PAYMENTS_TOPIC], StringSerde, JsonSerde::new())
        .unwrap()
        .add_processor("apply", || Apply, &["payments"])
        .unwrap()
        .add_store(&TOTALS, &["apply"])
        .unwrap()
        .add_store(&PAYMENTS, &["apply"])
        .unwrap()
        .add_store(&HOURLY, &["apply"])
        .unwrap()
        .add_store(&AUDIT, &["apply"])
        .unwrap()
        .add_global_table(&LIMITS, LIMITS_TOPIC)
        .unwrap();
    t
}

/// Payment `j` of user `i` (of `users`): id `p-{i}-{j}`, `(i + 1) * 100 + j` cents, one hour
/// apart per `j`.
pub fn payments(users: usize, per_user: usize) -> Vec<(String, Payment, i64)> {
    let mut out = Vec::new();
    for j in 0..per_user {
        for i in 0..users {
            let p = Payment { id: format!("p-{i}-{j}"), cents: (i as i64 + 1) * 100 + j as i64 };
            out.push((format!("u-{i}"), p, T0 + j as i64 * HOUR));
        }
    }
    out
}

/// The ledger on the test driver over `partitions` tasks, fed `payments(users, per_user)` and a
/// limit per user, with its committed stores copied into `LocalStores` task by task.
pub fn local(users: usize, per_user: usize, partitions: i32) -> (TopologyTestDriver, LocalStores) {
    let built: Arc<BuiltTopology> = topology().build("ledger").unwrap();
    let mut d =
        TopologyTestDriver::new(built.clone(), DriverConfig { partitions, commit_every: 3, ..Default::default() })
            .unwrap();
    for i in 0..users {
        let (user, limit) = (format!("u-{i}"), 1_000 * (i as i64 + 1));
        d.pipe(LIMITS_TOPIC, &user, &limit, 0, &StringSerde, &I64Serde).unwrap();
    }
    for (user, p, ts) in payments(users, per_user) {
        d.pipe(PAYMENTS_TOPIC, &user, &p, ts, &StringSerde, &JsonSerde::new()).unwrap();
    }
    d.run().unwrap();
    let mut s = LocalStores::new(partitions).with_topology(built);
    for store in PARTITIONED {
        let backends = (0..partitions)
            .map(|p| {
                let b = MemoryBackend::default();
                let entries: Vec<_> = d.store_raw_in(store, p).into_iter().map(|(k, v)| (k, Some(v))).collect();
                b.apply(&entries, None).unwrap();
                Arc::new(b) as Arc<dyn KvBackend>
            })
            .collect();
        s = s.with_store(store, backends);
    }
    for i in 0..users {
        let user = format!("u-{i}");
        let limit = LIMITS.encode_value(&(1_000 * (i as i64 + 1))).unwrap();
        s.put_global(LIMITS.name(), &LIMITS.encode_key(&user).unwrap(), &limit).unwrap();
    }
    (d, s)
}

pub const SECRET: &str = "ledger-test-secret-of-32-bytes-or-more";

pub fn jwt() -> Authenticator {
    Authenticator::new(&AuthConfig { mode: AuthMode::Jwt, hs256_secret: SECRET.into(), ..Default::default() }).unwrap()
}

pub fn token(sub: &str, role: Role) -> String {
    let exp = (chrono::Utc::now().timestamp() + 600) as u64;
    let claims = Claims { sub: sub.into(), role, exp };
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

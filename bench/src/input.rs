//! The benchmark's input, produced once before any engine runs: `TransactionEvent`s in the
//! Confluent Avro wire format (the contract's schema, registered in the embedded registry) over
//! 8 partitions, keyed by account id (100k accounts, Zipf(1.1) skew), event times spread over a
//! month; and `exchange-rates`, one `ExchangeRate` per currency the transactions use. The
//! expected results (record count, sum of signed amounts, sum of USD amounts) are computed on the
//! way, so every engine's output is checked against them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use rust_decimal::Decimal;
use schemas::registry::SchemaRegistry;
use schemas::{
    AvroSerde, Category, Channel, ExchangeRate, Location, Merchant, TimestampMillis, TransactionEvent, TransactionKind,
    TransactionStatus,
};
use streams::serde::Serde;

/// Currencies of the input (all with 2 minor units) and their USD rate (scale 10).
pub const RATES: &[(&str, i64)] = &[
    ("USD", 10_000_000_000),
    ("EUR", 10_843_000_000),
    ("GBP", 12_671_500_000),
    ("CHF", 11_312_345_678),
    ("CAD", 7_301_000_001),
    ("SEK", 954_321_012),
    ("AUD", 6_587_654_321),
    ("NOK", 935_791_357),
];

/// 2026-11-01T00:00:00Z: event times run over the 30 days from here.
const MONTH_START_MS: i64 = 1_793_491_200_000;
const MONTH_MS: i64 = 30 * 24 * 3600 * 1000;

/// What the input is and what a correct engine makes of it.
#[derive(Debug, Clone)]
pub struct Input {
    pub transactions: String,
    pub rates: String,
    pub partitions: i32,
    pub records: u64,
    pub txn_schema_id: u32,
    pub rate_schema_id: u32,
    /// Sum over all records of the signed amount, in units of 10^-4 (W2's per-account sums add up
    /// to it).
    pub signed_minor_sum: i128,
    /// Sum over all records of amount × usd_rate rounded half-even to 10^-4, in 10^-4 (W4).
    pub usd_minor_sum: i128,
}

/// Zipf(s) over ranks 1..=n by inverse CDF (binary search over the cumulative weights).
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    /// A rank in 0..n (0 is the most frequent).
    fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

/// Mantissa of `d` at scale 4.
pub fn minor4(d: Decimal) -> i128 {
    let mut d = d;
    d.rescale(4);
    d.mantissa()
}

/// amount × rate rounded half-even to 4 places, at scale 4 (what W4 emits, in both engines).
pub fn usd_minor(amount: Decimal, rate: Decimal) -> i128 {
    minor4((amount * rate).round_dp(4))
}

pub fn rate_of(currency: &str) -> Decimal {
    let (_, r) = RATES.iter().find(|(c, _)| *c == currency).expect("a known currency");
    Decimal::new(*r, 10)
}

const KINDS: &[(TransactionKind, u32)] = &[
    (TransactionKind::Payment, 50),
    (TransactionKind::Deposit, 15),
    (TransactionKind::Withdrawal, 15),
    (TransactionKind::Transfer, 10),
    (TransactionKind::Refund, 5),
    (TransactionKind::Fee, 5),
];
const CATEGORIES: &[Category] = &[
    Category::Groceries,
    Category::Dining,
    Category::Rent,
    Category::Transport,
    Category::Utilities,
    Category::Entertainment,
    Category::Shopping,
    Category::Health,
    Category::Travel,
];

fn event(i: u64, n: u64, zipf: &Zipf, rng: &mut StdRng) -> TransactionEvent {
    let rank = zipf.sample(rng);
    let mut pick = rng.random_range(0..100u32);
    let kind = KINDS
        .iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map(|(k, _)| *k)
        .unwrap_or(TransactionKind::Payment);
    let (currency, _) = RATES[rng.random_range(0..RATES.len())];
    let payment = kind == TransactionKind::Payment;
    // Event time grows with the offset (a month over the whole input), with a minute of jitter.
    let at = MONTH_START_MS + (i as i128 * MONTH_MS as i128 / n.max(1) as i128) as i64 + rng.random_range(0..60_000);
    TransactionEvent {
        transaction_id: format!("txn-{i:010}"),
        account_id: format!("acc-{rank:06}"),
        user_id: format!("user-{:06}", rank / 2),
        kind,
        amount: Decimal::new(rng.random_range(100..100_000), 2),
        currency: currency.to_string(),
        status: TransactionStatus::Completed,
        category: if kind == TransactionKind::Deposit {
            Category::Income
        } else {
            CATEGORIES[rng.random_range(0..CATEGORIES.len())]
        },
        counterparty_account_id: (kind == TransactionKind::Transfer).then(|| format!("acc-{:06}", rank + 1)),
        merchant: payment.then(|| {
            let m = rng.random_range(0..5000u32);
            Merchant {
                merchant_id: format!("m-{m:05}"),
                name: format!("Merchant {m}"),
                mcc: format!("{:04}", 5000 + m % 1000),
            }
        }),
        goal_id: None,
        channel: if payment { Channel::Card } else { Channel::BankTransfer },
        location: payment.then(|| Location {
            country: "US".into(),
            city: "Springfield".into(),
            lat: 39.78 + rng.random_range(-0.5..0.5),
            lon: -89.65 + rng.random_range(-0.5..0.5),
        }),
        occurred_at: TimestampMillis(at),
    }
}

fn producer(bootstrap: &str) -> Result<BaseProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .context("input producer")
}

/// Creates the input topics and produces `records` transactions (seeded) and the rates.
pub fn produce(
    kafka: &testkit::Kafka,
    registry: Arc<dyn SchemaRegistry>,
    records: u64,
    partitions: i32,
    seed: u64,
) -> Result<Input> {
    let (transactions, rates) = ("bench-transactions".to_string(), "bench-exchange-rates".to_string());
    // No time retention: event times are in the past of the broker's clock, possibly.
    kafka.create_topics_with(&[(transactions.as_str(), partitions)], &[("retention.ms", "-1")]);
    kafka.create_topics_with(&[(rates.as_str(), 1)], &[("cleanup.policy", "compact")]);
    let p = producer(kafka.bootstrap())?;

    let rate_serde = AvroSerde::<ExchangeRate>::new(registry.clone());
    for (c, _) in RATES {
        let r = ExchangeRate { currency: c.to_string(), usd_rate: rate_of(c), as_of: TimestampMillis(MONTH_START_MS) };
        let bytes = rate_serde.serialize(&rates, &r).map_err(|e| anyhow!("{e}"))?;
        testkit::produce(&p, &rates, c, &bytes, MONTH_START_MS);
    }

    let started = Instant::now();
    let serde = AvroSerde::<TransactionEvent>::new(registry.clone());
    let zipf = Zipf::new(100_000, 1.1);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut signed, mut usd) = (0i128, 0i128);
    for i in 0..records {
        let e = event(i, records, &zipf, &mut rng);
        signed += minor4(e.signed_amount());
        usd += usd_minor(e.amount, rate_of(&e.currency));
        let bytes = serde.serialize(&transactions, &e).map_err(|e| anyhow!("{e}"))?;
        testkit::produce(&p, &transactions, &e.account_id, &bytes, e.occurred_at.0);
        if i % 1000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Duration::from_secs(120)).context("flushing the input")?;
    eprintln!(
        "bench: produced {records} transactions to {transactions} ({partitions} partitions) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let txn_schema_id = serde.writer_id(&transactions).map_err(|e| anyhow!("{e}"))?;
    let rate_schema_id = rate_serde.writer_id(&rates).map_err(|e| anyhow!("{e}"))?;
    let produced: i64 = (0..partitions).map(|p| kafka.watermarks(&transactions, p).1).sum();
    if produced as u64 != records {
        return Err(anyhow!("{produced} records in {transactions}, {records} produced"));
    }
    Ok(Input {
        transactions,
        rates,
        partitions,
        records,
        txn_schema_id,
        rate_schema_id,
        signed_minor_sum: signed,
        usd_minor_sum: usd,
    })
}

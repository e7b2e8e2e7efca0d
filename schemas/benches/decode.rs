//! Decode throughput of `AvroSerde` (plan cached per writer schema id) against two baselines
//! measured in the same run: serde_avro_fast (typed, the fastest Rust Avro decoder we know) and
//! apache-avro's `from_avro_datum`. apache-avro runs *without* a reader schema, so without
//! resolution, which only flatters it: with one, 0.21 rejects the minimally encoded decimals Java
//! and Python clients write (checked below).
//!
//! `cargo bench --profile dev -p schemas --bench decode` (or without `--profile dev` for a
//! release build).

use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use schemas::registry::EmbeddedRegistry;
use schemas::*;
use streams::serde::Serde;

const N: u32 = 200_000;

fn sample() -> TransactionEvent {
    TransactionEvent {
        transaction_id: "tx-1".into(),
        account_id: "acc-1".into(),
        user_id: "user-1".into(),
        kind: TransactionKind::Payment,
        amount: Decimal::from_str("42.50").expect("decimal"),
        currency: "EUR".into(),
        status: TransactionStatus::Completed,
        category: Category::Groceries,
        counterparty_account_id: None,
        merchant: Some(Merchant { merchant_id: "m-9".into(), name: "Bäckerei Müller".into(), mcc: "0742".into() }),
        goal_id: None,
        channel: Channel::Card,
        location: Some(Location { country: "DE".into(), city: "Berlin".into(), lat: 52.52, lon: 13.405 }),
        occurred_at: TimestampMillis(1_735_689_600_123),
    }
}

fn time(mut f: impl FnMut()) -> Duration {
    for _ in 0..N / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..N {
        f();
    }
    t.elapsed()
}

fn main() {
    let serde = AvroSerde::<TransactionEvent>::new(Arc::new(EmbeddedRegistry::in_memory()));
    let value = sample();
    let bytes = serde.serialize("transactions", &value).expect("encodes");
    let (_, body) = wire::split(&bytes).expect("wire format");
    let schema = &TransactionEvent::contract().schema;
    let fast_schema: serde_avro_fast::Schema = TransactionEvent::contract().json.parse().expect("schema");
    assert_eq!(serde_avro_fast::from_datum_slice::<TransactionEvent>(body, &fast_schema).expect("decodes"), value);
    assert!(
        apache_avro::from_avro_datum(schema, &mut &body[..], Some(schema)).is_err(),
        "apache-avro now resolves minimal decimals: measure it with a reader schema"
    );

    let ours = time(|| {
        black_box(serde.deserialize("transactions", black_box(&bytes)).expect("decodes"));
    });
    // DECODE_PROFILE=1: only finstream's decoder, ten times as long, for `perf record`.
    if std::env::var_os("DECODE_PROFILE").is_some() {
        for _ in 0..10 {
            time(|| {
                black_box(serde.deserialize("transactions", black_box(&bytes)).expect("decodes"));
            });
        }
        return;
    }
    let fast = time(|| {
        let v: TransactionEvent = serde_avro_fast::from_datum_slice(black_box(body), &fast_schema).expect("decodes");
        black_box(v);
    });
    let apache = time(|| {
        black_box(apache_avro::from_avro_datum(schema, &mut black_box(body), None).expect("decodes"));
    });
    let ns = |d: Duration| d.as_nanos() as f64 / f64::from(N);
    println!("TransactionEvent decode, {N} records, ns/record:");
    println!("  finstream AvroSerde (wire header, cached plan, validation): {:>7.0}", ns(ours));
    println!("  serde_avro_fast (body only, no validation):                {:>7.0}", ns(fast));
    println!("  apache-avro from_avro_datum(writer, None) to Value:        {:>7.0}", ns(apache));
    println!("ratio finstream / serde_avro_fast: {:.2}", ns(ours) / ns(fast));
    println!("ratio finstream / apache-avro:     {:.2}", ns(ours) / ns(apache));
}

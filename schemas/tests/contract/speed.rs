//! Decode throughput of `AvroSerde` (plan cached per schema id) against apache-avro's
//! `from_avro_datum` and serde_avro_fast. apache-avro is measured *without* a reader schema (so
//! without resolution, which only flatters it): with one, 0.21 rejects every minimally encoded
//! decimal ("Precision 18 too small to hold decimal values with 3 bytes"), i.e. the bytes Java and
//! Python clients write; the test asserts that too. Ignored by default: run in release, e.g.
//! `cargo test --release -p schemas --test contract speed -- --ignored --nocapture`.

use std::time::Instant;

use schemas::{wire, AvroRecord, AvroSerde, TransactionEvent};
use streams::serde::Serde;

use crate::samples::*;

#[test]
#[ignore]
fn decode_speed() {
    const N: u32 = 200_000;
    let serde = AvroSerde::<TransactionEvent>::new(registry());
    let value = transaction();
    let bytes = serde.serialize("transactions", &value).unwrap();
    let (_, body) = wire::split(&bytes).unwrap();
    let schema = &TransactionEvent::contract().schema;
    let fast_schema: serde_avro_fast::Schema = TransactionEvent::contract().json.parse().unwrap();
    assert_eq!(serde_avro_fast::from_datum_slice::<TransactionEvent>(body, &fast_schema).unwrap(), value);

    let t = Instant::now();
    for _ in 0..N {
        std::hint::black_box(serde.deserialize("transactions", std::hint::black_box(&bytes)).unwrap());
    }
    let ours = t.elapsed();

    assert!(apache_avro::from_avro_datum(schema, &mut &body[..], Some(schema)).is_err());
    let t = Instant::now();
    for _ in 0..N {
        let v = apache_avro::from_avro_datum(schema, &mut std::hint::black_box(body), None).unwrap();
        std::hint::black_box(v);
    }
    let apache = t.elapsed();

    let t = Instant::now();
    for _ in 0..N {
        let v: TransactionEvent = serde_avro_fast::from_datum_slice(std::hint::black_box(body), &fast_schema).unwrap();
        std::hint::black_box(v);
    }
    let fast = t.elapsed();

    let plan = schemas::codec::Plan::resolve(&TransactionEvent::contract().shape, &TransactionEvent::contract().shape)
        .unwrap();
    let t = Instant::now();
    for _ in 0..N {
        std::hint::black_box(schemas::codec::decode(&plan, std::hint::black_box(body)).unwrap());
    }
    let datum_only = t.elapsed();
    let t = Instant::now();
    for _ in 0..N {
        let d = schemas::codec::decode(&plan, std::hint::black_box(body)).unwrap();
        std::hint::black_box(TransactionEvent::from_record(d).unwrap());
    }
    let to_struct = t.elapsed();
    println!("datum only {:?}, to struct {:?}", datum_only / N, to_struct / N);
    let per = |d: std::time::Duration| d.as_nanos() as f64 / f64::from(N);
    println!(
        "TransactionEvent decode, ns/record: finstream AvroSerde (incl. header, validation) {:.0}, \
         apache-avro from_avro_datum(writer, None) to Value {:.0}, serde_avro_fast {:.0}",
        per(ours),
        per(apache),
        per(fast)
    );
    assert!(ours < apache, "the cached plan must beat apache-avro");
}

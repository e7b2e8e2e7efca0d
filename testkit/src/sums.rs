//! The workload of the engine's Kafka tests: `streams::examples::sum_topology` over `(key, i64)`
//! records, and the exactness check every scenario ends with — each key's `read_committed`
//! outputs are the running sums with counts 1..n (no gap, no repeat) ending at a plain loop's sum.

use std::collections::BTreeMap;

use streams::examples::Sum;

use crate::{Consumed, Kafka};

/// `(key, value, timestamp)` input of the sum topology.
pub type Input = Vec<(String, i64, i64)>;

/// Records `from..from + n`: 97 keys, values 0..12, timestamps increasing.
pub fn input(n: usize, from: usize) -> Input {
    (from..from + n).map(|i| (format!("k{}", (i * 31) % 97), (i % 13) as i64, 1_700_000_000_000 + i as i64)).collect()
}

/// Produces `records` (value as 8 big-endian bytes) and waits until the broker has them all.
pub fn produce(kafka: &Kafka, topic: &str, records: &[(String, i64, i64)]) {
    let p = crate::producer(kafka.bootstrap());
    crate::produce_all(&p, topic, records.iter().map(|(k, v, ts)| (k.clone(), v.to_be_bytes(), *ts)));
}

/// Final sum per key, from a plain loop.
pub fn expected(records: &[(String, i64, i64)]) -> BTreeMap<String, Sum> {
    let mut m = BTreeMap::<String, Sum>::new();
    for (k, v, _) in records {
        let s = m.entry(k.clone()).or_default();
        s.count += 1;
        s.total += v;
    }
    m
}

/// Each key's outputs in order.
pub fn sequences(out: &[Consumed]) -> BTreeMap<String, Vec<Sum>> {
    let mut seqs: BTreeMap<String, Vec<Sum>> = BTreeMap::new();
    for c in out {
        let sum =
            serde_json::from_slice(&c.value).unwrap_or_else(|e| panic!("output of {} is no Sum: {e}", c.key_str()));
        seqs.entry(c.key_str().to_string()).or_default().push(sum);
    }
    seqs
}

/// Every key's outputs are the running sums 1..n in order, once each, ending at the expected
/// sum, and every input key has outputs.
pub fn assert_exact(out: &[Consumed], records: &[(String, i64, i64)]) {
    let want = expected(records);
    let seqs = sequences(out);
    let mut broken = Vec::new();
    for (k, seq) in &seqs {
        let counts: Vec<i64> = seq.iter().map(|s| s.count).collect();
        if let Some(at) = counts.iter().enumerate().position(|(i, c)| *c != i as i64 + 1) {
            let around = &counts[at.saturating_sub(2)..(at + 3).min(counts.len())];
            broken.push(format!(
                "{k}: {} outputs, count {} at position {at} (around: {around:?})",
                counts.len(),
                counts[at]
            ));
        }
    }
    assert!(broken.is_empty(), "{} keys' counts do not run 1..n: {}", broken.len(), broken.join("; "));
    for (k, seq) in &seqs {
        assert_eq!(seq.last(), want.get(k), "key {k}: final sum");
    }
    assert_eq!(seqs.len(), want.len(), "every key has outputs");
    assert_eq!(out.len(), records.len(), "one output per input: no loss, no duplicate");
}

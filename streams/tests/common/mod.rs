//! The golden pattern for DSL tests: the same input runs straight and with each kind of crash
//! (`Crash::ALL`) at several points, and the committed outputs and stores must be identical.
//! Tests also compare the straight run against a plain recomputation of the expected result.

#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::Arc;

use streams::topology::BuiltTopology;
use streams::{Crash, DriverConfig, Serde, TopologyTestDriver};

/// One input record, already serialized.
#[derive(Clone, Debug)]
pub struct Input {
    pub topic: String,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub ts: i64,
}

pub fn rec<K: 'static, V: 'static>(
    topic: &str,
    key: &K,
    value: &V,
    ts: i64,
    ks: &dyn Serde<K>,
    vs: &dyn Serde<V>,
) -> Input {
    Input {
        topic: topic.to_string(),
        key: ks.serialize(topic, key).unwrap(),
        value: Some(vs.serialize(topic, value).unwrap()),
        ts,
    }
}

/// A null value (a table tombstone).
pub fn tombstone<K: 'static>(topic: &str, key: &K, ts: i64, ks: &dyn Serde<K>) -> Input {
    Input { topic: topic.to_string(), key: ks.serialize(topic, key).unwrap(), value: None, ts }
}

/// Appends every input, runs to quiescence and observes; returns the observation and the
/// number of simulated failures that happened.
pub fn run<T>(
    topology: &dyn Fn() -> Arc<BuiltTopology>,
    config: DriverConfig,
    inputs: &[Input],
    observe: &dyn Fn(&TopologyTestDriver) -> T,
) -> (T, usize) {
    let mut d = TopologyTestDriver::new(topology(), config).unwrap();
    for i in inputs {
        d.append_raw(&i.topic, Some(i.key.clone()), i.value.clone(), i.ts);
    }
    d.run().unwrap();
    (observe(&d), d.crashes_done)
}

/// Runs straight, then with every kind of crash at each of `crash_at` (processed-record counts,
/// increasing), and asserts every crashed run observes what the straight run did. Returns the
/// straight observation.
pub fn golden<T: PartialEq + Debug>(
    topology: &dyn Fn() -> Arc<BuiltTopology>,
    base: DriverConfig,
    inputs: &[Input],
    crash_at: &[usize],
    observe: &dyn Fn(&TopologyTestDriver) -> T,
) -> T {
    let (straight, none) = run(topology, base.clone(), inputs, observe);
    assert_eq!(none, 0);
    for kind in Crash::ALL {
        let crashes = crash_at.iter().map(|&at| (at, kind)).collect();
        let (crashed, done) = run(topology, DriverConfig { crashes, ..base.clone() }, inputs, observe);
        assert_eq!(done, crash_at.len(), "{kind:?}: every crash happened");
        if crashed != straight {
            panic!(
                "{kind:?}: committed outputs or stores differ from the straight run: {}",
                first_difference(&straight, &crashed)
            );
        }
    }
    straight
}

/// Where two observations' debug forms first differ, with some context.
pub fn first_difference<T: Debug>(a: &T, b: &T) -> String {
    let (a, b) = (format!("{a:?}"), format!("{b:?}"));
    let at = a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(300);
    let window = |s: &str| s.get(from..(at + 200).min(s.len())).unwrap_or("").to_string();
    format!("at char {at}:\n  straight: …{}…\n  crashed:  …{}…", window(&a), window(&b))
}

/// Committed records of `topic` as (key, value, timestamp), sorted: what a consumer reads,
/// independent of how tasks interleaved.
/// A committed record's key, value and timestamp.
pub type RawRec = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

pub fn raw_sorted(d: &TopologyTestDriver, topic: &str) -> Vec<RawRec> {
    let mut v: Vec<_> = d.read_raw(topic).into_iter().map(|r| (r.key, r.value, r.timestamp)).collect();
    v.sort();
    v
}

/// Committed records of `topic`, decoded, as (key, value, timestamp) in a stable order.
pub fn decoded<K: 'static + Debug, V: 'static + Debug>(
    d: &TopologyTestDriver,
    topic: &str,
    ks: &dyn Serde<K>,
    vs: &dyn Serde<V>,
) -> Vec<(K, V, i64)> {
    let mut v: Vec<(K, V, i64)> =
        d.read_output::<K, V>(topic, ks, vs).into_iter().map(|r| (r.key, r.value, r.timestamp)).collect();
    v.sort_by_key(|x| format!("{x:?}"));
    v
}

pub fn sorted_debug<T: Debug>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by_key(|x| format!("{x:?}"));
    v
}

/// Base driver settings for DSL tests: small commits, so crashes land between many of them.
pub fn config() -> DriverConfig {
    DriverConfig { partitions: 3, commit_every: 7, ..Default::default() }
}

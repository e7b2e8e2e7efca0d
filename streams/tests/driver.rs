//! Golden tests on the in-memory driver: every scenario runs straight and with crashes of each
//! kind, and must give identical committed outputs and stores.

use streams::examples::{regroup_topology, sum_topology, Sum};
use streams::record::header;
use streams::{Crash, DriverConfig, I64Serde, JsonSerde, StringSerde, TopologyTestDriver};

fn input(n: usize) -> Vec<(String, i64, i64)> {
    (0..n).map(|i| (format!("{}-{}", ["a", "b", "c"][i % 3], i % 17), (i % 11) as i64, i as i64 * 10)).collect()
}

/// (outputs sorted by key and count, final store, crashes performed)
type SumRun = (Vec<(String, Sum)>, Vec<(String, Sum)>, usize);

fn run_sum(config: DriverConfig, records: &[(String, i64, i64)]) -> SumRun {
    let topo = sum_topology("in", "out").unwrap().build("app").unwrap();
    let mut d = TopologyTestDriver::new(topo, config).unwrap();
    for (k, v, ts) in records {
        d.append_raw("in", Some(k.as_bytes().to_vec()), Some(v.to_be_bytes().to_vec()), *ts);
    }
    d.run().unwrap();
    let mut out: Vec<(String, Sum)> = d
        .read_output::<String, Sum>("out", &StringSerde, &JsonSerde::default())
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.count.cmp(&b.1.count)));
    (out, d.store_all::<String, Sum>("sums"), d.crashes_done)
}

fn crashes(kind: Crash) -> Vec<(usize, Crash)> {
    vec![(13, kind), (140, kind), (141, kind), (777, kind), (1500, kind)]
}

#[test]
fn sum_is_identical_with_and_without_crashes() {
    let records = input(2000);
    let base = DriverConfig { commit_every: 37, ..Default::default() };
    let straight = run_sum(base.clone(), &records);
    assert_eq!(straight.2, 0);
    assert_eq!(straight.0.len(), 2000, "one output per input record");
    // Independent reference: plain loop over the same input.
    let mut expected = std::collections::BTreeMap::<String, Sum>::new();
    for (k, v, _) in &records {
        let s = expected.entry(k.clone()).or_default();
        s.count += 1;
        s.total += v;
    }
    assert_eq!(straight.1, expected.into_iter().collect::<Vec<_>>());
    for kind in Crash::ALL {
        let crashed = run_sum(DriverConfig { crashes: crashes(kind), ..base.clone() }, &records);
        assert_eq!(crashed.2, 5, "{kind:?}: all crashes happened");
        assert_eq!(crashed.0, straight.0, "{kind:?}: outputs identical");
        assert_eq!(crashed.1, straight.1, "{kind:?}: stores identical");
    }
}

#[test]
fn repartition_and_global_table_with_crashes() {
    let run = |crash: Vec<(usize, Crash)>| {
        let topo = regroup_topology("in", "factors", "out").unwrap().build("app").unwrap();
        assert_eq!(topo.subtopologies.len(), 2, "{}", topo.describe());
        assert_eq!(topo.repartition_topics, vec!["app-by-group-repartition".to_string()]);
        let mut d =
            TopologyTestDriver::new(topo, DriverConfig { commit_every: 19, crashes: crash, ..Default::default() })
                .unwrap();
        d.pipe("factors", &"b".to_string(), &10i64, 0, &StringSerde, &I64Serde).unwrap();
        for (k, v, ts) in input(600) {
            d.append_raw("in", Some(k.into_bytes()), Some(v.to_be_bytes().to_vec()), ts);
        }
        d.run().unwrap();
        (d.store_all::<String, Sum>("group-sums"), d.read_raw("out").len(), d.crashes_done)
    };
    let straight = run(vec![]);
    let mut expected = std::collections::BTreeMap::<String, Sum>::new();
    for (k, v, _) in input(600) {
        let g = k.split('-').next().unwrap().to_string();
        let f = if g == "b" { 10 } else { 1 };
        let s = expected.entry(g).or_default();
        s.count += 1;
        s.total += v * f;
    }
    assert_eq!(straight.0, expected.into_iter().collect::<Vec<_>>());
    assert_eq!(straight.1, 600);
    for kind in Crash::ALL {
        let crashed = run(vec![(50, kind), (333, kind), (900, kind)]);
        assert_eq!(crashed.2, 3);
        assert_eq!((crashed.0, crashed.1), (straight.0.clone(), straight.1), "{kind:?}");
    }
}

#[test]
fn bad_records_go_to_dead_letter_topic_with_reason_and_lineage() {
    let topo = sum_topology("in", "out").unwrap().build("app").unwrap();
    let mut d = TopologyTestDriver::new(topo, DriverConfig::default()).unwrap();
    d.pipe_raw("in", Some(b"k".to_vec()), Some(vec![1, 2, 3]), 1).unwrap(); // not 8 bytes
    d.pipe_raw("in", Some(b"k".to_vec()), Some((-5i64).to_be_bytes().to_vec()), 2).unwrap(); // rejected by processor
    d.pipe_raw("in", Some(b"k".to_vec()), Some(7i64.to_be_bytes().to_vec()), 3).unwrap();
    let dlq = d.read_raw("in-dlq");
    assert_eq!(dlq.len(), 2);
    assert_eq!(dlq[0].headers.get_str(header::ERROR_CLASS), Some("invalid_length"));
    assert_eq!(dlq[0].value.as_deref(), Some(&[1u8, 2, 3][..]), "raw bytes kept");
    assert_eq!(dlq[1].headers.get_str(header::ERROR_CLASS), Some("negative_amount"));
    assert_eq!(dlq[1].headers.get_str(header::SOURCE_TOPIC), Some("in"));
    assert_eq!(dlq[1].headers.get_str(header::SOURCE_OFFSET), Some("1"));
    let out = d.read_raw("out");
    assert_eq!(out.len(), 1, "the valid record is not lost");
    assert_eq!(out[0].headers.get_str(header::SOURCE_OFFSET), Some("2"), "lineage header");
    assert_eq!(d.store_all::<String, Sum>("sums"), vec![("k".to_string(), Sum { count: 1, total: 7 })]);
}

/// `finstream_records_produced_total` counts what the topology emitted, and a record counted as
/// processed has its outputs counted too (readers of the metrics use the pair as a barrier).
#[test]
fn produced_and_processed_counters_agree_with_the_outputs() {
    let records = input(300);
    let topo = sum_topology("in", "out").unwrap().build("app").unwrap();
    let mut d = TopologyTestDriver::new(topo, DriverConfig { commit_every: 37, ..Default::default() }).unwrap();
    for (k, v, ts) in &records {
        d.append_raw("in", Some(k.as_bytes().to_vec()), Some(v.to_be_bytes().to_vec()), *ts);
    }
    d.run().unwrap();
    let m = d.metrics();
    assert_eq!(m.records_produced.with_label_values(&["out"]).get(), 300);
    assert_eq!(m.records_processed.with_label_values(&["input"]).get(), 300);
    assert_eq!(m.records_processed.with_label_values(&["sum"]).get(), 300);
}

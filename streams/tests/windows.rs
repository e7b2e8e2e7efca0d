//! Windows on the test driver: tumbling and hopping assignment, grace, the late path, and
//! emit-on-close, each also with crashes in the middle.

use std::marker::PhantomData;

use streams::window::{OpenWindowSerde, UnitSerde};
use streams::{
    Crash, DriverConfig, EmitStrategy, I64Serde, JsonSerde, StoreSpec, StringSerde, TimeWindows, Topology,
    TopologyTestDriver, Windowed, WindowedAggregate,
};

fn topology(windows: TimeWindows, emit: EmitStrategy) -> Topology {
    let mut t = Topology::new();
    t.add_source::<String, i64>("in", &["spend"], StringSerde, I64Serde)
        .unwrap()
        .add_processor(
            "window-sum",
            move || WindowedAggregate {
                store: "win".to_string(),
                windows,
                emit,
                late_child: Some("late".to_string()),
                initializer: || 0i64,
                aggregator: |_k: &String, v: &i64, acc: i64| acc + v,
                _t: PhantomData,
            },
            &["in"],
        )
        .unwrap()
        .add_state_store(StoreSpec::key_value::<String, i64>("win", StringSerde, I64Serde), &["window-sum"])
        .unwrap()
        .add_state_store(
            StoreSpec::key_value::<(i64, Windowed<String>), ()>(
                "win-open",
                OpenWindowSerde::<String>::default(),
                UnitSerde,
            ),
            &["window-sum"],
        )
        .unwrap()
        .add_sink::<Windowed<String>, i64>("out", "totals", JsonSerde::default(), I64Serde, &["window-sum"])
        .unwrap()
        .add_sink::<String, i64>("late", "late-spend", StringSerde, I64Serde, &["window-sum"])
        .unwrap();
    t
}

/// (window totals, late records, late-record metric)
type WindowRun = (Vec<(String, i64, i64, i64)>, Vec<(String, i64)>, u64);

fn run(
    windows: TimeWindows,
    emit: EmitStrategy,
    input: &[(&str, i64, i64)],
    crashes: Vec<(usize, Crash)>,
) -> WindowRun {
    let topo = topology(windows, emit).build("w").unwrap();
    let mut d =
        TopologyTestDriver::new(topo, DriverConfig { partitions: 2, commit_every: 2, crashes, ..Default::default() })
            .unwrap();
    for (k, v, ts) in input {
        d.pipe("spend", &k.to_string(), v, *ts, &StringSerde, &I64Serde).unwrap();
    }
    let mut totals: Vec<(String, i64, i64, i64)> = d
        .read_output::<Windowed<String>, i64>("totals", &JsonSerde::default(), &I64Serde)
        .into_iter()
        .map(|r| (r.key.key, r.key.start, r.key.end, r.value))
        .collect();
    totals.sort();
    let mut late: Vec<(String, i64)> = d
        .read_output::<String, i64>("late-spend", &StringSerde, &I64Serde)
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    late.sort();
    let late_count = d.metrics().late_records.with_label_values(&["window-sum"]).get();
    (totals, late, late_count)
}

const INPUT: &[(&str, i64, i64)] = &[
    ("alice", 1, 1),
    ("alice", 2, 5),
    ("alice", 4, 12),  // window 10
    ("alice", 8, 3),   // stream time 12: window 0 closes at 10 + 5 = 15, still open
    ("alice", 16, 21), // stream time 21: window 0 closed
    ("alice", 32, 4),  // late: only window 0 contains 4
    ("alice", 64, 14), // window 10 closes at 25: still open
];

#[test]
fn tumbling_on_update_with_grace_and_late_path() {
    let (totals, late, late_count) = run(TimeWindows::tumbling(10, 5), EmitStrategy::OnUpdate, INPUT, vec![]);
    assert_eq!(
        totals,
        vec![
            ("alice".into(), 0, 10, 1),
            ("alice".into(), 0, 10, 3),
            ("alice".into(), 0, 10, 11),
            ("alice".into(), 10, 20, 4),
            ("alice".into(), 10, 20, 68),
            ("alice".into(), 20, 30, 16),
        ]
    );
    assert_eq!(late, vec![("alice".to_string(), 32)]);
    assert_eq!(late_count, 1);
}

#[test]
fn emit_on_close_gives_one_final_result_per_window() {
    let mut input = INPUT.to_vec();
    input.push(("alice", 0, 40)); // stream time 40 closes windows 10 (at 25) and 20 (at 35)
    let (totals, late, _) = run(TimeWindows::tumbling(10, 5), EmitStrategy::OnWindowClose, &input, vec![]);
    assert_eq!(totals, vec![("alice".into(), 0, 10, 11), ("alice".into(), 10, 20, 68), ("alice".into(), 20, 30, 16)]);
    assert_eq!(late, vec![("alice".to_string(), 32)]);
    for kind in Crash::ALL {
        let crashed =
            run(TimeWindows::tumbling(10, 5), EmitStrategy::OnWindowClose, &input, vec![(3, kind), (6, kind)]);
        assert_eq!((crashed.0, crashed.1), (totals.clone(), late.clone()), "{kind:?}");
    }
}

#[test]
fn hopping_windows_count_a_record_in_each_window_containing_it() {
    let (totals, _, _) = run(TimeWindows::hopping(10, 5, 0), EmitStrategy::OnUpdate, &[("bob", 1, 7)], vec![]);
    assert_eq!(totals, vec![("bob".into(), 0, 10, 1), ("bob".into(), 5, 15, 1)]);
}

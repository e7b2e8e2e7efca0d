//! (a) Crash test: the engine runs as a separate OS process that is SIGKILLed at random points
//! while it processes 50k records; each time it restarts on the same state directory. The
//! read_committed output and the final stores must be exactly those of one clean run.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use runtime::KafkaStreams;
use streams::examples::{sum_topology, Sum};
use streams::StreamsMetrics;

const RECORDS: usize = 50_000;

/// The child: runs the sum topology until killed, or (with FINSTREAM_DUMP set) until it has
/// applied every record, then closes cleanly and dumps its committed store.
#[test]
fn crash_child() {
    let Ok(bs) = std::env::var("FINSTREAM_CRASH_CHILD") else { return };
    let dir = std::env::var("FINSTREAM_STATE_DIR").unwrap();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let mut app = KafkaStreams::new(
        sum_topology("in", "out").unwrap(),
        config(&bs, "crashapp", dir.as_ref()),
        StreamsMetrics::default(),
    )
    .unwrap();
    app.start().unwrap();
    let dump = std::env::var("FINSTREAM_DUMP").ok();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        assert!(app.error().is_none(), "{:?}", app.error());
        if let Some(path) = &dump {
            let entries = app.scan_local("sums", None).unwrap();
            let total: i64 = entries.iter().map(|(_, v)| serde_json::from_slice::<Sum>(v).unwrap().count).sum();
            if std::env::var("CHILD_LOG").is_ok() {
                eprintln!("child: {total} applied, ready {}", app.is_ready());
            }
            if total as usize == RECORDS {
                let map: BTreeMap<String, Sum> = entries
                    .iter()
                    .map(|(k, v)| (String::from_utf8(k.clone()).unwrap(), serde_json::from_slice(v).unwrap()))
                    .collect();
                app.close().unwrap();
                std::fs::write(path, serde_json::to_vec(&map).unwrap()).unwrap();
                return;
            }
        }
    }
}

fn spawn_child(bs: &str, state: &std::path::Path, dump: Option<&std::path::Path>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("FINSTREAM_CRASH_CHILD", bs)
        .env("FINSTREAM_STATE_DIR", state)
        .env("RUST_LOG", std::env::var("CHILD_LOG").unwrap_or_else(|_| "warn".into()));
    if let Some(d) = dump {
        cmd.env("FINSTREAM_DUMP", d);
    }
    cmd.spawn().expect("child starts")
}

fn output_high_watermark(consumer: &BaseConsumer) -> i64 {
    (0..4).map(|p| consumer.fetch_watermarks("out", p, Duration::from_secs(5)).map(|(_, h)| h).unwrap_or(0)).sum()
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    if std::env::var("FINSTREAM_CRASH_CHILD").is_ok() {
        return;
    }
    let mock = mock_cluster(&[("in", 4), ("out", 4), ("crashapp-sums-changelog", 4), ("crashapp-commits", 4)]);
    let bs = mock.bootstrap_servers();
    let records = input(RECORDS);
    let p = producer(&bs);
    produce_all(&p, "in", &records);

    let state = tempfile::tempdir().unwrap();
    let watcher: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bs).create().unwrap();
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7));
    let mut kills = 0;
    let wanted: usize = std::env::var("CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    while kills < wanted {
        let mut child = spawn_child(&bs, state.path(), None);
        let start_hw = output_high_watermark(&watcher);
        // Kill once the child has visibly produced some output (mid-processing), after a
        // random amount of progress.
        let threshold = start_hw + rng.random_range(500..6000);
        let deadline = Instant::now() + Duration::from_secs(60);
        while output_high_watermark(&watcher) < threshold && Instant::now() < deadline {
            assert!(child.try_wait().unwrap().is_none(), "child exited on its own");
            std::thread::sleep(Duration::from_millis(rng.random_range(5..50)));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        eprintln!("kill {kills}: output high watermark {} (started at {start_hw})", output_high_watermark(&watcher));
    }
    let dump = state.path().join("final-store.json");
    let mut child = spawn_child(&bs, state.path(), Some(&dump));
    let status = child.wait().unwrap();
    assert!(status.success(), "final run failed");

    // Outputs: per key exactly the running sums of a clean run, in order, once each.
    let out = read_committed(&bs, "out", 4, RECORDS, Duration::from_secs(60));
    let mut expected_seq: BTreeMap<String, Vec<Sum>> = BTreeMap::new();
    let mut running: BTreeMap<String, Sum> = BTreeMap::new();
    for (k, v, _) in &records {
        let s = running.entry(k.clone()).or_default();
        s.count += 1;
        s.total += v;
        expected_seq.entry(k.clone()).or_default().push(*s);
    }
    let mut actual_seq: BTreeMap<String, Vec<Sum>> = BTreeMap::new();
    for (_, k, v) in &out {
        actual_seq.entry(k.clone()).or_default().push(serde_json::from_slice(v).unwrap());
    }
    assert_eq!(out.len(), RECORDS, "no duplicates, no loss in read_committed output");
    assert!(actual_seq == expected_seq, "per-key output sequences differ from a clean run");

    // Stores: exactly the clean run's final sums.
    let store: BTreeMap<String, Sum> = serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
    assert_eq!(store, running);
}

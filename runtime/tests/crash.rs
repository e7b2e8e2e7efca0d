//! Crash test on a real broker: the engine runs as a separate OS process that is SIGKILLed at
//! random points, and aborts itself at each named fail point of the commit cycle, while it
//! processes 30k records; each time it restarts on the same state directory. The read_committed
//! output and the final store must be exactly those of one clean run, with no transaction left
//! open.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use runtime::KafkaStreams;
use streams::examples::{sum_topology, Sum};
use streams::{FailPoint, StreamsMetrics};
use testkit::process::child_role;
use testkit::sums::{assert_exact, expected, input, produce};
use testkit::{unique, Child, Kafka, Reader};

const RECORDS: usize = 30_000;

/// The child: runs the sum topology until killed, or (with `DUMP` set) until it has applied
/// every record, then closes cleanly and dumps its committed store.
#[test]
fn crash_child() {
    if child_role() != Some("crash_child") {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let kafka = Kafka::shared();
    let config = testkit::streams_config(kafka.bootstrap(), &env("APP"), env("STATE").as_ref());
    let mut app =
        KafkaStreams::new(sum_topology(&env("IN"), &env("OUT")).unwrap(), config, StreamsMetrics::default()).unwrap();
    app.start().unwrap();
    let dump = std::env::var("DUMP").ok();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        assert!(app.error().is_none(), "{:?}", app.error());
        let Some(path) = &dump else { continue };
        let entries = app.scan_local("sums", None).unwrap();
        let map: BTreeMap<String, Sum> = entries
            .iter()
            .map(|(k, v)| (String::from_utf8(k.clone()).unwrap(), serde_json::from_slice(v).unwrap()))
            .collect();
        if map.values().map(|s| s.count as usize).sum::<usize>() == RECORDS {
            app.close().unwrap();
            std::fs::write(path, serde_json::to_vec(&map).unwrap()).unwrap();
            return;
        }
    }
}

fn output_high_watermark(kafka: &Kafka, topic: &str) -> i64 {
    (0..4).map(|p| kafka.watermarks(topic, p).1).sum()
}

#[test]
fn sigkill_at_random_points_and_fail_points_loses_and_duplicates_nothing() {
    if child_role().is_some() {
        return;
    }
    let kafka = Kafka::shared();
    let (i, o, app) = (unique("in"), unique("out"), unique("crash"));
    kafka.create_topics(&[(&i, 4), (&o, 4)]);
    let records = input(RECORDS, 0);
    produce(kafka, &i, &records);
    let state = tempfile::tempdir().unwrap();
    let state_path = state.path().to_str().unwrap();
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let env = [("APP", app.as_str()), ("IN", i.as_str()), ("OUT", o.as_str()), ("STATE", state_path)];
    // Three SIGKILLs after a random amount of visible progress, then one self-abort at each
    // fail point (the third commit reaching it).
    for kill in 0..3 {
        let mut child = Child::spawn("crash_child", kafka, &env);
        let threshold = output_high_watermark(kafka, &o) + rng.random_range(500..4000);
        let deadline = Instant::now() + Duration::from_secs(90);
        while output_high_watermark(kafka, &o) < threshold && Instant::now() < deadline {
            assert!(child.try_wait().is_none(), "child exited on its own");
            std::thread::sleep(Duration::from_millis(rng.random_range(5..50)));
        }
        child.kill();
        eprintln!("kill {kill}: output high watermark {}", output_high_watermark(kafka, &o));
    }
    for point in FailPoint::ALL {
        let spec = format!("{}@3", point.name());
        let mut with_point = env.to_vec();
        with_point.push(("FINSTREAM_FAIL_POINT", &spec));
        let mut child = Child::spawn("crash_child", kafka, &with_point);
        let status = child.wait(Duration::from_secs(120));
        assert!(!status.success(), "the child aborted at {spec}: {status:?}");
    }
    let dump = state.path().join("final-store.json");
    let mut with_dump = env.to_vec();
    let dump_path = dump.to_str().unwrap().to_string();
    with_dump.push(("DUMP", &dump_path));
    let status = Child::spawn("crash_child", kafka, &with_dump).wait(Duration::from_secs(180));
    assert!(status.success(), "final run failed");

    let mut reader = Reader::new(kafka.bootstrap(), &o);
    assert_exact(reader.wait_for(RECORDS, Duration::from_secs(60)), &records);
    let store: BTreeMap<String, Sum> = serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
    assert_eq!(store, expected(&records));
    assert!(kafka.pending_transactions(&o).is_empty());
}

//! Exactly-once under the faults of issue 13, on a real broker: a zombie, a second process with
//! the same identity, a stall longer than the transaction timeout, idle input with wall-clock
//! punctuation, a broker killed mid-stream, and a poison output. Every scenario ends with the
//! `read_committed` output checked per key (counts 1..n, no gap, no repeat) and the final sums
//! checked against a plain loop, and no transaction left open.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use runtime::KafkaStreams;
use streams::examples::{sum_topology, Sum, SumProcessor};
use streams::{
    I64Serde, JsonSerde, ProcessError, Processor, ProcessorContext, PunctuationType, Record, StoreSpec, StreamsMetrics,
    StringSerde, Topology,
};
use testkit::sums::{assert_exact, input, produce};
use testkit::{process::child_role, unique, wait_until, Child, Kafka, Reader, Signal};

const PARTITIONS: i32 = 4;

fn topics(kafka: &Kafka) -> (String, String) {
    let (i, o) = (unique("in"), unique("out"));
    kafka.create_topics(&[(&i, PARTITIONS), (&o, PARTITIONS)]);
    (i, o)
}

/// A child process: the sum topology from `IN` to `OUT` as application `APP` on state dir
/// `STATE`, until killed. A failed stream thread exits with status 3 after printing the error.
#[test]
fn sum_instance() {
    if child_role() != Some("sum_instance") {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let kafka = Kafka::shared();
    let mut config = testkit::streams_config(kafka.bootstrap(), &env("APP"), env("STATE").as_ref());
    if let Ok(ms) = std::env::var("TXN_TIMEOUT_MS") {
        config.transaction_timeout_ms = Some(ms.parse().expect("TXN_TIMEOUT_MS in milliseconds"));
    }
    let mut app =
        KafkaStreams::new(sum_topology(&env("IN"), &env("OUT")).unwrap(), config, StreamsMetrics::default()).unwrap();
    app.start().unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(e) = app.error() {
            eprintln!("instance failed: {e}");
            std::process::exit(3);
        }
    }
}

fn spawn(kafka: &Kafka, app: &str, state: &std::path::Path, input: &str, output: &str) -> Child {
    spawn_with(kafka, app, state, input, output, &[])
}

fn spawn_with(
    kafka: &Kafka,
    app: &str,
    state: &std::path::Path,
    input: &str,
    output: &str,
    extra: &[(&str, &str)],
) -> Child {
    let log = std::env::var("CHILD_LOG").unwrap_or_else(|_| "warn,librdkafka=error".into());
    let mut env =
        vec![("APP", app), ("STATE", state.to_str().unwrap()), ("IN", input), ("OUT", output), ("RUST_LOG", &log)];
    env.extend_from_slice(extra);
    Child::spawn("sum_instance", kafka, &env)
}

#[test]
fn a_zombie_is_fenced_and_results_stay_exact() {
    if child_role().is_some() {
        return;
    }
    let kafka = Kafka::shared();
    let (i, o) = topics(kafka);
    let app = unique("zombie");
    let first = input(8_000, 0);
    produce(kafka, &i, &first);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = spawn(kafka, &app, da.path(), &i, &o);
    let _b = spawn(kafka, &app, db.path(), &i, &o);
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    reader.wait_for(4_000, Duration::from_secs(90));
    // Paused past its session and transaction timeouts: the group moves its partitions to b and
    // the broker aborts its open transaction.
    a.signal(Signal::Stop);
    let second = input(8_000, 8_000);
    produce(kafka, &i, &second);
    std::thread::sleep(Duration::from_millis(testkit::SESSION_TIMEOUT_MS + testkit::TRANSACTION_TIMEOUT_MS + 2_000));
    // Back: whatever it had in flight must not become visible.
    a.signal(Signal::Cont);
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    reader.wait_for(all.len(), Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(3));
    let out = reader.read_to_end(Duration::from_secs(30)).to_vec();
    assert_exact(&out, &all);
    assert!(kafka.pending_transactions(&o).is_empty(), "no transaction left open on {o}");
}

#[test]
fn a_second_process_with_the_same_identity_fences_the_first() {
    if child_role().is_some() {
        return;
    }
    let kafka = Kafka::shared();
    let (i, o) = topics(kafka);
    let app = unique("twin");
    let first = input(6_000, 0);
    produce(kafka, &i, &first);
    let da = tempfile::tempdir().unwrap();
    // A transaction timeout well above this test's stalls: a fencing is told from a timed-out
    // transaction by the transaction's age (see `ThreadProducer::classify`), and on a loaded
    // machine a rebalance can keep a transaction open past the tests' usual 10 s, and then the
    // older instance takes its fencing for a timeout and fences the copy back (the likely cause,
    // not confirmed, of one run in which the older instance did not stop).
    let twin = [("TXN_TIMEOUT_MS", "60000")];
    let mut a = spawn_with(kafka, &app, da.path(), &i, &o, &twin);
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    reader.wait_for(first.len(), Duration::from_secs(90));
    // A copy of a's state directory: same process id, so the same transactional ids.
    let db = tempfile::tempdir().unwrap();
    copy_dir(da.path(), db.path());
    let _b = spawn_with(kafka, &app, db.path(), &i, &o, &twin);
    // A fenced producer learns it only at its next transactional call, so input keeps coming
    // until the older instance stops: on a loaded machine the copy can take longer to
    // initialize than the older instance takes to process one batch, after which it would sit
    // idle, fenced and unaware (once in a full suite: it "did not stop within 90 s").
    let mut all = first.clone();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        let batch = input(1_000, all.len());
        produce(kafka, &i, &batch);
        all.extend(batch);
        if let Some(status) = a.wait_at_most(Duration::from_secs(3)) {
            break status;
        }
        assert!(Instant::now() < deadline, "the older instance did not stop within 90 s");
    };
    assert_eq!(status.code(), Some(3), "the older instance stops, fenced: {status:?}");
    reader.wait_for(all.len(), Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    assert_exact(reader.read_to_end(Duration::from_secs(30)), &all);
    assert!(kafka.pending_transactions(&o).is_empty());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Sums like [`SumProcessor`], but the first time this process sees key `stall` it sleeps
/// past the transaction timeout, holding its transaction open.
struct StallingSum {
    inner: SumProcessor,
}

static STALLED: AtomicBool = AtomicBool::new(false);

impl Processor<String, i64> for StallingSum {
    fn process(&mut self, record: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        if record.key == "stall" && !STALLED.swap(true, Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(testkit::TRANSACTION_TIMEOUT_MS + 3_000));
        }
        self.inner.process(record, ctx)
    }
}

#[test]
fn a_stall_longer_than_the_transaction_timeout_is_survived() {
    if child_role().is_some() {
        return;
    }
    let kafka = Kafka::shared();
    let (i, o) = topics(kafka);
    let mut records = input(3_000, 0);
    records.insert(1_500, ("stall".into(), 1, 1_700_000_000_000 + 1_500));
    produce(kafka, &i, &records);
    let mut t = Topology::new();
    t.add_source::<String, i64>("input", &[&i], StringSerde, I64Serde)
        .unwrap()
        .add_processor("sum", || StallingSum { inner: SumProcessor { store: "sums" } }, &["input"])
        .unwrap()
        .add_state_store(
            StoreSpec::key_value::<String, Sum>("sums", StringSerde, JsonSerde::<Sum>::default()),
            &["sum"],
        )
        .unwrap()
        .add_sink::<String, Sum>("output", &o, StringSerde, JsonSerde::<Sum>::default(), &["sum"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(kafka.bootstrap(), &unique("stall"), dir.path());
    let mut app = KafkaStreams::new(t, config, StreamsMetrics::default()).unwrap();
    app.start().unwrap();
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    reader.wait_for(records.len(), Duration::from_secs(120));
    assert!(STALLED.load(Ordering::SeqCst), "the stall happened");
    assert!(app.error().is_none(), "the thread survived: {:?}", app.error());
    std::thread::sleep(Duration::from_secs(2));
    assert_exact(reader.read_to_end(Duration::from_secs(30)), &records);
    app.close().unwrap();
    assert!(kafka.pending_transactions(&o).is_empty());
}

/// Emits a tick (1, 2, 3, ...) on every wall-clock punctuation, counting in its store.
struct Ticker;

impl Processor<String, i64> for Ticker {
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        ctx.schedule(200, PunctuationType::WallClockTime);
        Ok(())
    }
    fn process(&mut self, _: Record<String, i64>, _: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        Ok(())
    }
    fn punctuate(&mut self, _: PunctuationType, now: i64, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let key = format!("tick-{}", ctx.partition());
        let mut store = ctx.kv_store::<String, i64>("ticks")?;
        let n = store.get(&key)?.unwrap_or(0) + 1;
        store.put(&key, &n)?;
        ctx.forward(Record::new(key, n, now))
    }
}

#[test]
fn idle_input_with_wall_clock_punctuation_commits_what_it_produces() {
    if child_role().is_some() {
        return;
    }
    let kafka = Kafka::shared();
    let (i, o) = topics(kafka);
    let mut t = Topology::new();
    t.add_source::<String, i64>("input", &[&i], StringSerde, I64Serde)
        .unwrap()
        .add_processor("ticker", || Ticker, &["input"])
        .unwrap()
        .add_state_store(StoreSpec::key_value::<String, i64>("ticks", StringSerde, I64Serde), &["ticker"])
        .unwrap()
        .add_sink::<String, i64>("output", &o, StringSerde, I64Serde, &["ticker"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(kafka.bootstrap(), &unique("idle"), dir.path());
    let metrics = StreamsMetrics::default();
    let mut app = KafkaStreams::new(t, config, metrics.clone()).unwrap();
    app.start().unwrap();
    // No input at all, for longer than the transaction timeout.
    std::thread::sleep(Duration::from_millis(testkit::TRANSACTION_TIMEOUT_MS + 5_000));
    assert!(app.error().is_none(), "{:?}", app.error());
    app.close().unwrap();
    let out = testkit::read_committed(kafka.bootstrap(), &o);
    let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for c in &out {
        per_key.entry(c.key_str().to_string()).or_default().push(i64::from_be_bytes(c.value[..8].try_into().unwrap()));
    }
    assert_eq!(per_key.len(), PARTITIONS as usize, "every task ticked: {:?}", per_key.keys());
    for (k, ticks) in &per_key {
        assert!(ticks.len() >= 40, "{k}: {} ticks in 15 s", ticks.len());
        assert_eq!(ticks, &(1..=ticks.len() as i64).collect::<Vec<_>>(), "{k}: no tick lost or doubled");
    }
    assert_eq!(metrics.aborts.get(), 0, "no transaction timed out");
}

#[test]
// A single broker restarted after SIGKILL skips the ABORT markers of the transaction it times out
// (docs/exactly-once.md, "Known hole"): this fails in about half the runs until that is handled.
#[ignore = "Kafka skips ABORT markers after a single-broker restart (docs/exactly-once.md); run with --ignored"]
fn the_broker_killed_mid_stream_and_restarted_loses_and_doubles_nothing() {
    if child_role().is_some() {
        return;
    }
    // The engine runs in this process: its warnings (RUST_LOG for more) go to the test output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let kafka = Kafka::cluster(1);
    let (i, o) = topics(&kafka);
    let records = input(20_000, 0);
    produce(&kafka, &i, &records);
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(kafka.bootstrap(), &unique("brokerkill"), dir.path());
    let mut app = KafkaStreams::new(sum_topology(&i, &o).unwrap(), config, StreamsMetrics::default()).unwrap();
    app.start().unwrap();
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    reader.wait_for(3_000, Duration::from_secs(90));
    kafka.kill_node(1, Signal::Kill);
    std::thread::sleep(Duration::from_secs(3));
    kafka.restart_node(1);
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    reader.wait_for(records.len(), Duration::from_secs(180));
    assert!(app.error().is_none(), "{:?}", app.error());
    std::thread::sleep(Duration::from_secs(2));
    assert_exact(reader.read_to_end(Duration::from_secs(30)), &records);
    app.close().unwrap();
    assert!(kafka.pending_transactions(&o).is_empty());
}

/// Writes each value as that many bytes, to a topic that takes at most 1000.
struct Inflate;

impl Processor<String, i64> for Inflate {
    fn process(&mut self, record: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let value = "x".repeat(record.value as usize);
        ctx.forward(record.with_value(value))
    }
}

#[test]
fn a_poison_output_stops_the_thread_with_its_reason_instead_of_looping() {
    if child_role().is_some() {
        return;
    }
    let kafka = Kafka::shared();
    let (i, o) = (unique("in"), unique("out"));
    kafka.create_topics(&[(&i, 1)]);
    kafka.create_topics_with(&[(&o, 1)], &[("max.message.bytes", "1000")]);
    produce(kafka, &i, &[("small".into(), 10, 1), ("big".into(), 5_000, 2), ("small".into(), 10, 3)]);
    let mut t = Topology::new();
    t.add_source::<String, i64>("input", &[&i], StringSerde, I64Serde)
        .unwrap()
        .add_processor("inflate", || Inflate, &["input"])
        .unwrap()
        .add_sink::<String, String>("output", &o, StringSerde, StringSerde, &["inflate"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(kafka.bootstrap(), &unique("poison"), dir.path());
    let metrics = StreamsMetrics::default();
    let mut app = KafkaStreams::new(t, config, metrics.clone()).unwrap();
    let started = Instant::now();
    app.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || app.error().is_some()), "the thread stops");
    let error = app.error().unwrap();
    assert!(
        error.contains(&o) && error.to_lowercase().contains("too large"),
        "names the topic and the reason: {error}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(metrics.aborts.get() <= 1, "no abort loop: {} aborts", metrics.aborts.get());
    assert!(testkit::read_committed(kafka.bootstrap(), &o).is_empty(), "nothing of the failed transaction is visible");
}

#[test]
fn missing_sources_and_co_partitioning_mismatches_are_refused_at_start() {
    if child_role().is_some() {
        return;
    }
    let kafka = Kafka::shared();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, o) = (unique("a"), unique("b"), unique("out"));
    let topology = || {
        let mut t = Topology::new();
        t.add_source::<String, i64>("a", &[&a], StringSerde, I64Serde)
            .unwrap()
            .add_source::<String, i64>("b", &[&b], StringSerde, I64Serde)
            .unwrap()
            .add_processor("sum", || SumProcessor { store: "sums" }, &["a", "b"])
            .unwrap()
            .add_state_store(
                StoreSpec::key_value::<String, Sum>("sums", StringSerde, JsonSerde::<Sum>::default()),
                &["sum"],
            )
            .unwrap()
            .add_sink::<String, Sum>("output", &o, StringSerde, JsonSerde::<Sum>::default(), &["sum"])
            .unwrap();
        t
    };
    let config = testkit::streams_config(kafka.bootstrap(), &unique("copart"), dir.path());
    let start = |config: runtime::StreamsConfig| {
        let mut app = KafkaStreams::new(topology(), config, StreamsMetrics::default()).unwrap();
        app.start().map(|_| app)
    };
    let missing = start(config.clone()).err().expect("missing sources refused").to_string();
    assert!(missing.contains(&a) && missing.contains(&b) && missing.contains("do not exist"), "{missing}");
    kafka.create_topics(&[(&a, 4), (&b, 3), (&o, 4)]);
    let mismatch = start(config).err().expect("mismatch refused").to_string();
    assert!(
        mismatch.contains(&a) && mismatch.contains(&b) && mismatch.contains("same number of partitions"),
        "{mismatch}"
    );
}

#[test]
fn settings_that_break_the_guarantees_are_refused() {
    if child_role().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("transactional.id", "mine"),
        ("isolation.level", "read_uncommitted"),
        ("enable.auto.commit", "true"),
        ("transaction.timeout.ms", "60000"),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("group.remote.assignor", "uniform"),
    ] {
        let mut config = testkit::streams_config("127.0.0.1:1", "refused", dir.path());
        config.kafka.insert(key.into(), value.into());
        let result = KafkaStreams::new(sum_topology("in", "out").unwrap(), config, StreamsMetrics::default());
        let error = result.err().unwrap_or_else(|| panic!("{key}={value} accepted")).to_string();
        assert!(error.contains(key) || error.contains(value), "{key}: {error}");
    }
}

#[test]
fn exactly_once_is_refused_on_the_mock_cluster() {
    if child_role().is_some() {
        return;
    }
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic("in", 1, 1).unwrap();
    mock.create_topic("out", 1, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(&mock.bootstrap_servers(), "on-mock", dir.path());
    let mut app = KafkaStreams::new(sum_topology("in", "out").unwrap(), config, StreamsMetrics::default()).unwrap();
    let error = app.start().expect_err("refused").to_string();
    assert!(error.contains("mock cluster") && error.contains("at_least_once"), "{error}");
}

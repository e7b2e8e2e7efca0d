//! The finance topology under crashes, on Apache Kafka: three instances (child processes) with
//! two stream threads each process over 100k generated events (the generator's backfill preset,
//! scaled up: order-robust, budgets and goals set once) while the test SIGKILLs instances at random moments and starts instances armed to
//! abort themselves at each named fail point of the commit cycle (after the changelog flush,
//! after `send_offsets_to_transaction`, between the transaction commit and the RocksDB apply),
//! each restarted on its state directory. Afterwards:
//!
//! - a fresh instance restores every store from its changelog, and every store equals the
//!   independent reference model (`connectors::reference`) to the last minor unit;
//! - what a `read_committed` consumer sees on the derived topics is what a clean run writes:
//!   per account, every applied leg once (`applied_count` 1..n in order, each transaction id
//!   once, the same ids as the in-memory driver's clean run); every budget alert and notification
//!   id once;
//! - no partition of any topic the application writes has a transaction left open (LSO = HW).
//!
//! The input arrives in 24 chunks with crash events between them and goes on after it is all
//! written (the preset makes every checked outcome independent of processing order, so no chunk
//! waits for the one before); the end is judged from outside: the group's committed offsets
//! against the inputs' high watermarks and against the last committed record of each
//! repartition partition.
//!
//! `KILL_USERS`, `KILL_DAYS`, `KILL_SEED` and `KILL_EVENTS` (kills at least) size a run.

mod money;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use connectors::GeneratorConfig;
use finstream::config::AppConfig;
use finstream::{app, registry};
use money::kafka::Barrier;
use money::{Actual, Raw};
use rand::{Rng, SeedableRng};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use schemas::BalanceUpdated;
use streams::{FailPoint, StreamsMetrics};
use testkit::process::child_role;
use testkit::{Child, Kafka};

const APP: &str = "finance-kill";
const PARTITIONS: i32 = 6;
const INSTANCES: usize = 3;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The configuration every instance runs with; `registry_url` empty: the embedded registry.
fn app_config(bootstrap: &str, state: &std::path::Path, registry_url: &str) -> AppConfig {
    let mut config = money::kafka::app_config(bootstrap, APP, state);
    config.schema_registry.url = registry_url.into();
    config
}

/// The child: one finance instance on `STATE` with the parent's registry at `REGISTRY`, until
/// killed (or until a fail point armed by `FINSTREAM_FAIL_POINT` aborts it). A failed stream
/// thread exits with status 3.
#[test]
fn finance_instance() {
    if child_role() != Some("finance_instance") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let env = |k: &str| std::env::var(k).unwrap();
    let config = app_config(Kafka::shared().bootstrap(), env("STATE").as_ref(), &env("REGISTRY"));
    let registry = registry::start(&config.schema_registry, &config.streams).unwrap();
    let mut app = app::finance_streams(&config, registry.client.clone(), StreamsMetrics::default()).unwrap();
    app.start().unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(e) = app.error() {
            eprintln!("finance instance failed: {e}");
            std::process::exit(3);
        }
    }
}

/// The instances: child processes on their own state directories, restarted after each crash.
struct Instances<'a> {
    kafka: &'a Kafka,
    registry: String,
    dirs: Vec<tempfile::TempDir>,
    running: Vec<Option<Child>>,
    /// The fail point each instance was started with, if any.
    armed: Vec<Option<String>>,
    kills: usize,
    aborts: usize,
}

impl<'a> Instances<'a> {
    fn start(kafka: &'a Kafka, registry: String) -> Self {
        let mut s = Instances {
            kafka,
            registry,
            dirs: (0..INSTANCES).map(|_| tempfile::tempdir().unwrap()).collect(),
            running: (0..INSTANCES).map(|_| None).collect(),
            armed: vec![None; INSTANCES],
            kills: 0,
            aborts: 0,
        };
        for i in 0..INSTANCES {
            s.spawn(i, None);
        }
        s
    }

    fn spawn(&mut self, i: usize, fail_point: Option<String>) {
        let state = self.dirs[i].path().to_str().unwrap().to_string();
        let mut env = vec![("STATE", state.as_str()), ("REGISTRY", self.registry.as_str())];
        if let Some(spec) = &fail_point {
            env.push(("FINSTREAM_FAIL_POINT", spec));
        }
        self.running[i] = Some(Child::spawn("finance_instance", self.kafka, &env));
        self.armed[i] = fail_point;
    }

    /// Restarts instances that ended by themselves: an armed one that aborted at its fail point
    /// (counted) comes back unarmed; anything else ending is a failure.
    fn reap(&mut self) {
        for i in 0..INSTANCES {
            let Some(status) = self.running[i].as_mut().and_then(Child::try_wait) else { continue };
            let armed = self.armed[i].take();
            assert!(armed.is_some() && !status.success(), "instance {i} ended by itself: {status:?}");
            eprintln!("instance {i} aborted at {}", armed.unwrap());
            self.aborts += 1;
            self.spawn(i, None);
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.running[i].take() {
            c.kill();
            self.kills += 1;
        }
    }

    fn kill_all(&mut self) {
        for i in 0..INSTANCES {
            self.kill(i);
        }
    }
}

fn raw_topic(bootstrap: &str, topic: &str) -> Vec<Raw> {
    testkit::read_committed(bootstrap, topic).into_iter().map(|c| (c.key, c.value)).collect()
}

/// Per account, the transaction ids of its `account-balances` records in order, checking that
/// `applied_count` runs 1..n.
fn legs(
    registry: &std::sync::Arc<dyn schemas::registry::SchemaRegistry>,
    records: &[Raw],
) -> BTreeMap<String, Vec<String>> {
    let updates: Vec<BalanceUpdated> = money::decode_all(registry, "account-balances", records);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in updates {
        let seq = out.entry(u.account_id.clone()).or_default();
        seq.push(u.last_transaction_id.clone());
        assert_eq!(u.applied_count, seq.len() as i64, "account {}: applied_count runs 1..n: {seq:?}", u.account_id);
    }
    out
}

#[test]
fn three_instances_killed_over_and_over_agree_with_the_reference() {
    if child_role().is_some() {
        return;
    }
    let t0 = Instant::now();
    let generator = GeneratorConfig {
        users: env_or("KILL_USERS", 1650),
        days: env_or("KILL_DAYS", 30),
        ..GeneratorConfig::backfill(env_or("KILL_SEED", 20_261_202))
    };
    let input = money::input_of(generator);
    let wanted_kills: usize = env_or("KILL_EVENTS", 20);
    eprintln!("{} events, {} transactions, generated in {:?}", input.events.len(), input.transactions(), t0.elapsed());
    assert!(input.events.len() >= 100_000 || std::env::var("KILL_USERS").is_ok(), "{} events", input.events.len());

    let kafka = Kafka::cluster(1);
    let parent_dir = tempfile::tempdir().unwrap();
    let config = app_config(kafka.bootstrap(), parent_dir.path(), "");
    // The embedded registry, persisted in `_schemas` on the cluster and served over HTTP: the
    // instances use it as they would use Confluent's.
    let registry = registry::start(&config.schema_registry, &config.streams).unwrap();
    let registry_url = registry.url.clone().expect("the embedded registry serves");
    let topology = processors::finance_topology(&config.finance, registry.client.clone()).unwrap().build(APP).unwrap();
    runtime::topics::create_planned(&config.streams, &runtime::topics::plan(&config.streams, &topology), PARTITIONS)
        .unwrap();
    let inputs: Vec<String> =
        topology.user_source_topics().into_iter().map(|(t, _)| t).collect::<BTreeSet<_>>().into_iter().collect();
    let repartitions = topology.repartition_topics.clone();
    let mut barrier = Barrier::new(kafka.bootstrap(), APP, PARTITIONS, inputs, repartitions);

    let mut instances = Instances::start(&kafka, registry_url);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    // The input arrives in chunks while crash events happen: a SIGKILL of one or two instances
    // at a random moment, or (every third event) an instance killed and started again armed to
    // abort itself at a fail point of the commit cycle.
    let mut rng = rand::rngs::StdRng::seed_from_u64(env_or("KILL_SEED", 7));
    let mut fail_points = FailPoint::ALL.iter().cycle();
    let mut crash = |instances: &mut Instances, n: usize| {
        if n % 3 == 2 {
            let victim = rng.random_range(0..INSTANCES);
            instances.kill(victim);
            let point = fail_points.next().unwrap();
            instances.spawn(victim, Some(format!("{}@{}", point.name(), rng.random_range(2..6))));
        } else {
            for _ in 0..rng.random_range(1..=2) {
                let victim = rng.random_range(0..INSTANCES);
                instances.kill(victim);
                instances.spawn(victim, None);
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(1_500..3_500)));
        instances.reap();
    };
    let events: Vec<_> = input.batches().into_iter().flatten().collect();
    let chunks = 24;
    let mut crashes = 0;
    for (i, chunk) in events.chunks(events.len().div_ceil(chunks)).enumerate() {
        for ev in chunk {
            let value = money::encode(&registry.client, ev);
            testkit::produce(&producer, ev.topic(), ev.key(), value, ev.timestamp().0);
        }
        producer.flush(Duration::from_secs(60)).unwrap();
        if i > 0 {
            crash(&mut instances, crashes);
            crashes += 1;
        }
        eprintln!("chunk {i}: {} kills, {} fail-point aborts at {:?}", instances.kills, instances.aborts, t0.elapsed());
    }
    // Crashes go on while the instances catch up, until there were enough.
    while instances.kills < wanted_kills || instances.aborts < 3 {
        crash(&mut instances, crashes);
        crashes += 1;
        assert!(t0.elapsed() < Duration::from_secs(900), "{} kills, {} aborts", instances.kills, instances.aborts);
    }
    barrier.wait(Duration::from_secs(300), || instances.reap());
    eprintln!("everything committed at {:?}; {} kills, {} aborts", t0.elapsed(), instances.kills, instances.aborts);
    instances.kill_all();
    assert!(instances.kills >= wanted_kills, "{} kills", instances.kills);
    assert!(instances.aborts >= 3, "armed instances reached their fail points");

    // A fresh instance on an empty state directory restores every store.
    let restore_dir = tempfile::tempdir().unwrap();
    let mut restore_config = config.clone();
    restore_config.streams.state_dir = restore_dir.path().to_path_buf();
    let mut app = app::finance_streams(&restore_config, registry.client.clone(), StreamsMetrics::default()).unwrap();
    app.start().unwrap();
    assert!(
        testkit::wait_until(Duration::from_secs(180), || app.is_ready()
            && app.local_partitions(processors::stores::BALANCES).len() == PARTITIONS as usize),
        "the fresh instance restored every task: {:?}",
        app.error()
    );
    barrier.wait(Duration::from_secs(60), || {});
    let bootstrap = kafka.bootstrap().to_string();
    let actual =
        Actual::read(&registry.client, APP, None, |s| app.scan_local(s, None).unwrap(), |t| raw_topic(&bootstrap, t));
    let diffs = money::differences(&actual, &input);
    assert!(diffs.is_empty(), "{} differences from the reference:\n{}", diffs.len(), diffs.join("\n"));

    // Each account's legs once each, as the clean run (the in-memory driver) applies them.
    let got = legs(&registry.client, &raw_topic(&bootstrap, "account-balances"));
    let driver = money::drive(&registry.client, &input);
    let clean: Vec<Raw> = money::raw(driver.read_raw("account-balances"));
    let want = legs(&registry.client, &clean);
    for (account, ids) in &want {
        let mut a = got.get(account).cloned().unwrap_or_default();
        let mut b = ids.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "account {account}: the legs applied");
    }
    assert_eq!(got.len(), want.len(), "accounts with balance updates");
    app.close().unwrap();

    // No transaction left open on anything the application writes.
    for topic in runtime::topics::plan(&config.streams, &topology).iter().map(|t| &t.name) {
        if topic.starts_with(APP)
            || ["account-balances", "budget-alerts", "goal-progress", "notifications"].contains(&topic.as_str())
        {
            assert!(kafka.pending_transactions(topic).is_empty(), "{topic} has a transaction left open");
        }
    }
    eprintln!("done in {:?}", t0.elapsed());
}

//! The brokers: the shared single-node broker of a test binary, private clusters for failover
//! tests, and their administration (topics, leaders, pending transactions).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

/// A broker every test of a run can use instead of starting one per test binary.
pub const BOOTSTRAP_ENV: &str = "FINSTREAM_TEST_BOOTSTRAP";

/// The one launcher of Apache Kafka (people, tests, benchmarks).
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");

/// JIT settings of test brokers unless `KAFKA_JVM_OPTS` says otherwise: the client compiler
/// only, which halves a broker's start on a busy 2-core machine (about 3.5 s instead of 7 s)
/// and costs nothing measurable at test loads.
const TEST_JVM_OPTS: &str = "-XX:TieredStopAtLevel=1";

const TIMEOUT: Duration = Duration::from_secs(30);

/// A signal for a broker node or a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGKILL: a crash (no shutdown, no flush).
    Kill,
    /// SIGSTOP: a pause (GC, stalled disk); the process misses heartbeats and timeouts.
    Stop,
    /// SIGCONT: resumes a stopped process.
    Cont,
    /// SIGTERM: a clean shutdown.
    Term,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Term => "TERM",
        }
    }

    pub fn raw(self) -> libc::c_int {
        match self {
            Signal::Kill => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
            Signal::Term => libc::SIGTERM,
        }
    }
}

/// A Kafka cluster under test.
#[derive(Debug)]
pub struct Kafka {
    bootstrap: String,
    /// The cluster's directory when this process started it; `None` for the broker of
    /// [`BOOTSTRAP_ENV`].
    dir: Option<PathBuf>,
    nodes: usize,
    /// Discarded on drop (the shared broker lives as long as the process).
    private: bool,
}

impl Kafka {
    /// The test binary's broker: the one at `FINSTREAM_TEST_BOOTSTRAP` if set, else a single node
    /// started on first use through `scripts/kafka.sh` and killed (its data removed) when this
    /// process exits, however it exits. Tests on it name their topics and application ids with
    /// [`crate::unique`]; they must not stop or kill it.
    pub fn shared() -> &'static Kafka {
        static SHARED: OnceLock<Result<Kafka, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| match std::env::var(BOOTSTRAP_ENV) {
            Ok(bs) if !bs.trim().is_empty() => Ok(Kafka { bootstrap: bs, dir: None, nodes: 0, private: false }),
            _ => start(1, "shared").map(|mut k| {
                // Killed with this process (kafka.sh --watch), not on drop: statics never drop.
                k.private = false;
                k
            }),
        });
        match shared {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    /// A private cluster of `nodes` (1, or 3 with replication factor 3 and
    /// `min.insync.replicas=2`) on fresh log dirs, for tests that kill, pause or restart brokers.
    /// Discarded on drop, and when this process exits.
    pub fn cluster(nodes: usize) -> Kafka {
        assert!(nodes == 1 || nodes == 3, "a cluster has 1 or 3 nodes, not {nodes}");
        start(nodes, "cluster").unwrap_or_else(|e| panic!("{e}"))
    }

    /// `bootstrap.servers` of the cluster.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Nodes of a cluster this process started (node ids are 1..=nodes); 0 for an outside broker.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Sends `signal` to node `n` (1-based, the node's `node.id`). `Kill` returns once the node is
    /// gone; `Stop` freezes it until `Cont`.
    pub fn kill_node(&self, n: usize, signal: Signal) {
        self.script(&["kill", "--node", &n.to_string(), "--signal", signal.name()]);
    }

    /// Starts node `n` again after [`Kafka::kill_node`] with `Signal::Kill` (same ports, same log
    /// dirs) and returns once it serves.
    pub fn restart_node(&self, n: usize) {
        self.script(&["restart", "--node", &n.to_string()]);
    }

    fn script(&self, args: &[&str]) {
        assert!(self.private, "only a private cluster (Kafka::cluster) may have its nodes killed or restarted");
        let dir = self.dir.as_ref().expect("a private cluster has a directory");
        let out = Command::new("bash")
            .arg(SCRIPT)
            .args(args)
            .arg("--dir")
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("running {SCRIPT}: {e}"));
        assert!(
            out.status.success(),
            "kafka.sh {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A client configuration for this cluster.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        c
    }

    fn metadata_client(&self) -> BaseConsumer {
        // A consumer's metadata requests never auto-create topics.
        self.client_config().create().expect("metadata client")
    }

    /// The node leading `topic`'s `partition` according to the cluster's metadata (`None`: no
    /// leader right now, or no such partition). Metadata lags an election by a moment: poll it.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        let md = self.metadata_client().fetch_metadata(Some(topic), TIMEOUT).ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        let p = t.partitions().iter().find(|p| p.id() == partition)?;
        (p.error().is_none() && p.leader() >= 0).then_some(p.leader())
    }

    /// Partition count of every existing topic.
    pub fn topics(&self) -> BTreeMap<String, usize> {
        let md = self.metadata_client().fetch_metadata(None, TIMEOUT).expect("cluster metadata");
        md.topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect()
    }

    /// Partition count of `topic`, if it exists.
    pub fn partitions(&self, topic: &str) -> Option<usize> {
        self.topics().get(topic).copied()
    }

    /// Creates `(name, partitions)` topics (`cleanup.policy=delete`) and waits until metadata shows
    /// every partition with a leader. An existing topic with the same partition count is fine.
    pub fn create_topics(&self, topics: &[(&str, i32)]) {
        self.create_topics_with(topics, &[]);
    }

    /// [`Kafka::create_topics`] with `cleanup.policy=compact` (tables, like changelogs).
    pub fn create_compacted(&self, topics: &[(&str, i32)]) {
        self.create_topics_with(topics, &[("cleanup.policy", "compact")]);
    }

    /// [`Kafka::create_topics`] with topic configs (e.g. `max.message.bytes`).
    pub fn create_topics_with(&self, topics: &[(&str, i32)], configs: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create().expect("admin client");
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| {
                configs
                    .iter()
                    .fold(NewTopic::new(name, *partitions, TopicReplication::Fixed(-1)), |t, (k, v)| t.set(k, v))
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
        let results = block_on(admin.create_topics(&new, &opts)).expect("CreateTopics");
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => panic!("creating topic {topic}: {code}"),
            }
        }
        self.wait_for_topics(topics);
    }

    /// Waits until metadata shows every topic with its partition count and a leader for each
    /// partition (producers and consumers then start without retries).
    pub fn wait_for_topics(&self, topics: &[(&str, i32)]) {
        let client = self.metadata_client();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let md = client.fetch_metadata(None, TIMEOUT).expect("cluster metadata");
            let ready = |name: &str, partitions: i32| {
                md.topics().iter().find(|t| t.name() == name).is_some_and(|t| {
                    t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0)
                })
            };
            let missing: Vec<&str> = topics.iter().filter(|(t, p)| !ready(t, *p)).map(|(t, _)| *t).collect();
            if missing.is_empty() {
                return;
            }
            if let Some((t, p)) = topics.iter().find(|(t, p)| {
                md.topics().iter().any(|m| m.name() == *t && m.error().is_none() && m.partitions().len() != *p as usize)
            }) {
                panic!("topic {t} exists with another partition count than {p}");
            }
            assert!(Instant::now() < deadline, "topics {missing:?} did not appear in metadata within {TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Deletes `topics` (DeleteTopics) and waits until metadata no longer shows them.
    pub fn delete_topics(&self, topics: &[&str]) {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create().expect("admin client");
        let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
        for r in block_on(admin.delete_topics(topics, &opts)).expect("DeleteTopics") {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => panic!("deleting topic {topic}: {code}"),
            }
        }
        let deleted = crate::wait_until(TIMEOUT, || {
            let now = self.topics();
            topics.iter().all(|t| !now.contains_key(*t))
        });
        assert!(deleted, "topics {topics:?} still in metadata after {TIMEOUT:?}");
    }

    /// (low, high) watermarks of a partition: the high watermark, past any open transaction.
    pub fn watermarks(&self, topic: &str, partition: i32) -> (i64, i64) {
        // librdkafka's default isolation is read_committed, whose offset lookups answer the LSO.
        let client: BaseConsumer =
            self.client_config().set("isolation.level", "read_uncommitted").create().expect("consumer");
        client
            .fetch_watermarks(topic, partition, TIMEOUT)
            .unwrap_or_else(|e| panic!("watermarks of {topic}[{partition}]: {e}"))
    }

    /// Partitions of `topic` whose last stable offset is below the high watermark: a transaction
    /// is open on them. After quiescence an exactly-once application must leave none.
    pub fn pending_transactions(&self, topic: &str) -> Vec<i32> {
        let committed: BaseConsumer =
            self.client_config().set("isolation.level", "read_committed").create().expect("consumer");
        let n = self.partitions(topic).unwrap_or_else(|| panic!("no topic {topic}"));
        (0..n as i32)
            .filter(|p| {
                // A read_committed client's offset lookup answers with the LSO.
                let (_, lso) = committed.fetch_watermarks(topic, *p, TIMEOUT).expect("last stable offset");
                let (_, hw) = self.watermarks(topic, *p);
                lso < hw
            })
            .collect()
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let (true, Some(dir)) = (self.private, &self.dir) {
            let _ = Command::new("bash").arg(SCRIPT).arg("discard").arg("--dir").arg(dir).status();
        }
    }
}

/// Starts a cluster through `scripts/kafka.sh` in a fresh directory, watched by this process.
fn start(nodes: usize, what: &str) -> Result<Kafka, String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("finstream-kafka-{}-{what}-{n}", std::process::id()));
    let started = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(SCRIPT).args(["start", "--nodes", &nodes.to_string(), "--dir"]).arg(&dir).args([
        "--watch",
        &std::process::id().to_string(),
        "--ephemeral",
    ]);
    if std::env::var_os("KAFKA_JVM_OPTS").is_none() {
        cmd.env("KAFKA_JVM_OPTS", TEST_JVM_OPTS);
    }
    let out = cmd.output().map_err(|e| format!("running {SCRIPT}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "starting Kafka ({nodes} node(s)) with {SCRIPT} failed; scripts/setup.sh installs Java and Maven:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bootstrap = stdout
        .lines()
        .find_map(|l| l.strip_prefix("bootstrap: "))
        .ok_or_else(|| format!("kafka.sh printed no bootstrap address: {stdout}"))?
        .trim()
        .to_string();
    eprintln!(
        "kafka: {nodes} node(s) at {bootstrap} started in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(Kafka { bootstrap, dir: Some(dir), nodes, private: true })
}

/// Runs an admin future to completion (librdkafka's admin thread drives it).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

//! What the money tests on Apache Kafka share: the finance application's test configuration and
//! a barrier that judges from outside whether its consumer group has committed everything it can
//! read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The finance application `app` on `bootstrap` with state in `state`: two stream threads,
/// 100 ms commits, the money tests' finance rules, the embedded registry on a free port.
pub fn app_config(bootstrap: &str, app: &str, state: &std::path::Path) -> finstream::config::AppConfig {
    let mut config = finstream::config::AppConfig {
        streams: testkit::streams_config(bootstrap, app, state),
        finance: super::finance_config(),
        ..Default::default()
    };
    config.streams.num_stream_threads = 2;
    config.streams.commit_interval_ms = Some(100);
    // Records wait for their round trip through the repartition topics; librdkafka's default
    // 500 ms fetch wait would dominate it.
    config.streams.kafka.insert("fetch.wait.max.ms".into(), "10".into());
    config.schema_registry.listen = "127.0.0.1:0".into();
    config
}

/// Whether the application's consumer group has committed everything its tasks can read, judged
/// from outside: input partitions' committed offsets at their high watermarks, and repartition
/// partitions' committed offsets past their last committed record (their high watermarks lie one
/// past a commit marker, and past aborted records).
pub struct Barrier {
    group: BaseConsumer,
    tail: BaseConsumer,
    inputs: Vec<String>,
    repartitions: Vec<String>,
    /// The last committed record's offset per repartition partition, and the reader's target.
    last_record: HashMap<(String, i32), i64>,
    /// Partitions of every topic watched.
    partitions: i32,
}

impl Barrier {
    /// The barrier of consumer group `group` (the application id) over `inputs` and
    /// `repartitions`, each with `partitions` partitions.
    pub fn new(
        bootstrap: &str,
        group: &str,
        partitions: i32,
        inputs: Vec<String>,
        repartitions: Vec<String>,
    ) -> Barrier {
        let client = |group: &str, isolation: &str| -> BaseConsumer {
            ClientConfig::new()
                .set("bootstrap.servers", bootstrap)
                .set("group.id", group)
                .set("enable.auto.commit", "false")
                .set("isolation.level", isolation)
                .create()
                .unwrap()
        };
        let tail = client(&testkit::unique("tail"), "read_committed");
        let mut tpl = TopicPartitionList::new();
        for t in &repartitions {
            for p in 0..partitions {
                tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
            }
        }
        tail.assign(&tpl).unwrap();
        Barrier {
            group: client(group, "read_uncommitted"),
            tail,
            inputs,
            repartitions,
            last_record: HashMap::new(),
            partitions,
        }
    }

    fn high_watermarks(&self, topics: &[String]) -> Option<BTreeMap<(String, i32), i64>> {
        let mut out = BTreeMap::new();
        for t in topics {
            for p in 0..self.partitions {
                let (_, high) = self.group.fetch_watermarks(t, p, Duration::from_secs(10)).ok()?;
                out.insert((t.clone(), p), high);
            }
        }
        Some(out)
    }

    /// Reads the repartition topics up to `highs`; false if that took longer than `patience`.
    fn read_tail(&mut self, highs: &BTreeMap<(String, i32), i64>, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            let positions: BTreeMap<(String, i32), i64> = match self.tail.position() {
                Ok(tpl) => tpl
                    .elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                        _ => None,
                    })
                    .collect(),
                Err(_) => return false,
            };
            let behind = highs
                .iter()
                .filter(|(tp, _)| self.repartitions.contains(&tp.0))
                .any(|(tp, high)| *high > 0 && positions.get(tp).is_none_or(|pos| pos < high));
            if !behind {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            match self.tail.poll(Duration::from_millis(20)) {
                Some(Ok(m)) => {
                    self.last_record.insert((m.topic().to_string(), m.partition()), m.offset());
                }
                Some(Err(e)) => panic!("reading the repartition topics: {e}"),
                None => {}
            }
        }
    }

    fn committed(&self) -> Option<BTreeMap<(String, i32), i64>> {
        let mut tpl = TopicPartitionList::new();
        for t in self.inputs.iter().chain(&self.repartitions) {
            for p in 0..self.partitions {
                tpl.add_partition(t, p);
            }
        }
        let c = self.group.committed_offsets(tpl, Duration::from_secs(10)).ok()?;
        Some(
            c.elements()
                .iter()
                .map(|e| ((e.topic().to_string(), e.partition()), e.offset().to_raw().unwrap_or(0).max(0)))
                .collect(),
        )
    }

    /// One look: the high watermarks seen if everything below them is committed.
    fn look(&mut self) -> Option<BTreeMap<(String, i32), i64>> {
        let all: Vec<String> = self.inputs.iter().chain(&self.repartitions).cloned().collect();
        let highs = self.high_watermarks(&all)?;
        if !self.read_tail(&highs, Duration::from_secs(2)) {
            return None;
        }
        let committed = self.committed()?;
        let done = highs.iter().all(|(tp, high)| {
            let at = committed.get(tp).copied().unwrap_or(0);
            if self.inputs.contains(&tp.0) {
                at >= *high
            } else {
                self.last_record.get(tp).is_none_or(|last| at > *last)
            }
        });
        done.then_some(highs)
    }

    /// Waits until two looks in a row find everything committed and nothing new written,
    /// calling `meanwhile` between looks (to restart crashed instances).
    pub fn wait(&mut self, timeout: Duration, mut meanwhile: impl FnMut()) {
        let deadline = Instant::now() + timeout;
        let mut previous = None;
        loop {
            meanwhile();
            let now = self.look();
            if now.is_some() && now == previous {
                return;
            }
            previous = now;
            assert!(Instant::now() < deadline, "the application did not catch up within {timeout:?}");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// The barrier of the application `topology` runs as (`group` = its application id): its
    /// user source topics and its repartition topics.
    pub fn of_topology(bootstrap: &str, group: &str, partitions: i32, topology: &streams::BuiltTopology) -> Barrier {
        let inputs: Vec<String> =
            topology.user_source_topics().into_iter().map(|(t, _)| t).collect::<BTreeSet<_>>().into_iter().collect();
        Barrier::new(bootstrap, group, partitions, inputs, topology.repartition_topics.clone())
    }
}

/// Creates `topics` with `partitions` partitions each and `retention.ms=-1`. Records written with
/// event time (months before the broker's clock) are otherwise deleted by the broker's 7-day
/// time retention at its next check, inputs before the application reads them and outputs before
/// the test does.
pub fn create_unlimited(bootstrap: &str, topics: &[&str], partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)).set("retention.ms", "-1"))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for r in rt.block_on(admin.create_topics(&new, &AdminOptions::new())).unwrap() {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

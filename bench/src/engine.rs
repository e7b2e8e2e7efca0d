//! The child-process side: `bench engine --engine finstream|client ...` runs one workload until
//! its standard input closes (then it closes cleanly), so the harness measures every engine as a
//! process of its own (`/proc/<pid>`), the same way as the Kafka Streams JVM.
//!
//! - `finstream`: the workload in finstream's DSL on `runtime::KafkaStreams` (exactly_once_v2,
//!   commit interval 100 ms, one stream thread).
//! - `client`: W0 only, the plain client ceiling: an rdkafka `BaseConsumer` → transactional
//!   `BaseProducer` loop committing offsets in the transaction every 100 ms.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use schemas::registry::{HttpRegistry, SchemaRegistry};
use schemas::{AvroSerde, ExchangeRate, TransactionEvent};
use streams::dsl::{Consumed, Grouped, Produced, StreamsBuilder};
use streams::serde::{Serde, SerdeError};
use streams::store::typed::KvStoreDef;
use streams::{BytesSerde, I64Serde, StringSerde, Topology};

use crate::input::{minor4, usd_minor};

/// What the harness passes to an engine child.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// `finstream` or `client`.
    #[arg(long)]
    pub engine: String,
    #[arg(long)]
    pub workload: String,
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long)]
    pub registry_url: String,
    #[arg(long)]
    pub application_id: String,
    #[arg(long)]
    pub state_dir: PathBuf,
    #[arg(long)]
    pub input: String,
    #[arg(long)]
    pub output: String,
    #[arg(long)]
    pub rates: String,
    #[arg(long, default_value = "exactly_once_v2")]
    pub guarantee: String,
    #[arg(long, default_value_t = 100)]
    pub commit_interval_ms: u64,
}

/// W2's aggregate (count, sum in 10^-4): two big-endian i64, the bytes the Java side writes.
pub struct CountSumSerde;

impl Serde<(i64, i64)> for CountSumSerde {
    fn serialize(&self, _topic: &str, v: &(i64, i64)) -> Result<Vec<u8>, SerdeError> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&v.0.to_be_bytes());
        out.extend_from_slice(&v.1.to_be_bytes());
        Ok(out)
    }
    fn deserialize(&self, _topic: &str, b: &[u8]) -> Result<(i64, i64), SerdeError> {
        decode_count_sum(b)
            .ok_or_else(|| SerdeError::new("invalid_length", format!("expected 16 bytes, got {}", b.len())))
    }
}

pub fn decode_count_sum(b: &[u8]) -> Option<(i64, i64)> {
    let b: &[u8; 16] = b.try_into().ok()?;
    let (c, s) = b.split_at(8);
    Some((i64::from_be_bytes(c.try_into().ok()?), i64::from_be_bytes(s.try_into().ok()?)))
}

/// The finstream side of a workload, in the DSL.
pub fn topology(workload: &str, a: &EngineArgs, registry: Arc<dyn SchemaRegistry>) -> Result<Topology> {
    let b = StreamsBuilder::new();
    match workload {
        "W0" => {
            b.stream(&a.input, Consumed::with(BytesSerde, BytesSerde))
                .to(&a.output, Produced::with(BytesSerde, BytesSerde));
        }
        "W2" => {
            let sums: KvStoreDef<String, (i64, i64)> = KvStoreDef::with_serdes("w2-sums", StringSerde, CountSumSerde);
            let txn = AvroSerde::<TransactionEvent>::new(registry.clone());
            b.stream(&a.input, Consumed::with(StringSerde, txn))
                .group_by_key(Grouped::with("w2-by-account", StringSerde, AvroSerde::<TransactionEvent>::new(registry)))
                .aggregate(
                    || (0i64, 0i64),
                    |_, t: &TransactionEvent, (c, s)| (c + 1, s + minor4(t.signed_amount()) as i64),
                    &sums,
                )
                .to_stream()
                .to(&a.output, Produced::with(StringSerde, CountSumSerde));
        }
        "W4" => {
            let rates_store: KvStoreDef<String, ExchangeRate> =
                KvStoreDef::with_serdes("w4-rates", StringSerde, AvroSerde::<ExchangeRate>::new(registry.clone()));
            let rates = b.global_table(&a.rates, &rates_store);
            b.stream(&a.input, Consumed::with(StringSerde, AvroSerde::<TransactionEvent>::new(registry)))
                .join_global(
                    &rates,
                    |_, t: &TransactionEvent| t.currency.clone(),
                    |t: &TransactionEvent, r: &ExchangeRate| usd_minor(t.amount, r.usd_rate) as i64,
                )
                .to(&a.output, Produced::with(StringSerde, I64Serde));
        }
        w => bail!("finstream has no workload {w} yet"),
    }
    b.build().map_err(|e| anyhow!("{e}"))
}

/// Closes when standard input reaches EOF (the harness closes it to stop the child).
fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        s.store(true, Ordering::SeqCst);
    });
    stop
}

pub fn run(a: EngineArgs) -> Result<()> {
    match a.engine.as_str() {
        "finstream" => run_finstream(a),
        "client" if a.workload == "W0" => run_client_passthrough(a),
        e => bail!("no engine {e} for {}", a.workload),
    }
}

fn run_finstream(a: EngineArgs) -> Result<()> {
    let stop = stop_flag();
    let registry: Arc<dyn SchemaRegistry> = Arc::new(HttpRegistry::new(&a.registry_url));
    let topology = topology(&a.workload, &a, registry)?;
    let guarantee = match a.guarantee.as_str() {
        "exactly_once_v2" => ProcessingGuarantee::ExactlyOnceV2,
        "at_least_once" => ProcessingGuarantee::AtLeastOnce,
        g => bail!("unknown guarantee {g}"),
    };
    let mut partitioners = BTreeMap::new();
    partitioners.insert(a.input.clone(), "murmur2".to_string());
    partitioners.insert(a.rates.clone(), "murmur2".to_string());
    let config = StreamsConfig {
        application_id: a.application_id.clone(),
        bootstrap_servers: a.bootstrap.clone(),
        processing_guarantee: guarantee,
        commit_interval_ms: Some(a.commit_interval_ms),
        num_stream_threads: 1,
        state_dir: a.state_dir.clone(),
        partitioners,
        ..Default::default()
    };
    let mut app = KafkaStreams::new(topology, config, Default::default()).map_err(|e| anyhow!("{e}"))?;
    app.start().map_err(|e| anyhow!("{e}"))?;
    println!("state: RUNNING");
    while !stop.load(Ordering::SeqCst) {
        if let Some(e) = app.error() {
            bail!("finstream failed: {e}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    app.close().map_err(|e| anyhow!("{e}"))
}

/// W0's client ceiling: consume, produce the same bytes, commit the input offsets in the
/// transaction every `commit_interval_ms`.
fn run_client_passthrough(a: EngineArgs) -> Result<()> {
    let stop = stop_flag();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("group.id", &a.application_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .context("consumer")?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("transactional.id", format!("{}-txn", a.application_id))
        .set("linger.ms", "5")
        .create()
        .context("producer")?;
    let t = Duration::from_secs(30);
    producer.init_transactions(t)?;
    consumer.subscribe(&[&a.input])?;
    println!("state: RUNNING");
    producer.begin_transaction()?;
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    let mut pending = false;
    let mut last_commit = Instant::now();
    let interval = Duration::from_millis(a.commit_interval_ms);
    while !stop.load(Ordering::SeqCst) {
        if let Some(m) = consumer.poll(Duration::from_millis(10)) {
            let m = m?;
            let mut rec =
                BaseRecord::to(&a.output).key(m.key().unwrap_or_default()).payload(m.payload().unwrap_or_default());
            if let Some(ts) = m.timestamp().to_millis() {
                rec = rec.timestamp(ts);
            }
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        producer.poll(Duration::from_millis(5));
                        rec = r;
                    }
                }
            }
            offsets.insert(m.partition(), m.offset() + 1);
            pending = true;
        }
        if pending && last_commit.elapsed() >= interval {
            let mut tpl = TopicPartitionList::new();
            for (p, o) in &offsets {
                tpl.add_partition_offset(&a.input, *p, Offset::Offset(*o))?;
            }
            let group = consumer.group_metadata().ok_or_else(|| anyhow!("no group metadata"))?;
            producer.send_offsets_to_transaction(&tpl, &group, t)?;
            producer.commit_transaction(t)?;
            producer.begin_transaction()?;
            pending = false;
            last_commit = Instant::now();
        }
    }
    producer.abort_transaction(t)?;
    Ok(())
}

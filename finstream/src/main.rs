//! The `finstream` command line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use finstream::config;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use runtime::KafkaStreams;
use streams::examples::sum_topology;
use streams::StreamsMetrics;

#[derive(Parser)]
#[command(name = "finstream", version, about = "Kafka Streams for Rust, proven on money")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs everything in one process: an embedded Kafka-protocol cluster, the topology and a
    /// data generator. Ctrl-C stops it.
    Demo {
        /// Records per second from the generator.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Number of distinct keys.
        #[arg(long, default_value_t = 50)]
        keys: u64,
        /// Generator seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Run the pipeline without synthetic traffic.
        #[arg(long)]
        no_generator: bool,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// Runs the topology against the Kafka cluster in the configuration.
    Run {
        #[arg(long, env = "FINSTREAM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Deletes this application's local state (like kafka-streams-application-reset's
    /// local part); internal topics are left to the cluster's admin tools.
    Reset {
        #[arg(long, env = "FINSTREAM_CONFIG")]
        config: Option<PathBuf>,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Demo { rate, keys, seed, no_generator, duration_secs } => {
            demo(rate, keys, seed, no_generator, duration_secs)
        }
        Command::Run { config } => run(config),
        Command::Reset { config, yes } => reset(config, yes),
    }
}

fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst)).context("installing Ctrl-C handler")?;
    Ok(stop)
}

fn run(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = config::load(path.as_deref())?;
    let stop = stop_flag()?;
    let mut app = KafkaStreams::new(
        sum_topology(&config.example.input, &config.example.output)?,
        config.streams,
        StreamsMetrics::default(),
    )?;
    app.start()?;
    tracing::info!("finstream running; Ctrl-C to stop");
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(e) = app.error() {
            anyhow::bail!("stream thread failed: {e}");
        }
    }
    app.close()?;
    Ok(())
}

fn reset(path: Option<PathBuf>, yes: bool) -> anyhow::Result<()> {
    let config = config::load(path.as_deref())?;
    let dir = config.streams.app_state_dir();
    if !yes {
        println!("would delete {} (pass --yes to delete)", dir.display());
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("deleting {}", dir.display()))?;
    }
    println!("deleted {}", dir.display());
    Ok(())
}

fn demo(rate: u64, keys: u64, seed: u64, no_generator: bool, duration: Option<u64>) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let mock = MockCluster::new(1).context("starting the embedded Kafka-protocol cluster")?;
    for (topic, partitions) in [("numbers", 4), ("sums", 4), ("finstream-demo-sums-changelog", 4)] {
        mock.create_topic(topic, partitions, 1)?;
    }
    let bootstrap = mock.bootstrap_servers();
    let state = std::env::temp_dir().join(format!("finstream-demo-{}", std::process::id()));
    let config = runtime::StreamsConfig {
        application_id: "finstream-demo".into(),
        bootstrap_servers: bootstrap.clone(),
        state_dir: state.clone(),
        ..Default::default()
    };
    let metrics = StreamsMetrics::default();
    let mut app = KafkaStreams::new(sum_topology("numbers", "sums")?, config, metrics.clone())?;
    app.start()?;
    println!("kafka bootstrap: {bootstrap}");
    println!("input topic: numbers (key: string, value: big-endian i64)");
    println!("output topic: sums (key: string, value: JSON running count and total)");
    println!("state dir: {}", state.display());
    println!("example: kcat -b {bootstrap} -C -t sums -o beginning");
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("partitioner", "murmur2_random").create()?;
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut state_rng = seed;
    let mut last_report = Instant::now();
    while !stop.load(Ordering::SeqCst) && duration.is_none_or(|d| started.elapsed() < Duration::from_secs(d)) {
        if !no_generator {
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                // xorshift: deterministic for a seed, no dependency needed.
                state_rng ^= state_rng << 13;
                state_rng ^= state_rng >> 7;
                state_rng ^= state_rng << 17;
                let key = format!("key-{}", state_rng % keys.max(1));
                let value = ((state_rng >> 20) % 1000) as i64;
                let _ = producer.send(BaseRecord::to("numbers").key(&key).payload(&value.to_be_bytes()[..]));
                sent += 1;
            }
            producer.poll(Duration::ZERO);
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            let out = metrics.records_produced.with_label_values(&["sums"]).get();
            println!("generated {sent}, sums written {out}, commits {}", metrics.commits.get());
            last_report = Instant::now();
        }
        if let Some(e) = app.error() {
            anyhow::bail!("stream thread failed: {e}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = producer.flush(Duration::from_secs(5));
    println!("shutting down");
    app.close()?;
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

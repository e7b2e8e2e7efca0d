//! finstream side by side with Kafka Streams on one Apache Kafka broker (issue 16).
//!
//! `cargo run -p bench -- --records 2000000` starts a single-node broker (`scripts/kafka.sh`
//! through testkit) and the embedded schema registry, produces the input once (see `input`),
//! builds the Kafka Streams project in `bench/kstreams/` (Maven), then runs every engine on every
//! workload, `--runs` times each, interleaved, each run in a process of its own on a fresh
//! application id, and prints one table (also written to `$CARGO_TARGET_DIR/bench/peer.md`).
//!
//! Workloads of this slice: W0 passthrough (the rdkafka loop is the client ceiling), W2 sum per
//! account into a RocksDB store with changelog, W4 stream–global-table join with
//! `exchange-rates`.

mod engine;
mod input;
mod measure;
mod report;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use schemas::registry::SchemaRegistry;

use measure::{Ctx, Engine};

#[derive(Parser, Debug)]
#[command(name = "bench", about = "finstream vs Kafka Streams on the same broker, input and settings")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Transactions in the input (produced once, before timing).
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
    /// Runs of each engine × workload cell (median and spread are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Workloads, comma-separated.
    #[arg(long, default_value = "W0,W2,W4", value_delimiter = ',')]
    workloads: Vec<String>,
    /// Engines, comma-separated: client (W0 only), finstream, kstreams.
    #[arg(long, default_value = "client,finstream,kstreams", value_delimiter = ',')]
    engines: Vec<String>,
    /// `exactly_once_v2` or `at_least_once`, for every engine.
    #[arg(long, default_value = "exactly_once_v2")]
    guarantee: String,
    #[arg(long, default_value_t = 100)]
    commit_interval_ms: u64,
    /// Kafka Streams' `statestore.cache.max.bytes` (its default, 10 MiB).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    cache_bytes: u64,
    /// JVM options of the Kafka Streams process.
    #[arg(long, default_value = "-Xms256m -Xmx1g", allow_hyphen_values = true)]
    java_opts: String,
    /// Input partitions.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// A run fails when the engine commits nothing new for this long.
    #[arg(long, default_value_t = 120)]
    stall_secs: u64,
    /// Where the table is written (default `$CARGO_TARGET_DIR/bench/peer.md`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Internal: one engine process (started by the harness).
    #[command(hide = true)]
    Engine(engine::EngineArgs),
}

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // <target>/<profile>/bench
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// `mvn compile` of bench/kstreams and its runtime classpath.
fn build_kstreams(project: &Path) -> Result<String> {
    let pom = project.join("pom.xml");
    let cp_file = project.join("target/classpath.txt");
    let status = Command::new("mvn")
        .args(["-q", "-B", "-f"])
        .arg(&pom)
        .args(["compile", "dependency:build-classpath", "-DincludeScope=runtime"])
        .arg(format!("-Dmdep.outputFile={}", cp_file.display()))
        .status()
        .context("running mvn (scripts/setup.sh installs Maven)")?;
    if !status.success() {
        bail!("mvn -f {} compile failed", pom.display());
    }
    let deps = std::fs::read_to_string(&cp_file)?;
    Ok(format!("{}:{}", project.join("target/classes").display(), deps.trim()))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Engine(a)) = cli.command {
        // The engine's warnings and errors go to the run's log (`RUST_LOG` to see more).
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
            .with_writer(std::io::stderr)
            .init();
        return engine::run(a);
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engines: Vec<Engine> = cli
        .engines
        .iter()
        .map(|e| match e.as_str() {
            "client" => Ok(Engine::Client),
            "finstream" => Ok(Engine::Finstream),
            "kstreams" => Ok(Engine::KafkaStreams),
            e => bail!("unknown engine {e}"),
        })
        .collect::<Result<_>>()?;
    for w in &cli.workloads {
        if !["W0", "W2", "W4"].contains(&w.as_str()) {
            bail!("workload {w} is not in this slice (W0, W2, W4)");
        }
    }

    let kstreams_classpath =
        if engines.contains(&Engine::KafkaStreams) { Some(build_kstreams(&here.join("kstreams"))?) } else { None };

    // A broker with the full JIT (testkit's test brokers run C1 only unless told otherwise).
    if std::env::var_os("KAFKA_JVM_OPTS").is_none() {
        std::env::set_var("KAFKA_JVM_OPTS", "-Dfinstream.bench=1");
    }
    if std::env::var_os("KAFKA_HEAP_OPTS").is_none() {
        std::env::set_var("KAFKA_HEAP_OPTS", "-Xms1g -Xmx1g");
    }
    let kafka = testkit::Kafka::cluster(1);
    let registry = testkit::registry();
    let work = tempfile::Builder::new().prefix("finstream-bench-").tempdir()?;
    let reg: Arc<dyn SchemaRegistry> = registry.registry.clone();
    let input = input::produce(&kafka, reg, cli.records, cli.partitions, cli.seed)?;
    measure::warm_up(&kafka)?;

    let ctx = Ctx {
        kafka,
        registry_url: registry.url.clone(),
        input,
        work_dir: work.path().to_path_buf(),
        kstreams_classpath,
        java_opts: cli.java_opts.split_whitespace().map(str::to_string).collect(),
        schemas_dir: here.join("../schemas/avro"),
        guarantee: cli.guarantee.clone(),
        commit_interval_ms: cli.commit_interval_ms,
        cache_bytes: cli.cache_bytes,
        stall: Duration::from_secs(cli.stall_secs),
    };

    let mut results = report::Results::default();
    for run in 1..=cli.runs {
        for w in &cli.workloads {
            for &e in &engines {
                if e == Engine::Client && w != "W0" {
                    continue;
                }
                let r = measure::run_once(&ctx, e, w);
                match &r {
                    Ok(r) => eprintln!(
                        "bench: run {run}/{} {w} {}: {:.0} records/s, {:.2} CPU s per M records, peak RSS {:.0} MiB, start-up {:.1} s, {} output records",
                        cli.runs,
                        e.name(),
                        r.rate,
                        r.cpu_per_m,
                        r.rss_mib,
                        r.startup_s,
                        r.out_records
                    ),
                    Err(err) => eprintln!("bench: run {run}/{} {w} {} FAILED: {err:#}", cli.runs, e.name()),
                }
                results.push(w, e, r.map_err(|e| format!("{e:#}")));
            }
        }
    }

    let settings = report::Settings {
        records: cli.records,
        partitions: cli.partitions,
        runs: cli.runs,
        guarantee: cli.guarantee.clone(),
        commit_interval_ms: cli.commit_interval_ms,
        cache_bytes: cli.cache_bytes,
        java_opts: cli.java_opts.clone(),
    };
    let table = results.render(&settings, &cli.workloads, &engines);
    println!("{table}");
    let out = cli.out.unwrap_or_else(|| target_dir().join("bench/peer.md"));
    if let Some(d) = out.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&out, &table)?;
    eprintln!("bench: table written to {}", out.display());
    if results.any_failed() {
        bail!("some runs failed (see above)");
    }
    Ok(())
}

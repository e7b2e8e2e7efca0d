//! One cell run: start an engine process on a fresh application id, watch its consumer group's
//! committed offsets until the whole input is committed, read its CPU time and peak RSS from
//! `/proc/<pid>`, stop it, then read its output with read_committed and check it against the
//! input.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::engine::decode_count_sum;
use crate::input::Input;

/// Which process runs a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    /// rdkafka consume→produce loop (W0 only): the client ceiling.
    Client,
    Finstream,
    KafkaStreams,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Client => "rdkafka loop",
            Engine::Finstream => "finstream",
            Engine::KafkaStreams => "Kafka Streams",
        }
    }
    fn slug(self) -> &'static str {
        match self {
            Engine::Client => "client",
            Engine::Finstream => "finstream",
            Engine::KafkaStreams => "kstreams",
        }
    }
}

/// Everything a cell run needs from the harness.
pub struct Ctx {
    pub kafka: testkit::Kafka,
    pub registry_url: String,
    pub input: Input,
    pub work_dir: PathBuf,
    /// `java -cp` of the Kafka Streams project (classes + dependencies).
    pub kstreams_classpath: Option<String>,
    pub java_opts: Vec<String>,
    pub schemas_dir: PathBuf,
    pub guarantee: String,
    pub commit_interval_ms: u64,
    pub cache_bytes: u64,
    /// Give up on a run when committed offsets do not move for this long.
    pub stall: Duration,
}

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Records committed per second between the first and the last commit observed.
    pub rate: f64,
    /// CPU seconds (user + system) of the engine process per million records, same window.
    pub cpu_per_m: f64,
    /// VmHWM of the engine process, MiB.
    pub rss_mib: f64,
    /// From process start to its first committed offset (start-up, rebalance, restore).
    pub startup_s: f64,
    /// Records in the output topic (read_committed).
    pub out_records: u64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of `pid` (all its threads), seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').ok_or_else(|| anyhow!("odd /proc/{pid}/stat"))?.1;
    // Fields after the command: state is field 3, utime 14, stime 15.
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11).ok_or_else(|| anyhow!("no utime"))?.parse()?;
    let stime: f64 = f.get(12).ok_or_else(|| anyhow!("no stime"))?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

/// VmHWM of `pid`, MiB.
pub fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or_else(|| anyhow!("no VmHWM"))?;
    let kb: f64 = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("odd VmHWM"))?.parse()?;
    Ok(kb / 1024.0)
}

struct Proc {
    child: Child,
    engine: Engine,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); its log {}:\n{}",
                self.engine.name(),
                self.log.display(),
                tail(&self.log)
            );
        }
        Ok(())
    }

    /// Clean stop: EOF on stdin for our own children, SIGTERM for the JVM; SIGKILL after 30 s.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        if self.engine == Engine::KafkaStreams {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench: {} did not stop within 30 s, killing it", self.engine.name());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn spawn(ctx: &Ctx, engine: Engine, workload: &str, app_id: &str, output: &str, state_dir: &Path) -> Result<Proc> {
    let log = ctx.work_dir.join(format!("{app_id}.log"));
    let err = File::create(&log)?;
    let mut cmd = match engine {
        Engine::Client | Engine::Finstream => {
            let mut c = Command::new(std::env::current_exe()?);
            c.arg("engine")
                .args(["--engine", engine.slug(), "--workload", workload])
                .args(["--bootstrap", ctx.kafka.bootstrap(), "--registry-url", &ctx.registry_url])
                .args(["--application-id", app_id, "--input", &ctx.input.transactions, "--output", output])
                .args(["--rates", &ctx.input.rates, "--guarantee", &ctx.guarantee])
                .args(["--commit-interval-ms", &ctx.commit_interval_ms.to_string()])
                .arg("--state-dir")
                .arg(state_dir);
            c
        }
        Engine::KafkaStreams => {
            let cp =
                ctx.kstreams_classpath.as_ref().ok_or_else(|| anyhow!("the Kafka Streams project is not built"))?;
            let mut c = Command::new("java");
            c.args(&ctx.java_opts)
                .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
                .args(["-cp", cp, "dev.finstream.bench.PeerBench"])
                .args(["--workload", workload, "--bootstrap", ctx.kafka.bootstrap()])
                .args(["--application-id", app_id, "--input", &ctx.input.transactions, "--output", output])
                .args(["--rates", &ctx.input.rates, "--guarantee", &ctx.guarantee])
                .args(["--commit-interval-ms", &ctx.commit_interval_ms.to_string()])
                .args(["--cache-bytes", &ctx.cache_bytes.to_string()])
                .args(["--txn-schema-id", &ctx.input.txn_schema_id.to_string()])
                .args(["--rate-schema-id", &ctx.input.rate_schema_id.to_string()])
                .arg("--schemas-dir")
                .arg(&ctx.schemas_dir)
                .arg("--state-dir")
                .arg(state_dir);
            c
        }
    };
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(err);
    let mut child = cmd.spawn().with_context(|| format!("starting {}", engine.name()))?;
    // The child's stdout (state lines) goes to its log too.
    let stdout = child.stdout.take().expect("piped stdout");
    let mut log_out = std::fs::OpenOptions::new().append(true).open(&log)?;
    std::thread::spawn(move || {
        use std::io::Write;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log_out, "{line}");
        }
    });
    Ok(Proc { child, engine, log })
}

fn committed(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Result<i64> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(got
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum())
}

/// Creates the broker's internal topics (`__consumer_offsets` on the first offset lookup,
/// `__transaction_state` on the first transactional producer) before any run is timed: the
/// first run would otherwise wait for them, and the offset watcher would see nothing meanwhile.
pub fn warm_up(kafka: &testkit::Kafka) -> Result<()> {
    let watcher: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("group.id", testkit::unique("bench-warm-up"))
        .create()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = committed(&watcher, "bench-transactions", 1) {
        if Instant::now() > deadline {
            bail!("the group coordinator does not answer: {e:#}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let producer: rdkafka::producer::BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("transactional.id", testkit::unique("bench-warm-up"))
        .create()?;
    rdkafka::producer::Producer::init_transactions(&producer, Duration::from_secs(60))?;
    Ok(())
}

/// Runs `engine` on `workload` once and checks its output.
pub fn run_once(ctx: &Ctx, engine: Engine, workload: &str) -> Result<RunResult> {
    let app_id = testkit::unique(&format!("bench-{}-{}", engine.slug(), workload.to_lowercase()));
    let output = format!("{app_id}-out");
    let p = ctx.input.partitions;
    ctx.kafka.create_topics_with(&[(output.as_str(), p)], &[("retention.ms", "-1")]);
    let state_dir = ctx.work_dir.join(&app_id);
    std::fs::create_dir_all(&state_dir)?;
    let watcher: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", ctx.kafka.bootstrap())
        .set("group.id", &app_id)
        .set("enable.auto.commit", "false")
        .create()?;

    let total = ctx.input.records as i64;
    let started = Instant::now();
    let mut proc = spawn(ctx, engine, workload, &app_id, &output, &state_dir)?;
    let pid = proc.pid();
    let mut first: Option<(Instant, i64, f64)> = None;
    let mut last_progress = (Instant::now(), 0i64);
    let mut reported = false;
    let end = loop {
        proc.check_alive()?;
        // Errors (no group yet, the coordinator moving) are transient: the stall check bounds them.
        let done = match committed(&watcher, &ctx.input.transactions, p) {
            Ok(c) => c,
            Err(e) => {
                if !reported {
                    eprintln!("bench: {} on {workload}: reading committed offsets: {e:#} (retrying)", engine.name());
                    reported = true;
                }
                last_progress.1
            }
        };
        let now = Instant::now();
        if done > last_progress.1 {
            last_progress = (now, done);
        } else if now - last_progress.0 > ctx.stall {
            let log = proc.log.clone();
            proc.stop();
            bail!(
                "{} on {workload}: committed offsets stuck at {done}/{total} for {:?}; log {}:\n{}",
                engine.name(),
                ctx.stall,
                log.display(),
                tail(&log)
            );
        }
        if done > 0 && first.is_none() {
            first = Some((now, done, cpu_seconds(pid)?));
        }
        if done >= total {
            break (now, cpu_seconds(pid)?, peak_rss_mib(pid)?);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    proc.stop();
    let (t1, c1, cpu1) = first.expect("progress was seen");
    if c1 >= total {
        bail!("{} drained the input before its first commit was observed: use more --records", engine.name());
    }
    let (t2, cpu2, rss) = end;
    let records = (total - c1).max(1) as f64;
    let secs = (t2 - t1).as_secs_f64().max(1e-3);
    // A failed check keeps the output and internal topics on the broker for inspection while the
    // harness runs (the broker and its data go when it exits).
    let out_records = verify(ctx, workload, &output).with_context(|| {
        format!("{} on {workload} (output kept in {output} at {})", engine.name(), ctx.kafka.bootstrap())
    })?;

    // Free the broker's disk: the output and every internal topic of this application id.
    let mut gone: Vec<String> = ctx.kafka.topics().into_keys().filter(|t| t.starts_with(&app_id)).collect();
    gone.sort();
    let refs: Vec<&str> = gone.iter().map(String::as_str).collect();
    ctx.kafka.delete_topics(&refs);
    let _ = std::fs::remove_dir_all(&state_dir);

    Ok(RunResult {
        rate: records / secs,
        cpu_per_m: (cpu2 - cpu1) / records * 1e6,
        rss_mib: rss,
        startup_s: (t1 - started).as_secs_f64(),
        out_records,
    })
}

/// Reads `topic` read_committed to its end and checks it against the input; returns its count.
fn verify(ctx: &Ctx, workload: &str, topic: &str) -> Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", ctx.kafka.bootstrap())
        .set("group.id", testkit::unique("bench-verify"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..ctx.input.partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut eof = HashSet::new();
    let mut count = 0u64;
    let (mut sum_usd, mut last): (i128, HashMap<Vec<u8>, (i64, i64)>) = (0, HashMap::new());
    let deadline = Instant::now() + Duration::from_secs(300);
    while eof.len() < ctx.input.partitions as usize {
        if Instant::now() > deadline {
            bail!("reading {topic}: no end after 300 s ({count} records)");
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                count += 1;
                let v = m.payload().unwrap_or_default();
                match workload {
                    "W2" => {
                        let cs = decode_count_sum(v).ok_or_else(|| anyhow!("a W2 value of {} bytes", v.len()))?;
                        last.insert(m.key().unwrap_or_default().to_vec(), cs);
                    }
                    "W4" => {
                        let b: [u8; 8] = v.try_into().map_err(|_| anyhow!("a W4 value of {} bytes", v.len()))?;
                        sum_usd += i64::from_be_bytes(b) as i128;
                    }
                    _ => {}
                }
            }
        }
    }
    let n = ctx.input.records;
    match workload {
        "W0" | "W4" if count != n => bail!("{count} output records for {n} input records"),
        "W4" if sum_usd != ctx.input.usd_minor_sum => {
            bail!("USD sum {sum_usd} (10^-4) differs from the input's {}", ctx.input.usd_minor_sum)
        }
        "W2" => {
            let c: i64 = last.values().map(|(c, _)| c).sum();
            let s: i128 = last.values().map(|(_, s)| *s as i128).sum();
            if c as u64 != n || s != ctx.input.signed_minor_sum {
                bail!(
                    "per-account sums add up to {c} records / {s} (10^-4), the input has {n} / {}",
                    ctx.input.signed_minor_sum
                );
            }
        }
        _ => {}
    }
    Ok(count)
}

//! The table: per workload × engine the median and spread (min–max) of each figure over the
//! runs, and the ratios finstream / Kafka Streams and finstream / W0's client loop.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::measure::{Engine, RunResult};

pub struct Settings {
    pub records: u64,
    pub partitions: i32,
    pub runs: usize,
    pub guarantee: String,
    pub commit_interval_ms: u64,
    pub cache_bytes: u64,
    pub java_opts: String,
}

#[derive(Default)]
pub struct Results {
    cells: BTreeMap<(String, Engine), Vec<Result<RunResult, String>>>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

struct Stat {
    med: f64,
    min: f64,
    max: f64,
}

fn stat(v: &[f64]) -> Stat {
    Stat {
        med: median(v),
        min: v.iter().copied().fold(f64::INFINITY, f64::min),
        max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

fn fmt(s: &Stat, digits: usize) -> String {
    format!("{:.*} ({:.*}–{:.*})", digits, s.med, digits, s.min, digits, s.max)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

impl Results {
    pub fn push(&mut self, workload: &str, engine: Engine, r: Result<RunResult, String>) {
        self.cells.entry((workload.to_string(), engine)).or_default().push(r);
    }

    pub fn any_failed(&self) -> bool {
        self.cells.values().flatten().any(Result::is_err)
    }

    fn ok(&self, w: &str, e: Engine) -> Vec<&RunResult> {
        self.cells
            .get(&(w.to_string(), e))
            .map(|v| v.iter().filter_map(|r| r.as_ref().ok()).collect())
            .unwrap_or_default()
    }

    fn med(&self, w: &str, e: Engine, f: fn(&RunResult) -> f64) -> Option<f64> {
        let v: Vec<f64> = self.ok(w, e).into_iter().map(f).collect();
        (!v.is_empty()).then(|| median(&v))
    }

    pub fn render(&self, s: &Settings, workloads: &[String], engines: &[Engine]) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{} Avro TransactionEvents, {} partitions, 100k accounts Zipf(1.1); {}, commit interval {} ms, 1 stream thread, read_committed; Kafka Streams 4.4.0 with statestore.cache.max.bytes={} and its producer linger.ms=100 override, JVM `{}`; median (min–max) of {} runs; each engine in its own process.\n",
            s.records, s.partitions, s.guarantee, s.commit_interval_ms, s.cache_bytes, s.java_opts, s.runs
        );
        let _ = writeln!(
            o,
            "| workload | engine | records/s | CPU s per M records | peak RSS MiB | output records | start-up s | finstream / Kafka Streams (records/s, records per CPU s, RSS) | finstream / W0 loop (records/s) |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
        let w0 = self.med("W0", Engine::Client, |r| r.rate);
        for w in workloads {
            for &e in engines {
                let Some(runs) = self.cells.get(&(w.clone(), e)) else { continue };
                let ok = self.ok(w, e);
                let failed = runs.len() - ok.len();
                let col = |f: fn(&RunResult) -> f64, d: usize| {
                    if ok.is_empty() {
                        "failed".to_string()
                    } else {
                        fmt(&stat(&ok.iter().map(|r| f(r)).collect::<Vec<_>>()), d)
                    }
                };
                let out = ok.first().map(|r| r.out_records.to_string()).unwrap_or_else(|| "–".into());
                let (vs_ks, vs_w0) = if e == Engine::Finstream {
                    let ks = Engine::KafkaStreams;
                    let rate = ratio(self.med(w, e, |r| r.rate), self.med(w, ks, |r| r.rate));
                    // Records per CPU second: the inverse of CPU per record.
                    let eff = ratio(self.med(w, ks, |r| r.cpu_per_m), self.med(w, e, |r| r.cpu_per_m));
                    let rss = ratio(self.med(w, e, |r| r.rss_mib), self.med(w, ks, |r| r.rss_mib));
                    (format!("{rate}, {eff}, {rss}"), ratio(self.med(w, e, |r| r.rate), w0))
                } else {
                    (String::new(), String::new())
                };
                let name = if failed > 0 { format!("{} ({failed} failed)", e.name()) } else { e.name().to_string() };
                let _ = writeln!(
                    o,
                    "| {w} | {name} | {} | {} | {} | {out} | {} | {vs_ks} | {vs_w0} |",
                    col(|r| r.rate, 0),
                    col(|r| r.cpu_per_m, 2),
                    col(|r| r.rss_mib, 0),
                    col(|r| r.startup_s, 1),
                );
            }
        }
        let failures: Vec<String> = self
            .cells
            .iter()
            .flat_map(|((w, e), v)| {
                v.iter().filter_map(move |r| r.as_ref().err().map(|m| format!("- {w} {}: {m}", e.name())))
            })
            .collect();
        if !failures.is_empty() {
            let _ = writeln!(o, "\nFailed runs:\n{}", failures.join("\n"));
        }
        o
    }
}

//! `finstream generate`: the [`Generator`]'s events produced to Kafka, paced to a rate or as fast
//! as possible, with fraud labels in a side file and a progress bar.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::event::Event;
use crate::generator::{FraudLabel, Generator, GeneratorConfig};
use crate::produce::EventProducer;
use crate::ConnectorError;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// An endless, deterministic event source: the generator's data set, then further rounds of it
/// with the next seed, fresh ids (`r<N>-` prefix) and event time continuing after the previous
/// round, so a long-running demo never runs dry and never repeats an id.
pub struct EventSource {
    base: GeneratorConfig,
    round: u32,
    generator: Generator,
    /// Labels of transactions generated but not yet handed out, by transaction id.
    pending_labels: HashMap<String, Vec<FraudLabel>>,
    labels_taken: usize,
}

impl EventSource {
    pub fn new(base: GeneratorConfig) -> Self {
        let generator = Generator::new(Self::round_config(&base, 0));
        EventSource { base, round: 0, generator, pending_labels: HashMap::new(), labels_taken: 0 }
    }

    /// Round 0 is `base` itself; later rounds start after the previous one's last late event.
    fn round_config(base: &GeneratorConfig, round: u32) -> GeneratorConfig {
        if round == 0 {
            return base.clone();
        }
        // Set-up day, life, closing days and the latest late delivery, rounded up to whole weeks
        // so every round starts on the same weekday.
        let span_days = i64::from(base.days) + 4 + base.max_late_ms.max(0).div_euclid(DAY_MS);
        let span_days = (span_days + 6) / 7 * 7;
        GeneratorConfig {
            seed: base.seed.wrapping_add(u64::from(round)),
            start_ms: base.start_ms + i64::from(round) * span_days * DAY_MS,
            id_prefix: format!("{}r{round}-", base.id_prefix),
            ..base.clone()
        }
    }

    /// Which round the next event comes from (0: the configured data set itself).
    pub fn round(&self) -> u32 {
        self.round
    }

    /// The next event and the fraud labels of its transaction (empty for legitimate ones). Only
    /// the first delivery of a transaction carries its labels; a duplicate delivery carries none.
    /// `None` only when `endless` is false and the data set is exhausted.
    pub fn next(&mut self, endless: bool) -> Option<(Event, Vec<FraudLabel>)> {
        let event = loop {
            if let Some(e) = self.generator.next_event() {
                break e;
            }
            if !endless {
                return None;
            }
            self.round += 1;
            self.generator = Generator::new(Self::round_config(&self.base, self.round));
            self.labels_taken = 0;
        };
        let labels = self.generator.labels();
        for l in &labels[self.labels_taken..] {
            self.pending_labels.entry(l.transaction_id.clone()).or_default().push(l.clone());
        }
        self.labels_taken = labels.len();
        let labels = match &event {
            Event::Transaction(t) => self.pending_labels.remove(&t.transaction_id).unwrap_or_default(),
            _ => Vec::new(),
        };
        Some((event, labels))
    }
}

/// How long to wait before sending event number `sent` (0-based) at `rate` events/s, `elapsed`
/// after the start: events are due at `sent / rate`, so the average rate holds even when single
/// sends are late, and a slow stretch is made up for without a burst beyond what was missed.
pub fn pacing_delay(sent: u64, rate: f64, elapsed: Duration) -> Duration {
    if rate <= 0.0 || !rate.is_finite() {
        return Duration::ZERO;
    }
    let due = Duration::from_secs_f64(sent as f64 / rate);
    due.saturating_sub(elapsed)
}

/// Epoch millis of midnight UTC of a `YYYY-MM-DD` date, for `--start`.
pub fn start_of_day(date: &str) -> Result<i64, ConnectorError> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| ConnectorError::Config(format!("start date {date:?}: {e} (expected YYYY-MM-DD)")))?;
    Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or_default())
}

/// What `generate` does besides producing.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub generator: GeneratorConfig,
    /// Events per second; `None`: as fast as the cluster takes them.
    pub rate: Option<f64>,
    /// Stop after this many events (continuing into further rounds if the data set is smaller).
    pub count: Option<u64>,
    /// Keep going after the data set (further rounds) until stopped; ignored with `count`.
    pub endless: bool,
    /// JSON Lines file for the fraud labels (one [`FraudLabel`] per fraudulent transaction sent).
    pub labels_path: Option<PathBuf>,
    /// Draw a progress bar on stderr (the caller decides, e.g. only on a TTY).
    pub progress: bool,
}

/// What was produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateSummary {
    pub events: u64,
    pub by_topic: BTreeMap<&'static str, u64>,
    pub labels: u64,
    pub rounds: u32,
    pub elapsed: Duration,
}

fn progress_bar(opts: &GenerateOptions) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let (bar, template) = match opts.count {
        Some(n) => (ProgressBar::new(n), "{bar:40} {pos}/{len} events, {per_sec}, eta {eta} {msg}"),
        None => (ProgressBar::new_spinner(), "{spinner} {pos} events, {per_sec}, {elapsed} {msg}"),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Produces events from `opts.generator` through `producer` until the count, the end of the data
/// set (unless endless) or `stop`; then flushes and fails unless every record was delivered.
pub fn generate(
    opts: &GenerateOptions,
    producer: &mut EventProducer,
    stop: &AtomicBool,
) -> Result<GenerateSummary, ConnectorError> {
    let mut labels_out = match &opts.labels_path {
        Some(p) => Some(BufWriter::new(File::create(p).map_err(|e| ConnectorError::io(p, e))?)),
        None => None,
    };
    let mut source = EventSource::new(opts.generator.clone());
    let endless = opts.endless || opts.count.is_some();
    let bar = progress_bar(opts);
    let mut summary = GenerateSummary::default();
    let start = Instant::now();
    while opts.count.is_none_or(|n| summary.events < n) && !stop.load(Ordering::Relaxed) {
        if let Some(rate) = opts.rate {
            let wait = pacing_delay(summary.events, rate, start.elapsed());
            if !wait.is_zero() {
                // Serves delivery reports while waiting; returns early when one arrives.
                producer.poll(wait.min(Duration::from_millis(100)));
                continue;
            }
        }
        let Some((event, labels)) = source.next(endless) else { break };
        producer.send(&event)?;
        summary.events += 1;
        *summary.by_topic.entry(event.topic()).or_default() += 1;
        if let Some(out) = labels_out.as_mut() {
            for l in &labels {
                let line = serde_json::to_string(l).map_err(|e| ConnectorError::Config(e.to_string()))?;
                let path = opts.labels_path.as_deref().unwrap_or_else(|| std::path::Path::new("labels"));
                writeln!(out, "{line}").map_err(|e| ConnectorError::io(path, e))?;
            }
        }
        summary.labels += labels.len() as u64;
        bar.inc(1);
    }
    bar.set_message("flushing");
    producer.flush(Duration::from_secs(60))?;
    if let (Some(out), Some(p)) = (labels_out.as_mut(), &opts.labels_path) {
        out.flush().map_err(|e| ConnectorError::io(p, e))?;
    }
    bar.finish_and_clear();
    summary.rounds = source.round() + 1;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_spreads_events_over_time() {
        // At 100/s event 50 is due at 0.5 s.
        assert_eq!(pacing_delay(50, 100.0, Duration::from_millis(200)), Duration::from_millis(300));
        assert_eq!(pacing_delay(50, 100.0, Duration::from_millis(700)), Duration::ZERO);
        assert_eq!(pacing_delay(0, 100.0, Duration::ZERO), Duration::ZERO);
        assert_eq!(pacing_delay(10, 0.0, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn start_dates_parse_to_utc_midnight() {
        assert_eq!(start_of_day("1970-01-02").unwrap(), DAY_MS);
        assert_eq!(start_of_day("2026-03-02").unwrap(), GeneratorConfig::default().start_ms);
        assert!(start_of_day("2026-02-30").is_err());
        assert!(start_of_day("yesterday").is_err());
    }

    #[test]
    fn rounds_continue_with_fresh_ids_and_later_times() {
        let base = GeneratorConfig { users: 3, days: 2, ..GeneratorConfig::default() };
        let (first, _) = Generator::generate_all(base.clone());
        let mut source = EventSource::new(base.clone());
        let mut taken = Vec::new();
        for _ in 0..first.len() + 50 {
            taken.push(source.next(true).expect("endless").0);
        }
        assert_eq!(&taken[..first.len()], &first[..], "round 0 is the configured data set");
        assert_eq!(source.round(), 1);
        let last_first = first.iter().map(|e| e.timestamp().0).max().unwrap();
        for e in &taken[first.len()..] {
            assert!(e.timestamp().0 > last_first, "round 1 starts after round 0: {e:?}");
            if let Some(u) = e.user_id() {
                assert!(u.starts_with("r1-"), "fresh ids in round 1: {u}");
            }
        }
        let mut bounded = EventSource::new(base);
        let n = std::iter::from_fn(|| bounded.next(false)).count();
        assert_eq!(n, first.len());
    }

    #[test]
    fn labels_come_with_the_first_delivery_of_their_transaction() {
        let cfg = GeneratorConfig { users: 40, days: 20, fraud: true, ..GeneratorConfig::default() };
        let (_, labels) = Generator::generate_all(cfg.clone());
        assert!(!labels.is_empty());
        let mut source = EventSource::new(cfg);
        let mut got = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some((e, ls)) = source.next(false) {
            let first = match &e {
                Event::Transaction(t) => seen.insert(t.transaction_id.clone()),
                _ => false,
            };
            if !first {
                assert!(ls.is_empty(), "labels only on a transaction's first delivery");
            }
            for l in &ls {
                assert_eq!(Some(l.transaction_id.as_str()), e.as_transaction().map(|t| t.transaction_id.as_str()));
            }
            got.extend(ls);
        }
        let mut want = labels;
        want.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
        got.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
        assert_eq!(got, want);
    }
}

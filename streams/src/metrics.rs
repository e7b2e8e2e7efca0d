//! One Prometheus registry for the whole process, with `finstream_` names.
//!
//! Per-record counters are resolved to label-bound handles once per task (`TaskMetrics`), so the
//! hot path increments an atomic instead of hashing label values.

use std::collections::HashMap;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// All engine metrics. Cheap to clone (handles are reference counted).
#[derive(Clone)]
pub struct StreamsMetrics {
    pub registry: Registry,
    pub records_processed: IntCounterVec,
    pub records_forwarded: IntCounterVec,
    pub process_latency: Histogram,
    pub commit_latency: Histogram,
    pub commits: IntCounter,
    pub aborts: IntCounter,
    pub restored_records: IntCounterVec,
    pub restore_remaining: IntGaugeVec,
    pub cache_hits: IntCounterVec,
    pub cache_misses: IntCounterVec,
    pub late_records: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub retries: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub events: IntCounterVec,
    pub records_produced: IntCounterVec,
    pub stage_latency: HistogramVec,
    /// Records on a partition their key does not hash to under the sub-topology's partitioner
    /// (re-placed through the source's placement topic).
    pub misplaced_records: IntCounterVec,
    /// Records whose source takes its own event time but which had none, so the Kafka
    /// timestamp was used.
    pub event_time_fallbacks: IntCounterVec,
}

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    reg.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    reg.register(Box::new(g.clone())).expect("metric registered once");
    g
}

fn histogram(reg: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric");
    reg.register(Box::new(h.clone())).expect("metric registered once");
    h
}

impl Default for StreamsMetrics {
    fn default() -> Self {
        Self::new(Registry::new())
    }
}

impl StreamsMetrics {
    pub fn new(registry: Registry) -> Self {
        let r = &registry;
        let fine = prometheus::exponential_buckets(0.000_001, 4.0, 12).expect("buckets");
        let coarse = prometheus::exponential_buckets(0.000_1, 3.0, 12).expect("buckets");
        let stage_latency = HistogramVec::new(
            HistogramOpts::new("finstream_stage_latency_seconds", "Time spent in engine stages")
                .buckets(coarse.clone()),
            &["stage"],
        )
        .expect("valid metric");
        r.register(Box::new(stage_latency.clone())).expect("metric registered once");
        StreamsMetrics {
            records_processed: counter(
                r,
                "finstream_processor_records_in_total",
                "Records handed to each processor",
                &["processor"],
            ),
            records_forwarded: counter(
                r,
                "finstream_processor_records_out_total",
                "Records each processor forwarded",
                &["processor"],
            ),
            process_latency: histogram(
                r,
                "finstream_process_latency_seconds",
                "Time to process one input record through its sub-topology",
                fine,
            ),
            commit_latency: histogram(
                r,
                "finstream_commit_latency_seconds",
                "Time to commit (flush, transaction commit, state batch)",
                coarse,
            ),
            commits: counter(r, "finstream_commits_total", "Commits completed", &[]).with_label_values(&[] as &[&str]),
            aborts: counter(r, "finstream_aborts_total", "Transactions aborted", &[]).with_label_values(&[] as &[&str]),
            restored_records: counter(
                r,
                "finstream_restore_records_total",
                "Changelog records applied during restore",
                &["store"],
            ),
            restore_remaining: gauge(
                r,
                "finstream_restore_remaining_records",
                "Changelog records left to restore",
                &["store"],
            ),
            cache_hits: counter(
                r,
                "finstream_store_cache_hits_total",
                "Store reads answered by the write cache",
                &["store"],
            ),
            cache_misses: counter(
                r,
                "finstream_store_cache_misses_total",
                "Store reads that went to the backend",
                &["store"],
            ),
            late_records: counter(
                r,
                "finstream_late_records_total",
                "Records that arrived after their window's grace period",
                &["processor"],
            ),
            dead_letters: counter(
                r,
                "finstream_dead_letters_total",
                "Records sent to a dead-letter topic (or skipped) by reason",
                &["topic", "reason"],
            ),
            retries: counter(
                r,
                "finstream_retries_total",
                "Times uncommitted work was abandoned and redone after a passing failure, by reason",
                &["reason"],
            ),
            consumer_lag: gauge(
                r,
                "finstream_consumer_lag_records",
                "High watermark minus position per input partition",
                &["topic", "partition"],
            ),
            events: counter(
                r,
                "finstream_processor_events_total",
                "Processor-specific events such as duplicates ignored",
                &["processor", "event"],
            ),
            records_produced: counter(
                r,
                "finstream_records_produced_total",
                "Records the topology emitted per topic (sinks, repartition and placement topics, dead letters), \
                 counted as emitted into the open transaction",
                &["topic"],
            ),
            misplaced_records: counter(
                r,
                "finstream_misplaced_records_total",
                "Records on a partition their key does not hash to under the partitioner of the sub-topology \
                 (a producer with another partitioner); they are re-placed through the placement topic",
                &["topic"],
            ),
            event_time_fallbacks: counter(
                r,
                "finstream_event_time_fallbacks_total",
                "Records without a valid event time of their own that took their Kafka timestamp",
                &["topic"],
            ),
            stage_latency,
            registry,
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        encoder.encode_utf8(&self.registry.gather(), &mut out).expect("text encoding never fails");
        out
    }
}

/// Label-bound handles for one task's nodes.
pub(crate) struct TaskMetrics {
    pub all: StreamsMetrics,
    processed: Vec<IntCounter>,
    forwarded: Vec<IntCounter>,
    /// `records_produced` per topic, bound on first use (a label lookup per record is a hash
    /// and a lock).
    produced: HashMap<String, IntCounter>,
}

impl TaskMetrics {
    pub fn new(all: StreamsMetrics, node_names: &[String]) -> Self {
        let processed = node_names.iter().map(|n| all.records_processed.with_label_values(&[n])).collect();
        let forwarded = node_names.iter().map(|n| all.records_forwarded.with_label_values(&[n])).collect();
        TaskMetrics { all, processed, forwarded, produced: HashMap::new() }
    }
    pub fn produced(&mut self, topic: &str) {
        match self.produced.get(topic) {
            Some(c) => c.inc(),
            None => {
                let c = self.all.records_produced.with_label_values(&[topic]);
                c.inc();
                self.produced.insert(topic.to_string(), c);
            }
        }
    }

    pub fn processed(&self, node: usize) {
        self.processed[node].inc();
    }
    pub fn forwarded(&self, node: usize) {
        self.forwarded[node].inc();
    }
    pub fn event(&self, processor: &str, event: &str) {
        self.all.events.with_label_values(&[processor, event]).inc();
    }
}

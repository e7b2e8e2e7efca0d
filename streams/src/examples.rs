//! Small reference topologies used by the engine's own tests, benchmarks and the early demo:
//! a per-key running sum, and a re-keying sum enriched from a global table.

use serde::{Deserialize, Serialize};

use crate::context::ProcessorContext;
use crate::processor::{ProcessError, Processor};
use crate::record::Record;
use crate::serde::{I64Serde, JsonSerde, StringSerde};
use crate::topology::{StoreSpec, Topology, TopologyError};

/// Running count and total per key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sum {
    pub count: i64,
    pub total: i64,
}

/// Adds each value to its key's running sum in `store` and forwards the new sum.
pub struct SumProcessor {
    pub store: &'static str,
}

impl Processor<String, i64> for SumProcessor {
    fn process(&mut self, record: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        if record.value < 0 {
            return Err(ProcessError::data("negative_amount", format!("value {} is negative", record.value)));
        }
        let mut store = ctx.kv_store::<String, Sum>(self.store)?;
        let mut sum = store.get(&record.key)?.unwrap_or_default();
        sum.count += 1;
        sum.total += record.value;
        store.put(&record.key, &sum)?;
        ctx.forward(record.with_value(sum))
    }
}

/// `input` (String key, i64 value) → running sum per key in store `sums` → `output` (JSON).
pub fn sum_topology(input: &str, output: &str) -> Result<Topology, TopologyError> {
    let mut t = Topology::new();
    t.add_source::<String, i64>("input", &[input], StringSerde, I64Serde)?
        .add_processor("sum", || SumProcessor { store: "sums" }, &["input"])?
        .add_state_store(
            StoreSpec::key_value::<String, Sum>("sums", StringSerde, JsonSerde::<Sum>::default()),
            &["sum"],
        )?
        .add_sink::<String, Sum>("output", output, StringSerde, JsonSerde::<Sum>::default(), &["sum"])?;
    Ok(t)
}

/// Multiplies each value by its group's factor from the global table `factors` (default 1),
/// re-keys by group (the key's text before the first `-`) and sums per group.
pub struct RegroupProcessor;

impl Processor<String, i64> for RegroupProcessor {
    fn process(&mut self, record: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let group = record.key.split('-').next().unwrap_or_default().to_string();
        let factor = ctx.global_get::<String, i64>("factors", &group)?.unwrap_or(1);
        let value = record.value * factor;
        ctx.forward(Record::new(group, value, record.timestamp))
    }
}

/// `input` → regroup (global `factor-topic`) → repartition `by-group` → sum per group → `output`.
pub fn regroup_topology(input: &str, factor_topic: &str, output: &str) -> Result<Topology, TopologyError> {
    let mut t = Topology::new();
    t.add_source::<String, i64>("input", &[input], StringSerde, I64Serde)?
        .add_global_store(StoreSpec::key_value::<String, i64>("factors", StringSerde, I64Serde), factor_topic)?
        .add_processor("regroup", || RegroupProcessor, &["input"])?
        .add_repartition::<String, i64>("by-group", StringSerde, I64Serde, &["regroup"])?
        .add_processor("group-sum", || SumProcessor { store: "group-sums" }, &["by-group"])?
        .add_state_store(
            StoreSpec::key_value::<String, Sum>("group-sums", StringSerde, JsonSerde::<Sum>::default()),
            &["group-sum"],
        )?
        .add_sink::<String, Sum>("output", output, StringSerde, JsonSerde::<Sum>::default(), &["group-sum"])?;
    Ok(t)
}

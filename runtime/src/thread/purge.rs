//! Repartition topics are the engine's own: once a commit has moved a task's input offset past
//! their records, nobody will read them again, so they are deleted (DeleteRecords), as Kafka
//! Streams does every `repartition.purge.interval.ms`. Without it a repartition topic keeps every
//! re-keyed record for its retention (7 days by default).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{Offset, TopicPartitionList};
use streams::TaskSet;

use crate::kafka::client_config;
use crate::topics::block_on;
use crate::{RuntimeError, StreamsConfig};

pub(crate) struct Purger {
    admin: AdminClient<DefaultClientContext>,
    repartition: HashSet<String>,
    last: Instant,
    interval: Duration,
    /// Offsets already purged up to, so unchanged partitions are not asked again.
    done: BTreeMap<(String, i32), i64>,
}

impl Purger {
    pub fn new(config: &StreamsConfig, repartition_topics: &[String]) -> Result<Self, RuntimeError> {
        Ok(Purger {
            admin: client_config(config).create()?,
            repartition: repartition_topics.iter().cloned().collect(),
            last: Instant::now(),
            interval: Duration::from_millis(config.repartition_purge_interval_ms),
            done: BTreeMap::new(),
        })
    }

    /// After a commit: deletes repartition records before the committed positions, at most
    /// every `repartition_purge_interval_ms`. A failure is logged (the records only wait for their retention).
    pub fn after_commit(&mut self, tasks: &TaskSet) {
        if self.repartition.is_empty() || self.last.elapsed() < self.interval {
            return;
        }
        self.last = Instant::now();
        let mut tpl = TopicPartitionList::new();
        let mut asked = Vec::new();
        for task in tasks.iter() {
            let p = task.id().partition;
            for (topic, &offset) in task.positions() {
                let key = (topic.clone(), p);
                if self.repartition.contains(topic)
                    && self.done.get(&key).is_none_or(|d| *d < offset)
                    && tpl.add_partition_offset(topic, p, Offset::Offset(offset)).is_ok()
                {
                    asked.push((key, offset));
                }
            }
        }
        if tpl.count() == 0 {
            return;
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
        match block_on(self.admin.delete_records(&tpl, &opts)) {
            Ok(result) => {
                let failed: Vec<String> = result
                    .elements()
                    .iter()
                    .filter_map(|e| e.error().err().map(|err| format!("{}[{}]: {err}", e.topic(), e.partition())))
                    .collect();
                if !failed.is_empty() {
                    tracing::warn!(?failed, "purging repartition topics failed for some partitions");
                }
                self.done.extend(asked);
            }
            Err(e) => tracing::warn!(error = %e, "purging repartition topics failed"),
        }
    }
}

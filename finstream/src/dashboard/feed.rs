//! The dashboard's activity feed: the newest budget alerts and fraud decisions, read from the
//! derived topics as any outside subscriber would (read_committed, Avro through the registry).
//! State stores answer "what is X now"; "what just happened across all users" is the topics'.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use query::model::{amount, instant, FraudScoreItem};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use schemas::registry::SchemaRegistry;
use schemas::{AvroSerde, BudgetAlert, FraudDecision, FraudScore};
use serde::Serialize;
use streams::Serde;

/// How many of each kind the feed keeps (and reads back from each partition at start).
pub const FEED_LEN: usize = 50;

/// One budget alert as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertItem {
    pub alert_id: String,
    pub user_id: String,
    pub budget_id: String,
    pub category: String,
    pub level: String,
    pub threshold_percent: i32,
    pub spent: String,
    pub limit: String,
    pub currency: String,
    pub occurred_at: String,
}

/// Newest first.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Activity {
    pub budget_alerts: VecDeque<AlertItem>,
    pub fraud_decisions: VecDeque<FraudScoreItem>,
}

/// The running feed; dropping it stops its consumer thread.
pub struct Feed {
    activity: Arc<Mutex<Activity>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn push<T>(q: &mut VecDeque<T>, item: T) {
    q.push_front(item);
    q.truncate(FEED_LEN);
}

impl Feed {
    /// Subscribes to `alerts_topic` and `fraud_topic` on the cluster of `client` (librdkafka
    /// settings; `group.id` is not used: the feed assigns partitions itself and commits nothing).
    pub fn start(
        client: ClientConfig,
        registry: Arc<dyn SchemaRegistry>,
        alerts_topic: &str,
        fraud_topic: &str,
    ) -> anyhow::Result<Feed> {
        let consumer: BaseConsumer = client
            .clone()
            .set("group.id", "finstream-dashboard-feed")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .context("creating the dashboard feed consumer")?;
        let mut tpl = TopicPartitionList::new();
        for topic in [alerts_topic, fraud_topic] {
            let md = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .with_context(|| format!("metadata of {topic}"))?;
            for p in md.topics().iter().flat_map(|t| t.partitions()) {
                tpl.add_partition_offset(topic, p.id(), Offset::OffsetTail(FEED_LEN as i64))?;
            }
        }
        consumer.assign(&tpl).context("assigning the feed's partitions")?;
        let activity = Arc::new(Mutex::new(Activity::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (activity.clone(), stop.clone());
        let (alerts_topic, fraud_topic) = (alerts_topic.to_string(), fraud_topic.to_string());
        let thread = std::thread::Builder::new().name("dashboard-feed".into()).spawn(move || {
            let alerts = AvroSerde::<BudgetAlert>::new(registry.clone()).without_validation();
            let scores = AvroSerde::<FraudScore>::new(registry).without_validation();
            while !s.load(Ordering::SeqCst) {
                let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
                let Ok(m) = msg else { continue };
                let Some(payload) = m.payload() else { continue };
                let mut act = a.lock().expect("poisoned");
                if m.topic() == alerts_topic {
                    match alerts.deserialize(&alerts_topic, payload) {
                        Ok(v) => push(&mut act.budget_alerts, AlertItem::from(v)),
                        Err(e) => tracing::debug!(error = %e, "feed skips an undecodable alert"),
                    }
                } else if m.topic() == fraud_topic {
                    match scores.deserialize(&fraud_topic, payload) {
                        Ok(v) if v.decision != FraudDecision::Approve => {
                            push(&mut act.fraud_decisions, FraudScoreItem::from(v))
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "feed skips an undecodable score"),
                    }
                }
            }
        })?;
        Ok(Feed { activity, stop, thread: Some(thread) })
    }

    /// A feed that shows `activity` and never changes (no consumer): for tests of what the page
    /// and `/v1/activity` do with a given feed.
    pub fn fixed(activity: Activity) -> Feed {
        Feed { activity: Arc::new(Mutex::new(activity)), stop: Arc::new(AtomicBool::new(true)), thread: None }
    }

    pub fn snapshot(&self) -> Activity {
        self.activity.lock().expect("poisoned").clone()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl From<BudgetAlert> for AlertItem {
    fn from(a: BudgetAlert) -> Self {
        AlertItem {
            alert_id: a.alert_id,
            user_id: a.user_id,
            budget_id: a.budget_id,
            category: a.category.symbol().to_string(),
            level: a.level.symbol().to_string(),
            threshold_percent: a.threshold_percent,
            spent: amount(a.spent),
            limit: amount(a.limit),
            currency: a.currency,
            occurred_at: instant(a.occurred_at.0),
        }
    }
}

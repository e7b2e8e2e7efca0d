//! Shared helpers: librdkafka's mock cluster (real Kafka protocol over TCP), the embedded schema
//! registry served over HTTP like Confluent's, and a reader of whole topics.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{Message, Offset, TopicPartitionList};
use schemas::registry::{server, EmbeddedRegistry};

pub type Mock = MockCluster<'static, DefaultProducerContext>;

pub fn mock_cluster(topics: &[(&str, i32)]) -> Mock {
    let mock = MockCluster::new(1).expect("mock cluster starts");
    for (t, p) in topics {
        mock.create_topic(t, *p, 1).expect("topic created");
    }
    mock
}

/// An embedded registry answering over HTTP; keep the runtime alive as long as it is used.
pub struct Registry {
    pub url: String,
    pub registry: Arc<EmbeddedRegistry>,
    _rt: tokio::runtime::Runtime,
}

pub fn registry() -> Registry {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(server::serve(listener, registry.clone()));
    Registry { url, registry, _rt: rt }
}

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: Vec<u8>,
    pub timestamp: i64,
}

/// Reads `topic`'s `partitions` from the beginning until `expected` records arrived or `timeout`
/// passed, then `settle` longer to catch any record beyond `expected`.
pub fn read_topic(bootstrap: &str, topic: &str, partitions: i32, expected: usize, timeout: Duration) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{topic}-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut settle_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now > deadline || settle_until.is_some_and(|s| now > s) {
            break;
        }
        if out.len() >= expected && settle_until.is_none() {
            settle_until = Some(now + Duration::from_millis(500));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Consumed {
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8(m.key().unwrap_or_default().to_vec()).expect("utf-8 key"),
                value: m.payload().unwrap_or_default().to_vec(),
                timestamp: m.timestamp().to_millis().unwrap_or(-1),
            }),
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}

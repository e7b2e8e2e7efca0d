//! `HttpRegistry` against the embedded server on a real socket, and `AvroSerde` through it.

use std::sync::Arc;

use schemas::registry::{server, EmbeddedRegistry, HttpRegistry, SchemaRegistry};
use schemas::{AvroRecord, AvroSerde, TransactionEvent};
use streams::serde::Serde;

use crate::{record, OPTIONAL_NOTE, REQUIRED_NOTE};

/// Starts the server on 127.0.0.1:0 in a background runtime; returns its URL and the runtime
/// (dropping it stops the server).
fn start() -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(server::serve(listener, Arc::new(EmbeddedRegistry::in_memory())));
    (url, rt)
}

#[test]
fn http_client_speaks_the_rest_api() {
    let (url, _rt) = start();
    let client = HttpRegistry::new(&url);
    let s1 = record("R", &[]);
    let id = client.register("s-value", &s1).unwrap();
    assert_eq!(client.register("s-value", &s1).unwrap(), id);
    assert_eq!(client.schema_by_id(id).unwrap(), s1);
    let id2 = client.register("s-value", &record("R", &[OPTIONAL_NOTE])).unwrap();
    let latest = client.latest("s-value").unwrap();
    assert_eq!((latest.version, latest.id), (2, id2));
    assert_eq!(client.versions("s-value").unwrap(), vec![1, 2]);
    assert_eq!(client.subjects().unwrap(), vec!["s-value".to_string()]);
    assert!(!client.is_compatible("s-value", &record("R", &[REQUIRED_NOTE])).unwrap());

    let err = client.register("s-value", &record("R", &[REQUIRED_NOTE])).unwrap_err();
    assert_eq!((err.error_code(), err.is_not_found()), (Some(409), false), "{err}");
    let err = client.schema_by_id(4242).unwrap_err();
    assert_eq!(err.error_code(), Some(40403));
    assert!(err.is_not_found());
    let err = client.latest("missing/with space").unwrap_err();
    assert_eq!(err.error_code(), Some(40401));
    assert_eq!(client.delete_subject("s-value").unwrap(), vec![1, 2]);
    // A fresh client (empty cache) still resolves ids of deleted subjects.
    assert_eq!(HttpRegistry::new(&url).schema_by_id(id).unwrap(), s1);
}

#[test]
fn serde_through_http_and_unreachable_registry() {
    let (url, _rt) = start();
    let serde = AvroSerde::<TransactionEvent>::new(Arc::new(HttpRegistry::new(&url)));
    let tx = TransactionEvent {
        transaction_id: "tx-1".into(),
        account_id: "acc-1".into(),
        user_id: "u".into(),
        kind: schemas::TransactionKind::Deposit,
        amount: "10.25".parse().unwrap(),
        currency: "USD".into(),
        status: schemas::TransactionStatus::Completed,
        category: schemas::Category::Income,
        counterparty_account_id: None,
        merchant: None,
        goal_id: None,
        channel: schemas::Channel::Online,
        location: None,
        occurred_at: schemas::TimestampMillis(1),
    };
    let bytes = serde.serialize("transactions", &tx).unwrap();
    // A second serde (another process, say) reads it via GET /schemas/ids/{id}.
    let reader = AvroSerde::<TransactionEvent>::new(Arc::new(HttpRegistry::new(&url)));
    assert_eq!(reader.deserialize("transactions", &bytes).unwrap(), tx);
    assert_eq!(HttpRegistry::new(&url).latest("transactions-value").unwrap().schema, TransactionEvent::contract().json);

    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = HttpRegistry::new(&format!("http://127.0.0.1:{port}"));
    let err = down.schema_by_id(1).unwrap_err();
    assert_eq!(err.error_code(), None, "{err}");
}

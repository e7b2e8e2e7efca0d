use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use schemas::registry::{server, EmbeddedRegistry};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{record, MONEY, OPTIONAL_NOTE, REQUIRED_NOTE};

struct Api(axum::Router);

impl Api {
    fn new() -> Self {
        Api(server::router(Arc::new(EmbeddedRegistry::in_memory())))
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let resp = self.0.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        assert_eq!(resp.headers()["content-type"], "application/vnd.schemaregistry.v1+json");
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn register(&self, subject: &str, schema: &str) -> (StatusCode, Value) {
        self.call("POST", &format!("/subjects/{subject}/versions"), Some(json!({ "schema": schema }))).await
    }
}

fn error_code(v: &Value) -> u64 {
    v["error_code"].as_u64().unwrap_or_else(|| panic!("no error_code in {v}"))
}

#[tokio::test]
async fn register_is_idempotent_and_ids_are_global() {
    let api = Api::new();
    let s1 = record("Payment", &[MONEY]);
    let (st, v) = api.register("payments-value", &s1).await;
    assert_eq!(st, StatusCode::OK);
    let id = v["id"].as_u64().unwrap();
    // Same schema, differently formatted: same id, no new version.
    let reformatted = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&s1).unwrap()).unwrap();
    assert_eq!(api.register("payments-value", &reformatted).await.1["id"], id);
    assert_eq!(api.call("GET", "/subjects/payments-value/versions", None).await.1, json!([1]));
    // Same schema in another subject: same id, version 1 there.
    assert_eq!(api.register("other-value", &s1).await.1["id"], id);
    // A new compatible version gets a new id.
    let (_, v2) = api.register("payments-value", &record("Payment", &[MONEY, OPTIONAL_NOTE])).await;
    assert_ne!(v2["id"], id);
    assert_eq!(api.call("GET", "/subjects/payments-value/versions", None).await.1, json!([1, 2]));
    assert_eq!(api.call("GET", "/subjects", None).await.1, json!(["other-value", "payments-value"]));

    let (st, by_id) = api.call("GET", &format!("/schemas/ids/{id}"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(by_id["schema"], s1);

    let (_, latest) = api.call("GET", "/subjects/payments-value/versions/latest", None).await;
    assert_eq!(latest["subject"], "payments-value");
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["id"], v2["id"]);
    let (_, first) = api.call("GET", "/subjects/payments-value/versions/1", None).await;
    assert_eq!(
        (first["version"].clone(), first["id"].clone(), first["schema"].clone()),
        (json!(1), json!(id), json!(s1))
    );

    // Lookup of a schema under a subject.
    let (st, found) = api.call("POST", "/subjects/payments-value", Some(json!({ "schema": s1 }))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(found["version"], 1);
}

#[tokio::test]
async fn not_found_and_invalid_codes() {
    let api = Api::new();
    let (st, v) = api.call("GET", "/subjects/nope/versions", None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, 40401));
    assert!(v["message"].is_string());
    let (st, v) = api.call("GET", "/subjects/nope/versions/latest", None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, 40401));
    let (st, v) = api.call("GET", "/schemas/ids/999", None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, 40403));
    let (st, v) = api.call("DELETE", "/subjects/nope", None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, 40401));

    api.register("s-value", &record("R", &[])).await;
    let (st, v) = api.call("GET", "/subjects/s-value/versions/7", None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, 40402));
    let (st, v) = api.call("GET", "/subjects/s-value/versions/zero", None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, 42202));
    let (st, v) = api.call("POST", "/subjects/s-value", Some(json!({ "schema": record("Other", &[]) }))).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, 40403));

    let (st, v) = api.register("s-value", r#"{"type":"record","name":"R"}"#).await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, 42201));
    let (st, v) = api.register("s-value", "not json").await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, 42201));
    let (st, v) =
        api.call("POST", "/subjects/s-value/versions", Some(json!({ "schema": "{}", "schemaType": "PROTOBUF" }))).await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, 42201));
}

#[tokio::test]
async fn backward_is_enforced_by_default() {
    let api = Api::new();
    api.register("s-value", &record("R", &[MONEY])).await;
    // Adding a required field: the new schema cannot read old data.
    let bad = record("R", &[MONEY, REQUIRED_NOTE]);
    let (st, v) = api.register("s-value", &bad).await;
    assert_eq!((st, error_code(&v)), (StatusCode::CONFLICT, 409), "{v}");
    let (_, v) =
        api.call("POST", "/compatibility/subjects/s-value/versions/latest", Some(json!({ "schema": bad }))).await;
    assert_eq!(v, json!({ "is_compatible": false }));
    let good = record("R", &[MONEY, OPTIONAL_NOTE]);
    let (_, v) = api.call("POST", "/compatibility/subjects/s-value/versions/1", Some(json!({ "schema": good }))).await;
    assert_eq!(v, json!({ "is_compatible": true }));
    // Changing the money field's type is incompatible as well.
    let (st, _) = api.register("s-value", &record("R", &[r#"{"name":"amount","type":"double"}"#])).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) =
        api.call("POST", "/compatibility/subjects/none-value/versions/latest", Some(json!({ "schema": good }))).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, 40401));
}

#[tokio::test]
async fn config_levels() {
    let api = Api::new();
    assert_eq!(api.call("GET", "/config", None).await.1, json!({ "compatibilityLevel": "BACKWARD" }));
    let (st, v) = api.call("GET", "/config/s-value", None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::NOT_FOUND, 40408));
    let (_, v) = api.call("GET", "/config/s-value?defaultToGlobal=true", None).await;
    assert_eq!(v, json!({ "compatibilityLevel": "BACKWARD" }));

    let (st, v) = api.call("PUT", "/config/s-value", Some(json!({ "compatibility": "FORWARD" }))).await;
    assert_eq!((st, v), (StatusCode::OK, json!({ "compatibility": "FORWARD" })));
    assert_eq!(api.call("GET", "/config/s-value", None).await.1, json!({ "compatibilityLevel": "FORWARD" }));
    let (st, v) = api.call("PUT", "/config", Some(json!({ "compatibility": "SIDEWAYS" }))).await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, 42203));

    // FORWARD: old readers must read new data, so removing a field without default is out,
    // adding a required one is fine.
    api.register("s-value", &record("R", &[MONEY])).await;
    assert_eq!(api.register("s-value", &record("R", &[MONEY, REQUIRED_NOTE])).await.0, StatusCode::OK);
    assert_eq!(api.register("s-value", &record("R", &[REQUIRED_NOTE])).await.0, StatusCode::CONFLICT);

    // FULL on another subject: both directions; NONE accepts anything.
    api.call("PUT", "/config/f-value", Some(json!({ "compatibility": "FULL" }))).await;
    api.register("f-value", &record("R", &[MONEY])).await;
    assert_eq!(api.register("f-value", &record("R", &[MONEY, REQUIRED_NOTE])).await.0, StatusCode::CONFLICT);
    assert_eq!(api.register("f-value", &record("R", &[MONEY, OPTIONAL_NOTE])).await.0, StatusCode::OK);
    api.call("PUT", "/config", Some(json!({ "compatibility": "NONE" }))).await;
    assert_eq!(api.register("n-value", &record("R", &[MONEY])).await.0, StatusCode::OK);
    assert_eq!(api.register("n-value", &record("Q", &[])).await.0, StatusCode::OK);
}

#[tokio::test]
async fn delete_subject_is_soft() {
    let api = Api::new();
    let (_, v) = api.register("s-value", &record("R", &[])).await;
    api.register("s-value", &record("R", &[OPTIONAL_NOTE])).await;
    let (st, deleted) = api.call("DELETE", "/subjects/s-value", None).await;
    assert_eq!((st, deleted), (StatusCode::OK, json!([1, 2])));
    assert_eq!(api.call("GET", "/subjects", None).await.1, json!([]));
    let (st, v2) = api.call("GET", "/subjects/s-value/versions", None).await;
    assert_eq!((st, error_code(&v2)), (StatusCode::NOT_FOUND, 40401));
    // Ids stay readable (old data still references them) and come back on re-registration.
    let id = v["id"].as_u64().unwrap();
    assert_eq!(api.call("GET", &format!("/schemas/ids/{id}"), None).await.0, StatusCode::OK);
    assert_eq!(api.register("s-value", &record("R", &[])).await.1["id"], id);
    assert_eq!(api.call("GET", "/subjects/s-value/versions", None).await.1, json!([3]));
}

#[tokio::test]
async fn contract_schemas_register_and_evolve() {
    // Every .avsc registers; a TransactionEvent v1 (no goal_id/location) is a valid predecessor.
    let api = Api::new();
    let tx = schemas::contract::contract("TransactionEvent").unwrap().json;
    let mut v1: Value = serde_json::from_str(tx).unwrap();
    v1["fields"].as_array_mut().unwrap().retain(|f| f["name"] != "goal_id" && f["name"] != "location");
    assert_eq!(api.register("transactions-value", &v1.to_string()).await.0, StatusCode::OK);
    assert_eq!(api.register("transactions-value", tx).await.0, StatusCode::OK);
    for (name, json) in schemas::contract::AVSC_FILES {
        let (st, v) = api.register(&format!("{name}-value"), json).await;
        assert_eq!(st, StatusCode::OK, "{name}: {v}");
    }
}

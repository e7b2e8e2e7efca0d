//! A registry reopened from its store keeps ids, versions, deletions and config.

use std::sync::Arc;

use schemas::registry::{
    CompatibilityLevel, EmbeddedRegistry, MemorySchemaStore, SchemaRegistry, SchemaStore, StoreRecord, VersionSel,
};

use crate::{record, OPTIONAL_NOTE};

#[test]
fn reopen_restores_state() {
    let store = Arc::new(MemorySchemaStore::new());
    let a = EmbeddedRegistry::open(store.clone()).unwrap();
    let id1 = a.register("s-value", &record("R", &[])).unwrap();
    let id2 = a.register("s-value", &record("R", &[OPTIONAL_NOTE])).unwrap();
    let other = a.register("o-value", &record("O", &[])).unwrap();
    a.delete_subject("o-value").unwrap();
    a.set_level(Some("s-value"), CompatibilityLevel::Full).unwrap();
    a.set_level(None, CompatibilityLevel::None).unwrap();

    // Records survive JSON (what a `_schemas` topic would hold), keyed for compaction.
    let records = store.load().unwrap();
    let replayed = Arc::new(MemorySchemaStore::new());
    for r in &records {
        assert!(r.key().contains("keytype"));
        replayed.append(&StoreRecord::from_json(&r.to_json()).unwrap()).unwrap();
    }
    let b = EmbeddedRegistry::open(replayed).unwrap();
    assert_eq!(b.versions("s-value").unwrap(), vec![1, 2]);
    assert_eq!(b.version("s-value", VersionSel::Latest).unwrap().id, id2);
    assert_eq!(b.schema(id1).unwrap(), record("R", &[]));
    assert_eq!(b.subjects(), vec!["s-value".to_string()]);
    assert_eq!(b.schema(other).unwrap(), record("O", &[]));
    assert_eq!(b.subject_level("s-value"), Some(CompatibilityLevel::Full));
    assert_eq!(b.global_level(), CompatibilityLevel::None);
    // New ids continue after the restored ones.
    let id3 = b.register("n-value", &record("N", &[])).unwrap();
    assert!(id3 > id1.max(id2).max(other));
    assert_eq!(b.register("s-value", &record("R", &[])).unwrap(), id1);
}

#[test]
fn store_failures_reject_the_change() {
    struct Broken;
    impl SchemaStore for Broken {
        fn append(&self, _: &StoreRecord) -> Result<(), String> {
            Err("disk full".into())
        }
        fn load(&self) -> Result<Vec<StoreRecord>, String> {
            Ok(vec![])
        }
    }
    let r = EmbeddedRegistry::open(Arc::new(Broken)).unwrap();
    let err = r.register("s-value", &record("R", &[])).unwrap_err();
    assert_eq!(err.error_code(), Some(50001));
    assert!(r.subjects().is_empty());
}

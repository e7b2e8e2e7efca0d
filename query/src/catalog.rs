//! The stores the generic `/v1/stores` endpoint serves, by name: every store of the topology
//! the instance runs, as `BuiltTopology::queryable_stores` lists them (typed where the store's
//! handle has a `QuerySpec`, administrators-only and raw otherwise). Built once: a running
//! application's topology does not change.

use std::collections::BTreeMap;
use std::sync::Arc;

use streams::store::query::QueryableStore;
use streams::BuiltTopology;

#[derive(Default)]
pub struct Catalog {
    stores: BTreeMap<String, Arc<dyn QueryableStore>>,
}

impl Catalog {
    /// The stores of `topology` (none without one).
    pub fn of(topology: Option<&BuiltTopology>) -> Self {
        Catalog::new(topology.map(|t| t.queryable_stores()).unwrap_or_default())
    }

    pub fn new(stores: impl IntoIterator<Item = Arc<dyn QueryableStore>>) -> Self {
        Catalog { stores: stores.into_iter().map(|s| (s.name().to_string(), s)).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn QueryableStore>> {
        self.stores.get(name)
    }

    /// In name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn QueryableStore>> {
        self.stores.values()
    }

    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }
}

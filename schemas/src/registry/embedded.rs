//! [`EmbeddedRegistry`]: the registry's logic, shared by the HTTP server and in-process users.
//! State is the replay of [`StoreRecord`]s; every change is appended to the store before it is
//! applied, so a restart from the same store keeps ids and versions.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::codec::Shape;

use super::store::{MemorySchemaStore, SchemaRecord, SchemaStore, StoreRecord};
use super::{check_compatibility, codes, CompatibilityLevel, RegisteredSchema, RegistryError, SchemaRegistry};

/// A version in a URL: a number, or `latest` (also `-1`, as Confluent accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSel {
    Latest,
    Number(u32),
}

impl FromStr for VersionSel {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        match s {
            "latest" | "-1" => Ok(VersionSel::Latest),
            _ => match s.parse::<u32>() {
                Ok(n) if n > 0 => Ok(VersionSel::Number(n)),
                _ => Err(RegistryError::api(
                    422,
                    codes::INVALID_VERSION,
                    format!("The specified version '{s}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""),
                )),
            },
        }
    }
}

struct Version {
    version: u32,
    id: u32,
    deleted: bool,
}

#[derive(Default)]
struct State {
    /// id → (schema text as first registered, compiled schema).
    schemas: HashMap<u32, Arc<(String, Shape)>>,
    /// normalized schema JSON → id: the same schema gets the same id in every subject.
    ids_by_key: HashMap<String, u32>,
    subjects: BTreeMap<String, Vec<Version>>,
    global: CompatibilityLevel,
    levels: HashMap<String, CompatibilityLevel>,
    next_id: u32,
}

impl State {
    fn apply(&mut self, record: &StoreRecord) -> Result<(), String> {
        match record {
            StoreRecord::Schema(r) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = self.schemas.entry(r.id) {
                    let parsed = Shape::parse(&r.schema).map_err(|e| format!("schema id {}: {e}", r.id))?;
                    slot.insert(Arc::new((r.schema.clone(), parsed)));
                    self.ids_by_key.entry(normalize(&r.schema)?).or_insert(r.id);
                }
                self.next_id = self.next_id.max(r.id + 1);
                let versions = self.subjects.entry(r.subject.clone()).or_default();
                match versions.iter_mut().find(|v| v.version == r.version) {
                    Some(v) => {
                        v.id = r.id;
                        v.deleted = r.deleted;
                    }
                    None => {
                        versions.push(Version { version: r.version, id: r.id, deleted: r.deleted });
                        versions.sort_by_key(|v| v.version);
                    }
                }
            }
            StoreRecord::Config { subject: None, compatibility_level } => self.global = *compatibility_level,
            StoreRecord::Config { subject: Some(s), compatibility_level } => {
                self.levels.insert(s.clone(), *compatibility_level);
            }
        }
        Ok(())
    }

    fn live(&self, subject: &str) -> Result<Vec<&Version>, RegistryError> {
        let live: Vec<&Version> =
            self.subjects.get(subject).map(|vs| vs.iter().filter(|v| !v.deleted).collect()).unwrap_or_default();
        if live.is_empty() {
            return Err(subject_not_found(subject));
        }
        Ok(live)
    }

    fn registered(&self, subject: &str, v: &Version) -> RegisteredSchema {
        RegisteredSchema {
            subject: subject.to_string(),
            version: v.version,
            id: v.id,
            schema: self.schemas[&v.id].0.clone(),
        }
    }

    fn level(&self, subject: &str) -> CompatibilityLevel {
        self.levels.get(subject).copied().unwrap_or(self.global)
    }
}

fn subject_not_found(subject: &str) -> RegistryError {
    RegistryError::api(404, codes::SUBJECT_NOT_FOUND, format!("Subject '{subject}' not found."))
}

fn store_error(e: String) -> RegistryError {
    RegistryError::api(500, codes::STORE_ERROR, format!("Error while storing the schema: {e}"))
}

/// The registry's identity for a schema: its JSON with object keys sorted and whitespace removed,
/// so formatting differences do not create new ids (documentation and defaults still count, as in
/// Confluent).
fn normalize(json: &str) -> Result<String, String> {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<_> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(sorted(v).to_string())
}

fn parse(schema: &str) -> Result<(Shape, String), RegistryError> {
    let invalid = |e: String| RegistryError::api(422, codes::INVALID_SCHEMA, format!("Invalid schema: {e}"));
    let parsed = Shape::parse(schema).map_err(invalid)?;
    Ok((parsed, normalize(schema).map_err(invalid)?))
}

/// The embedded schema registry. Use it directly (it implements [`SchemaRegistry`]) or serve it
/// with [`super::server::router`].
pub struct EmbeddedRegistry {
    state: Mutex<State>,
    store: Arc<dyn SchemaStore>,
}

impl EmbeddedRegistry {
    /// A registry that keeps its records in `store`, restoring the state `store` already holds.
    pub fn open(store: Arc<dyn SchemaStore>) -> Result<Self, RegistryError> {
        let mut state = State { next_id: 1, ..State::default() };
        for record in store.load().map_err(store_error)? {
            state.apply(&record).map_err(store_error)?;
        }
        Ok(EmbeddedRegistry { state: Mutex::new(state), store })
    }

    /// A registry in memory only.
    pub fn in_memory() -> Self {
        Self::open(Arc::new(MemorySchemaStore::new())).expect("an empty store loads")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(&self, state: &mut State, record: StoreRecord) -> Result<(), RegistryError> {
        self.store.append(&record).map_err(store_error)?;
        state.apply(&record).map_err(store_error)
    }

    /// Registers `schema` under `subject`: the existing id when this subject already has it, else
    /// a new version (reusing the schema's global id if another subject has it) after checking
    /// compatibility with the subject's level (409 when incompatible, 422 when not valid Avro).
    pub fn register_schema(&self, subject: &str, schema: &str) -> Result<RegisteredSchema, RegistryError> {
        let (parsed, key) = parse(schema)?;
        let mut state = self.lock();
        let existing_id = state.ids_by_key.get(&key).copied();
        if let Ok(live) = state.live(subject) {
            if let Some(v) = live.iter().find(|v| Some(v.id) == existing_id) {
                return Ok(state.registered(subject, v));
            }
            let old: Vec<&Shape> = live.iter().map(|v| &state.schemas[&v.id].1).collect();
            check_compatibility(state.level(subject), &parsed, &old).map_err(|e| {
                RegistryError::api(
                    409,
                    codes::INCOMPATIBLE_SCHEMA,
                    format!(
                        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {e}"
                    ),
                )
            })?;
        }
        let id = existing_id.unwrap_or(state.next_id);
        let version = state.subjects.get(subject).and_then(|vs| vs.last()).map_or(1, |v| v.version + 1);
        let record =
            SchemaRecord { subject: subject.to_string(), version, id, schema: schema.to_string(), deleted: false };
        self.append(&mut state, StoreRecord::Schema(record))?;
        Ok(RegisteredSchema { subject: subject.to_string(), version, id, schema: state.schemas[&id].0.clone() })
    }

    /// The version of `subject` that has exactly this schema (40401 / 40403 when none).
    pub fn lookup(&self, subject: &str, schema: &str) -> Result<RegisteredSchema, RegistryError> {
        let (_, key) = parse(schema)?;
        let state = self.lock();
        let live = state.live(subject)?;
        let id = state.ids_by_key.get(&key);
        live.iter()
            .find(|v| Some(&v.id) == id)
            .map(|v| state.registered(subject, v))
            .ok_or_else(|| RegistryError::api(404, codes::SCHEMA_NOT_FOUND, "Schema not found"))
    }

    /// The schema text with this id (40403 when unknown). Deleted subjects do not make ids unknown.
    pub fn schema(&self, id: u32) -> Result<String, RegistryError> {
        self.lock()
            .schemas
            .get(&id)
            .map(|s| s.0.clone())
            .ok_or_else(|| RegistryError::api(404, codes::SCHEMA_NOT_FOUND, format!("Schema {id} not found")))
    }

    /// Subjects with at least one live version, sorted.
    pub fn subjects(&self) -> Vec<String> {
        let state = self.lock();
        state.subjects.iter().filter(|(_, vs)| vs.iter().any(|v| !v.deleted)).map(|(s, _)| s.clone()).collect()
    }

    /// Live version numbers of a subject (40401 when none).
    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        Ok(self.lock().live(subject)?.iter().map(|v| v.version).collect())
    }

    /// One version of a subject (40401 / 40402).
    pub fn version(&self, subject: &str, sel: VersionSel) -> Result<RegisteredSchema, RegistryError> {
        let state = self.lock();
        let live = state.live(subject)?;
        let v = match sel {
            VersionSel::Latest => live.last().copied(),
            VersionSel::Number(n) => live.iter().find(|v| v.version == n).copied(),
        };
        let v =
            v.ok_or_else(|| RegistryError::api(404, codes::VERSION_NOT_FOUND, format!("Version {sel:?} not found.")))?;
        Ok(state.registered(subject, v))
    }

    /// Soft-deletes every version of a subject; returns their numbers (40401 when none).
    pub fn delete_subject(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        let mut state = self.lock();
        let deleted: Vec<SchemaRecord> = state
            .live(subject)?
            .iter()
            .map(|v| SchemaRecord {
                subject: subject.to_string(),
                version: v.version,
                id: v.id,
                schema: state.schemas[&v.id].0.clone(),
                deleted: true,
            })
            .collect();
        let versions = deleted.iter().map(|r| r.version).collect();
        for r in deleted {
            self.append(&mut state, StoreRecord::Schema(r))?;
        }
        Ok(versions)
    }

    /// Whether `schema` could be registered: against `latest` with the subject's level (all live
    /// versions for transitive levels), or against one given version.
    pub fn is_compatible(&self, subject: &str, sel: VersionSel, schema: &str) -> Result<bool, RegistryError> {
        let (parsed, _) = parse(schema)?;
        let target = self.version(subject, sel)?;
        let state = self.lock();
        let level = state.level(subject);
        let old: Vec<&Shape> = match sel {
            VersionSel::Latest => state.live(subject)?.iter().map(|v| &state.schemas[&v.id].1).collect(),
            VersionSel::Number(_) => vec![&state.schemas[&target.id].1],
        };
        Ok(check_compatibility(level, &parsed, &old).is_ok())
    }

    pub fn global_level(&self) -> CompatibilityLevel {
        self.lock().global
    }

    /// The subject's own level, `None` when it follows the global one.
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.lock().levels.get(subject).copied()
    }

    /// Sets the global level (`subject: None`) or a subject's.
    pub fn set_level(&self, subject: Option<&str>, level: CompatibilityLevel) -> Result<(), RegistryError> {
        let mut state = self.lock();
        let record = StoreRecord::Config { subject: subject.map(str::to_string), compatibility_level: level };
        self.append(&mut state, record)
    }
}

impl SchemaRegistry for EmbeddedRegistry {
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        self.register_schema(subject, schema).map(|r| r.id)
    }
    fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        self.schema(id)
    }
    fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.version(subject, VersionSel::Latest)
    }
}

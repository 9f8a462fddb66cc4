//! The object store: every object as its compact JSON, keyed by resource, namespace and name,
//! with one global `resourceVersion` counter, server-set metadata (uid, creationTimestamp,
//! generation), optimistic concurrency, and a bounded change history that watches start from.
//!
//! Pods, nine objects in ten of a fleet, are kept as their JSON text alone and parsed when read:
//! a parsed pod (order-keeping maps, every key its own allocation) takes about seven times the
//! memory of its text. Other kinds keep their parsed value beside the text. Responses copy the
//! text, so a list never serialises an object again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::dice::Dice;
use tokio::sync::broadcast;

use crate::clock;
use crate::compact::compact;
pub use crate::object::{
    containers, controller_uid, labels_of, meta, meta_mut, meta_str, name_of, namespace_of, string_map, uid_of,
};
use crate::pod_facts::PodFacts;
use crate::resources::{self, RESOURCES, ResId};
use crate::status::ApiError;

/// What happened to an object: the watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub res: ResId,
    pub kind: ChangeKind,
    pub object: Arc<Stored>,
    /// The object before a modification, so filtered watches can tell "left the selection".
    pub prev: Option<Arc<Stored>>,
}

/// One stored object: its compact JSON, which responses copy, and for kinds other than pods its
/// parsed value (controllers read those on every pass); a pod is parsed when read, and keeps
/// the facts the controllers' passes read of every pod.
#[derive(Debug)]
pub struct Stored {
    json: Bytes,
    value: Option<Arc<Value>>,
    facts: Option<Box<PodFacts>>,
    /// Where a pod's `metadata` value sits in `json` (a Table row copies it from there).
    metadata: Option<std::ops::Range<u32>>,
}

impl Stored {
    /// `value` as the store keeps an object of `res`.
    pub fn new(res: ResId, value: Value) -> Arc<Stored> {
        Self::with_value(res, value).0
    }

    /// [`Stored::new`], and the value for the caller to read without parsing it again.
    fn with_value(res: ResId, value: Value) -> (Arc<Stored>, Arc<Value>) {
        let is_pod = resources::storage_of(res) == resources::PODS;
        let (json, metadata) = if is_pod {
            let (json, metadata) = json_and_metadata(&value);
            (json, metadata.and_then(|m| Some(u32::try_from(m.start).ok()?..u32::try_from(m.end).ok()?)))
        } else {
            (serde_json::to_vec(&value).expect("a JSON value serialises"), None)
        };
        let facts = is_pod.then(|| Box::new(PodFacts::of(&value)));
        let value = Arc::new(value);
        let kept = (!is_pod).then(|| value.clone());
        (Arc::new(Stored { json: Bytes::from(json), value: kept, facts, metadata }), value)
    }

    /// The compact JSON of a pod's `metadata`, a slice of [`Stored::json`]; `None` for other
    /// kinds.
    pub fn metadata_json(&self) -> Option<&[u8]> {
        let m = self.metadata.as_ref()?;
        self.json.get(m.start as usize..m.end as usize)
    }

    /// What the controllers read of a pod; `None` for other kinds.
    pub fn pod_facts(&self) -> Option<&PodFacts> {
        self.facts.as_deref()
    }

    /// The object's compact JSON, as served.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The object, parsed from its JSON when the store does not keep it parsed.
    pub fn value(&self) -> Arc<Value> {
        match &self.value {
            Some(v) => v.clone(),
            None => Arc::new(serde_json::from_slice(&self.json).expect("the store holds valid JSON")),
        }
    }
}

/// `value` as compact JSON (the bytes [`serde_json::to_vec`] writes), and where its top-level
/// `metadata` value sits in them.
fn json_and_metadata(value: &Value) -> (Vec<u8>, Option<std::ops::Range<usize>>) {
    let Value::Object(map) = value else {
        return (serde_json::to_vec(value).expect("a JSON value serialises"), None);
    };
    let mut out = Vec::with_capacity(1024);
    let mut metadata = None;
    out.push(b'{');
    for (i, (key, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key).expect("a string serialises");
        out.push(b':');
        let start = out.len();
        serde_json::to_writer(&mut out, item).expect("a JSON value serialises");
        if key == "metadata" {
            metadata = Some(start..out.len());
        }
    }
    out.push(b'}');
    (out, metadata)
}

/// Changes as they happen, for watches.
pub type WatchReceiver = broadcast::Receiver<Arc<Change>>;

/// (namespace, name); namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything but `status` (for resources with a status subresource).
    Main,
    /// Only `status`.
    Status,
    /// Everything: internal writers (controllers, the fleet loader).
    All,
}

/// The outcome of [`Store::next_version`].
enum NextVersion {
    Unchanged(Arc<Value>),
    Changed { key: Key, obj: Value, old: Arc<Value>, old_stored: Arc<Stored> },
}

const HISTORY: usize = 20_000;
/// How many objects of one resource the API (clients and controllers) may add beyond the fleet
/// the lab loaded: enough for any rehearsal, few enough that a scale to 2^31-1 replicas stops
/// with a quota error instead of filling the machine's memory.
pub const MAX_CREATED_PER_RESOURCE: usize = 20_000;
const WATCH_BUFFER: usize = 1 << 15;

pub struct Store {
    rv: u64,
    tables: Vec<BTreeMap<Key, Arc<Stored>>>,
    history: VecDeque<Arc<Change>>,
    /// The `resourceVersion` of the last change of each resource type.
    last_change: Vec<u64>,
    /// Per resource, objects loaded with their identity (the fleet): the creation limit is
    /// [`MAX_CREATED_PER_RESOURCE`] above this.
    loaded: Vec<usize>,
    tx: broadcast::Sender<Arc<Change>>,
    /// Generated uids and name suffixes: the same for a seed, so a lab run can be repeated.
    rng: Dice,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("rv", &self.rv).finish_non_exhaustive()
    }
}

fn has_generation(res: ResId) -> bool {
    matches!(
        res,
        resources::DEPLOYMENTS
            | resources::REPLICASETS
            | resources::STATEFULSETS
            | resources::DAEMONSETS
            | resources::PDBS
    )
}

impl Default for Store {
    fn default() -> Self {
        Self::new(0x1ab_5eed)
    }
}

impl Store {
    pub fn new(seed: u64) -> Self {
        let (tx, _) = broadcast::channel(WATCH_BUFFER);
        Store {
            rv: 1,
            tables: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
            history: VecDeque::new(),
            last_change: vec![0; RESOURCES.len()],
            loaded: vec![0; RESOURCES.len()],
            tx,
            rng: Dice::new(seed),
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The resourceVersion of the latest change to resource `res`.
    pub fn last_change(&self, res: ResId) -> u64 {
        self.last_change[resources::storage_of(res).index()]
    }

    pub fn new_uid(&mut self) -> String {
        let a = self.rng.next_u64();
        let b = self.rng.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    /// Five characters from the alphabet upstream uses for generated names (no vowels).
    pub fn random_suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut r = self.rng.next_u64();
        (0..len)
            .map(|_| {
                let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
                r /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    /// The object `ns/name` of `res`.
    pub fn get(&self, res: ResId, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.get_stored(res, ns, name).map(|s| s.value())
    }

    /// The object `ns/name` of `res` as stored.
    pub fn get_stored(&self, res: ResId, ns: &str, name: &str) -> Option<&Arc<Stored>> {
        self.tables[resources::storage_of(res).index()].get(&(ns.to_string(), name.to_string()))
    }

    /// Whether `ns/name` of `res` exists (without reading it).
    pub fn contains(&self, res: ResId, ns: &str, name: &str) -> bool {
        self.get_stored(res, ns, name).is_some()
    }

    pub fn len(&self, res: ResId) -> usize {
        self.tables[resources::storage_of(res).index()].len()
    }

    pub fn is_empty(&self, res: ResId) -> bool {
        self.len(res) == 0
    }

    /// Objects of `res` in key order, optionally within one namespace, strictly after `after`.
    pub fn iter<'a>(
        &'a self,
        res: ResId,
        ns: Option<&'a str>,
        after: Option<&Key>,
    ) -> impl Iterator<Item = Arc<Value>> + 'a {
        self.iter_stored(res, ns, after).map(|(_, s)| s.value())
    }

    /// Every pod with its facts, in key order.
    pub fn pods(&self) -> impl Iterator<Item = (&Arc<Stored>, &PodFacts)> + '_ {
        self.tables[resources::PODS.index()].values().filter_map(|s| Some((s, s.pod_facts()?)))
    }

    /// [`Store::iter`] as stored, with each object's key.
    pub fn iter_stored<'a>(
        &'a self,
        res: ResId,
        ns: Option<&'a str>,
        after: Option<&Key>,
    ) -> Box<dyn Iterator<Item = (&'a Key, &'a Arc<Stored>)> + 'a> {
        let table = &self.tables[resources::storage_of(res).index()];
        let start = match (ns, after) {
            (_, Some(k)) => std::ops::Bound::Excluded(k.clone()),
            (Some(n), None) => std::ops::Bound::Included((n.to_string(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let range = table.range((start, std::ops::Bound::Unbounded));
        match ns {
            Some(n) => Box::new(range.take_while(move |((kns, _), _)| kns == n)),
            None => Box::new(range),
        }
    }

    fn record(&mut self, res: ResId, kind: ChangeKind, object: Arc<Stored>, prev: Option<Arc<Stored>>) {
        let change = Arc::new(Change { rv: self.rv, res, kind, object, prev });
        self.last_change[res.index()] = self.rv;
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(change);
    }

    fn bump(&mut self, obj: &mut Value) -> u64 {
        self.rv += 1;
        meta_mut(obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.rv
    }

    /// Create an object. With `keep_identity` (loading a fleet) the given uid and
    /// creationTimestamp are kept; otherwise the server sets them, as a real API server does.
    /// A loaded object is kept at the size it comes in (`lab up` parses its fleet at exact
    /// size); one the API creates is first rebuilt at exact size.
    pub fn create(
        &mut self,
        res: ResId,
        mut obj: Value,
        now: Timestamp,
        keep_identity: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let res = resources::storage_of(res);
        let def = &RESOURCES[res];
        let mut name = name_of(&obj).to_string();
        if name.is_empty()
            && let Some(prefix) = meta_str(&obj, "generateName").map(String::from)
        {
            name = format!("{prefix}{}", self.random_suffix(5));
            meta_mut(&mut obj).insert("name".into(), json!(name));
        }
        let ns = if def.namespaced { namespace_of(&obj).to_string() } else { String::new() };
        if def.namespaced
            && !keep_identity
            && !self.tables[resources::NAMESPACES.index()].contains_key(&(String::new(), ns.clone()))
        {
            return Err(ApiError::not_found(&RESOURCES[resources::NAMESPACES], &ns));
        }
        let key = (ns, name.clone());
        if self.tables[res.index()].contains_key(&key) {
            return Err(ApiError::already_exists(def, &name));
        }
        let limit = self.loaded[res.index()].saturating_add(MAX_CREATED_PER_RESOURCE);
        if keep_identity {
            self.loaded[res.index()] += 1;
        } else if self.tables[res.index()].len() >= limit {
            return Err(ApiError::quota_exceeded(def, &name, self.tables[res.index()].len(), limit));
        }
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        let uid = match meta_str(&obj, "uid") {
            Some(u) if keep_identity && !u.is_empty() => u.to_string(),
            _ => self.new_uid(),
        };
        let created = match meta_str(&obj, "creationTimestamp") {
            Some(t) if keep_identity && !t.is_empty() => t.to_string(),
            _ => clock::format(now),
        };
        {
            let m = meta_mut(&mut obj);
            m.insert("uid".into(), json!(uid));
            m.insert("creationTimestamp".into(), json!(created));
            if !keep_identity {
                m.remove("deletionTimestamp");
                m.remove("deletionGracePeriodSeconds");
            }
            if has_generation(res) {
                let keep = keep_identity && m.get("generation").and_then(Value::as_i64).is_some();
                if !keep {
                    m.insert("generation".into(), json!(1));
                }
            }
        }
        self.bump(&mut obj);
        let obj = if keep_identity { obj } else { exact_unless_pod(res, obj) };
        let (stored, value) = Stored::with_value(res, obj);
        self.tables[res.index()].insert(key, stored.clone());
        self.record(res, ChangeKind::Added, stored, None);
        Ok(value)
    }

    /// Replace an object. `check_rv` enforces the optimistic-concurrency precondition when the
    /// new object names a resourceVersion (an empty one means "unconditional", as upstream).
    pub fn update(&mut self, res: ResId, new: Value, part: Part, check_rv: bool) -> Result<Arc<Value>, ApiError> {
        let res = resources::storage_of(res);
        let (key, mut obj, old) = match self.next_version(res, new, part, check_rv)? {
            NextVersion::Unchanged(old) => return Ok(old),
            NextVersion::Changed { key, obj, old_stored, .. } => (key, obj, old_stored),
        };
        // An object marked for deletion whose last finalizer is gone is removed.
        let finalizers_empty = meta(&obj).get("finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
        let deleting = meta(&obj).get("deletionTimestamp").is_some();
        // A pod goes once nothing runs it any more: stopped by its kubelet (final phase), never
        // bound, or deleted without grace; else the kubelet removes it when it has stopped it.
        let pod_done = res == resources::PODS
            && (matches!(obj.pointer("/status/phase").and_then(Value::as_str), Some("Failed" | "Succeeded"))
                || obj.pointer("/spec/nodeName").and_then(Value::as_str).is_none_or(str::is_empty)
                || meta(&obj).get("deletionGracePeriodSeconds").and_then(Value::as_i64) == Some(0));
        if deleting && finalizers_empty && (res != resources::PODS || pod_done) {
            self.bump(&mut obj);
            let (stored, value) = Stored::with_value(res, obj);
            self.tables[res.index()].remove(&key);
            self.record(res, ChangeKind::Deleted, stored, Some(old));
            return Ok(value);
        }
        self.bump(&mut obj);
        let (stored, value) = Stored::with_value(res, exact_unless_pod(res, obj));
        self.tables[res.index()].insert(key, stored.clone());
        self.record(res, ChangeKind::Modified, stored, Some(old));
        Ok(value)
    }

    /// What [`Store::update`] would store, with the same checks, without storing it: the answer
    /// to a `dryRun=All` update. The resourceVersion stays the stored one, as upstream's dry run.
    pub fn preview_update(&self, res: ResId, new: Value, part: Part, check_rv: bool) -> Result<Arc<Value>, ApiError> {
        match self.next_version(resources::storage_of(res), new, part, check_rv)? {
            NextVersion::Unchanged(old) => Ok(old),
            NextVersion::Changed { obj, old, .. } => Ok(Arc::new(obj_without_rv(&obj, &old))),
        }
    }

    /// The object an update turns `new` into: the part it may change, the server-owned metadata
    /// of the stored object, and the generation; `Unchanged` for a no-op.
    fn next_version(&self, res: ResId, new: Value, part: Part, check_rv: bool) -> Result<NextVersion, ApiError> {
        let def = &RESOURCES[res];
        let name = name_of(&new).to_string();
        let ns = if def.namespaced { namespace_of(&new).to_string() } else { String::new() };
        let key = (ns, name.clone());
        let Some(old_stored) = self.tables[res.index()].get(&key).cloned() else {
            return Err(ApiError::not_found(def, &name));
        };
        let old = old_stored.value();
        if check_rv
            && let Some(rv) = meta_str(&new, "resourceVersion").filter(|r| !r.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::modified(def, &name));
        }
        if check_rv
            && let Some(uid) = meta_str(&new, "uid").filter(|u| !u.is_empty())
            && uid != uid_of(&old)
        {
            return Err(ApiError::uid_precondition(def, &name, uid, uid_of(&old)));
        }
        let mut obj = match part {
            Part::All => new,
            Part::Main => {
                let mut o = new;
                if def.status {
                    match old.get("status") {
                        Some(s) => o["status"] = s.clone(),
                        None => {
                            if let Some(m) = o.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                o
            }
            Part::Status => {
                let mut o = (*old).clone();
                match new.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                // A status write changes nothing but the status, as upstream.
                o
            }
        };
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        {
            let old_meta = meta(&old).clone();
            let m = meta_mut(&mut obj);
            for field in ["uid", "creationTimestamp", "namespace", "name"] {
                match old_meta.get(field) {
                    Some(v) => {
                        m.insert(field.into(), v.clone());
                    }
                    None => {
                        m.remove(field);
                    }
                }
            }
            if part != Part::All {
                for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
                    match old_meta.get(field) {
                        Some(v) => {
                            m.insert(field.into(), v.clone());
                        }
                        None => {
                            m.remove(field);
                        }
                    }
                }
            }
            if has_generation(res) {
                let old_gen = old_meta.get("generation").and_then(Value::as_i64).unwrap_or(1);
                let spec_changed = obj_spec(&old) != obj.get("spec");
                let m = meta_mut(&mut obj);
                m.insert("generation".into(), json!(if spec_changed { old_gen + 1 } else { old_gen }));
            }
        }
        if *old == obj_without_rv(&obj, &old) {
            // Nothing changed: upstream does not bump the resourceVersion for a no-op update.
            return Ok(NextVersion::Unchanged(old));
        }
        Ok(NextVersion::Changed { key, obj, old, old_stored })
    }

    /// Remove an object now. Returns it as last seen (with a new resourceVersion).
    pub fn remove(&mut self, res: ResId, ns: &str, name: &str) -> Option<Arc<Value>> {
        let res = resources::storage_of(res);
        let old = self.tables[res.index()].remove(&(ns.to_string(), name.to_string()))?;
        let mut obj = Arc::unwrap_or_clone(old.value());
        self.bump(&mut obj);
        let (stored, value) = Stored::with_value(res, obj);
        self.record(res, ChangeKind::Deleted, stored, Some(old));
        Some(value)
    }

    /// Changes after `from_rv` (for a watch starting there) and a receiver for what follows,
    /// taken together so nothing falls in between. `None` when `from_rv` is older than the history.
    pub fn changes_since(&self, from_rv: u64) -> Option<(Vec<Arc<Change>>, WatchReceiver)> {
        let oldest = self.history.front().map(|c| c.rv).unwrap_or(self.rv + 1);
        if from_rv + 1 < oldest && from_rv < self.rv {
            return None;
        }
        let past: Vec<Arc<Change>> = self.history.iter().filter(|c| c.rv > from_rv).cloned().collect();
        Some((past, self.tx.subscribe()))
    }

    pub fn oldest_history_rv(&self) -> u64 {
        self.history.front().map(|c| c.rv).unwrap_or(self.rv)
    }
}

/// A parsed value kept by the store at its exact size; a pod is kept as text only, so its value
/// is not worth rebuilding.
fn exact_unless_pod(res: ResId, obj: Value) -> Value {
    if res == resources::PODS { obj } else { compact(obj) }
}

fn obj_spec(v: &Value) -> Option<&Value> {
    v.get("spec")
}

/// `new` with the old resourceVersion, to compare contents.
fn obj_without_rv(new: &Value, old: &Value) -> Value {
    let mut n = new.clone();
    match meta_str(old, "resourceVersion") {
        Some(rv) => {
            meta_mut(&mut n).insert("resourceVersion".into(), json!(rv));
        }
        None => {
            meta_mut(&mut n).remove("resourceVersion");
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, NAMESPACES, PODS};

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn store_with_ns() -> Store {
        let mut s = Store::new(1);
        s.create(NAMESPACES, json!({"metadata": {"name": "default"}}), now(), false).unwrap();
        s
    }

    #[test]
    fn a_pods_text_is_what_serde_json_writes_and_its_metadata_is_found_in_it() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"metadata": "not this"},
            "metadata": {"name": "p\"q", "labels": {"k": "é\n"}}, "status": {}});
        let (text, span) = json_and_metadata(&pod);
        assert_eq!(text, serde_json::to_vec(&pod).unwrap());
        let span = span.unwrap();
        assert_eq!(text[span], serde_json::to_vec(&pod["metadata"]).unwrap()[..]);
        assert_eq!(json_and_metadata(&json!({"kind": "Pod"})).1, None);
        assert_eq!(json_and_metadata(&json!([1])).0, b"[1]");
    }

    #[test]
    fn a_seed_gives_the_uids_and_suffixes_it_always_gave() {
        // splitmix64 from the lab's default seed: loaded fleets keep these uids across versions.
        let mut store = Store::new(0x5eed);
        assert_eq!(store.new_uid(), "09f1fd9d-03f0-49b4-8532-74161bbf8475");
        assert_eq!(store.random_suffix(5), "p2fpn");
        assert_ne!(Store::new(1).new_uid(), Store::new(0x5eed).new_uid());
    }

    #[test]
    fn create_sets_server_fields_and_refuses_duplicates() {
        let mut s = store_with_ns();
        let p = s
            .create(PODS, json!({"metadata": {"name": "a", "namespace": "default", "uid": "given"}}), now(), false)
            .unwrap();
        assert_ne!(uid_of(&p), "given");
        assert_eq!(meta_str(&p, "creationTimestamp"), Some("2026-01-01T00:00:00Z"));
        assert_eq!(p["kind"], "Pod");
        let e = s.create(PODS, json!({"metadata": {"name": "a", "namespace": "default"}}), now(), false).unwrap_err();
        assert_eq!(e.code, 409);
        assert_eq!(e.message, "pods \"a\" already exists");
        let e = s.create(PODS, json!({"metadata": {"name": "a", "namespace": "nope"}}), now(), false).unwrap_err();
        assert_eq!(e.message, "namespaces \"nope\" not found");
    }

    #[test]
    fn stale_update_conflicts_and_generation_follows_spec() {
        let mut s = store_with_ns();
        let d = s
            .create(
                DEPLOYMENTS,
                json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 1}}),
                now(),
                false,
            )
            .unwrap();
        let mut v = (*d).clone();
        v["spec"]["replicas"] = json!(2);
        let d2 = s.update(DEPLOYMENTS, v.clone(), Part::Main, true).unwrap();
        assert_eq!(meta(&d2)["generation"], 2);
        let e = s.update(DEPLOYMENTS, v, Part::Main, true).unwrap_err();
        assert_eq!(e.code, 409);
        let mut st = (*d2).clone();
        st["status"] = json!({"replicas": 2});
        let d3 = s.update(DEPLOYMENTS, st, Part::Status, true).unwrap();
        assert_eq!(meta(&d3)["generation"], 2);
        assert_eq!(d3["status"]["replicas"], 2);
    }

    #[test]
    fn watch_history_starts_after_the_given_version() {
        let mut s = store_with_ns();
        let rv = s.resource_version();
        s.create(PODS, json!({"metadata": {"name": "a", "namespace": "default"}}), now(), false).unwrap();
        s.remove(PODS, "default", "a").unwrap();
        let (past, _rx) = s.changes_since(rv).unwrap();
        let kinds: Vec<ChangeKind> = past.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, vec![ChangeKind::Added, ChangeKind::Deleted]);
    }

    #[test]
    fn api_creates_stop_at_the_object_limit_above_the_loaded_fleet() {
        let mut s = store_with_ns();
        let pod = |n: usize| json!({"metadata": {"name": format!("p{n}"), "namespace": "default"}});
        for n in 0..3 {
            s.create(PODS, pod(n), now(), true).unwrap();
        }
        for n in 3..3 + MAX_CREATED_PER_RESOURCE {
            s.create(PODS, pod(n), now(), false).unwrap();
        }
        let e = s.create(PODS, pod(usize::MAX), now(), false).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
        assert!(
            e.message.starts_with("pods \"p18446744073709551615\" is forbidden: exceeded quota: stepstone-lab"),
            "{}",
            e.message
        );
        assert_eq!(s.len(PODS), 3 + MAX_CREATED_PER_RESOURCE);
    }

    #[test]
    fn namespaced_iteration_stays_in_the_namespace() {
        let mut s = store_with_ns();
        s.create(NAMESPACES, json!({"metadata": {"name": "b"}}), now(), false).unwrap();
        for (ns, n) in [("default", "x"), ("b", "y"), ("b", "z")] {
            s.create(PODS, json!({"metadata": {"name": n, "namespace": ns}}), now(), false).unwrap();
        }
        let names: Vec<String> = s.iter(PODS, Some("b"), None).map(|o| name_of(&o).to_string()).collect();
        assert_eq!(names, vec!["y", "z"]);
        let after = ("b".to_string(), "y".to_string());
        let names: Vec<String> = s.iter(PODS, None, Some(&after)).map(|o| name_of(&o).to_string()).collect();
        assert_eq!(names, vec!["z", "x"]);
    }
}

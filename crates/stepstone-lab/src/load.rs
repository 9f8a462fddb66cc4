//! Loading a fleet (a kubectl List, or one object) into a fresh store, item by item: from a
//! parsed value, or streamed from a file so that a large fleet never exists whole, neither as
//! its text nor as one tree, while the lab loads it. Each item goes straight into the store's
//! compact form (a pod becomes its JSON text); the peak while loading stays near what the
//! store holds afterwards.
//!
//! Two passes over the items keep what a loaded lab looks like independent of how the fleet
//! was read: the first reads only kind, apiVersion, namespace and creationTimestamp of each
//! item (the namespaces to create, which take the first resourceVersions and uids, and the
//! newest timestamp a manual clock starts from); the second stores the items in file order.

use std::collections::BTreeSet;
use std::fmt;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

use crate::compact::Exact;
use crate::resources::{self, RESOURCES};
use crate::store::{self, Store};
use crate::{LabError, LoadReport, api, clock, nodes};

/// Where a lab's fleet comes from.
#[derive(Debug, Clone)]
pub enum Fleet {
    /// A parsed List or object.
    Value(Value),
    /// A file holding one, read item by item (`stepstone lab up --fleet`).
    File(PathBuf),
}

impl From<Value> for Fleet {
    fn from(value: Value) -> Fleet {
        Fleet::Value(value)
    }
}

/// What the first pass learns of the items.
#[derive(Debug, Default)]
pub struct Survey {
    /// Every namespace a namespaced item names (empty means `default`), and the four every
    /// cluster has.
    namespaces: BTreeSet<String>,
    /// The newest `metadata.creationTimestamp`, so a manual clock never starts before the fleet.
    pub newest: Option<Timestamp>,
}

impl Survey {
    fn note(&mut self, head: Head) {
        if let Some(t) = head.created.as_deref().and_then(clock::parse) {
            self.newest = self.newest.max(Some(t));
        }
        let kind = head.kind.as_deref().unwrap_or("");
        let api_version = head.api_version.as_deref().unwrap_or("");
        if resources::by_kind(api_version, kind).is_some_and(|res| RESOURCES[res].namespaced) {
            let ns = head.namespace.filter(|n| !n.is_empty()).unwrap_or_else(|| "default".to_string());
            self.namespaces.insert(ns);
        }
    }
}

impl Fleet {
    /// The first pass.
    pub fn survey(&self) -> Result<Survey, LabError> {
        let mut survey = Survey {
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"].map(String::from).into(),
            newest: None,
        };
        let note = |_: usize, head: Head| {
            survey.note(head);
            Ok(())
        };
        match self {
            Fleet::Value(value) => read_items(value, Path::new(""), HeadSeed, note)?,
            Fleet::File(path) => read_file(path, HeadSeed, note)?,
        }
        Ok(survey)
    }

    /// The second pass: the namespaces, then every item the lab serves, into `store` (fresh).
    pub fn load(self, store: &mut Store, survey: Survey, now: Timestamp) -> Result<LoadReport, LabError> {
        for ns in &survey.namespaces {
            if !store.contains(resources::NAMESPACES, "", ns) {
                let mut obj = json!({"metadata": {"name": ns}});
                api::apply_defaults(resources::NAMESPACES, &mut obj);
                store.create(resources::NAMESPACES, obj, now, false).expect("fresh namespace");
            }
        }
        let mut loader = Loader {
            store,
            now,
            report: LoadReport::default(),
            options: stepstone_core::snapshot::SnapshotOptions::default(),
        };
        let load = |index: usize, item: Value| loader.load(index, item);
        match self {
            Fleet::Value(value) => read_items(value, Path::new(""), Exact, load)?,
            Fleet::File(path) => read_file(&path, Exact, load)?,
        }
        if !loader.report.loaded.contains_key("Node") {
            return Err(LabError::NoNodes);
        }
        Ok(loader.report)
    }
}

/// Load a fleet List (or one object) into a fresh store.
pub fn load_fleet(store: &mut Store, fleet: Value, now: Timestamp) -> Result<LoadReport, LabError> {
    let fleet = Fleet::Value(fleet);
    let survey = fleet.survey()?;
    fleet.load(store, survey, now)
}

/// The second pass's state.
struct Loader<'s> {
    store: &'s mut Store,
    now: Timestamp,
    report: LoadReport,
    options: stepstone_core::snapshot::SnapshotOptions,
}

impl Loader<'_> {
    /// Store item `index` as an apiserver would have stored it, or count it as skipped.
    fn load(&mut self, index: usize, mut item: Value) -> Result<(), LabError> {
        validate_item(index, &item, &self.options)?;
        let kind = item.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        let api_version = item.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let Some(res) = resources::by_kind(api_version, &kind) else {
            *self.report.skipped.entry(format!("{api_version}/{kind}")).or_default() += 1;
            return Ok(());
        };
        let name = store::name_of(&item).to_string();
        if name.is_empty() {
            return Err(LabError::BadItem { index, kind, name, reason: "metadata.name is missing".into() });
        }
        if RESOURCES[res].namespaced && store::namespace_of(&item).is_empty() {
            store::meta_mut(&mut item).insert("namespace".into(), json!("default"));
        }
        store::meta_mut(&mut item).remove("resourceVersion");
        // A hand-written object gets the defaults (a DaemonSet's RollingUpdate strategy, a
        // pod's grace period); a snapshot already has them and is left as it is.
        api::prepare_for_create(res, &mut item);
        if res == resources::NODES {
            nodes::default_packages(&mut item);
        }
        self.store.create(res, item, self.now, true).map_err(|e| LabError::BadItem {
            index,
            kind: kind.clone(),
            name,
            reason: e.message,
        })?;
        *self.report.loaded.entry(kind).or_default() += 1;
        Ok(())
    }
}

/// Read one fleet item as every other command reads a snapshot (the same parser, so a fleet the
/// planner refuses is refused here too, instead of a lab that serves what nothing else accepts).
fn validate_item(index: usize, item: &Value, opts: &stepstone_core::snapshot::SnapshotOptions) -> Result<(), LabError> {
    use stepstone_core::snapshot::{ParsedObject, SnapshotError};
    let found = match item {
        Value::Object(_) => None,
        Value::Null => Some("null"),
        Value::Bool(_) => Some("a boolean"),
        Value::Number(_) => Some("a number"),
        Value::String(_) => Some("a string"),
        Value::Array(_) => Some("an array"),
    };
    if let Some(found) = found {
        return Err(LabError::NotAnObject { index, found });
    }
    let origin = format!("items[{index}]");
    ParsedObject::parse(&origin, item, opts).map(|_| ()).map_err(|e| match e {
        SnapshotError::Object { kind, name, reason, .. } => LabError::BadItem { index, kind, name, reason },
        other => LabError::BadItem {
            index,
            kind: item.get("kind").and_then(Value::as_str).unwrap_or("").to_string(),
            name: store::name_of(item).to_string(),
            reason: other.to_string(),
        },
    })
}

/// How a pass reads one item.
trait ItemSeed: Copy {
    type Item;
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Self::Item, D::Error>;
}

impl ItemSeed for Exact {
    type Item = Value;
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
}

/// The file, read item by item through a buffer; its text is never held whole.
fn read_file<S: ItemSeed>(
    path: &Path,
    seed: S,
    on_item: impl FnMut(usize, S::Item) -> Result<(), LabError>,
) -> Result<(), LabError> {
    let file = std::fs::File::open(path).map_err(|source| LabError::Read { path: path.to_path_buf(), source })?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 20, file));
    read_items(&mut de, path, seed, on_item)?;
    de.end().map_err(|e| json_error(path, e))
}

fn json_error(path: &Path, e: serde_json::Error) -> LabError {
    match e.classify() {
        serde_json::error::Category::Io => LabError::Read { path: path.to_path_buf(), source: e.into() },
        serde_json::error::Category::Data => LabError::NotAList,
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => LabError::NotJson(e),
    }
}

/// Hand each item of the List `d` holds (or `d` itself when it is one object with a kind) to
/// `on_item`, read by `seed`, stopping at the first item it refuses. `path` names where `d`
/// reads from in an error reading it.
fn read_items<'de, D, S>(
    d: D,
    path: &Path,
    seed: S,
    mut on_item: impl FnMut(usize, S::Item) -> Result<(), LabError>,
) -> Result<(), LabError>
where
    D: Deserializer<'de, Error = serde_json::Error>,
    S: ItemSeed,
{
    let mut refused = None;
    let top = Top { seed, on_item: &mut on_item, refused: &mut refused };
    match d.deserialize_any(top) {
        Ok(()) => Ok(()),
        Err(e) => Err(refused.unwrap_or_else(|| json_error(path, e))),
    }
}

/// The fleet's top level: a List, whose items are streamed, or one object.
struct Top<'a, S, F> {
    seed: S,
    on_item: &'a mut F,
    /// Why an item was refused: the error the pass returns (the parser's own is a stand-in).
    refused: &'a mut Option<LabError>,
}

/// Keep `why` for the pass to return, and stop the parser with a stand-in error.
fn refuse<E: de::Error>(refused: &mut Option<LabError>, why: LabError) -> E {
    *refused = Some(why);
    E::custom("the fleet was refused")
}

impl<'de, S, F> Visitor<'de> for Top<'_, S, F>
where
    S: ItemSeed,
    F: FnMut(usize, S::Item) -> Result<(), LabError>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a kubectl List or one Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Besides the items, a List has a few small fields; an object alone is small.
        let mut rest = Map::new();
        let mut listed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                map.next_value_seed(Items {
                    seed: self.seed,
                    on_item: &mut *self.on_item,
                    refused: &mut *self.refused,
                })?;
                listed = true;
            } else {
                let value = map.next_value_seed(Exact)?;
                rest.insert(key, value);
            }
        }
        if listed {
            return Ok(());
        }
        if !rest.contains_key("kind") {
            return Err(refuse(self.refused, LabError::NotAList));
        }
        let item = self.seed.read(Value::Object(rest)).map_err(de::Error::custom)?;
        match (self.on_item)(0, item) {
            Ok(()) => Ok(()),
            Err(why) => Err(refuse(self.refused, why)),
        }
    }
}

/// A List's items, each handed on as soon as it is read.
struct Items<'a, S, F> {
    seed: S,
    on_item: &'a mut F,
    refused: &'a mut Option<LabError>,
}

impl<'de, S, F> DeserializeSeed<'de> for Items<'_, S, F>
where
    S: ItemSeed,
    F: FnMut(usize, S::Item) -> Result<(), LabError>,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S, F> Visitor<'de> for Items<'_, S, F>
where
    S: ItemSeed,
    F: FnMut(usize, S::Item) -> Result<(), LabError>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of Kubernetes objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(item) = seq.next_element_seed(Seeded(self.seed))? {
            if let Err(why) = (self.on_item)(index, item) {
                return Err(refuse(self.refused, why));
            }
            index += 1;
        }
        Ok(())
    }
}

/// An [`ItemSeed`] as serde's seed.
struct Seeded<S>(S);

impl<'de, S: ItemSeed> DeserializeSeed<'de> for Seeded<S> {
    type Value = S::Item;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Item, D::Error> {
        self.0.read(d)
    }
}

/// What the first pass reads of an item; the rest is skipped unparsed. A field that is not a
/// string reads as missing, as the second pass reads it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Head {
    kind: Option<String>,
    api_version: Option<String>,
    namespace: Option<String>,
    created: Option<String>,
}

#[derive(Clone, Copy)]
struct HeadSeed;

impl ItemSeed for HeadSeed {
    type Item = Head;
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Head, D::Error> {
        d.deserialize_any(HeadVisitor { metadata: false })
    }
}

/// Reads an item's top level, or (`metadata`) its metadata, into a [`Head`]; anything that is not
/// an object is skipped.
struct HeadVisitor {
    metadata: bool,
}

fn string_of(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut head = Head::default();
        // A key given twice counts once, with its last value, as a parsed object keeps it.
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match (self.metadata, &*key) {
                (false, "kind") => head.kind = string_of(map.next_value()?),
                (false, "apiVersion") => head.api_version = string_of(map.next_value()?),
                (false, "metadata") => {
                    let meta = map.next_value_seed(HeadMeta)?;
                    (head.namespace, head.created) = (meta.namespace, meta.created);
                }
                (true, "namespace") => head.namespace = string_of(map.next_value()?),
                (true, "creationTimestamp") => head.created = string_of(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(head)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Head, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Head::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Head, E> {
        Ok(Head::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Head, E> {
        Ok(Head::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Head, E> {
        Ok(Head::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Head, E> {
        Ok(Head::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<Head, E> {
        Ok(Head::default())
    }

    fn visit_unit<E>(self) -> Result<Head, E> {
        Ok(Head::default())
    }
}

/// An item's metadata, read by [`HeadVisitor`].
struct HeadMeta;

impl<'de> DeserializeSeed<'de> for HeadMeta {
    type Value = Head;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Head, D::Error> {
        d.deserialize_any(HeadVisitor { metadata: true })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Objects loaded per kind, for tests that compare two loads.
    fn stored_json(store: &Store) -> BTreeMap<String, Vec<String>> {
        RESOURCES
            .iter()
            .map(|def| {
                let res = resources::by_kind(&def.api_version(), def.kind).expect("a served kind");
                let objects = store
                    .iter_stored(res, None, None)
                    .map(|(_, s)| String::from_utf8_lossy(s.json()).into_owned())
                    .collect();
                (def.kind.to_string(), objects)
            })
            .collect()
    }

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn fleet_text() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/three-generations.json");
        std::fs::read_to_string(path).expect("examples/three-generations.json")
    }

    #[test]
    fn a_file_streamed_loads_what_its_parsed_value_loads() {
        let text = fleet_text();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.json");
        std::fs::write(&path, &text).unwrap();

        let parsed = Fleet::Value(serde_json::from_str(&text).unwrap());
        let survey = parsed.survey().unwrap();
        let mut from_value = Store::new(7);
        let report = parsed.load(&mut from_value, survey, now()).unwrap();

        let file = Fleet::File(path);
        let survey = file.survey().unwrap();
        assert!(survey.newest.is_some(), "the example's creation times are read");
        let mut from_file = Store::new(7);
        assert_eq!(file.load(&mut from_file, survey, now()).unwrap(), report);

        assert!(report.loaded["Pod"] > 50, "{report:?}");
        assert_eq!(stored_json(&from_file), stored_json(&from_value), "the same objects, versions and uids");
        assert_eq!(from_file.resource_version(), from_value.resource_version());
        // The namespaces come first, then the items in file order.
        let items = serde_json::from_str::<Value>(&text).unwrap()["items"].as_array().unwrap().len();
        let namespaces = from_file.len(resources::NAMESPACES) as u64;
        let skipped: usize = report.skipped.values().sum();
        assert_eq!(from_file.resource_version(), 1 + namespaces + (items - skipped) as u64);
        let default_ns = from_file.get(resources::NAMESPACES, "", "default").unwrap();
        assert!(store::meta_str(&default_ns, "resourceVersion").unwrap().parse::<u64>().unwrap() <= 1 + namespaces);
    }

    #[test]
    fn a_bad_item_deep_in_a_file_is_named_and_bad_json_is_told_apart() {
        let mut fleet: Value = serde_json::from_str(&fleet_text()).unwrap();
        let items = fleet["items"].as_array_mut().unwrap();
        let last = items.len() - 1;
        items[last]["metadata"]["name"] = json!(42);
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            Fleet::File(path)
        };
        let load = |fleet: Fleet| {
            let survey = fleet.survey()?;
            fleet.load(&mut Store::new(1), survey, now())
        };

        let err = load(write("bad-item.json", &fleet.to_string())).unwrap_err();
        assert!(matches!(err, LabError::BadItem { index, .. } if index == last), "{err}");
        fleet["items"][last] = json!("text");
        let err = load(write("not-object.json", &fleet.to_string())).unwrap_err();
        assert!(matches!(err, LabError::NotAnObject { index, found: "a string" } if index == last), "{err}");

        let text = fleet_text();
        let err = load(write("cut.json", &text[..text.len() / 2])).unwrap_err();
        assert!(matches!(err, LabError::NotJson(_)), "{err}");
        assert!(err.to_string().contains("not JSON") && err.to_string().contains("line "), "{err}");
        let err = load(write("array.json", "[1, 2]")).unwrap_err();
        assert!(matches!(err, LabError::NotAList), "{err}");
        let err = load(write("nokind.json", r#"{"metadata": {}}"#)).unwrap_err();
        assert!(matches!(err, LabError::NotAList), "{err}");
        let err = load(Fleet::File(dir.path().join("missing.json"))).unwrap_err();
        assert!(matches!(err, LabError::Read { .. }), "{err}");
        let err = load(write("trailing.json", r#"{"kind": "List", "items": []} x"#)).unwrap_err();
        assert!(matches!(err, LabError::NotJson(_)), "{err}");
        let err = load(write("empty-list.json", r#"{"kind": "List", "items": []}"#)).unwrap_err();
        assert!(matches!(err, LabError::NoNodes), "{err}");
    }

    #[test]
    fn one_object_alone_is_a_fleet_of_one() {
        let example: Value = serde_json::from_str(&fleet_text()).unwrap();
        let mut node = example["items"].as_array().unwrap().iter().find(|i| i["kind"] == "Node").unwrap().clone();
        node["metadata"]["creationTimestamp"] = json!("2026-01-02T03:04:05Z");
        let name = store::name_of(&node).to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.json");
        std::fs::write(&path, node.to_string()).unwrap();
        for fleet in [Fleet::Value(node.clone()), Fleet::File(path)] {
            let survey = fleet.survey().unwrap();
            assert_eq!(survey.newest, Some("2026-01-02T03:04:05Z".parse().unwrap()));
            let mut store = Store::new(1);
            let report = fleet.load(&mut store, survey, now()).unwrap();
            assert_eq!(report.loaded, BTreeMap::from([("Node".to_string(), 1)]));
            assert!(store.contains(resources::NODES, "", &name));
        }
    }

    #[test]
    fn the_survey_reads_heads_as_the_loader_reads_objects() {
        let read = |v: Value| HeadSeed.read(&v).unwrap();
        assert_eq!(
            read(json!({"kind": "Pod", "apiVersion": "v1", "spec": {"x": [1, {"kind": "no"}]},
                "metadata": {"namespace": "a", "name": "p", "creationTimestamp": "t", "labels": {"kind": "no"}},
                "status": {}})),
            Head {
                kind: Some("Pod".into()),
                api_version: Some("v1".into()),
                namespace: Some("a".into()),
                created: Some("t".into())
            }
        );
        assert_eq!(read(json!({"kind": 1, "metadata": "x"})), Head::default());
        assert_eq!(read(json!([{"kind": "Pod"}])), Head::default());
        assert_eq!(read(json!(null)), Head::default());
    }
}

//! The parts of each Kubernetes kind that the inventory parsers read, and a JSON reader that
//! builds a [`Value`] holding only those parts.
//!
//! A live pod list is mostly fields no upgrade decision uses (`managedFields`, container
//! commands, environment, probes, `containerStatuses`). Reading it into a full `Value` tree and
//! dropping that tree again costs more than everything else in a collection, so the live
//! collector reads each page through [`Keep`]: skipped fields are scanned but never allocated.
//! The pruned objects go through the same parsers as snapshot files, and a test checks that
//! pruning never changes an inventory.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What to keep of a JSON value. Arrays apply their rule to each element.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// The whole value.
    All,
    /// Of an object, every field but these (each kept whole).
    AllBut(&'static [&'static str]),
    /// Of an object, only these fields, each with its own rule.
    Only(&'static [(&'static str, Keep)]),
}

/// Object metadata without `managedFields` (read only by the removed-API scan, which reads
/// full objects).
const METADATA: Keep = Keep::AllBut(&["managedFields"]);

const CONTAINER: Keep = Keep::Only(&[("image", Keep::All), ("resources", Keep::Only(&[("requests", Keep::All)]))]);

/// What [`crate::snapshot::parse_pod`] reads.
pub const POD: Keep = Keep::Only(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    ("metadata", METADATA),
    (
        "spec",
        Keep::Only(&[
            ("nodeName", Keep::All),
            ("containers", CONTAINER),
            ("initContainers", CONTAINER),
            ("overhead", Keep::All),
            ("volumes", Keep::All),
            ("tolerations", Keep::All),
            ("nodeSelector", Keep::All),
            ("affinity", Keep::All),
            ("priority", Keep::All),
            ("terminationGracePeriodSeconds", Keep::All),
        ]),
    ),
    ("status", Keep::Only(&[("phase", Keep::All), ("conditions", Keep::All)])),
]);

/// What [`crate::snapshot::parse_node`] reads: all but the image list a kubelet reports.
pub const NODE: Keep = Keep::Only(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    ("metadata", METADATA),
    ("spec", Keep::All),
    ("status", Keep::AllBut(&["images", "volumesInUse", "volumesAttached"])),
]);

/// What [`crate::snapshot::parse_workload`] reads of Deployments, ReplicaSets, StatefulSets and
/// DaemonSets.
pub const WORKLOAD: Keep = Keep::Only(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    ("metadata", METADATA),
    (
        "spec",
        Keep::Only(&[
            ("replicas", Keep::All),
            ("selector", Keep::All),
            ("template", Keep::Only(&[("spec", Keep::Only(&[("containers", Keep::Only(&[("image", Keep::All)]))]))])),
        ]),
    ),
    ("status", Keep::All),
]);

/// What [`crate::snapshot::parse_pdb`] reads.
pub const PDB: Keep = Keep::Only(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    ("metadata", METADATA),
    ("spec", Keep::All),
    ("status", Keep::All),
]);

/// What [`crate::snapshot::volumes::parse_volume`] reads.
pub const PERSISTENT_VOLUME: Keep = Keep::Only(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    ("metadata", METADATA),
    ("spec", Keep::Only(&[("claimRef", Keep::All), ("nodeAffinity", Keep::All)])),
    ("status", Keep::Only(&[("phase", Keep::All)])),
]);

/// What [`crate::snapshot::volumes::parse_claim`] reads.
pub const PERSISTENT_VOLUME_CLAIM: Keep = Keep::Only(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    ("metadata", METADATA),
    ("spec", Keep::Only(&[("volumeName", Keep::All)])),
    ("status", Keep::Only(&[("phase", Keep::All)])),
]);

/// The rule for a kind the inventory reads; `None` for kinds it ignores.
pub fn keep_for(kind: &str) -> Option<Keep> {
    match kind {
        "Pod" => Some(POD),
        "Node" => Some(NODE),
        "PodDisruptionBudget" => Some(PDB),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => Some(WORKLOAD),
        "PersistentVolume" => Some(PERSISTENT_VOLUME),
        "PersistentVolumeClaim" => Some(PERSISTENT_VOLUME_CLAIM),
        _ => None,
    }
}

/// The `items` of a list response (`{"metadata": {...}, "items": [...]}`), each keeping only
/// what `keep` says. The continue token is [`continue_token`]'s, read before the items.
pub fn read_items(text: &str, keep: Keep) -> Result<Vec<Value>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let items = ItemsOfList(keep).deserialize(&mut de)?;
    de.end()?;
    Ok(items)
}

/// Only `metadata.continue` of a list response (empty on the last page), read without parsing
/// the items, so the next page can be requested while this one is parsed.
///
/// API servers write `metadata` before `items`; then only the text before `"items":` is read.
/// (Inside a JSON string a quote is escaped, so that byte sequence can only be a key.) Any other
/// layout falls back to a full scan that allocates nothing for the items.
pub fn continue_token(text: &str) -> Result<String, serde_json::Error> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        metadata: Option<HeadMeta>,
    }
    #[derive(Deserialize)]
    struct HeadMeta {
        #[serde(default, rename = "continue")]
        continue_token: Option<String>,
    }
    let token = |head: Head| head.metadata.and_then(|m| m.continue_token).unwrap_or_default();
    if let Some(at) = text.find("\"items\":") {
        let head_only = format!("{}\"items\":null}}", &text[..at]);
        if let Ok(head) = serde_json::from_str::<Head>(&head_only)
            && head.metadata.is_some()
        {
            return Ok(token(head));
        }
    }
    Ok(token(serde_json::from_str(text)?))
}

/// Read one object keeping only what `keep` says.
pub fn read_value(text: &str, keep: Keep) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = keep.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Read one object of any kind from a snapshot file, keeping what [`keep_for`] says for its kind.
///
/// `kubectl` writes keys in alphabetical order, so `kind` comes before `metadata`, `spec` and
/// `status` and the rule is known before the large fields are read. A field read before `kind`
/// is kept whole (an object without `kind`, from a raw API list, keeps everything but
/// `managedFields`); a kind the inventory ignores keeps only `apiVersion`, `kind` and
/// `metadata`. A value that is not an object is returned as it is, for the caller to refuse.
pub fn read_object(text: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = de.deserialize_any(ObjectOfAnyKind)?;
    de.end()?;
    Ok(value)
}

/// A JSON value read and thrown away, held to the same rules as a value that is kept.
///
/// `serde`'s `IgnoredAny` only scans a skipped value: a number beyond `f64`'s range
/// (`"resourceVersion": 1e400`), a lone UTF-16 surrogate escape or nesting deeper than the
/// JSON reader's limit would pass there, where reading the file whole into a [`Value`]
/// refuses them. Skipping through this type reads every scalar the way a [`Value`] would
/// (without keeping it), so a file is refused for the same reasons whichever reader reads it.
pub(crate) struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Skipped, D::Error> {
        deserializer.deserialize_any(SkippedVisitor)
    }
}

struct SkippedVisitor;

impl<'de> Visitor<'de> for SkippedVisitor {
    type Value = Skipped;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_none<E: de::Error>(self) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Skipped, D::Error> {
        Skipped::deserialize(deserializer)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skipped, A::Error> {
        while map.next_entry::<Skipped, Skipped>()?.is_some() {}
        Ok(Skipped)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skipped, A::Error> {
        while seq.next_element::<Skipped>()?.is_some() {}
        Ok(Skipped)
    }
}

/// The visits of JSON scalars, the same for every visitor here that builds a [`Value`]: a
/// scalar is kept as it is.
macro_rules! scalar_visits {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_none<E: de::Error>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    };
}

struct ObjectOfAnyKind;

impl<'de> Visitor<'de> for ObjectOfAnyKind {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // `None` until `kind` is read; then `Some(None)` for a kind the inventory ignores.
        let mut rule: Option<Option<Keep>> = None;
        while let Some(key) = map.next_key::<String>()? {
            let field_rule = match (&rule, key.as_str()) {
                (_, "kind" | "apiVersion") => Keep::All,
                (_, "metadata") => METADATA,
                (None, _) => Keep::All,
                (Some(None), _) => {
                    map.next_value::<Skipped>()?;
                    continue;
                }
                (Some(Some(kept)), field) => match PruneVisitor(*kept).rule_for(field) {
                    Some(r) => r,
                    None => {
                        map.next_value::<Skipped>()?;
                        continue;
                    }
                },
            };
            let value = map.next_value_seed(field_rule)?;
            if key == "kind"
                && let Some(kind) = value.as_str()
            {
                rule = Some(keep_for(kind));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        PruneVisitor(Keep::All).visit_seq(seq)
    }

    scalar_visits!();
}

impl<'de> DeserializeSeed<'de> for Keep {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self {
            Keep::All => Value::deserialize(deserializer),
            rule => deserializer.deserialize_any(PruneVisitor(rule)),
        }
    }
}

struct PruneVisitor(Keep);

impl PruneVisitor {
    fn rule_for(&self, key: &str) -> Option<Keep> {
        match self.0 {
            Keep::All => Some(Keep::All),
            Keep::AllBut(skip) => (!skip.contains(&key)).then_some(Keep::All),
            Keep::Only(fields) => fields.iter().find(|(k, _)| *k == key).map(|(_, rule)| *rule),
        }
    }
}

impl<'de> Visitor<'de> for PruneVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.rule_for(&key) {
                Some(rule) => {
                    let value = map.next_value_seed(rule)?;
                    out.insert(key, value);
                }
                None => {
                    map.next_value::<Skipped>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self.0)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    scalar_visits!();
}

/// The list envelope: only the pruned `items`; every other field is skipped.
struct ItemsOfList(Keep);

impl<'de> DeserializeSeed<'de> for ItemsOfList {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Value>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ItemsOfList {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kubernetes list object with \"items\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Value>, A::Error> {
        let mut items = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                items = Some(map.next_value_seed(ItemsSeed(self.0))?);
            } else {
                map.next_value::<Skipped>()?;
            }
        }
        items.ok_or_else(|| de::Error::missing_field("items"))
    }
}

struct ItemsSeed(Keep);

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Value>, D::Error> {
        // `any`, not `seq`: Go encodes an empty list's items as `null`.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<Value>, E> {
        // `"items": null` is how Go encodes an empty list.
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self.0)? {
            out.push(v);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_listed_fields_survive_and_arrays_apply_the_rule_per_element() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}], "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1", "env": [{"name": "A"}],
                                      "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}],
                     "nodeName": "n1", "dnsPolicy": "ClusterFirst", "priority": 5},
            "status": {"phase": "Running", "containerStatuses": [{"ready": true}], "conditions": []}
        });
        let kept = read_value(&pod.to_string(), POD).unwrap();
        assert_eq!(
            kept,
            json!({
                "kind": "Pod",
                "metadata": {"name": "a", "labels": {"app": "x"}},
                "spec": {"containers": [{"image": "nginx:1", "resources": {"requests": {"cpu": "1"}}}],
                         "nodeName": "n1", "priority": 5},
                "status": {"phase": "Running", "conditions": []}
            })
        );
    }

    #[test]
    fn pages_give_their_continue_token_and_go_null_items_are_empty() {
        let text = r#"{"kind":"PodList","metadata":{"continue":"abc","resourceVersion":"9"},"items":[{"kind":"Pod","metadata":{"name":"p"},"spec":{"hostNetwork":true}}]}"#;
        assert_eq!(continue_token(text).unwrap(), "abc");
        assert_eq!(read_items(text, POD).unwrap(), vec![json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {}})]);
        assert_eq!(
            continue_token(r#"{"items":[{"metadata":{"continue":"no"}}],"metadata":{"continue":"abc"}}"#).unwrap(),
            "abc",
            "items first: the full scan"
        );
        assert_eq!(
            continue_token(
                r#"{"kind":"PodList","metadata":{"continue":"abc"},"items":[{"metadata":{"continue":"no"}}]}"#
            )
            .unwrap(),
            "abc",
            "metadata first: the head only"
        );
        assert_eq!(continue_token(r#"{"metadata":{"resourceVersion":"5"},"items":[]}"#).unwrap(), "");
        assert!(continue_token(r#"{"metadata":{"continue":"abc"},"items":[{"#).is_ok(), "the head alone decides");
        let last = r#"{"metadata":{},"items":null}"#;
        assert_eq!(continue_token(last).unwrap(), "");
        assert!(read_items(last, POD).unwrap().is_empty());
        assert!(read_items(r#"{"kind":"Status","code":403}"#, POD).unwrap_err().to_string().contains("items"));
        assert!(read_items(r#"{"items":[{"a":1}]"#, POD).is_err(), "truncated JSON is an error");
    }

    /// Every object of a fleet, read whole and read pruned, gives the same inventory.
    fn assert_pruning_changes_nothing(fleet: &Value) {
        use crate::snapshot::{InventoryBuilder, SnapshotOptions, load_str};
        let opts = SnapshotOptions::default();
        let whole = load_str("fleet.json", &fleet.to_string(), &opts).unwrap();
        let mut pruned = InventoryBuilder::new(&whole.source, &opts);
        let mut kept_bytes = 0;
        let mut all_bytes = 0;
        for item in fleet["items"].as_array().unwrap() {
            let text = item.to_string();
            let keep = keep_for(item["kind"].as_str().unwrap()).unwrap_or(Keep::All);
            let kept = read_value(&text, keep).unwrap();
            all_bytes += text.len();
            kept_bytes += kept.to_string().len();
            pruned.add("fleet.json", &kept).unwrap();
        }
        let pruned = serde_json::to_value(pruned.finish().unwrap()).unwrap();
        let whole = serde_json::to_value(&whole).unwrap();
        for part in ["nodes", "pods", "pdbs", "workloads", "components"] {
            let (a, b) = (pruned[part].as_array().unwrap(), whole[part].as_array().unwrap());
            assert_eq!(a.len(), b.len(), "{part}");
            if let Some((x, y)) = a.iter().zip(b).find(|(x, y)| x != y) {
                panic!("pruning changed one of the {part}:\npruned {x}\nwhole  {y}");
            }
        }
        assert_eq!(pruned, whole);
        assert!(kept_bytes < all_bytes, "pruning keeps less: {kept_bytes} of {all_bytes} bytes");
    }

    #[test]
    fn pruning_never_changes_the_inventory_of_the_example_fleets() {
        for name in ["small.json", "three-generations.json"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
            let fleet: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_pruning_changes_nothing(&fleet);
        }
    }

    #[test]
    fn pruning_never_changes_the_inventory_of_a_generated_fleet() {
        use stepstone_fleet::{FleetSpec, generate};
        assert_pruning_changes_nothing(&generate(&FleetSpec::synthetic(60, 3, 0.7)));
    }

    #[test]
    fn numbers_keep_their_type() {
        let v =
            read_value(r#"{"spec":{"priority":-3,"terminationGracePeriodSeconds":30,"overhead":{"cpu":0.5}}}"#, POD)
                .unwrap();
        assert_eq!(v["spec"]["priority"], json!(-3));
        assert_eq!(v["spec"]["terminationGracePeriodSeconds"], json!(30));
        assert_eq!(v["spec"]["overhead"]["cpu"], json!(0.5));
    }
}

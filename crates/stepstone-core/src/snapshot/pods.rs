//! The fast reader of pods, which are most of a snapshot's objects: one pass from JSON text
//! straight into a [`Pod`], without building a [`Value`] tree of the object first.
//!
//! It reads only well-formed pods of the usual shape: every field it reads has the type the API
//! gives it, no field is given twice, no string it compares holds an escape. For anything else
//! it answers `None` and the caller reads the item with the general reader
//! ([`crate::wire::read_object`] and [`super::parse_pod`]), which gives the same pod or the
//! error that names the field. So this reader never decides what an odd input means; a test
//! checks that both give identical inventories.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::fields::add_quantity;
use super::kinds::{anti_affinity_terms, node_selector_terms};
use super::{Parsed, ParsedObject};
use crate::inventory::{OwnerRef, Pod, PodPhase, Toleration, Volume, VolumeSource};
use crate::quantity::Resources;
use crate::wire::Skipped;

/// The pod in `text`, or `None` when `text` is not a pod this reader reads (see the module
/// documentation); then the general reader decides.
pub(super) fn read_pod(text: &[u8]) -> Option<ParsedObject> {
    // Strings this reader skips are not checked by the JSON reader; checking the whole text
    // here keeps invalid UTF-8 anywhere an error of the general reader. The vectorised check
    // accepts exactly what `std::str::from_utf8` accepts, at a fraction of its time on ASCII.
    let text = simdutf8::basic::from_utf8(text).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let wire = de.deserialize_map(PodVisitor).ok()?;
    de.end().ok()?;
    wire.into_parsed()
}

/// Serde's derived structs also read a JSON array, element by element; the general reader
/// refuses an array where an object belongs, so this reader only reads objects.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        deserializer.deserialize_map(ObjVisitor(PhantomData))
    }
}

/// The visitor of a struct of optional fields read from a JSON object: each field from the key
/// of its name, every other key's value skipped with [`Skipped`] (so a skipped value is held to
/// the rules of a kept one), and a key given twice refused. `serde`'s derive would skip other
/// keys with `IgnoredAny`, which lets a number beyond `f64`'s range pass.
macro_rules! read_fields {
    (impl<$de:lifetime> $name:ty { $($field:ident: $key:literal),* $(,)? }) => {
        impl<$de> Deserialize<$de> for $name {
            fn deserialize<D: Deserializer<$de>>(deserializer: D) -> Result<Self, D::Error> {
                struct FieldsVisitor;
                impl<$de> Visitor<$de> for FieldsVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: MapAccess<$de>>(self, mut map: A) -> Result<$name, A::Error> {
                        const NAMES: &[&str] = &[$($key),*];
                        let mut out = <$name>::default();
                        let mut seen = 0u32;
                        while let Some(field) = map.next_key_seed(FieldName(NAMES))? {
                            let Some(i) = field else {
                                map.next_value::<Skipped>()?;
                                continue;
                            };
                            if seen & (1 << i) != 0 {
                                return Err(de::Error::duplicate_field(NAMES[i]));
                            }
                            seen |= 1 << i;
                            match NAMES[i] {
                                $($key => out.$field = map.next_value()?,)*
                                _ => unreachable!("every name is a field"),
                            }
                        }
                        Ok(out)
                    }
                }
                deserializer.deserialize_map(FieldsVisitor)
            }
        }
    };
}

/// A key of an object read by [`read_fields`]: the index of the field of that name, or `None`.
struct FieldName(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldName {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

#[derive(Default)]
struct Meta<'a> {
    namespace: Option<&'a str>,
    name: Option<String>,
    uid: Option<&'a str>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<Obj<OwnerWire>>>,
    deletion_timestamp: Option<&'a str>,
    finalizers: Option<Vec<String>>,
    creation_timestamp: Option<&'a str>,
}

read_fields!(impl<'de> Meta<'de> {
    namespace: "namespace",
    name: "name",
    uid: "uid",
    labels: "labels",
    annotations: "annotations",
    owner_references: "ownerReferences",
    deletion_timestamp: "deletionTimestamp",
    finalizers: "finalizers",
    creation_timestamp: "creationTimestamp",
});

#[derive(Default)]
struct OwnerWire {
    controller: Option<bool>,
    kind: Option<String>,
    name: Option<String>,
    uid: Option<String>,
}

read_fields!(impl<'de> OwnerWire { controller: "controller", kind: "kind", name: "name", uid: "uid" });

#[derive(Default)]
struct Spec {
    node_name: Option<String>,
    containers: Option<Vec<Obj<Container>>>,
    init_containers: Option<Vec<Obj<Container>>>,
    overhead: Option<Quantities>,
    volumes: Option<Vec<VolumeWire>>,
    tolerations: Option<Vec<Obj<TolerationWire>>>,
    node_selector: Option<BTreeMap<String, String>>,
    /// Kept as a tree: the selector parsers read it (it is absent from most pods).
    affinity: Option<Value>,
    priority: Option<i64>,
    termination_grace_period_seconds: Option<i64>,
}

read_fields!(impl<'de> Spec {
    node_name: "nodeName",
    containers: "containers",
    init_containers: "initContainers",
    overhead: "overhead",
    volumes: "volumes",
    tolerations: "tolerations",
    node_selector: "nodeSelector",
    affinity: "affinity",
    priority: "priority",
    termination_grace_period_seconds: "terminationGracePeriodSeconds",
});

#[derive(Default)]
struct Container {
    image: Option<String>,
    resources: Option<Obj<ContainerResources>>,
}

read_fields!(impl<'de> Container { image: "image", resources: "resources" });

#[derive(Default)]
struct ContainerResources {
    requests: Option<Quantities>,
}

read_fields!(impl<'de> ContainerResources { requests: "requests" });

#[derive(Default)]
struct TolerationWire {
    key: Option<String>,
    operator: Option<String>,
    value: Option<String>,
    effect: Option<String>,
}

read_fields!(impl<'de> TolerationWire { key: "key", operator: "operator", value: "value", effect: "effect" });

#[derive(Default)]
struct Status<'a> {
    phase: Option<&'a str>,
    conditions: Option<Vec<Obj<ConditionWire<'a>>>>,
}

read_fields!(impl<'de> Status<'de> { phase: "phase", conditions: "conditions" });

#[derive(Default)]
struct ConditionWire<'a> {
    kind: Option<&'a str>,
    status: Option<&'a str>,
}

read_fields!(impl<'de> ConditionWire<'de> { kind: "type", status: "status" });

/// A map of resource quantities, read into [`Resources`] as it is read (strings or numbers).
struct Quantities(Resources);

impl<'de> Deserialize<'de> for Quantities {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantitiesVisitor;
        impl<'de> Visitor<'de> for QuantitiesVisitor {
            type Value = Quantities;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of quantities")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Quantities, A::Error> {
                let mut r = Resources::default();
                let mut seen = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.contains(&key) {
                        return Err(de::Error::custom("a quantity given twice"));
                    }
                    let text = map.next_value::<QuantityText>()?.0;
                    add_quantity(&mut r, &key, &text).map_err(de::Error::custom)?;
                    seen.push(key);
                }
                Ok(Quantities(r))
            }
        }
        deserializer.deserialize_map(QuantitiesVisitor)
    }
}

/// A quantity as the general reader sees it: a string, or a number in JSON's own spelling.
struct QuantityText(String);

impl<'de> Deserialize<'de> for QuantityText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = QuantityText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quantity")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<QuantityText, E> {
                Ok(QuantityText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<QuantityText, E> {
                Ok(QuantityText(serde_json::Number::from(v).to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<QuantityText, E> {
                Ok(QuantityText(serde_json::Number::from(v).to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<QuantityText, E> {
                serde_json::Number::from_f64(v)
                    .map(|n| QuantityText(n.to_string()))
                    .ok_or_else(|| E::custom("not a quantity"))
            }
        }
        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// One entry of `spec.volumes`: its name and the first of the sources the planner tells apart,
/// or the first other field's name.
struct VolumeWire(Volume);

impl<'de> Deserialize<'de> for VolumeWire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VolumeVisitor;
        impl<'de> Visitor<'de> for VolumeVisitor {
            type Value = VolumeWire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a volume")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VolumeWire, A::Error> {
                #[derive(Default)]
                struct EmptyDir {
                    medium: Option<String>,
                }
                read_fields!(impl<'a> EmptyDir { medium: "medium" });
                #[derive(Default)]
                struct HostPath {
                    path: Option<String>,
                }
                read_fields!(impl<'a> HostPath { path: "path" });
                #[derive(Default)]
                struct Claim {
                    claim_name: Option<String>,
                }
                read_fields!(impl<'a> Claim { claim_name: "claimName" });
                fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
                    match slot.replace(value) {
                        Some(_) => Err(E::custom("a field given twice")),
                        None => Ok(()),
                    }
                }
                let (mut name, mut empty_dir, mut host_path, mut claim, mut other) = (None, None, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => once(&mut name, map.next_value::<String>()?)?,
                        "emptyDir" => once(&mut empty_dir, map.next_value::<Option<Obj<EmptyDir>>>()?)?,
                        "hostPath" => once(&mut host_path, map.next_value::<Option<Obj<HostPath>>>()?)?,
                        "persistentVolumeClaim" => once(&mut claim, map.next_value::<Option<Obj<Claim>>>()?)?,
                        _ => {
                            map.next_value::<Skipped>()?;
                        }
                    }
                    if key != "name" && other.is_none() {
                        other = Some(key);
                    }
                }
                let source = if let Some(e) = empty_dir {
                    VolumeSource::EmptyDir { medium: e.and_then(|e| e.0.medium).filter(|m| !m.is_empty()) }
                } else if let Some(h) = host_path {
                    VolumeSource::HostPath { path: h.and_then(|h| h.0.path).unwrap_or_default() }
                } else if let Some(c) = claim {
                    VolumeSource::PersistentVolumeClaim { claim: c.and_then(|c| c.0.claim_name).unwrap_or_default() }
                } else {
                    VolumeSource::Other { kind: other.unwrap_or_default() }
                };
                Ok(VolumeWire(Volume { name: name.unwrap_or_default(), source }))
            }
        }
        deserializer.deserialize_map(VolumeVisitor)
    }
}

/// A pod's top-level fields as read.
#[derive(Default)]
struct PodWire<'a> {
    meta: Option<Meta<'a>>,
    spec: Option<Spec>,
    status: Option<Status<'a>>,
}

struct PodVisitor;

impl<'de> Visitor<'de> for PodVisitor {
    type Value = PodWire<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a pod")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PodWire<'de>, A::Error> {
        fn once<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
            map: &mut A,
            slot: &mut Option<T>,
        ) -> Result<(), A::Error> {
            let value = map.next_value::<Obj<T>>()?.0;
            match slot.replace(value) {
                Some(_) => Err(de::Error::custom("a field given twice")),
                None => Ok(()),
            }
        }
        let mut pod = PodWire::default();
        let mut is_pod = false;
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "kind" if !is_pod => {
                    // kubectl writes `kind` second, so anything else is given up on early.
                    if map.next_value::<&str>()? != "Pod" {
                        return Err(de::Error::custom("not a pod"));
                    }
                    is_pod = true;
                }
                "kind" => return Err(de::Error::custom("kind given twice")),
                _ if !is_pod && key != "apiVersion" => return Err(de::Error::custom("kind comes late")),
                "metadata" => once(&mut map, &mut pod.meta)?,
                "spec" => once(&mut map, &mut pod.spec)?,
                "status" => once(&mut map, &mut pod.status)?,
                _ => {
                    map.next_value::<Skipped>()?;
                }
            }
        }
        if !is_pod {
            return Err(de::Error::custom("no kind"));
        }
        Ok(pod)
    }
}

fn requests_of(containers: &Option<Vec<Obj<Container>>>) -> impl Iterator<Item = Resources> + '_ {
    containers
        .iter()
        .flatten()
        .map(|c| c.0.resources.as_ref().and_then(|r| r.0.requests.as_ref()).map(|q| q.0).unwrap_or_default())
}

impl PodWire<'_> {
    /// The pod as [`super::parse_pod`] makes it, or `None` where that would refuse it (then it
    /// says why).
    fn into_parsed(self) -> Option<ParsedObject> {
        let meta = self.meta?;
        let spec = self.spec?;
        let status = self.status;
        let phase = match status.as_ref().and_then(|s| s.phase) {
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            Some("Unknown") => PodPhase::Unknown,
            _ => PodPhase::Pending,
        };
        let ready = status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.0.kind == Some("Ready") && c.0.status == Some("True")));
        let mut requests = Resources::default();
        for r in requests_of(&spec.containers) {
            requests = requests.saturating_add(r);
        }
        for r in requests_of(&spec.init_containers) {
            requests = requests.max(r);
        }
        requests = requests.saturating_add(spec.overhead.map(|q| q.0).unwrap_or_default());
        requests.pods = 1;
        let images = spec.containers.into_iter().flatten().filter_map(|c| c.0.image).collect();
        let tolerations = spec
            .tolerations
            .into_iter()
            .flatten()
            .map(|Obj(t)| Toleration {
                key: t.key.unwrap_or_default(),
                operator: t.operator.unwrap_or_else(|| "Equal".to_string()),
                value: t.value.unwrap_or_default(),
                effect: t.effect.unwrap_or_default(),
            })
            .collect();
        let affinity = spec.affinity.unwrap_or(Value::Null);
        let owner = meta.owner_references.into_iter().flatten().map(|o| o.0).find(|o| o.controller == Some(true));
        let owner = owner.and_then(|o| Some(OwnerRef { kind: o.kind?, name: o.name?, uid: o.uid.unwrap_or_default() }));
        let name = meta.name?;
        let pod = Pod {
            namespace: meta.namespace.unwrap_or("default").to_string(),
            name: name.clone(),
            uid: meta.uid.unwrap_or("").to_string(),
            node_name: spec.node_name.filter(|n| !n.is_empty()),
            phase,
            ready,
            labels: meta.labels.unwrap_or_default(),
            annotations: meta.annotations.unwrap_or_default(),
            owner,
            requests,
            volumes: spec.volumes.into_iter().flatten().map(|v| v.0).collect(),
            node_selector: spec.node_selector.unwrap_or_default(),
            node_affinity: node_selector_terms(&affinity),
            tolerations,
            anti_affinity_hostname: anti_affinity_terms(&affinity),
            priority: spec.priority.unwrap_or(0) as i32,
            termination_grace_seconds: spec.termination_grace_period_seconds,
            deletion_timestamp: meta.deletion_timestamp.map(str::parse).transpose().ok()?,
            finalizers: meta.finalizers.unwrap_or_default(),
            created: meta.creation_timestamp.map(str::parse).transpose().ok()?,
            images,
        };
        Some(ParsedObject {
            kind: "Pod".to_string(),
            namespace: meta.namespace.unwrap_or("").to_string(),
            name,
            parsed: Parsed::Pod(pod),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::snapshot::parse_pod;

    /// The fast reader's pod of `item`, checked against the general reader's.
    fn fast_equals_general(item: &Value) -> bool {
        let Some(fast) = read_pod(item.to_string().as_bytes()) else { return false };
        let Parsed::Pod(pod) = fast.parsed else { panic!("not a pod") };
        let general = parse_pod(item).expect("the general reader reads it");
        assert_eq!(serde_json::to_value(&pod).unwrap(), serde_json::to_value(&general).unwrap());
        assert_eq!(fast.name, general.name);
        assert_eq!(fast.namespace, item["metadata"]["namespace"].as_str().unwrap_or(""));
        true
    }

    #[test]
    fn every_pod_of_the_examples_and_a_generated_fleet_is_read_fast_and_the_same() {
        let mut fleets = Vec::new();
        for name in ["small.json", "three-generations.json"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
            fleets.push(serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap()).unwrap());
        }
        fleets.push(stepstone_fleet::generate(&stepstone_fleet::FleetSpec::synthetic(40, 4, 0.7)));
        for fleet in &fleets {
            let pods: Vec<&Value> = fleet["items"].as_array().unwrap().iter().filter(|i| i["kind"] == "Pod").collect();
            assert!(!pods.is_empty());
            for pod in pods {
                assert!(fast_equals_general(pod), "read by the general reader: {pod}");
            }
        }
    }

    #[test]
    fn pods_of_every_field_the_planner_reads_are_read_the_same() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db-0", "namespace": "prod", "uid": "u1", "labels": {"app": "db"},
                         "annotations": {"a": "b"}, "finalizers": ["x/y"],
                         "creationTimestamp": "2026-01-01T00:00:00Z", "deletionTimestamp": "2026-01-02T00:00:00Z",
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "other", "uid": "o"},
                                             {"controller": true, "kind": "StatefulSet", "name": "db", "uid": "s"}]},
            "spec": {"nodeName": "n1", "priority": 1000, "terminationGracePeriodSeconds": 60,
                     "containers": [{"image": "db:1", "resources": {"requests": {"cpu": "500m", "memory": 1073741824}}},
                                    {"image": "side:2", "resources": {"requests": {"cpu": 0.25, "nvidia.com/gpu": "1"}}}],
                     "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
                     "overhead": {"memory": "64Mi"},
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}},
                                 {"name": "tmp", "emptyDir": {"medium": "Memory"}},
                                 {"name": "e", "emptyDir": null},
                                 {"name": "logs", "hostPath": {"path": "/var/log"}},
                                 {"configMap": {"name": "c"}, "name": "cfg"}],
                     "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}, {"value": "v"}],
                     "nodeSelector": {"disk": "ssd"},
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                                      {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}},
                                  "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                                      {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}}}]}}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        assert!(fast_equals_general(&pod));
    }

    #[test]
    fn odd_shapes_are_left_to_the_general_reader() {
        let base = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}});
        assert!(fast_equals_general(&base));
        let odd = [
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":[]}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p","name":"q"},"spec":{}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{},"spec":{}}"#,
            r#"{"metadata":{"name":"p"},"kind":"Pod","spec":{}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p","labels":{"a":1}},"spec":{}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"priority":1.5}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{},"status":{"phase":"Run\u006eing"}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"resources":{"requests":{"cpu":"lots"}}}]}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p","creationTimestamp":"yesterday"},"spec":{}}"#,
            r#"{"kind":"Node","metadata":{"name":"p"},"spec":{}}"#,
            // What reading the file whole refuses, in fields this reader skips.
            r#"{"kind":"Pod","metadata":{"name":"p","resourceVersion":1e400},"spec":{}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"ports":[{"containerPort":-1E+309}]}]}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{},"status":{"hostIP":"\ud800"}}"#,
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"volumes":[{"name":"v","configMap":{"x":1e999}}]}}"#,
        ];
        for text in odd {
            assert!(read_pod(text.as_bytes()).is_none(), "{text}");
        }
        for bad_utf8 in [
            &b"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{\"x\":\"\xff\"}}"[..],
            b"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{\"\xc3\":1}}",
            b"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"\xed\xa0\x80\"}},\"spec\":{}}",
            b"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{},\"status\":{\"phase\":\"Running\",\"m\":[\"\xff\"]}}",
        ] {
            assert!(read_pod(bad_utf8).is_none(), "{}", String::from_utf8_lossy(bad_utf8));
        }
        let huge = format!(r#"{{"kind":"Pod","metadata":{{"name":"p"}},"spec":{{"x":1{}}}}}"#, "0".repeat(400));
        assert!(read_pod(huge.as_bytes()).is_none());
        let deep = format!(
            r#"{{"kind":"Pod","metadata":{{"name":"p"}},"spec":{{"x":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(read_pod(deep.as_bytes()).is_none());
        assert!(serde_json::from_str::<Value>(&deep).is_err(), "nesting the whole-text reader refuses");
    }
}

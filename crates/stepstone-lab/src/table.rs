//! Server-side printing: `meta.k8s.io/v1` Tables with the columns `kubectl get` shows for each
//! resource (priority-1 columns appear with `-o wide`), computed the way upstream's printers do.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::clock;
use crate::pod_facts::PodFacts;
use crate::resources::{self, RESOURCES, ResId};
use crate::store::{self, Stored, meta, meta_str};

/// Does the Accept header ask for a Table?
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
}

/// How a column's cell is computed: from the object, or, for pods, from the facts the store
/// keeps beside each pod's text (a Table of every pod then parses none).
#[derive(Clone, Copy)]
enum Cell {
    Object(fn(&Value, Timestamp) -> Value),
    Pod(fn(&PodFacts, Timestamp) -> Value),
}

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
    cell: Cell,
}

const fn col(name: &'static str, kind: &'static str, priority: u8, cell: fn(&Value, Timestamp) -> Value) -> Column {
    Column { name, kind, priority, cell: Cell::Object(cell) }
}

const fn pod_col(name: &'static str, priority: u8, cell: fn(&PodFacts, Timestamp) -> Value) -> Column {
    Column { name, kind: "string", priority, cell: Cell::Pod(cell) }
}

fn name(o: &Value, _: Timestamp) -> Value {
    json!(store::name_of(o))
}

fn age(o: &Value, now: Timestamp) -> Value {
    json!(age_of(meta_str(o, "creationTimestamp"), now))
}

fn age_of(ts: Option<&str>, now: Timestamp) -> String {
    ts.and_then(clock::parse).map(|t| clock::human_age(t, now)).unwrap_or_else(|| "<unknown>".into())
}

fn s<'a>(o: &'a Value, ptr: &str) -> Option<&'a str> {
    o.pointer(ptr).and_then(Value::as_str)
}

fn i(o: &Value, ptr: &str) -> i64 {
    o.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(v: Option<&str>) -> Value {
    json!(v.filter(|s| !s.is_empty()).unwrap_or("<none>"))
}

// ---- nodes

pub fn node_status(o: &Value) -> String {
    let ready = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str());
    // As kubectl's printer: any Ready status but True (False or Unknown) is NotReady; only a
    // node without a Ready condition is Unknown.
    let mut out = match ready {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        out.push_str(",SchedulingDisabled");
    }
    out
}

fn node_status_cell(o: &Value, _: Timestamp) -> Value {
    json!(node_status(o))
}

fn node_roles(o: &Value, _: Timestamp) -> Value {
    let mut roles: Vec<String> = store::labels_of(o)
        .into_iter()
        .filter_map(|(k, v)| {
            if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                Some(r.to_string())
            } else if k == "kubernetes.io/role" {
                Some(v)
            } else {
                None
            }
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    roles.dedup();
    if roles.is_empty() { json!("<none>") } else { json!(roles.join(",")) }
}

fn node_address(o: &Value, kind: &str) -> Value {
    let addr = o
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|x| x["type"] == kind))
        .and_then(|x| x["address"].as_str());
    or_none(addr)
}

const NODE_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Status", "string", 0, node_status_cell),
    col("Roles", "string", 0, node_roles),
    col("Age", "string", 0, age),
    col("Version", "string", 0, |o, _| json!(s(o, "/status/nodeInfo/kubeletVersion").unwrap_or(""))),
    col("Internal-IP", "string", 1, |o, _| node_address(o, "InternalIP")),
    col("External-IP", "string", 1, |o, _| node_address(o, "ExternalIP")),
    col("OS-Image", "string", 1, |o, _| or_none(s(o, "/status/nodeInfo/osImage"))),
    col("Kernel-Version", "string", 1, |o, _| or_none(s(o, "/status/nodeInfo/kernelVersion"))),
    col("Container-Runtime", "string", 1, |o, _| or_none(s(o, "/status/nodeInfo/containerRuntimeVersion"))),
];

// ---- pods

fn pod_ready(p: &PodFacts, _: Timestamp) -> Value {
    json!(format!("{}/{}", p.printed.ready_containers, p.printed.containers))
}

fn pod_restarts(p: &PodFacts, now: Timestamp) -> Value {
    match (p.printed.restarts, p.printed.last_finished) {
        (n, Some(t)) if n > 0 => json!(format!("{n} ({} ago)", clock::human_age(t, now))),
        (n, _) => json!(n.to_string()),
    }
}

fn pod_readiness_gates(p: &PodFacts, _: Timestamp) -> Value {
    match p.printed.gates {
        0 => json!("<none>"),
        gates => json!(format!("{}/{gates}", p.printed.ready_gates)),
    }
}

const POD_COLUMNS: &[Column] = &[
    pod_col("Name", 0, |p, _| json!(&*p.name)),
    pod_col("Ready", 0, pod_ready),
    pod_col("Status", 0, |p, _| json!(&*p.printed.status)),
    pod_col("Restarts", 0, pod_restarts),
    pod_col("Age", 0, |p, now| json!(age_of(Some(&p.created), now))),
    pod_col("IP", 1, |p, _| or_none(Some(&p.printed.ip))),
    pod_col("Node", 1, |p, _| or_none(Some(&p.node))),
    pod_col("Nominated Node", 1, |p, _| or_none(Some(&p.printed.nominated_node))),
    pod_col("Readiness Gates", 1, pod_readiness_gates),
];

// ---- workloads

fn containers_of(o: &Value) -> Vec<&Value> {
    o.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn container_names(o: &Value, _: Timestamp) -> Value {
    json!(containers_of(o).iter().filter_map(|c| c["name"].as_str()).collect::<Vec<_>>().join(","))
}

fn container_images(o: &Value, _: Timestamp) -> Value {
    json!(containers_of(o).iter().filter_map(|c| c["image"].as_str()).collect::<Vec<_>>().join(","))
}

/// `app=web,tier in (a,b)`: a label selector printed as kubectl does.
pub fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return "<none>".into() };
    let mut parts = Vec::new();
    for (k, v) in store::string_map(sel.get("matchLabels")) {
        parts.push(format!("{k}={v}"));
    }
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        match e["operator"].as_str().unwrap_or("") {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    if parts.is_empty() { "<none>".into() } else { parts.join(",") }
}

fn selector_cell(o: &Value, _: Timestamp) -> Value {
    json!(selector_string(o.pointer("/spec/selector")))
}

const DEPLOYMENT_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Ready", "string", 0, |o, _| {
        json!(format!(
            "{}/{}",
            i(o, "/status/readyReplicas"),
            o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
        ))
    }),
    col("Up-to-date", "integer", 0, |o, _| json!(i(o, "/status/updatedReplicas"))),
    col("Available", "integer", 0, |o, _| json!(i(o, "/status/availableReplicas"))),
    col("Age", "string", 0, age),
    col("Containers", "string", 1, container_names),
    col("Images", "string", 1, container_images),
    col("Selector", "string", 1, selector_cell),
];

const REPLICASET_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Desired", "integer", 0, |o, _| json!(o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1))),
    col("Current", "integer", 0, |o, _| json!(i(o, "/status/replicas"))),
    col("Ready", "integer", 0, |o, _| json!(i(o, "/status/readyReplicas"))),
    col("Age", "string", 0, age),
    col("Containers", "string", 1, container_names),
    col("Images", "string", 1, container_images),
    col("Selector", "string", 1, selector_cell),
];

const STATEFULSET_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Ready", "string", 0, |o, _| {
        json!(format!(
            "{}/{}",
            i(o, "/status/readyReplicas"),
            o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
        ))
    }),
    col("Age", "string", 0, age),
    col("Containers", "string", 1, container_names),
    col("Images", "string", 1, container_images),
];

fn node_selector_cell(o: &Value, _: Timestamp) -> Value {
    let m = store::string_map(o.pointer("/spec/template/spec/nodeSelector"));
    if m.is_empty() {
        json!("<none>")
    } else {
        json!(m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
    }
}

const DAEMONSET_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Desired", "integer", 0, |o, _| json!(i(o, "/status/desiredNumberScheduled"))),
    col("Current", "integer", 0, |o, _| json!(i(o, "/status/currentNumberScheduled"))),
    col("Ready", "integer", 0, |o, _| json!(i(o, "/status/numberReady"))),
    col("Up-to-date", "integer", 0, |o, _| json!(i(o, "/status/updatedNumberScheduled"))),
    col("Available", "integer", 0, |o, _| json!(i(o, "/status/numberAvailable"))),
    col("Node Selector", "string", 0, node_selector_cell),
    col("Age", "string", 0, age),
    col("Containers", "string", 1, container_names),
    col("Images", "string", 1, container_images),
    col("Selector", "string", 1, selector_cell),
];

fn int_or_string(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Number(n)) => json!(n.to_string()),
        Some(Value::String(s)) => json!(s),
        _ => json!("N/A"),
    }
}

const PDB_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Min Available", "string", 0, |o, _| int_or_string(o.pointer("/spec/minAvailable"))),
    col("Max Unavailable", "string", 0, |o, _| int_or_string(o.pointer("/spec/maxUnavailable"))),
    col("Allowed Disruptions", "integer", 0, |o, _| json!(i(o, "/status/disruptionsAllowed"))),
    col("Age", "string", 0, age),
];

const NAMESPACE_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Status", "string", 0, |o, _| json!(s(o, "/status/phase").unwrap_or("Active"))),
    col("Age", "string", 0, age),
];

fn event_last_seen(o: &Value, now: Timestamp) -> Value {
    let t = s(o, "/lastTimestamp").or(s(o, "/eventTime")).or(meta_str(o, "creationTimestamp"));
    json!(age_of(t, now))
}

fn event_object(o: &Value, _: Timestamp) -> Value {
    let kind = s(o, "/involvedObject/kind").unwrap_or("").to_lowercase();
    json!(format!("{kind}/{}", s(o, "/involvedObject/name").unwrap_or("")))
}

const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", 0, event_last_seen),
    col("Type", "string", 0, |o, _| json!(s(o, "/type").unwrap_or(""))),
    col("Reason", "string", 0, |o, _| json!(s(o, "/reason").unwrap_or(""))),
    col("Object", "string", 0, event_object),
    col("Subobject", "string", 1, |o, _| json!(s(o, "/involvedObject/fieldPath").unwrap_or(""))),
    col("Source", "string", 1, |o, _| {
        let c = s(o, "/source/component").unwrap_or("");
        match s(o, "/source/host") {
            Some(h) if !h.is_empty() => json!(format!("{c}, {h}")),
            _ => json!(c),
        }
    }),
    col("Message", "string", 0, |o, _| json!(s(o, "/message").unwrap_or("").trim())),
    col("First Seen", "string", 1, |o, now| {
        json!(age_of(s(o, "/firstTimestamp").or(meta_str(o, "creationTimestamp")), now))
    }),
    col("Count", "string", 1, |o, _| json!(o["count"].as_i64().unwrap_or(1).to_string())),
    col("Name", "string", 1, name),
];

fn data_count(o: &Value, _: Timestamp) -> Value {
    let n = o.get("data").and_then(Value::as_object).map_or(0, |m| m.len())
        + o.get("binaryData").and_then(Value::as_object).map_or(0, |m| m.len());
    json!(n)
}

const CONFIGMAP_COLUMNS: &[Column] =
    &[col("Name", "string", 0, name), col("Data", "integer", 0, data_count), col("Age", "string", 0, age)];

const SECRET_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Type", "string", 0, |o, _| json!(s(o, "/type").unwrap_or("Opaque"))),
    col("Data", "integer", 0, data_count),
    col("Age", "string", 0, age),
];

const LEASE_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Holder", "string", 0, |o, _| json!(s(o, "/spec/holderIdentity").unwrap_or(""))),
    col("Age", "string", 0, age),
];

const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Controller", "string", 0, revision_controller),
    col("Revision", "integer", 0, |o, _| json!(o.get("revision").and_then(Value::as_i64).unwrap_or(0))),
    col("Age", "string", 0, age),
];

// ---- volumes

/// Access modes as upstream abbreviates them: `RWO,ROX`.
fn access_modes(o: &Value, ptr: &str) -> Value {
    let short: Vec<&str> = o
        .pointer(ptr)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    json!(short.join(","))
}

fn volume_claim(o: &Value, _: Timestamp) -> Value {
    match (s(o, "/spec/claimRef/namespace"), s(o, "/spec/claimRef/name")) {
        (Some(ns), Some(name)) => json!(format!("{ns}/{name}")),
        _ => json!(""),
    }
}

fn volume_attributes_class(o: &Value, _: Timestamp) -> Value {
    json!(s(o, "/spec/volumeAttributesClassName").unwrap_or("<unset>"))
}

const PV_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Capacity", "string", 0, |o, _| json!(s(o, "/spec/capacity/storage").unwrap_or(""))),
    col("Access Modes", "string", 0, |o, _| access_modes(o, "/spec/accessModes")),
    col("Reclaim Policy", "string", 0, |o, _| json!(s(o, "/spec/persistentVolumeReclaimPolicy").unwrap_or(""))),
    col("Status", "string", 0, |o, _| json!(s(o, "/status/phase").unwrap_or(""))),
    col("Claim", "string", 0, volume_claim),
    col("StorageClass", "string", 0, |o, _| json!(s(o, "/spec/storageClassName").unwrap_or(""))),
    col("VolumeAttributesClass", "string", 0, volume_attributes_class),
    col("Reason", "string", 0, |o, _| json!(s(o, "/status/reason").unwrap_or(""))),
    col("Age", "string", 0, age),
    col("VolumeMode", "string", 1, |o, _| json!(s(o, "/spec/volumeMode").unwrap_or("Filesystem"))),
];

const PVC_COLUMNS: &[Column] = &[
    col("Name", "string", 0, name),
    col("Status", "string", 0, |o, _| json!(s(o, "/status/phase").unwrap_or(""))),
    col("Volume", "string", 0, |o, _| json!(s(o, "/spec/volumeName").unwrap_or(""))),
    col("Capacity", "string", 0, |o, _| json!(s(o, "/status/capacity/storage").unwrap_or(""))),
    col("Access Modes", "string", 0, |o, _| access_modes(o, "/status/accessModes")),
    col("StorageClass", "string", 0, |o, _| json!(s(o, "/spec/storageClassName").unwrap_or(""))),
    col("VolumeAttributesClass", "string", 0, volume_attributes_class),
    col("Age", "string", 0, age),
    col("VolumeMode", "string", 1, |o, _| json!(s(o, "/spec/volumeMode").unwrap_or("Filesystem"))),
];

/// The controlling owner as `kind.group/name` (`daemonset.apps/kube-proxy`), `<none>` without one.
fn revision_controller(o: &Value, _: Timestamp) -> Value {
    let owner = meta(o)
        .get("ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true)));
    let Some(owner) = owner else { return json!("<none>") };
    let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("").to_lowercase();
    let group = owner.get("apiVersion").and_then(Value::as_str).and_then(|v| v.split_once('/')).map(|(g, _)| g);
    let name = owner.get("name").and_then(Value::as_str).unwrap_or("");
    match group {
        Some(g) => json!(format!("{kind}.{g}/{name}")),
        None => json!(format!("{kind}/{name}")),
    }
}

fn columns(res: ResId) -> &'static [Column] {
    match resources::storage_of(res) {
        resources::NODES => NODE_COLUMNS,
        resources::PODS => POD_COLUMNS,
        resources::DEPLOYMENTS => DEPLOYMENT_COLUMNS,
        resources::REPLICASETS => REPLICASET_COLUMNS,
        resources::STATEFULSETS => STATEFULSET_COLUMNS,
        resources::DAEMONSETS => DAEMONSET_COLUMNS,
        resources::PDBS => PDB_COLUMNS,
        resources::NAMESPACES => NAMESPACE_COLUMNS,
        resources::EVENTS => EVENT_COLUMNS,
        resources::CONFIGMAPS => CONFIGMAP_COLUMNS,
        resources::SECRETS => SECRET_COLUMNS,
        resources::LEASES => LEASE_COLUMNS,
        resources::CONTROLLER_REVISIONS => CONTROLLER_REVISION_COLUMNS,
        resources::PERSISTENT_VOLUMES => PV_COLUMNS,
        resources::PERSISTENT_VOLUME_CLAIMS => PVC_COLUMNS,
        _ => &[],
    }
}

fn description(name: &str) -> String {
    match name {
        "Name" => "Name must be unique within a namespace. Cannot be updated.".into(),
        "Age" => "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        other => other.to_string(),
    }
}

/// A Table of `objects`; `include_object` is the `includeObject` option (`None`, `Metadata`
/// (default) or `Object`).
pub fn table(
    res: ResId,
    objects: &[Arc<Stored>],
    now: Timestamp,
    rv: u64,
    cont: Option<String>,
    include_object: &str,
) -> Value {
    serde_json::from_slice(&table_bytes(res, objects, now, rv, cont, include_object)).expect("the table is valid JSON")
}

/// [`table`] serialised directly, row by row, with whole objects copied from the store's JSON.
pub fn table_bytes(
    res: ResId,
    objects: &[Arc<Stored>],
    now: Timestamp,
    rv: u64,
    cont: Option<String>,
    include_object: &str,
) -> Vec<u8> {
    let cols = columns(res);
    let defs: Vec<Value> = if cols.is_empty() {
        vec![
            json!({"name": "Name", "type": "string", "format": "name", "description": description("Name"), "priority": 0}),
            json!({"name": "Created At", "type": "date", "format": "", "description": description("Age"), "priority": 0}),
        ]
    } else {
        cols.iter()
            .map(|c| {
                json!({"name": c.name, "type": c.kind, "format": if c.name == "Name" {"name"} else {""},
                    "description": description(c.name), "priority": c.priority})
            })
            .collect()
    };
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        metadata["continue"] = json!(c);
    }
    let _ = &RESOURCES[res];
    let write = |out: &mut Vec<u8>, v: &Value| serde_json::to_writer(out, v).expect("JSON values serialise");
    let mut out = Vec::with_capacity(objects.len() * 768 + 1024);
    out.extend_from_slice(br#"{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":"#);
    write(&mut out, &metadata);
    out.extend_from_slice(br#","columnDefinitions":"#);
    write(&mut out, &Value::Array(defs));
    out.extend_from_slice(br#","rows":["#);
    for (i, stored) in objects.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // A pod is read from its facts and the metadata from its text; other kinds are kept
        // parsed, and a pod without facts (none the store keeps) is parsed.
        let facts = stored.pod_facts();
        let metadata_text = stored.metadata_json();
        let parsed = (facts.is_none() || metadata_text.is_none()).then(|| stored.value());
        let cells = if cols.is_empty() {
            let o = parsed.as_deref().unwrap_or(&Value::Null);
            json!([store::name_of(o), meta_str(o, "creationTimestamp").unwrap_or("")])
        } else {
            let own;
            let facts = match facts {
                Some(f) => f,
                None => {
                    own = PodFacts::of(parsed.as_deref().unwrap_or(&Value::Null));
                    &own
                }
            };
            let o = parsed.as_deref().unwrap_or(&Value::Null);
            Value::Array(
                cols.iter()
                    .map(|c| match c.cell {
                        Cell::Object(cell) => cell(o, now),
                        Cell::Pod(cell) => cell(facts, now),
                    })
                    .collect(),
            )
        };
        out.extend_from_slice(br#"{"cells":"#);
        write(&mut out, &cells);
        match include_object {
            "None" => {}
            "Object" => {
                out.extend_from_slice(br#","object":"#);
                out.extend_from_slice(stored.json());
            }
            _ => {
                out.extend_from_slice(
                    br#","object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#,
                );
                match metadata_text {
                    Some(text) => out.extend_from_slice(text),
                    None => write(&mut out, meta(parsed.as_deref().unwrap_or(&Value::Null))),
                }
                out.push(b'}');
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn cordoned_ready_node_prints_scheduling_disabled() {
        let n =
            json!({"spec": {"unschedulable": true}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(node_status(&n), "Ready,SchedulingDisabled");
        let n = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert_eq!(node_status(&n), "NotReady");
    }

    /// Pods in the states the printer tells apart, stored as the store stores them.
    fn printed_pods() -> Vec<Arc<Stored>> {
        let created = "2026-03-01T10:00:00Z";
        let pods = [
            json!({"metadata": {"name": "plain", "namespace": "a", "creationTimestamp": created},
                "spec": {"nodeName": "n1", "containers": [{"name": "c"}, {"name": "d"}]},
                "status": {"phase": "Running", "podIP": "10.0.0.7",
                    "containerStatuses": [{"ready": true, "restartCount": 0}, {"ready": false, "restartCount": 0}]}}),
            json!({"metadata": {"name": "crashing", "namespace": "a", "creationTimestamp": "2026-03-09T11:00:00Z",
                    "labels": {"app": "x"}, "ownerReferences": [{"uid": "rs-1", "controller": true, "kind": "ReplicaSet", "name": "r"}]},
                "spec": {"nodeName": "n2", "containers": [{"name": "c"}]},
                "status": {"phase": "Running", "nominatedNodeName": "n3",
                    "containerStatuses": [{"ready": false, "restartCount": 4,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"finishedAt": "2026-03-10T11:55:00Z"}}},
                        {"ready": false, "restartCount": 1, "state": {"terminated": {"reason": "Error"}},
                        "lastState": {"terminated": {"finishedAt": "2026-03-10T11:58:30Z"}}}]}}),
            json!({"metadata": {"name": "leaving", "namespace": "b", "creationTimestamp": created,
                    "deletionTimestamp": "2026-03-10T11:59:00Z"},
                "spec": {"nodeName": "n1", "containers": [{"name": "c"}],
                    "readinessGates": [{"conditionType": "example.com/ready"}, {"conditionType": "example.com/other"}]},
                "status": {"phase": "Running", "conditions": [{"type": "example.com/ready", "status": "True"},
                    {"type": "example.com/other", "status": "False"}]}}),
            json!({"metadata": {"name": "lost", "namespace": "b", "creationTimestamp": created,
                    "deletionTimestamp": "2026-03-10T11:59:00Z"},
                "spec": {"nodeName": 7},
                "status": {"phase": "Running", "reason": "NodeLost", "podIP": ""}}),
            json!({"metadata": {"name": "evicted", "namespace": "c"},
                "spec": {"containers": [{"name": "c"}]},
                "status": {"phase": "Failed", "reason": "Evicted", "containerStatuses": [{"restartCount": 2}]}}),
            json!({"metadata": {"name": "bare", "namespace": "c", "creationTimestamp": "not a time"}}),
        ];
        let mut store = Store::new(3);
        let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        for pod in pods {
            store.create(resources::PODS, pod, now, true).unwrap();
        }
        store.iter_stored(resources::PODS, None, None).map(|(_, s)| s.clone()).collect()
    }

    #[test]
    fn pod_rows_print_as_kubectl_shows_them() {
        let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        let pods = printed_pods();
        let with_metadata = String::from_utf8(table_bytes(resources::PODS, &pods, now, 9, None, "Metadata")).unwrap();
        let bare = String::from_utf8(table_bytes(resources::PODS, &pods, now, 9, Some("c".into()), "None")).unwrap();
        let expected = include_str!("../tests/data/pod-table.json");
        assert_eq!(format!("{with_metadata}\n{bare}\n"), expected);
    }

    #[test]
    fn table_accept_header() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}

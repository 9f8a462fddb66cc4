//! Deterministic bare-metal fleets: the example clusters shipped in `examples/`, the lab's
//! starting state and the benchmark fleets, as the `v1 List` that
//! `kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json` prints; and [`Fleet::builder`],
//! a few hand-picked objects for tests.
//!
//! Everything is derived from a [`FleetSpec`] and its seed: names, UIDs, IPs, timestamps
//! (relative to the spec's fixed snapshot time, never the clock) and pod placement. The same
//! spec always yields byte-identical JSON, which is what lets the committed example files be
//! checked against the generator. The stages: [`spec`] says what to build, `catalogue` lists
//! the applications, `placement` lays out nodes and binds pods, `render` writes the objects.

mod app;
mod builder;
mod catalogue;
mod placement;
mod render;
mod rng;
pub mod spec;

use serde_json::{Value, json};
use stepstone_core::inventory::Inventory;
use stepstone_core::snapshot::{ObjectSet, SnapshotError, SnapshotOptions, parse_pdb, parse_pod, parse_workload};

pub use builder::{Fleet, FleetBuilder};
pub use spec::{AppMix, FleetSpec, GenerationSpec, OlderKubelets};

use placement::Placer;
use render::object;

pub(crate) const GIB: u64 = 1 << 30;
pub(crate) const MIB: u64 = 1 << 20;
/// Pods per node, the kubelet default.
pub(crate) const MAX_PODS: u64 = 110;
/// CPU held back from allocatable for the kubelet and system daemons (kubeReserved).
pub(crate) const RESERVED_CPU_MILLIS: u64 = 500;
/// Memory held back: kubeReserved 1Gi plus the default hard eviction threshold of 100Mi.
pub(crate) const RESERVED_MEMORY: u64 = GIB + 100 * MIB;
pub(crate) const NAME_LABEL: &str = "app.kubernetes.io/name";
pub(crate) const INSTANCE_TYPE_LABEL: &str = "node.kubernetes.io/instance-type";
pub(crate) const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// The topology key of the OpenEBS LVM CSI driver: its node plugin reports it and the kubelet
/// labels the node with it; the volumes it provisions select it in their node affinity.
pub(crate) const OPENEBS_NODE_LABEL: &str = "openebs.io/nodename";
pub(crate) const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The fleet as a `kubectl get … -o json` List.
pub fn generate(spec: &FleetSpec) -> Value {
    let mut items = Vec::new();
    generate_items(spec, |item| items.push(item));
    object([
        ("apiVersion", json!("v1")),
        ("items", Value::Array(items)),
        ("kind", json!("List")),
        ("metadata", json!({"resourceVersion": ""})),
    ])
}

/// The fleet as an [`Inventory`], exactly what [`stepstone_core::snapshot::load_str`] returns for the
/// generated List, but parsed object by object as it is generated: a 5,000-node fleet never
/// exists as one JSON document (which would take gigabytes).
pub fn generate_inventory(spec: &FleetSpec, opts: &SnapshotOptions) -> Result<Inventory, SnapshotError> {
    let origin = format!("generated fleet {}", spec.name);
    // Nodes, volumes, claims and kube-system pods go through the snapshot assembly (it derives
    // components, kube-proxy versions and the nodes each claim's volume admits from them); everything else is parsed straight into the inventory
    // with the same per-object parsers.
    let mut set = ObjectSet::default();
    let (mut pods, mut pdbs, mut workloads) = (Vec::new(), Vec::new(), Vec::new());
    let mut error = None;
    generate_items(spec, |item| {
        if error.is_some() {
            return;
        }
        let kind = item["kind"].as_str().unwrap_or("").to_string();
        // Volumes and claims too: the assembly matches volumes' node affinity against the nodes.
        let assembled = matches!(kind.as_str(), "Node" | "PersistentVolume" | "PersistentVolumeClaim")
            || (kind == "Pod" && item["metadata"]["namespace"] == "kube-system");
        let parsed = match kind.as_str() {
            _ if assembled => Ok(()),
            "Pod" => parse_pod(&item).map(|p| pods.push(p)),
            "PodDisruptionBudget" => parse_pdb(&item).map(|p| pdbs.push(p)),
            _ => parse_workload(&item).map(|w| workloads.push(w)),
        };
        match parsed {
            Ok(()) if assembled => set.objects.push((origin.clone(), item)),
            Ok(()) => {}
            Err(reason) => {
                let meta = &item["metadata"];
                let name =
                    format!("{}/{}", meta["namespace"].as_str().unwrap_or(""), meta["name"].as_str().unwrap_or(""));
                error = Some(SnapshotError::Object { path: origin.clone(), kind, name, reason });
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    let mut inv = set.into_inventory(&format!("snapshot {origin}"), opts)?;
    inv.pods.extend(pods);
    inv.pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    inv.pdbs = pdbs;
    inv.pdbs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    inv.workloads = workloads;
    inv.workloads.sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    Ok(inv)
}

/// Feed each object of the fleet to `sink` in `kubectl get` order (nodes, pods, PDBs,
/// Deployments, ReplicaSets, StatefulSets, DaemonSets, PersistentVolumeClaims, PersistentVolumes;
/// each sorted by namespace and name),
/// without holding the whole List in memory.
pub fn generate_items(spec: &FleetSpec, mut sink: impl FnMut(Value)) {
    let fleet = Placer::new(spec).build();
    fleet.render(&mut sink);
}

/// Write the fleet as [`to_pretty_json`] of [`generate`] would, object by object: the List
/// never exists whole, so memory stays flat however large the fleet.
pub fn write_pretty_json(spec: &FleetSpec, out: &mut impl std::io::Write) -> std::io::Result<()> {
    out.write_all(b"{\n  \"apiVersion\": \"v1\",\n  \"items\": [")?;
    let mut first = true;
    let mut failed = None;
    let mut text = Vec::new();
    generate_items(spec, |item| {
        if failed.is_some() {
            return;
        }
        text.clear();
        serde_json::to_writer_pretty(&mut text, &item).expect("JSON values always serialise");
        let written = write_indented(out, if first { b"\n" } else { b",\n" }, &text);
        first = false;
        if let Err(e) = written {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    out.write_all(if first { b"]" } else { b"\n  ]" })?;
    out.write_all(b",\n  \"kind\": \"List\",\n  \"metadata\": {\n    \"resourceVersion\": \"\"\n  }\n}\n")
}

/// An item of the List at its depth: every line of its pretty text indented by four spaces (a
/// JSON string never holds a raw newline, so every newline in the text is between tokens).
fn write_indented(out: &mut impl std::io::Write, separator: &[u8], text: &[u8]) -> std::io::Result<()> {
    out.write_all(separator)?;
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        out.write_all(if i == 0 { b"    " } else { b"\n    " })?;
        out.write_all(line)?;
    }
    Ok(())
}

/// The text written to `examples/*.json`: pretty JSON with a final newline.
pub fn to_pretty_json(list: &Value) -> String {
    let mut text = serde_json::to_string_pretty(list).expect("JSON values always serialise");
    text.push('\n');
    text
}

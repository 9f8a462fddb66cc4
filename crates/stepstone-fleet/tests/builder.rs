//! The test-fleet builder writes objects that the snapshot reader accepts as they were meant.

use serde_json::json;
use stepstone_core::inventory::{NodeRole, WorkloadKind};
use stepstone_core::snapshot::{SnapshotOptions, load_str};
use stepstone_fleet::Fleet;

#[test]
fn a_built_fleet_loads_with_its_workers_workloads_and_budgets() {
    let list = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .deployment("prod", "web", 3, json!([{"name": "scratch", "emptyDir": {}}]))
        .daemonset("node-exporter")
        .mirror_pod("etcd", "w1")
        .pdb("prod", "web", "web", 2)
        .pdb_max_unavailable("prod", "web-max", "web", 1)
        .build();
    let inv = load_str("built", &list.to_string(), &SnapshotOptions::default()).expect("a built fleet loads");
    let workers: Vec<&str> = inv.nodes.iter().filter(|n| n.role == NodeRole::Worker).map(|n| n.name.as_str()).collect();
    assert_eq!(workers, ["w1", "w2"]);
    let kinds: Vec<(WorkloadKind, &str)> = inv.workloads.iter().map(|w| (w.kind, w.name.as_str())).collect();
    assert_eq!(kinds, [(WorkloadKind::Deployment, "web"), (WorkloadKind::DaemonSet, "node-exporter")]);
    let budgets: Vec<String> = inv.pdbs.iter().map(|b| b.key().to_string()).collect();
    assert_eq!(budgets, ["prod/web", "prod/web-max"]);
    let mirror = inv.pods.iter().find(|p| p.name == "etcd-w1").expect("the mirror pod");
    assert_eq!(mirror.node_name.as_deref(), Some("w1"));
}

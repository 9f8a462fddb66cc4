//! Live collection with credentials that may not read everything: a cluster role without
//! PersistentVolumes and their claims still gets a plan, with a warning that names the missing
//! permission and what goes unchecked; a missing permission the plan cannot do without fails.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{TestLab, document, stderr, wait_for};
use serde_json::Value;
use stepstone_fleet::Fleet;
use stepstone_lab::FaultConfig;

/// The subjects of the blockers `stepstone blockers -o json` reports with `code`.
fn blockers(doc: &Value, code: &str) -> BTreeSet<String> {
    doc["blockers"]
        .as_array()
        .expect("a list of blockers")
        .iter()
        .filter(|f| f["code"] == code)
        .map(|f| f["subject"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Three workers and a two-member database whose claims are bound to local volumes on w1 and w2,
/// with no node affinity of its own: only the volumes say where its data lives.
fn lab() -> TestLab {
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .local_volume_statefulset("data", "db", &["w1", "w2"])
        .build();
    let t = TestLab::start(fleet, 50.0);
    wait_for(Duration::from_secs(30), "the claims to bind and the pods to run", || {
        let bound = t.lab.list("persistentvolumeclaims", Some("data"));
        let running = t.lab.list("pods", Some("data"));
        bound.len() == 2
            && bound.iter().all(|c| c.pointer("/status/phase") == Some(&Value::from("Bound")))
            && running.len() == 2
            && running.iter().all(|p| p.pointer("/status/phase") == Some(&Value::from("Running")))
    });
    t
}

#[test]
fn without_volume_permissions_the_plan_warns_and_leaves_out_local_storage_pins() {
    let t = lab();
    // With every permission: each member is pinned to its volume's node.
    let out = t.run(&["blockers", "-o", "json"]);
    let pinned = blockers(&document(&out), "blocker.local-storage");
    assert_eq!(pinned, ["data/db-0", "data/db-1"].map(String::from).into(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("may not list"), "{}", stderr(&out));

    let forbidden = ["persistentvolumes", "persistentvolumeclaims"].map(String::from).into();
    t.lab.set_faults(FaultConfig { forbidden, ..FaultConfig::default() }).expect("a valid fault");
    // The real kubectl sees what the credentials see.
    let denied = t.kubectl(&["get", "pv"]);
    assert!(!denied.status.success() && stderr(&denied).contains("forbidden"), "{}", stderr(&denied));

    let out = t.run(&["blockers", "-o", "json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "no blocker the plan can see: {err}");
    for want in [
        "may not list persistentvolumes",
        "may not list persistentvolumeclaims",
        "403 Forbidden",
        "local-storage pins",
        "kubectl auth can-i list persistentvolumes -A",
    ] {
        assert!(err.contains(want), "the warning lacks {want:?}:\n{err}");
    }
    assert!(blockers(&document(&out), "blocker.local-storage").is_empty(), "claims are unknown now");

    // `stepstone snapshot` writes what it may read, with the same warning.
    let file = t.path("cluster.json");
    let out = t.run(&["snapshot", "-o", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("may not list persistentvolumes"), "{}", stderr(&out));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let kinds: BTreeSet<&str> =
        written["items"].as_array().unwrap().iter().filter_map(|i| i["kind"].as_str()).collect();
    assert!(kinds.contains("Node") && kinds.contains("StatefulSet"), "{kinds:?}");
    assert!(!kinds.contains("PersistentVolume") && !kinds.contains("PersistentVolumeClaim"), "{kinds:?}");

    // Nodes cannot be done without: a refusal there is an error that names the fix.
    let forbidden = ["nodes".to_string()].into();
    t.lab.set_faults(FaultConfig { forbidden, ..FaultConfig::default() }).unwrap();
    let out = t.run(&["blockers"]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("listing nodes") && err.contains("kubectl auth can-i list nodes"), "{err}");
}

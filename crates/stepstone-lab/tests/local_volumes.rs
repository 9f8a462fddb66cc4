//! Local PersistentVolumes pin their pods, driven with the real `kubectl`: a StatefulSet's
//! controller creates the claims of its `volumeClaimTemplates`, the binder binds each to the
//! local volume reserved for it, and a pod evicted from its volume's node stays Pending with the
//! scheduler's `volume node affinity conflict` until that node takes pods again, then runs there.

mod common;

use common::*;
use serde_json::Value;
use stepstone_fleet::Fleet;

fn fleet() -> Value {
    Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .local_volume_statefulset("data", "db", &["w1", "w2"])
        .build()
}

fn pod(kc: &std::path::Path, name: &str) -> Value {
    serde_json::from_str(&kubectl_ok(kc, &["-n", "data", "get", "pod", name, "-o", "json"])).unwrap()
}

fn running_on(kc: &std::path::Path, name: &str, node: &str) -> bool {
    let out = kubectl(kc, &["-n", "data", "get", "pod", name, "-o", "json"]);
    out.status.success() && {
        let p: Value = serde_json::from_slice(&out.stdout).unwrap();
        p["status"]["phase"] == "Running"
            && p["spec"]["nodeName"] == node
            && p["metadata"]["deletionTimestamp"].is_null()
    }
}

/// The scheduler's words for db-0 once w1 is cordoned: w2 and w3 fail its volume's node affinity.
const VOLUME_CONFLICT: &str =
    "0/3 nodes are available: 2 node(s) had volume node affinity conflict, 1 node(s) were unschedulable.";

/// `kubectl drain w1`, then db-0's replacement is Pending: its volume's node is cordoned, every
/// other node fails the volume's node affinity, and the scheduler's event says so in its words.
fn drain_w1_and_see_db0_pending(kc: &std::path::Path) -> Value {
    let drained = kubectl_ok(kc, &["drain", "w1", "--ignore-daemonsets", "--timeout=120s"]);
    assert!(drained.contains("pod/db-0 evicted"), "{drained}");
    wait_for(60, "db-0 recreated and reported unschedulable", || {
        let out = kubectl(kc, &["-n", "data", "get", "events", "--field-selector", "involvedObject.name=db-0"]);
        String::from_utf8_lossy(&out.stdout).contains(VOLUME_CONFLICT)
    });
    let p = pod(kc, "db-0");
    assert_eq!(p["status"]["phase"], "Pending", "{p}");
    assert!(p["spec"]["nodeName"].is_null(), "{p}");
    p
}

#[test]
fn an_evicted_pod_waits_for_its_local_volume_node() {
    let (_lab, _dir, kc) = start_lab(fleet(), 50.0);
    wait_for(60, "db-0 Running on w1 and db-1 on w2", || {
        running_on(&kc, "db-0", "w1") && running_on(&kc, "db-1", "w2")
    });

    // The claims the controller created are bound to the volumes reserved for them.
    let out = kubectl_ok(&kc, &["get", "pv"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ],
        "{out}"
    );
    let row = out.lines().find(|l| l.starts_with("local-db-0 ")).unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..7],
        ["local-db-0", "10Gi", "RWO", "Retain", "Bound", "data/data-db-0", "local-storage"],
        "{out}"
    );
    let out = kubectl_ok(&kc, &["-n", "data", "get", "pvc"]);
    let row = out.lines().find(|l| l.starts_with("data-db-1 ")).unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..6], ["data-db-1", "Bound", "local-db-1", "10Gi", "RWO", "local-storage"], "{out}");
    let both = kubectl_ok(&kc, &["get", "pv,pvc", "-A", "-o", "name"]);
    assert!(both.contains("persistentvolume/local-db-0") && both.contains("persistentvolumeclaim/data-db-0"), "{both}");

    // Drained, w1 takes no pods: db-0's replacement has nowhere to go.
    let p = drain_w1_and_see_db0_pending(&kc);
    let scheduled = p["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PodScheduled").unwrap();
    assert_eq!(scheduled["reason"], "Unschedulable");
    assert_eq!(scheduled["message"], VOLUME_CONFLICT);
    let listed = kubectl_ok(&kc, &["-n", "data", "get", "pod", "db-0"]);
    assert!(listed.lines().nth(1).is_some_and(|l| l.contains("Pending")), "{listed}");
    assert_eq!(pod(&kc, "db-0")["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "data-db-0");

    // Back in service, w1 gets its pod back.
    kubectl_ok(&kc, &["uncordon", "w1"]);
    wait_for(60, "db-0 Running on w1 again", || running_on(&kc, "db-0", "w1"));
    assert!(running_on(&kc, "db-1", "w2"));
}

#[test]
fn a_claim_without_a_volume_keeps_its_pod_pending() {
    let mut fleet = fleet();
    // Only db-0's volume exists: db-1's claim has nothing to bind to and no provisioner makes one.
    fleet["items"].as_array_mut().unwrap().retain(|i| i["metadata"]["name"] != "local-db-1");
    let (_lab, _dir, kc) = start_lab(fleet, 50.0);
    wait_for(60, "db-0 Running on w1", || running_on(&kc, "db-0", "w1"));
    let expected = "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.";
    wait_for(60, "db-1 reported unschedulable", || {
        let out = kubectl(&kc, &["-n", "data", "get", "events", "--field-selector", "involvedObject.name=db-1"]);
        String::from_utf8_lossy(&out.stdout).contains(expected)
    });
    let claim: Value =
        serde_json::from_str(&kubectl_ok(&kc, &["-n", "data", "get", "pvc", "data-db-1", "-o", "json"])).unwrap();
    assert_eq!(claim["status"]["phase"], "Pending", "{claim}");
    assert_eq!(pod(&kc, "db-1")["status"]["phase"], "Pending");
}

/// OpenEBS LVM volumes select `openebs.io/nodename` (the label the kubelet puts on a node for the
/// CSI driver's topology key), not the hostname: the planner, reading a `kubectl get` snapshot
/// of the lab, says db-0 is pinned to w1 by its volume, and the lab keeps db-0 Pending once w1
/// is drained, for the same reason.
#[test]
fn the_plan_and_the_lab_agree_on_a_pod_pinned_by_its_volume() {
    use stepstone_core::drain::{BlockerKind, DrainOptions, classify_node};
    use stepstone_core::object_key::ObjectKey;
    use stepstone_core::snapshot::{SnapshotOptions, load_str};

    let key = "openebs.io/nodename";
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .label("w1", key, "w1")
        .label("w2", key, "w2")
        .label("w3", key, "w3")
        .local_volume_statefulset_on("data", "db", &["w1", "w2"], key)
        .build();
    let (_lab, _dir, kc) = start_lab(fleet, 50.0);
    wait_for(60, "db-0 Running on w1 and db-1 on w2", || {
        running_on(&kc, "db-0", "w1") && running_on(&kc, "db-1", "w2")
    });

    let snapshot = kubectl_ok(&kc, &["get", "nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc", "-A", "-o", "json"]);
    let inv = load_str("lab.json", &snapshot, &SnapshotOptions::default()).unwrap();
    assert_eq!(
        inv.claim_nodes
            .get(&ObjectKey::new("data", "data-db-0"))
            .map(|n| n.iter().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["w1"])
    );
    let opts = DrainOptions::default();
    let w1 = classify_node("w1", &inv, &opts);
    let blocker = w1.blockers.iter().find(|b| b.pod == "data/db-0").unwrap_or_else(|| panic!("{:?}", w1.blockers));
    assert_eq!(blocker.kind, BlockerKind::LocalStorage);
    assert!(blocker.reason.contains("data-db-0") && blocker.reason.contains("stays Pending until w1"), "{blocker:?}");
    assert!(classify_node("w3", &inv, &opts).blockers.is_empty());
    // Accepted, the plan evicts it; the lab shows what that means: it waits for w1.
    let accepted = DrainOptions { allow_local_storage_loss: true, ..Default::default() };
    assert!(classify_node("w1", &inv, &accepted).evict.iter().any(|e| e.pod.name == "db-0"));

    drain_w1_and_see_db0_pending(&kc);
}

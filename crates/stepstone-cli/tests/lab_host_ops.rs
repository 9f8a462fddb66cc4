//! `stepstone lab node NODE ...` host operations an operator's fix needs, driven with the
//! `stepstone` binary (and the real `kubectl` where the cluster must see the change): an etcd
//! snapshot on a control-plane node that the rollout's snapshot gate accepts, a reboot, an OS
//! refresh that moves a cgroup v1 node to cgroup v2 so a 1.35 kubelet starts, a kernel change,
//! the kubelet's journal an operator reads when the kubelet does not come back, and the version
//! skew policy on nodes (a kubelet newer than the apiserver warns; kubeadm refuses `upgrade
//! node` ahead of the control plane and `upgrade apply` past kubelets more than 3 minors behind).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde_json::Value;
use stepstone_host::etcd::{SnapshotMetadata, freshness_gate};

mod common;
use common::{TestLab, failed, json, ok};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_etcd_snapshot_on_a_control_plane_node_passes_the_freshness_gate_and_holds_the_lab_state() {
    let r = TestLab::small(100.0, |_| {});
    ok(&r.kubectl(&["create", "configmap", "before-snapshot", "-n", "default", "--from-literal=a=1"]));
    let backups = r.dir.path().join("backups");
    let out = r.run(&["lab", "node", "cp-01", "etcd", "snapshot", "--dir", backups.to_str().unwrap(), "-o", "json"]);
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    ok(&r.kubectl(&["create", "configmap", "after-snapshot", "-n", "default", "--from-literal=a=1"]));

    assert_eq!(mode(&backups), 0o700, "the directory the lab created is private");
    let snapshot = PathBuf::from(report["path"].as_str().unwrap());
    let metadata_path = SnapshotMetadata::path_for(&snapshot);
    assert_eq!(metadata_path, PathBuf::from(report["metadataPath"].as_str().unwrap()));
    assert_eq!((mode(&snapshot), mode(&metadata_path)), (0o600, 0o600));

    // The metadata is what `stepstone etcd backup` writes, and the gate takes it.
    let meta = stepstone_host::etcd::read_metadata(&metadata_path).expect("stepstone-host reads the lab's metadata");
    assert_eq!(meta.file, snapshot.file_name().unwrap().to_str().unwrap());
    assert!(meta.file.starts_with("etcd-kubernetes-") && meta.file.ends_with(".db"), "{}", meta.file);
    let bytes = std::fs::read(&snapshot).unwrap();
    assert_eq!(meta.size_bytes, bytes.len() as u64);
    assert_eq!(meta.sha256, stepstone_host::etcd::sha256_file(&snapshot).unwrap());
    let now = jiff::Timestamp::now();
    freshness_gate(&meta, now, Duration::from_secs(3600)).expect("a snapshot taken now is fresh");
    let later = now + jiff::SignedDuration::from_hours(2);
    assert!(freshness_gate(&meta, later, Duration::from_secs(3600)).is_err(), "two hours later it is too old");

    // The file holds the lab's objects at that moment: what a restore would bring back.
    let state: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(state["revision"].as_i64(), Some(meta.revision));
    let items = state["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, meta.total_keys);
    let has = |kind: &str, name: &str| items.iter().any(|o| o["kind"] == kind && o["metadata"]["name"] == name);
    assert!(has("Node", "cp-01") && has("ConfigMap", "before-snapshot"));
    assert!(!has("ConfigMap", "after-snapshot"), "objects created after the snapshot are not in it");
    let events = ok(&r.kubectl(&["get", "events", "-A", "--field-selector", "reason=EtcdSnapshotSaved"]));
    assert!(events.contains("cp-01") || events.contains("EtcdSnapshotSaved"), "{events}");

    // A worker runs no etcd member: refused as the operation, exit 1.
    let (code, err) =
        failed(&r.run(&["lab", "node", "r650-01", "etcd", "snapshot", "--dir", backups.to_str().unwrap()]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("r650-01: no etcd member runs on this node"), "{err}");

    // A directory others can read is bad input, exit 2, and nothing is written there.
    let open = r.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "etcd", "snapshot", "--dir", open.to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has mode 755") && err.contains("chmod 700"), "{err}");
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
    drop(r.lab);
}

fn set_cgroup_v1(fleet: &mut Value, node: &str) {
    let items = fleet["items"].as_array_mut().unwrap();
    let n = items.iter_mut().find(|i| i["kind"] == "Node" && i["metadata"]["name"] == node).unwrap();
    n["metadata"]["labels"]["stepstone.io/cgroup-version"] = "v1".into();
}

#[test]
fn an_os_refresh_to_cgroup_v2_lets_a_1_35_kubelet_start_and_the_journal_says_why_it_did_not() {
    let r = TestLab::small(100.0, |fleet| set_cgroup_v1(fleet, "r650-03"));
    let node = |args: &[&str]| {
        let mut all = vec!["lab", "node", "r650-03"];
        all.extend_from_slice(args);
        r.run(&all)
    };
    ok(&node(&["repo", "v1.35"]));
    ok(&node(&["install", "kubelet=1.35.0-1.1"]));
    let (code, err) = failed(&node(&["restart-kubelet", "--wait", "--timeout", "30"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("logs kubelet"), "the failure says where to read more: {err}");

    // What the operator reads: upstream's kubelet error about cgroup v1, and systemd's verdict.
    let journal = ok(&node(&["logs", "kubelet"]));
    assert!(journal.contains("kubelet.service: Main process exited, code=exited, status=1/FAILURE"), "{journal}");
    let failure = journal.lines().find(|l| l.contains("\"command failed\"")).expect("the kubelet's error line");
    assert!(
        failure.contains("E") && failure.contains("run.go:72] \"command failed\" err=\"failed to run Kubelet: kubelet is configured to not run on a host using cgroup v1"),
        "{failure}"
    );
    assert!(failure.contains(" r650-03 kubelet["), "journal lines name the host and the unit: {failure}");
    let tail = json(&node(&["logs", "kubelet", "--tail", "2", "-o", "json"]));
    assert_eq!(tail["lines"].as_array().unwrap().len(), 2, "{tail}");

    // The fix: an OS refresh that boots with cgroup v2 and a newer kernel.
    let doc = json(&node(&[
        "os",
        "refresh",
        "--cgroup",
        "v2",
        "--kernel",
        "6.1.0-28-amd64",
        "--wait",
        "--timeout",
        "60",
        "-o",
        "json",
    ]));
    assert_eq!(doc["kind"], "LabOsRefresh");
    assert_eq!(
        (doc["facts"]["ready"].as_bool(), doc["facts"]["kubeletVersion"].as_str()),
        (Some(true), Some("v1.35.0"))
    );
    let labels = ok(&r.kubectl(
        &[
            "get",
            "node",
            "r650-03",
            "-o",
            "jsonpath={.metadata.labels.stepstone\\.io/cgroup-version} {.status.nodeInfo.kernelVersion} {.status.nodeInfo.kubeletVersion}",
        ],
    ));
    assert_eq!(labels, "v2 6.1.0-28-amd64 v1.35.0");
    let journal = ok(&node(&["logs", "kubelet"]));
    let boot = journal.lines().position(|l| l.starts_with("-- Boot ")).expect("a boot marker");
    let after: Vec<&str> = journal.lines().skip(boot).collect();
    assert!(after.iter().any(|l| l.contains("\"Kubelet version\" kubeletVersion=\"v1.35.0\"")), "{journal}");
    assert!(after.iter().any(|l| l.contains("cgroupVersion=\"v2\"")), "{journal}");
    let events = ok(&r.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=r650-03,reason=Rebooted",
        "-o",
        "name",
    ]));
    assert!(!events.trim().is_empty(), "the kubelet reports the reboot as upstream does");

    // A plain reboot of a healthy node: silent, then back; bad input changes nothing.
    let doc = json(&r.run(&["lab", "node", "r650-04", "reboot", "-o", "json"]));
    assert_eq!(doc["facts"]["kubelet"]["state"], "rebooting", "{doc}");
    let doc = json(&r.run(&["lab", "node", "r650-04", "reboot", "--wait", "-o", "json"]));
    assert_eq!(doc["facts"]["ready"], true, "{doc}");
    let (code, err) = failed(&node(&["os", "refresh", "--cgroup", "v3"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cgroup version \"v3\""), "{err}");
    let (code, err) = failed(&r.run(&["lab", "node", "r999", "logs", "kubelet"]));
    assert_eq!((code, err.contains("node \"r999\" not found")), (2, true), "{err}");
}

#[test]
fn nodes_enforce_the_version_skew_policy() {
    let r = TestLab::small(100.0, |fleet| {
        let items = fleet["items"].as_array_mut().unwrap();
        let n = items.iter_mut().find(|i| i["kind"] == "Node" && i["metadata"]["name"] == "r660-06").unwrap();
        n["status"]["nodeInfo"]["kubeletVersion"] = "v1.31.14".into();
    });
    // A 1.35 kubelet on a 1.34 control plane runs, and says it is unsupported.
    ok(&r.run(&["lab", "node", "r650-05", "repo", "v1.35"]));
    ok(&r.run(&["lab", "node", "r650-05", "install", "kubelet=1.35.0-1.1"]));
    ok(&r.run(&["lab", "node", "r650-05", "restart-kubelet", "--wait"]));
    let journal = ok(&r.run(&["lab", "node", "r650-05", "logs", "kubelet"]));
    assert!(
        journal.lines().any(|l| l.contains("\"Unsupported version skew\" kubeletVersion=\"v1.35.0\" apiserverVersion=\"v1.34.6\"")),
        "{journal}"
    );
    let events = ok(&r.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=r650-05,reason=KubeletVersionSkew",
        "-o",
        "jsonpath={.items[*].message}",
    ]));
    assert!(events.contains("newer than kube-apiserver v1.34.6"), "{events}");

    // kubeadm does not run `upgrade node` ahead of the control plane.
    let before = ok(&r.run(&["lab", "node", "r650-06", "kubeadm", "version"]));
    assert!(
        before.starts_with("kubeadm version: &version.Info{Major:\"1\", Minor:\"34\", GitVersion:\"v1.34.6\""),
        "{before}"
    );
    ok(&r.run(&["lab", "node", "r650-06", "repo", "v1.35"]));
    ok(&r.run(&["lab", "node", "r650-06", "install", "kubeadm=1.35.0-1.1"]));
    let after = json(&r.run(&["lab", "node", "r650-06", "kubeadm", "version", "-o", "json"]));
    assert_eq!(after["version"], "v1.35.0", "{after}");
    let (code, err) = failed(&r.run(&["lab", "node", "r650-06", "kubeadm", "upgrade", "node"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the control plane has not been upgraded yet"), "{err}");

    // A kubelet four minors behind the target stops `kubeadm upgrade apply`, as kubeadm's policy does.
    ok(&r.run(&["lab", "node", "cp-01", "repo", "v1.35"]));
    ok(&r.run(&["lab", "node", "cp-01", "install", "kubeadm=1.35.0-1.1"]));
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "v1.35.0", "--dry-run"]));
    assert_eq!(code, 1, "a dry run runs the same checks: {err}");
    assert!(err.contains("too old that have these versions [v1.31.14]"), "{err}");
    let (code, err) = failed(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "v1.35.0", "-y"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("There are kubelets in this cluster that are too old that have these versions [v1.31.14]"),
        "{err}"
    );
    let version: Value = serde_json::from_str(&ok(&r.kubectl(&["version", "-o", "json"]))).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.34.6", "a refused apply changes nothing");

    // With that kubelet upgraded, a dry run passes, says what would change, and changes nothing.
    ok(&r.run(&["lab", "node", "r660-06", "repo", "v1.34"]));
    ok(&r.run(&["lab", "node", "r660-06", "install", "kubelet=1.34.6-1.1"]));
    ok(&r.run(&["lab", "node", "r660-06", "restart-kubelet", "--wait"]));
    let dry =
        json(&r.run(&["lab", "node", "cp-01", "kubeadm", "upgrade", "apply", "v1.35.0", "--dry-run", "-o", "json"]));
    assert!(dry["message"].as_str().unwrap().contains("[dryrun] Finished dryrunning successfully!"), "{dry}");
    assert!(dry["changed"].as_array().unwrap().iter().any(|c| c == "kube-apiserver: v1.34.6 -> v1.35.0"), "{dry}");
    let version: Value = serde_json::from_str(&ok(&r.kubectl(&["version", "-o", "json"]))).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.34.6", "a refused apply changes nothing");
}

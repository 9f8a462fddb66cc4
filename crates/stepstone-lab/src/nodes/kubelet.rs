//! The simulated kubelet of each node: restarts (`systemctl restart kubelet`: NotReady, then back
//! with the installed kubelet's version, or stuck when a kubelet >= 1.35 meets cgroup v1), the
//! Ready condition and taints it posts, and what the node lifecycle controller reads of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::inventory::CGROUP_LABEL;
use stepstone_core::version::KubeVersion;

use super::{
    CGROUP_V1_ERROR, FAIL_CGROUP_V1_ANNOTATION, KUBELET_ANNOTATION, KubeletState, LabNodes, NodeFacts, NodeOpError,
    annotation, cluster_version, journal, record_event, set_pod_condition, version_of_package,
};
use crate::clock;
use crate::resources::{NODES, PODS};
use crate::state::Shared;
use crate::store::{self, Part, Store};
use crate::sync::lock;

/// The version a kubelet starting on node `n` runs: the installed package's, else (a node loaded
/// without package annotations) the version the node reports.
pub(super) fn starting_version(n: &Value) -> Result<String, NodeOpError> {
    Ok(annotation(n, KUBELET_ANNOTATION)
        .map(version_of_package)
        .transpose()?
        .map(|v| v.canonical())
        .or_else(|| n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).map(String::from))
        .unwrap_or_default())
}

impl LabNodes {
    /// `systemctl restart kubelet`: NotReady now, back after the restart time with the
    /// installed kubelet's version, unless the kubelet refuses to start (cgroup v1 with kubelet
    /// >= 1.35 and `failCgroupV1` on) or a fault keeps it down.
    pub fn restart_kubelet(&self, node: &str) -> Result<NodeFacts, NodeOpError> {
        let now = self.shared.now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        let version = starting_version(&n)?;
        let never = lock(&self.shared.faults).never_return.contains(node);
        let until =
            (!never).then(|| clock::format_precise(self.shared.after(now, self.shared.timing.kubelet_restart_seconds)));
        let previous = lock(&self.shared.kubelets)
            .insert(node.to_string(), KubeletState::Restarting { until, version: version.clone() });
        if previous.is_none_or(|s| s == KubeletState::Running) {
            journal::kubelet_stopping(&self.shared, node, now);
        }
        let mut next = (*n).clone();
        set_ready(&mut next, "False", "KubeletNotReady", "kubelet is restarting", now);
        let updated = store.update(NODES, next, Part::All, false).expect("node exists");
        record_event(&mut store, now, &updated, "Normal", "Starting", "Starting kubelet.", "kubelet");
        drop(store);
        self.shared.wake.notify_one();
        self.facts(node)
    }
}

fn set_ready(node: &mut Value, status: &str, reason: &str, message: &str, now: Timestamp) {
    let t = clock::format(now);
    if !node.get("status").is_some_and(Value::is_object) {
        node["status"] = json!({});
    }
    let conds = node["status"].as_object_mut().expect("object").entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conds.as_array_mut() else { return };
    match list.iter_mut().find(|c| c["type"] == "Ready") {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(t);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            c["lastHeartbeatTime"] = json!(t);
        }
        None => list.push(json!({"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": t, "lastTransitionTime": t})),
    }
    // TaintNodesByCondition: the node lifecycle controller keeps NotReady nodes out of scheduling.
    let taint_key = match status {
        "True" => None,
        "False" => Some("node.kubernetes.io/not-ready"),
        _ => Some("node.kubernetes.io/unreachable"),
    };
    if !node.get("spec").is_some_and(Value::is_object) {
        node["spec"] = json!({});
    }
    let spec = node["spec"].as_object_mut().expect("object");
    let mut taints: Vec<Value> = spec.get("taints").and_then(Value::as_array).cloned().unwrap_or_default();
    taints.retain(|t| t["key"] != "node.kubernetes.io/not-ready" && t["key"] != "node.kubernetes.io/unreachable");
    if let Some(k) = taint_key {
        taints.push(json!({"key": k, "effect": "NoSchedule", "timeAdded": t}));
    }
    if taints.is_empty() {
        spec.remove("taints");
    } else {
        spec.insert("taints".into(), Value::Array(taints));
    }
}

/// Restart a pod's containers now: not ready until the kubelet simulation sees the start
/// delay pass; crash-looping ones wait in back-off instead.
/// A pod whose volumes do not mount: every container waits in ContainerCreating and the pod is
/// Pending, as the kubelet shows it while `MountVolume.SetUp` keeps failing.
pub fn hold_in_container_creating(pod: &mut Value, now: Timestamp) {
    let statuses: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}})
        })
        .collect();
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    pod["status"]["phase"] = json!("Pending");
    pod["status"]["containerStatuses"] = json!(statuses);
    set_pod_condition(pod, "Ready", false, now);
    set_pod_condition(pod, "ContainersReady", false, now);
}

pub fn restart_containers(pod: &mut Value, now: Timestamp, crash: bool) {
    let t = clock::format(now);
    let images = store::containers(pod);
    let previous: BTreeMap<String, i64> = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["restartCount"].as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let statuses: Vec<Value> = images
        .iter()
        .map(|(name, image)| {
            let restarts = previous.get(name).map_or(0, |r| r + 1);
            let state = if crash {
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off restarting failed container {name}")}})
            } else {
                json!({"running": {"startedAt": t}})
            };
            json!({"name": name, "image": image, "imageID": "", "ready": false, "started": !crash,
                "restartCount": restarts, "state": state,
                "lastState": {"terminated": {"exitCode": if crash {1} else {0}, "reason": if crash {"Error"} else {"Completed"}, "finishedAt": t}}})
        })
        .collect();
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    pod["status"]["containerStatuses"] = json!(statuses);
    set_pod_condition(pod, "Ready", false, now);
    set_pod_condition(pod, "ContainersReady", false, now);
}

/// Complete kubelet restarts and reboots that are due: the node reports the new version and
/// Ready, or stays NotReady with an error Event. Returns the earliest pending end.
pub(crate) fn finish_restarts(shared: &Shared, store: &mut Store, now: Timestamp) -> Option<Timestamp> {
    let mut next_due: Option<Timestamp> = None;
    let due: Vec<(String, String, bool)> = {
        let kubelets = lock(&shared.kubelets);
        kubelets
            .iter()
            .filter_map(|(node, st)| {
                let (until, version, rebooted) = match st {
                    KubeletState::Restarting { until: Some(u), version } => (u, version, false),
                    KubeletState::Rebooting { until: Some(u), version } => (u, version, true),
                    _ => return None,
                };
                let at = clock::parse(until)?;
                if at <= now {
                    Some((node.clone(), version.clone(), rebooted))
                } else {
                    next_due = Some(next_due.map_or(at, |d: Timestamp| d.min(at)));
                    None
                }
            })
            .collect()
    };
    for (node, version, rebooted) in due {
        let Some(n) = store.get(NODES, "", &node) else {
            lock(&shared.kubelets).remove(&node);
            continue;
        };
        let cgroup_v1 = store::labels_of(&n).get(CGROUP_LABEL).map(String::as_str) == Some("v1");
        let opted_out = annotation(&n, FAIL_CGROUP_V1_ANNOTATION) == Some("false");
        let new_minor = version.parse::<KubeVersion>().ok().map(|v| v.minor());
        let refuses =
            cgroup_v1 && !opted_out && new_minor.is_some_and(|m| m >= stepstone_core::version::Minor::new(1, 35));
        let mut next = (*n).clone();
        if rebooted {
            journal::booted(shared, &node, now);
        }
        if refuses {
            journal::kubelet_failed(shared, &node, now, &version, CGROUP_V1_ERROR);
            // The lab reports the refusal at once (Ready=Unknown, the `unreachable` NoSchedule
            // taint); the node lifecycle controller adds the NoExecute taint once the grace period
            // has passed without a status from this node.
            lock(&shared.kubelets).insert(node.clone(), KubeletState::Failed { reason: CGROUP_V1_ERROR.into() });
            set_ready(&mut next, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", now);
            let updated = store.update(NODES, next, Part::All, false).expect("node exists");
            record_event(
                store,
                now,
                &updated,
                "Warning",
                "KubeletFailed",
                &format!("failed to run Kubelet: {CGROUP_V1_ERROR}"),
                "kubelet",
            );
            continue;
        }
        let old_version =
            n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).unwrap_or("").to_string();
        lock(&shared.kubelets).insert(node.clone(), KubeletState::Running);
        let cgroup = store::labels_of(&n).get(CGROUP_LABEL).cloned().unwrap_or_else(|| "v2".into());
        journal::kubelet_started(shared, &node, now, &version, &cgroup);
        if !version.is_empty() {
            next["status"]["nodeInfo"]["kubeletVersion"] = json!(version);
        }
        set_ready(&mut next, "True", "KubeletReady", "kubelet is posting ready status", now);
        // The kubelet posts its pressure conditions again, replacing the controller's Unknown.
        if let Some(list) = next.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter(|c| c["status"] == "Unknown") {
                if let Some((_, reason, message)) = KUBELET_CONDITIONS.iter().find(|(k, _, _)| c["type"] == *k) {
                    c["status"] = json!("False");
                    c["reason"] = json!(reason);
                    c["message"] = json!(message);
                    c["lastHeartbeatTime"] = json!(clock::format(now));
                    c["lastTransitionTime"] = json!(clock::format(now));
                }
            }
        }
        let updated = store.update(NODES, next, Part::All, false).expect("node exists");
        record_event(
            store,
            now,
            &updated,
            "Normal",
            "NodeReady",
            &format!("Node {node} status is now: NodeReady"),
            "kubelet",
        );
        // The version skew policy: a kubelet must not be newer than kube-apiserver.
        let apiserver = super::apiserver_versions(store).into_iter().max().or_else(|| cluster_version(store));
        if let (Ok(kubelet), Some(apiserver)) = (version.parse::<KubeVersion>(), apiserver)
            && kubelet.minor() > apiserver.minor()
        {
            let message = format!(
                "kubelet {} is newer than kube-apiserver {}: the version skew policy does not support a kubelet newer than the API server; upgrade the control plane first",
                kubelet.canonical(),
                apiserver.canonical()
            );
            journal::kubelet_warning(
                shared,
                &node,
                now,
                "kubelet_node_status.go:128",
                &format!(
                    "\"Unsupported version skew\" kubeletVersion=\"{}\" apiserverVersion=\"{}\"",
                    kubelet.canonical(),
                    apiserver.canonical()
                ),
            );
            record_event(store, now, &updated, "Warning", "KubeletVersionSkew", &message, "kubelet");
        }
        if rebooted {
            record_event(
                store,
                now,
                &updated,
                "Warning",
                "Rebooted",
                &format!("Node {node} has been rebooted, boot id: {:016x}", now.as_nanosecond() as u64),
                "kubelet",
            );
        }
        // A new kubelet restarts every container on the node (the container spec hash changes),
        // and so does a reboot.
        if old_version != version || rebooted {
            let faults = lock(&shared.faults).clone();
            let pods: Vec<Arc<Value>> = store
                .pods()
                .filter(|(_, f)| *f.node == *node && &*f.phase == "Running")
                .map(|(stored, _)| stored.value())
                .collect();
            for p in pods {
                let mut np = (*p).clone();
                let (ns, name) = (store::namespace_of(&p), store::name_of(&p));
                if faults.stuck_creating(ns, name, &node) {
                    hold_in_container_creating(&mut np, now);
                } else {
                    restart_containers(&mut np, now, faults.crash_loops(ns, name, &node));
                }
                let _ = store.update(PODS, np, Part::All, false);
            }
        }
    }
    next_due
}

/// kube-controller-manager's `--node-monitor-grace-period` default for the cluster's version:
/// 40s before v1.32, 50s from v1.32 on (kubernetes/kubernetes#126287).
pub(crate) fn node_monitor_grace_seconds(store: &Store) -> f64 {
    match cluster_version(store) {
        Some(v) if v.minor() < stepstone_core::version::Minor::new(1, 32) => 40.0,
        _ => 50.0,
    }
}

/// When the node was last heard from: the Ready condition's `lastHeartbeatTime` (what the kubelet
/// last posted) or the node Lease's `renewTime`, whichever is newer.
pub(crate) fn last_heard(store: &Store, node: &Value) -> Option<Timestamp> {
    let posted = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["lastHeartbeatTime"].as_str())
        .and_then(clock::parse);
    let renewed = store
        .get(crate::resources::LEASES, "kube-node-lease", store::name_of(node))
        .and_then(|l| l.pointer("/spec/renewTime").and_then(Value::as_str).and_then(clock::parse));
    posted.into_iter().chain(renewed).max()
}

/// The conditions the kubelet posts, with what a healthy kubelet reports for the pressure ones.
const KUBELET_CONDITIONS: [(&str, &str, &str); 3] = [
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
];

/// The node lifecycle controller's verdict on a node whose kubelet stopped posting status
/// (upstream `tryUpdateNodeHealth`): Ready and the pressure conditions turn `Unknown` with reason
/// `NodeStatusUnknown`; `lastHeartbeatTime` keeps the kubelet's last post. Returns whether the Ready
/// condition changed.
pub(crate) fn mark_status_unknown(node: &mut Value, now: Timestamp) -> bool {
    let t = clock::format(now);
    if !node.get("status").is_some_and(Value::is_object) {
        node["status"] = json!({});
    }
    let conds = node["status"].as_object_mut().expect("object").entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conds.as_array_mut() else { return false };
    let mut ready_changed = false;
    let mut has_ready = false;
    for c in list.iter_mut() {
        let kubelets = c["type"] == "Ready" || KUBELET_CONDITIONS.iter().any(|(k, _, _)| c["type"] == *k);
        has_ready |= c["type"] == "Ready";
        if !kubelets || c["status"] == "Unknown" {
            continue;
        }
        ready_changed |= c["type"] == "Ready";
        c["status"] = json!("Unknown");
        c["reason"] = json!("NodeStatusUnknown");
        c["message"] = json!("Kubelet stopped posting node status.");
        c["lastTransitionTime"] = json!(t);
    }
    if !has_ready {
        list.push(json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.", "lastTransitionTime": t}));
        ready_changed = true;
    }
    ready_changed
}

/// Set the node lifecycle controller's taints (TaintNodesByCondition and TaintBasedEvictions):
/// `key` with `NoSchedule` and `NoExecute`, or none. The other of `not-ready` and `unreachable`
/// goes; a taint already there keeps its `timeAdded`, which taint-based eviction counts from.
/// Returns whether the taints changed.
pub(crate) fn set_lifecycle_taints(node: &mut Value, key: Option<&str>, now: Timestamp) -> bool {
    if !node.get("spec").is_some_and(Value::is_object) {
        node["spec"] = json!({});
    }
    let spec = node["spec"].as_object_mut().expect("object");
    let before: Vec<Value> = spec.get("taints").and_then(Value::as_array).cloned().unwrap_or_default();
    let lifecycle = |t: &Value| t["key"] == crate::api::TAINT_NOT_READY || t["key"] == crate::api::TAINT_UNREACHABLE;
    let mut taints: Vec<Value> = before.iter().filter(|t| !lifecycle(t)).cloned().collect();
    if let Some(k) = key {
        for effect in ["NoSchedule", "NoExecute"] {
            let kept = before.iter().find(|t| t["key"] == k && t["effect"] == effect).cloned();
            taints.push(kept.unwrap_or_else(|| json!({"key": k, "effect": effect, "timeAdded": clock::format(now)})));
        }
    }
    if taints == before {
        return false;
    }
    if taints.is_empty() {
        spec.remove("taints");
    } else {
        spec.insert("taints".into(), Value::Array(taints));
    }
    true
}

/// Nodes whose kubelet is not running (pods there do not progress).
pub(crate) fn kubelet_down(shared: &Shared) -> std::collections::BTreeSet<String> {
    lock(&shared.kubelets).iter().filter(|(_, s)| **s != KubeletState::Running).map(|(n, _)| n.clone()).collect()
}

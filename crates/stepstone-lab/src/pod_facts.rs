//! What the controllers' passes read of every pod, kept by the store beside the pod's JSON and
//! rebuilt on every write, so that a pass over thousands of pods reads these few fields instead
//! of parsing each pod's text. A controller parses a pod only when it acts on it.
//!
//! Every field is read the way the controllers read the object itself (the same defaults and
//! the same tolerance of odd values), so filtering on the facts skips exactly the pods the
//! controllers would have skipped. The facts also hold what `kubectl get pods` prints of a pod
//! ([`Printed`]), read the way upstream's printer reads it, so a Table of every pod parses none.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use crate::clock;
use crate::object::{controller_uid, labels_of, meta, meta_str};

/// The facts of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub uid: Box<str>,
    /// `spec.nodeName`, empty when unbound.
    pub node: Box<str>,
    /// `spec.nodeName` is missing or a string, so [`PodFacts::node`] is what a field selector
    /// reads.
    pub node_is_text: bool,
    /// `metadata.labels` (the string values), what label selectors read.
    pub labels: BTreeMap<String, String>,
    /// `status.phase`, `Pending` when missing.
    pub phase: Box<str>,
    /// A `Ready` condition with status `True`.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set (to anything).
    pub deleting: bool,
    /// The uid of the controller owner.
    pub controller_uid: Option<Box<str>>,
    /// The uid of each `ownerReferences` entry, `None` for one without a uid.
    pub owner_uids: Box<[Option<Box<str>>]>,
    /// `metadata.creationTimestamp` as written, empty when missing.
    pub created: Box<str>,
    /// `spec.schedulerName` is missing or `default-scheduler`.
    pub default_scheduler: bool,
    /// What the Table's cells show.
    pub printed: Printed,
}

/// What `kubectl get pods` shows of a pod besides its name, node and age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    /// READY: containers whose status says ready, of those in `spec.containers`.
    pub ready_containers: u32,
    pub containers: u32,
    /// STATUS: the phase, or a more telling reason (Terminating, CrashLoopBackOff, ...).
    pub status: Box<str>,
    /// RESTARTS: the containers' restarts, and when the last one that ended finished.
    pub restarts: i64,
    pub last_finished: Option<Timestamp>,
    /// `status.podIP`, empty when missing or not a string.
    pub ip: Box<str>,
    /// `status.nominatedNodeName`, the same way.
    pub nominated_node: Box<str>,
    /// READINESS GATES: the gates whose condition is True, of `spec.readinessGates`.
    pub ready_gates: u32,
    pub gates: u32,
}

impl Printed {
    /// As upstream's pod printer reads `pod`.
    pub fn of(pod: &Value) -> Printed {
        let statuses = container_statuses(pod);
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut restarts = 0i64;
        let mut last_finished: Option<Timestamp> = None;
        for c in statuses {
            restarts = restarts.saturating_add(c["restartCount"].as_i64().unwrap_or(0));
            if let Some(t) =
                c.pointer("/lastState/terminated/finishedAt").and_then(Value::as_str).and_then(clock::parse)
            {
                last_finished = Some(last_finished.map_or(t, |l| l.max(t)));
            }
        }
        let gates = pod.pointer("/spec/readinessGates").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let conditions = pod.pointer("/status/conditions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let text = |ptr: &str| -> Box<str> { pod.pointer(ptr).and_then(Value::as_str).unwrap_or("").into() };
        Printed {
            ready_containers: count(statuses.iter().filter(|c| c["ready"] == true).count()),
            containers: count(pod.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len)),
            status: pod_status(pod).into(),
            restarts,
            last_finished,
            ip: text("/status/podIP"),
            nominated_node: text("/status/nominatedNodeName"),
            ready_gates: count(
                gates
                    .iter()
                    .filter(|g| conditions.iter().any(|c| c["type"] == g["conditionType"] && c["status"] == "True"))
                    .count(),
            ),
            gates: count(gates.len()),
        }
    }
}

fn container_statuses(pod: &Value) -> &[Value] {
    pod.pointer("/status/containerStatuses").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The STATUS column: the phase, or the reason a container waits or ended (the last container
/// with one), Terminating once deleted, Unknown for a pod deleted on a lost node.
pub fn pod_status(pod: &Value) -> String {
    let text = |ptr: &str| pod.pointer(ptr).and_then(Value::as_str);
    let mut reason = text("/status/reason").or(text("/status/phase")).unwrap_or("Pending").to_string();
    for c in container_statuses(pod) {
        if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            reason = r.to_string();
        } else if let Some(r) = c.pointer("/state/terminated/reason").and_then(Value::as_str).filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        }
    }
    if meta(pod).get("deletionTimestamp").is_some() {
        reason = if text("/status/reason") == Some("NodeLost") { "Unknown".into() } else { "Terminating".into() };
    }
    reason
}

impl PodFacts {
    /// The facts of `pod`.
    pub fn of(pod: &Value) -> PodFacts {
        let boxed = |s: Option<&str>| -> Box<str> { s.unwrap_or("").into() };
        PodFacts {
            namespace: boxed(meta_str(pod, "namespace")),
            name: boxed(meta_str(pod, "name")),
            uid: boxed(meta_str(pod, "uid")),
            node: boxed(pod.pointer("/spec/nodeName").and_then(Value::as_str)),
            node_is_text: pod.pointer("/spec/nodeName").is_none_or(Value::is_string),
            labels: labels_of(pod),
            phase: pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending").into(),
            ready: pod
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")),
            deleting: meta(pod).get("deletionTimestamp").is_some(),
            controller_uid: controller_uid(pod).map(Into::into),
            owner_uids: meta(pod)
                .get("ownerReferences")
                .and_then(Value::as_array)
                .map(|refs| refs.iter().map(|r| r.get("uid").and_then(Value::as_str).map(Into::into)).collect())
                .unwrap_or_default(),
            created: boxed(meta_str(pod, "creationTimestamp")),
            default_scheduler: pod
                .pointer("/spec/schedulerName")
                .and_then(Value::as_str)
                .is_none_or(|s| s == "default-scheduler"),
            printed: Printed::of(pod),
        }
    }

    /// Not being deleted and not finished: what controllers count as one of their replicas.
    pub fn is_active(&self) -> bool {
        !self.deleting && !matches!(&*self.phase, "Succeeded" | "Failed")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn facts_read_defaults_and_odd_values_as_the_controllers_do() {
        let bare = PodFacts::of(&json!({"metadata": {"name": "a"}}));
        assert_eq!((&*bare.phase, &*bare.node, bare.ready, bare.deleting), ("Pending", "", false, false));
        assert!(bare.default_scheduler && bare.is_active() && bare.owner_uids.is_empty());
        let pod = json!({
            "metadata": {"name": "b", "namespace": "ns", "uid": "u", "deletionTimestamp": null,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [{"uid": "rs", "controller": true}, {"name": "no-uid"}]},
            "spec": {"nodeName": "n1", "schedulerName": "other"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let f = PodFacts::of(&pod);
        assert_eq!((&*f.namespace, &*f.name, &*f.uid, &*f.node, &*f.phase), ("ns", "b", "u", "n1", "Running"));
        assert!(f.ready && f.deleting && !f.is_active() && !f.default_scheduler);
        assert_eq!(f.controller_uid.as_deref(), Some("rs"));
        assert_eq!(&*f.owner_uids, &[Some("rs".into()), None]);
        assert_eq!(&*f.created, "2026-01-01T00:00:00Z");
        let failed = PodFacts::of(&json!({"status": {"phase": "Failed"}}));
        assert!(!failed.is_active());
    }

    #[test]
    fn terminating_pod_status() {
        let p = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&p), "Terminating");
        let p = json!({"status": {"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod_status(&p), "CrashLoopBackOff");
    }
}

//! Rollback triggers, evaluated purely against a baseline taken before the rollout: a
//! control-plane node that does not rejoin, more than a share of pods in CrashLoopBackOff, an
//! upgraded node NotReady, pods stuck in ContainerCreating on upgraded nodes (storage mounts),
//! and the user's smoke commands. Any trigger halts the rollout at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One pod as the triggers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodHealth {
    /// `namespace/name`
    pub key: String,
    pub node: Option<String>,
    pub crash_looping: bool,
    pub container_creating: bool,
    /// Since when the pod has not been Ready (its Ready condition's last transition, else its
    /// start or creation), read from the pod itself: how long a ContainerCreating pod has been
    /// stuck is then known on the first look, and after a resume on another machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating_since: Option<Timestamp>,
}

impl PodHealth {
    /// Read from a pod object as the API returns it.
    pub fn from_pod(pod: &Value) -> PodHealth {
        let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
        let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let waiting = |reason: &str| {
            ["/status/containerStatuses", "/status/initContainerStatuses"].iter().any(|p| {
                pod.pointer(p).and_then(Value::as_array).is_some_and(|cs| {
                    cs.iter().any(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str) == Some(reason))
                })
            })
        };
        let container_creating = waiting("ContainerCreating");
        let time = |p: &str| pod.pointer(p).and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok());
        let not_ready_since = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready" && c["status"] != "True"))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .and_then(|t| t.parse::<Timestamp>().ok());
        PodHealth {
            key: format!("{ns}/{name}"),
            node: pod.pointer("/spec/nodeName").and_then(Value::as_str).map(String::from),
            crash_looping: waiting("CrashLoopBackOff"),
            container_creating,
            creating_since: container_creating
                .then(|| {
                    not_ready_since
                        .or_else(|| time("/status/startTime"))
                        .or_else(|| time("/metadata/creationTimestamp"))
                })
                .flatten(),
        }
    }
}

/// What was already wrong before the rollout touched anything: not held against it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    pub crash_looping: BTreeSet<String>,
    pub not_ready_nodes: BTreeSet<String>,
    /// Pods not scheduled anywhere (nowhere to go before the rollout began).
    #[serde(default)]
    pub unscheduled: usize,
}

impl Baseline {
    pub fn take(pods: &[PodHealth], not_ready_nodes: impl IntoIterator<Item = String>) -> Baseline {
        Baseline {
            crash_looping: pods.iter().filter(|p| p.crash_looping).map(|p| p.key.clone()).collect(),
            not_ready_nodes: not_ready_nodes.into_iter().collect(),
            unscheduled: pods.iter().filter(|p| p.node.is_none()).count(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerOptions {
    /// Share of all pods newly in CrashLoopBackOff that halts the rollout, in percent.
    pub crash_loop_percent: f64,
    /// How long a pod may sit in ContainerCreating on an upgraded node.
    pub creating_grace: Duration,
}

impl Default for TriggerOptions {
    fn default() -> Self {
        TriggerOptions { crash_loop_percent: 5.0, creating_grace: Duration::from_secs(300) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "trigger")]
pub enum Trigger {
    ControlPlaneNotRejoined {
        node: String,
    },
    CrashLoop {
        percent: f64,
        pods: Vec<String>,
        /// The nodes the newly crash-looping pods run on.
        #[serde(default)]
        nodes: Vec<String>,
    },
    UpgradedNodeNotReady {
        node: String,
    },
    StuckCreating {
        node: String,
        pods: Vec<String>,
    },
    Smoke {
        command: String,
        status: Option<i32>,
        output: String,
    },
}

impl Trigger {
    /// The trigger in words, with what to look at.
    pub fn message(&self) -> String {
        match self {
            Trigger::ControlPlaneNotRejoined { node } => format!(
                "control-plane node {node} did not rejoin (NotReady, or its apiserver is not on the new version); check `journalctl -u kubelet` and the static pods on {node}"
            ),
            Trigger::CrashLoop { percent, pods, .. } => format!(
                "{percent:.1}% of pods are newly in CrashLoopBackOff ({}): check their logs (kubectl logs --previous)",
                shorten(pods)
            ),
            Trigger::UpgradedNodeNotReady { node } => {
                format!("upgraded node {node} is NotReady: check its kubelet (journalctl -u kubelet)")
            }
            Trigger::StuckCreating { node, pods } => format!(
                "pods stuck in ContainerCreating on upgraded node {node} ({}): check volume mounts (kubectl describe pod)",
                shorten(pods)
            ),
            Trigger::Smoke { command, status, output } => format!(
                "smoke command `{command}` failed (exit {}): {}",
                status.map_or("signal".into(), |s| s.to_string()),
                output.trim()
            ),
        }
    }
}

impl Trigger {
    /// The workers a trigger blames, to be rolled back: the NotReady node, the node with stuck
    /// pods, the nodes of the new crash loops. None for the control plane (never rolled back
    /// automatically) and the smoke commands (they blame no node).
    pub fn workers(&self) -> Vec<String> {
        match self {
            Trigger::UpgradedNodeNotReady { node } | Trigger::StuckCreating { node, .. } => vec![node.clone()],
            Trigger::CrashLoop { nodes, .. } => nodes.clone(),
            Trigger::ControlPlaneNotRejoined { .. } | Trigger::Smoke { .. } => Vec::new(),
        }
    }
}

fn shorten(items: &[String]) -> String {
    let mut s = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        s.push_str(&format!(" and {} more", items.len() - 5));
    }
    s
}

/// Evaluate the pod and node triggers. `upgraded` are the nodes this rollout has moved so far;
/// `creating_since` says since when each pod has been seen in ContainerCreating, for pods that
/// do not say it themselves ([`PodHealth::creating_since`]).
pub fn evaluate(
    baseline: &Baseline,
    pods: &[PodHealth],
    not_ready_nodes: &BTreeSet<String>,
    upgraded: &BTreeMap<String, bool>,
    creating_since: &BTreeMap<String, Timestamp>,
    now: Timestamp,
    opts: &TriggerOptions,
) -> Vec<Trigger> {
    let mut out = Vec::new();
    for (node, control_plane) in upgraded {
        if not_ready_nodes.contains(node) && !baseline.not_ready_nodes.contains(node) {
            out.push(if *control_plane {
                Trigger::ControlPlaneNotRejoined { node: node.clone() }
            } else {
                Trigger::UpgradedNodeNotReady { node: node.clone() }
            });
        }
    }
    let new_crash: Vec<&PodHealth> =
        pods.iter().filter(|p| p.crash_looping && !baseline.crash_looping.contains(&p.key)).collect();
    if !pods.is_empty() {
        let percent = new_crash.len() as f64 * 100.0 / pods.len() as f64;
        if percent > opts.crash_loop_percent {
            let nodes: BTreeSet<String> = new_crash.iter().filter_map(|p| p.node.clone()).collect();
            out.push(Trigger::CrashLoop {
                percent,
                pods: new_crash.iter().map(|p| p.key.clone()).collect(),
                nodes: nodes.into_iter().collect(),
            });
        }
    }
    let grace = jiff::SignedDuration::try_from(opts.creating_grace).unwrap_or(jiff::SignedDuration::MAX);
    let mut stuck: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in pods.iter().filter(|p| p.container_creating) {
        let Some(node) = p.node.as_ref().filter(|n| upgraded.contains_key(*n)) else { continue };
        let since = p.creating_since.or_else(|| creating_since.get(&p.key).copied());
        if since.is_some_and(|since| since.duration_until(now) > grace) {
            stuck.entry(node.clone()).or_default().push(p.key.clone());
        }
    }
    for (node, pods) in stuck {
        out.push(Trigger::StuckCreating { node, pods });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(key: &str, node: &str, reason: Option<&str>) -> PodHealth {
        let (ns, name) = key.split_once('/').unwrap();
        let mut p = json!({"metadata": {"namespace": ns, "name": name}, "spec": {"nodeName": node},
            "status": {"containerStatuses": [{"name": "c", "state": {"running": {}}}]}});
        if let Some(r) = reason {
            p["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": r}});
        }
        PodHealth::from_pod(&p)
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn crash_loops_count_only_beyond_the_baseline_and_the_threshold() {
        let mut pods: Vec<PodHealth> = (0..40).map(|i| pod(&format!("a/p{i}"), "w-1", None)).collect();
        pods[0] = pod("a/p0", "w-1", Some("CrashLoopBackOff"));
        let baseline = Baseline::take(&pods, []);
        let none = BTreeMap::new();
        let now = at("2026-12-01T10:00:00Z");
        let opts = TriggerOptions::default();
        assert!(evaluate(&baseline, &pods, &BTreeSet::new(), &none, &BTreeMap::new(), now, &opts).is_empty());
        pods[1] = pod("a/p1", "w-1", Some("CrashLoopBackOff"));
        pods[2] = pod("a/p2", "w-1", Some("CrashLoopBackOff"));
        assert!(
            evaluate(&baseline, &pods, &BTreeSet::new(), &none, &BTreeMap::new(), now, &opts).is_empty(),
            "2 of 40 = 5%, not above"
        );
        pods[3] = pod("a/p3", "w-1", Some("CrashLoopBackOff"));
        let t = evaluate(&baseline, &pods, &BTreeSet::new(), &none, &BTreeMap::new(), now, &opts);
        assert!(matches!(&t[..], [Trigger::CrashLoop { pods, .. }] if pods.len() == 3), "{t:?}");
        assert_eq!(t[0].workers(), ["w-1"], "the node the new crash loops run on");
        assert!(t[0].message().contains("7.5%"), "{}", t[0].message());
    }

    #[test]
    fn upgraded_nodes_must_be_ready_and_their_pods_must_start() {
        let pods =
            vec![pod("db/pg-0", "w-2", Some("ContainerCreating")), pod("db/pg-1", "w-3", Some("ContainerCreating"))];
        let baseline = Baseline::take(&[], ["w-9".to_string()]);
        let upgraded: BTreeMap<String, bool> =
            [("w-2".into(), false), ("cp-1".into(), true), ("w-9".into(), false)].into();
        let not_ready: BTreeSet<String> = ["cp-1".into(), "w-9".into()].into();
        let since: BTreeMap<String, Timestamp> =
            [("db/pg-0".into(), at("2026-12-01T10:00:00Z")), ("db/pg-1".into(), at("2026-12-01T10:00:00Z"))].into();
        let opts = TriggerOptions::default();
        let early = evaluate(&baseline, &pods, &not_ready, &upgraded, &since, at("2026-12-01T10:04:00Z"), &opts);
        assert_eq!(early, vec![Trigger::ControlPlaneNotRejoined { node: "cp-1".into() }], "w-9 was NotReady before");
        let late = evaluate(&baseline, &pods, &not_ready, &upgraded, &since, at("2026-12-01T10:06:00Z"), &opts);
        // The pod's own Ready condition says since when it waits, with no memory of earlier looks.
        let mut stuck = json!({"metadata": {"namespace": "db", "name": "pg-0"}, "spec": {"nodeName": "w-2"},
            "status": {"phase": "Pending", "startTime": "2026-12-01T09:00:00Z",
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-12-01T10:00:00Z"}],
                "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        let own = [PodHealth::from_pod(&stuck)];
        assert_eq!(own[0].creating_since, Some(at("2026-12-01T10:00:00Z")));
        let none = BTreeMap::new();
        let ready = BTreeSet::new();
        assert!(evaluate(&baseline, &own, &ready, &upgraded, &none, at("2026-12-01T10:04:00Z"), &opts).is_empty());
        assert_eq!(
            evaluate(&baseline, &own, &ready, &upgraded, &none, at("2026-12-01T10:06:00Z"), &opts),
            vec![Trigger::StuckCreating { node: "w-2".into(), pods: vec!["db/pg-0".into()] }]
        );
        stuck["status"]["conditions"] = json!([]);
        assert_eq!(PodHealth::from_pod(&stuck).creating_since, Some(at("2026-12-01T09:00:00Z")), "else its start");
        assert_eq!(
            late[1],
            Trigger::StuckCreating { node: "w-2".into(), pods: vec!["db/pg-0".into()] },
            "w-3 is not upgraded"
        );
    }
}

//! What the rollout reads from the live cluster before every step, and the pure decisions made
//! from it: each step's postcondition, and the next step to run. Because every decision starts
//! from the cluster's real state, a crash, a resume, or a cluster someone left half-upgraded
//! continues from where the cluster really is.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use stepstone_core::inventory::Inventory;
use stepstone_core::progress::ControlPlaneState;
use stepstone_core::version::KubeVersion;

use crate::journal::Journal;
use crate::steps::{Step, StepKind};
use crate::triggers::PodHealth;

/// One node as the rollout needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeState {
    pub name: String,
    pub control_plane: bool,
    pub generation: String,
    pub kubelet: KubeVersion,
    pub ready: bool,
    pub unschedulable: bool,
    /// The oldest of the static pods `kubeadm upgrade` rewrites on this node (apiserver,
    /// controller-manager, scheduler; control plane only, when the cluster shows them).
    pub static_pods: Option<KubeVersion>,
}

/// The cluster as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    pub nodes: BTreeMap<String, NodeState>,
}

impl ClusterState {
    pub fn from_inventory(inv: &Inventory) -> Self {
        // The same per-node reading as `path` and `plan` (stepstone_core::progress).
        let static_pods = ControlPlaneState::read(inv).map(|s| s.nodes).unwrap_or_default();
        let nodes = inv
            .nodes
            .iter()
            .map(|n| {
                let state = NodeState {
                    name: n.name.clone(),
                    control_plane: n.is_control_plane(),
                    generation: n.generation.clone(),
                    kubelet: n.kubelet_version.clone(),
                    ready: n.ready,
                    unschedulable: n.unschedulable,
                    static_pods: static_pods.get(&n.name).cloned().flatten(),
                };
                (n.name.clone(), state)
            })
            .collect();
        ClusterState { nodes }
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.get(name)
    }

    /// The component versions to record before and after a hop: `component/node` -> version.
    pub fn versions(inv: &Inventory) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for c in &inv.components {
            out.insert(format!("{}/{}", c.component, c.node), c.tag.clone());
        }
        for n in &inv.nodes {
            out.insert(format!("kubelet/{}", n.name), n.kubelet_version.canonical());
        }
        if let Some(v) = &inv.server_version {
            out.insert("apiserver/version".into(), v.canonical());
        }
        out
    }
}

/// The cluster read once for a step: the previous step's postcondition, the rollback triggers'
/// check after a move, and the next step's precondition all look at the same reading.
#[derive(Debug, Clone)]
pub struct Observation {
    pub inv: Inventory,
    pub state: ClusterState,
    /// The pods' health, read when the triggers need it (after a move).
    pub pods: Option<Vec<PodHealth>>,
}

impl Observation {
    pub fn new(inv: Inventory, pods: Option<Vec<PodHealth>>) -> Self {
        let state = ClusterState::from_inventory(&inv);
        Observation { inv, state, pods }
    }
}

/// A worker has made its move: the kubelet runs `target` (or newer), the node is Ready and
/// schedulable again.
pub fn worker_done(state: &ClusterState, node: &str, target: &KubeVersion) -> bool {
    state.node(node).is_some_and(|n| n.kubelet >= *target && n.ready && !n.unschedulable)
}

/// A worker needs no drain for this move: its kubelet already runs the target.
pub fn worker_upgraded(state: &ClusterState, node: &str, target: &KubeVersion) -> bool {
    state.node(node).is_some_and(|n| n.kubelet >= *target)
}

/// A control-plane node has made its move: its static pods and kubelet run `target`
/// (or newer, never a downgrade), Ready and schedulable.
pub fn control_plane_done(state: &ClusterState, node: &str, target: &KubeVersion) -> bool {
    state.node(node).is_some_and(|n| {
        n.static_pods.as_ref().is_none_or(|a| a >= target) && n.kubelet >= *target && n.ready && !n.unschedulable
    })
}

/// Whether every control-plane node already runs at least `target`: the hop's control-plane
/// part (and its snapshot) is behind us.
pub fn control_plane_at(state: &ClusterState, target: &KubeVersion) -> bool {
    let mut cps = state.nodes.values().filter(|n| n.control_plane).peekable();
    cps.peek().is_some() && cps.all(|n| n.static_pods.as_ref().unwrap_or(&n.kubelet) >= target)
}

/// What the engine must do about one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The postcondition holds: nothing to do.
    Done,
    Run,
    /// Nodes of the step are held (rolled back and left cordoned) until a person resumes.
    Held {
        nodes: Vec<String>,
    },
}

/// Decide a step against the cluster and the journal.
pub fn decide(
    step: &Step,
    state: &ClusterState,
    journal: &Journal,
    now: Timestamp,
    max_snapshot_age: Duration,
) -> Decision {
    match &step.kind {
        StepKind::ControlPlane { node, target, .. } => {
            if control_plane_done(state, node, target) {
                Decision::Done
            } else {
                Decision::Run
            }
        }
        StepKind::Wave { nodes, target, .. } => {
            let todo: Vec<&String> = nodes.iter().filter(|n| !worker_done(state, n, target)).collect();
            if todo.is_empty() {
                return Decision::Done;
            }
            let held: Vec<String> =
                todo.iter().filter(|n| journal.holds.contains_key(**n)).map(|n| n.to_string()).collect();
            if held.is_empty() { Decision::Run } else { Decision::Held { nodes: held } }
        }
        StepKind::EtcdSnapshot { .. } => {
            let hop = &journal.plan.hops[step.hop];
            if control_plane_at(state, &hop.to) {
                return Decision::Done;
            }
            match journal.snapshots.get(&step.hop) {
                Some(s) if stepstone_host::etcd::freshness_gate(&s.metadata, now, max_snapshot_age).is_ok() => {
                    Decision::Done
                }
                _ => Decision::Run,
            }
        }
        StepKind::RecordVersions => {
            if journal.versions_before.contains_key(&step.hop) {
                Decision::Done
            } else {
                Decision::Run
            }
        }
        StepKind::Notify { .. }
        | StepKind::HealthGate
        | StepKind::Wait { .. }
        | StepKind::Smoke
        | StepKind::VersionDiff
        | StepKind::Complete => {
            if journal.finished(&step.id) {
                Decision::Done
            } else {
                Decision::Run
            }
        }
    }
}

/// The first step that is not done, with what to do about it; `None` when the whole rollout is.
pub fn next_step(
    steps: &[Step],
    state: &ClusterState,
    journal: &Journal,
    now: Timestamp,
    max_snapshot_age: Duration,
) -> Option<(usize, Decision)> {
    steps.iter().enumerate().find_map(|(i, s)| match decide(s, state, journal, now, max_snapshot_age) {
        Decision::Done => None,
        d => Some((i, d)),
    })
}

/// The nodes of a wave that still need their drain for this move.
pub fn nodes_to_drain(state: &ClusterState, journal: &Journal, nodes: &[String], target: &KubeVersion) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| !worker_upgraded(state, n, target))
        .filter(|n| !journal.drained.contains(&Journal::drain_key(n, &target.canonical())))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::{WaveRole, sequence};
    use stepstone_core::plan::ControlPlaneAction;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    fn node(name: &str, cp: bool, kubelet: &str, static_pods: Option<&str>) -> NodeState {
        NodeState {
            name: name.into(),
            control_plane: cp,
            generation: "g".into(),
            kubelet: v(kubelet),
            ready: true,
            unschedulable: false,
            static_pods: static_pods.map(v),
        }
    }

    fn state(nodes: Vec<NodeState>) -> ClusterState {
        ClusterState { nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect() }
    }

    fn plan_one_hop() -> stepstone_core::plan::Plan {
        let mut plan = crate::journal::tests::empty_plan();
        plan.hops =
            vec![serde_json::from_value(serde_json::json!({
            "from": "v1.34.6", "to": "v1.35.0", "etcd": null, "kubeletsFirst": [],
            "controlPlane": [
                {"node": "cp-01", "action": "apply", "generation": "g"},
                {"node": "cp-02", "action": "node", "generation": "g"},
                {"node": "cp-03", "action": "node", "generation": "g"}],
            "waves": [
                {"kind": "canary", "generation": "g", "nodes": ["w-1"], "reason": "", "waitAfterMinutes": 30},
                {"kind": "batch", "generation": "g", "nodes": ["w-2", "w-3"], "reason": "", "waitAfterMinutes": 0}]
        }))
        .unwrap()];
        plan
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_half_upgraded_control_plane_continues_at_the_second_node() {
        let plan = plan_one_hop();
        let steps = sequence(&plan);
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let mut journal = Journal::new("r".into(), "c".into(), "lab".into(), plan, now);
        for id in ["h1/notify", "h1/health/cp-01"] {
            journal.record(now, id, crate::journal::Phase::Done, None, "");
        }
        journal.versions_before.insert(0, Default::default());
        // cp-01 on v1.35.0, cp-02/03 on v1.34.6: someone ran `kubeadm upgrade apply` and stopped.
        let s = state(vec![
            node("cp-01", true, "v1.35.0", Some("v1.35.0")),
            node("cp-02", true, "v1.34.6", Some("v1.34.6")),
            node("cp-03", true, "v1.34.6", Some("v1.34.6")),
            node("w-1", false, "v1.34.6", None),
        ]);
        // The snapshot is still needed (cp-02/03 move), and nothing older than an hour counts.
        let (i, d) = next_step(&steps, &s, &journal, now, HOUR).unwrap();
        assert_eq!((steps[i].id.as_str(), d), ("h1/etcd-snapshot", Decision::Run));
        let meta: stepstone_host::etcd::SnapshotMetadata = serde_json::from_value(serde_json::json!({
            "apiVersion": "stepstone/v1alpha1", "kind": "EtcdSnapshot", "file": "s.db", "cluster": "c",
            "sha256": "00", "sizeBytes": 1, "revision": 1, "totalKeys": 1, "hash": 0, "etcdVersion": null,
            "endpoint": "lab", "method": "lab", "takenAt": "2026-12-01T09:50:00Z"}))
        .unwrap();
        journal.snapshots.insert(0, crate::journal::HopSnapshot { path: "s.db".into(), metadata: meta });
        let (i, _) = next_step(&steps, &s, &journal, now, HOUR).unwrap();
        assert_eq!(steps[i].id, "h1/cp/cp-02", "cp-01 is not upgraded again, never downgraded");
        match &steps[i].kind {
            StepKind::ControlPlane { action, .. } => assert_eq!(*action, ControlPlaneAction::Node),
            other => panic!("{other:?}"),
        }
        // Two hours later the same snapshot is stale: the gate asks for a new one first.
        let later: Timestamp = "2026-12-01T11:00:00Z".parse().unwrap();
        let (i, _) = next_step(&steps, &s, &journal, later, HOUR).unwrap();
        assert_eq!(steps[i].id, "h1/etcd-snapshot");
    }

    #[test]
    fn waves_are_done_when_every_node_is_back_schedulable_on_the_target() {
        let target = v("v1.35.0");
        let mut s = state(vec![node("w-1", false, "v1.35.0", None), node("w-2", false, "v1.34.6", None)]);
        assert!(worker_done(&s, "w-1", &target));
        assert!(!worker_done(&s, "w-2", &target));
        s.nodes.get_mut("w-1").unwrap().unschedulable = true;
        assert!(!worker_done(&s, "w-1", &target), "still cordoned: the uncordon is left to do");
        assert!(worker_upgraded(&s, "w-1", &target), "but it needs no second drain");
        let plan = plan_one_hop();
        let mut journal = Journal::new("r".into(), "c".into(), "lab".into(), plan, Timestamp::UNIX_EPOCH);
        assert_eq!(nodes_to_drain(&s, &journal, &["w-1".into(), "w-2".into()], &target), vec!["w-2".to_string()]);
        journal.drained.insert(Journal::drain_key("w-2", "v1.35.0"));
        assert!(nodes_to_drain(&s, &journal, &["w-2".into()], &target).is_empty(), "drained once, never twice");
    }

    #[test]
    fn a_held_node_stops_its_wave_until_a_person_resumes() {
        let plan = plan_one_hop();
        let steps = sequence(&plan);
        let canary = steps.iter().find(|s| matches!(&s.kind, StepKind::Wave { role: WaveRole::Canary, .. })).unwrap();
        let s = state(vec![node("w-1", false, "v1.34.6", None)]);
        let mut journal = Journal::new("r".into(), "c".into(), "lab".into(), plan, Timestamp::UNIX_EPOCH);
        assert_eq!(decide(canary, &s, &journal, Timestamp::UNIX_EPOCH, HOUR), Decision::Run);
        journal.holds.insert("w-1".into(), "kubelet v1.35.0 did not start".into());
        assert_eq!(
            decide(canary, &s, &journal, Timestamp::UNIX_EPOCH, HOUR),
            Decision::Held { nodes: vec!["w-1".into()] }
        );
    }
}

//! The step sequence of a rollout, derived purely from a [`Plan`]: per hop, the day-of-upgrade
//! list (notify, etcd snapshot, record versions, control plane one node at a time, health gate,
//! canaries with their soak, batches with their waits, smoke checks, version diff), then the
//! completion notice. Step ids are stable strings, so a journal written by one run is read by
//! the next.

use serde::{Deserialize, Serialize};
use stepstone_core::plan::{ControlPlaneAction, Plan, WaveKind};
use stepstone_core::version::KubeVersion;

/// What kind of node move a wave is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaveRole {
    /// Kubelets brought to the hop's `from` version before the control plane moves.
    CatchUp,
    Canary,
    Batch,
}

/// Why a wait exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitReason {
    /// Watch time after a canary.
    Soak,
    /// Settling time between batches.
    BatchWait,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum StepKind {
    /// Tell people the hop starts (events, webhook).
    Notify {
        message: String,
    },
    /// A verified etcd snapshot younger than the freshness limit, taken on the first
    /// control-plane node.
    EtcdSnapshot {
        node: String,
    },
    /// The version of every component, kept for the after-diff.
    RecordVersions,
    /// One control-plane node: `kubeadm upgrade apply` on the first, `node` on the others.
    ControlPlane {
        node: String,
        action: ControlPlaneAction,
        target: KubeVersion,
    },
    /// apiserver `/readyz`, controller-manager and scheduler Ready, all control-plane nodes Ready.
    HealthGate,
    /// Workers moved together.
    Wave {
        role: WaveRole,
        generation: String,
        nodes: Vec<String>,
        target: KubeVersion,
    },
    Wait {
        reason: WaitReason,
        minutes: u32,
    },
    /// The user's smoke commands and the cluster-wide checks after a hop.
    Smoke,
    /// Before/after component versions of the hop.
    VersionDiff,
    /// The rollout is complete.
    Complete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Stable id, e.g. `h1/cp/cp-01`, `h2/wave/3`, `h2/wait/3`.
    pub id: String,
    /// Index into the plan's hops; the completion step carries the last hop.
    pub hop: usize,
    pub kind: StepKind,
    /// Planned minutes of the step (for the ETA).
    pub planned_minutes: u32,
}

impl Step {
    /// One line for progress output.
    pub fn describe(&self) -> String {
        match &self.kind {
            StepKind::Notify { message } => format!("notify: {message}"),
            StepKind::EtcdSnapshot { node } => format!("etcd snapshot on {node}"),
            StepKind::RecordVersions => "record component versions".into(),
            StepKind::ControlPlane { node, action, target } => match action {
                ControlPlaneAction::Apply => {
                    format!("control plane {node}: kubeadm upgrade apply {}", target.canonical())
                }
                ControlPlaneAction::Node => {
                    format!("control plane {node}: kubeadm upgrade node ({})", target.canonical())
                }
            },
            StepKind::HealthGate => "control-plane health gate".into(),
            StepKind::Wave { role, generation, nodes, target } => {
                let what = match role {
                    WaveRole::CatchUp => "catch-up",
                    WaveRole::Canary => "canary",
                    WaveRole::Batch => "batch",
                };
                format!("{what} {generation} -> {}: {}", target.canonical(), nodes.join(", "))
            }
            StepKind::Wait { reason, minutes } => match reason {
                WaitReason::Soak => format!("canary soak {minutes}m"),
                WaitReason::BatchWait => format!("batch wait {minutes}m"),
            },
            StepKind::Smoke => "smoke checks".into(),
            StepKind::VersionDiff => "before/after version diff".into(),
            StepKind::Complete => "rollout complete".into(),
        }
    }

    /// The nodes this step changes.
    pub fn nodes(&self) -> Vec<String> {
        match &self.kind {
            StepKind::ControlPlane { node, .. } => vec![node.clone()],
            StepKind::Wave { nodes, .. } => nodes.clone(),
            _ => Vec::new(),
        }
    }
}

/// The whole sequence for `plan`, in execution order.
pub fn sequence(plan: &Plan) -> Vec<Step> {
    let d = &plan.policy.durations;
    let mut out = Vec::new();
    for (i, hop) in plan.hops.iter().enumerate() {
        let h = i + 1;
        let push = |out: &mut Vec<Step>, id: String, kind: StepKind, planned_minutes: u32| {
            out.push(Step { id, hop: i, kind, planned_minutes });
        };
        push(
            &mut out,
            format!("h{h}/notify"),
            StepKind::Notify {
                message: format!("hop {h} of {}: {} -> {}", plan.hops.len(), hop.from.canonical(), hop.to.canonical()),
            },
            0,
        );
        for (w, wave) in hop.before_control_plane.iter().enumerate() {
            push(
                &mut out,
                format!("h{h}/catch-up/{}", w + 1),
                StepKind::Wave {
                    role: WaveRole::CatchUp,
                    generation: wave.generation.clone(),
                    nodes: wave.nodes.clone(),
                    target: hop.from.clone(),
                },
                d.worker_minutes() + wave.pdb_wait_minutes,
            );
        }
        if let Some(first) = hop.control_plane.first() {
            push(&mut out, format!("h{h}/etcd-snapshot"), StepKind::EtcdSnapshot { node: first.node.clone() }, 0);
        }
        push(&mut out, format!("h{h}/record-versions"), StepKind::RecordVersions, 0);
        for cp in &hop.control_plane {
            push(
                &mut out,
                format!("h{h}/cp/{}", cp.node),
                StepKind::ControlPlane { node: cp.node.clone(), action: cp.action, target: hop.to.clone() },
                d.control_plane_minutes,
            );
            push(&mut out, format!("h{h}/health/{}", cp.node), StepKind::HealthGate, 0);
        }
        for (w, wave) in hop.waves.iter().enumerate() {
            let role = match wave.kind {
                WaveKind::Canary => WaveRole::Canary,
                WaveKind::Batch => WaveRole::Batch,
            };
            push(
                &mut out,
                format!("h{h}/wave/{}", w + 1),
                StepKind::Wave {
                    role,
                    generation: wave.generation.clone(),
                    nodes: wave.nodes.clone(),
                    target: hop.to.clone(),
                },
                d.worker_minutes() + wave.pdb_wait_minutes,
            );
            if wave.wait_after_minutes > 0 {
                let reason = match wave.kind {
                    WaveKind::Canary => WaitReason::Soak,
                    WaveKind::Batch => WaitReason::BatchWait,
                };
                push(
                    &mut out,
                    format!("h{h}/wait/{}", w + 1),
                    StepKind::Wait { reason, minutes: wave.wait_after_minutes },
                    wave.wait_after_minutes,
                );
            }
        }
        push(&mut out, format!("h{h}/smoke"), StepKind::Smoke, 0);
        push(&mut out, format!("h{h}/diff"), StepKind::VersionDiff, 0);
    }
    out.push(Step {
        id: "complete".into(),
        hop: plan.hops.len().saturating_sub(1),
        kind: StepKind::Complete,
        planned_minutes: 0,
    });
    out
}

/// Planned minutes left from step index `from` on (the ETA's basis).
pub fn remaining_minutes(steps: &[Step], from: usize) -> u64 {
    steps.iter().skip(from).map(|s| u64::from(s.planned_minutes)).sum()
}

/// How many times the plan moves each node (a node of a catch-up wave moves twice in a hop).
pub fn planned_moves(steps: &[Step]) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for s in steps {
        for n in s.nodes() {
            *out.entry(n).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepstone_core::plan::{PlanRequest, make_plan};
    use stepstone_core::releases::ReleaseData;

    fn example_plan() -> Plan {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/three-generations.json"))
                .expect("example fleet");
        let inv = stepstone_core::snapshot::load_str("example", &text, &Default::default()).expect("inventory");
        let start = "2026-12-01T09:00:00Z".parse().unwrap();
        make_plan(&inv, &PlanRequest::new("v1.35".parse().unwrap(), start), ReleaseData::embedded()).expect("plan")
    }

    #[test]
    fn each_hop_follows_the_day_of_upgrade_order() {
        let plan = example_plan();
        let steps = sequence(&plan);
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        let pos = |id: &str| ids.iter().position(|x| *x == id).unwrap_or_else(|| panic!("{id} missing in {ids:?}"));
        assert!(pos("h1/notify") < pos("h1/etcd-snapshot"));
        assert!(pos("h1/etcd-snapshot") < pos("h1/record-versions"));
        assert!(pos("h1/record-versions") < pos("h1/cp/cp-01"));
        assert!(pos("h1/cp/cp-01") < pos("h1/health/cp-01"));
        assert!(pos("h1/health/cp-01") < pos("h1/cp/cp-02"));
        assert!(pos("h1/cp/cp-03") < pos("h1/wave/1"));
        assert!(pos("h1/wave/1") < pos("h1/wait/1"), "the first canary is followed by its soak");
        assert!(pos("h1/smoke") < pos("h2/notify"));
        assert_eq!(ids.last(), Some(&"complete"));
        // Catch-up waves run before the snapshot and the control plane, at the hop's `from`.
        let catch_up = steps.iter().find(|s| s.id == "h1/catch-up/1").expect("catch-up wave");
        match &catch_up.kind {
            StepKind::Wave { role: WaveRole::CatchUp, target, .. } => assert_eq!(target, &plan.hops[0].from),
            other => panic!("{other:?}"),
        }
        assert!(pos("h1/catch-up/1") < pos("h1/etcd-snapshot"));
    }

    #[test]
    fn every_worker_moves_once_per_hop_plus_its_catch_up() {
        let plan = example_plan();
        let steps = sequence(&plan);
        let moves = planned_moves(&steps);
        let catch_up: usize =
            plan.hops.iter().map(|h| h.before_control_plane.iter().map(|w| w.nodes.len()).sum::<usize>()).sum();
        let total: usize = moves.values().sum();
        let nodes = moves.len();
        assert_eq!(total, nodes * plan.hops.len() + catch_up);
        assert!(remaining_minutes(&steps, 0) > remaining_minutes(&steps, steps.len() / 2));
    }
}

//! The Plan document: the contract between the planner, the runbook writer and the rollout.
//!
//! `stepstone plan -o json` prints exactly this (inside the `stepstone/v1alpha1` envelope).
//! Fields may be added; the ones here keep their names and meaning.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::findings::Finding;
use crate::version::KubeVersion;

/// How workers follow the control plane across several hops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerStrategy {
    /// Every node moves at every hop: the way kubeadm supports.
    #[default]
    Lockstep,
    /// Workers stay within the kubelet skew while the control plane climbs, then move once.
    /// kubeadm does not support skipping minors on a node in place: for reprovisioned nodes.
    SkipMinors,
}

/// The knobs the plan was made with, echoed so a plan file explains itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanPolicy {
    /// Upper bound on workers drained at once, set by the operator.
    pub max_unavailable: u32,
    /// No node may be above this share of allocatable (requests) after a move, in percent.
    pub headroom_percent: u32,
    pub canary_soak_minutes: u32,
    pub batch_wait_minutes: u32,
    pub strategy: WorkerStrategy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlPlaneAction {
    /// `kubeadm upgrade apply vX.Y.Z` on the first control-plane node of the hop.
    Apply,
    /// `kubeadm upgrade node` on the others.
    Node,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneStep {
    pub node: String,
    pub action: ControlPlaneAction,
    pub generation: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaveKind {
    /// One node of a hardware generation, first of its generation, followed by a soak.
    Canary,
    /// The rest of a generation, several nodes at once.
    Batch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wave {
    pub kind: WaveKind,
    pub generation: String,
    pub nodes: Vec<String>,
    /// Why this wave has this size and place (e.g. "capacity: 2 would put dell-r640-03 at 91% CPU").
    pub reason: String,
    /// Minutes to wait after the wave before the next one starts (soak or batch wait).
    pub wait_after_minutes: u32,
}

/// One minor step of the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    pub from: KubeVersion,
    pub to: KubeVersion,
    /// The etcd version kubeadm of this minor deploys (a stacked etcd moves with `apply`).
    pub etcd: Option<String>,
    /// Kubelets that must be upgraded before this hop's control plane may move (n-3 rule).
    pub kubelets_first: Vec<String>,
    pub control_plane: Vec<ControlPlaneStep>,
    pub waves: Vec<Wave>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleEntryKind {
    ControlPlane,
    Canary,
    Batch,
    Soak,
    Wait,
    /// Time outside the maintenance window, when nothing runs.
    OutsideWindow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleEntry {
    /// Index into `Plan::hops`.
    pub hop: usize,
    pub kind: ScheduleEntryKind,
    pub label: String,
    pub nodes: Vec<String>,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub start: Timestamp,
    pub finish: Timestamp,
    /// IANA time zone the window and the table are shown in.
    pub time_zone: String,
    pub entries: Vec<ScheduleEntry>,
    /// Working minutes (excluding time outside windows) of the whole plan.
    pub makespan_minutes: u64,
    /// The makespan if every batch were as large as capacity alone allows.
    pub lower_bound_minutes: u64,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Where the inventory came from.
    pub cluster: String,
    pub from: KubeVersion,
    pub to: KubeVersion,
    pub policy: PlanPolicy,
    pub hops: Vec<Hop>,
    /// What would make a drain hang or a wave unsafe, each with its fix.
    pub blockers: Vec<Finding>,
    /// Other findings (skew, prerequisites) that the plan takes into account.
    pub findings: Vec<Finding>,
    pub schedule: Schedule,
}

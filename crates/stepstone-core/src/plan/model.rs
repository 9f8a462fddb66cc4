//! The Plan document: the contract between the planner, the runbook writer and the rollout.
//!
//! `stepstone plan -o json` prints exactly this (inside the `stepstone/v1alpha1` envelope).
//! Fields may be added; the ones here keep their names and meaning.

pub use crate::path::WorkerStrategy;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::addons::FoundAddon;
use crate::findings::Finding;
use crate::version::KubeVersion;

/// The knobs the plan was made with, echoed so a plan file explains itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanPolicy {
    /// The most workers any wave drains at once: the largest of `batch_limits`.
    pub max_unavailable: u32,
    /// Per hardware generation, the most workers drained at once and what set it (the operator's
    /// `--max-unavailable`, or the fleet's default: the generation share or capacity).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub batch_limits: std::collections::BTreeMap<String, super::limits::GenerationLimit>,
    /// No node may be above this share of allocatable (requests) after a move, in percent.
    pub headroom_percent: u32,
    pub canary_soak_minutes: u32,
    pub batch_wait_minutes: u32,
    pub strategy: WorkerStrategy,
    /// Hardware generations, oldest first, as the waves follow them (given or inferred).
    #[serde(default)]
    pub generation_order: Vec<String>,
    /// How long each step is assumed to take, for the schedule.
    #[serde(default)]
    pub durations: Durations,
    /// The drain consents the plan was made with. Every printed `kubectl drain` line takes its
    /// flags from [`crate::drain::DrainOptions::kubectl_drain_flags`] of these, so it drains
    /// exactly what the plan expects.
    #[serde(default)]
    pub drain: crate::drain::DrainOptions,
}

/// Assumed durations (minutes) of the steps the schedule is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Durations {
    /// Cordon and evict a worker's pods (without waiting on disruption budgets).
    pub drain_minutes: u32,
    /// Install the new kubeadm/kubelet/kubectl packages and run `kubeadm upgrade node`.
    pub package_upgrade_minutes: u32,
    /// Restart the kubelet.
    pub kubelet_restart_minutes: u32,
    /// Node Ready again and uncordoned, its DaemonSet pods running.
    pub ready_minutes: u32,
    /// One control-plane node: drain, `kubeadm upgrade apply|node`, kubelet, checks.
    pub control_plane_minutes: u32,
    /// From eviction to a replacement pod Ready: what a budget with one disruption allowed
    /// makes every further eviction wait for.
    pub pod_start_minutes: u32,
}

impl Default for Durations {
    fn default() -> Self {
        Durations {
            drain_minutes: 10,
            package_upgrade_minutes: 5,
            kubelet_restart_minutes: 2,
            ready_minutes: 3,
            control_plane_minutes: 30,
            pod_start_minutes: 2,
        }
    }
}

impl Durations {
    /// One worker from cordon to uncordon, budgets aside.
    pub fn worker_minutes(&self) -> u32 {
        self.drain_minutes + self.package_upgrade_minutes + self.kubelet_restart_minutes + self.ready_minutes
    }
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
    /// Pods the drain of this node evicts (and the simulator placed elsewhere).
    #[serde(default)]
    pub pods_moved: u64,
    /// Blockers (`code subject` of entries in `Plan::blockers`) that stop this node's drain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaveKind {
    /// One node of a hardware generation, first of its generation, followed by a soak.
    Canary,
    /// The rest of a generation, several nodes at once.
    Batch,
}

/// What decided a wave's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaveBound {
    /// One node, the generation's canary.
    Canary,
    /// The operator's `--max-unavailable` for the generation.
    Operator,
    /// The generation's default share of its workers.
    GenerationShare,
    /// The capacity simulator: one more node would leave a pod nowhere to go or break the
    /// headroom (or the aggregate capacity bound capped the default).
    Capacity,
    /// Disruption budgets: one more node would make the wave's evictions wait beyond the
    /// generation's fair share for longer than one more batch takes.
    Budget,
    /// The generation's nodes ran out before any limit.
    RestOfGeneration,
    /// The nodes cannot be drained until their blockers are fixed.
    Blocked,
}

impl WaveBound {
    /// How the text plan names it.
    pub fn label(self) -> &'static str {
        match self {
            WaveBound::Canary => "canary",
            WaveBound::Operator => "operator",
            WaveBound::GenerationShare => "generation share",
            WaveBound::Capacity => "capacity",
            WaveBound::Budget => "budget",
            WaveBound::RestOfGeneration => "rest of generation",
            WaveBound::Blocked => "blocked",
        }
    }
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
    /// Pods the wave evicts (and the simulator placed elsewhere).
    #[serde(default)]
    pub pods_moved: u64,
    /// Extra drain minutes because a disruption budget lets evictions through one at a time
    /// (each waits for the previous replacement to become Ready).
    #[serde(default)]
    pub pdb_wait_minutes: u32,
    /// Blockers (`code subject` of entries in `Plan::blockers`) that stop this wave's drain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
    /// What decided the wave's size (absent in plans written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<WaveBound>,
}

/// One minor step of the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    pub from: KubeVersion,
    pub to: KubeVersion,
    /// The etcd version kubeadm of this minor deploys (a stacked etcd moves with `apply`).
    pub etcd: Option<String>,
    /// Nodes already at `to` when the plan was made (a cluster part-way through this hop): they
    /// appear in no step or wave of the hop. See [`crate::progress::hop_progress`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
    /// Kubelets that must be upgraded before this hop's control plane may move (n-3 rule).
    pub kubelets_first: Vec<String>,
    /// Waves that run before the control plane moves: the `kubelets_first` nodes and, in
    /// lockstep, nodes more than one minor behind, brought to `from`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_control_plane: Vec<Wave>,
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
    /// Index into the hop's `waves` for canary, batch, soak and wait entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
}

/// When one hop starts and ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HopSchedule {
    pub hop: usize,
    pub start: Timestamp,
    pub finish: Timestamp,
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
    /// A lower bound on the working minutes of any plan under the same batch limits: the same
    /// control-plane steps, canaries, soaks and waits, with every generation's other workers in
    /// batches of exactly its limit (capped by `lower_bound_batch_size`), none stopped early
    /// by capacity, plus `lower_bound_budget_minutes`.
    pub lower_bound_minutes: u64,
    /// The part of `lower_bound_minutes` spent waiting on disruption budgets: in the first hop,
    /// whose placement is the inventory's, per generation the eviction rounds its busiest budget
    /// needs beyond one per batch (see `plan::waves::hop_budget_floor` for why every plan pays
    /// them).
    #[serde(default)]
    pub lower_bound_budget_minutes: u64,
    /// The most nodes any batch could hold if aggregate capacity were the only limit (an upper
    /// bound on every safe batch).
    #[serde(default)]
    pub lower_bound_batch_size: u32,
    /// `lower_bound_minutes` in percent of `makespan_minutes`: 100 means the plan is as short as
    /// the fleet's spare capacity permits.
    #[serde(default)]
    pub efficiency_percent: u32,
    /// Start and finish of each hop.
    #[serde(default)]
    pub hops: Vec<HopSchedule>,
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
    /// The add-ons running in the cluster, judged against every hop (`stepstone addons`).
    #[serde(default)]
    pub addons: Vec<FoundAddon>,
    pub schedule: Schedule,
}

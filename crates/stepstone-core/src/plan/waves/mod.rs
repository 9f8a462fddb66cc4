//! The wave planner: for each hop of the path, the control-plane steps, one canary per hardware
//! generation (oldest generation first) and then each generation in batches, every batch as large
//! as the operator's limit and the simulator allow.
//!
//! A batch is proved safe by simulating it: its nodes are cordoned, every pod the drain rules
//! would evict is placed by the [`CapacityModel`] on the remaining schedulable nodes within the
//! headroom, and the evictions go through the shared [`BudgetTracker`]. Evictions run in rounds
//! of one pod start time: a pod whose budget has no disruption left waits until the replacements
//! evicted before it are Ready. Budgets therefore cost time, never a failure; capacity caps the
//! batch size. Once a batch is done its nodes come back (upgraded, empty) and the pods stay where
//! the simulator put them, so later batches see the fleet as it will be.
//!
//! Here: the planner's state and the walk over hops. Submodules: `generation` (the waves of a
//! stretch of workers), `batch` (growing and simulating one batch), `evict` (eviction rounds
//! and blockers found while planning), `bound` (the capacity bound on a batch and the relaxed
//! plan of the lower bound), `spread` (budgets crowding one generation, and what spreading
//! them would save).

mod batch;
mod bound;
mod evict;
mod generation;
mod spread;

pub use bound::{hop_budget_floor, relaxed};
pub use spread::Crowding;

use std::collections::{BTreeMap, BTreeSet};

use crate::fasthash::FastMap;
use crate::findings::Finding;
use crate::inventory::{Inventory, Node, Pod};
use crate::pdb::BudgetTracker;

use super::blockers::{Analysis, reference};
use super::limits::GenerationLimit;
use super::model::{ControlPlaneAction, ControlPlaneStep, Durations, Hop, WaveBound};
use crate::capacity::{CapacityModel, Headroom, NodeIdx, PodSlot, Unschedulable};

/// Knobs of the wave planner.
#[derive(Debug, Clone)]
pub struct WavePolicy {
    /// Per hardware generation, most workers drained at once and what set it.
    pub limits: BTreeMap<String, GenerationLimit>,
    /// The limit of a generation missing from `limits`.
    pub fallback_limit: u32,
    /// Under a default (not the operator's) limit, a batch stops growing before its evictions
    /// would need more rounds than the generation's fair share plus this many: the rounds one
    /// more batch costs (0: budgets never stop a batch).
    pub max_budget_rounds: u32,
    pub headroom: Headroom,
    pub canary_soak_minutes: u32,
    pub batch_wait_minutes: u32,
    /// Time from eviction to a Ready replacement: one round of budget-limited evictions.
    pub pod_start_minutes: u32,
    /// Model budgets serialising evictions (off for the capacity-only lower bound).
    pub serialise_budgets: bool,
    /// Hardware generations, oldest first.
    pub generation_order: Vec<String>,
}

/// The nodes one hop moves, as the path lays them out.
#[derive(Debug, Clone)]
pub struct HopNodes {
    pub from: crate::version::KubeVersion,
    pub to: crate::version::KubeVersion,
    pub etcd: Option<String>,
    /// Control-plane nodes in upgrade order (the first runs `kubeadm upgrade apply`, unless
    /// `apply_done`).
    pub control_plane: Vec<String>,
    /// `kubeadm upgrade apply` of `to` already ran: every control-plane step is `upgrade node`.
    pub apply_done: bool,
    /// Nodes already at `to` (read from the cluster): nothing to do on them in this hop.
    pub done: Vec<String>,
    pub kubelets_first: Vec<String>,
    /// Workers that move to `from` before the control plane (skew window and catch-up).
    pub before_control_plane: Vec<String>,
    /// Workers that move to `to` after the control plane.
    pub workers: Vec<String>,
}

/// One step of the simulation, for checking the plan against independent arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// A wave (or control-plane step) starts: its nodes are cordoned.
    WaveStart { hop: usize, nodes: Vec<String> },
    /// A pod moved from one node to another (placement of its replacement).
    Move { pod: usize, from: String, to: String },
    /// Pods evicted together in one round of a wave; their replacements are Ready at the round's end.
    Round { evicted: Vec<usize> },
    /// The wave is over: its nodes are uncordoned.
    WaveEnd,
}

/// A blocker found while planning, with the nodes it holds up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanBlocker {
    pub finding: Finding,
    pub nodes: BTreeSet<String>,
}

impl PlanBlocker {
    /// How waves refer to it: `code subject`.
    pub fn reference(&self) -> String {
        reference(&self.finding)
    }
}

/// What the drain rules decided for a pod, reduced to what placement needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// Stays on its node (DaemonSet, mirror, finished pods): nothing to place.
    Stays,
    /// Evicted, then placed elsewhere.
    Moves,
    /// Stops the drain of its node: the references of its blockers.
    Blocks(Vec<String>),
}

const NOWHERE: u32 = u32::MAX;

/// Why a batch stopped growing.
enum Stop {
    Limit(WaveBound),
    EndOfGeneration,
    Capacity {
        size: usize,
        why: Unschedulable,
    },
    /// One more node would make the evictions need `rounds` rounds, more than the generation's
    /// `fair` share plus one batch's worth.
    Budget {
        rounds: u32,
        fair: u32,
    },
}

/// How large a batch may grow.
#[derive(Debug, Clone, Copy)]
struct Limit {
    size: usize,
    bound: WaveBound,
    /// Most eviction rounds before the batch stops growing (0: no such stop).
    budget_rounds: u32,
}

impl Limit {
    fn single(bound: WaveBound) -> Self {
        Limit { size: 1, bound, budget_rounds: 0 }
    }
}

/// The simulation state carried through the whole plan.
pub struct Planner<'a> {
    inv: &'a Inventory,
    policy: WavePolicy,
    model: CapacityModel,
    budgets: BudgetTracker,
    fates: Vec<Fate>,
    /// Per inventory pod: its fate is [`Fate::Moves`] (the hot loops' question, kept compact).
    moves: Vec<bool>,
    /// The model's handle of every pod that moves (inventory pod index).
    slots: Vec<Option<PodSlot>>,
    /// Model node index -> inventory node index.
    to_inv: Vec<u32>,
    /// Inventory pod indices currently on each node (inventory node order).
    on_node: Vec<Vec<u32>>,
    pod_node: Vec<u32>,
    /// `pod_node` before the first wave: where the first hop starts, for its budget floor.
    start_node: Vec<u32>,
    /// Disruptions each budget allows before the first wave (tracker view order).
    start_allowed: Vec<i64>,
    /// Static blocker references per node (its pods' `Blocks`).
    static_blocks: Vec<Vec<String>>,
    /// Per inventory pod, the budget (tracker view index) its eviction consumes, or NOWHERE
    /// (always for a pod that does not move).
    consumes: Vec<u32>,
    /// Per inventory pod that moves, the budgets selecting it (tracker view indices):
    /// `covering[covering_start[p]..covering_start[p + 1]]`, looked up once.
    covering: Vec<usize>,
    covering_start: Vec<u32>,
    /// Per inventory pod: (its eviction leaves budgets alone, it is Ready), what an eviction
    /// round asks of it ([`BudgetTracker::evict_known`]), kept apart from the pods so that the
    /// rounds read little memory.
    evict_flags: Vec<(bool, bool)>,
    /// Blockers found while planning (no room, budgets that never recover).
    found: BTreeMap<String, PlanBlocker>,
    trace: Option<Vec<TraceEvent>>,
    hop: usize,
}

impl<'a> Planner<'a> {
    /// Start from the inventory as it is, with the drain rules' outcome per pod and the blockers
    /// that stop drains from `analysis`, the budgets as `budgets` computed them, and `model`
    /// and `placement` from [`CapacityModel::with_placement`] of the same inventory with the
    /// policy's headroom.
    pub fn new(
        inv: &'a Inventory,
        policy: &WavePolicy,
        analysis: &Analysis,
        budgets: BudgetTracker,
        model: CapacityModel,
        placement: &[Option<(NodeIdx, PodSlot)>],
    ) -> Self {
        // Node indices are the model's (name order); `to_inv` leads back to the inventory.
        let by_name: FastMap<&str, u32> =
            inv.nodes.iter().enumerate().rev().map(|(i, n)| (n.name.as_str(), i as u32)).collect();
        let to_inv: Vec<u32> = model.nodes().map(|(_, name)| by_name[name]).collect();
        let count = to_inv.len();
        let mut on_node = vec![Vec::new(); count];
        let mut pod_node = vec![NOWHERE; inv.pods.len()];
        let mut fates = Vec::with_capacity(inv.pods.len());
        let mut slots = vec![None; inv.pods.len()];
        for (i, placed) in placement.iter().enumerate() {
            let fate = if let Some(refs) = analysis.pod_blockers.get(&i) {
                Fate::Blocks(refs.clone())
            } else if analysis.evicts[i] {
                Fate::Moves
            } else {
                Fate::Stays
            };
            if let Some((NodeIdx(n), slot)) = *placed {
                on_node[n as usize].push(i as u32);
                pod_node[i] = n;
                if fate == Fate::Moves {
                    slots[i] = Some(slot);
                }
            }
            fates.push(fate);
        }
        let moves: Vec<bool> = fates.iter().map(|f| *f == Fate::Moves).collect();
        let mut static_blocks = vec![Vec::new(); count];
        for (n, pods) in on_node.iter().enumerate() {
            let mut refs: Vec<String> = pods
                .iter()
                .filter_map(|&p| match &fates[p as usize] {
                    Fate::Blocks(r) => Some(r.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            refs.sort();
            refs.dedup();
            static_blocks[n] = refs;
        }
        // Each moving pod's budgets, looked up by label: the two halves of the pods on two
        // threads, joined in pod order.
        let half = inv.pods.len() / 2;
        let (mut first, second) = std::thread::scope(|s| {
            let second = s.spawn(|| covering_of(&inv.pods[half..], &moves[half..], &budgets));
            let first = covering_of(&inv.pods[..half], &moves[..half], &budgets);
            (first, super::joined(second))
        });
        let base = first.covering.len() as u32;
        first.consumes.extend(second.consumes);
        first.covering.extend(second.covering);
        first.starts.extend(second.starts.iter().map(|&start| start + base));
        first.starts.push(first.covering.len() as u32);
        let Covering { consumes, covering, starts: covering_start } = first;
        let evict_flags = inv.pods.iter().map(|p| (BudgetTracker::leaves_budgets_alone(p), p.ready)).collect();
        let start_allowed = (0..budgets.budgets().len()).map(|b| budgets.allowed_at(b)).collect();
        Planner {
            inv,
            policy: policy.clone(),
            model,
            budgets,
            fates,
            moves,
            slots,
            to_inv,
            on_node,
            start_node: pod_node.clone(),
            pod_node,
            start_allowed,
            static_blocks,
            consumes,
            covering,
            covering_start,
            evict_flags,
            found: BTreeMap::new(),
            trace: None,
            hop: 0,
        }
    }

    /// Set the per-generation batch limits (once known from [`Self::capacity_batch_bound`]).
    pub fn set_limits(&mut self, limits: BTreeMap<String, GenerationLimit>, fallback: u32) {
        self.policy.limits = limits;
        self.policy.fallback_limit = fallback;
    }

    /// Record every simulated move and eviction round (for property tests).
    pub fn with_trace(mut self) -> Self {
        self.trace = Some(Vec::new());
        self
    }

    pub fn trace(&self) -> &[TraceEvent] {
        self.trace.as_deref().unwrap_or(&[])
    }

    pub fn take_trace(&mut self) -> Vec<TraceEvent> {
        self.trace.take().unwrap_or_default()
    }

    /// Blockers discovered while planning, sorted by reference.
    pub fn found_blockers(&self) -> Vec<PlanBlocker> {
        self.found.values().cloned().collect()
    }

    fn record(&mut self, e: TraceEvent) {
        if let Some(t) = &mut self.trace {
            t.push(e);
        }
    }

    fn node(&self, idx: u32) -> &'a Node {
        &self.inv.nodes[self.to_inv[idx as usize] as usize]
    }

    fn pod(&self, idx: u32) -> &'a Pod {
        &self.inv.pods[idx as usize]
    }

    /// The budgets selecting a pod that moves (tracker view indices).
    fn covering_of(&self, pod: u32) -> std::ops::Range<usize> {
        self.covering_start[pod as usize] as usize..self.covering_start[pod as usize + 1] as usize
    }

    /// The budget waits no plan under the same batch limits avoids in the first of `hops` (the
    /// plan's), which starts from the inventory's placement: the sum over its generations of
    /// [`hop_budget_floor`], with `relaxed` the hops of [`relaxed`]. Later hops start from
    /// placements the plan chose, so they add nothing here.
    pub fn first_hop_budget_floor(&self, hops: &[Hop], relaxed: &[Hop], durations: &Durations) -> u64 {
        let (Some(hop), Some(relaxed)) = (hops.first(), relaxed.first()) else { return 0 };
        let consuming = (0..self.inv.pods.len()).filter_map(|p| {
            let (node, budget) = (self.start_node[p], self.consumes[p]);
            // A node that cannot be drained until fixed may move in a wave of its own in another
            // plan, its pods never evicted: they count for nothing.
            (budget != NOWHERE && node != NOWHERE && self.static_blocks[node as usize].is_empty())
                .then_some((node, budget as usize))
        });
        let node_of = |name: &str| self.model.node(name).map(|n| n.0);
        hop_budget_floor(
            hop,
            relaxed,
            node_of,
            consuming,
            &self.start_allowed,
            durations,
            self.policy.batch_wait_minutes,
        )
        .iter()
        .map(|(_, minutes)| minutes)
        .sum()
    }

    /// Plan every hop.
    pub fn plan(&mut self, hops: &[HopNodes]) -> Vec<Hop> {
        let mut out = Vec::with_capacity(hops.len());
        for (h, hop) in hops.iter().enumerate() {
            self.hop = h;
            out.push(self.plan_hop(hop));
        }
        // No wait after the very last wave of the plan.
        if let Some(last) = out.iter_mut().rev().find_map(|h: &mut Hop| h.waves.last_mut()) {
            last.wait_after_minutes = 0;
        }
        out
    }

    fn plan_hop(&mut self, hop: &HopNodes) -> Hop {
        let before = self.worker_waves(&hop.before_control_plane, false);
        let mut control_plane = Vec::new();
        for (i, name) in hop.control_plane.iter().enumerate() {
            let Some(idx) = self.model.node(name).map(|n| n.0) else { continue };
            let action = if i == 0 && !hop.apply_done { ControlPlaneAction::Apply } else { ControlPlaneAction::Node };
            let (pods_moved, blockers) = match self.control_plane_drain(idx) {
                Ok(done) => (done.pods_moved, vec![]),
                Err(refs) => (0, refs),
            };
            control_plane.push(ControlPlaneStep {
                node: name.clone(),
                action,
                generation: self.node(idx).generation.clone(),
                pods_moved,
                blockers,
            });
        }
        let waves = self.worker_waves(&hop.workers, true);
        Hop {
            from: hop.from.clone(),
            to: hop.to.clone(),
            etcd: hop.etcd.clone(),
            done: hop.done.clone(),
            kubelets_first: hop.kubelets_first.clone(),
            before_control_plane: before,
            control_plane,
            waves,
        }
    }
}

/// The budgets of a run of pods, laid out as [`Planner`] keeps them: per pod the budget its
/// eviction consumes (or [`NOWHERE`]) and where its covering budgets start in `covering`
/// (relative to this run).
struct Covering {
    consumes: Vec<u32>,
    covering: Vec<usize>,
    starts: Vec<u32>,
}

fn covering_of(pods: &[Pod], moves: &[bool], budgets: &BudgetTracker) -> Covering {
    let mut out =
        Covering { consumes: vec![NOWHERE; pods.len()], covering: Vec::new(), starts: Vec::with_capacity(pods.len()) };
    for (i, pod) in pods.iter().enumerate() {
        out.starts.push(out.covering.len() as u32);
        if moves[i] {
            let selecting = budgets.covering_indices(pod);
            if let Some(b) = BudgetTracker::consuming_of(pod, &selecting) {
                out.consumes[i] = b as u32;
            }
            out.covering.extend(selecting);
        }
    }
    out
}

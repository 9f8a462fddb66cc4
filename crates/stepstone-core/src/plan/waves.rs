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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::findings::{Finding, Severity};
use crate::inventory::{Inventory, Node, Pod};
use crate::pdb::{BudgetTracker, EvictionAt};

use super::blockers::{Analysis, nowhere_hint, reference};
use super::limits::{GenerationLimit, LimitSource};
use super::model::{ControlPlaneAction, ControlPlaneStep, Hop, Wave, WaveBound, WaveKind};
use crate::capacity::{CapacityModel, Headroom, NodeIdx, PodSlot, Unschedulable};

/// Knobs of the wave planner.
#[derive(Debug, Clone)]
pub struct WavePolicy {
    /// Per hardware generation, most workers drained at once and what set it.
    pub limits: BTreeMap<String, GenerationLimit>,
    /// The limit of a generation missing from `limits`.
    pub fallback_limit: u32,
    /// Under a default (not the operator's) limit, a batch stops growing before its evictions
    /// would need more rounds than this (0: budgets never stop a batch).
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
    /// One more node would make the evictions need this many rounds.
    Budget {
        rounds: u32,
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
    /// The model's handle of every pod that moves (inventory pod index).
    slots: Vec<Option<PodSlot>>,
    /// Model node index -> inventory node index.
    to_inv: Vec<u32>,
    /// Inventory pod indices currently on each node (inventory node order).
    on_node: Vec<Vec<u32>>,
    pod_node: Vec<u32>,
    /// Static blocker references per node (its pods' `Blocks`).
    static_blocks: Vec<Vec<String>>,
    /// Per inventory pod, the budget (tracker view index) its eviction consumes, or NOWHERE.
    consumes: Vec<u32>,
    /// Per inventory pod that moves, the budgets selecting it (tracker view indices):
    /// `covering[covering_start[p]..covering_start[p + 1]]`, looked up once.
    covering: Vec<usize>,
    covering_start: Vec<u32>,
    /// Blockers found while planning (no room, budgets that never recover).
    found: BTreeMap<String, PlanBlocker>,
    trace: Option<Vec<TraceEvent>>,
    hop: usize,
}

impl<'a> Planner<'a> {
    /// Start from the inventory as it is, with the drain rules' outcome per pod and the blockers
    /// that stop drains from `analysis`, the budgets as `budgets` computed them, and `model`
    /// built from the same inventory with the policy's headroom.
    pub fn new(
        inv: &'a Inventory,
        policy: &WavePolicy,
        analysis: &Analysis,
        budgets: BudgetTracker,
        mut model: CapacityModel,
    ) -> Self {
        // Node indices are the model's (name order); `to_inv` leads back to the inventory.
        let by_name: HashMap<&str, u32> =
            inv.nodes.iter().enumerate().rev().map(|(i, n)| (n.name.as_str(), i as u32)).collect();
        let to_inv: Vec<u32> = model.nodes().map(|(_, name)| by_name[name]).collect();
        let count = to_inv.len();
        let mut on_node = vec![Vec::new(); count];
        let mut pod_node = vec![NOWHERE; inv.pods.len()];
        let mut fates = Vec::with_capacity(inv.pods.len());
        let mut slots = vec![None; inv.pods.len()];
        for (i, pod) in inv.pods.iter().enumerate() {
            let node = pod.node_name.as_deref().and_then(|n| model.node(n)).map(|n| n.0);
            let fate = if let Some(refs) = analysis.pod_blockers.get(&i) {
                Fate::Blocks(refs.clone())
            } else if analysis.evicts[i] {
                Fate::Moves
            } else {
                Fate::Stays
            };
            if let Some(n) = node
                && !pod.phase.is_finished()
            {
                on_node[n as usize].push(i as u32);
                pod_node[i] = n;
                if fate == Fate::Moves {
                    // The model was built from this inventory: the pod's slot is current.
                    slots[i] = Some(model.existing_slot(pod).unwrap_or_else(|| model.slot(pod)));
                }
            }
            fates.push(fate);
        }
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
        let consumes = inv
            .pods
            .iter()
            .enumerate()
            .map(|(i, pod)| match fates[i] {
                Fate::Moves => budgets.consuming_budget(pod).map_or(NOWHERE, |b| b as u32),
                _ => NOWHERE,
            })
            .collect();
        let mut covering = Vec::new();
        let mut covering_start = Vec::with_capacity(inv.pods.len() + 1);
        for (i, pod) in inv.pods.iter().enumerate() {
            covering_start.push(covering.len() as u32);
            if fates[i] == Fate::Moves {
                covering.extend(budgets.covering_indices(pod));
            }
        }
        covering_start.push(covering.len() as u32);
        Planner {
            inv,
            policy: policy.clone(),
            model,
            budgets,
            fates,
            slots,
            to_inv,
            on_node,
            pod_node,
            static_blocks,
            consumes,
            covering,
            covering_start,
            found: BTreeMap::new(),
            trace: None,
            hop: 0,
        }
    }

    /// An upper bound on the number of nodes any safe batch can hold, from aggregate capacity
    /// alone: whatever the batch, every pod that moves must end up on the other nodes within
    /// the headroom. Per resource, each node offers at most `max(limit, load now) - load that
    /// never moves`; removing the nodes offering least must leave room for all movable load.
    /// Bin packing, selectors, anti-affinity and budgets can only make batches smaller.
    pub fn capacity_batch_bound(&self) -> usize {
        let headroom = self.policy.headroom;
        let count = self.to_inv.len();
        let mut offer: [Vec<i128>; 3] =
            [Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count)];
        let mut movable = [0i128; 3];
        for n in 0..count as u32 {
            let node = self.node(n);
            let a = node.allocatable;
            let mut load = [0i128; 3];
            let mut stay = [0i128; 3];
            for &p in &self.on_node[n as usize] {
                let r = self.pod(p).requests;
                let v = [i128::from(r.cpu_millis), i128::from(r.memory_bytes), 1];
                for k in 0..3 {
                    load[k] += v[k];
                    if self.fates[p as usize] == Fate::Moves {
                        movable[k] += v[k];
                    } else {
                        stay[k] += v[k];
                    }
                }
            }
            let limit = [
                i128::from(a.cpu_millis) * i128::from(headroom.as_percent()) / 100,
                i128::from(a.memory_bytes) * i128::from(headroom.as_percent()) / 100,
                i128::from(a.pods),
            ];
            for k in 0..3 {
                offer[k].push(limit[k].max(load[k]) - stay[k]);
            }
        }
        let mut bound = count;
        for k in 0..3 {
            offer[k].sort_unstable();
            let mut remaining: i128 = offer[k].iter().sum();
            let mut removable = 0;
            for o in &offer[k] {
                if remaining - o < movable[k] {
                    break;
                }
                remaining -= o;
                removable += 1;
            }
            bound = bound.min(removable);
        }
        bound.max(1)
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

    /// Generations of `names` in the policy's order (unknown generations last, by name).
    fn by_generation(&self, names: &[String]) -> Vec<(String, Vec<u32>)> {
        let mut groups: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for name in names {
            if let Some(idx) = self.model.node(name).map(|n| n.0) {
                groups.entry(self.node(idx).generation.as_str()).or_default().push(idx);
            }
        }
        for g in groups.values_mut() {
            g.sort_by(|a, b| self.node(*a).name.cmp(&self.node(*b).name));
        }
        let rank = |g: &str| self.policy.generation_order.iter().position(|x| x == g).unwrap_or(usize::MAX);
        let mut out: Vec<(String, Vec<u32>)> = groups.into_iter().map(|(g, n)| (g.to_string(), n)).collect();
        out.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
        out
    }

    fn worker_waves(&mut self, names: &[String], canaries: bool) -> Vec<Wave> {
        let mut waves = Vec::new();
        let generations = self.by_generation(names);
        let mut queues: Vec<(String, Vec<u32>, Vec<u32>)> = Vec::new();
        for (generation, nodes) in generations {
            let (blocked, free): (Vec<u32>, Vec<u32>) =
                nodes.into_iter().partition(|&n| !self.static_blocks[n as usize].is_empty());
            queues.push((generation, free, blocked));
        }
        if canaries {
            for (generation, free, _) in &mut queues {
                let mut chosen = None;
                let mut i = 0;
                while i < free.len() {
                    let candidate = free[i];
                    match self.batch_limited(&[candidate], Limit::single(WaveBound::Canary)) {
                        Ok(done) => {
                            chosen = Some((candidate, done));
                            free.remove(i);
                            break;
                        }
                        Err(_) => {
                            // No room for it now; it is retried after the generation's batches.
                            i += 1;
                        }
                    }
                }
                if let Some((node, done)) = chosen {
                    let mut reason = format!(
                        "canary: first {generation} node to move, then a {}m soak before the next wave",
                        self.policy.canary_soak_minutes
                    );
                    reason.push_str(&done.budget_note(self.policy.pod_start_minutes));
                    waves.push(Wave {
                        kind: WaveKind::Canary,
                        generation: generation.clone(),
                        nodes: vec![self.node(node).name.clone()],
                        reason,
                        wait_after_minutes: self.policy.canary_soak_minutes,
                        pods_moved: done.pods_moved,
                        pdb_wait_minutes: done.pdb_wait_minutes(self.policy.pod_start_minutes),
                        blockers: vec![],
                        bound: Some(WaveBound::Canary),
                    });
                }
            }
        }
        for (generation, free, blocked) in queues {
            let limit = self.limit_of(&generation);
            let mut pending: std::collections::VecDeque<u32> = strided(&free, limit.size).into();
            let mut deferred: Vec<u32> = Vec::new();
            let mut retried = false;
            loop {
                if pending.is_empty() {
                    if retried || deferred.is_empty() {
                        break;
                    }
                    retried = true;
                    pending = std::mem::take(&mut deferred).into();
                }
                let candidates: Vec<u32> = pending.iter().copied().collect();
                match self.batch_limited(&candidates, limit) {
                    Ok(done) => {
                        let taken: HashSet<u32> = done.nodes.iter().copied().collect();
                        pending.retain(|n| !taken.contains(n));
                        let size = done.nodes.len();
                        let mut reason = match &done.stop {
                            Stop::Limit(_) => self.limit_reason(&generation, limit),
                            Stop::Budget { rounds } => format!(
                                "budget: one more node would make its evictions wait {rounds} rounds (+{}m), longer than a worker's own move",
                                rounds.saturating_sub(1) * self.policy.pod_start_minutes
                            ),
                            Stop::EndOfGeneration if !blocked.is_empty() || !deferred.is_empty() => {
                                format!("last {generation} nodes that can be drained now: {size}")
                            }
                            Stop::EndOfGeneration if size == 1 => format!("rest of {generation}: 1 node left"),
                            Stop::EndOfGeneration => format!("rest of {generation}: {size} nodes left"),
                            Stop::Capacity { size: tried, why } => capacity_reason(*tried, why),
                        };
                        reason.push_str(&done.budget_note(self.policy.pod_start_minutes));
                        let bound = match &done.stop {
                            Stop::Limit(b) => *b,
                            Stop::EndOfGeneration => WaveBound::RestOfGeneration,
                            Stop::Capacity { .. } => WaveBound::Capacity,
                            Stop::Budget { .. } => WaveBound::Budget,
                        };
                        waves.push(Wave {
                            kind: WaveKind::Batch,
                            generation: generation.clone(),
                            nodes: done.nodes.iter().map(|&n| self.node(n).name.clone()).collect(),
                            reason,
                            wait_after_minutes: self.policy.batch_wait_minutes,
                            pods_moved: done.pods_moved,
                            pdb_wait_minutes: done.pdb_wait_minutes(self.policy.pod_start_minutes),
                            blockers: vec![],
                            bound: Some(bound),
                        });
                    }
                    Err(why) => {
                        let n = pending.pop_front().expect("not empty");
                        if retried {
                            self.record_nowhere(n, &why);
                            self.push_blocked(&mut waves, &generation, &[n]);
                        } else {
                            deferred.push(n);
                        }
                    }
                }
            }
            for chunk in blocked.chunks(limit.size.clamp(1, 1 << 20)) {
                self.push_blocked(&mut waves, &generation, chunk);
            }
        }
        waves
    }

    fn push_blocked(&mut self, waves: &mut Vec<Wave>, generation: &str, nodes: &[u32]) {
        let mut refs: Vec<String> = Vec::new();
        for &n in nodes {
            refs.extend(self.static_blocks[n as usize].iter().cloned());
            let name = &self.node(n).name;
            refs.extend(self.found.values().filter(|b| b.nodes.contains(name)).map(|b| b.reference()));
        }
        refs.sort();
        refs.dedup();
        self.record(TraceEvent::WaveStart {
            hop: self.hop,
            nodes: nodes.iter().map(|&n| self.node(n).name.clone()).collect(),
        });
        self.record(TraceEvent::WaveEnd);
        waves.push(Wave {
            kind: WaveKind::Batch,
            generation: generation.to_string(),
            nodes: nodes.iter().map(|&n| self.node(n).name.clone()).collect(),
            reason: format!("blocked: cannot be drained until fixed: {}", refs.join("; ")),
            wait_after_minutes: self.policy.batch_wait_minutes,
            pods_moved: 0,
            pdb_wait_minutes: 0,
            blockers: refs,
            bound: Some(WaveBound::Blocked),
        });
    }

    /// The batch limit of `generation`.
    fn limit_of(&self, generation: &str) -> Limit {
        match self.policy.limits.get(generation) {
            Some(l) => Limit {
                size: l.limit.max(1) as usize,
                bound: match l.source {
                    LimitSource::Operator => WaveBound::Operator,
                    LimitSource::GenerationShare => WaveBound::GenerationShare,
                    LimitSource::Capacity => WaveBound::Capacity,
                },
                // The operator's number is taken as given: budgets then cost time only.
                budget_rounds: if l.source == LimitSource::Operator { 0 } else { self.policy.max_budget_rounds },
            },
            None => {
                Limit { size: self.policy.fallback_limit.max(1) as usize, bound: WaveBound::Operator, budget_rounds: 0 }
            }
        }
    }

    fn limit_reason(&self, generation: &str, limit: Limit) -> String {
        let workers = self.policy.limits.get(generation).map_or(0, |l| l.workers);
        let oldest = self.policy.generation_order.first().is_some_and(|g| g == generation);
        match limit.bound {
            WaveBound::GenerationShare => format!(
                "generation share: {} of the {workers} {generation} workers at once ({})",
                limit.size,
                if oldest { "1/8 of the oldest generation" } else { "1/5 of a later generation" }
            ),
            WaveBound::Capacity => {
                format!("capacity: no batch of more than {} nodes fits the other nodes' headroom", limit.size)
            }
            _ => format!("operator: --max-unavailable {}", limit.size),
        }
    }

    /// Drain a control-plane node on its own. On failure the node's blockers, recorded.
    fn control_plane_drain(&mut self, idx: u32) -> Result<Done, Vec<String>> {
        if !self.static_blocks[idx as usize].is_empty() {
            return Err(self.static_blocks[idx as usize].clone());
        }
        self.batch_limited(&[idx], Limit::single(WaveBound::Canary)).map_err(|why| {
            self.record_nowhere(idx, &why);
            let name = &self.node(idx).name;
            self.found.values().filter(|b| b.nodes.contains(name)).map(|b| b.reference()).collect()
        })
    }

    /// Grow a batch from `candidates` while it stays safe, then run its evictions. `Err` when
    /// even the first node cannot be drained. Under the operator's limit (or a single node) the
    /// batch takes the candidates in order; under a default limit it chooses them by their
    /// budgets ([`Self::grow_by_budget`]).
    fn batch_limited(&mut self, candidates: &[u32], limit: Limit) -> Result<Done, Unschedulable> {
        let mut nodes: Vec<u32> = Vec::new();
        let mut moves: Vec<(u32, u32, u32)> = Vec::new();
        let stop = if limit.budget_rounds > 0 {
            self.grow_by_budget(candidates, limit, &mut nodes, &mut moves)?
        } else {
            let mut stop = Stop::EndOfGeneration;
            for &c in candidates {
                if nodes.len() == limit.size {
                    stop = Stop::Limit(limit.bound);
                    break;
                }
                match self.drain_into_model(c) {
                    Ok(m) => {
                        nodes.push(c);
                        moves.extend(m);
                    }
                    Err(why) => {
                        if nodes.is_empty() {
                            return Err(why);
                        }
                        stop = Stop::Capacity { size: nodes.len() + 1, why };
                        break;
                    }
                }
            }
            stop
        };
        // A pod placed on a node that later joined the batch moved twice in the simulation; in
        // the real drain every batch node is cordoned first, so it is one eviction from its
        // original node to its final one.
        let mut first_from: HashMap<u32, u32> = HashMap::new();
        let mut evicted: Vec<u32> = Vec::new();
        for &(pod, from, _) in &moves {
            if let std::collections::hash_map::Entry::Vacant(e) = first_from.entry(pod) {
                e.insert(from);
                evicted.push(pod);
            }
        }
        if self.trace.is_some() {
            let names: Vec<String> = nodes.iter().map(|&n| self.node(n).name.clone()).collect();
            self.record(TraceEvent::WaveStart { hop: self.hop, nodes: names });
            for &pod in &evicted {
                let (from, to) = (first_from[&pod], self.pod_node[pod as usize]);
                self.record(TraceEvent::Move {
                    pod: pod as usize,
                    from: self.node(from).name.clone(),
                    to: self.node(to).name.clone(),
                });
            }
        }
        let (rounds, waited_on) = self.evict_in_rounds(&evicted);
        for &n in &nodes {
            self.model.set_unschedulable(NodeIdx(n), false);
        }
        self.record(TraceEvent::WaveEnd);
        Ok(Done { nodes, pods_moved: evicted.len() as u64, rounds, waited_on, stop })
    }

    /// Fill a batch of up to `limit.size` nodes whose evictions need as few budget rounds as
    /// the generation allows. Each eviction round takes one disruption from every budget at
    /// once, so a batch costs the rounds of its most crowded budget: nodes whose pods share no
    /// budget go together, their waits overlap. The batch first takes, in candidate order, the
    /// nodes that keep it within the generation's fair share (every budget's pods on the
    /// candidates spread evenly over the batches still to come); only when that leaves it short
    /// does it accept the next fewest rounds, up to `limit.budget_rounds`. A node passed over
    /// costs a look at its pods, not a simulated drain.
    fn grow_by_budget(
        &mut self,
        candidates: &[u32],
        limit: Limit,
        nodes: &mut Vec<u32>,
        moves: &mut Vec<(u32, u32, u32)>,
    ) -> Result<Stop, Unschedulable> {
        let budget_count = self.budgets.budgets().len();
        let allowed: Vec<u64> = (0..budget_count).map(|b| self.budgets.allowed_at(b).max(1) as u64).collect();
        let mut waiting = vec![0u64; budget_count];
        for &c in candidates {
            for &p in &self.on_node[c as usize] {
                let b = self.consumes[p as usize];
                if b != NOWHERE && self.fates[p as usize] == Fate::Moves {
                    waiting[b as usize] += 1;
                }
            }
        }
        let batches_left = candidates.len().div_ceil(limit.size.max(1)).max(1) as u64;
        let fair = waiting.iter().zip(&allowed).map(|(&w, &a)| w.div_ceil(batches_left).div_ceil(a)).max().unwrap_or(1);
        let mut threshold = u32::try_from(fair).unwrap_or(u32::MAX).clamp(1, limit.budget_rounds);
        // Healthy pods of each budget this batch evicts, and the pods already counted (a pod
        // placed on a node that later joins the batch is still one eviction).
        let mut per_budget = vec![0u32; budget_count];
        let mut counted = vec![false; self.inv.pods.len()];
        let mut taken = vec![false; candidates.len()];
        loop {
            // The fewest rounds among the nodes left out at this threshold.
            let mut over: Option<u32> = None;
            for (i, &c) in candidates.iter().enumerate() {
                if taken[i] {
                    continue;
                }
                if nodes.len() == limit.size {
                    return Ok(Stop::Limit(limit.bound));
                }
                let rounds = self.rounds_with(c, &per_budget, &allowed, &counted);
                if rounds > threshold && !nodes.is_empty() {
                    over = Some(over.map_or(rounds, |r| r.min(rounds)));
                    continue;
                }
                match self.drain_into_model(c) {
                    Ok(m) => {
                        for &(p, _, _) in &m {
                            if !std::mem::replace(&mut counted[p as usize], true) {
                                let b = self.consumes[p as usize];
                                if b != NOWHERE {
                                    per_budget[b as usize] += 1;
                                }
                            }
                        }
                        taken[i] = true;
                        nodes.push(c);
                        moves.extend(m);
                    }
                    Err(why) => {
                        if nodes.is_empty() {
                            return Err(why);
                        }
                        return Ok(Stop::Capacity { size: nodes.len() + 1, why });
                    }
                }
            }
            // Every candidate taken: the generation ends here, whether or not the batch also
            // reached its limit.
            if taken.iter().all(|&t| t) {
                return Ok(Stop::EndOfGeneration);
            }
            if nodes.len() == limit.size {
                return Ok(Stop::Limit(limit.bound));
            }
            match over {
                None => return Ok(Stop::EndOfGeneration),
                Some(rounds) if rounds > limit.budget_rounds => return Ok(Stop::Budget { rounds }),
                // Every node left needs more rounds than this pass allowed: the fewest of them.
                Some(rounds) => threshold = rounds,
            }
        }
    }

    /// Eviction rounds of the batch counted in `per_budget` if `node` joined it.
    fn rounds_with(&self, node: u32, per_budget: &[u32], allowed: &[u64], counted: &[bool]) -> u32 {
        let mut added: Vec<(u32, u32)> = Vec::new();
        for &p in &self.on_node[node as usize] {
            let b = self.consumes[p as usize];
            if b == NOWHERE || counted[p as usize] || self.fates[p as usize] != Fate::Moves {
                continue;
            }
            match added.iter_mut().find(|(x, _)| *x == b) {
                Some((_, n)) => *n += 1,
                None => added.push((b, 1)),
            }
        }
        added
            .iter()
            .map(|&(b, n)| u64::from(per_budget[b as usize] + n).div_ceil(allowed[b as usize]) as u32)
            .max()
            .unwrap_or(0)
    }

    /// Cordon `node` and place every pod that moves off it. On failure everything is undone.
    fn drain_into_model(&mut self, node: u32) -> Result<Vec<(u32, u32, u32)>, Unschedulable> {
        self.model.set_unschedulable(NodeIdx(node), true);
        let leaving: Vec<u32> =
            self.on_node[node as usize].iter().copied().filter(|&p| self.fates[p as usize] == Fate::Moves).collect();
        let mut done: Vec<(u32, u32, u32)> = Vec::with_capacity(leaving.len());
        for p in leaving {
            let pod = self.pod(p);
            let slot = self.slot(p);
            self.model.unbind(slot);
            match self.model.pick(slot, None) {
                Some(NodeIdx(t)) => {
                    self.model.bind(slot, NodeIdx(t));
                    self.relocate(p, node, t);
                    done.push((p, node, t));
                }
                None => {
                    let why = self.model.explain(pod, None);
                    self.model.bind(slot, NodeIdx(node));
                    for &(q, from, to) in done.iter().rev() {
                        self.model.bind(self.slot(q), NodeIdx(from));
                        self.relocate(q, to, from);
                    }
                    self.model.set_unschedulable(NodeIdx(node), false);
                    return Err(why);
                }
            }
        }
        Ok(done)
    }

    /// The model's handle of a pod that moves (every such pod got one in [`Planner::new`]).
    fn slot(&self, pod: u32) -> PodSlot {
        self.slots[pod as usize].expect("pods that move have a slot")
    }

    fn relocate(&mut self, pod: u32, from: u32, to: u32) {
        let list = &mut self.on_node[from as usize];
        if let Some(pos) = list.iter().position(|&p| p == pod) {
            list.swap_remove(pos);
        }
        self.on_node[to as usize].push(pod);
        self.pod_node[pod as usize] = to;
    }

    /// Evict in rounds of one pod start time; returns the number of rounds and the budgets that
    /// made pods wait.
    fn evict_in_rounds(&mut self, evicted: &[u32]) -> (u32, BTreeSet<String>) {
        if !self.policy.serialise_budgets || evicted.is_empty() {
            if !evicted.is_empty() {
                self.record(TraceEvent::Round { evicted: evicted.iter().map(|&p| p as usize).collect() });
            }
            return (u32::from(!evicted.is_empty()), BTreeSet::new());
        }
        // Budgets by view index while the rounds run; named once at the end.
        let mut waited_on: BTreeSet<usize> = BTreeSet::new();
        let mut pending: Vec<u32> = evicted.to_vec();
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            let mut now = Vec::new();
            let mut free = Vec::new();
            let mut later = Vec::new();
            for p in pending {
                let covering = &self.covering[self.covering_of(p)];
                match self.budgets.evict_covered(&self.inv.pods[p as usize], covering) {
                    EvictionAt::Consumed(_) => now.push(p),
                    EvictionAt::Free | EvictionAt::Unhealthy(_) => free.push(p),
                    EvictionAt::Refused(b) => {
                        waited_on.insert(b);
                        later.push(p);
                    }
                }
            }
            if now.is_empty() && free.is_empty() {
                // Nothing moved in a whole round: these budgets never recover. The pods were
                // placed already; report the hang instead of looping.
                for p in &later {
                    self.record_budget_hang(*p);
                }
                break;
            }
            self.record(TraceEvent::Round { evicted: now.iter().chain(&free).map(|&p| p as usize).collect() });
            for &p in &now {
                let range = self.covering_of(p);
                self.budgets.replacement_ready_covered(&self.covering[range]);
            }
            pending = later;
        }
        let names = waited_on.into_iter().map(|b| self.budgets.budgets()[b].key()).collect();
        (rounds, names)
    }

    fn record_nowhere(&mut self, node: u32, why: &Unschedulable) {
        let name = self.node(node).name.clone();
        let subject = why.pod.clone();
        let key = format!("blocker.nowhere-to-go {subject}");
        let entry = self.found.entry(key).or_insert_with(|| PlanBlocker {
            finding: Finding::new(
                Severity::Error,
                "blocker.nowhere-to-go",
                subject,
                format!("during the plan, draining {name} leaves this pod with nowhere to go: {why}"),
                nowhere_hint(why, self.policy.headroom),
            ),
            nodes: BTreeSet::new(),
        });
        entry.nodes.insert(name);
    }

    fn record_budget_hang(&mut self, pod: u32) {
        let p = self.pod(pod);
        let node = self.pod_node[pod as usize];
        let subject = p.key();
        let key = format!("blocker.pdb-hang {subject}");
        let name = if node == NOWHERE { String::new() } else { self.node(node).name.clone() };
        let entry = self.found.entry(key).or_insert_with(|| PlanBlocker {
            finding: Finding::new(
                Severity::Error,
                "blocker.pdb-hang",
                subject,
                "during the plan this pod's disruption budget reaches 0 allowed disruptions and does not recover: the drain would hang".to_string(),
                "scale the workload up by one for the duration, or relax the budget (minAvailable/maxUnavailable)".to_string(),
            ),
            nodes: BTreeSet::new(),
        });
        if !name.is_empty() {
            entry.nodes.insert(name);
        }
    }
}

/// `nodes` reordered so that each run of `batch` consecutive entries is spread evenly over the
/// whole list (every k-th node, k = len / batch): replicas of a workload sit on neighbouring
/// nodes (placed one after another, or moved together by an earlier batch), so a batch of
/// neighbours would evict many pods under one budget one at a time, while a spread batch holds
/// a few pods of many budgets, whose waits overlap.
fn strided(nodes: &[u32], batch: usize) -> Vec<u32> {
    let step = nodes.len().div_ceil(batch.max(1)).max(1);
    (0..step).flat_map(|start| nodes.iter().skip(start).step_by(step).copied()).collect()
}

fn capacity_reason(tried: usize, why: &Unschedulable) -> String {
    match &why.closest {
        Some(overflow) => format!("capacity: {tried} nodes at once would put {overflow}"),
        None => format!("capacity: with {tried} nodes at once, {why}"),
    }
}

/// A simulated batch that went through.
struct Done {
    nodes: Vec<u32>,
    pods_moved: u64,
    rounds: u32,
    waited_on: BTreeSet<String>,
    stop: Stop,
}

impl Done {
    fn pdb_wait_minutes(&self, pod_start: u32) -> u32 {
        self.rounds.saturating_sub(1) * pod_start
    }

    fn budget_note(&self, pod_start: u32) -> String {
        if self.waited_on.is_empty() {
            return String::new();
        }
        let list: Vec<&str> = self.waited_on.iter().map(String::as_str).take(3).collect();
        let more =
            if self.waited_on.len() > 3 { format!(" and {} more", self.waited_on.len() - 3) } else { String::new() };
        format!(
            "; evictions wait on {}{more} ({} rounds, +{}m)",
            list.join(", "),
            self.rounds,
            self.pdb_wait_minutes(pod_start)
        )
    }
}

/// The plan's hops with every generation's batches re-cut to `batch_size(generation)` nodes (or
/// the plan's largest batch of that generation, if larger) and no time lost to budgets: the
/// lower bound's shape. Canaries, soaks, waits and control-plane steps stay.
pub fn relaxed(hops: &[Hop], batch_size: impl Fn(&str) -> usize, batch_wait_minutes: u32) -> Vec<Hop> {
    let recut = |waves: &[Wave]| -> Vec<Wave> {
        let mut out: Vec<Wave> = Vec::new();
        let mut i = 0;
        while i < waves.len() {
            let w = &waves[i];
            if w.kind == WaveKind::Canary {
                out.push(Wave { pdb_wait_minutes: 0, ..w.clone() });
                i += 1;
                continue;
            }
            let run: Vec<&Wave> =
                waves[i..].iter().take_while(|x| x.kind == WaveKind::Batch && x.generation == w.generation).collect();
            i += run.len();
            let largest = run.iter().map(|x| x.nodes.len()).max().unwrap_or(1);
            let nodes: Vec<String> = run.iter().flat_map(|x| x.nodes.iter().cloned()).collect();
            for chunk in nodes.chunks(batch_size(&w.generation).max(largest).max(1)) {
                out.push(Wave {
                    kind: WaveKind::Batch,
                    generation: w.generation.clone(),
                    nodes: chunk.to_vec(),
                    reason: "lower-bound batch".to_string(),
                    wait_after_minutes: batch_wait_minutes,
                    pods_moved: 0,
                    pdb_wait_minutes: 0,
                    blockers: vec![],
                    bound: None,
                });
            }
        }
        out
    };
    let mut out: Vec<Hop> = hops
        .iter()
        .map(|h| Hop { before_control_plane: recut(&h.before_control_plane), waves: recut(&h.waves), ..h.clone() })
        .collect();
    if let Some(last) = out.iter_mut().rev().find_map(|h| h.waves.last_mut()) {
        last.wait_after_minutes = 0;
    }
    out
}

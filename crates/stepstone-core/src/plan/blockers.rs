//! The blockers report: everything that would make a drain hang or a wave unsafe, found before
//! anything runs, each with the concrete fix and the nodes it holds up.
//!
//! Kinds (finding code `blocker.<kind>`):
//! - every blocker of the drain rules ([`crate::drain::BlockerKind`]): `unmanaged`,
//!   `not-safe-to-evict`, `local-storage`, `pinned-to-node`, `emptydir`, `several-budgets`
//!   (errors; warnings when an option such as `--delete-emptydir-data` accepted them);
//! - `budget`: a PodDisruptionBudget that allows 0 disruptions now (too few replicas for its
//!   minimum, `maxUnavailable: 0`, unready pods), one finding per budget with all its nodes;
//! - `singleton`: a Deployment or StatefulSet with one replica (nothing blocks the drain, but
//!   the workload is down until its replacement is Ready);
//! - `nowhere-to-go`: pods that fit on no other node when their node is drained on its own;
//! - `pdb-hang` (from the plan's simulation): a budget that runs out and never recovers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::capacity::{CapacityModel, Headroom, NodeIdx, PodSlot, Unschedulable};
use crate::drain::{self, BlockerKind, DrainOptions};
use crate::fasthash::{FastMap, FastSet};
use crate::findings::{Finding, Severity};
use crate::inventory::{Inventory, PdbStatus, Pod, Workload, WorkloadKind};
use crate::pdb::BudgetTracker;

/// One blocker: a finding and the nodes whose drain it stops (or endangers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    #[serde(flatten)]
    pub finding: Finding,
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockerSummary {
    pub errors: usize,
    pub warnings: usize,
    /// Nodes at least one error-severity blocker stops.
    pub nodes_blocked: usize,
    pub nodes: usize,
}

/// `stepstone blockers -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockersReport {
    pub cluster: String,
    pub headroom_percent: u32,
    pub summary: BlockerSummary,
    pub blockers: Vec<Blocker>,
}

impl BlockersReport {
    pub fn findings(&self) -> Vec<Finding> {
        self.blockers.iter().map(|b| b.finding.clone()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct BlockerOptions {
    pub drain: DrainOptions,
    pub headroom: Headroom,
    /// Drain every node on its own to find pods with nowhere to go. The wave planner skips
    /// this: its simulation meets those pods at their node's turn, in the fleet as it is then.
    pub check_placement: bool,
}

impl Default for BlockerOptions {
    fn default() -> Self {
        BlockerOptions { drain: DrainOptions::default(), headroom: Headroom::default(), check_placement: true }
    }
}

/// The report, and per pod (inventory index) the references of the error blockers that stop
/// its node's drain: what the wave planner treats as a node that cannot be drained.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub report: BlockersReport,
    pub pod_blockers: BTreeMap<usize, Vec<String>>,
    /// Per pod (inventory index): the drain evicts it (rather than skipping it or stopping).
    pub evicts: Vec<bool>,
}

struct Collector {
    by_ref: BTreeMap<String, Blocker>,
    pod_blockers: BTreeMap<usize, Vec<String>>,
}

impl Collector {
    fn add(&mut self, finding: Finding, node: Option<&str>, stops_pod: Option<usize>) {
        let r = reference(&finding);
        let entry = self.by_ref.entry(r.clone()).or_insert_with(|| Blocker { finding, nodes: Vec::new() });
        if let Some(n) = node
            && !entry.nodes.iter().any(|x| x == n)
        {
            entry.nodes.push(n.to_string());
        }
        if let Some(p) = stops_pod {
            let refs = self.pod_blockers.entry(p).or_default();
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
}

/// Workloads by kind, namespace and name: `Inventory::top_controller` searches linearly, which
/// is too slow for a pass over every pod of a large fleet.
pub(crate) struct Controllers<'a> {
    by_key: FastMap<(WorkloadKind, &'a str, &'a str), &'a Workload>,
}

impl<'a> Controllers<'a> {
    pub(crate) fn new(inv: &'a Inventory) -> Self {
        Controllers {
            by_key: inv.workloads.iter().map(|w| ((w.kind, w.namespace.as_str(), w.name.as_str()), w)).collect(),
        }
    }

    /// The workload a user scales for this pod (a ReplicaSet's Deployment).
    pub(crate) fn top(&self, pod: &'a Pod) -> Option<&'a Workload> {
        let owner = pod.owner.as_ref()?;
        let kind = WorkloadKind::from_kind(&owner.kind)?;
        let direct = *self.by_key.get(&(kind, pod.namespace.as_str(), owner.name.as_str()))?;
        match &direct.owner {
            Some(up) => WorkloadKind::from_kind(&up.kind)
                .and_then(|k| self.by_key.get(&(k, pod.namespace.as_str(), up.name.as_str())).copied())
                .or(Some(direct)),
            None => Some(direct),
        }
    }
}

/// The finding code of a drain-rule blocker: `blocker.unmanaged`, `blocker.budget`, ...
pub fn code(kind: BlockerKind) -> String {
    format!("blocker.{}", kind.code())
}

/// Find every blocker in the inventory.
pub fn analyse(inv: &Inventory, opts: &BlockerOptions) -> Analysis {
    let budgets = BudgetTracker::new(inv);
    let mut model = CapacityModel::new(&inv.nodes, &inv.pods, opts.headroom);
    analyse_with(inv, opts, &budgets, &mut model)
}

/// [`analyse`] with the budget tracker and a capacity model of the same inventory and
/// headroom, built by the caller (the planner shares them); the model is left as it was found.
pub fn analyse_with(
    inv: &Inventory,
    opts: &BlockerOptions,
    budgets: &BudgetTracker,
    model: &mut CapacityModel,
) -> Analysis {
    analyse_inner(inv, opts, budgets, opts.check_placement.then_some(model))
}

/// [`analyse_with`] without the placement check, whatever `opts` says, so without a capacity
/// model: what the wave planner needs (its simulation meets pods with nowhere to go at their
/// node's turn), and what it can compute while another thread builds the model.
pub fn analyse_rules(inv: &Inventory, opts: &BlockerOptions, budgets: &BudgetTracker) -> Analysis {
    analyse_inner(inv, opts, budgets, None)
}

fn analyse_inner(
    inv: &Inventory,
    opts: &BlockerOptions,
    budgets: &BudgetTracker,
    placement: Option<&mut CapacityModel>,
) -> Analysis {
    let mut c = Collector { by_ref: BTreeMap::new(), pod_blockers: BTreeMap::new() };
    let mut pods_by_ns: FastMap<&str, Vec<usize>> = FastMap::default();
    for (i, p) in inv.pods.iter().enumerate() {
        if !p.phase.is_finished() {
            pods_by_ns.entry(p.namespace.as_str()).or_default().push(i);
        }
    }
    let controllers = Controllers::new(inv);
    let workers_and_cp: FastSet<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();

    // The drain rules, pod by pod: what stops a drain, and what an option let through.
    let classifier = drain::Classifier::new(inv, &opts.drain);
    let mut evicts = vec![false; inv.pods.len()];
    for (i, (pod, disposition)) in inv.pods.iter().zip(classify_all(&classifier, &inv.pods)).enumerate() {
        let Some(disposition) = disposition else { continue };
        let node = pod.node_name.as_deref().filter(|n| workers_and_cp.contains(n));
        evicts[i] = disposition.is_evicted();
        if let Some(b) = disposition.blocker() {
            c.add(
                Finding::new(Severity::Error, code(b.kind), b.pod.clone(), b.reason.clone(), b.fix.clone()),
                node,
                Some(i),
            );
        }
        for b in disposition.overrides() {
            let flag = b.kind.override_flag().unwrap_or("an override");
            c.add(
                Finding::new(
                    Severity::Warning,
                    code(b.kind),
                    b.pod.clone(),
                    format!("{} (accepted by {flag})", b.reason),
                    if b.fix.contains(flag) {
                        // The fix is the consent already given: nothing else to undo it with.
                        format!("make sure losing this is acceptable; without {flag} it stops the drain")
                    } else {
                        format!("make sure losing this is acceptable, or drop {flag} and {}", b.fix)
                    },
                ),
                node,
                None,
            );
        }
    }

    // Budgets that allow no disruption now: every pod they cover that the drain would evict
    // waits forever.
    for b in &inv.pdbs {
        let Some(view) = budgets.budget(&b.key()) else { continue };
        if view.disruptions_allowed() > 0 {
            continue;
        }
        let covered: Vec<usize> = pods_by_ns
            .get(b.namespace.as_str())
            .map(|v| v.iter().copied().filter(|&i| evicts[i] && b.selects(&inv.pods[i])).collect())
            .unwrap_or_default();
        let Some(&first) = covered.first() else { continue };
        let status = PdbStatus {
            current_healthy: view.current_healthy,
            desired_healthy: view.desired_healthy,
            expected_pods: view.expected_pods,
            disruptions_allowed: 0,
            observed_generation: b.generation,
        };
        let blocker = drain::budget_blocker(&inv.pods[first], b, &status, inv);
        let mut message = blocker.reason.clone();
        if let Some(error) = &view.sync_error {
            message.push_str(&format!(" (the disruption controller cannot compute it: {error})"));
        }
        message.push_str(&format!("; {} pod(s) under it", covered.len()));
        let finding = Finding::new(Severity::Error, code(BlockerKind::Budget), b.key(), message, blocker.fix);
        for &i in &covered {
            let node = inv.pods[i].node_name.as_deref().filter(|n| workers_and_cp.contains(n));
            c.add(finding.clone(), node, Some(i));
        }
    }

    // Singletons: one replica, so a drain is an outage even though nothing blocks it.
    let mut singleton_pods: BTreeMap<(WorkloadKind, &str, &str), (&Workload, usize)> = BTreeMap::new();
    for (i, p) in inv.pods.iter().enumerate() {
        if p.phase.is_finished() || p.node_name.is_none() {
            continue;
        }
        if let Some(w) = controllers.top(p)
            && matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet)
            && w.replicas == 1
        {
            singleton_pods.entry((w.kind, w.namespace.as_str(), w.name.as_str())).or_insert((w, i));
        }
    }
    for (w, i) in singleton_pods.into_values() {
        let first = &inv.pods[i];
        if c.pod_blockers.contains_key(&i) {
            continue; // already an error (its budget allows nothing, or it cannot be evicted)
        }
        let node = first.node_name.as_deref().filter(|n| workers_and_cp.contains(n));
        let hint = match w.kind {
            WorkloadKind::StatefulSet => format!(
                "plan the outage with the owners of sts/{} in {}, or run a second replica if the application supports it",
                w.name, w.namespace
            ),
            _ => format!(
                "scale deploy/{} in {} to 2 for the duration (kubectl -n {} scale deploy/{} --replicas=2), or accept the outage",
                w.name, w.namespace, w.namespace, w.name
            ),
        };
        c.add(
            Finding::new(
                Severity::Warning,
                "blocker.singleton",
                w.key(),
                format!("{} has 1 replica: draining its node stops it until the replacement is Ready", w.key()),
                hint,
            ),
            node,
            None,
        );
    }

    if let Some(model) = placement {
        nowhere_to_go(inv, opts, &mut c, budgets, &evicts, model);
    }

    let mut blockers: Vec<Blocker> = c.by_ref.into_values().collect();
    for b in &mut blockers {
        b.nodes.sort();
    }
    // The order of `findings::sort`: worst first, then code, subject, message.
    blockers.sort_by(|a, b| {
        let (a, b) = (&a.finding, &b.finding);
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.subject.cmp(&b.subject))
            .then_with(|| a.message.cmp(&b.message))
    });
    let blocked_nodes: BTreeSet<&str> = blockers
        .iter()
        .filter(|b| b.finding.severity == Severity::Error)
        .flat_map(|b| b.nodes.iter().map(String::as_str))
        .collect();
    let summary = BlockerSummary {
        errors: blockers.iter().filter(|b| b.finding.severity == Severity::Error).count(),
        warnings: blockers.iter().filter(|b| b.finding.severity == Severity::Warning).count(),
        nodes_blocked: blocked_nodes.len(),
        nodes: inv.nodes.len(),
    };
    let report =
        BlockersReport { cluster: inv.source.clone(), headroom_percent: opts.headroom.as_percent(), summary, blockers };
    Analysis { report, pod_blockers: c.pod_blockers, evicts }
}

/// Every pod's disposition under the drain rules, in pod order: `None` for a finished pod, which
/// goes with the drain unless finalizers keep it past its deletion. The two halves of the pods
/// are classified on two threads.
fn classify_all(classifier: &drain::Classifier<'_>, pods: &[Pod]) -> Vec<Option<drain::Disposition>> {
    let one = |pod: &Pod| (!pod.phase.is_finished() || pod.stuck_on_finalizers()).then(|| classifier.classify(pod));
    let (first, second) = pods.split_at(pods.len() / 2);
    std::thread::scope(|s| {
        let later = s.spawn(|| second.iter().map(one).collect::<Vec<_>>());
        let mut all: Vec<Option<drain::Disposition>> = Vec::with_capacity(pods.len());
        all.extend(first.iter().map(one));
        all.extend(super::joined(later));
        all
    })
}

/// Drain every node on its own from the current state: pods that fit nowhere else.
fn nowhere_to_go(
    inv: &Inventory,
    opts: &BlockerOptions,
    c: &mut Collector,
    budgets: &BudgetTracker,
    evicts: &[bool],
    model: &mut CapacityModel,
) {
    let mut on_node: Vec<Vec<usize>> = vec![Vec::new(); model.node_count()];
    for (i, p) in inv.pods.iter().enumerate() {
        if p.phase.is_finished() || !evicts[i] || c.pod_blockers.contains_key(&i) {
            continue;
        }
        if let Some(n) = p.node_name.as_deref().and_then(|n| model.node(n)) {
            on_node[n.index()].push(i);
        }
    }
    let nodes: Vec<NodeIdx> = model.nodes().map(|(n, _)| n).collect();
    for (&node, pods) in nodes.iter().zip(&on_node) {
        if pods.is_empty() {
            continue;
        }
        model.set_unschedulable(node, true);
        let mut moved: Vec<PodSlot> = Vec::new();
        for &i in pods {
            let pod = &inv.pods[i];
            let slot = model.slot(pod);
            model.unbind(slot);
            match model.pick(slot, None) {
                Some(target) => {
                    model.bind(slot, target);
                    moved.push(slot);
                }
                None => {
                    let why = model.explain(pod, None);
                    model.bind(slot, node);
                    let name = model.node_name(node).to_string();
                    let mut message = format!("draining {name} leaves this pod with nowhere to go: {why}");
                    if !budgets.covering(pod).is_empty() {
                        message.push_str(
                            "; its disruption budget stays spent until a replacement runs, so the drain hangs",
                        );
                    }
                    c.add(
                        Finding::new(
                            Severity::Error,
                            "blocker.nowhere-to-go",
                            pod.key(),
                            message,
                            nowhere_hint(&why, opts.headroom),
                        ),
                        Some(&name),
                        None,
                    );
                }
            }
        }
        for slot in moved.into_iter().rev() {
            model.bind(slot, node);
        }
        model.set_unschedulable(node, false);
    }
}

/// How a blocker is named where findings refer to it: its code and subject.
pub fn reference(f: &Finding) -> String {
    format!("{} {}", f.code, f.subject)
}

/// The fix for a pod with nowhere to go, by what stopped it.
pub fn nowhere_hint(why: &Unschedulable, headroom: Headroom) -> String {
    let mentions = |s: &str| why.reasons.iter().any(|(r, _)| r.contains(s));
    if mentions("anti-affinity") {
        "it cannot share a node with its siblings and every other node is taken or cordoned: add a node, or relax the required pod anti-affinity to preferred".to_string()
    } else if mentions("affinity/selector") {
        "its node selector or affinity allows too few nodes: widen the selector, label another node, or move the workload".to_string()
    } else if mentions("headroom") && !mentions("Insufficient") {
        format!(
            "free capacity (lower the pod requests, add a node, scale down something unneeded), or accept a higher --headroom than {headroom}"
        )
    } else {
        "free capacity: lower the pod requests, add a node, or scale down something unneeded for the duration"
            .to_string()
    }
}

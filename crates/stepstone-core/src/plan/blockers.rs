//! The blockers report: everything that would make a drain hang or a wave unsafe, found before
//! anything runs, each with the concrete fix and the nodes it holds up.
//!
//! Kinds (finding code `blocker.<kind>`):
//! - `pdb-no-disruptions`: a budget that allows 0 disruptions now (too few replicas for its
//!   minimum, `maxUnavailable: 0`, unready pods);
//! - `several-pdbs`: a pod selected by more than one budget (the eviction API refuses it);
//! - `unmanaged`, `local-storage`, `emptydir`, and other drain-rule outcomes that stop a drain;
//! - `singleton`: a workload with one replica (no budget stops the drain, but it goes down);
//! - `nowhere-to-go`: pods that fit on no other node when their node is drained on its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::drain::{self, DrainOptions};
use crate::findings::{Finding, Severity};
use crate::inventory::{Inventory, Pdb, Pod, Workload, WorkloadKind};
use crate::pdb;

use super::simulate::{CapacityModel, Headroom};
use super::waves::{nowhere_hint, reference};

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

#[derive(Debug, Clone, Default)]
pub struct BlockerOptions {
    pub drain: DrainOptions,
    pub headroom: Headroom,
}

/// The report, and per pod (inventory index) the references of the error blockers that stop
/// its node's drain: what the wave planner treats as a node that cannot be drained.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub report: BlockersReport,
    pub pod_blockers: BTreeMap<usize, Vec<String>>,
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
    by_key: HashMap<(WorkloadKind, &'a str, &'a str), &'a Workload>,
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

/// `deploy/redis in prod` for the controller a user scales.
fn workload_name(w: &Workload) -> String {
    format!("{}/{} in {}", w.kind.short(), w.name, w.namespace)
}

/// The smallest replica count that lets a budget allow one disruption, if scaling helps at all.
fn replicas_needed(pdb: &Pdb, expected: i64) -> Option<i64> {
    use crate::inventory::IntOrPercent::*;
    (expected.max(1)..expected.max(1) + 1000).find(|&n| {
        let desired = match (pdb.min_available, pdb.max_unavailable) {
            (Some(Int(m)), _) => m,
            (Some(Percent(p)), _) => (n * p + 99) / 100,
            (None, Some(Int(u))) => n - u,
            (None, Some(Percent(p))) => n - (n * p + 99) / 100,
            (None, None) => n,
        };
        n - desired >= 1 && n > expected
    })
}

/// Find every blocker in the inventory.
pub fn analyse(inv: &Inventory, opts: &BlockerOptions) -> Analysis {
    let mut c = Collector { by_ref: BTreeMap::new(), pod_blockers: BTreeMap::new() };
    let mut pdbs_by_ns: HashMap<&str, Vec<&Pdb>> = HashMap::new();
    for b in &inv.pdbs {
        pdbs_by_ns.entry(b.namespace.as_str()).or_default().push(b);
    }
    let mut pods_by_ns: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in inv.pods.iter().enumerate() {
        if !p.phase.is_finished() {
            pods_by_ns.entry(p.namespace.as_str()).or_default().push(i);
        }
    }
    let controllers = Controllers::new(inv);
    let workers_and_cp: BTreeSet<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();

    // Budgets that allow no disruption now.
    for b in &inv.pdbs {
        let status = pdb::compute_status(b, inv);
        if status.disruptions_allowed > 0 {
            continue;
        }
        let covered: Vec<usize> = pods_by_ns
            .get(b.namespace.as_str())
            .map(|v| v.iter().copied().filter(|&i| b.selects(&inv.pods[i])).collect())
            .unwrap_or_default();
        if covered.is_empty() {
            continue;
        }
        let unhealthy = status.expected_pods.max(covered.len() as i64) - status.current_healthy;
        let budget = match (b.min_available, b.max_unavailable) {
            (Some(m), _) => format!("minAvailable {m}"),
            (None, Some(u)) => format!("maxUnavailable {u}"),
            (None, None) => "no minimum".to_string(),
        };
        let workload = covered.iter().find_map(|&i| controllers.top(&inv.pods[i])).map(workload_name);
        let mut message = format!(
            "pdb {} ({budget}) allows 0 disruptions: {} healthy of {} expected, {} needed",
            b.name, status.current_healthy, status.expected_pods, status.desired_healthy
        );
        let hint = if unhealthy > 0 && !b.always_allow_unhealthy() {
            message.push_str(&format!("; {unhealthy} pod(s) not Ready"));
            "make the unready pods Ready, or set unhealthyPodEvictionPolicy: AlwaysAllow on the budget so unready pods can be evicted without spending it".to_string()
        } else {
            match (replicas_needed(b, status.expected_pods), &workload) {
                (Some(n), Some(name)) => format!(
                    "scale {name} to {n} for the duration (kubectl scale --replicas={n}), or relax the budget"
                ),
                (Some(n), None) => format!("run {n} matching pods for the duration, or relax the budget"),
                (None, _) => format!(
                    "{budget} never allows an eviction: set maxUnavailable: 1 (or a minAvailable below the replica count) for the duration"
                ),
            }
        };
        let finding =
            Finding::new(Severity::Error, "blocker.pdb-no-disruptions", format!("{}/{}", b.namespace, b.name), message, hint);
        for &i in &covered {
            let node = inv.pods[i].node_name.as_deref().filter(|n| workers_and_cp.contains(n));
            c.add(finding.clone(), node, Some(i));
        }
    }

    for (i, pod) in inv.pods.iter().enumerate() {
        if pod.phase.is_finished() {
            continue;
        }
        let node = pod.node_name.as_deref().filter(|n| workers_and_cp.contains(n));
        // Several budgets on one pod: the eviction API answers 500 and kubectl gives up.
        let matching: Vec<&Pdb> =
            pdbs_by_ns.get(pod.namespace.as_str()).map(|v| v.iter().copied().filter(|b| b.selects(pod)).collect()).unwrap_or_default();
        if matching.len() > 1 {
            let names: Vec<String> = matching.iter().map(|b| b.name.clone()).collect();
            c.add(
                Finding::new(
                    Severity::Error,
                    "blocker.several-pdbs",
                    pod.key(),
                    format!("selected by {} disruption budgets ({}); the eviction API refuses such pods", names.len(), names.join(", ")),
                    format!("make the selectors of {} disjoint so one budget covers the pod", names.join(" and ")),
                ),
                node,
                Some(i),
            );
        }
        if let Some(rule) = drain::classify(pod, inv, &opts.drain).blocker() {
            let severity = if rule.stops_drain { Severity::Error } else { Severity::Warning };
            c.add(
                Finding::new(severity, format!("blocker.{}", rule.kind), pod.key(), rule.message, rule.hint),
                node,
                rule.stops_drain.then_some(i),
            );
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

    nowhere_to_go(inv, opts, &mut c, &pdbs_by_ns);

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
    let report = BlockersReport {
        cluster: inv.source.clone(),
        headroom_percent: opts.headroom.as_percent(),
        summary,
        blockers,
    };
    Analysis { report, pod_blockers: c.pod_blockers }
}

/// Drain every node on its own from the current state: pods that fit nowhere else.
fn nowhere_to_go(inv: &Inventory, opts: &BlockerOptions, c: &mut Collector, pdbs: &HashMap<&str, Vec<&Pdb>>) {
    let mut model = CapacityModel::new(&inv.nodes, &inv.pods, opts.headroom);
    let mut on_node: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in inv.pods.iter().enumerate() {
        if p.phase.is_finished() || c.pod_blockers.contains_key(&i) {
            continue;
        }
        if let Some(n) = p.node_name.as_deref()
            && drain::classify(p, inv, &opts.drain).is_evicted()
        {
            on_node.entry(n).or_default().push(i);
        }
    }
    for node in &inv.nodes {
        let Some(pods) = on_node.get(node.name.as_str()) else { continue };
        model.set_unschedulable(&node.name, true);
        let mut moved: Vec<(usize, String)> = Vec::new();
        for &i in pods {
            let pod = &inv.pods[i];
            model.unbind(pod);
            match model.pick(pod) {
                Ok(target) => {
                    model.bind(pod, &target);
                    moved.push((i, target));
                }
                Err(why) => {
                    model.bind(pod, &node.name);
                    let covered = pdbs
                        .get(pod.namespace.as_str())
                        .is_some_and(|v| v.iter().any(|b| b.selects(pod)));
                    let mut message = format!("draining {} leaves this pod with nowhere to go: {why}", node.name);
                    if covered {
                        message.push_str("; its disruption budget stays spent until a replacement runs, so the drain hangs");
                    }
                    c.add(
                        Finding::new(Severity::Error, "blocker.nowhere-to-go", pod.key(), message, nowhere_hint(&why, opts.headroom)),
                        Some(&node.name),
                        None,
                    );
                }
            }
        }
        for (i, _) in moved.into_iter().rev() {
            model.bind(&inv.pods[i], &node.name);
        }
        model.set_unschedulable(&node.name, false);
    }
}

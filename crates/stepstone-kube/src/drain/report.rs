//! The drain's result: per node, what was evicted, what was left on purpose, and (when it stopped
//! short) what is left and why, naming each blocking budget with its numbers and a command that
//! unblocks it.
//!
//! Pure: built by the engine (the blocked and dry-run reports here, from the node plan and the
//! budget view), rendered here, serialised as-is for `-o json`.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

use stepstone_core::inventory::{IntOrPercent, Inventory, Pod, WorkloadKind};
use stepstone_core::object_key::{self, ObjectKey};

use super::budget::{BudgetView, LiveBudget, PodHealth};
use super::event::{BlockerView, Removal, SkippedPod, human_duration};
use super::plan::NodePlan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeOutcome {
    /// Every pod evicted, gone, and (unless disabled) replaced by Ready pods elsewhere.
    Drained,
    /// Blockers found before any eviction.
    Blocked,
    /// The timeout passed; evictions stopped.
    TimedOut,
    /// Some pod can never be evicted as configured (e.g. several budgets select it).
    Failed,
    /// `--dry-run`: nothing changed.
    DryRun,
}

/// A pod still on the node, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftPod {
    pub pod: ObjectKey,
    pub reason: String,
}

/// A budget that held pods back, with its numbers and what would unblock it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockingBudget {
    #[serde(flatten)]
    pub budget: LiveBudget,
    /// The pods it held back.
    pub pods: Vec<ObjectKey>,
    pub fix: String,
}

/// A controller whose evicted pods are not yet replaced by Ready pods elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingReplacement {
    pub controller: String,
    pub ready: i64,
    pub target: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    pub node: String,
    pub outcome: NodeOutcome,
    /// Whether the node is left cordoned.
    pub cordoned: bool,
    /// Evictions the API server failed (500, 502, 503, 504) and that were sent again.
    #[serde(skip_serializing_if = "is_zero")]
    pub server_errors_retried: u32,
    pub evicted: Vec<ObjectKey>,
    pub skipped: Vec<SkippedPod>,
    pub blockers: Vec<BlockerView>,
    pub left: Vec<LeftPod>,
    pub budgets: Vec<BlockingBudget>,
    pub replacements: Vec<PendingReplacement>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainReport {
    pub dry_run: bool,
    pub nodes: Vec<NodeReport>,
}

impl DrainReport {
    /// True when every node drained (or, for a dry run, would drain without blockers).
    pub fn succeeded(&self) -> bool {
        self.nodes.iter().all(|n| match n.outcome {
            NodeOutcome::Drained => true,
            NodeOutcome::DryRun => n.blockers.is_empty(),
            _ => false,
        })
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push_str(&render_node(n, self.dry_run));
        }
        out
    }
}

fn render_node(n: &NodeReport, dry_run: bool) -> String {
    let mut out = String::new();
    let headline = match n.outcome {
        NodeOutcome::Drained => format!("drained in {}", human_duration_ms(n.elapsed_ms)),
        NodeOutcome::Blocked => "not drained: blockers found before any eviction".to_string(),
        NodeOutcome::TimedOut => format!("not drained: timed out after {}", human_duration_ms(n.elapsed_ms)),
        NodeOutcome::Failed => "not drained: some pods cannot be evicted".to_string(),
        NodeOutcome::DryRun if n.blockers.is_empty() => "dry run: would drain".to_string(),
        NodeOutcome::DryRun => "dry run: would stop on blockers".to_string(),
    };
    out.push_str(&format!("node/{}: {headline}\n", n.node));
    if !n.evicted.is_empty() {
        let verb = if dry_run { "would evict" } else { "evicted" };
        out.push_str(&format!("  {verb} ({}): {}\n", n.evicted.len(), object_key::join(&n.evicted, ", ")));
    }
    if n.server_errors_retried > 0 {
        out.push_str(&format!(
            "  evictions sent again after a server error (500, 502, 503, 504): {}\n",
            n.server_errors_retried
        ));
    }
    if !n.skipped.is_empty() {
        let list: Vec<String> = n.skipped.iter().map(|s| format!("{} ({})", s.pod, s.reason)).collect();
        out.push_str(&format!("  left on purpose ({}): {}\n", n.skipped.len(), list.join(", ")));
    }
    if !n.blockers.is_empty() {
        out.push_str("  blockers:\n");
        for b in &n.blockers {
            out.push_str(&format!("  - {} [{}]: {}\n", b.pod, b.kind.code(), b.reason));
            out.push_str(&format!("    fix: {}\n", b.fix));
            if let Some(flag) = &b.override_flag {
                out.push_str(&format!("    or override with {flag}\n"));
            }
        }
    }
    if !n.left.is_empty() {
        out.push_str("  still on the node:\n");
        for l in &n.left {
            out.push_str(&format!("  - {}: {}\n", l.pod, l.reason));
        }
    }
    for b in &n.budgets {
        let s = &b.budget;
        out.push_str(&format!(
            "  PodDisruptionBudget {} ({}): {} healthy of {} expected, needs {}, allows {} disruption(s); holds {}\n",
            s.key(),
            s.rule(),
            s.current_healthy,
            s.expected_pods,
            s.desired_healthy,
            s.disruptions_allowed,
            object_key::join(&b.pods, ", ")
        ));
        out.push_str(&format!("    fix: {}\n", b.fix));
    }
    for r in &n.replacements {
        out.push_str(&format!(
            "  {}: {}/{} Ready replicas on other nodes (replacements not Ready yet; check for Pending pods)\n",
            r.controller, r.ready, r.target
        ));
    }
    if n.cordoned && n.outcome != NodeOutcome::Drained {
        out.push_str(&format!("  the node stays cordoned; `stepstone uncordon {}` undoes it\n", n.node));
    }
    out
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn human_duration_ms(ms: u64) -> String {
    human_duration(std::time::Duration::from_millis(ms))
}

/// The controller behind pods held by a budget, for the suggested `kubectl scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleTarget {
    /// kubectl short kind: `deploy`, `sts`, `rs`, `rc`.
    pub short_kind: String,
    pub namespace: String,
    pub name: String,
    pub replicas: i64,
}

impl ScaleTarget {
    /// The workload a user would scale for `pod` (not a DaemonSet: it has no replicas to add).
    pub fn of(inventory: &Inventory, pod: &Pod) -> Option<ScaleTarget> {
        let w = inventory.top_controller(pod)?;
        if w.kind == WorkloadKind::DaemonSet {
            return None;
        }
        Some(ScaleTarget {
            short_kind: w.kind.short().to_string(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            replicas: w.replicas,
        })
    }
}

/// What would let `budget` allow one more disruption, as a command where one exists.
pub fn budget_fix(budget: &LiveBudget, controller: Option<&ScaleTarget>) -> String {
    let patch = relax_patch(budget);
    let unready = budget.expected_pods - budget.current_healthy;
    if let Some(IntOrPercent::Int(0) | IntOrPercent::Percent(0)) = budget.max_unavailable {
        return format!(
            "maxUnavailable 0 forbids every voluntary eviction; if a short disruption is acceptable, relax it for the maintenance: {patch}"
        );
    }
    if budget.min_available.is_none() && unready > 0 {
        return format!(
            "{unready} of {} pods are not Ready (replacements of evicted pods may still be starting); scaling up does not help a maxUnavailable budget: make them Ready (kubectl get pods -n {}), or relax it: {patch}",
            budget.expected_pods, budget.namespace
        );
    }
    if budget.min_available.is_none() {
        return format!("wait for the budget to recover, or relax it: {patch}");
    }
    let extra = extra_replicas(budget);
    match (controller, extra) {
        (Some(c), Some(k)) => {
            format!("kubectl scale {}/{} -n {} --replicas={}", c.short_kind, c.name, c.namespace, c.replicas + k)
        }
        (None, Some(k)) => format!("add {k} Ready pod(s) selected by the budget, or relax it: {patch}"),
        (_, None) => format!("{} can never allow an eviction; relax it: {patch}", budget.rule()),
    }
}

/// The merge patch that lets the budget allow one more disruption than it does now: one more
/// `maxUnavailable`, or one less `minAvailable`, written as an integer.
pub fn relax_patch(budget: &LiveBudget) -> String {
    // Healthy pods the budget may lose now, plus one.
    let unavailable_now = (budget.expected_pods - budget.desired_healthy).max(0);
    let spec = match (budget.min_available, budget.max_unavailable) {
        (_, Some(IntOrPercent::Int(m))) => format!("{{\"maxUnavailable\":{}}}", m.max(0) + 1),
        (_, Some(IntOrPercent::Percent(_))) => format!("{{\"maxUnavailable\":{}}}", unavailable_now + 1),
        (Some(_), None) => format!("{{\"minAvailable\":{}}}", (budget.desired_healthy - 1).max(0)),
        (None, None) => "{\"maxUnavailable\":1}".to_string(),
    };
    format!("kubectl patch pdb {} -n {} --type merge -p '{{\"spec\":{spec}}}'", budget.name, budget.namespace)
}

/// Replicas to add so a `minAvailable` budget allows one disruption; `None` when no number helps
/// (minAvailable 100%).
pub fn extra_replicas(budget: &LiveBudget) -> Option<i64> {
    let healthy = budget.current_healthy;
    match budget.min_available? {
        IntOrPercent::Int(m) => Some((m + 1 - healthy).max(1)),
        IntOrPercent::Percent(p) if p >= 100 => None,
        IntOrPercent::Percent(p) => (1..=10_000).find(|k| {
            // Each added replica raises expectedPods too; percentages round up, as the
            // disruption controller rounds them.
            let desired = (p * (budget.expected_pods + k) + 99) / 100;
            healthy + k - desired >= 1
        }),
    }
}

pub(super) fn blocked_report(plan: &NodePlan, elapsed: Duration) -> NodeReport {
    NodeReport {
        node: plan.node.clone(),
        outcome: NodeOutcome::Blocked,
        cordoned: true,
        server_errors_retried: 0,
        evicted: Vec::new(),
        skipped: plan.skipped.clone(),
        blockers: plan.blockers.clone(),
        left: plan
            .remove
            .iter()
            .map(|(p, _)| LeftPod { pod: p.key(), reason: "not evicted: the node has blockers".into() })
            .collect(),
        budgets: Vec::new(),
        replacements: Vec::new(),
        elapsed_ms: elapsed.as_millis() as u64,
    }
}

/// What a real run would do now: budgets that would hold pods back are named with their fix.
pub(super) fn dry_run_report(plan: &NodePlan, inventory: &Inventory, view: &mut BudgetView) -> NodeReport {
    let mut left = Vec::new();
    let mut held: BTreeMap<ObjectKey, Vec<&Pod>> = BTreeMap::new();
    for (pod, removal) in &plan.remove {
        if *removal == Removal::Delete {
            continue;
        }
        let pdbs: Vec<ObjectKey> = inventory.pdbs_for(pod).map(|b| b.key()).collect();
        match view.hold(&pdbs, PodHealth::of(pod)) {
            None => {
                // Spend the disruption, so the next pod of the batch sees what is left.
                view.reserve(&pdbs);
                view.settle(&pdbs, true, PodHealth::of(pod), 0);
            }
            Some(h) => {
                left.push(LeftPod {
                    pod: pod.key(),
                    reason: format!(
                        "would wait for PodDisruptionBudget {}: needs {} healthy pods and has {}",
                        h.pdb, h.needs, h.has
                    ),
                });
                held.entry(h.pdb).or_default().push(pod);
            }
        }
    }
    let budgets = held
        .into_iter()
        .filter_map(|(key, pods)| {
            let budget = view.get(&key)?.clone();
            let scale = ScaleTarget::of(inventory, pods[0]);
            Some(BlockingBudget {
                fix: budget_fix(&budget, scale.as_ref()),
                budget,
                pods: pods.iter().map(|p| p.key()).collect(),
            })
        })
        .collect();
    NodeReport {
        node: plan.node.clone(),
        outcome: NodeOutcome::DryRun,
        cordoned: false,
        server_errors_retried: 0,
        evicted: plan.remove.iter().map(|(p, _)| p.key()).collect(),
        skipped: plan.skipped.clone(),
        blockers: plan.blockers.clone(),
        left,
        budgets,
        replacements: Vec::new(),
        elapsed_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(
        min: Option<IntOrPercent>,
        max: Option<IntOrPercent>,
        healthy: i64,
        desired: i64,
        expected: i64,
    ) -> LiveBudget {
        LiveBudget {
            namespace: "prod".into(),
            name: "redis".into(),
            min_available: min,
            max_unavailable: max,
            always_allow_unhealthy: false,
            current_healthy: healthy,
            desired_healthy: desired,
            expected_pods: expected,
            disruptions_allowed: (healthy - desired).max(0),
            observed: true,
        }
    }

    fn redis(replicas: i64) -> ScaleTarget {
        ScaleTarget { short_kind: "deploy".into(), namespace: "prod".into(), name: "redis".into(), replicas }
    }

    #[test]
    fn min_available_int_suggests_the_exact_scale() {
        let b = budget(Some(IntOrPercent::Int(2)), None, 2, 2, 2);
        assert_eq!(budget_fix(&b, Some(&redis(2))), "kubectl scale deploy/redis -n prod --replicas=3");
        // One pod unready: two more replicas are needed.
        let b = budget(Some(IntOrPercent::Int(2)), None, 1, 2, 2);
        assert_eq!(budget_fix(&b, Some(&redis(2))), "kubectl scale deploy/redis -n prod --replicas=4");
    }

    #[test]
    fn percentages_round_up() {
        // 80% of 5 = 4 desired: one more replica frees one disruption.
        let b = budget(Some(IntOrPercent::Percent(80)), None, 4, 4, 4);
        assert_eq!(extra_replicas(&b), Some(1));
        // 90%: 90% of 5 rounds up to 5, of 6 to 6 ...; only at 10 replicas is desired 9.
        let b = budget(Some(IntOrPercent::Percent(90)), None, 4, 4, 4);
        assert_eq!(extra_replicas(&b), Some(6));
        assert_eq!(extra_replicas(&budget(Some(IntOrPercent::Percent(100)), None, 3, 3, 3)), None);
        assert!(budget_fix(&budget(Some(IntOrPercent::Percent(100)), None, 3, 3, 3), None).contains("never"));
    }

    #[test]
    fn relaxing_asks_for_one_more_disruption() {
        let b = budget(None, Some(IntOrPercent::Int(1)), 8, 8, 9);
        assert_eq!(
            relax_patch(&b),
            r#"kubectl patch pdb redis -n prod --type merge -p '{"spec":{"maxUnavailable":2}}'"#
        );
        let b = budget(Some(IntOrPercent::Percent(100)), None, 3, 3, 3);
        assert_eq!(relax_patch(&b), r#"kubectl patch pdb redis -n prod --type merge -p '{"spec":{"minAvailable":2}}'"#);
        // 25% of 8 rounds up to 2 unavailable: allow 3.
        let b = budget(None, Some(IntOrPercent::Percent(25)), 6, 6, 8);
        assert_eq!(
            relax_patch(&b),
            r#"kubectl patch pdb redis -n prod --type merge -p '{"spec":{"maxUnavailable":3}}'"#
        );
    }

    #[test]
    fn max_unavailable_zero_and_unready_pods_name_the_real_problem() {
        let zero = budget(None, Some(IntOrPercent::Int(0)), 3, 3, 3);
        assert!(budget_fix(&zero, Some(&redis(3))).starts_with("maxUnavailable 0 forbids"));
        let unready = budget(None, Some(IntOrPercent::Int(1)), 2, 2, 3);
        assert!(budget_fix(&unready, Some(&redis(3))).starts_with("1 of 3 pods are not Ready"));
    }

    #[test]
    fn timeout_report_renders_budget_numbers_and_fix() {
        let b = budget(Some(IntOrPercent::Int(2)), None, 2, 2, 2);
        let report = DrainReport {
            dry_run: false,
            nodes: vec![NodeReport {
                node: "w1".into(),
                outcome: NodeOutcome::TimedOut,
                cordoned: true,
                server_errors_retried: 3,
                evicted: vec![ObjectKey::new("prod", "web-1")],
                skipped: vec![SkippedPod {
                    pod: ObjectKey::new("kube-system", "proxy-w1"),
                    reason: "DaemonSet".into(),
                }],
                blockers: vec![],
                left: vec![LeftPod {
                    pod: ObjectKey::new("prod", "redis-0"),
                    reason: "blocked by PodDisruptionBudget prod/redis".into(),
                }],
                budgets: vec![BlockingBudget {
                    fix: budget_fix(&b, Some(&redis(2))),
                    budget: b,
                    pods: vec![ObjectKey::new("prod", "redis-0")],
                }],
                replacements: vec![],
                elapsed_ms: 300_000,
            }],
        };
        assert!(!report.succeeded());
        let text = report.render();
        assert_eq!(
            text,
            "node/w1: not drained: timed out after 5m
  evicted (1): prod/web-1
  evictions sent again after a server error (500, 502, 503, 504): 3
  left on purpose (1): kube-system/proxy-w1 (DaemonSet)
  still on the node:
  - prod/redis-0: blocked by PodDisruptionBudget prod/redis
  PodDisruptionBudget prod/redis (minAvailable 2): 2 healthy of 2 expected, needs 2, allows 0 disruption(s); holds prod/redis-0
    fix: kubectl scale deploy/redis -n prod --replicas=3
  the node stays cordoned; `stepstone uncordon w1` undoes it
"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["nodes"][0]["budgets"][0]["minAvailable"], 2);
        assert_eq!(json["nodes"][0]["budgets"][0]["currentHealthy"], 2);
        assert_eq!(json["nodes"][0]["serverErrorsRetried"], 3);
    }
}

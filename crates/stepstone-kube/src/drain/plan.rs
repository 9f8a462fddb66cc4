//! What the drain does with each pod of a node, decided by the plan's rule chain
//! ([`stepstone_core::drain`], the same code the planner and `stepstone blockers` run), plus the
//! one check that needs the budgets' live numbers: a single-replica workload whose budget
//! requires that one pod can never be evicted, so it stops the drain up front instead of
//! making it wait until the timeout.
//!
//! Pure: inventory and budget view in, [`NodePlan`] out.

use stepstone_core::drain::{Blocker, BlockerKind, Disposition, SkipReason, budget_blocker, classify_node};
use stepstone_core::inventory::{Inventory, PdbStatus, Pod};
use stepstone_core::object_key::ObjectKey;

use super::budget::{BudgetView, PodHealth};
use super::event::{BlockerView, DrainEvent, Removal, SkippedPod};

/// The rule chain's named overrides (`--delete-emptydir-data`, `--delete-unmanaged-pods`, ...).
pub type RuleOptions = stepstone_core::drain::DrainOptions;

/// One node's pods, sorted by what the drain does with them.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub node: String,
    /// Pods to evict (or, with the budget-bypassing override, delete).
    pub remove: Vec<(Pod, Removal)>,
    /// Pods already terminating: nothing to send, the drain waits for them to go.
    pub wait: Vec<Pod>,
    /// Pods left on purpose.
    pub skipped: Vec<SkippedPod>,
    /// Any entry stops this node's drain before its first eviction.
    pub blockers: Vec<BlockerView>,
    /// Overrides in effect, and terminating pods whose finalizers may outlast the drain: each a
    /// loud warning.
    pub warnings: Vec<String>,
}

impl NodePlan {
    pub fn classified_event(&self) -> DrainEvent {
        let (evict, delete): (Vec<_>, Vec<_>) = self.remove.iter().partition(|(_, r)| *r == Removal::Eviction);
        DrainEvent::Classified {
            node: self.node.clone(),
            evict: evict.into_iter().map(|(p, _)| p.key()).collect(),
            delete: delete.into_iter().map(|(p, _)| p.key()).collect(),
            terminating: self.wait.iter().map(|p| p.key()).collect(),
            skipped: self.skipped.clone(),
            blockers: self.blockers.clone(),
        }
    }
}

/// Classify `node`'s pods. `bypass_budgets` turns every eviction into a DELETE (and accepts the
/// budget blockers, loudly).
pub fn plan_node(
    inv: &Inventory,
    node: &str,
    rules: &RuleOptions,
    bypass_budgets: bool,
    budgets: &BudgetView,
) -> NodePlan {
    let view = classify_node(node, inv, rules);
    let mut plan = NodePlan {
        node: node.to_string(),
        remove: Vec::new(),
        wait: Vec::new(),
        skipped: Vec::new(),
        blockers: view.blockers.iter().map(blocker_view).collect(),
        warnings: view.overrides.iter().map(override_warning).collect(),
    };
    let removal = if bypass_budgets { Removal::Delete } else { Removal::Eviction };
    for e in &view.evict {
        match singleton_budget(inv, e.pod, &e.pdbs, budgets) {
            Some(b) if bypass_budgets => plan
                .warnings
                .push(format!("--disable-eviction-i-accept-outages: {} is deleted although {}", b.pod, b.reason)),
            Some(b) => {
                plan.blockers.push(blocker_view(&b));
                continue;
            }
            None => {}
        }
        plan.remove.push((e.pod.clone(), removal));
    }
    for s in &view.skip {
        match &s.disposition {
            Disposition::Wait => {
                if !s.pod.finalizers.is_empty() {
                    // Its kubelet is still stopping it; after that only the finalizers keep it.
                    plan.warnings.push(format!(
                        "waiting for {} to go: it is terminating and carries finalizers ({}); if it is still there \
                         after its grace period, the controllers that own them must remove them (`stepstone blockers` \
                         names each and what removes it)",
                        s.pod.key(),
                        s.pod.finalizers.join(", ")
                    ));
                }
                plan.wait.push(s.pod.clone())
            }
            Disposition::Skip { reason } => {
                plan.skipped.push(SkippedPod { pod: s.pod.key(), reason: skip_reason(*reason) })
            }
            Disposition::Finished => {
                plan.skipped.push(SkippedPod { pod: s.pod.key(), reason: "finished".to_string() });
            }
            // classify_node files evictions and blockers elsewhere.
            Disposition::Evict { .. } | Disposition::Block(_) => {}
        }
    }
    plan.remove.sort_by_key(|(p, _)| p.key());
    plan.skipped.sort_by(|a, b| a.pod.cmp(&b.pod));
    plan.blockers.sort_by(|a, b| (&a.pod, a.kind.code()).cmp(&(&b.pod, b.kind.code())));
    plan
}

fn skip_reason(reason: SkipReason) -> String {
    match reason {
        SkipReason::MirrorPod => "mirror pod".to_string(),
        SkipReason::DaemonSet => "DaemonSet".to_string(),
    }
}

fn blocker_view(b: &Blocker) -> BlockerView {
    BlockerView {
        kind: b.kind,
        pod: b.pod.clone(),
        reason: b.reason.clone(),
        fix: b.fix.clone(),
        override_flag: b.kind.override_flag().map(str::to_string),
    }
}

fn override_warning(b: &Blocker) -> String {
    match b.kind.override_flag() {
        Some(flag) => format!("{flag}: evicting {} although {}", b.pod, b.reason),
        None => format!("evicting {} although {}", b.pod, b.reason),
    }
}

/// A pod whose workload runs one replica and whose budget needs that replica: no eviction can
/// ever be accepted, so waiting would only end at the timeout.
fn singleton_budget(inv: &Inventory, pod: &Pod, pdbs: &[ObjectKey], budgets: &BudgetView) -> Option<Blocker> {
    let [key] = pdbs else { return None };
    let live = budgets.get(key)?;
    let health = if pod.ready { PodHealth::Ready } else { PodHealth::Unready };
    budgets.hold(pdbs, health)?;
    let replicas = match inv.top_controller(pod) {
        Some(w) => w.replicas,
        None => live.expected_pods,
    };
    if replicas > 1 || live.desired_healthy < 1 {
        return None;
    }
    let pdb = inv.pdbs.iter().find(|p| p.key() == *key)?;
    let status = PdbStatus {
        current_healthy: live.current_healthy,
        desired_healthy: live.desired_healthy,
        expected_pods: live.expected_pods,
        disruptions_allowed: live.disruptions_allowed,
        observed_generation: pdb.generation,
    };
    let mut b = budget_blocker(pod, pdb, &status, inv);
    b.reason = format!("a single replica under {}", b.reason);
    debug_assert_eq!(b.kind, BlockerKind::Budget);
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::budget::LiveBudget;
    use stepstone_core::inventory::IntOrPercent;
    use stepstone_core::snapshot::{SnapshotOptions, load_str};

    /// A node with a DaemonSet pod, a mirror pod, an emptyDir pod, a bare pod, a singleton under
    /// a budget, a terminating pod and a plain replicated pod.
    fn inventory() -> Inventory {
        let pod = |name: &str, owner: Option<(&str, &str)>, extra: serde_json::Value| {
            let mut p = serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "prod", "uid": format!("u-{name}"), "labels": {"app": name}},
                "spec": {"nodeName": "w1", "containers": [{"name": "c", "image": "img:1"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            });
            if let Some((kind, owner)) = owner {
                p["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": format!("u-{owner}"), "controller": true}]);
            }
            merge(&mut p, extra);
            p
        };
        let workload = |kind: &str, name: &str, replicas: i64, owner: Option<&str>| {
            let mut w = serde_json::json!({
                "apiVersion": "apps/v1", "kind": kind,
                "metadata": {"name": name, "namespace": "prod", "uid": format!("u-{name}")},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
                "status": {"replicas": replicas, "readyReplicas": replicas}
            });
            if let Some(o) = owner {
                w["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": o, "uid": format!("u-{o}"), "controller": true}]);
            }
            w
        };
        let node = serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "w1", "uid": "u-w1"},
            "spec": {"unschedulable": true},
            "status": {"nodeInfo": {"kubeletVersion": "v1.34.2", "kubeProxyVersion": "", "osImage": "Ubuntu", "kernelVersion": "6.8.0",
                "containerRuntimeVersion": "containerd://1.7.27", "architecture": "amd64"}}
        });
        let items = vec![
            node,
            pod("agent", Some(("DaemonSet", "agent")), serde_json::json!({})),
            pod(
                "etcd-w1",
                None,
                serde_json::json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}}),
            ),
            pod(
                "cache",
                Some(("ReplicaSet", "cache-rs")),
                serde_json::json!({"spec": {"volumes": [{"name": "tmp", "emptyDir": {}}]}}),
            ),
            pod("debug", None, serde_json::json!({})),
            pod("db", Some(("ReplicaSet", "db-rs")), serde_json::json!({})),
            pod(
                "old",
                Some(("ReplicaSet", "web-rs")),
                serde_json::json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            ),
            pod("web", Some(("ReplicaSet", "web-rs")), serde_json::json!({})),
            workload("ReplicaSet", "cache-rs", 2, None),
            workload("ReplicaSet", "db-rs", 1, Some("db")),
            workload("Deployment", "db", 1, None),
            workload("ReplicaSet", "web-rs", 3, None),
            serde_json::json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "db", "namespace": "prod", "generation": 1},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
                "status": {"currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1, "disruptionsAllowed": 0, "observedGeneration": 1}
            }),
        ];
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        load_str("test", &list.to_string(), &SnapshotOptions::default()).unwrap()
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn budgets() -> BudgetView {
        let mut v = BudgetView::default();
        v.update(LiveBudget {
            namespace: "prod".into(),
            name: "db".into(),
            min_available: Some(IntOrPercent::Int(1)),
            max_unavailable: None,
            always_allow_unhealthy: false,
            current_healthy: 1,
            desired_healthy: 1,
            expected_pods: 1,
            disruptions_allowed: 0,
            observed: true,
        });
        v
    }

    fn kinds(plan: &NodePlan) -> Vec<(String, String)> {
        plan.blockers.iter().map(|b| (b.pod.to_string(), b.kind.code().to_string())).collect()
    }

    #[test]
    fn the_rule_chain_decides_and_a_budgeted_singleton_blocks() {
        let inv = inventory();
        let plan = plan_node(&inv, "w1", &RuleOptions::default(), false, &budgets());
        assert_eq!(
            kinds(&plan),
            vec![
                ("prod/cache".to_string(), "emptydir".to_string()),
                ("prod/db".to_string(), "budget".to_string()),
                ("prod/debug".to_string(), "unmanaged".to_string()),
            ]
        );
        let db = plan.blockers.iter().find(|b| b.kind == BlockerKind::Budget).unwrap();
        assert!(db.reason.starts_with("a single replica under PodDisruptionBudget prod/db needs 1"), "{}", db.reason);
        assert!(db.fix.contains("--replicas=2"), "{}", db.fix);
        assert_eq!(plan.remove.iter().map(|(p, _)| p.key()).collect::<Vec<_>>(), vec![ObjectKey::new("prod", "web")]);
        assert_eq!(plan.wait.iter().map(|p| p.key()).collect::<Vec<_>>(), vec![ObjectKey::new("prod", "old")]);
        let skipped: Vec<(String, &str)> =
            plan.skipped.iter().map(|s| (s.pod.to_string(), s.reason.as_str())).collect();
        assert_eq!(skipped, vec![("prod/agent".to_string(), "DaemonSet"), ("prod/etcd-w1".to_string(), "mirror pod")]);
        let emptydir = plan.blockers.iter().find(|b| b.kind == BlockerKind::Emptydir).unwrap();
        assert_eq!(emptydir.override_flag.as_deref(), Some("--delete-emptydir-data"));
    }

    #[test]
    fn named_overrides_accept_their_kind_with_a_warning() {
        let inv = inventory();
        let rules = RuleOptions { delete_emptydir_data: true, delete_unmanaged: true, ..Default::default() };
        let plan = plan_node(&inv, "w1", &rules, false, &budgets());
        assert_eq!(kinds(&plan), vec![("prod/db".to_string(), "budget".to_string())]);
        assert_eq!(plan.remove.len(), 3);
        assert!(
            plan.warnings.iter().any(|w| w.starts_with("--delete-emptydir-data: evicting prod/cache")),
            "{:?}",
            plan.warnings
        );
        assert!(plan.warnings.iter().any(|w| w.starts_with("--delete-unmanaged-pods: evicting prod/debug")));

        // Bypassing budgets deletes instead, and says so about the singleton.
        let plan = plan_node(&inv, "w1", &rules, true, &budgets());
        assert!(plan.blockers.is_empty());
        assert!(plan.remove.iter().all(|(_, r)| *r == Removal::Delete));
        assert!(plan.warnings.iter().any(|w| w.contains("prod/db is deleted although")));
    }

    #[test]
    fn a_budget_with_room_is_no_blocker() {
        let inv = inventory();
        let mut view = budgets();
        let mut roomy = view.get(&ObjectKey::new("prod", "db")).unwrap().clone();
        roomy.disruptions_allowed = 1;
        roomy.current_healthy = 2;
        view.update(roomy);
        let plan = plan_node(
            &inv,
            "w1",
            &RuleOptions { delete_emptydir_data: true, delete_unmanaged: true, ..Default::default() },
            false,
            &view,
        );
        assert!(plan.blockers.is_empty());
    }
}

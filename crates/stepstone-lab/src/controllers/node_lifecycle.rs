//! The node lifecycle controller (kube-controller-manager): a node whose kubelet stopped posting
//! status turns Ready=`Unknown` after `--node-monitor-grace-period` and gets the `unreachable`
//! taints, its pods are marked not Ready; a kubelet reporting NotReady gets the `not-ready` taints.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value;

use super::{Controller, Pass, Watch, earliest};
use crate::api;
use crate::clock;
use crate::nodes;
use crate::resources as r;
use crate::state::Shared;
use crate::store::{Part, Store, meta_str, name_of};

pub(super) struct NodeLifecycle;

impl Controller for NodeLifecycle {
    fn name(&self) -> &'static str {
        "node-lifecycle-controller"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(&[r::NODES])
    }

    /// A silent kubelet's grace period runs out without any object changing.
    fn also_runs(&self, pass: &Pass<'_>) -> bool {
        !nodes::kubelet_down(pass.shared).is_empty()
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        node_lifecycle(pass.shared, pass.store, pass.now)
    }
}

fn ready_status(n: &Value) -> Option<&str> {
    n.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
}

/// The node lifecycle controller (kube-controller-manager). A kubelet that is not running posts
/// nothing; once `--node-monitor-grace-period` has passed since it was last heard from, the node
/// turns Ready=`Unknown` (`NodeStatusUnknown`, "Kubelet stopped posting node status."), gets the
/// `unreachable` NoSchedule and NoExecute taints, and its pods are marked not Ready. A kubelet that
/// runs and reports NotReady gets the `not-ready` taints; one that reports Ready loses them.
///
/// A kubelet restart that ends within the grace period is not noticed at all, as upstream's 5 s
/// monitor misses a few seconds of silence: the lab's restart window (NotReady with the `not-ready`
/// NoSchedule taint the restart itself sets) stays as it is, and pods keep running. Returns when
/// the next silent kubelet's grace period ends.
fn node_lifecycle(shared: &Shared, store: &mut Store, now: Timestamp) -> Option<Timestamp> {
    let down = nodes::kubelet_down(shared);
    let grace = nodes::node_monitor_grace_seconds(store);
    let mut due = None;
    let mut writes: Vec<(Value, bool)> = Vec::new();
    for n in store.iter(r::NODES, None, None) {
        let n = &n;
        let name = name_of(n);
        let mut next = (**n).clone();
        let (flipped, tainted) = if down.contains(name) {
            let last = nodes::last_heard(store, n)
                .or_else(|| meta_str(n, "creationTimestamp").and_then(clock::parse))
                .unwrap_or(now);
            let deadline = shared.after(last, grace);
            if deadline > now {
                due = earliest(due, Some(deadline));
                continue;
            }
            // The first time the controller acts on this silence: the Ready condition flips, or
            // (a kubelet the lab already reported Unknown) the eviction taint is new.
            let evicting = next
                .pointer("/spec/taints")
                .and_then(Value::as_array)
                .is_some_and(|ts| ts.iter().any(|t| t["key"] == api::TAINT_UNREACHABLE && t["effect"] == "NoExecute"));
            let flipped = nodes::mark_status_unknown(&mut next, now) || !evicting;
            (flipped, nodes::set_lifecycle_taints(&mut next, Some(api::TAINT_UNREACHABLE), now))
        } else {
            let key = match ready_status(n) {
                Some("True") => None,
                Some("False") => Some(api::TAINT_NOT_READY),
                Some(_) => Some(api::TAINT_UNREACHABLE),
                // No Ready condition at all: a hand-written fleet; leave its taints alone.
                None => continue,
            };
            (false, nodes::set_lifecycle_taints(&mut next, key, now))
        };
        if flipped || tainted {
            writes.push((next, flipped));
        }
    }
    for (next, flipped) in writes {
        let Ok(updated) = store.update(r::NODES, next, Part::All, false) else { continue };
        if !flipped {
            continue;
        }
        let node = name_of(&updated).to_string();
        nodes::record_event(
            store,
            now,
            &updated,
            "Normal",
            "NodeNotReady",
            &format!("Node {node} status is now: NodeNotReady"),
            "node-controller",
        );
        mark_pods_not_ready(store, &node, now);
    }
    due
}

/// Upstream `MarkPodsNotReady`: the pods of a node that stopped posting status are no longer
/// Ready (Services drop them, disruption budgets stop counting them) until their kubelet is back.
fn mark_pods_not_ready(store: &mut Store, node: &str, now: Timestamp) {
    let pods: Vec<Arc<Value>> =
        store.pods().filter(|(_, f)| &*f.node == node && f.ready).map(|(stored, _)| stored.value()).collect();
    for p in pods {
        let mut next = (*p).clone();
        nodes::set_pod_condition(&mut next, "Ready", false, now);
        nodes::update_pod_and_warn(store, next, now, "NodeNotReady", "Node is not ready", "node-controller");
    }
}

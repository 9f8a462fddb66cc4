//! The taint eviction controller: pods on nodes with `NoExecute` taints they do not tolerate
//! (or no longer do, after `tolerationSeconds`) are deleted, announced as upstream announces it.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Controller, Pass, Watch, bound_at, earliest};
use crate::api::{self, DeleteOptions};
use crate::clock::{self, Clock};
use crate::nodes;
use crate::resources as r;
use crate::store::{Part, Store, meta, name_of, namespace_of};

pub(super) struct TaintEviction;

impl Controller for TaintEviction {
    fn name(&self) -> &'static str {
        "taint-eviction-controller"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(&[r::NODES, r::PODS])
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        taint_eviction(pass.store, pass.now, &pass.shared.clock)
    }
}

/// Upstream `Toleration.ToleratesTaint` on API objects.
fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let effect = field(toleration, "effect");
    if !effect.is_empty() && effect != field(taint, "effect") {
        return false;
    }
    let key = field(toleration, "key");
    if !key.is_empty() && key != field(taint, "key") {
        return false;
    }
    match field(toleration, "operator").as_str() {
        "Exists" => true,
        _ => field(toleration, "value") == field(taint, "value"),
    }
}

/// How long a pod may stay on a node with these `NoExecute` taints (upstream
/// `GetMatchingTolerations` + `getMinTolerationTime`): `Some(0)` when one taint is not tolerated
/// (each taint counts with the first toleration that matches it), the smallest
/// `tolerationSeconds` of those tolerations (zero or less meaning at once), `None` for forever.
fn toleration_seconds(pod: &Value, taints: &[Value]) -> Option<i64> {
    let tolerations = pod.pointer("/spec/tolerations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut min: Option<i64> = None;
    for taint in taints {
        let Some(used) = tolerations.iter().find(|t| tolerates(t, taint)) else { return Some(0) };
        if let Some(s) = used.get("tolerationSeconds").and_then(Value::as_i64) {
            let s = s.max(0);
            min = Some(min.map_or(s, |m| m.min(s)));
        }
    }
    min
}

/// The component taint-based evictions are reported by: the taint eviction controller split out
/// of the node lifecycle controller in v1.29.
fn taint_eviction_component(store: &Store) -> &'static str {
    match nodes::cluster_version(store) {
        Some(v) if v.minor() < stepstone_core::version::Minor::new(1, 29) => "taint-controller",
        _ => "taint-eviction-controller",
    }
}

/// The taint eviction controller: pods on a node with `NoExecute` taints they do not tolerate are
/// deleted at once; those tolerating them for `tolerationSeconds` once that time has passed since
/// the taint was added (or since they were bound, when that was later); those tolerating them
/// without a limit (DaemonSet pods) stay. Each deletion is announced with a `TaintManagerEviction`
/// Event and a `DisruptionTarget` condition (`DeletionByTaintManager`), as upstream does from
/// v1.26. The deletion is graceful: on a node whose kubelet is down the pod stays Terminating until
/// the kubelet returns, but its controller replaces it at once. Mirror pods are the kubelet's own
/// (kubeadm's static pod manifests tolerate every `NoExecute` taint), so they are left alone.
/// Returns when the next toleration runs out.
fn taint_eviction(store: &mut Store, now: Timestamp, clock: &Clock) -> Option<Timestamp> {
    let tainted: HashMap<String, Vec<Value>> = store
        .iter(r::NODES, None, None)
        .filter_map(|n| {
            let taints: Vec<Value> = n
                .pointer("/spec/taints")
                .and_then(Value::as_array)?
                .iter()
                .filter(|t| t["effect"] == "NoExecute")
                .cloned()
                .collect();
            (!taints.is_empty()).then(|| (name_of(&n).to_string(), taints))
        })
        .collect();
    if tainted.is_empty() {
        return None;
    }
    let mut due = None;
    let mut doomed: Vec<Arc<Value>> = Vec::new();
    for (stored, facts) in store.pods() {
        let Some(taints) = tainted.get(&*facts.node) else {
            continue;
        };
        if !facts.is_active() {
            continue;
        }
        let p = &stored.value();
        if meta(p).pointer("/annotations/kubernetes.io~1config.mirror").is_some() {
            continue;
        }
        let Some(seconds) = toleration_seconds(p, taints) else { continue };
        let tainted_at = taints.iter().filter_map(|t| t["timeAdded"].as_str().and_then(clock::parse)).min();
        let start = match (tainted_at, bound_at(p)) {
            (Some(t), Some(b)) => t.max(b),
            (t, b) => t.or(b).unwrap_or(now),
        };
        let deadline = clock.after(start, seconds as f64);
        if deadline <= now {
            doomed.push(p.clone());
        } else {
            due = earliest(due, Some(deadline));
        }
    }
    if doomed.is_empty() {
        return due;
    }
    let component = taint_eviction_component(store);
    for p in doomed {
        let (ns, name) = (namespace_of(&p).to_string(), name_of(&p).to_string());
        nodes::record_event(
            store,
            now,
            &p,
            "Normal",
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
            component,
        );
        let mut next = (*p).clone();
        set_disruption_target(&mut next, now);
        let _ = store.update(r::PODS, next, Part::All, false);
        let _ = api::delete(store, r::PODS, &ns, &name, &DeleteOptions::default(), now);
    }
    due
}

/// The `DisruptionTarget` condition the taint eviction controller sets before it deletes a pod.
fn set_disruption_target(pod: &mut Value, now: Timestamp) {
    nodes::set_pod_condition(pod, "DisruptionTarget", true, now);
    if let Some(c) = pod
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
        .and_then(|cs| cs.iter_mut().find(|c| c["type"] == "DisruptionTarget"))
    {
        c["reason"] = json!("DeletionByTaintManager");
        c["message"] = json!("Taint manager: deleting due to NoExecute taint");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn toleration_time_is_the_shortest_used_toleration() {
        let unreachable = json!({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"});
        let pod = |tolerations: Value| json!({"spec": {"tolerations": tolerations}});
        assert_eq!(toleration_seconds(&json!({"spec": {}}), std::slice::from_ref(&unreachable)), Some(0));
        let defaults = pod(json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]));
        assert_eq!(toleration_seconds(&defaults, std::slice::from_ref(&unreachable)), Some(300));
        // The first matching toleration counts, as upstream's GetMatchingTolerations picks it.
        let forever_first = pod(json!([{"operator": "Exists"},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]));
        assert_eq!(toleration_seconds(&forever_first, std::slice::from_ref(&unreachable)), None);
        let negative =
            pod(json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": -3}]));
        assert_eq!(toleration_seconds(&negative, std::slice::from_ref(&unreachable)), Some(0));
        // Equal needs the value; another key does not match.
        let custom = json!({"key": "maintenance", "value": "yes", "effect": "NoExecute"});
        let equal = pod(json!([{"key": "maintenance", "operator": "Equal", "value": "no", "effect": "NoExecute"}]));
        assert_eq!(toleration_seconds(&equal, &[custom]), Some(0));
        assert_eq!(
            toleration_seconds(&defaults, &[unreachable, json!({"key": "other", "effect": "NoExecute"})]),
            Some(0)
        );
    }
}

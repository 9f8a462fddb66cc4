//! The DaemonSet controller: one pod per eligible node, template changes rolled out with
//! `RollingUpdate` (within `maxUnavailable`) or `OnDelete`, the revision history
//! (ControllerRevisions) `kubectl rollout history|undo` reads, and the status counts.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::snapshot::{SnapshotOptions, parse_node, parse_pod};

use super::{
    Controller, Pass, Watch, earliest, generation, is_active, is_ready, owner_ref, pod_from_template, pods_by_owner,
    scaled_int_or_percent, template_hash, write_status,
};
use crate::api::{self, DeleteOptions};
use crate::clock::{self, Clock};
use crate::nodes;
use crate::resources as r;
use crate::store::{self, Part, Store, controller_uid, meta, meta_str, name_of, namespace_of, uid_of};

/// The DaemonSet controller, remembering the DaemonSets (by uid) whose pods from before the lab
/// started were adopted into the current revision.
#[derive(Default)]
pub(super) struct DaemonSetController {
    adopted: HashSet<String>,
}

impl Controller for DaemonSetController {
    fn name(&self) -> &'static str {
        "daemonset-controller"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(super::WORKLOADS)
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        daemonsets(pass.store, pass.now, &pass.shared.clock, &mut self.adopted)
    }
}

/// Tolerations the DaemonSet controller adds to its pods so they run on troubled and cordoned nodes.
fn daemon_tolerations() -> Vec<Value> {
    let mut out: Vec<Value> = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
        .iter()
        .map(|k| json!({"key": k, "operator": "Exists", "effect": "NoExecute"}))
        .collect();
    for k in [
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    ] {
        out.push(json!({"key": k, "operator": "Exists", "effect": "NoSchedule"}));
    }
    out
}

/// The pod label upstream's DaemonSet controller uses to tell pods of the current template
/// (revision) from older ones.
const REVISION_LABEL: &str = "controller-revision-hash";

/// The pod label upstream's DaemonSet controller copies the DaemonSet's template generation
/// ([`crate::admission::TEMPLATE_GENERATION`]) into.
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// How many nodes a RollingUpdate DaemonSet may have without an available pod while it
/// replaces pods: `maxUnavailable` (default 1) against the nodes that should run the daemon,
/// percentages rounded up (upstream `UnavailableCount`). `maxSurge` is not simulated, so
/// where upstream would surge (maxUnavailable 0) the lab falls back to 1, as upstream does
/// when both come out 0.
pub(crate) fn daemon_max_unavailable(ds: &Value, desired: usize) -> usize {
    let n = match ds.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable") {
        None | Some(Value::Null) => 1,
        Some(v) => scaled_int_or_percent(v, desired, true).unwrap_or(1),
    };
    if desired > 0 && n == 0 { 1 } else { n }
}

/// Upstream `IsPodAvailable`: Ready for at least `min_ready` seconds. Returns whether it is,
/// and when a Ready pod that is not available yet will be.
fn pod_available(p: &Value, min_ready: f64, now: Timestamp, clock: &Clock) -> (bool, Option<Timestamp>) {
    let Some(ready) = p
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready" && c["status"] == "True"))
    else {
        return (false, None);
    };
    if min_ready <= 0.0 {
        return (true, None);
    }
    match ready["lastTransitionTime"].as_str().and_then(clock::parse) {
        Some(t) => {
            let at = clock.after(t, min_ready);
            if at <= now { (true, None) } else { (false, Some(at)) }
        }
        None => (false, None),
    }
}

/// The nodes a DaemonSet's pods should run on (node selector, required node affinity and the
/// taints its pods, with the controller's added tolerations, tolerate), and the nodes where a pod
/// already there may keep running: upstream's `NodeShouldRunDaemonPod` lets a daemon pod stay on a
/// node whose untolerated taints are all `NoSchedule` (an unreachable node's, say).
fn daemon_nodes(
    template_pod: &Value,
    parsed: &[stepstone_core::inventory::Node],
) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let shape = parse_pod(template_pod).ok()?;
    let mut run = BTreeSet::new();
    let mut keep = BTreeSet::new();
    for n in parsed {
        let mut labels = n.labels.clone();
        labels.insert(stepstone_core::capacity::NODE_NAME_FIELD.to_string(), n.name.clone());
        let selector_ok = shape.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v));
        let affinity_ok = shape.node_affinity.is_empty() || shape.node_affinity.iter().any(|t| t.matches(&labels));
        if !selector_ok || !affinity_ok {
            continue;
        }
        let tolerated = |effect: &str| {
            n.taints.iter().filter(|t| t.effect == effect).all(|t| shape.tolerations.iter().any(|tol| tol.tolerates(t)))
        };
        if tolerated("NoExecute") {
            keep.insert(n.name.clone());
            if tolerated("NoSchedule") {
                run.insert(n.name.clone());
            }
        }
    }
    Some((run, keep))
}

/// Upstream's DaemonSet history (`constructHistory`, `cleanupHistory`): one ControllerRevision per
/// distinct template, named `<ds>-<hash>`, labelled with the template's labels and the hash its
/// pods carry in `controller-revision-hash`, with the DaemonSet's annotations (so
/// `kubernetes.io/change-cause` shows in `kubectl rollout history`), `data` the patch that puts
/// the template back (what `kubectl rollout undo` sends) and the highest `revision` for the
/// current template; a template seen before (a rollback) gets its old revision renumbered rather
/// than a new one. Beyond `revisionHistoryLimit` (default 10), the oldest revisions no live pod
/// runs go.
fn daemon_history(store: &mut Store, ds: &Value, template: &Value, hash: &str, pods: &[Arc<Value>], now: Timestamp) {
    let ns = namespace_of(ds).to_string();
    let uid = uid_of(ds).to_string();
    let revision = |cr: &Value| cr["revision"].as_i64().unwrap_or(0);
    let hash_of = |o: &Value| store::labels_of(o).get(REVISION_LABEL).cloned();
    let mut history: Vec<Arc<Value>> = store
        .iter(r::CONTROLLER_REVISIONS, Some(&ns), None)
        .filter(|cr| controller_uid(cr) == Some(uid.as_str()))
        .collect();
    let newest = history.iter().map(|cr| revision(cr)).max().unwrap_or(0);
    match history.iter().position(|cr| hash_of(cr).as_deref() == Some(hash)) {
        Some(i) if revision(&history[i]) == newest => {}
        Some(i) => {
            let mut next = (*history[i]).clone();
            next["revision"] = json!(newest + 1);
            if let Ok(updated) = store.update(r::CONTROLLER_REVISIONS, next, Part::All, false) {
                history[i] = updated;
            }
        }
        None => {
            let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
            labels[REVISION_LABEL] = json!(hash);
            let mut data_template = template.clone();
            data_template["$patch"] = json!("replace");
            let mut metadata = json!({"name": format!("{}-{hash}", name_of(ds)), "namespace": ns, "labels": labels,
                "ownerReferences": owner_ref("DaemonSet", ds)});
            if let Some(a) = meta(ds).get("annotations").filter(|a| a.as_object().is_some_and(|a| !a.is_empty())) {
                metadata["annotations"] = a.clone();
            }
            let cr = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
                "data": {"spec": {"template": data_template}}, "revision": newest + 1});
            if let Ok(created) = store.create(r::CONTROLLER_REVISIONS, cr, now, false) {
                history.push(created);
            }
        }
    }
    let limit = ds.pointer("/spec/revisionHistoryLimit").and_then(Value::as_u64).unwrap_or(10) as usize;
    let live: HashSet<String> = pods.iter().filter(|p| is_active(p)).filter_map(|p| hash_of(p)).collect();
    let mut old: Vec<&Arc<Value>> =
        history.iter().filter(|cr| hash_of(cr).is_none_or(|h| h != hash && !live.contains(&h))).collect();
    old.sort_by_key(|cr| revision(cr));
    let excess = old.len().saturating_sub(limit);
    let doomed: Vec<String> = old.iter().take(excess).map(|cr| name_of(cr).to_string()).collect();
    for name in doomed {
        store.remove(r::CONTROLLER_REVISIONS, &ns, &name);
    }
}

/// The DaemonSet controller: one pod per eligible node, pods on other nodes removed, and
/// template changes rolled out as upstream does it. Each pod carries the template's hash in
/// `controller-revision-hash`; a pod with another hash is old. `RollingUpdate` deletes old pods
/// while at most `maxUnavailable` nodes lack an available pod (old pods that are not available
/// anyway go first) and the next pass creates the new pod on the freed node; `OnDelete` only
/// replaces pods someone deleted. Returns the next deadline (`minReadySeconds`).
///
/// Pods that existed before the lab first saw the DaemonSet (a loaded snapshot) carry hashes
/// computed by a real controller; those whose containers run the template's images are
/// relabelled with the lab's hash, as upstream relabels pods when it deduplicates revisions.
fn daemonsets(store: &mut Store, now: Timestamp, clock: &Clock, adopted: &mut HashSet<String>) -> Option<Timestamp> {
    let sets: Vec<Arc<Value>> = store.iter(r::DAEMONSETS, None, None).collect();
    adopted.retain(|uid| sets.iter().any(|ds| uid_of(ds) == uid));
    if sets.is_empty() {
        return None;
    }
    let owned = pods_by_owner(store);
    let opts = SnapshotOptions::default();
    let parsed: Vec<_> = store.iter(r::NODES, None, None).filter_map(|n| parse_node(&n, &opts).ok()).collect();
    let mut due: Option<Timestamp> = None;
    for ds in sets {
        let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = template_hash(&template);
        // Upstream's CreatePodTemplate: the template generation (when the DaemonSet has one) and
        // the revision hash. Whether a pod is current is decided by the hash alone: every pod the
        // lab creates or adopts carries one, so the generation label's fallback for pods from
        // before revision hashes never applies.
        let mut extra_labels = Vec::with_capacity(2);
        if let Some(generation) = api::template_generation(&ds) {
            extra_labels.push((TEMPLATE_GENERATION_LABEL, generation.to_string()));
        }
        extra_labels.push((REVISION_LABEL, hash.clone()));
        let mut template_pod = pod_from_template(&ds, "DaemonSet", "template".into(), &extra_labels);
        let mut tolerations =
            template_pod.pointer("/spec/tolerations").and_then(Value::as_array).cloned().unwrap_or_default();
        for t in daemon_tolerations() {
            if !tolerations.contains(&t) {
                tolerations.push(t);
            }
        }
        template_pod["spec"]["tolerations"] = json!(tolerations);
        api::admit(r::PODS, &mut template_pod);
        let Some((eligible, keep)) = daemon_nodes(&template_pod, &parsed) else { continue };
        let mut pods: Vec<Arc<Value>> =
            owned.get(uid_of(&ds)).map(|ps| ps.iter().map(|p| p.value()).collect()).unwrap_or_default();
        if adopted.insert(uid_of(&ds).to_string()) {
            let images = store::containers(&template);
            for p in pods.iter_mut() {
                let label = meta(p).pointer(&format!("/labels/{REVISION_LABEL}")).and_then(Value::as_str);
                if is_active(p) && label != Some(hash.as_str()) && store::containers(p) == images {
                    let mut next = (**p).clone();
                    store::meta_mut(&mut next)
                        .entry("labels")
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .map(|l| l.insert(REVISION_LABEL.into(), json!(hash)));
                    if let Ok(updated) = store.update(r::PODS, next, Part::All, false) {
                        *p = updated;
                    }
                }
            }
        }
        daemon_history(store, &ds, &template, &hash, &pods, now);
        let updated_pod = |p: &Value| store::labels_of(p).get(REVISION_LABEL) == Some(&hash);
        let min_ready = ds.pointer("/spec/minReadySeconds").and_then(Value::as_f64).unwrap_or(0.0);
        let mut on_node: BTreeMap<String, Vec<Arc<Value>>> = BTreeMap::new();
        for p in pods.iter().filter(|p| is_active(p)) {
            let node = p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").to_string();
            on_node.entry(node).or_default().push(p.clone());
        }
        for ps in on_node.values_mut() {
            ps.sort_by(|a, b| meta_str(a, "creationTimestamp").cmp(&meta_str(b, "creationTimestamp")));
        }
        let mut doomed: Vec<Arc<Value>> = Vec::new();
        // Pods on nodes that should not run the daemon go; so do all but the oldest pod on a node.
        for (node, ps) in &on_node {
            if eligible.contains(node) || keep.contains(node) {
                doomed.extend(ps.iter().skip(1).cloned());
            } else {
                doomed.extend(ps.iter().cloned());
            }
        }
        let strategy = ds.pointer("/spec/updateStrategy/type").and_then(Value::as_str).unwrap_or("RollingUpdate");
        if strategy == "RollingUpdate" {
            let max_unavailable = daemon_max_unavailable(&ds, eligible.len());
            let mut unavailable = 0;
            let mut replace_now = Vec::new();
            let mut candidates = Vec::new();
            for node in &eligible {
                let ps = on_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
                let (new, old): (Vec<&Arc<Value>>, Vec<&Arc<Value>>) = ps.iter().partition(|p| updated_pod(p));
                match (new.first(), old.first()) {
                    (Some(n), None) => {
                        let (available, at) = pod_available(n, min_ready, now, clock);
                        due = earliest(due, at);
                        if !available {
                            unavailable += 1;
                        }
                    }
                    (None, Some(o)) => {
                        let (available, at) = pod_available(o, min_ready, now, clock);
                        due = earliest(due, at);
                        if !available {
                            replace_now.push((*o).clone());
                        } else if unavailable < max_unavailable {
                            candidates.push((*o).clone());
                        }
                    }
                    // No pod yet, or old and new side by side: the node counts as unavailable.
                    _ => unavailable += 1,
                }
            }
            let room = max_unavailable.saturating_sub(unavailable).min(candidates.len());
            doomed.extend(replace_now);
            doomed.extend(candidates.into_iter().take(room));
        }
        let misscheduled = on_node.keys().filter(|n| !eligible.contains(*n)).count();
        let mut deleted: HashSet<String> = HashSet::new();
        for p in &doomed {
            if deleted.insert(name_of(p).to_string())
                && api::delete(store, r::PODS, namespace_of(p), name_of(p), &DeleteOptions::default(), now).is_ok()
            {
                nodes::record_event(
                    store,
                    now,
                    &ds,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name_of(p)),
                    "daemonset-controller",
                );
            }
        }
        for ps in on_node.values_mut() {
            ps.retain(|p| !deleted.contains(name_of(p)));
        }
        on_node.retain(|_, ps| !ps.is_empty());
        for node in &eligible {
            if on_node.contains_key(node) {
                continue;
            }
            let name = format!("{}-{}", name_of(&ds), store.random_suffix(5));
            let mut pod = template_pod.clone();
            pod["metadata"]["name"] = json!(name);
            // The DaemonSet controller pins the pod to its node with required node affinity;
            // the lab binds it directly, which is what the scheduler then does.
            pod["spec"]["nodeName"] = json!(node);
            nodes::set_pod_condition(&mut pod, "PodScheduled", true, now);
            if let Ok(created) = store.create(r::PODS, pod, now, false) {
                nodes::record_event(
                    store,
                    now,
                    &ds,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: {}", name_of(&created)),
                    "daemonset-controller",
                );
                on_node.insert(node.clone(), vec![created]);
            }
        }
        // Status as upstream counts it: per node that should run the daemon, its oldest pod.
        let (mut scheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0);
        for node in &eligible {
            let Some(p) = on_node.get(node).and_then(|ps| ps.first()) else { continue };
            scheduled += 1;
            if is_ready(p) {
                ready += 1;
                let (ok, at) = pod_available(p, min_ready, now, clock);
                due = earliest(due, at);
                if ok {
                    available += 1;
                }
            }
            if updated_pod(p) {
                updated += 1;
            }
        }
        write_status(
            store,
            r::DAEMONSETS,
            &ds,
            json!({"desiredNumberScheduled": eligible.len(), "currentNumberScheduled": scheduled,
                "numberReady": ready, "numberAvailable": available, "updatedNumberScheduled": updated,
                "numberMisscheduled": misscheduled, "numberUnavailable": eligible.len().saturating_sub(available),
                "observedGeneration": generation(&ds)}),
        );
    }
    due
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn daemonset_max_unavailable_scales_like_upstream() {
        let ds = |v: Value| json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": v}}}});
        assert_eq!(daemon_max_unavailable(&ds(json!(3)), 10), 3);
        // Percentages of the nodes that should run the daemon, rounded up.
        assert_eq!(daemon_max_unavailable(&ds(json!("25%")), 10), 3);
        assert_eq!(daemon_max_unavailable(&ds(json!("10%")), 5), 1);
        assert_eq!(daemon_max_unavailable(&ds(json!("40%")), 5), 2);
        assert_eq!(daemon_max_unavailable(&ds(json!("100%")), 7), 7);
        // Zero (no surge in the lab) falls back to one, as upstream does when both are zero.
        assert_eq!(daemon_max_unavailable(&ds(json!(0)), 5), 1);
        assert_eq!(daemon_max_unavailable(&ds(json!("0%")), 5), 1);
        assert_eq!(daemon_max_unavailable(&ds(json!("30%")), 0), 0);
        // The API default when the fleet left it out; garbage as the default too.
        assert_eq!(daemon_max_unavailable(&json!({"spec": {}}), 5), 1);
        assert_eq!(daemon_max_unavailable(&ds(json!("two")), 5), 1);
    }
}

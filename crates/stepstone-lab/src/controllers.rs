//! The control loop on simulated time: simulated kubelets (pods Pending -> Running -> Ready,
//! graceful termination, kubelet restarts, node leases), the scheduler (the planner's
//! `CapacityModel`, not a second implementation), the ReplicaSet, Deployment, StatefulSet and
//! DaemonSet controllers (Deployment and DaemonSet template changes roll out within their
//! surge and unavailability budgets), the node lifecycle controller (a silent kubelet's node
//! turns `Unknown` and gets the `unreachable` taints after `--node-monitor-grace-period`), the
//! taint eviction controller (`NoExecute` taints delete the pods that do not tolerate them, or
//! no longer do after `tolerationSeconds`), the disruption controller (`stepstone_core::pdb`)
//! and garbage collection of objects whose owners are gone.
//!
//! A pass runs after writes (woken by the API) or when a simulated deadline falls due; each
//! part runs only when the resources it reads changed since its last run, so an idle lab of
//! thousands of nodes costs nothing but lease renewals.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::inventory::{Inventory, Pdb, Pod};
use stepstone_core::pdb as budget;
use stepstone_core::plan::simulate::{CapacityModel, Headroom};
use stepstone_core::selector::Operator;
use stepstone_core::snapshot::{SnapshotOptions, parse_node, parse_pdb, parse_pod, parse_workload};

use crate::api::{self, DeleteOptions};
use crate::clock;
use crate::nodes;
use crate::resources::{self as r, RESOURCES, ResId};
use crate::state::Shared;
use crate::store::{self, Part, Store, controller_uid, meta, meta_str, name_of, namespace_of, uid_of};

/// Pods created per controller pass at most, so one huge scale-up does not stall the API.
const CREATE_BURST: usize = 500;

/// Parsed pods, reused across passes while their resourceVersion is unchanged.
#[derive(Default)]
struct PodCache {
    pods: HashMap<(String, String), (String, Arc<Pod>)>,
}

impl PodCache {
    fn refresh(&mut self, store: &Store) {
        let mut seen = HashSet::with_capacity(self.pods.len());
        for obj in store.iter(r::PODS, None, None) {
            let key = (namespace_of(obj).to_string(), name_of(obj).to_string());
            let rv = meta_str(obj, "resourceVersion").unwrap_or("");
            let fresh = self.pods.get(&key).is_some_and(|(v, _)| v == rv);
            if !fresh && let Ok(p) = parse_pod(obj) {
                self.pods.insert(key.clone(), (rv.to_string(), Arc::new(p)));
            }
            seen.insert(key);
        }
        self.pods.retain(|k, _| seen.contains(k));
    }
}

struct Loop {
    shared: Arc<Shared>,
    seen: Vec<u64>,
    cache: PodCache,
    next_heartbeat: Timestamp,
    /// Pods already reported unschedulable with this message (no repeated events).
    unschedulable: HashMap<String, String>,
    /// DaemonSets (by uid) whose pods from before the lab started were adopted into the current revision.
    adopted_daemonsets: HashSet<String>,
}

fn changed(store: &Store, seen: &[u64], resources: &[ResId]) -> bool {
    resources.iter().any(|&res| store.last_change(res) > seen[res])
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Run until `shutdown` fires.
pub async fn run(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let now = shared.now();
    let mut lp = Loop {
        shared: shared.clone(),
        seen: vec![0; RESOURCES.len()],
        cache: PodCache::default(),
        next_heartbeat: now,
        unschedulable: HashMap::new(),
        adopted_daemonsets: HashSet::new(),
    };
    let mut due: Option<Timestamp> = Some(now);
    loop {
        let deadline = earliest(due, Some(lp.next_heartbeat)).expect("heartbeat always set");
        let wait = shared.clock.real_until(deadline).min(Duration::from_secs(2));
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = shared.wake.notified() => {
                // Let a burst of writes (a drain, a scale) land before reacting.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        if *shutdown.borrow() {
            return;
        }
        due = lp.pass(due);
    }
}

impl Loop {
    /// One reconciliation pass; returns the next simulated deadline.
    fn pass(&mut self, previous_due: Option<Timestamp>) -> Option<Timestamp> {
        let shared = self.shared.clone();
        let now = shared.now();
        let mut store = shared.store();
        let timer = previous_due.is_some_and(|d| d <= now) || self.seen.iter().all(|s| *s == 0);
        // A deadline not reached yet stays pending even if no part below runs.
        let carried = if timer { None } else { previous_due };
        let mut due = earliest(carried, nodes::finish_restarts(&shared, &mut store, now));
        // The node lifecycle and taint eviction controllers run before the snapshot below, so
        // that the workload controllers replace evicted pods in this same pass.
        let kubelets_down = !nodes::kubelet_down(&shared).is_empty();
        if timer || kubelets_down || changed(&store, &self.seen, &[r::NODES]) {
            due = earliest(due, node_lifecycle(&shared, &mut store, now));
        }
        if timer || changed(&store, &self.seen, &[r::NODES, r::PODS]) {
            due = earliest(due, taint_eviction(&mut store, now));
        }
        let before: Vec<u64> = (0..RESOURCES.len()).map(|res| store.last_change(res)).collect();
        let pods_or_nodes = changed(&store, &self.seen, &[r::PODS, r::NODES]);
        let workloads = changed(
            &store,
            &self.seen,
            &[
                r::PODS,
                r::NODES,
                r::DEPLOYMENTS,
                r::REPLICASETS,
                r::STATEFULSETS,
                r::DAEMONSETS,
                r::CONTROLLER_REVISIONS,
            ],
        );
        let budgets = changed(&store, &self.seen, &[r::PODS, r::PDBS, r::DEPLOYMENTS, r::REPLICASETS, r::STATEFULSETS]);
        if workloads || timer {
            gc(&mut store, now);
            deployments(&mut store, now);
            replicasets(&mut store, now);
            statefulsets(&mut store, now);
            due = earliest(due, daemonsets(&mut store, now, &mut self.adopted_daemonsets));
        }
        if pods_or_nodes || workloads || timer {
            self.schedule(&mut store, now);
            let before_kubelets = store.last_change(r::PODS);
            due = earliest(due, kubelets(&shared, &mut store, now));
            // Pods that just turned Running or Ready move rollouts on: the controllers see them
            // in the next pass right away, as upstream's informers would, not at the next deadline.
            if store.last_change(r::PODS) > before_kubelets {
                due = earliest(due, Some(now));
            }
        }
        if budgets || timer || changed(&store, &before, &[r::PODS]) {
            self.cache.refresh(&store);
            due = earliest(due, disruption(&mut store, &self.cache, now));
        }
        if now >= self.next_heartbeat {
            heartbeat(&shared, &mut store, now);
            let period = shared.timing.lease_renew_seconds.max(shared.clock.speed() * 2.0);
            self.next_heartbeat = clock::plus(now, period);
        }
        self.seen = before;
        due
    }

    fn schedule(&mut self, store: &mut Store, now: Timestamp) {
        let pending: Vec<Arc<Value>> = store
            .iter(r::PODS, None, None)
            .filter(|p| {
                p.pointer("/spec/nodeName").and_then(Value::as_str).is_none_or(str::is_empty)
                    && meta(p).get("deletionTimestamp").is_none()
                    && p.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending") == "Pending"
                    && p.pointer("/spec/schedulerName").and_then(Value::as_str).is_none_or(|s| s == "default-scheduler")
            })
            .cloned()
            .collect();
        if pending.is_empty() {
            self.unschedulable.clear();
            return;
        }
        self.cache.refresh(store);
        let mut model = scheduler_model(store, &self.cache);
        let mut queue: Vec<(Arc<Value>, Pod)> =
            pending.into_iter().filter_map(|o| parse_pod(&o).ok().map(|p| (o, p))).collect();
        queue.sort_by(|a, b| {
            b.1.priority.cmp(&a.1.priority).then(a.1.created.cmp(&b.1.created)).then(a.1.name.cmp(&b.1.name))
        });
        for (obj, pod) in queue {
            match pick(&model, &pod) {
                Ok(node) => {
                    let mut next = (*obj).clone();
                    next["spec"]["nodeName"] = json!(node);
                    nodes::set_pod_condition(&mut next, "PodScheduled", true, now);
                    if let Ok(bound) = store.update(r::PODS, next, Part::All, false) {
                        model.bind(&pod, &node);
                        self.unschedulable.remove(&pod.key());
                        nodes::record_event(
                            store,
                            now,
                            &bound,
                            "Normal",
                            "Scheduled",
                            &format!("Successfully assigned {}/{} to {node}", pod.namespace, pod.name),
                            "default-scheduler",
                        );
                    }
                }
                Err(message) => {
                    if self.unschedulable.get(&pod.key()) == Some(&message) {
                        continue;
                    }
                    let mut next = (*obj).clone();
                    nodes::set_pod_condition(&mut next, "PodScheduled", false, now);
                    if let Some(cs) = next.pointer_mut("/status/conditions").and_then(Value::as_array_mut)
                        && let Some(c) = cs.iter_mut().find(|c| c["type"] == "PodScheduled")
                    {
                        c["reason"] = json!("Unschedulable");
                        c["message"] = json!(message);
                    }
                    if let Ok(updated) = store.update(r::PODS, next, Part::All, false) {
                        nodes::record_event(
                            store,
                            now,
                            &updated,
                            "Warning",
                            "FailedScheduling",
                            &message,
                            "default-scheduler",
                        );
                    }
                    self.unschedulable.insert(pod.key(), message);
                }
            }
        }
    }
}

/// The scheduler's view: every node and every bound, unfinished pod, in the planner's
/// capacity model with no headroom beyond allocatable (what kube-scheduler enforces).
fn scheduler_model(store: &Store, cache: &PodCache) -> CapacityModel {
    let opts = SnapshotOptions::default();
    let node_list: Vec<_> = store.iter(r::NODES, None, None).filter_map(|n| parse_node(n, &opts).ok()).collect();
    let pods: Vec<Pod> =
        cache.pods.values().filter(|(_, p)| p.node_name.is_some()).map(|(_, p)| (**p).clone()).collect();
    CapacityModel::new(&node_list, &pods, Headroom::none())
}

/// The one place the scheduling decision is made: the planner's simulator.
fn pick(model: &CapacityModel, pod: &Pod) -> Result<String, String> {
    model.pick(pod).map_err(|u| {
        let reasons: Vec<String> = u.reasons.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
        format!("0/{} nodes are available: {}.", u.nodes, reasons.join(", "))
    })
}

fn phase(p: &Value) -> &str {
    p.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending")
}

fn is_active(p: &Value) -> bool {
    meta(p).get("deletionTimestamp").is_none() && !matches!(phase(p), "Succeeded" | "Failed")
}

fn is_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn node_ready(n: &Value) -> bool {
    n.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn started_at(p: &Value) -> Option<Timestamp> {
    p.pointer("/status/containerStatuses")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|c| c.pointer("/state/running/startedAt").and_then(Value::as_str).and_then(clock::parse))
        .max()
}

fn bound_at(p: &Value) -> Option<Timestamp> {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled" && c["status"] == "True"))
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(clock::parse)
        .or_else(|| meta_str(p, "creationTimestamp").and_then(clock::parse))
}

/// The simulated kubelets' work on pods. Returns the next deadline.
fn kubelets(shared: &Shared, store: &mut Store, now: Timestamp) -> Option<Timestamp> {
    let timing = &shared.timing;
    let down = nodes::kubelet_down(shared);
    let ready_nodes: HashSet<String> =
        store.iter(r::NODES, None, None).filter(|n| node_ready(n)).map(|n| name_of(n).to_string()).collect();
    let all_nodes: HashSet<String> = store.iter(r::NODES, None, None).map(|n| name_of(n).to_string()).collect();
    let mut due: Option<Timestamp> = None;
    let mut removals = Vec::new();
    let mut updates = Vec::new();
    for p in store.iter(r::PODS, None, None) {
        let node = p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
        if node.is_empty() {
            continue;
        }
        if let Some(deadline) = meta_str(p, "deletionTimestamp").and_then(clock::parse) {
            // A stopped kubelet cannot finish terminating its pods; a vanished node's pods go.
            if down.contains(node) && all_nodes.contains(node) {
                continue;
            }
            if deadline <= now || !all_nodes.contains(node) {
                removals.push((namespace_of(p).to_string(), name_of(p).to_string()));
            } else {
                due = earliest(due, Some(deadline));
            }
            continue;
        }
        if down.contains(node) || !ready_nodes.contains(node) {
            continue;
        }
        match phase(p) {
            "Pending" => {
                let at = clock::plus(bound_at(p).unwrap_or(now), timing.pod_start_seconds);
                if at <= now {
                    updates.push(start_pod(p, now));
                } else {
                    due = earliest(due, Some(at));
                }
            }
            "Running" if !is_ready(p) => {
                let crashing = p
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|c| c.pointer("/state/waiting").is_some()));
                if crashing {
                    continue;
                }
                let at = clock::plus(started_at(p).unwrap_or(now), timing.pod_ready_seconds);
                if at <= now {
                    let mut next = (**p).clone();
                    if let Some(cs) = next.pointer_mut("/status/containerStatuses").and_then(Value::as_array_mut) {
                        for c in cs {
                            c["ready"] = json!(true);
                            c["started"] = json!(true);
                        }
                    }
                    nodes::set_pod_condition(&mut next, "ContainersReady", true, now);
                    nodes::set_pod_condition(&mut next, "Ready", true, now);
                    updates.push(next);
                } else {
                    due = earliest(due, Some(at));
                }
            }
            _ => {}
        }
    }
    for (ns, name) in removals {
        store.remove(r::PODS, &ns, &name);
    }
    for u in updates {
        let _ = store.update(r::PODS, u, Part::All, false);
    }
    due
}

fn start_pod(p: &Value, now: Timestamp) -> Value {
    let mut next = p.clone();
    let node = p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").to_string();
    let host_ip = String::new();
    let h = {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        uid_of(p).hash(&mut hasher);
        hasher.finish()
    };
    let pod_ip = format!("10.{}.{}.{}", 64 + (h % 64), (h >> 8) % 256, 2 + (h >> 16) % 250);
    if !next.get("status").is_some_and(Value::is_object) {
        next["status"] = json!({});
    }
    let st = &mut next["status"];
    st["phase"] = json!("Running");
    st["startTime"] = json!(clock::format(now));
    if st.get("podIP").is_none() {
        st["podIP"] = json!(pod_ip);
        st["podIPs"] = json!([{"ip": pod_ip}]);
    }
    if st.get("hostIP").is_none() && !host_ip.is_empty() {
        st["hostIP"] = json!(host_ip);
    }
    let _ = node;
    nodes::restart_containers(&mut next, now, false);
    // A first start is not a restart.
    if let Some(cs) = next.pointer_mut("/status/containerStatuses").and_then(Value::as_array_mut) {
        for c in cs {
            c["restartCount"] = json!(0);
            if let Some(o) = c.as_object_mut() {
                o.remove("lastState");
            }
        }
    }
    nodes::set_pod_condition(&mut next, "Initialized", true, now);
    nodes::set_pod_condition(&mut next, "PodScheduled", true, now);
    next
}

/// Node leases in kube-node-lease, renewed by running kubelets.
fn heartbeat(shared: &Shared, store: &mut Store, now: Timestamp) {
    if store.get(r::NAMESPACES, "", "kube-node-lease").is_none() {
        let mut ns = json!({"metadata": {"name": "kube-node-lease"}});
        api::apply_defaults(r::NAMESPACES, &mut ns);
        let _ = store.create(r::NAMESPACES, ns, now, false);
    }
    let down = nodes::kubelet_down(shared);
    let duration = (shared.timing.lease_renew_seconds * 4.0).round() as i64;
    let renew = now.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string();
    let node_list: Vec<(String, String)> =
        store.iter(r::NODES, None, None).map(|n| (name_of(n).to_string(), uid_of(n).to_string())).collect();
    for (node, uid) in node_list {
        if down.contains(&node) {
            continue;
        }
        match store.get(r::LEASES, "kube-node-lease", &node).cloned() {
            Some(l) => {
                let mut next = (*l).clone();
                next["spec"]["renewTime"] = json!(renew);
                let _ = store.update(r::LEASES, next, Part::All, false);
            }
            None => {
                let lease = json!({
                    "metadata": {"name": node, "namespace": "kube-node-lease",
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]},
                    "spec": {"holderIdentity": node, "leaseDurationSeconds": duration, "renewTime": renew},
                });
                let _ = store.create(r::LEASES, lease, now, false);
            }
        }
    }
}

// ---- node lifecycle and taint eviction

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
        let name = name_of(n);
        let mut next = (**n).clone();
        let (flipped, tainted) = if down.contains(name) {
            let last = nodes::last_heard(store, n)
                .or_else(|| meta_str(n, "creationTimestamp").and_then(clock::parse))
                .unwrap_or(now);
            let deadline = clock::plus(last, grace);
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
    let pods: Vec<Arc<Value>> = store
        .iter(r::PODS, None, None)
        .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node) && is_ready(p))
        .cloned()
        .collect();
    for p in pods {
        let mut next = (*p).clone();
        nodes::set_pod_condition(&mut next, "Ready", false, now);
        if let Ok(updated) = store.update(r::PODS, next, Part::All, false) {
            nodes::record_event(
                store,
                now,
                &updated,
                "Warning",
                "NodeNotReady",
                "Node is not ready",
                "node-controller",
            );
        }
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
fn taint_eviction(store: &mut Store, now: Timestamp) -> Option<Timestamp> {
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
            (!taints.is_empty()).then(|| (name_of(n).to_string(), taints))
        })
        .collect();
    if tainted.is_empty() {
        return None;
    }
    let mut due = None;
    let mut doomed: Vec<Arc<Value>> = Vec::new();
    for p in store.iter(r::PODS, None, None) {
        let Some(taints) = p.pointer("/spec/nodeName").and_then(Value::as_str).and_then(|n| tainted.get(n)) else {
            continue;
        };
        if !is_active(p) || meta(p).pointer("/annotations/kubernetes.io~1config.mirror").is_some() {
            continue;
        }
        let Some(seconds) = toleration_seconds(p, taints) else { continue };
        let tainted_at = taints.iter().filter_map(|t| t["timeAdded"].as_str().and_then(clock::parse)).min();
        let start = match (tainted_at, bound_at(p)) {
            (Some(t), Some(b)) => t.max(b),
            (t, b) => t.or(b).unwrap_or(now),
        };
        let deadline = clock::plus(start, seconds as f64);
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

// ---- workload controllers

fn owner_ref(kind: &str, obj: &Value) -> Value {
    json!([{"apiVersion": "apps/v1", "kind": kind, "name": name_of(obj), "uid": uid_of(obj),
        "controller": true, "blockOwnerDeletion": true}])
}

fn pods_by_owner(store: &Store) -> HashMap<String, Vec<Arc<Value>>> {
    let mut out: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for p in store.iter(r::PODS, None, None) {
        if let Some(uid) = controller_uid(p) {
            out.entry(uid.to_string()).or_default().push(p.clone());
        }
    }
    out
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn generation(obj: &Value) -> i64 {
    meta(obj).get("generation").and_then(Value::as_i64).unwrap_or(1)
}

/// A pod from a controller's template.
fn pod_from_template(owner: &Value, owner_kind: &str, name: String, extra_labels: &[(&str, String)]) -> Value {
    let template = owner.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
    for (k, v) in extra_labels {
        labels[*k] = json!(v);
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace_of(owner), "labels": labels,
            "ownerReferences": owner_ref(owner_kind, owner)},
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
        "status": {"phase": "Pending"},
    });
    if let Some(a) = template.pointer("/metadata/annotations") {
        pod["metadata"]["annotations"] = a.clone();
    }
    api::apply_defaults(r::PODS, &mut pod);
    pod
}

fn write_status(store: &mut Store, res: ResId, obj: &Value, status: Value) {
    let mut merged = obj.get("status").cloned().unwrap_or(json!({}));
    crate::patch::merge(&mut merged, &status);
    if obj.get("status") == Some(&merged) {
        return;
    }
    let mut next = obj.clone();
    next["status"] = merged;
    let _ = store.update(res, next, Part::Status, false);
}

/// Pods to remove first when scaling down, as upstream ranks them: unscheduled, then pending,
/// then not ready, then the newest.
fn deletion_rank(p: &Value) -> (bool, u8, bool, std::cmp::Reverse<String>) {
    let scheduled = p.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let phase_rank = match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    (scheduled, phase_rank, is_ready(p), std::cmp::Reverse(meta_str(p, "creationTimestamp").unwrap_or("").to_string()))
}

fn replicasets(store: &mut Store, now: Timestamp) {
    let owned = pods_by_owner(store);
    let sets: Vec<Arc<Value>> = store.iter(r::REPLICASETS, None, None).cloned().collect();
    let mut budget = CREATE_BURST;
    for rs in sets {
        let mut active: Vec<Arc<Value>> =
            owned.get(uid_of(&rs)).map(|v| v.iter().filter(|p| is_active(p)).cloned().collect()).unwrap_or_default();
        let want = replicas(&rs).max(0) as usize;
        if active.len() < want {
            for _ in 0..(want - active.len()).min(budget) {
                let name = format!("{}-{}", name_of(&rs), store.random_suffix(5));
                let mut pod = pod_from_template(&rs, "ReplicaSet", name, &[]);
                api::admit(r::PODS, &mut pod);
                if let Ok(p) = store.create(r::PODS, pod, now, false) {
                    active.push(p);
                    budget -= 1;
                }
            }
        } else if active.len() > want {
            active.sort_by_key(|p| deletion_rank(p));
            let extra: Vec<Arc<Value>> = active.drain(..active.len() - want).collect();
            for p in extra {
                let _ = api::delete(store, r::PODS, namespace_of(&p), name_of(&p), &DeleteOptions::default(), now);
            }
        }
        let ready = active.iter().filter(|p| is_ready(p)).count();
        write_status(
            store,
            r::REPLICASETS,
            &rs,
            json!({"replicas": active.len(), "fullyLabeledReplicas": active.len(), "readyReplicas": ready,
                "availableReplicas": ready, "observedGeneration": generation(&rs)}),
        );
    }
}

/// What makes two pod templates the same revision: labels (without the hash) and containers.
fn template_identity(template: Option<&Value>) -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let Some(t) = template else { return Default::default() };
    let mut labels = store::string_map(t.pointer("/metadata/labels"));
    labels.remove("pod-template-hash");
    let containers = t
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["image"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    (labels, containers)
}

/// Feed a JSON value to a hasher with object keys in sorted order, so the same template hashes
/// the same whatever order its fields were written in.
fn hash_canonical(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            '{'.hash(h);
            for k in keys {
                k.hash(h);
                hash_canonical(&m[k], h);
            }
            '}'.hash(h);
        }
        Value::Array(items) => {
            '['.hash(h);
            for i in items {
                hash_canonical(i, h);
            }
            ']'.hash(h);
        }
        other => other.to_string().hash(h),
    }
}

fn template_hash(template: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    hash_canonical(template, &mut h);
    let mut n = h.finish();
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// A RollingUpdate Deployment's `(maxSurge, maxUnavailable)` for `want` replicas, as upstream's
/// `ResolveFenceposts`: surge rounded up, unavailable rounded down, and 1 unavailable when both
/// come out 0 (defaults 25% each). Recreate Deployments have neither.
fn deployment_fenceposts(d: &Value, want: i64) -> (i64, i64) {
    let total = want.max(0) as usize;
    if d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate") {
        return (0, 0);
    }
    let field = |name: &str, round_up: bool| -> i64 {
        let v = d.pointer(&format!("/spec/strategy/rollingUpdate/{name}")).cloned().unwrap_or(json!("25%"));
        scaled_int_or_percent(&v, total, round_up).unwrap_or(0) as i64
    };
    let surge = field("maxSurge", true);
    let unavailable = field("maxUnavailable", false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable.min(want.max(0))) }
}

/// The new ReplicaSet's size during a rolling update (upstream `NewRSNewReplicas`): grow while
/// all ReplicaSets together stay within `want + max_surge`, never past `want`.
fn rolling_new_replicas(want: i64, max_surge: i64, total: i64, new: i64) -> i64 {
    let max_total = want + max_surge;
    if total >= max_total {
        return new;
    }
    new + (max_total - total).min(want - new).max(0)
}

/// The old ReplicaSets' sizes after one scale-down step (upstream `reconcileOldReplicaSets`):
/// first drop their unavailable pods, then available ones while at least `want -
/// max_unavailable` pods stay available. `new` and each of `olds` are `(replicas, available)`;
/// `olds` oldest first.
fn rolling_old_replicas(want: i64, max_unavailable: i64, new: (i64, i64), olds: &[(i64, i64)]) -> Vec<i64> {
    let mut sizes: Vec<i64> = olds.iter().map(|o| o.0).collect();
    let old_total: i64 = sizes.iter().sum();
    if old_total == 0 {
        return sizes;
    }
    let min_available = want - max_unavailable;
    let new_unavailable = new.0 - new.1;
    let max_scaled_down = old_total + new.0 - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return sizes;
    }
    let mut cleaned = 0;
    for (size, (_, available)) in sizes.iter_mut().zip(olds) {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = *size - (*available).min(*size);
        let n = unhealthy.min(max_scaled_down - cleaned);
        *size -= n;
        cleaned += n;
    }
    let available_total: i64 = new.1 + olds.iter().map(|o| o.1).sum::<i64>();
    if available_total <= min_available {
        return sizes;
    }
    let mut budget = available_total - min_available;
    for size in sizes.iter_mut() {
        if budget == 0 {
            break;
        }
        let n = (*size).min(budget);
        *size -= n;
        budget -= n;
    }
    sizes
}

fn deployments(store: &mut Store, now: Timestamp) {
    let deps: Vec<Arc<Value>> = store.iter(r::DEPLOYMENTS, None, None).cloned().collect();
    if deps.is_empty() {
        return;
    }
    let mut sets_by_owner: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for rs in store.iter(r::REPLICASETS, None, None) {
        if let Some(uid) = controller_uid(rs) {
            sets_by_owner.entry(uid.to_string()).or_default().push(rs.clone());
        }
    }
    for d in deps {
        let want = replicas(&d).max(0);
        let sets = sets_by_owner.remove(uid_of(&d)).unwrap_or_default();
        let identity = template_identity(d.pointer("/spec/template"));
        let current = sets.iter().find(|rs| template_identity(rs.pointer("/spec/template")) == identity).cloned();
        let revision = sets
            .iter()
            .filter_map(|rs| {
                meta(rs).pointer("/annotations/deployment.kubernetes.io~1revision").and_then(Value::as_str)
            })
            .filter_map(|v| v.parse::<i64>().ok())
            .max()
            .unwrap_or(0);
        let mut olds: Vec<Arc<Value>> =
            sets.iter().filter(|rs| current.as_ref().is_none_or(|c| uid_of(c) != uid_of(rs))).cloned().collect();
        // Oldest first: upstream scales old ReplicaSets down in creation order.
        olds.sort_by(|a, b| meta_str(a, "creationTimestamp").cmp(&meta_str(b, "creationTimestamp")));
        let old_total: i64 = olds.iter().map(|rs| replicas(rs)).sum();
        let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        let (max_surge, max_unavailable) = deployment_fenceposts(&d, want);
        let new_replicas = |current_new: i64| -> i64 {
            if recreate {
                // Recreate: the new pods start once every old pod is gone.
                let old_pods: i64 =
                    olds.iter().filter_map(|rs| rs.pointer("/status/replicas").and_then(Value::as_i64)).sum();
                if old_total == 0 && old_pods == 0 { want } else { 0 }
            } else if old_total == 0 || current_new > want {
                want
            } else {
                rolling_new_replicas(want, max_surge, old_total + current_new, current_new)
            }
        };
        let (new_rs, scaled_up) = match current {
            Some(rs) => {
                let target = new_replicas(replicas(&rs));
                if replicas(&rs) != target {
                    let mut next = (*rs).clone();
                    next["spec"]["replicas"] = json!(target);
                    (store.update(r::REPLICASETS, next, Part::Main, false).ok(), target > replicas(&rs))
                } else {
                    (Some(rs), false)
                }
            }
            None => {
                let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
                let hash = template_hash(&template);
                let mut t = template.clone();
                t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let mut labels = t.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
                labels["pod-template-hash"] = json!(hash);
                let target = new_replicas(0);
                let rs = json!({
                    "metadata": {"name": format!("{}-{hash}", name_of(&d)), "namespace": namespace_of(&d), "labels": labels,
                        "annotations": {"deployment.kubernetes.io/revision": (revision + 1).to_string(),
                            "deployment.kubernetes.io/desired-replicas": want.to_string(),
                            "deployment.kubernetes.io/max-replicas": (want + max_surge).to_string()},
                        "ownerReferences": owner_ref("Deployment", &d)},
                    "spec": {"replicas": target, "selector": selector, "template": t},
                });
                (store.create(r::REPLICASETS, rs, now, false).ok(), target > 0)
            }
        };
        let Some(new_rs) = new_rs else { continue };
        // Old ReplicaSets shrink only in a pass that did not grow the new one (upstream returns
        // after a scale-up), and only as far as availability allows.
        let old_targets = if recreate {
            olds.iter().map(|_| 0).collect()
        } else if scaled_up {
            olds.iter().map(|rs| replicas(rs)).collect()
        } else {
            let status_of = |rs: &Value, field: &str| rs.pointer(&format!("/status/{field}")).and_then(Value::as_i64);
            let old_sets: Vec<(i64, i64)> =
                olds.iter().map(|rs| (replicas(rs), status_of(rs, "availableReplicas").unwrap_or(0))).collect();
            let new_available = status_of(&new_rs, "availableReplicas").unwrap_or(0);
            rolling_old_replicas(want, max_unavailable, (replicas(&new_rs), new_available), &old_sets)
        };
        for (old, keep) in olds.iter().zip(old_targets) {
            if replicas(old) != keep {
                let mut next = (**old).clone();
                next["spec"]["replicas"] = json!(keep);
                let _ = store.update(r::REPLICASETS, next, Part::Main, false);
            }
        }
        let all: Vec<Arc<Value>> = std::iter::once(new_rs.clone()).chain(olds).collect();
        let sum = |field: &str| -> i64 {
            all.iter().filter_map(|rs| rs.pointer(&format!("/status/{field}")).and_then(Value::as_i64)).sum()
        };
        let available = sum("availableReplicas");
        let updated = new_rs.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0);
        let t = clock::format(now);
        let available_ok = available >= want - (want / 4);
        let conditions = json!([
            {"type": "Available", "status": if available_ok {"True"} else {"False"},
             "reason": if available_ok {"MinimumReplicasAvailable"} else {"MinimumReplicasUnavailable"},
             "message": if available_ok {"Deployment has minimum availability."} else {"Deployment does not have minimum availability."},
             "lastUpdateTime": t, "lastTransitionTime": t},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": format!("ReplicaSet \"{}\" has successfully progressed.", name_of(&new_rs)),
             "lastUpdateTime": t, "lastTransitionTime": t},
        ]);
        let mut status = json!({
            "observedGeneration": generation(&d), "replicas": sum("replicas"), "updatedReplicas": updated,
            "readyReplicas": sum("readyReplicas"), "availableReplicas": available,
            "unavailableReplicas": (want - available).max(0),
        });
        // Conditions only change when availability flips, to keep the object stable.
        let old_available = d
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
            .map(|c| c["status"] == "True");
        if old_available != Some(available_ok) {
            status["conditions"] = conditions;
        }
        write_status(store, r::DEPLOYMENTS, &d, status);
    }
}

fn ordinal(sts: &str, pod: &str) -> Option<i64> {
    pod.strip_prefix(sts)?.strip_prefix('-')?.parse().ok()
}

fn statefulsets(store: &mut Store, now: Timestamp) {
    let owned = pods_by_owner(store);
    let sets: Vec<Arc<Value>> = store.iter(r::STATEFULSETS, None, None).cloned().collect();
    for sts in sets {
        let name = name_of(&sts).to_string();
        let ns = namespace_of(&sts).to_string();
        let want = replicas(&sts).max(0);
        let parallel = sts.pointer("/spec/podManagementPolicy").and_then(Value::as_str) == Some("Parallel");
        let pods: BTreeMap<i64, Arc<Value>> = owned
            .get(uid_of(&sts))
            .into_iter()
            .flatten()
            .filter_map(|p| ordinal(&name, name_of(p)).map(|o| (o, p.clone())))
            .collect();
        let revision =
            format!("{name}-{}", &template_hash(&sts.pointer("/spec/template").cloned().unwrap_or(json!({})))[..10]);
        // Scale up in order, each pod waiting for its predecessors to be Running and Ready.
        for i in 0..want {
            if pods.contains_key(&i) {
                continue;
            }
            let predecessors_ready = (0..i).all(|j| pods.get(&j).is_some_and(|p| is_active(p) && is_ready(p)));
            if !parallel && !predecessors_ready {
                break;
            }
            let pod_name = format!("{name}-{i}");
            let mut pod = pod_from_template(
                &sts,
                "StatefulSet",
                pod_name.clone(),
                &[
                    ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                    ("apps.kubernetes.io/pod-index", i.to_string()),
                    ("controller-revision-hash", revision.clone()),
                ],
            );
            pod["spec"]["hostname"] = json!(pod_name);
            if let Some(svc) = sts.pointer("/spec/serviceName").and_then(Value::as_str) {
                pod["spec"]["subdomain"] = json!(svc);
            }
            api::admit(r::PODS, &mut pod);
            let _ = store.create(r::PODS, pod, now, false);
            if !parallel {
                break;
            }
        }
        // Scale down from the highest ordinal, one at a time.
        let condemned: Vec<&Arc<Value>> = pods.iter().rev().filter(|(o, _)| **o >= want).map(|(_, p)| p).collect();
        for p in condemned {
            if meta(p).get("deletionTimestamp").is_some() {
                if !parallel {
                    break;
                }
                continue;
            }
            let _ = api::delete(store, r::PODS, &ns, name_of(p), &DeleteOptions::default(), now);
            if !parallel {
                break;
            }
        }
        let active: Vec<&Arc<Value>> = pods.values().filter(|p| is_active(p)).collect();
        let ready = active.iter().filter(|p| is_ready(p)).count();
        write_status(
            store,
            r::STATEFULSETS,
            &sts,
            json!({"observedGeneration": generation(&sts), "replicas": active.len(), "readyReplicas": ready,
                "currentReplicas": active.len(), "updatedReplicas": active.len(), "availableReplicas": ready,
                "currentRevision": revision, "updateRevision": revision}),
        );
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
/// ([`api::TEMPLATE_GENERATION`]) into.
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// Resolve an int-or-percent against `total` like upstream's `GetScaledValueFromIntOrPercent`:
/// integers as they are, `"N%"` scaled and rounded up or down. `None` for anything else (the
/// API server rejects such values, so they only come from hand-written fleets).
fn scaled_int_or_percent(v: &Value, total: usize, round_up: bool) -> Option<usize> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n as usize),
        Value::String(s) => {
            let p: f64 = s.strip_suffix('%')?.trim().parse().ok()?;
            let exact = p * total as f64 / 100.0;
            Some(if round_up { exact.ceil() } else { exact.floor() }.max(0.0) as usize)
        }
        _ => None,
    }
}

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
fn pod_available(p: &Value, min_ready: f64, now: Timestamp) -> (bool, Option<Timestamp>) {
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
            let at = clock::plus(t, min_ready);
            if at <= now { (true, None) } else { (false, Some(at)) }
        }
        None => (false, None),
    }
}

fn image_list(containers: Option<&Value>) -> Vec<(String, String)> {
    containers
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["image"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
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
        labels.insert(stepstone_core::plan::simulate::NODE_NAME_FIELD.to_string(), n.name.clone());
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
        .cloned()
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
fn daemonsets(store: &mut Store, now: Timestamp, adopted: &mut HashSet<String>) -> Option<Timestamp> {
    let sets: Vec<Arc<Value>> = store.iter(r::DAEMONSETS, None, None).cloned().collect();
    adopted.retain(|uid| sets.iter().any(|ds| uid_of(ds) == uid));
    if sets.is_empty() {
        return None;
    }
    let owned = pods_by_owner(store);
    let opts = SnapshotOptions::default();
    let parsed: Vec<_> = store.iter(r::NODES, None, None).filter_map(|n| parse_node(n, &opts).ok()).collect();
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
        let mut pods: Vec<Arc<Value>> = owned.get(uid_of(&ds)).cloned().unwrap_or_default();
        if adopted.insert(uid_of(&ds).to_string()) {
            let images = image_list(template.pointer("/spec/containers"));
            for p in pods.iter_mut() {
                let label = meta(p).pointer(&format!("/labels/{REVISION_LABEL}")).and_then(Value::as_str);
                if is_active(p) && label != Some(hash.as_str()) && image_list(p.pointer("/spec/containers")) == images {
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
                        let (available, at) = pod_available(n, min_ready, now);
                        due = earliest(due, at);
                        if !available {
                            unavailable += 1;
                        }
                    }
                    (None, Some(o)) => {
                        let (available, at) = pod_available(o, min_ready, now);
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
                let (ok, at) = pod_available(p, min_ready, now);
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

/// Objects whose every owner is gone are deleted (background cascading deletion).
fn gc(store: &mut Store, now: Timestamp) {
    let mut uids: HashSet<String> = HashSet::new();
    for res in [r::DEPLOYMENTS, r::REPLICASETS, r::STATEFULSETS, r::DAEMONSETS, r::NODES, r::PODS] {
        uids.extend(store.iter(res, None, None).map(|o| uid_of(o).to_string()));
    }
    for res in [r::REPLICASETS, r::PODS, r::LEASES, r::CONTROLLER_REVISIONS] {
        let orphans: Vec<(String, String)> = store
            .iter(res, None, None)
            .filter(|o| {
                meta(o).get("ownerReferences").and_then(Value::as_array).is_some_and(|refs| {
                    !refs.is_empty()
                        && refs.iter().all(|x| x.get("uid").and_then(Value::as_str).is_some_and(|u| !uids.contains(u)))
                })
            })
            .map(|o| (namespace_of(o).to_string(), name_of(o).to_string()))
            .collect();
        for (ns, name) in orphans {
            let _ = api::delete(store, res, &ns, &name, &DeleteOptions::default(), now);
        }
    }
}

/// The disruption controller: every budget's status from `stepstone_core::pdb`.
fn disruption(store: &mut Store, cache: &PodCache, now: Timestamp) -> Option<Timestamp> {
    let pdb_objs: Vec<Arc<Value>> = store.iter(r::PDBS, None, None).cloned().collect();
    if pdb_objs.is_empty() {
        return None;
    }
    let namespaces: HashSet<String> = pdb_objs.iter().map(|p| namespace_of(p).to_string()).collect();
    // Per namespace: its pods, a label index, and an inventory of its workloads for the finders.
    let mut pods_in: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for ((ns, _), (_, pod)) in &cache.pods {
        if namespaces.contains(ns) {
            pods_in.entry(ns.clone()).or_default().push(pod.clone());
        }
    }
    let mut inventories: HashMap<String, Inventory> = HashMap::new();
    for ns in &namespaces {
        let mut inv = Inventory::default();
        for res in [r::DEPLOYMENTS, r::REPLICASETS, r::STATEFULSETS] {
            inv.workloads.extend(store.iter(res, Some(ns), None).filter_map(|o| parse_workload(o).ok()));
        }
        inventories.insert(ns.clone(), inv);
    }
    let mut index: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (ns, pods) in &pods_in {
        for (i, p) in pods.iter().enumerate() {
            for (k, v) in &p.labels {
                index.entry((ns.as_str(), k.as_str(), v.as_str())).or_default().push(i);
            }
        }
    }
    let mut due: Option<Timestamp> = None;
    let mut writes = Vec::new();
    let empty: Vec<Arc<Pod>> = Vec::new();
    for obj in &pdb_objs {
        let Ok(pdb) = parse_pdb(obj) else { continue };
        let ns_pods = pods_in.get(&pdb.namespace).unwrap_or(&empty);
        let candidates: Vec<&Pod> = candidates(&pdb, ns_pods, &index);
        let disrupted_all = api::recently_disrupted(obj, now);
        // Keep only evictions still waiting for their pod to go.
        let disrupted: BTreeSet<String> = disrupted_all
            .into_iter()
            .filter(|name| ns_pods.iter().any(|p| &p.name == name && !p.is_terminating()))
            .collect();
        let inv = &inventories[&pdb.namespace];
        let computed = budget::compute_status_with(&pdb, candidates, |p| budget::controller_scale(inv, p), &disrupted);
        let s = computed.status;
        let mut disrupted_map = serde_json::Map::new();
        if let Some(m) = obj.pointer("/status/disruptedPods").and_then(Value::as_object) {
            for (k, v) in m {
                if disrupted.contains(k) {
                    disrupted_map.insert(k.clone(), v.clone());
                    if let Some(t) = v.as_str().and_then(clock::parse) {
                        due = earliest(due, Some(clock::plus(t, 120.0)));
                    }
                }
            }
        }
        let allowed = s.disruptions_allowed > 0;
        let (reason, message) = match (&computed.sync_error, allowed) {
            (Some(e), _) => ("SyncFailed", e.clone()),
            (None, true) => ("SufficientPods", String::new()),
            (None, false) => ("InsufficientPods", String::new()),
        };
        let old_condition = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionAllowed"))
            .cloned();
        let condition = match old_condition {
            Some(c) if c["reason"] == reason && c["message"] == message.as_str() => c,
            _ => json!({"type": "DisruptionAllowed", "status": if allowed {"True"} else {"False"}, "reason": reason,
                "message": message, "observedGeneration": pdb.generation, "lastTransitionTime": clock::format(now)}),
        };
        let status = json!({
            "observedGeneration": s.observed_generation, "disruptionsAllowed": s.disruptions_allowed,
            "currentHealthy": s.current_healthy, "desiredHealthy": s.desired_healthy, "expectedPods": s.expected_pods,
            "disruptedPods": disrupted_map, "conditions": [condition],
        });
        if obj.get("status") != Some(&status) {
            let mut next = (**obj).clone();
            next["status"] = status;
            writes.push(next);
        }
    }
    for w in writes {
        let _ = store.update(r::PDBS, w, Part::Status, false);
    }
    due
}

/// The pods of the namespace a budget may select, narrowed with the label index.
fn candidates<'a>(pdb: &Pdb, pods: &'a [Arc<Pod>], index: &HashMap<(&str, &str, &str), Vec<usize>>) -> Vec<&'a Pod> {
    let narrowest = pdb
        .selector
        .requirements
        .iter()
        .filter(|req| req.operator == Operator::In && req.values.len() == 1)
        .map(|req| {
            index
                .get(&(pdb.namespace.as_str(), req.key.as_str(), req.values[0].as_str()))
                .map_or(&[][..], Vec::as_slice)
        })
        .min_by_key(|v| v.len());
    match narrowest {
        Some(idx) => idx.iter().map(|&i| &*pods[i]).collect(),
        None => pods.iter().map(|p| &**p).collect(),
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn ordinals_parse_from_names() {
        assert_eq!(ordinal("db", "db-2"), Some(2));
        assert_eq!(ordinal("db", "db-x"), None);
        assert_eq!(ordinal("db", "dbx-1"), None);
    }

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

    #[test]
    fn deployment_fenceposts_round_surge_up_and_unavailable_down() {
        let d = |surge: Value, unavailable: Value| json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}});
        assert_eq!(deployment_fenceposts(&d(json!("25%"), json!("25%")), 2), (1, 0));
        assert_eq!(deployment_fenceposts(&d(json!("25%"), json!("25%")), 10), (3, 2));
        assert_eq!(deployment_fenceposts(&d(json!(0), json!(0)), 4), (0, 1));
        assert_eq!(deployment_fenceposts(&json!({"spec": {}}), 4), (1, 1));
        assert_eq!(deployment_fenceposts(&json!({"spec": {"strategy": {"type": "Recreate"}}}), 4), (0, 0));
    }

    #[test]
    fn rolling_steps_keep_within_surge_and_availability() {
        // 2 replicas, surge 1, unavailable 0: the new set grows to 1 while 2 old pods run.
        assert_eq!(rolling_new_replicas(2, 1, 2, 0), 1);
        assert_eq!(rolling_new_replicas(2, 1, 3, 1), 1);
        assert_eq!(rolling_new_replicas(2, 1, 2, 1), 2);
        // The new pod is not available yet: nothing old may go.
        assert_eq!(rolling_old_replicas(2, 0, (1, 0), &[(2, 2)]), [2]);
        // It is: one old pod goes.
        assert_eq!(rolling_old_replicas(2, 0, (1, 1), &[(2, 2)]), [1]);
        // Unavailable old pods go first, even below the availability floor, but no more than
        // the total may shrink: 4 + 1 pods, 3 must stay available, the new one is not yet.
        assert_eq!(rolling_old_replicas(4, 1, (1, 0), &[(4, 2)]), [3]);
        assert_eq!(rolling_old_replicas(4, 1, (2, 0), &[(4, 2)]), [3]);
        assert_eq!(rolling_old_replicas(4, 1, (2, 2), &[(3, 1)]), [1]);
        // Oldest sets shrink first.
        assert_eq!(rolling_old_replicas(4, 1, (2, 2), &[(1, 1), (2, 2)]), [0, 1]);
    }

    #[test]
    fn template_hash_ignores_field_order() {
        let a: Value =
            serde_json::from_str(r#"{"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1, "y": [1, 2]}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"spec": {"y": [1, 2], "x": 1}, "metadata": {"labels": {"a": "1"}}}"#).unwrap();
        let c: Value =
            serde_json::from_str(r#"{"spec": {"y": [2, 1], "x": 1}, "metadata": {"labels": {"a": "1"}}}"#).unwrap();
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_ne!(template_hash(&a), template_hash(&c));
    }

    #[test]
    fn scale_down_prefers_unscheduled_then_unready() {
        let unscheduled = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}, "status": {"phase": "Pending"}});
        let ready = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let unready = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n"},
            "status": {"phase": "Running"}});
        let mut v = [ready.clone(), unready.clone(), unscheduled.clone()];
        v.sort_by_key(deletion_rank);
        assert_eq!(v, [unscheduled, unready, ready]);
    }
}

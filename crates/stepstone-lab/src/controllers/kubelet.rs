//! The simulated kubelets: pods bound to a node with a running kubelet start after the start-up
//! delay and turn Ready after the readiness delay (crash-looping ones stay in back-off, those
//! whose volumes never mount in ContainerCreating), pods
//! being deleted go once their grace period ends (with finalizers they turn Failed and stay
//! until the finalizers are removed, as on an apiserver), kubelet restarts complete, and
//! running kubelets renew their node Leases in `kube-node-lease`.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Controller, Pass, Watch, bound_at, earliest, is_ready, phase};
use crate::api;
use crate::clock;
use crate::nodes;
use crate::resources as r;
use crate::state::Shared;
use crate::store::{Part, Store, meta, meta_str, name_of, namespace_of, uid_of};

/// Kubelet restarts that are due: the node reports the new version and Ready, or stays
/// NotReady when the new kubelet refuses to start. Runs first in every pass, so that the node
/// controllers see the outcome.
pub(super) struct KubeletRestarts;

impl Controller for KubeletRestarts {
    fn name(&self) -> &'static str {
        "kubelet-restarts"
    }

    fn watches(&self) -> Watch {
        Watch::EveryPass
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        nodes::finish_restarts(pass.shared, pass.store, pass.now)
    }
}

/// The kubelets' work on pods.
#[derive(Default)]
pub(super) struct Kubelets {
    stages: Stages,
}

impl Controller for Kubelets {
    fn name(&self) -> &'static str {
        "kubelet"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(super::WORKLOADS)
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        let before = pass.store.last_change(r::PODS);
        let due = kubelets(pass.shared, pass.store, pass.now, &mut self.stages);
        // Pods that just turned Running or Ready move rollouts on: the controllers see them in
        // the next pass right away, as upstream's informers would, not at the next deadline.
        if pass.store.last_change(r::PODS) > before { earliest(due, Some(pass.now)) } else { due }
    }
}

/// Node Leases, renewed every `lease_renew_seconds` (on the wall clock at most every two seconds,
/// however fast the lab runs) apart from the controllers' passes, so that an idle lab does nothing
/// else.
pub(super) struct NodeLeases {
    next: Timestamp,
}

impl NodeLeases {
    pub(super) fn new(now: Timestamp) -> Self {
        NodeLeases { next: now }
    }

    /// When the leases are renewed next.
    pub(super) fn next(&self) -> Timestamp {
        self.next
    }

    pub(super) fn renew_if_due(&mut self, shared: &Shared, store: &mut Store, now: Timestamp) {
        if now >= self.next {
            heartbeat(shared, store, now);
            let next = shared.after(now, shared.timing.lease_renew_seconds);
            let floor = if shared.clock.is_manual() { next } else { clock::plus(now, 2.0) };
            self.next = next.max(floor);
        }
    }
}

/// What a pod waits for on its kubelet, counted from when it entered that stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Bound to the node, waiting for the start-up delay.
    Bound,
    /// Running, waiting for the readiness delay.
    Starting,
    /// Deleted, waiting for its grace period.
    Terminating,
}

/// When each pod entered its stage, to the sub-second: the objects say it in whole seconds (as
/// the apiserver writes them), which at speed 60 would be a minute of lab time.
#[derive(Default)]
struct Stages {
    seen: HashMap<String, (Stage, Timestamp)>,
    live: HashSet<String>,
}

impl Stages {
    /// When `uid` entered `stage`: the first pass that saw it there (or the kubelet's own write),
    /// if that falls within the second of the object's `stamp`; else the stamp itself (a pod
    /// loaded with the fleet, or one written long before the lab noticed).
    fn since(&mut self, uid: &str, stage: Stage, stamp: Option<Timestamp>, now: Timestamp) -> Timestamp {
        self.live.insert(uid.to_string());
        let seen = match self.seen.get(uid) {
            Some((s, t)) if *s == stage => *t,
            _ => {
                self.seen.insert(uid.to_string(), (stage, now));
                now
            }
        };
        match stamp {
            Some(stamp) if stamp > seen || clock::plus(stamp, 1.0) <= seen => stamp,
            _ => seen,
        }
    }

    /// The kubelet moved `uid` into `stage` at `now`.
    fn entered(&mut self, uid: &str, stage: Stage, now: Timestamp) {
        self.live.insert(uid.to_string());
        self.seen.insert(uid.to_string(), (stage, now));
    }

    /// Forget the pods this pass did not see waiting.
    fn prune(&mut self) {
        let live = std::mem::take(&mut self.live);
        self.seen.retain(|uid, _| live.contains(uid));
    }
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

/// The simulated kubelets' work on pods. Returns the next deadline.
fn kubelets(shared: &Shared, store: &mut Store, now: Timestamp, stages: &mut Stages) -> Option<Timestamp> {
    let timing = &shared.timing;
    let down = nodes::kubelet_down(shared);
    let ready_nodes: HashSet<String> =
        store.iter(r::NODES, None, None).filter(|n| node_ready(n)).map(|n| name_of(&n).to_string()).collect();
    let all_nodes: HashSet<String> = store.iter(r::NODES, None, None).map(|n| name_of(&n).to_string()).collect();
    let faults = crate::state::lock(&shared.faults).clone();
    let mut due: Option<Timestamp> = None;
    let mut removals = Vec::new();
    let mut updates = Vec::new();
    for (stored, facts) in store.pods() {
        // The pods with nothing to do, told from their facts without reading them: unbound,
        // on a node that is down or not Ready, or past starting and Ready.
        let node = &*facts.node;
        if node.is_empty() {
            continue;
        }
        let waiting = matches!(&*facts.phase, "Pending") || (&*facts.phase == "Running" && !facts.ready);
        if !facts.deleting && (down.contains(node) || !ready_nodes.contains(node) || !waiting) {
            continue;
        }
        let p = &stored.value();
        if let Some(deletion) = meta_str(p, "deletionTimestamp").and_then(clock::parse) {
            // A stopped kubelet cannot finish terminating its pods; a vanished node's pods go.
            if down.contains(node) && all_nodes.contains(node) {
                continue;
            }
            // `deletionTimestamp` is when the request was made plus the grace period, on the
            // wall clock like every timestamp; the grace period itself lasts its lab seconds.
            let grace = meta(p).get("deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0).max(0);
            let requested = clock::plus(deletion, -(grace as f64));
            let since = stages.since(uid_of(p), Stage::Terminating, Some(requested), now);
            let deadline = shared.after(since, grace as f64);
            if deadline <= now || !all_nodes.contains(node) {
                if has_finalizers(p) {
                    // As the apiserver: a deleted pod stays until its finalizers are removed.
                    // The kubelet (1.27+) gives it its final phase once its containers stop.
                    if !matches!(phase(p), "Failed" | "Succeeded") {
                        updates.push(terminated(p, now));
                    }
                } else {
                    removals.push((namespace_of(p).to_string(), name_of(p).to_string()));
                }
            } else {
                due = earliest(due, Some(deadline));
            }
            continue;
        }
        if down.contains(node) || !ready_nodes.contains(node) {
            continue;
        }
        match phase(p) {
            "Pending" if faults.stuck_creating(namespace_of(p), name_of(p), node) => {
                // Its volumes never mount: it waits in ContainerCreating until the fault is gone.
                let shown = p.pointer("/status/containerStatuses/0/state/waiting/reason").and_then(Value::as_str)
                    == Some("ContainerCreating");
                if !shown {
                    let mut next = (**p).clone();
                    nodes::hold_in_container_creating(&mut next, now);
                    updates.push(next);
                }
            }
            "Pending" => {
                let since = stages.since(uid_of(p), Stage::Bound, bound_at(p), now);
                let at = shared.after(since, timing.pod_start_seconds);
                if at <= now {
                    stages.entered(uid_of(p), Stage::Starting, now);
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
                let since = stages.since(uid_of(p), Stage::Starting, started_at(p), now);
                let at = shared.after(since, timing.pod_ready_seconds);
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
    stages.prune();
    for (ns, name) in removals {
        store.remove(r::PODS, &ns, &name);
    }
    for u in updates {
        let _ = store.update(r::PODS, u, Part::All, false);
    }
    due
}

fn has_finalizers(p: &Value) -> bool {
    meta(p).get("finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

/// A deleted pod whose containers the kubelet has stopped: phase Failed, not ready.
fn terminated(p: &Value, now: Timestamp) -> Value {
    let mut next = p.clone();
    if !next.get("status").is_some_and(Value::is_object) {
        next["status"] = json!({});
    }
    next["status"]["phase"] = json!("Failed");
    if let Some(cs) = next.pointer_mut("/status/containerStatuses").and_then(Value::as_array_mut) {
        for c in cs {
            c["ready"] = json!(false);
            c["started"] = json!(false);
            c["state"] = json!({"terminated": {"exitCode": 143, "reason": "Error", "finishedAt": clock::format(now)}});
        }
    }
    nodes::set_pod_condition(&mut next, "ContainersReady", false, now);
    nodes::set_pod_condition(&mut next, "Ready", false, now);
    next
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
    let renew = clock::format_micro(now);
    let node_list: Vec<(String, String)> =
        store.iter(r::NODES, None, None).map(|n| (name_of(&n).to_string(), uid_of(&n).to_string())).collect();
    for (node, uid) in node_list {
        if down.contains(&node) {
            continue;
        }
        match store.get(r::LEASES, "kube-node-lease", &node) {
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

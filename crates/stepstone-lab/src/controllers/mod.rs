//! The control loop on the lab's clock and the controllers it runs, one file each behind the
//! [`Controller`] trait, in the order [`chain`] lists them: kubelet restarts, the node lifecycle
//! controller (a silent kubelet's node turns `Unknown` and gets the `unreachable` taints after
//! `--node-monitor-grace-period`), the taint eviction controller, garbage collection, the
//! Deployment, ReplicaSet, StatefulSet and DaemonSet controllers (template changes roll out
//! within their surge and unavailability budgets), the volume binder, the scheduler (the planner's
//! `CapacityModel`, not a second implementation), the simulated kubelets (pods Pending ->
//! Running -> Ready, graceful termination) and the disruption controller
//! (`stepstone_core::pdb`); node Leases are renewed on their own period.
//!
//! A pass runs after writes (woken by the API) or when a deadline falls due (durations are
//! compressed by the lab's speed, see [`crate::clock`]); each
//! controller runs only when a resource it watches changed since the previous pass began, or a
//! deadline fell due, so an idle lab of thousands of nodes costs nothing but lease renewals.

mod daemonset;
mod deployment;
mod disruption;
mod gc;
mod kubelet;
mod node_lifecycle;
mod replicaset;
mod scheduler;
mod statefulset;
mod taint_eviction;
mod volumes;

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::inventory::Pod;
use stepstone_core::snapshot::parse_pod;

use crate::api;
use crate::clock;
use crate::pod_facts::PodFacts;
use crate::resources::{self as r, RESOURCES, ResId};
use crate::state::Shared;
use crate::store::{Part, Store, Stored, meta, meta_str, name_of, namespace_of, uid_of};

/// Every controller in the order a pass runs them. The node controllers come before the
/// workload controllers, so that pods evicted in a pass are replaced in the same pass; the
/// scheduler and the kubelets come after the workload controllers, so that new pods are bound
/// and started at once; the disruption controller last, counting what the others did.
pub(crate) fn chain() -> Vec<Box<dyn Controller>> {
    vec![
        Box::new(kubelet::KubeletRestarts),
        Box::new(node_lifecycle::NodeLifecycle),
        Box::new(taint_eviction::TaintEviction),
        Box::new(gc::GarbageCollector),
        Box::new(deployment::DeploymentController),
        Box::new(replicaset::ReplicaSetController),
        Box::new(statefulset::StatefulSetController),
        Box::new(daemonset::DaemonSetController::default()),
        Box::new(volumes::VolumeBinder),
        Box::new(scheduler::Scheduler::default()),
        Box::new(kubelet::Kubelets::default()),
        Box::new(disruption::DisruptionController),
    ]
}

/// One controller of the lab: what it watches and one reconciliation.
pub(crate) trait Controller: Send {
    /// The component name upstream reports (`deployment-controller`, `default-scheduler`, ...).
    fn name(&self) -> &'static str;

    /// When it runs; every controller also runs when a deadline fell due.
    fn watches(&self) -> Watch;

    /// Whether it must run although nothing it watches changed (default: no).
    fn also_runs(&self, _pass: &Pass<'_>) -> bool {
        false
    }

    /// Move the cluster toward what its objects ask for. Returns the time at which it
    /// must run again although nothing changes by then (a start-up delay or a toleration ends).
    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp>;
}

/// What a controller reacts to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Watch {
    /// Every pass.
    EveryPass,
    /// A change to one of these resources since the previous pass began.
    Changes(&'static [ResId]),
}

/// What the workload controllers, the scheduler and the kubelets watch: any of them can make
/// work for the others.
const WORKLOADS: &[ResId] = &[
    r::PODS,
    r::NODES,
    r::DEPLOYMENTS,
    r::REPLICASETS,
    r::STATEFULSETS,
    r::DAEMONSETS,
    r::CONTROLLER_REVISIONS,
    r::PERSISTENT_VOLUMES,
    r::PERSISTENT_VOLUME_CLAIMS,
];

/// What one pass hands each controller.
pub(crate) struct Pass<'a> {
    pub shared: &'a Shared,
    pub store: &'a mut Store,
    /// The lab's time at this pass.
    pub now: Timestamp,
    /// Parsed pods, shared by the scheduler and the disruption controller.
    pub pods: &'a mut PodCache,
}

struct Loop {
    shared: Arc<Shared>,
    chain: Vec<Box<dyn Controller>>,
    /// `Store::last_change` of every resource when the previous pass began.
    seen: Vec<u64>,
    cache: PodCache,
    leases: kubelet::NodeLeases,
}

/// Run until `shutdown` fires.
pub async fn run(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let now = shared.now();
    let mut lp = Loop {
        shared: shared.clone(),
        chain: chain(),
        seen: vec![0; RESOURCES.len()],
        cache: PodCache::default(),
        leases: kubelet::NodeLeases::new(now),
    };
    let mut due: Option<Timestamp> = Some(now);
    loop {
        let deadline = earliest(due, Some(lp.leases.next())).expect("lease renewal always set");
        // A manual clock reaches a deadline only when advanced, which wakes the loop; the tick
        // of two seconds is only a safety net there.
        let wait = match shared.clock.real_until(deadline) {
            Some(wait) => wait,
            None if deadline <= shared.now() => Duration::ZERO,
            None => Duration::from_secs(2),
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = shared.wake.notified() => {
                // Let a burst of writes (a drain, a scale) land before reacting.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ = tokio::time::sleep(wait.min(Duration::from_secs(2))) => {}
        }
        if *shutdown.borrow() {
            return;
        }
        shared.passes.send_modify(|p| p.started += 1);
        due = lp.pass(due);
        let settled = due.is_none_or(|d| d > shared.now());
        shared.passes.send_modify(|p| {
            p.finished += 1;
            p.settled = settled;
        });
    }
}

impl Loop {
    /// One reconciliation pass; returns the next deadline.
    fn pass(&mut self, previous_due: Option<Timestamp>) -> Option<Timestamp> {
        let shared = self.shared.clone();
        let now = shared.now();
        let mut store = shared.store();
        let timer = previous_due.is_some_and(|d| d <= now) || self.seen.iter().all(|s| *s == 0);
        // A deadline not reached yet stays pending even if no controller below runs.
        let mut due = if timer { None } else { previous_due };
        let began: Vec<u64> = ResId::all().map(|res| store.last_change(res)).collect();
        let mut pass = Pass { shared: &shared, store: &mut store, now, pods: &mut self.cache };
        for controller in &mut self.chain {
            // Checked at the controller's turn, so it sees what the ones before it wrote.
            let runs = timer
                || match controller.watches() {
                    Watch::EveryPass => true,
                    Watch::Changes(resources) => changed(pass.store, &self.seen, resources),
                }
                || controller.also_runs(&pass);
            if runs {
                tracing::trace!(controller = controller.name(), "reconcile");
                due = earliest(due, controller.reconcile(&mut pass));
            }
        }
        self.leases.renew_if_due(&shared, &mut store, now);
        self.seen = began;
        due
    }
}

/// Parsed pods, reused across passes while the store holds the same version of each: only pods
/// written since the last refresh are read again.
#[derive(Default)]
pub(crate) struct PodCache {
    pods: HashMap<(String, String), (Arc<Stored>, Arc<Pod>)>,
}

impl PodCache {
    fn refresh(&mut self, store: &Store) {
        let mut seen = HashSet::with_capacity(self.pods.len());
        for (key, stored) in store.iter_stored(r::PODS, None, None) {
            let fresh = self.pods.get(key).is_some_and(|(s, _)| Arc::ptr_eq(s, stored));
            // A pod the planner cannot read keeps its last readable version.
            if !fresh && let Ok(p) = parse_pod(&stored.value()) {
                self.pods.insert(key.clone(), (stored.clone(), Arc::new(p)));
            }
            seen.insert(key.clone());
        }
        self.pods.retain(|k, _| seen.contains(k));
    }
}

fn changed(store: &Store, seen: &[u64], resources: &[ResId]) -> bool {
    resources.iter().any(|&res| store.last_change(res) > seen[res.index()])
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
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

fn bound_at(p: &Value) -> Option<Timestamp> {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled" && c["status"] == "True"))
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(clock::parse)
        .or_else(|| meta_str(p, "creationTimestamp").and_then(clock::parse))
}

fn owner_ref(kind: &str, obj: &Value) -> Value {
    json!([{"apiVersion": "apps/v1", "kind": kind, "name": name_of(obj), "uid": uid_of(obj),
        "controller": true, "blockOwnerDeletion": true}])
}

/// Pods by the uid of their controller owner, as stored: a controller reads their facts and
/// parses only those it acts on.
fn pods_by_owner(store: &Store) -> HashMap<Box<str>, Vec<Arc<Stored>>> {
    let mut out: HashMap<Box<str>, Vec<Arc<Stored>>> = HashMap::new();
    for (stored, facts) in store.pods() {
        if let Some(uid) = &facts.controller_uid {
            out.entry(uid.clone()).or_default().push(stored.clone());
        }
    }
    out
}

/// The facts of a stored pod (every stored pod has them).
fn facts(pod: &Stored) -> &PodFacts {
    pod.pod_facts().expect("a stored pod has its facts")
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

#[cfg(test)]
mod tests {

    use super::*;

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
}

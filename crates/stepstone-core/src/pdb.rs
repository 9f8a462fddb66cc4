//! PodDisruptionBudget arithmetic, as the upstream disruption controller computes a budget's
//! status (`pkg/controller/disruption/disruption.go`) and as the eviction subresource decides
//! on one eviction (`pkg/registry/core/pod/storage/eviction.go`), plus a [`BudgetTracker`] that
//! applies the same rules to a sequence of simulated or batched evictions.
//!
//! The rules, in brief:
//! - `expectedPods`: with an integer `minAvailable`, the number of matching pods; with
//!   `maxUnavailable` (integer or percentage) or a percentage `minAvailable`, the sum of the
//!   scales of the distinct controllers owning the matching pods (a ReplicaSet owned by a
//!   Deployment counts as the Deployment); pods without a controller are skipped; a controller
//!   that cannot be found (a DaemonSet, say) fails the sync and allows no disruption.
//! - `desiredHealthy`: `minAvailable` as given, or `expectedPods - maxUnavailable` (at least 0);
//!   percentages are rounded up in both cases.
//! - `currentHealthy`: matching pods that are Ready, not being deleted and not just evicted.
//! - `disruptionsAllowed`: `currentHealthy - desiredHealthy`, 0 when that is negative or when
//!   `expectedPods` is 0.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api_status::{self, Cause, Details};
use crate::fasthash::FastMap;
use crate::inventory::{IntOrPercent, Inventory, Pdb, PdbStatus, Pod, PodPhase, WorkloadKind};
use crate::object_key::ObjectKey;

/// The eviction handler refuses when this many evictions await the controller's confirmation.
pub const MAX_DISRUPTED_POD_SIZE: usize = 2000;

/// `intstr.GetScaledValueFromIntOrPercent`: an integer as is, a percentage of `total`
/// rounded up or down.
pub fn scaled_value(value: IntOrPercent, total: i64, round_up: bool) -> i64 {
    match value {
        IntOrPercent::Int(i) => i,
        IntOrPercent::Percent(p) => {
            let product = p * total;
            if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            }
        }
    }
}

/// `desiredHealthy` for a budget over `expected` pods. With neither field set the controller
/// leaves it at 0.
pub fn desired_healthy(
    min_available: Option<IntOrPercent>,
    max_unavailable: Option<IntOrPercent>,
    expected: i64,
) -> i64 {
    if let Some(max) = max_unavailable {
        return (expected - scaled_value(max, expected, true)).max(0);
    }
    match min_available {
        Some(min) => scaled_value(min, expected, true),
        None => 0,
    }
}

/// `disruptionsAllowed` from the three numbers, as `updatePdbStatus` forces it.
pub fn disruptions_allowed(current_healthy: i64, desired_healthy: i64, expected_pods: i64) -> i64 {
    let allowed = current_healthy - desired_healthy;
    if expected_pods <= 0 || allowed <= 0 { 0 } else { allowed }
}

/// The budget field that decides whether `expectedPods` comes from the controllers' scale.
fn needs_scale(pdb: &Pdb) -> bool {
    pdb.max_unavailable.is_some() || matches!(pdb.min_available, Some(IntOrPercent::Percent(_)))
}

/// What the disruption controller's finders report for one pod's controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerScale {
    /// The pod has no controller reference: skipped as unmanaged.
    Unmanaged,
    /// The scalable controller (Deployment above a ReplicaSet, StatefulSet, ReplicaSet,
    /// ReplicationController) and its `spec.replicas`.
    Found { uid: String, scale: i64 },
    /// No finder knows the controller (DaemonSet, missing object, UID mismatch).
    Missing,
}

/// The finders, run against an inventory.
pub fn controller_scale(inv: &Inventory, pod: &Pod) -> ControllerScale {
    let Some(owner) = &pod.owner else { return ControllerScale::Unmanaged };
    let uid_ok = |want: &str, have: &str| want.is_empty() || have.is_empty() || want == have;
    let key = |uid: &str, kind: WorkloadKind, name: &str| {
        if uid.is_empty() { format!("{}/{}/{}", kind.short(), pod.namespace, name) } else { uid.to_string() }
    };
    match WorkloadKind::from_kind(&owner.kind) {
        Some(WorkloadKind::ReplicaSet) => {
            let Some(rs) = inv.workload(WorkloadKind::ReplicaSet, &pod.namespace, &owner.name) else {
                return ControllerScale::Missing;
            };
            if !uid_ok(&owner.uid, &rs.uid) {
                return ControllerScale::Missing;
            }
            match &rs.owner {
                Some(up) if up.kind == "Deployment" => {
                    match inv.workload(WorkloadKind::Deployment, &pod.namespace, &up.name) {
                        Some(d) if uid_ok(&up.uid, &d.uid) => ControllerScale::Found {
                            uid: key(&d.uid, WorkloadKind::Deployment, &d.name),
                            scale: d.replicas,
                        },
                        // The ReplicaSet finder skips ReplicaSets controlled by a Deployment.
                        _ => ControllerScale::Missing,
                    }
                }
                _ => {
                    ControllerScale::Found { uid: key(&rs.uid, WorkloadKind::ReplicaSet, &rs.name), scale: rs.replicas }
                }
            }
        }
        Some(kind @ (WorkloadKind::StatefulSet | WorkloadKind::ReplicationController)) => {
            match inv.workload(kind, &pod.namespace, &owner.name) {
                Some(w) if uid_ok(&owner.uid, &w.uid) => {
                    ControllerScale::Found { uid: key(&w.uid, kind, &w.name), scale: w.replicas }
                }
                _ => ControllerScale::Missing,
            }
        }
        _ => ControllerScale::Missing,
    }
}

/// A budget's computed status and what the controller noticed on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PdbComputation {
    pub status: PdbStatus,
    /// Matching pods without a controller (the controller emits an `UnmanagedPods` event).
    pub unmanaged_pods: Vec<String>,
    /// Set when a pod's controller could not be found: the controller's fail-safe then allows
    /// no disruption (condition `SyncFailed`).
    pub sync_error: Option<String>,
}

/// The healthy count: Ready, not being deleted, not evicted moments ago.
pub fn is_healthy(pod: &Pod, disrupted: &BTreeSet<String>) -> bool {
    pod.ready && !pod.is_terminating() && !disrupted.contains(&pod.name)
}

/// Compute a budget's status from its matching pods, with `scale` standing for the
/// controller finders and `disrupted` for the names in `status.disruptedPods` that are still
/// within the deletion timeout. The lab calls this on its own store; planners call
/// [`compute_status`].
pub fn compute_status_with<'a>(
    pdb: &Pdb,
    pods: impl IntoIterator<Item = &'a Pod>,
    scale: impl Fn(&Pod) -> ControllerScale,
    disrupted: &BTreeSet<String>,
) -> PdbComputation {
    let pods: Vec<&Pod> = pods.into_iter().filter(|p| pdb.selects(p)).collect();
    let current = pods.iter().filter(|p| is_healthy(p, disrupted)).count() as i64;
    let mut unmanaged = Vec::new();
    let mut sync_error = None;
    let expected = if needs_scale(pdb) {
        let mut scales: BTreeMap<String, i64> = BTreeMap::new();
        for p in &pods {
            match scale(p) {
                ControllerScale::Unmanaged => unmanaged.push(p.name.clone()),
                ControllerScale::Found { uid, scale } => {
                    scales.insert(uid, scale);
                }
                ControllerScale::Missing => {
                    sync_error = Some(format!("found no controllers for pod \"{}\"", p.name));
                    break;
                }
            }
        }
        scales.values().sum()
    } else if pdb.min_available.is_some() {
        pods.len() as i64
    } else {
        0
    };
    unmanaged.sort();
    if let Some(e) = sync_error {
        return PdbComputation {
            status: PdbStatus {
                current_healthy: current,
                desired_healthy: 0,
                expected_pods: 0,
                disruptions_allowed: 0,
                observed_generation: pdb.generation,
            },
            unmanaged_pods: unmanaged,
            sync_error: Some(e),
        };
    }
    let desired = desired_healthy(pdb.min_available, pdb.max_unavailable, expected);
    PdbComputation {
        status: PdbStatus {
            current_healthy: current,
            desired_healthy: desired,
            expected_pods: expected,
            disruptions_allowed: disruptions_allowed(current, desired, expected),
            observed_generation: pdb.generation,
        },
        unmanaged_pods: unmanaged,
        sync_error: None,
    }
}

/// The status the disruption controller would write for `pdb` given the inventory's pods and
/// workloads (nothing recently evicted).
pub fn compute_status(pdb: &Pdb, inv: &Inventory) -> PdbComputation {
    let pods = inv.pods.iter().filter(|p| p.namespace == pdb.namespace);
    compute_status_with(pdb, pods, |p| controller_scale(inv, p), &BTreeSet::new())
}

/// Why an eviction needed no budget, or which budget it consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "effect")]
pub enum EvictionEffect {
    /// Pending, Succeeded, Failed or already terminating: deleted without looking at budgets.
    IgnoresBudgets,
    /// No budget selects the pod.
    NoBudget,
    /// A Running pod that is not Ready, let through by the budget's unhealthy-pod policy
    /// without consuming a disruption.
    UnhealthyAllowed { pdb: ObjectKey },
    /// One disruption of this budget is consumed (`disruptionsAllowed` goes down by one and the
    /// pod enters `status.disruptedPods`).
    ConsumesBudget { pdb: ObjectKey },
}

/// A refused eviction, carrying what the API server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvictionRefusal {
    /// HTTP status: 429, 403 or 500.
    pub code: u16,
    /// `Status.reason` (`TooManyRequests`, `Forbidden`; empty for the several-budgets answer,
    /// which upstream returns without a reason).
    pub reason: String,
    pub message: String,
    /// The `DisruptionBudget` cause message, when there is one.
    pub cause: Option<String>,
    pub retry_after_seconds: Option<u32>,
    /// The budget(s) involved, `namespace/name`.
    pub pdbs: Vec<ObjectKey>,
}

pub const VIOLATES_BUDGET: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
pub const SEVERAL_BUDGETS: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

impl EvictionRefusal {
    fn budget_exhausted(pdb: &Pdb, status: &PdbStatus) -> Self {
        EvictionRefusal {
            code: 429,
            reason: "TooManyRequests".into(),
            message: VIOLATES_BUDGET.into(),
            cause: Some(format!(
                "The disruption budget {} needs {} healthy pods and has {} currently",
                pdb.name, status.desired_healthy, status.current_healthy
            )),
            retry_after_seconds: Some(0),
            pdbs: vec![pdb.key()],
        }
    }

    fn still_processing(pdb: &Pdb) -> Self {
        EvictionRefusal {
            code: 429,
            reason: "TooManyRequests".into(),
            message: VIOLATES_BUDGET.into(),
            cause: Some(format!("The disruption budget {} is still being processed by the server.", pdb.name)),
            retry_after_seconds: Some(10),
            pdbs: vec![pdb.key()],
        }
    }

    fn forbidden(pdb: &Pdb, why: &str) -> Self {
        EvictionRefusal {
            code: 403,
            reason: "Forbidden".into(),
            message: format!("poddisruptionbudget.policy \"{}\" is forbidden: {why}", pdb.name),
            cause: None,
            retry_after_seconds: None,
            pdbs: vec![pdb.key()],
        }
    }

    /// The 403 for a budget whose `status.disruptedPods` holds more than
    /// [`MAX_DISRUPTED_POD_SIZE`] entries (the caller owns that map).
    pub fn disrupted_map_too_big(pdb: &Pdb) -> Self {
        Self::forbidden(pdb, "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    }

    /// `Status.details` as the API server fills them for this refusal: the budget's cause, the
    /// retry hint, and for a 403 the budget itself.
    pub fn details(&self) -> Details {
        let forbidden_by = if self.code == 403 { self.pdbs.first().map(|k| k.name.as_str()) } else { None };
        Details {
            name: forbidden_by.map(str::to_string),
            group: forbidden_by.map(|_| "policy".to_string()),
            kind: forbidden_by.map(|_| "poddisruptionbudget".to_string()),
            causes: self
                .cause
                .iter()
                .map(|c| Cause { reason: "DisruptionBudget".into(), message: c.clone(), field: None })
                .collect(),
            retry_after_seconds: self.retry_after_seconds,
        }
    }

    /// The `metav1.Status` body the API server sends.
    pub fn to_status(&self) -> Value {
        api_status::failure(self.code, &self.reason, &self.message, &self.details())
    }
}

impl std::fmt::Display for EvictionRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(c) = &self.cause {
            write!(f, ": {c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EvictionRefusal {}

/// The eviction subresource's decision for `pod`, given every budget in its namespace that
/// selects it with that budget's current status. On `ConsumesBudget` the caller decrements
/// `disruptionsAllowed` and records the pod in the budget's disrupted pods.
pub fn check_eviction(pod: &Pod, covering: &[(&Pdb, &PdbStatus)]) -> Result<EvictionEffect, EvictionRefusal> {
    if matches!(pod.phase, PodPhase::Succeeded | PodPhase::Failed | PodPhase::Pending) || pod.is_terminating() {
        return Ok(EvictionEffect::IgnoresBudgets);
    }
    let (pdb, status) = match covering {
        [] => return Ok(EvictionEffect::NoBudget),
        [one] => *one,
        several => {
            return Err(EvictionRefusal {
                code: 500,
                reason: String::new(),
                message: SEVERAL_BUDGETS.into(),
                cause: None,
                retry_after_seconds: None,
                pdbs: several.iter().map(|(p, _)| p.key()).collect(),
            });
        }
    };
    if !pod.ready {
        if pdb.always_allow_unhealthy() {
            return Ok(EvictionEffect::UnhealthyAllowed { pdb: pdb.key() });
        }
        if status.current_healthy >= status.desired_healthy && status.desired_healthy > 0 {
            return Ok(EvictionEffect::UnhealthyAllowed { pdb: pdb.key() });
        }
    }
    if status.observed_generation < pdb.generation {
        return Err(EvictionRefusal::still_processing(pdb));
    }
    if status.disruptions_allowed < 0 {
        return Err(EvictionRefusal::forbidden(pdb, "pdb disruptions allowed is negative"));
    }
    if status.disruptions_allowed == 0 {
        return Err(EvictionRefusal::budget_exhausted(pdb, status));
    }
    Ok(EvictionEffect::ConsumesBudget { pdb: pdb.key() })
}

/// Which budgets select a pod, answered from the pod's labels instead of a pass over every
/// budget (a large fleet has thousands).
#[derive(Debug, Clone, Default)]
pub struct PdbIndex {
    /// namespace → label key → label value → budgets whose selector requires exactly that label.
    keyed: FastMap<String, FastMap<String, FastMap<String, Vec<usize>>>>,
    /// namespace → budgets without such a requirement (checked against every pod there).
    unkeyed: FastMap<String, Vec<usize>>,
}

impl PdbIndex {
    pub fn new(pdbs: &[Pdb]) -> Self {
        let mut index = PdbIndex::default();
        for (i, pdb) in pdbs.iter().enumerate() {
            let key = pdb
                .selector
                .requirements
                .iter()
                .find(|r| r.operator == crate::selector::Operator::In && r.values.len() == 1);
            match key {
                Some(r) => index
                    .keyed
                    .entry(pdb.namespace.clone())
                    .or_default()
                    .entry(r.key.clone())
                    .or_default()
                    .entry(r.values[0].clone())
                    .or_default()
                    .push(i),
                None => index.unkeyed.entry(pdb.namespace.clone()).or_default().push(i),
            }
        }
        index
    }

    /// Indices into `pdbs` (the slice the index was built from) of the budgets selecting
    /// `pod`, in slice order.
    pub fn covering(&self, pdbs: &[Pdb], pod: &Pod) -> Vec<usize> {
        let mut out: Vec<usize> = self.unkeyed.get(pod.namespace.as_str()).cloned().unwrap_or_default();
        if let Some(by_key) = self.keyed.get(pod.namespace.as_str()) {
            for (k, v) in &pod.labels {
                if let Some(found) = by_key.get(k.as_str()).and_then(|by_value| by_value.get(v.as_str())) {
                    out.extend(found);
                }
            }
        }
        out.retain(|i| pdbs[*i].selects(pod));
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Why the tracker refused an eviction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum BlockReason {
    /// No disruption left: the budget needs `needs` healthy pods and has `has`.
    Budget,
    /// The pod is selected by several budgets (`pdbs` lists them): the API answers 500.
    SeveralBudgets { pdbs: Vec<ObjectKey> },
    /// The controller could not compute the budget (a pod's controller is not scalable), so it
    /// allows nothing.
    SyncFailed { error: String },
}

/// A refused eviction in a simulation or batched drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocked {
    /// The (first) budget involved.
    pub pdb: ObjectKey,
    pub needs: i64,
    pub has: i64,
    pub reason: BlockReason,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            BlockReason::Budget => {
                write!(
                    f,
                    "disruption budget {} needs {} healthy pods and has {} currently",
                    self.pdb, self.needs, self.has
                )
            }
            BlockReason::SeveralBudgets { pdbs } => {
                write!(
                    f,
                    "the pod is selected by several disruption budgets ({}); the eviction API refuses it",
                    crate::object_key::join(pdbs, ", ")
                )
            }
            BlockReason::SyncFailed { error } => {
                write!(f, "disruption budget {} allows no disruption: {error}", self.pdb)
            }
        }
    }
}

/// One budget as the tracker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetView {
    pub namespace: String,
    pub name: String,
    pub desired_healthy: i64,
    pub current_healthy: i64,
    pub expected_pods: i64,
    pub always_allow_unhealthy: bool,
    pub sync_error: Option<String>,
}

impl BudgetView {
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(&self.namespace, &self.name)
    }

    /// The numbers as a budget status (what [`crate::drain::budget_blocker`] reads).
    pub fn status(&self) -> PdbStatus {
        PdbStatus {
            current_healthy: self.current_healthy,
            desired_healthy: self.desired_healthy,
            expected_pods: self.expected_pods,
            disruptions_allowed: self.disruptions_allowed(),
            observed_generation: 0,
        }
    }

    pub fn disruptions_allowed(&self) -> i64 {
        if self.sync_error.is_some() {
            return 0;
        }
        disruptions_allowed(self.current_healthy, self.desired_healthy, self.expected_pods)
    }
}

/// What a successful [`BudgetTracker::try_evict`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "effect")]
pub enum Evicted {
    /// No budget involved (none selects the pod, or the pod is not Running, or terminating).
    Free,
    /// An unready pod let through without consuming a disruption.
    Unhealthy { pdb: ObjectKey },
    /// One healthy pod of this budget is gone until [`BudgetTracker::replacement_ready`].
    Consumed { pdb: ObjectKey },
}

/// One shared view of every budget for a plan's simulation or a batch of drains: each
/// eviction consumes a disruption as the API server would, each replacement that turns Ready
/// gives one back, so several nodes drained at once can never take a budget below its minimum.
#[derive(Debug, Clone, Default)]
pub struct BudgetTracker {
    /// One view per budget, in the inventory's order (so `index` answers in view indices).
    budgets: Vec<BudgetView>,
    pdbs: Vec<Pdb>,
    index: PdbIndex,
    by_key: FastMap<ObjectKey, usize>,
}

impl BudgetTracker {
    /// Compute every budget's status from the inventory (not the possibly stale status in a
    /// snapshot). Pods are indexed by label so that thousands of budgets over a hundred
    /// thousand pods stay cheap.
    pub fn new(inv: &Inventory) -> Self {
        // (namespace, label key, label value) → pod indices, to find candidates for a selector.
        let mut index: FastMap<(&str, &str, &str), Vec<usize>> = FastMap::default();
        let mut by_namespace: FastMap<&str, Vec<usize>> = FastMap::default();
        for (i, p) in inv.pods.iter().enumerate() {
            by_namespace.entry(p.namespace.as_str()).or_default().push(i);
            for (k, v) in &p.labels {
                index.entry((p.namespace.as_str(), k.as_str(), v.as_str())).or_default().push(i);
            }
        }
        let mut tracker = BudgetTracker::default();
        let none: Vec<usize> = Vec::new();
        for pdb in &inv.pdbs {
            // The narrowest single-value requirement picks the candidates; the full selector decides.
            let candidates = pdb
                .selector
                .requirements
                .iter()
                .filter(|r| r.operator == crate::selector::Operator::In && r.values.len() == 1)
                .map(|r| index.get(&(pdb.namespace.as_str(), r.key.as_str(), r.values[0].as_str())).unwrap_or(&none))
                .min_by_key(|v| v.len())
                .unwrap_or_else(|| by_namespace.get(pdb.namespace.as_str()).unwrap_or(&none));
            let pods: Vec<&Pod> = candidates.iter().map(|i| &inv.pods[*i]).filter(|p| pdb.selects(p)).collect();
            let computed =
                compute_status_with(pdb, pods.iter().copied(), |p| controller_scale(inv, p), &BTreeSet::new());
            tracker.by_key.insert(pdb.key(), tracker.budgets.len());
            tracker.budgets.push(BudgetView {
                namespace: pdb.namespace.clone(),
                name: pdb.name.clone(),
                desired_healthy: computed.status.desired_healthy,
                current_healthy: computed.status.current_healthy,
                expected_pods: computed.status.expected_pods,
                always_allow_unhealthy: pdb.always_allow_unhealthy(),
                sync_error: computed.sync_error,
            });
        }
        tracker.pdbs = inv.pdbs.clone();
        tracker.index = PdbIndex::new(&tracker.pdbs);
        tracker
    }

    pub fn budgets(&self) -> &[BudgetView] {
        &self.budgets
    }

    pub fn budget(&self, key: &ObjectKey) -> Option<&BudgetView> {
        self.by_key.get(key).map(|i| &self.budgets[*i])
    }

    /// The budgets selecting `pod` by its namespace and labels (so a replacement pod, with the
    /// same labels and another name, finds the same budgets).
    pub fn covering(&self, pod: &Pod) -> Vec<&BudgetView> {
        self.indices(pod).into_iter().map(|i| &self.budgets[i]).collect()
    }

    fn indices(&self, pod: &Pod) -> Vec<usize> {
        self.index.covering(&self.pdbs, pod)
    }

    /// The view index of the one budget whose disruptions `pod`'s eviction would consume: none
    /// when no budget selects it, it is not a healthy running pod, or several budgets do (the
    /// API server refuses those outright).
    pub fn consuming_budget(&self, pod: &Pod) -> Option<usize> {
        Self::consuming_of(pod, &self.indices(pod))
    }

    /// [`Self::consuming_budget`] for a pod whose budgets (`covering`, from
    /// [`Self::covering_indices`]) are known.
    pub fn consuming_of(pod: &Pod, covering: &[usize]) -> Option<usize> {
        if !pod.ready
            || matches!(pod.phase, PodPhase::Succeeded | PodPhase::Failed | PodPhase::Pending)
            || pod.is_terminating()
        {
            return None;
        }
        match covering {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Disruptions the budget at view index `i` allows now.
    pub fn allowed_at(&self, i: usize) -> i64 {
        self.budgets[i].disruptions_allowed()
    }

    /// The view indices of the budgets selecting `pod`, for callers that evict the same pod
    /// again and again ([`Self::evict_covered`]): the label lookup is done once.
    pub fn covering_indices(&self, pod: &Pod) -> Vec<usize> {
        self.indices(pod)
    }

    /// Evict `pod` if the budgets allow it now, consuming a disruption when the pod is healthy.
    pub fn try_evict(&mut self, pod: &Pod) -> Result<Evicted, Blocked> {
        let covering = self.indices(pod);
        match self.evict_covered(pod, &covering) {
            EvictionAt::Free => Ok(Evicted::Free),
            EvictionAt::Unhealthy(b) => Ok(Evicted::Unhealthy { pdb: self.budgets[b].key() }),
            EvictionAt::Consumed(b) => Ok(Evicted::Consumed { pdb: self.budgets[b].key() }),
            EvictionAt::Refused(_) => Err(self.refusal(&covering)),
        }
    }

    /// [`Self::try_evict`] for a pod whose budgets (`covering`, from [`Self::covering_indices`])
    /// are known, answering with view indices: no name is built, whatever the answer.
    pub fn evict_covered(&mut self, pod: &Pod, covering: &[usize]) -> EvictionAt {
        self.evict_known(Self::leaves_budgets_alone(pod), pod.ready, covering)
    }

    /// An eviction of `pod` takes nothing from any budget: it is finished, pending or
    /// terminating.
    pub fn leaves_budgets_alone(pod: &Pod) -> bool {
        matches!(pod.phase, PodPhase::Succeeded | PodPhase::Failed | PodPhase::Pending) || pod.is_terminating()
    }

    /// [`Self::evict_covered`] for a pod reduced to what the answer depends on: whether it
    /// leaves budgets alone ([`Self::leaves_budgets_alone`]), whether it is Ready, and its
    /// budgets. For simulations that evict the same pods round after round.
    pub fn evict_known(&mut self, leaves_budgets_alone: bool, ready: bool, covering: &[usize]) -> EvictionAt {
        if leaves_budgets_alone {
            return EvictionAt::Free;
        }
        let b = match covering {
            [] => return EvictionAt::Free,
            [one] => *one,
            several => return EvictionAt::Refused(several[0]),
        };
        let budget = &mut self.budgets[b];
        if budget.sync_error.is_some() {
            return EvictionAt::Refused(b);
        }
        if !ready
            && (budget.always_allow_unhealthy
                || (budget.current_healthy >= budget.desired_healthy && budget.desired_healthy > 0))
        {
            return EvictionAt::Unhealthy(b);
        }
        if budget.disruptions_allowed() == 0 {
            return EvictionAt::Refused(b);
        }
        if ready {
            budget.current_healthy -= 1;
        }
        EvictionAt::Consumed(b)
    }

    /// Why [`Self::evict_covered`] refused a pod covered by `covering` (checked in its order).
    pub fn refusal(&self, covering: &[usize]) -> Blocked {
        let first = &self.budgets[covering[0]];
        let reason = if covering.len() > 1 {
            BlockReason::SeveralBudgets { pdbs: covering.iter().map(|i| self.budgets[*i].key()).collect() }
        } else if let Some(error) = &first.sync_error {
            BlockReason::SyncFailed { error: error.clone() }
        } else {
            BlockReason::Budget
        };
        Blocked { pdb: first.key(), needs: first.desired_healthy, has: first.current_healthy, reason }
    }

    /// The replacement of an evicted `pod` (same labels, hence same budgets) became Ready.
    pub fn replacement_ready(&mut self, pod: &Pod) {
        let covering = self.indices(pod);
        self.replacement_ready_covered(&covering);
    }

    /// [`Self::replacement_ready`] for a pod covered by `covering`.
    pub fn replacement_ready_covered(&mut self, covering: &[usize]) {
        for &i in covering {
            self.budgets[i].current_healthy += 1;
        }
    }
}

/// What [`BudgetTracker::evict_covered`] did, by view index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionAt {
    /// No budget involved (none selects the pod, or the pod is not Running, or terminating).
    Free,
    /// An unready pod let through without consuming a disruption of this budget.
    Unhealthy(usize),
    /// One healthy pod of this budget is gone until its replacement is Ready.
    Consumed(usize),
    /// Refused; the (first) budget involved. [`BudgetTracker::refusal`] says why.
    Refused(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{OwnerRef, Workload};
    use crate::selector::Selector;

    fn pod(name: &str, ready: bool, owner: Option<(&str, &str)>) -> Pod {
        Pod {
            node_name: Some("n1".into()),
            ready,
            labels: [("app".to_string(), "web".to_string())].into(),
            owner: owner.map(|(kind, name)| OwnerRef { kind: kind.into(), name: name.into(), uid: String::new() }),
            ..Pod::running("prod", name)
        }
    }

    fn pdb(min: Option<IntOrPercent>, max: Option<IntOrPercent>) -> Pdb {
        Pdb {
            namespace: "prod".into(),
            name: "web".into(),
            selector: Selector::parse("app=web").unwrap(),
            min_available: min,
            max_unavailable: max,
            unhealthy_pod_eviction_policy: None,
            generation: 1,
            status: None,
        }
    }

    fn workload(kind: WorkloadKind, name: &str, replicas: i64, owner: Option<(&str, &str)>) -> Workload {
        Workload {
            owner: owner.map(|(k, n)| OwnerRef { kind: k.into(), name: n.into(), uid: String::new() }),
            ..Workload::ready(kind, "prod", name, replicas, Selector::parse("app=web").unwrap())
        }
    }

    /// `replicas` declared on a Deployment, `pods` (ready flags) owned through its ReplicaSet.
    fn deployment(replicas: i64, ready: &[bool]) -> Inventory {
        Inventory {
            pods: ready
                .iter()
                .enumerate()
                .map(|(i, r)| pod(&format!("web-{i}"), *r, Some(("ReplicaSet", "web-abc"))))
                .collect(),
            workloads: vec![
                workload(WorkloadKind::Deployment, "web", replicas, None),
                workload(WorkloadKind::ReplicaSet, "web-abc", replicas, Some(("Deployment", "web"))),
            ],
            ..Default::default()
        }
    }

    fn int(i: i64) -> Option<IntOrPercent> {
        Some(IntOrPercent::Int(i))
    }

    fn pct(p: i64) -> Option<IntOrPercent> {
        Some(IntOrPercent::Percent(p))
    }

    #[test]
    fn scaled_values_round_like_intstr() {
        let cases = [
            (IntOrPercent::Percent(50), 3, true, 2),
            (IntOrPercent::Percent(50), 3, false, 1),
            (IntOrPercent::Percent(33), 10, true, 4),
            (IntOrPercent::Percent(25), 4, true, 1),
            (IntOrPercent::Percent(100), 7, true, 7),
            (IntOrPercent::Percent(0), 7, true, 0),
            (IntOrPercent::Percent(1), 1, true, 1),
            (IntOrPercent::Int(5), 3, true, 5),
        ];
        for (value, total, up, want) in cases {
            assert_eq!(scaled_value(value, total, up), want, "{value} of {total} round_up={up}");
        }
    }

    #[test]
    fn status_table() {
        // (minAvailable, maxUnavailable, declared replicas, ready flags) → (expected, desired, current, allowed)
        type Case = (Option<IntOrPercent>, Option<IntOrPercent>, i64, Vec<bool>, (i64, i64, i64, i64));
        let cases: Vec<Case> = vec![
            // minAvailable int: expected = matching pods, not the scale.
            (int(2), None, 5, vec![true; 3], (3, 2, 3, 1)),
            (int(2), None, 2, vec![true; 2], (2, 2, 2, 0)),
            (int(3), None, 3, vec![true, true, false], (3, 3, 2, 0)),
            // minAvailable %: expected = scale; 50% of 3 rounds up to 2.
            (pct(50), None, 3, vec![true; 3], (3, 2, 3, 1)),
            (pct(50), None, 4, vec![true; 3], (4, 2, 3, 1)),
            // maxUnavailable %: 33% of 10 → 4 unavailable (rounded up) → desired 6.
            (None, pct(33), 10, vec![true; 10], (10, 6, 10, 4)),
            (None, pct(25), 4, vec![true; 4], (4, 3, 4, 1)),
            (None, int(1), 3, vec![true, false, true], (3, 2, 2, 0)),
            (None, int(5), 3, vec![true; 3], (3, 0, 3, 3)),
            // maxUnavailable 0 blocks everything.
            (None, int(0), 3, vec![true; 3], (3, 3, 3, 0)),
            // No pods at all: expected 0 forces 0 allowed.
            (int(0), None, 0, vec![], (0, 0, 0, 0)),
            (None, int(1), 0, vec![], (0, 0, 0, 0)),
            // Scaled to zero but pods remain (terminating tail): expected 0 → nothing allowed.
            (None, int(1), 0, vec![true], (0, 0, 1, 0)),
        ];
        for (min, max, replicas, ready, want) in cases {
            let inv = deployment(replicas, &ready);
            let s = compute_status(&pdb(min, max), &inv).status;
            assert_eq!(
                (s.expected_pods, s.desired_healthy, s.current_healthy, s.disruptions_allowed),
                want,
                "min={min:?} max={max:?} replicas={replicas} ready={ready:?}"
            );
        }
    }

    #[test]
    fn terminating_and_disrupted_pods_are_not_healthy() {
        let mut inv = deployment(3, &[true, true, true]);
        inv.pods[0].deletion_timestamp = Some("2026-11-20T08:00:00Z".parse().unwrap());
        let p = pdb(None, int(1));
        assert_eq!(compute_status(&p, &inv).status.current_healthy, 2);
        let disrupted: BTreeSet<String> = ["web-1".to_string()].into();
        let s = compute_status_with(&p, &inv.pods, |x| controller_scale(&inv, x), &disrupted).status;
        assert_eq!((s.current_healthy, s.disruptions_allowed), (1, 0));
    }

    #[test]
    fn unmanaged_pods_are_skipped_from_the_scale_and_missing_controllers_fail_safe() {
        let mut inv = deployment(2, &[true, true]);
        inv.pods.push(pod("bare", true, None));
        let c = compute_status(&pdb(None, int(1)), &inv);
        assert_eq!(c.unmanaged_pods, vec!["bare".to_string()]);
        assert_eq!((c.status.expected_pods, c.status.current_healthy, c.status.disruptions_allowed), (2, 3, 2));
        // With an integer minAvailable the bare pod is simply counted.
        assert_eq!(compute_status(&pdb(int(2), None), &inv).status.expected_pods, 3);

        let mut ds = deployment(2, &[true, true]);
        ds.pods[0].owner = Some(OwnerRef { kind: "DaemonSet".into(), name: "agent".into(), uid: String::new() });
        let c = compute_status(&pdb(pct(50), None), &ds);
        assert_eq!(c.sync_error.as_deref(), Some("found no controllers for pod \"web-0\""));
        assert_eq!(c.status.disruptions_allowed, 0);
    }

    #[test]
    fn statefulsets_and_bare_replicasets_give_their_own_scale() {
        let mut inv = deployment(0, &[true, true, true]);
        inv.workloads = vec![workload(WorkloadKind::StatefulSet, "kafka", 3, None)];
        for p in &mut inv.pods {
            p.owner = Some(OwnerRef { kind: "StatefulSet".into(), name: "kafka".into(), uid: String::new() });
        }
        assert_eq!(compute_status(&pdb(None, int(1)), &inv).status.expected_pods, 3);
        inv.workloads = vec![workload(WorkloadKind::ReplicaSet, "rs", 5, None)];
        for p in &mut inv.pods {
            p.owner = Some(OwnerRef { kind: "ReplicaSet".into(), name: "rs".into(), uid: String::new() });
        }
        assert_eq!(compute_status(&pdb(None, int(1)), &inv).status.expected_pods, 5);
    }

    fn status(current: i64, desired: i64, allowed: i64) -> PdbStatus {
        PdbStatus {
            current_healthy: current,
            desired_healthy: desired,
            expected_pods: current.max(desired),
            disruptions_allowed: allowed,
            observed_generation: 1,
        }
    }

    #[test]
    fn eviction_table() {
        let mut always = pdb(None, int(1));
        always.unhealthy_pod_eviction_policy = Some("AlwaysAllow".into());
        let if_healthy = pdb(int(2), None);
        let mut stale = pdb(int(2), None);
        stale.generation = 2;
        let ready = pod("a", true, None);
        let unready = pod("b", false, None);
        let mut pending = pod("c", false, None);
        pending.phase = PodPhase::Pending;
        let mut done = pod("d", false, None);
        done.phase = PodPhase::Succeeded;
        let mut going = pod("e", true, None);
        going.deletion_timestamp = Some("2026-11-20T08:00:00Z".parse().unwrap());

        type Want = Result<&'static str, (u16, &'static str)>;
        type Case<'a> = (&'a Pod, Vec<(&'a Pdb, PdbStatus)>, Want);
        let cases: Vec<Case> = vec![
            (&ready, vec![], Ok("no-budget")),
            (&pending, vec![(&if_healthy, status(0, 2, 0))], Ok("ignores-budgets")),
            (&done, vec![(&if_healthy, status(0, 2, 0))], Ok("ignores-budgets")),
            (&going, vec![(&if_healthy, status(0, 2, 0))], Ok("ignores-budgets")),
            (&ready, vec![(&if_healthy, status(3, 2, 1))], Ok("consumes-budget")),
            (&ready, vec![(&if_healthy, status(2, 2, 0))], Err((429, "needs 2 healthy pods and has 2 currently"))),
            // Unready pod, IfHealthyBudget: free while the budget is met and desired > 0.
            (&unready, vec![(&if_healthy, status(2, 2, 0))], Ok("unhealthy-allowed")),
            (&unready, vec![(&if_healthy, status(1, 2, 0))], Err((429, "needs 2 healthy pods and has 1 currently"))),
            (&unready, vec![(&if_healthy, status(0, 0, 0))], Err((429, "needs 0 healthy pods and has 0 currently"))),
            // AlwaysAllow lets an unready pod go even when the budget is exhausted.
            (&unready, vec![(&always, status(1, 2, 0))], Ok("unhealthy-allowed")),
            (&ready, vec![(&always, status(1, 2, 0))], Err((429, "needs 2 healthy pods"))),
            (&ready, vec![(&stale, status(3, 2, 1))], Err((429, "is still being processed by the server."))),
            (&ready, vec![(&if_healthy, status(3, 2, -1))], Err((403, "pdb disruptions allowed is negative"))),
            (
                &ready,
                vec![(&if_healthy, status(3, 2, 1)), (&always, status(3, 2, 1))],
                Err((500, "more than one PodDisruptionBudget")),
            ),
        ];
        for (p, covering, want) in cases {
            let refs: Vec<(&Pdb, &PdbStatus)> = covering.iter().map(|(b, s)| (*b, s)).collect();
            let got = check_eviction(p, &refs);
            match (&got, want) {
                (Ok(effect), Ok(w)) => {
                    let tag = serde_json::to_value(effect).unwrap()["effect"].as_str().unwrap().to_string();
                    assert_eq!(tag, w, "pod {}", p.name);
                }
                (Err(r), Err((code, text))) => {
                    assert_eq!(r.code, code, "pod {}: {r}", p.name);
                    assert!(r.to_string().contains(text), "pod {}: {r}", p.name);
                }
                _ => panic!("pod {}: got {got:?}, want {want:?}", p.name),
            }
        }
    }

    #[test]
    fn refusals_render_as_api_status() {
        let p = pdb(int(2), None);
        let r = check_eviction(&pod("a", true, None), &[(&p, &status(2, 2, 0))]).unwrap_err();
        let s = r.to_status();
        assert_eq!(s["code"], 429);
        assert_eq!(s["reason"], "TooManyRequests");
        assert_eq!(s["message"], VIOLATES_BUDGET);
        assert_eq!(s["details"]["causes"][0]["reason"], "DisruptionBudget");
        assert_eq!(
            s["details"]["causes"][0]["message"],
            "The disruption budget web needs 2 healthy pods and has 2 currently"
        );
        assert!(s["details"].get("retryAfterSeconds").is_none());
        let r = check_eviction(&pod("a", true, None), &[(&p, &status(3, 2, -1))]).unwrap_err();
        assert_eq!(
            r.to_status()["message"],
            "poddisruptionbudget.policy \"web\" is forbidden: pdb disruptions allowed is negative"
        );
        let r = EvictionRefusal::disrupted_map_too_big(&p);
        assert_eq!(r.code, 403);
    }

    #[test]
    fn index_finds_the_same_budgets_as_a_scan() {
        let mut inv = deployment(2, &[true, true]);
        inv.pods[1].labels.insert("tier".into(), "cache".into());
        let mut by_tier = pdb(None, int(1));
        by_tier.name = "cache".into();
        by_tier.selector = Selector::parse("tier in (cache,db)").unwrap();
        let mut everything = pdb(None, int(1));
        everything.name = "all".into();
        everything.selector = Selector::everything();
        let mut elsewhere = pdb(None, int(1));
        elsewhere.namespace = "staging".into();
        inv.pdbs = vec![pdb(int(1), None), by_tier, everything, elsewhere];
        let index = PdbIndex::new(&inv.pdbs);
        for p in &inv.pods {
            let scanned: Vec<usize> = (0..inv.pdbs.len()).filter(|i| inv.pdbs[*i].selects(p)).collect();
            assert_eq!(index.covering(&inv.pdbs, p), scanned, "{}", p.name);
        }
        assert_eq!(index.covering(&inv.pdbs, &inv.pods[1]), vec![0, 1, 2]);
    }

    #[test]
    fn tracker_shares_one_budget_across_evictions() {
        let mut inv = deployment(3, &[true, true, true]);
        inv.pdbs = vec![pdb(None, int(1))];
        let mut t = BudgetTracker::new(&inv);
        assert_eq!(t.budget(&ObjectKey::new("prod", "web")).unwrap().disruptions_allowed(), 1);
        assert_eq!(t.try_evict(&inv.pods[0]), Ok(Evicted::Consumed { pdb: ObjectKey::new("prod", "web") }));
        let blocked = t.try_evict(&inv.pods[1]).unwrap_err();
        assert_eq!((blocked.needs, blocked.has, &blocked.reason), (2, 2, &BlockReason::Budget));
        assert_eq!(blocked.to_string(), "disruption budget prod/web needs 2 healthy pods and has 2 currently");
        // The replacement has another name and the same labels.
        let mut replacement = inv.pods[0].clone();
        replacement.name = "web-new".into();
        t.replacement_ready(&replacement);
        assert_eq!(t.try_evict(&inv.pods[1]), Ok(Evicted::Consumed { pdb: ObjectKey::new("prod", "web") }));
    }

    #[test]
    fn tracker_applies_the_eviction_rules() {
        let mut inv = deployment(2, &[true, false]);
        let mut redis = pdb(int(2), None);
        redis.name = "redis-pdb".into();
        inv.pdbs = vec![redis];
        let mut t = BudgetTracker::new(&inv);
        // The unready pod does not meet the budget (1 < 2): blocked, like the API.
        assert_eq!(t.try_evict(&inv.pods[1]).unwrap_err().reason, BlockReason::Budget);
        inv.pdbs[0].unhealthy_pod_eviction_policy = Some("AlwaysAllow".into());
        let mut t = BudgetTracker::new(&inv);
        assert_eq!(t.try_evict(&inv.pods[1]), Ok(Evicted::Unhealthy { pdb: ObjectKey::new("prod", "redis-pdb") }));
        assert!(t.try_evict(&inv.pods[0]).is_err());

        let mut second = pdb(None, int(1));
        second.name = "web-too".into();
        inv.pdbs.push(second);
        let mut t = BudgetTracker::new(&inv);
        let b = t.try_evict(&inv.pods[0]).unwrap_err();
        assert!(matches!(b.reason, BlockReason::SeveralBudgets { ref pdbs } if pdbs.len() == 2), "{b:?}");

        let mut other = inv.pods[0].clone();
        other.labels = [("app".to_string(), "other".to_string())].into();
        other.name = "other".into();
        assert_eq!(t.try_evict(&other), Ok(Evicted::Free));
    }
}

//! Drainability: what draining a node does to each of its pods, decided by a chain of small
//! rules in the manner of the cluster-autoscaler's drainability rules.
//!
//! Each rule (one per file under `rules/`) looks at one pod and either decides its
//! [`Disposition`], accepts a blocker because the caller named an override for it, or stays
//! undecided; the first decision wins, and a pod no rule stops is evicted. The plan, the lab
//! tests and the live drain all call [`classify`] / [`classify_node`] / [`Classifier`], so the
//! answer never depends on where the inventory came from.

mod rules;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::inventory::{Inventory, Pdb, PdbStatus, Pod, WorkloadKind};
use crate::object_key::ObjectKey;
use crate::pdb::{PdbIndex, desired_healthy};

/// The annotation the cluster-autoscaler (and stepstone) read as the owner's word on eviction.
pub const SAFE_TO_EVICT_ANNOTATION: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";

/// Named overrides. Each accepts one kind of blocker; the default accepts none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainOptions {
    /// Evict pods with `emptyDir` volumes; their data is lost (`--delete-emptydir-data`).
    pub delete_emptydir_data: bool,
    /// Evict pods no controller recreates; they are gone for good (`--delete-unmanaged-pods`).
    pub delete_unmanaged: bool,
    /// Evict pods bound to this node's storage (hostPath, local volumes, node pinning); their
    /// data stays behind and their replacements may not start elsewhere.
    pub allow_local_storage_loss: bool,
    /// PersistentVolumeClaims known to be bound to node-local volumes (local PVs, LVM or ZFS
    /// local provisioners), for sources that know the volumes.
    pub local_volume_claims: BTreeSet<ObjectKey>,
}

impl DrainOptions {
    /// The `kubectl drain` flags that give exactly the consents in these options, for every
    /// printed drain line (runbooks, rollback runbooks, the manual node backend), so that a
    /// printed line drains what the plan and `stepstone drain` would, and no more.
    ///
    /// - `--ignore-daemonsets` always: DaemonSet pods stay (the rules skip them too).
    /// - `--delete-emptydir-data` only when the operator consented (`delete_emptydir_data`).
    /// - Never `--force` and never `--disable-eviction`: kubectl needs `--force` to delete pods no
    ///   controller recreates, so with `delete_unmanaged` the printed line still stops on them
    ///   and [`DrainOptions::kubectl_drain_caveats`] says what to run instead.
    /// - `allow_local_storage_loss` needs no flag: kubectl does not look at hostPath or local
    ///   volumes, only stepstone does.
    pub fn kubectl_drain_flags(&self) -> Vec<&'static str> {
        let mut flags = vec!["--ignore-daemonsets"];
        if self.delete_emptydir_data {
            flags.push("--delete-emptydir-data");
        }
        flags
    }

    /// What a printed `kubectl drain` line cannot do that these options consent to, each as a
    /// sentence with the command to run instead (empty when the line does everything).
    pub fn kubectl_drain_caveats(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.delete_unmanaged {
            out.push(
                "pods no controller recreates stop `kubectl drain` (it would need --force, which stepstone never uses): \
                 delete each deliberately first with `kubectl delete pod -n NAMESPACE NAME`, or drain with \
                 `stepstone drain --delete-unmanaged-pods`"
                    .to_string(),
            );
        }
        out
    }
}

/// Why a pod is left where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// A static pod's API mirror: the kubelet owns it and the API cannot delete it.
    MirrorPod,
    /// The DaemonSet controller recreates it on the node anyway (`--ignore-daemonsets`).
    #[serde(rename = "daemonset")]
    DaemonSet,
}

/// What stops a drain. The kebab-case code is stable: reports and scripts match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockerKind {
    /// No controller: once evicted nothing recreates the pod.
    Unmanaged,
    /// The owner annotated `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`.
    NotSafeToEvict,
    /// Data on this node (hostPath, a local PersistentVolume) the pod cannot take along.
    LocalStorage,
    /// Required node affinity admits only this node: the replacement cannot run elsewhere.
    PinnedToNode,
    /// `emptyDir` data would be lost: needs consent.
    Emptydir,
    /// Selected by more than one PodDisruptionBudget: the eviction API answers 500.
    SeveralBudgets,
    /// Its PodDisruptionBudget allows no disruption (found by the budget tracker, not the chain).
    Budget,
    /// Deleted and past its grace period, kept by finalizers no controller removes: the drain
    /// would wait for it forever.
    StuckFinalizers,
}

impl BlockerKind {
    pub fn code(self) -> &'static str {
        match self {
            BlockerKind::Unmanaged => "unmanaged",
            BlockerKind::NotSafeToEvict => "not-safe-to-evict",
            BlockerKind::LocalStorage => "local-storage",
            BlockerKind::PinnedToNode => "pinned-to-node",
            BlockerKind::Emptydir => "emptydir",
            BlockerKind::SeveralBudgets => "several-budgets",
            BlockerKind::Budget => "budget",
            BlockerKind::StuckFinalizers => "stuck-finalizers",
        }
    }

    /// The `stepstone drain` flag that accepts this kind, if any.
    pub fn override_flag(self) -> Option<&'static str> {
        match self {
            BlockerKind::Unmanaged => Some("--delete-unmanaged-pods"),
            BlockerKind::LocalStorage | BlockerKind::PinnedToNode => Some("--allow-local-storage-loss"),
            BlockerKind::Emptydir => Some("--delete-emptydir-data"),
            BlockerKind::NotSafeToEvict
            | BlockerKind::SeveralBudgets
            | BlockerKind::Budget
            | BlockerKind::StuckFinalizers => None,
        }
    }
}

impl std::fmt::Display for BlockerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A pod that stops a drain, why, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    pub kind: BlockerKind,
    pub pod: ObjectKey,
    pub node: Option<String>,
    pub reason: String,
    /// A concrete action (`scale deploy/redis in prod to 3`, `pass --delete-emptydir-data`).
    pub fix: String,
}

/// What draining the pod's node does with the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "disposition")]
pub enum Disposition {
    /// Left on the node.
    Skip { reason: SkipReason },
    /// Succeeded or Failed: deleting it is harmless and needs neither room nor budget (kubectl
    /// deletes such pods; leaving them is just as safe).
    Finished,
    /// Already being deleted: the drain waits for it to go.
    Wait,
    /// Evicted through the eviction API, under these budgets (`namespace/name`; at most one,
    /// since a pod under several is a blocker). `overrides` lists blockers an option accepted.
    Evict { pdbs: Vec<ObjectKey>, overrides: Vec<Blocker> },
    /// Stops the drain before any eviction.
    Block(Blocker),
}

impl Disposition {
    pub fn is_evicted(&self) -> bool {
        matches!(self, Disposition::Evict { .. })
    }

    pub fn blocker(&self) -> Option<&Blocker> {
        match self {
            Disposition::Block(b) => Some(b),
            _ => None,
        }
    }

    /// Blockers the options accepted (each deserves a loud warning).
    pub fn overrides(&self) -> &[Blocker] {
        match self {
            Disposition::Evict { overrides, .. } => overrides,
            _ => &[],
        }
    }
}

/// Everything a rule may look at for one pod.
pub(crate) struct PodContext<'a> {
    pub pod: &'a Pod,
    pub inv: &'a Inventory,
    pub opts: &'a DrainOptions,
    /// The budgets selecting the pod.
    pub pdbs: Vec<&'a Pdb>,
}

impl PodContext<'_> {
    pub fn node(&self) -> &str {
        self.pod.node_name.as_deref().unwrap_or("(unscheduled)")
    }

    /// The owner's word from the safe-to-evict annotation, when it is `true` or `false`.
    pub fn safe_to_evict(&self) -> Option<bool> {
        match self.pod.annotations.get(SAFE_TO_EVICT_ANNOTATION).map(|v| v.trim()) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        }
    }

    pub fn blocker(&self, kind: BlockerKind, reason: impl Into<String>, fix: impl Into<String>) -> Blocker {
        Blocker { kind, pod: self.pod.key(), node: self.pod.node_name.clone(), reason: reason.into(), fix: fix.into() }
    }
}

/// One rule's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not this rule's business; ask the next.
    Undecided,
    Decided(Disposition),
    /// This rule would block, but the named override accepts it; the chain goes on.
    Accepted(Blocker),
}

impl Outcome {
    /// `blocker` blocks the drain unless the operator gave the flag that accepts it.
    pub(crate) fn block_unless(consented: bool, blocker: Blocker) -> Outcome {
        if consented { Outcome::Accepted(blocker) } else { Outcome::Decided(Disposition::Block(blocker)) }
    }
}

pub(crate) trait Rule {
    fn name(&self) -> &'static str;
    fn check(&self, ctx: &PodContext<'_>) -> Outcome;
}

fn run_chain(ctx: &PodContext<'_>) -> Disposition {
    let mut overrides = Vec::new();
    for rule in rules::CHAIN {
        match rule.check(ctx) {
            Outcome::Undecided => {}
            Outcome::Decided(Disposition::Evict { pdbs, overrides: more }) => {
                overrides.extend(more);
                return Disposition::Evict { pdbs, overrides };
            }
            Outcome::Decided(d) => return d,
            Outcome::Accepted(b) => overrides.push(b),
        }
    }
    Disposition::Evict { pdbs: ctx.pdbs.iter().map(|p| p.key()).collect(), overrides }
}

/// The names of the rules in the order they run.
pub fn rule_names() -> Vec<&'static str> {
    rules::CHAIN.iter().map(|r| r.name()).collect()
}

/// Classify one pod. Scans the inventory's budgets; to classify many pods build a
/// [`Classifier`] once.
pub fn classify(pod: &Pod, inv: &Inventory, opts: &DrainOptions) -> Disposition {
    let pdbs = inv.pdbs_for(pod).collect();
    run_chain(&PodContext { pod, inv, opts, pdbs })
}

/// Classifies pods of one inventory with the budgets indexed by label.
#[derive(Debug, Clone)]
pub struct Classifier<'a> {
    inv: &'a Inventory,
    opts: &'a DrainOptions,
    index: PdbIndex,
}

impl<'a> Classifier<'a> {
    pub fn new(inv: &'a Inventory, opts: &'a DrainOptions) -> Self {
        Classifier { inv, opts, index: PdbIndex::new(&inv.pdbs) }
    }

    pub fn classify(&self, pod: &Pod) -> Disposition {
        let pdbs = self.index.covering(&self.inv.pdbs, pod).into_iter().map(|i| &self.inv.pdbs[i]).collect();
        run_chain(&PodContext { pod, inv: self.inv, opts: self.opts, pdbs })
    }

    pub fn classify_node(&self, node: &str) -> NodeDrainView<'a> {
        let mut view = NodeDrainView { node: node.to_string(), ..Default::default() };
        let inv: &'a Inventory = self.inv;
        for pod in inv.pods.iter().filter(|p| p.node_name.as_deref() == Some(node)) {
            match self.classify(pod) {
                Disposition::Evict { pdbs, overrides } => {
                    view.overrides.extend(overrides);
                    view.evict.push(Eviction { pod, pdbs });
                }
                Disposition::Block(b) => view.blockers.push(b),
                other => view.skip.push(Skipped { pod, disposition: other }),
            }
        }
        view
    }
}

/// A pod the drain evicts, with the budget that guards it.
#[derive(Debug, Clone, Serialize)]
pub struct Eviction<'a> {
    pub pod: &'a Pod,
    pub pdbs: Vec<ObjectKey>,
}

/// A pod the drain leaves, waits for, or may delete freely.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped<'a> {
    pub pod: &'a Pod,
    /// `Skip`, `Finished` or `Wait`.
    pub disposition: Disposition,
}

/// A node's pods sorted by what the drain does with them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeDrainView<'a> {
    pub node: String,
    pub evict: Vec<Eviction<'a>>,
    pub skip: Vec<Skipped<'a>>,
    /// Any entry here stops the drain before its first eviction.
    pub blockers: Vec<Blocker>,
    /// Blockers accepted by an override, to be reported as warnings.
    pub overrides: Vec<Blocker>,
}

impl NodeDrainView<'_> {
    pub fn is_blocked(&self) -> bool {
        !self.blockers.is_empty()
    }
}

/// The blocker for `pod` when its budget allows no disruption, with the smallest change that
/// lets one eviction through: the replica count to scale the owning workload to, or the budget
/// change when no scale would do. `status` is the budget's current numbers (from
/// [`crate::pdb::compute_status`] or a [`crate::pdb::BudgetTracker`] view).
pub fn budget_blocker(pod: &Pod, pdb: &Pdb, status: &PdbStatus, inv: &Inventory) -> Blocker {
    let (needs, has, expected) = (status.desired_healthy, status.current_healthy, status.expected_pods);
    let reason = format!(
        "PodDisruptionBudget {} needs {needs} healthy pods and has {has}: it allows no disruption, so the eviction would wait forever",
        pdb.key()
    );
    let scalable = inv
        .top_controller(pod)
        .filter(|w| matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::ReplicaSet));
    let mut fix = match scalable {
        Some(w) => {
            // New replicas add to the healthy count and (for scale-based budgets) to expectedPods.
            let found = (1..=w.replicas.max(10)).find(|delta| {
                let desired = desired_healthy(pdb.min_available, pdb.max_unavailable, expected + delta);
                has + delta - desired >= 1
            });
            match found {
                Some(delta) => format!(
                    "scale {} {} in {} to {} for the duration of the upgrade (kubectl scale -n {} {}/{} --replicas={})",
                    w.kind.short(),
                    w.name,
                    w.namespace,
                    w.replicas + delta,
                    w.namespace,
                    w.kind.short(),
                    w.name,
                    w.replicas + delta
                ),
                None => format!(
                    "{} allows no disruption at any scale: set maxUnavailable: 1 on it for the duration of the upgrade",
                    pdb.key()
                ),
            }
        }
        None => format!("set maxUnavailable: 1 on {} for the duration of the upgrade", pdb.key()),
    };
    if has < expected && !pdb.always_allow_unhealthy() {
        fix.push_str(&format!(
            "; or get its unready pods Ready (unhealthyPodEvictionPolicy: AlwaysAllow on {} lets unready pods go)",
            pdb.name
        ));
    }
    Blocker { kind: BlockerKind::Budget, pod: pod.key(), node: pod.node_name.clone(), reason, fix }
}

/// Classify every pod bound to `node`.
pub fn classify_node<'a>(node: &str, inv: &'a Inventory, opts: &'a DrainOptions) -> NodeDrainView<'a> {
    Classifier::new(inv, opts).classify_node(node)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Small builders shared by the rule tests.

    use crate::inventory::*;
    use crate::selector::Selector;

    pub fn pod(name: &str) -> Pod {
        Pod {
            node_name: Some("w1".into()),
            labels: [("app".to_string(), name.to_string())].into(),
            owner: Some(OwnerRef { kind: "ReplicaSet".into(), name: format!("{name}-abc"), uid: String::new() }),
            ..Pod::running("prod", name)
        }
    }

    pub fn with_volume(mut p: Pod, source: VolumeSource) -> Pod {
        p.volumes.push(Volume { name: format!("v{}", p.volumes.len()), source });
        p
    }

    pub fn owned_by(mut p: Pod, kind: &str, name: &str) -> Pod {
        p.owner = Some(OwnerRef { kind: kind.into(), name: name.into(), uid: String::new() });
        p
    }

    pub fn annotated(mut p: Pod, key: &str, value: &str) -> Pod {
        p.annotations.insert(key.into(), value.into());
        p
    }

    pub fn pinned(mut p: Pod, key: &str, node: &str) -> Pod {
        p.node_affinity.push(Selector::parse(&format!("{key} in ({node})")).unwrap());
        p
    }

    pub fn pdb(name: &str, selector: &str) -> Pdb {
        Pdb {
            namespace: "prod".into(),
            name: name.into(),
            selector: Selector::parse(selector).unwrap(),
            min_available: Some(IntOrPercent::Int(1)),
            max_unavailable: None,
            unhealthy_pod_eviction_policy: None,
            generation: 1,
            status: None,
        }
    }

    /// Run one rule on `pod` with the budgets of `inv` and return its outcome's short form:
    /// `undecided`, the disposition tag, `block:<code>` or `accept:<code>`.
    pub fn outcome(rule: &dyn super::Rule, pod: &Pod, inv: &Inventory, opts: &super::DrainOptions) -> String {
        let ctx = super::PodContext { pod, inv, opts, pdbs: inv.pdbs_for(pod).collect() };
        match rule.check(&ctx) {
            super::Outcome::Undecided => "undecided".into(),
            super::Outcome::Accepted(b) => format!("accept:{}", b.kind),
            super::Outcome::Decided(super::Disposition::Block(b)) => format!("block:{}", b.kind),
            super::Outcome::Decided(d) => {
                let v = serde_json::to_value(&d).unwrap();
                let tag = v["disposition"].as_str().unwrap().to_string();
                match v.get("reason").and_then(|r| r.as_str()) {
                    Some(r) => format!("{tag}:{r}"),
                    None => tag,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::inventory::{PodPhase, VolumeSource};
    use crate::snapshot::{SnapshotOptions, load_str};

    #[test]
    fn kubectl_flags_follow_the_consents_and_the_rules_agree() {
        let none = DrainOptions::default();
        assert_eq!(none.kubectl_drain_flags(), vec!["--ignore-daemonsets"]);
        assert!(none.kubectl_drain_caveats().is_empty());
        let emptydir = DrainOptions { delete_emptydir_data: true, ..Default::default() };
        assert_eq!(emptydir.kubectl_drain_flags(), vec!["--ignore-daemonsets", "--delete-emptydir-data"]);
        let all = DrainOptions {
            delete_emptydir_data: true,
            delete_unmanaged: true,
            allow_local_storage_loss: true,
            ..Default::default()
        };
        assert!(all.kubectl_drain_flags().iter().all(|f| *f != "--force" && *f != "--disable-eviction"));
        assert_eq!(all.kubectl_drain_caveats().len(), 1);
        assert!(all.kubectl_drain_caveats()[0].contains("kubectl delete pod -n"));
        // A pod with emptyDir and safe-to-evict "true": kubectl refuses it without the flag, so
        // the rules block it without the consent and the printed line has no flag either.
        let p = annotated(
            with_volume(pod("cache"), VolumeSource::EmptyDir { medium: None }),
            SAFE_TO_EVICT_ANNOTATION,
            "true",
        );
        let inv = Inventory::default();
        assert_eq!(classify(&p, &inv, &none).blocker().map(|b| b.kind), Some(BlockerKind::Emptydir));
        assert!(!none.kubectl_drain_flags().contains(&"--delete-emptydir-data"));
        assert!(classify(&p, &inv, &emptydir).is_evicted());
        assert!(emptydir.kubectl_drain_flags().contains(&"--delete-emptydir-data"));
    }

    #[test]
    fn rules_run_in_a_fixed_order() {
        assert_eq!(
            rule_names(),
            vec![
                "mirror-pod",
                "terminating",
                "finished",
                "daemonset",
                "safe-to-evict",
                "unmanaged",
                "local-storage",
                "emptydir",
                "budgets"
            ]
        );
    }

    #[test]
    fn first_decision_wins_and_overrides_accumulate() {
        let inv = Inventory::default();
        let opts = DrainOptions::default();
        // A finished DaemonSet pod with hostPath: finished wins (it may be deleted).
        let mut p =
            owned_by(with_volume(pod("agent"), VolumeSource::HostPath { path: "/var".into() }), "DaemonSet", "a");
        p.phase = PodPhase::Succeeded;
        assert_eq!(classify(&p, &inv, &opts), Disposition::Finished);
        // A bare pod with emptyDir: unmanaged blocks first.
        let mut bare = with_volume(pod("debug"), VolumeSource::EmptyDir { medium: None });
        bare.owner = None;
        assert_eq!(classify(&bare, &inv, &opts).blocker().unwrap().kind, BlockerKind::Unmanaged);
        // Accepting unmanaged pods reveals the emptyDir blocker.
        let opts = DrainOptions { delete_unmanaged: true, ..Default::default() };
        assert_eq!(classify(&bare, &inv, &opts).blocker().unwrap().kind, BlockerKind::Emptydir);
        // Accepting both evicts it, reporting both overrides.
        let opts = DrainOptions { delete_unmanaged: true, delete_emptydir_data: true, ..Default::default() };
        let d = classify(&bare, &inv, &opts);
        assert!(d.is_evicted());
        let kinds: Vec<BlockerKind> = d.overrides().iter().map(|b| b.kind).collect();
        assert_eq!(kinds, vec![BlockerKind::Unmanaged, BlockerKind::Emptydir]);
    }

    #[test]
    fn budget_blockers_name_the_scale_that_unblocks() {
        use crate::inventory::{IntOrPercent, Workload};
        use crate::selector::Selector;
        let workload = |kind, name: &str, replicas, owner: Option<&str>| Workload {
            owner: owner.map(|o| crate::inventory::OwnerRef {
                kind: "Deployment".into(),
                name: o.into(),
                uid: String::new(),
            }),
            ..Workload::ready(kind, "prod", name, replicas, Selector::parse("app=redis").unwrap())
        };
        let inv = Inventory {
            workloads: vec![
                workload(WorkloadKind::Deployment, "redis", 2, None),
                workload(WorkloadKind::ReplicaSet, "redis-abc", 2, Some("redis")),
            ],
            ..Default::default()
        };
        let p = pod("redis");
        let status = |has, needs, expected| PdbStatus {
            current_healthy: has,
            desired_healthy: needs,
            expected_pods: expected,
            disruptions_allowed: 0,
            observed_generation: 1,
        };
        let mut budget = pdb("redis-pdb", "app=redis");
        budget.min_available = Some(IntOrPercent::Int(2));
        let b = budget_blocker(&p, &budget, &status(2, 2, 2), &inv);
        assert_eq!(b.kind, BlockerKind::Budget);
        assert_eq!(
            b.reason,
            "PodDisruptionBudget prod/redis-pdb needs 2 healthy pods and has 2: it allows no disruption, so the eviction would wait forever"
        );
        assert!(b.fix.starts_with("scale deploy redis in prod to 3 "), "{}", b.fix);
        // 100% can never be met with a disruption; an unready pod adds the policy hint.
        budget.min_available = Some(IntOrPercent::Percent(100));
        let b = budget_blocker(&p, &budget, &status(1, 2, 2), &inv);
        assert!(b.fix.starts_with("prod/redis-pdb allows no disruption at any scale"), "{}", b.fix);
        assert!(b.fix.contains("unhealthyPodEvictionPolicy: AlwaysAllow"), "{}", b.fix);
        // 50% of 2 → needs 1; with one pod unready: scale by one gives 2 healthy of 3, needs 2.
        budget.min_available = Some(IntOrPercent::Percent(50));
        let b = budget_blocker(&p, &budget, &status(1, 1, 2), &inv);
        assert!(b.fix.starts_with("scale deploy redis in prod to 4 "), "{}", b.fix);
    }

    #[test]
    fn example_fleet_node_views() {
        let inv = load_str(
            "three-generations.json",
            include_str!("../../../../examples/three-generations.json"),
            &SnapshotOptions::default(),
        )
        .unwrap();
        let opts = DrainOptions::default();
        let classifier = Classifier::new(&inv, &opts);
        let mut kinds = BTreeSet::new();
        for node in &inv.nodes {
            let view = classifier.classify_node(&node.name);
            let on_node = inv.pods_on(&node.name).count();
            assert_eq!(view.evict.len() + view.skip.len() + view.blockers.len(), on_node, "{}", node.name);
            // The indexed classifier agrees with the plain one.
            for e in &view.evict {
                assert_eq!(
                    classify(e.pod, &inv, &opts),
                    Disposition::Evict { pdbs: e.pdbs.clone(), overrides: vec![] }
                );
            }
            for b in &view.blockers {
                kinds.insert((b.kind, b.pod.clone()));
            }
            // Control-plane nodes hold only static and DaemonSet pods.
            if node.is_control_plane() {
                assert!(view.evict.is_empty() && view.blockers.is_empty(), "{}", node.name);
                assert!(view.skip.iter().any(|s| s.disposition == Disposition::Skip { reason: SkipReason::MirrorPod }));
            }
        }
        let codes: BTreeSet<BlockerKind> = kinds.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            codes,
            [BlockerKind::Unmanaged, BlockerKind::LocalStorage, BlockerKind::Emptydir].into_iter().collect(),
            "{kinds:?}"
        );
        assert!(kinds.contains(&(BlockerKind::Unmanaged, ObjectKey::new("default", "debug-shell"))));
        assert!(kinds.contains(&(BlockerKind::LocalStorage, ObjectKey::new("data", "kafka-0"))));
        assert!(kinds.contains(&(BlockerKind::LocalStorage, ObjectKey::new("monitoring", "loki-0"))));
        // `prod/worker` has emptyDir too; its owners marked it safe to evict, but that is not
        // consent to lose the data (kubectl drain refuses it without --delete-emptydir-data).
        assert!(
            kinds
                .iter()
                .any(|(k, p)| *k == BlockerKind::Emptydir && p.namespace == "prod" && p.name.starts_with("worker-"))
        );
        assert!(
            kinds
                .iter()
                .any(|(k, p)| *k == BlockerKind::Emptydir && p.namespace == "prod" && p.name.starts_with("api-"))
        );
    }
}

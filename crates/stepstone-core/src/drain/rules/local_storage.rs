//! Pods bound to this node: hostPath data, a PersistentVolumeClaim on a node-local volume (one
//! the caller names, or one bound to a volume whose node affinity admits no other node of the
//! inventory, [`crate::volumes`]), or required node affinity that admits only this node. On bare metal such a pod cannot come
//! back anywhere else: evicted, it stays down (Pending) until the node returns, and its data is
//! gone if the node is reinstalled. A blocker unless the caller named
//! `allow_local_storage_loss`, or the owners annotated the pod safe to evict.

use crate::drain::{Blocker, BlockerKind, Outcome, PodContext, Rule};
use crate::inventory::VolumeSource;
use crate::object_key::ObjectKey;
use crate::selector::Operator;

/// The keys that name a node in required node affinity.
const NODE_NAME_KEYS: [&str; 2] = ["metadata.name", "kubernetes.io/hostname"];

pub struct LocalStorage;

/// True when every node-affinity term (they are ORed) admits only `node`.
fn pinned_to(ctx: &PodContext<'_>, node: &str) -> bool {
    !ctx.pod.node_affinity.is_empty()
        && ctx.pod.node_affinity.iter().all(|term| {
            term.requirements.iter().any(|r| {
                NODE_NAME_KEYS.contains(&r.key.as_str())
                    && r.operator == Operator::In
                    && !r.values.is_empty()
                    && r.values.iter().all(|v| v == node)
            })
        })
}

fn owner_text(ctx: &PodContext<'_>) -> String {
    ctx.inv
        .top_controller(ctx.pod)
        .map(|w| format!("{}/{} in {}", w.kind.short(), w.name, w.namespace))
        .or_else(|| ctx.pod.owner.as_ref().map(|o| format!("{} {} in {}", o.kind, o.name, ctx.pod.namespace)))
        .unwrap_or_else(|| format!("pod/{} in {}", ctx.pod.name, ctx.pod.namespace))
}

fn find(ctx: &PodContext<'_>) -> Option<Blocker> {
    let node = ctx.node();
    let owner = owner_text(ctx);
    let accept = "then pass --allow-local-storage-loss";
    let claims: Vec<&str> = ctx
        .pod
        .volumes
        .iter()
        .filter_map(|v| match &v.source {
            VolumeSource::PersistentVolumeClaim { claim } => Some(claim.as_str()),
            _ => None,
        })
        .collect();
    if let Some(path) = ctx.pod.volumes.iter().find_map(|v| match &v.source {
        VolumeSource::HostPath { path } => Some(path.as_str()),
        _ => None,
    }) {
        return Some(ctx.blocker(
            BlockerKind::LocalStorage,
            format!(
                "keeps data in hostPath {path} on {node}: a replacement elsewhere starts without it, and it is lost if {node} is reinstalled"
            ),
            format!(
                "move the data of {owner} to a PersistentVolume or back it up first; if it can wait for {node} to return, {accept}"
            ),
        ));
    }
    let pinned = pinned_to(ctx, node);
    let local_claim = claims
        .iter()
        .find(|c| {
            let key = ObjectKey::new(&ctx.pod.namespace, **c);
            ctx.opts.local_volume_claims.contains(&key)
                || ctx.inv.claim_nodes.get(&key).is_some_and(|nodes| nodes.iter().all(|n| n == node))
        })
        .or(if pinned { claims.first() } else { None });
    if let Some(claim) = local_claim {
        return Some(ctx.blocker(
            BlockerKind::LocalStorage,
            format!(
                "its volume claim {claim} is bound to a local volume on {node}: evicted, it cannot start anywhere else and stays Pending until {node} is back"
            ),
            format!(
                "make sure {owner} tolerates this member being down for the whole upgrade of {node} (replicas, a PodDisruptionBudget with maxUnavailable 1), {accept}; or move its data to another node first"
            ),
        ));
    }
    if pinned {
        return Some(ctx.blocker(
            BlockerKind::PinnedToNode,
            format!("required node affinity admits only {node}: evicted, it stays Pending until {node} is back"),
            format!("relax the node affinity of {owner} so it may run on another node, or {accept}"),
        ));
    }
    None
}

impl Rule for LocalStorage {
    fn name(&self) -> &'static str {
        "local-storage"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        if ctx.safe_to_evict() == Some(true) {
            return Outcome::Undecided;
        }
        match find(ctx) {
            None => Outcome::Undecided,
            Some(b) => Outcome::block_unless(ctx.opts.allow_local_storage_loss, b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::testing::*;
    use crate::drain::{DrainOptions, SAFE_TO_EVICT_ANNOTATION};
    use crate::inventory::{Inventory, Pod};

    fn claim(name: &str) -> VolumeSource {
        VolumeSource::PersistentVolumeClaim { claim: name.into() }
    }

    #[test]
    fn table() {
        let allow = DrainOptions { allow_local_storage_loss: true, ..Default::default() };
        let known =
            DrainOptions { local_volume_claims: [ObjectKey::new("prod", "data-pg-0")].into(), ..Default::default() };
        let host_path = || VolumeSource::HostPath { path: "/srv/loki".into() };
        let kafka = || pinned(with_volume(pod("kafka-0"), claim("data-kafka-0")), "kubernetes.io/hostname", "w1");
        let none = DrainOptions::default();
        let cases: Vec<(Pod, &DrainOptions, &str)> = vec![
            (with_volume(pod("loki-0"), host_path()), &none, "block:local-storage"),
            (with_volume(pod("loki-0"), host_path()), &allow, "accept:local-storage"),
            (annotated(with_volume(pod("loki-0"), host_path()), SAFE_TO_EVICT_ANNOTATION, "true"), &none, "undecided"),
            // A claim pinned to this node by affinity, by hostname or by matchFields.
            (kafka(), &none, "block:local-storage"),
            (
                pinned(with_volume(pod("kafka-1"), claim("data-kafka-1")), "metadata.name", "w1"),
                &none,
                "block:local-storage",
            ),
            (kafka(), &allow, "accept:local-storage"),
            // Pinned to another node: not this node's problem (it would never have run here).
            (
                pinned(with_volume(pod("kafka-2"), claim("data-kafka-2")), "kubernetes.io/hostname", "w9"),
                &none,
                "undecided",
            ),
            // Affinity that admits several nodes is no pin.
            (pinned(with_volume(pod("kafka-3"), claim("d")), "kubernetes.io/hostname", "w1,w2"), &none, "undecided"),
            // A claim the caller knows is local.
            (with_volume(pod("pg-0"), claim("data-pg-0")), &known, "block:local-storage"),
            (with_volume(pod("pg-1"), claim("data-pg-1")), &known, "undecided"),
            // Network storage moves with the pod.
            (with_volume(pod("app"), claim("shared")), &none, "undecided"),
            // Pinned without storage.
            (pinned(pod("licensed"), "kubernetes.io/hostname", "w1"), &none, "block:pinned-to-node"),
            (pinned(pod("licensed"), "kubernetes.io/hostname", "w1"), &allow, "accept:pinned-to-node"),
            (pinned(pod("zonal"), "topology.kubernetes.io/zone", "w1"), &none, "undecided"),
            (with_volume(pod("cache"), VolumeSource::EmptyDir { medium: None }), &none, "undecided"),
            (pod("web"), &none, "undecided"),
        ];
        for (p, opts, want) in cases {
            assert_eq!(outcome(&LocalStorage, &p, &Inventory::default(), opts), want, "{}", p.name);
        }
    }

    #[test]
    fn a_claim_bound_to_a_volume_only_this_node_reaches_pins_the_pod() {
        let inv = Inventory {
            claim_nodes: [
                (ObjectKey::new("prod", "data-db-0"), ["w1".to_string()].into()),
                (ObjectKey::new("prod", "data-db-1"), ["w1".to_string(), "w2".to_string()].into()),
                (ObjectKey::new("prod", "data-db-2"), ["w9".to_string()].into()),
            ]
            .into(),
            ..Default::default()
        };
        let none = DrainOptions::default();
        let allow = DrainOptions { allow_local_storage_loss: true, ..Default::default() };
        let cases = [
            // Only w1 reaches the volume: the pod waits for w1.
            ("db-0", "data-db-0", &none, "block:local-storage"),
            ("db-0", "data-db-0", &allow, "accept:local-storage"),
            // A zonal volume another node reaches too: the replacement can start there.
            ("db-1", "data-db-1", &none, "undecided"),
            // The volume is on another node (a stale snapshot): nothing ties the pod to w1.
            ("db-2", "data-db-2", &none, "undecided"),
            // A claim the inventory knows no local volume for.
            ("db-3", "data-db-3", &none, "undecided"),
        ];
        for (name, c, opts, want) in cases {
            let p = with_volume(pod(name), claim(c));
            assert_eq!(outcome(&LocalStorage, &p, &inv, opts), want, "{name}");
        }
    }

    #[test]
    fn the_reason_names_the_claim_and_node() {
        let p = pinned(with_volume(pod("kafka-0"), claim("data-kafka-0")), "kubernetes.io/hostname", "w1");
        let ctx = PodContext { pod: &p, inv: &Inventory::default(), opts: &DrainOptions::default(), pdbs: vec![] };
        let b = find(&ctx).unwrap();
        assert!(b.reason.contains("data-kafka-0") && b.reason.contains("on w1"), "{}", b.reason);
        assert!(b.fix.contains("--allow-local-storage-loss"), "{}", b.fix);
    }
}

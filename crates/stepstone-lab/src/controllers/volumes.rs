//! PersistentVolumes and their claims: the binder (`persistentvolume-binder-controller`) that
//! binds a Pending claim to the volume pre-bound to it (`spec.claimRef`), or to the smallest
//! Available volume of its storage class, access modes and size, and releases a bound volume
//! whose claim is gone; and what a pod's claims tell the scheduler ([`VolumeNeed`]): a claim
//! bound to a volume with node affinity (a local volume) admits only the nodes that affinity
//! selects, so a pod evicted from its volume's node stays Pending until that node takes pods
//! again. No provisioner runs: a claim no volume matches stays Pending, as on a cluster without
//! one. A claim the pod names that the lab does not hold (a snapshot taken without its claims)
//! constrains nothing, since the lab cannot know where its data lives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::capacity::NODE_NAME_FIELD;
use stepstone_core::quantity::parse_bytes;
use stepstone_core::snapshot::node_selector_terms;

use super::{Controller, Pass, Watch};
use crate::resources as r;
use crate::store::{Part, Store, meta, meta_mut, name_of, namespace_of, string_map, uid_of};

/// The binder.
pub(super) struct VolumeBinder;

impl Controller for VolumeBinder {
    fn name(&self) -> &'static str {
        "persistentvolume-binder-controller"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(&[r::PERSISTENT_VOLUMES, r::PERSISTENT_VOLUME_CLAIMS])
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        make_available(pass.store);
        bind_claims(pass.store);
        release_volumes(pass.store);
        None
    }
}

fn phase(o: &Value) -> &str {
    o.pointer("/status/phase").and_then(Value::as_str).unwrap_or("")
}

fn storage_class(o: &Value) -> &str {
    o.pointer("/spec/storageClassName").and_then(Value::as_str).unwrap_or("")
}

fn access_modes(o: &Value, ptr: &str) -> BTreeSet<String> {
    o.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

fn bytes_at(o: &Value, ptr: &str) -> u64 {
    o.pointer(ptr).and_then(Value::as_str).and_then(|q| parse_bytes(q).ok()).unwrap_or(0)
}

/// The claim a volume is reserved for: `(namespace, name)` of its `spec.claimRef`.
fn claim_ref(pv: &Value) -> Option<(&str, &str)> {
    let c = pv.pointer("/spec/claimRef")?;
    Some((c.get("namespace")?.as_str()?, c.get("name")?.as_str()?))
}

/// The volume for `claim`: the one it names, the one pre-bound to it, or the smallest Available
/// volume that satisfies it (ties by name, for determinism).
fn volume_for(store: &Store, claim: &Value) -> Option<Arc<Value>> {
    let (ns, name) = (namespace_of(claim), name_of(claim));
    if let Some(pv) = claim.pointer("/spec/volumeName").and_then(Value::as_str).filter(|v| !v.is_empty()) {
        return store.get(r::PERSISTENT_VOLUMES, "", pv).filter(|v| claim_ref(v).is_none_or(|c| c == (ns, name)));
    }
    let volumes: Vec<Arc<Value>> = store.iter(r::PERSISTENT_VOLUMES, None, None).collect();
    if let Some(pre) = volumes.iter().find(|v| claim_ref(v) == Some((ns, name))) {
        return Some((*pre).clone());
    }
    let want_modes = access_modes(claim, "/spec/accessModes");
    let want_bytes = bytes_at(claim, "/spec/resources/requests/storage");
    volumes
        .into_iter()
        .filter(|v| claim_ref(v).is_none() && phase(v) == "Available")
        .filter(|v| storage_class(v) == storage_class(claim))
        .filter(|v| want_modes.is_subset(&access_modes(v, "/spec/accessModes")))
        .filter(|v| bytes_at(v, "/spec/capacity/storage") >= want_bytes)
        .min_by(|a, b| {
            bytes_at(a, "/spec/capacity/storage")
                .cmp(&bytes_at(b, "/spec/capacity/storage"))
                .then_with(|| name_of(a).cmp(name_of(b)))
        })
}

fn bind_claims(store: &mut Store) {
    let pending: Vec<Arc<Value>> =
        store.iter(r::PERSISTENT_VOLUME_CLAIMS, None, None).filter(|c| phase(c) != "Bound").collect();
    for claim in pending {
        let Some(pv) = volume_for(store, &claim) else { continue };
        let chosen_by_controller = claim.pointer("/spec/volumeName").and_then(Value::as_str).is_none_or(str::is_empty);
        let mut volume = (*pv).clone();
        volume["spec"]["claimRef"] = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": namespace_of(&claim),
            "name": name_of(&claim), "uid": uid_of(&claim),
        });
        let Ok(volume) = store.update(r::PERSISTENT_VOLUMES, volume, Part::All, false) else { continue };
        let mut bound_volume = (*volume).clone();
        bound_volume["status"] = json!({"phase": "Bound"});
        let _ = store.update(r::PERSISTENT_VOLUMES, bound_volume, Part::Status, false);
        let mut next = (*claim).clone();
        next["spec"]["volumeName"] = json!(name_of(&pv));
        let annotations = meta_mut(&mut next).entry("annotations").or_insert_with(|| json!({}));
        annotations["pv.kubernetes.io/bind-completed"] = json!("yes");
        if chosen_by_controller {
            annotations["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        }
        let Ok(next) = store.update(r::PERSISTENT_VOLUME_CLAIMS, next, Part::All, false) else { continue };
        let mut bound = (*next).clone();
        bound["status"] = json!({
            "phase": "Bound",
            "accessModes": pv.pointer("/spec/accessModes").cloned().unwrap_or(json!([])),
            "capacity": pv.pointer("/spec/capacity").cloned().unwrap_or(json!({})),
        });
        let _ = store.update(r::PERSISTENT_VOLUME_CLAIMS, bound, Part::Status, false);
    }
}

/// A new volume reserved for no claim is Available; one pre-bound to a claim waits for it.
fn make_available(store: &mut Store) {
    let fresh: Vec<Arc<Value>> = store
        .iter(r::PERSISTENT_VOLUMES, None, None)
        .filter(|v| matches!(phase(v), "Pending" | "") && claim_ref(v).is_none())
        .collect();
    for v in fresh {
        let mut next = (*v).clone();
        next["status"] = json!({"phase": "Available"});
        let _ = store.update(r::PERSISTENT_VOLUMES, next, Part::Status, false);
    }
}

/// A Bound volume whose claim was deleted becomes Released (the `Retain` policy: its data stays
/// until an administrator reclaims it).
fn release_volumes(store: &mut Store) {
    let orphans: Vec<Arc<Value>> = store
        .iter(r::PERSISTENT_VOLUMES, None, None)
        .filter(|v| phase(v) == "Bound")
        .filter(|v| {
            claim_ref(v).is_some_and(|(ns, name)| {
                let uid = v.pointer("/spec/claimRef/uid").and_then(Value::as_str).unwrap_or("");
                store.get(r::PERSISTENT_VOLUME_CLAIMS, ns, name).is_none_or(|c| !uid.is_empty() && uid_of(&c) != uid)
            })
        })
        .collect();
    for v in orphans {
        let mut next = (*v).clone();
        next["status"] = json!({"phase": "Released"});
        let _ = store.update(r::PERSISTENT_VOLUMES, next, Part::Status, false);
    }
}

/// What a pod's claims require of the node it is scheduled to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VolumeNeed {
    /// Nothing: no claims, or none bound to a volume with node affinity.
    Anywhere,
    /// Only these nodes reach every bound volume the pod mounts.
    Nodes(BTreeSet<String>),
    /// A claim exists but is not bound yet.
    Unbound,
}

/// The claims `pod` mounts, against the store's claims, volumes and nodes.
pub(crate) fn volume_need(store: &Store, pod: &Value) -> VolumeNeed {
    let ns = namespace_of(pod);
    let claims: Vec<&str> = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str))
        .collect();
    let mut allowed: Option<BTreeSet<String>> = None;
    for claim in claims {
        let Some(pvc) = store.get(r::PERSISTENT_VOLUME_CLAIMS, ns, claim) else { continue };
        if phase(&pvc) != "Bound" {
            return VolumeNeed::Unbound;
        }
        let Some(pv) = pvc
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .and_then(|v| store.get(r::PERSISTENT_VOLUMES, "", v))
        else {
            continue;
        };
        let Some(required) = pv.pointer("/spec/nodeAffinity/required") else { continue };
        let terms =
            node_selector_terms(&json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}));
        let reach: BTreeSet<String> = store
            .iter(r::NODES, None, None)
            .filter(|n| {
                let mut labels: BTreeMap<String, String> = string_map(meta(n).get("labels"));
                labels.insert(NODE_NAME_FIELD.to_string(), name_of(n).to_string());
                terms.iter().any(|t| t.matches(&labels))
            })
            .map(|n| name_of(&n).to_string())
            .collect();
        allowed = Some(match allowed {
            None => reach,
            Some(a) => a.intersection(&reach).cloned().collect(),
        });
    }
    allowed.map_or(VolumeNeed::Anywhere, VolumeNeed::Nodes)
}

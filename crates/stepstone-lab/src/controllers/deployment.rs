//! The Deployment controller: one ReplicaSet per template, rolled from old to new within
//! `maxSurge` and `maxUnavailable` (or all at once for `Recreate`), and the status and
//! conditions `kubectl rollout status` reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    Controller, Pass, Watch, generation, owner_ref, replicas, scaled_int_or_percent, template_hash, write_status,
};
use crate::clock;
use crate::resources as r;
use crate::store::{self, Part, Store, controller_uid, meta, meta_str, name_of, namespace_of, uid_of};

pub(super) struct DeploymentController;

impl Controller for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(super::WORKLOADS)
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        deployments(pass.store, pass.now);
        None
    }
}

/// What makes two pod templates the same revision: labels (without the hash) and containers.
fn template_identity(template: Option<&Value>) -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let Some(t) = template else { return Default::default() };
    let mut labels = store::string_map(t.pointer("/metadata/labels"));
    labels.remove("pod-template-hash");
    (labels, store::containers(t))
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
    let deps: Vec<Arc<Value>> = store.iter(r::DEPLOYMENTS, None, None).collect();
    if deps.is_empty() {
        return;
    }
    let mut sets_by_owner: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for rs in store.iter(r::REPLICASETS, None, None) {
        if let Some(uid) = controller_uid(&rs) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
}

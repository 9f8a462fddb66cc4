//! The StatefulSet controller: pods `NAME-0..N` created in order (each waiting for its
//! predecessors to be Ready unless `podManagementPolicy: Parallel`), removed from the highest
//! ordinal, each with the claims of its `volumeClaimTemplates`, and the status counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    Controller, Pass, Watch, facts, generation, pod_from_template, pods_by_owner, replicas, template_hash, write_status,
};
use crate::api::{self, DeleteOptions};
use crate::pod_facts::PodFacts;
use crate::resources as r;
use crate::store::{Store, name_of, namespace_of, uid_of};

pub(super) struct StatefulSetController;

impl Controller for StatefulSetController {
    fn name(&self) -> &'static str {
        "statefulset-controller"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(super::WORKLOADS)
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        statefulsets(pass.store, pass.now);
        None
    }
}

fn ordinal(sts: &str, pod: &str) -> Option<i64> {
    pod.strip_prefix(sts)?.strip_prefix('-')?.parse().ok()
}

fn statefulsets(store: &mut Store, now: Timestamp) {
    let owned = pods_by_owner(store);
    let sets: Vec<Arc<Value>> = store.iter(r::STATEFULSETS, None, None).collect();
    for sts in sets {
        let name = name_of(&sts).to_string();
        let ns = namespace_of(&sts).to_string();
        let want = replicas(&sts).max(0);
        let parallel = sts.pointer("/spec/podManagementPolicy").and_then(Value::as_str) == Some("Parallel");
        let pods: BTreeMap<i64, &PodFacts> = owned
            .get(uid_of(&sts))
            .into_iter()
            .flatten()
            .filter_map(|p| ordinal(&name, &facts(p).name).map(|o| (o, facts(p))))
            .collect();
        let revision =
            format!("{name}-{}", &template_hash(&sts.pointer("/spec/template").cloned().unwrap_or(json!({})))[..10]);
        // Scale up in order, each pod waiting for its predecessors to be Running and Ready.
        for i in 0..want {
            if pods.contains_key(&i) {
                continue;
            }
            let predecessors_ready = (0..i).all(|j| pods.get(&j).is_some_and(|p| p.is_active() && p.ready));
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
            claim_volumes(store, &sts, i, &mut pod, now);
            api::admit(r::PODS, &mut pod);
            let _ = store.create(r::PODS, pod, now, false);
            if !parallel {
                break;
            }
        }
        // Scale down from the highest ordinal, one at a time.
        let condemned: Vec<&PodFacts> = pods.iter().rev().filter(|(o, _)| **o >= want).map(|(_, p)| *p).collect();
        for p in condemned {
            if p.deleting {
                if !parallel {
                    break;
                }
                continue;
            }
            let _ = api::delete(store, r::PODS, &ns, &p.name, &DeleteOptions::default(), now);
            if !parallel {
                break;
            }
        }
        let active: Vec<&PodFacts> = pods.values().copied().filter(|p| p.is_active()).collect();
        let ready = active.iter().filter(|p| p.ready).count();
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

/// The claims of pod `ordinal` from the set's `volumeClaimTemplates`, `TEMPLATE-SET-ORDINAL`:
/// created when missing (an existing claim, with its data, is kept), and mounted in the pod under
/// the template's name in place of any volume of that name.
fn claim_volumes(store: &mut Store, sts: &Value, ordinal: i64, pod: &mut Value, now: Timestamp) {
    let Some(templates) = sts.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array) else { return };
    let (set, ns) = (name_of(sts), namespace_of(sts));
    let selector_labels = sts.pointer("/spec/selector/matchLabels").cloned().unwrap_or(json!({}));
    for template in templates {
        let volume = name_of(template);
        let claim = format!("{volume}-{set}-{ordinal}");
        if store.get(r::PERSISTENT_VOLUME_CLAIMS, ns, &claim).is_none() {
            let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
            crate::patch::merge(&mut labels, &selector_labels);
            let mut pvc = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": ns, "labels": labels},
                "spec": template.get("spec").cloned().unwrap_or(json!({})),
            });
            api::apply_defaults(r::PERSISTENT_VOLUME_CLAIMS, &mut pvc);
            let _ = store.create(r::PERSISTENT_VOLUME_CLAIMS, pvc, now, false);
        }
        if !pod["spec"].get("volumes").is_some_and(Value::is_array) {
            pod["spec"]["volumes"] = json!([]);
        }
        if let Some(vols) = pod["spec"]["volumes"].as_array_mut() {
            vols.retain(|v| v.get("name").and_then(Value::as_str) != Some(volume));
            vols.push(json!({"name": volume, "persistentVolumeClaim": {"claimName": claim}}));
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn ordinals_parse_from_names() {
        assert_eq!(ordinal("db", "db-2"), Some(2));
        assert_eq!(ordinal("db", "db-x"), None);
        assert_eq!(ordinal("db", "dbx-1"), None);
    }
}

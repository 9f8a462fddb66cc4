//! The ReplicaSet controller: as many active pods as `replicas`, created from the template
//! (a bounded burst per pass) or removed in upstream's order, and the status counts.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Controller, Pass, Watch, facts, generation, pod_from_template, pods_by_owner, replicas, write_status};
use crate::api::{self, DeleteOptions};
use crate::pod_facts::PodFacts;
use crate::resources as r;
use crate::store::{Store, Stored, name_of, namespace_of, uid_of};

/// Pods created per controller pass at most, so one huge scale-up does not stall the API.
const CREATE_BURST: usize = 500;

pub(super) struct ReplicaSetController;

impl Controller for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(super::WORKLOADS)
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        replicasets(pass.store, pass.now);
        None
    }
}

/// Pods to remove first when scaling down, as upstream ranks them: unscheduled, then pending,
/// then not ready, then the newest.
fn deletion_rank(p: &PodFacts) -> (bool, u8, bool, std::cmp::Reverse<&str>) {
    let scheduled = !p.node.is_empty();
    let phase_rank = match &*p.phase {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    (scheduled, phase_rank, p.ready, std::cmp::Reverse(&p.created))
}

fn replicasets(store: &mut Store, now: Timestamp) {
    let owned = pods_by_owner(store);
    let sets: Vec<Arc<Value>> = store.iter(r::REPLICASETS, None, None).collect();
    let mut budget = CREATE_BURST;
    for rs in sets {
        let mut active: Vec<Arc<Stored>> = owned
            .get(uid_of(&rs))
            .map(|v| v.iter().filter(|p| facts(p).is_active()).cloned().collect())
            .unwrap_or_default();
        let want = replicas(&rs).max(0) as usize;
        if active.len() < want {
            for _ in 0..(want - active.len()).min(budget) {
                let name = format!("{}-{}", name_of(&rs), store.random_suffix(5));
                let mut pod = pod_from_template(&rs, "ReplicaSet", name, &[]);
                api::admit(r::PODS, &mut pod);
                if let Ok(p) = store.create(r::PODS, pod, now, false)
                    && let Some(stored) = store.get_stored(r::PODS, namespace_of(&p), name_of(&p))
                {
                    active.push(stored.clone());
                    budget -= 1;
                }
            }
        } else if active.len() > want {
            active.sort_by(|a, b| deletion_rank(facts(a)).cmp(&deletion_rank(facts(b))));
            let extra: Vec<Arc<Stored>> = active.drain(..active.len() - want).collect();
            for p in extra {
                let f = facts(&p);
                let _ = api::delete(store, r::PODS, &f.namespace, &f.name, &DeleteOptions::default(), now);
            }
        }
        let ready = active.iter().filter(|p| facts(p).ready).count();
        write_status(
            store,
            r::REPLICASETS,
            &rs,
            json!({"replicas": active.len(), "fullyLabeledReplicas": active.len(), "readyReplicas": ready,
                "availableReplicas": ready, "observedGeneration": generation(&rs)}),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scale_down_prefers_unscheduled_then_unready() {
        let unscheduled = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}, "status": {"phase": "Pending"}});
        let ready = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let unready = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n"},
            "status": {"phase": "Running"}});
        let mut v = [&ready, &unready, &unscheduled].map(PodFacts::of);
        v.sort_by(|a, b| deletion_rank(a).cmp(&deletion_rank(b)));
        assert_eq!(v, [&unscheduled, &unready, &ready].map(PodFacts::of));
    }
}

//! Garbage collection: objects whose every owner is gone are deleted (background cascading
//! deletion).

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::Value;

use super::{Controller, Pass, Watch};
use crate::api::{self, DeleteOptions};
use crate::resources as r;
use crate::store::{Store, meta, name_of, namespace_of, uid_of};

pub(super) struct GarbageCollector;

impl Controller for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(super::WORKLOADS)
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        gc(pass.store, pass.now);
        None
    }
}

/// Objects whose every owner is gone are deleted (background cascading deletion).
fn gc(store: &mut Store, now: Timestamp) {
    let mut uids: HashSet<String> = HashSet::new();
    for res in [r::DEPLOYMENTS, r::REPLICASETS, r::STATEFULSETS, r::DAEMONSETS, r::NODES, r::PODS] {
        uids.extend(store.iter(res, None, None).map(|o| uid_of(&o).to_string()));
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
            .map(|o| (namespace_of(&o).to_string(), name_of(&o).to_string()))
            .collect();
        for (ns, name) in orphans {
            let _ = api::delete(store, res, &ns, &name, &DeleteOptions::default(), now);
        }
    }
}

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
    for res in [r::DEPLOYMENTS, r::REPLICASETS, r::STATEFULSETS, r::DAEMONSETS, r::NODES] {
        uids.extend(store.iter(res, None, None).map(|o| uid_of(&o).to_string()));
    }
    uids.extend(store.pods().map(|(_, f)| f.uid.to_string()));
    let gone = |owner: Option<&str>| owner.is_some_and(|u| !uids.contains(u));
    for res in [r::REPLICASETS, r::PODS, r::LEASES, r::CONTROLLER_REVISIONS] {
        let orphans: Vec<(String, String)> = if res == r::PODS {
            store
                .pods()
                .filter(|(_, f)| !f.owner_uids.is_empty() && f.owner_uids.iter().all(|u| gone(u.as_deref())))
                .map(|(_, f)| (f.namespace.to_string(), f.name.to_string()))
                .collect()
        } else {
            store
                .iter(res, None, None)
                .filter(|o| {
                    meta(o).get("ownerReferences").and_then(Value::as_array).is_some_and(|refs| {
                        !refs.is_empty() && refs.iter().all(|x| gone(x.get("uid").and_then(Value::as_str)))
                    })
                })
                .map(|o| (namespace_of(&o).to_string(), name_of(&o).to_string()))
                .collect()
        };
        for (ns, name) in orphans {
            let _ = api::delete(store, res, &ns, &name, &DeleteOptions::default(), now);
        }
    }
}

//! The disruption controller: every PodDisruptionBudget's status from `stepstone_core::pdb`,
//! the evictions still waiting for their pod kept in `disruptedPods` for two minutes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::inventory::{Inventory, Pdb, Pod};
use stepstone_core::pdb as budget;
use stepstone_core::selector::Operator;
use stepstone_core::snapshot::{parse_pdb, parse_workload};

use super::{Controller, Pass, PodCache, Watch, earliest};
use crate::api;
use crate::clock::{self, Clock};
use crate::resources as r;
use crate::store::{Part, Store, namespace_of};

pub(super) struct DisruptionController;

impl Controller for DisruptionController {
    fn name(&self) -> &'static str {
        "disruption-controller"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(&[r::PODS, r::PDBS, r::DEPLOYMENTS, r::REPLICASETS, r::STATEFULSETS])
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        pass.pods.refresh(pass.store);
        disruption(pass.store, pass.pods, pass.now, &pass.shared.clock)
    }
}

/// The disruption controller: every budget's status from `stepstone_core::pdb`.
fn disruption(store: &mut Store, cache: &PodCache, now: Timestamp, clock: &Clock) -> Option<Timestamp> {
    let pdb_objs: Vec<Arc<Value>> = store.iter(r::PDBS, None, None).collect();
    if pdb_objs.is_empty() {
        return None;
    }
    let namespaces: HashSet<String> = pdb_objs.iter().map(|p| namespace_of(p).to_string()).collect();
    // Per namespace: its pods, a label index, and an inventory of its workloads for the finders.
    let mut pods_in: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for ((ns, _), (_, pod)) in &cache.pods {
        if namespaces.contains(ns) {
            pods_in.entry(ns.clone()).or_default().push(pod.clone());
        }
    }
    let mut inventories: HashMap<String, Inventory> = HashMap::new();
    for ns in &namespaces {
        let mut inv = Inventory::default();
        for res in [r::DEPLOYMENTS, r::REPLICASETS, r::STATEFULSETS] {
            inv.workloads.extend(store.iter(res, Some(ns), None).filter_map(|o| parse_workload(&o).ok()));
        }
        inventories.insert(ns.clone(), inv);
    }
    let mut index: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (ns, pods) in &pods_in {
        for (i, p) in pods.iter().enumerate() {
            for (k, v) in &p.labels {
                index.entry((ns.as_str(), k.as_str(), v.as_str())).or_default().push(i);
            }
        }
    }
    let mut due: Option<Timestamp> = None;
    let mut writes = Vec::new();
    let empty: Vec<Arc<Pod>> = Vec::new();
    for obj in &pdb_objs {
        let Ok(pdb) = parse_pdb(obj) else { continue };
        let ns_pods = pods_in.get(&pdb.namespace).unwrap_or(&empty);
        let candidates: Vec<&Pod> = candidates(&pdb, ns_pods, &index);
        let disrupted_all = api::recently_disrupted(obj, now, clock);
        // Keep only evictions still waiting for their pod to go.
        let disrupted: BTreeSet<String> = disrupted_all
            .into_iter()
            .filter(|name| ns_pods.iter().any(|p| &p.name == name && !p.is_terminating()))
            .collect();
        let inv = &inventories[&pdb.namespace];
        let computed = budget::compute_status_with(&pdb, candidates, |p| budget::controller_scale(inv, p), &disrupted);
        let s = computed.status;
        let mut disrupted_map = serde_json::Map::new();
        if let Some(m) = obj.pointer("/status/disruptedPods").and_then(Value::as_object) {
            for (k, v) in m {
                if disrupted.contains(k) {
                    disrupted_map.insert(k.clone(), v.clone());
                    if let Some(t) = v.as_str().and_then(clock::parse) {
                        due = earliest(due, Some(clock.after(t, api::DISRUPTED_TIMEOUT_SECONDS)));
                    }
                }
            }
        }
        let allowed = s.disruptions_allowed > 0;
        let (reason, message) = match (&computed.sync_error, allowed) {
            (Some(e), _) => ("SyncFailed", e.clone()),
            (None, true) => ("SufficientPods", String::new()),
            (None, false) => ("InsufficientPods", String::new()),
        };
        let old_condition = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionAllowed"))
            .cloned();
        let condition = match old_condition {
            Some(c) if c["reason"] == reason && c["message"] == message.as_str() => c,
            _ => json!({"type": "DisruptionAllowed", "status": if allowed {"True"} else {"False"}, "reason": reason,
                "message": message, "observedGeneration": pdb.generation, "lastTransitionTime": clock::format(now)}),
        };
        let status = json!({
            "observedGeneration": s.observed_generation, "disruptionsAllowed": s.disruptions_allowed,
            "currentHealthy": s.current_healthy, "desiredHealthy": s.desired_healthy, "expectedPods": s.expected_pods,
            "disruptedPods": disrupted_map, "conditions": [condition],
        });
        if obj.get("status") != Some(&status) {
            let mut next = (**obj).clone();
            next["status"] = status;
            writes.push(next);
        }
    }
    for w in writes {
        let _ = store.update(r::PDBS, w, Part::Status, false);
    }
    due
}

/// The pods of the namespace a budget may select, narrowed with the label index.
fn candidates<'a>(pdb: &Pdb, pods: &'a [Arc<Pod>], index: &HashMap<(&str, &str, &str), Vec<usize>>) -> Vec<&'a Pod> {
    let narrowest = pdb
        .selector
        .requirements
        .iter()
        .filter(|req| req.operator == Operator::In && req.values.len() == 1)
        .map(|req| {
            index
                .get(&(pdb.namespace.as_str(), req.key.as_str(), req.values[0].as_str()))
                .map_or(&[][..], Vec::as_slice)
        })
        .min_by_key(|v| v.len());
    match narrowest {
        Some(idx) => idx.iter().map(|&i| &*pods[i]).collect(),
        None => pods.iter().map(|p| &**p).collect(),
    }
}

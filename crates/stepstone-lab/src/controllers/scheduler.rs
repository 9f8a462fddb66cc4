//! The scheduler: binds pending pods of the default scheduler, highest priority and oldest
//! first, with the planner's `CapacityModel` (not a second implementation), and reports the
//! pods that fit nowhere with upstream's `0/N nodes are available: ...` condition and Event. A pod
//! whose claim is bound to a local volume may only go where that volume is
//! ([`volumes::volume_need`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use stepstone_core::capacity::{CapacityModel, Headroom, NodeIdx, PodSlot, Unschedulable};
use stepstone_core::inventory::Pod;
use stepstone_core::object_key::ObjectKey;
use stepstone_core::snapshot::{SnapshotOptions, parse_node, parse_pod};

use super::volumes::{self, VolumeNeed};
use super::{Controller, Pass, PodCache, Watch};
use crate::nodes;
use crate::resources as r;
use crate::store::{Part, Store};

/// The scheduler, remembering which pods it already reported unschedulable (no repeated events).
#[derive(Default)]
pub(super) struct Scheduler {
    /// Pod key -> the message it was last reported unschedulable with.
    unschedulable: HashMap<ObjectKey, String>,
}

impl Controller for Scheduler {
    fn name(&self) -> &'static str {
        "default-scheduler"
    }

    fn watches(&self) -> Watch {
        Watch::Changes(super::WORKLOADS)
    }

    fn reconcile(&mut self, pass: &mut Pass<'_>) -> Option<Timestamp> {
        self.schedule(pass.store, pass.pods, pass.now);
        None
    }
}

impl Scheduler {
    fn schedule(&mut self, store: &mut Store, cache: &mut PodCache, now: Timestamp) {
        let pending: Vec<Arc<Value>> = store
            .pods()
            .filter(|(_, f)| f.node.is_empty() && !f.deleting && &*f.phase == "Pending" && f.default_scheduler)
            .map(|(stored, _)| stored.value())
            .collect();
        if pending.is_empty() {
            self.unschedulable.clear();
            return;
        }
        cache.refresh(store);
        let mut model = scheduler_model(store, cache);
        let mut queue: Vec<(Arc<Value>, Pod)> =
            pending.into_iter().filter_map(|o| parse_pod(&o).ok().map(|p| (o, p))).collect();
        queue.sort_by(|a, b| {
            b.1.priority.cmp(&a.1.priority).then(a.1.created.cmp(&b.1.created)).then(a.1.name.cmp(&b.1.name))
        });
        for (obj, pod) in queue {
            let placed = match volumes::volume_need(store, &obj) {
                VolumeNeed::Anywhere => pick(&mut model, &pod, None),
                VolumeNeed::Nodes(reach) => pick(&mut model, &pod, Some(&reach)),
                VolumeNeed::Unbound => Err(format!(
                    "0/{} nodes are available: pod has unbound immediate PersistentVolumeClaims.",
                    model.node_count()
                )),
            };
            match placed {
                Ok((slot, target)) => {
                    let node = model.node_name(target).to_string();
                    let mut next = (*obj).clone();
                    next["spec"]["nodeName"] = json!(node);
                    nodes::set_pod_condition(&mut next, "PodScheduled", true, now);
                    if let Ok(bound) = store.update(r::PODS, next, Part::All, false) {
                        model.bind(slot, target);
                        self.unschedulable.remove(&pod.key());
                        nodes::record_event(
                            store,
                            now,
                            &bound,
                            "Normal",
                            "Scheduled",
                            &format!("Successfully assigned {}/{} to {node}", pod.namespace, pod.name),
                            "default-scheduler",
                        );
                    }
                }
                Err(message) => {
                    if self.unschedulable.get(&pod.key()) == Some(&message) {
                        continue;
                    }
                    let mut next = (*obj).clone();
                    nodes::set_pod_condition(&mut next, "PodScheduled", false, now);
                    if let Some(cs) = next.pointer_mut("/status/conditions").and_then(Value::as_array_mut)
                        && let Some(c) = cs.iter_mut().find(|c| c["type"] == "PodScheduled")
                    {
                        c["reason"] = json!("Unschedulable");
                        c["message"] = json!(message);
                    }
                    nodes::update_pod_and_warn(store, next, now, "FailedScheduling", &message, "default-scheduler");
                    self.unschedulable.insert(pod.key(), message);
                }
            }
        }
    }
}

/// The scheduler's view: every node and every bound, unfinished pod, in the planner's
/// capacity model with no headroom beyond allocatable (what kube-scheduler enforces).
fn scheduler_model(store: &Store, cache: &PodCache) -> CapacityModel {
    let opts = SnapshotOptions::default();
    let node_list: Vec<_> = store.iter(r::NODES, None, None).filter_map(|n| parse_node(&n, &opts).ok()).collect();
    let pods: Vec<Pod> =
        cache.pods.values().filter(|(_, p)| p.node_name.is_some()).map(|(_, p)| (**p).clone()).collect();
    CapacityModel::new(&node_list, &pods, Headroom::none())
}

/// The one place the scheduling decision is made: the planner's capacity model, restricted to
/// `within` when the pod's volumes can only be reached from those nodes.
fn pick(model: &mut CapacityModel, pod: &Pod, within: Option<&BTreeSet<String>>) -> Result<(PodSlot, NodeIdx), String> {
    let slot = model.slot(pod);
    model.pick(slot, within).map(|node| (slot, node)).ok_or_else(|| explain(&model.explain(pod, within)))
}

/// Upstream's `FailedScheduling` message.
fn explain(u: &Unschedulable) -> String {
    let reasons: Vec<String> = u.reasons.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
    format!("0/{} nodes are available: {}.", u.nodes, reasons.join(", "))
}

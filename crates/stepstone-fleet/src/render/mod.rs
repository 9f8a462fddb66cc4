//! Rendering a placed fleet as the objects `kubectl get … -o json` prints, in its order (nodes,
//! pods, PDBs, Deployments, ReplicaSets, StatefulSets, DaemonSets, PersistentVolumeClaims,
//! PersistentVolumes; each sorted by namespace and name) and with its alphabetical key order.

mod node;
mod pod;
mod volume;
mod workload;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::app::Controller;
use crate::placement::PlacedFleet;

pub(crate) fn ts(seconds: i64) -> String {
    Timestamp::from_second(seconds).expect("timestamp in range").to_string()
}

pub(crate) fn cpu_text(millis: u64) -> String {
    stepstone_core::quantity::format_cpu(millis)
}

pub(crate) fn mem_text(bytes: u64) -> String {
    stepstone_core::quantity::format_bytes(bytes)
}

/// An object from owned values: `json!` would deep-copy every interpolated `Value`.
pub(crate) fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Map::with_capacity(N);
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

/// kubectl prints keys in alphabetical order; objects filled field by field are sorted here.
pub(crate) fn sort_keys(v: &mut Value) {
    if let Value::Object(m) = v {
        m.sort_keys();
    }
}

pub(crate) fn labels_value(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// The pod spec fields that steer scheduling, shared by pods and the pod templates of their
/// controllers: priority class, host network, node selector.
pub(crate) fn scheduling_fields(spec: &mut Value, app: &crate::app::App) {
    if let Some((class, _)) = app.priority_class {
        spec["priorityClassName"] = json!(class);
    }
    if app.host_network {
        spec["hostNetwork"] = json!(true);
    }
    if !app.node_selector.is_empty() {
        spec["nodeSelector"] = labels_value(&app.node_selector);
    }
}

pub(crate) fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": api_version, "blockOwnerDeletion": true, "controller": true, "kind": kind, "name": name, "uid": uid}])
}

impl PlacedFleet<'_> {
    pub(crate) fn render(mut self, sink: &mut impl FnMut(Value)) {
        let mut rv: u64 = 4_000_000 + self.rng.below(1_000_000);
        let mut next_rv = move || {
            rv += 1 + (rv % 7);
            rv.to_string()
        };
        // Nodes, sorted by name.
        let mut node_order: Vec<usize> = (0..self.nodes.len()).collect();
        node_order.sort_by(|a, b| self.nodes[*a].name.cmp(&self.nodes[*b].name));
        for node_index in node_order {
            let mut v = self.node_json(node_index, next_rv());
            v.sort_all_objects();
            sink(v);
        }
        // Pods, sorted by namespace and name.
        let mut pod_order: Vec<usize> = (0..self.pods.len()).collect();
        pod_order.sort_by(|a, b| {
            let (pa, pb) = (&self.pods[*a], &self.pods[*b]);
            (&self.apps[pa.app_index].namespace, &pa.name).cmp(&(&self.apps[pb.app_index].namespace, &pb.name))
        });
        // Per app: how many pods exist and how many are Ready (for statuses).
        let mut counts = vec![(0i64, 0i64); self.apps.len()];
        for p in &self.pods {
            counts[p.app_index].0 += 1;
            if p.node.is_some() {
                counts[p.app_index].1 += 1;
            }
        }
        for pod_index in pod_order {
            // Pods are most of a large fleet: `pod_json` sorts the few maps it fills out of order
            // instead of walking every object.
            sink(self.pod_json(pod_index, next_rv()));
        }
        let mut app_order: Vec<usize> = (0..self.apps.len()).collect();
        app_order.sort_by(|a, b| {
            (&self.apps[*a].namespace, &self.apps[*a].name).cmp(&(&self.apps[*b].namespace, &self.apps[*b].name))
        });
        let mut pdb_order: Vec<usize> = app_order.iter().copied().filter(|a| self.apps[*a].pdb.is_some()).collect();
        pdb_order.sort_by(|a, b| {
            let name = |i: usize| self.apps[i].pdb.as_ref().map(|p| p.name.clone()).unwrap_or_default();
            (&self.apps[*a].namespace, name(*a)).cmp(&(&self.apps[*b].namespace, name(*b)))
        });
        for app_index in pdb_order {
            let mut v = self.pdb_json(app_index, counts[app_index], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        for app_index in app_order.iter().copied().filter(|a| self.apps[*a].controller == Controller::Deployment) {
            let mut v = self.deployment_json(app_index, counts[app_index], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        let mut rs_order: Vec<usize> =
            app_order.iter().copied().filter(|a| self.apps[*a].controller == Controller::Deployment).collect();
        rs_order.sort_by(|a, b| {
            (&self.apps[*a].namespace, self.apps[*a].rs_name())
                .cmp(&(&self.apps[*b].namespace, self.apps[*b].rs_name()))
        });
        for app_index in rs_order {
            let mut v = self.replicaset_json(app_index, counts[app_index], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        for app_index in app_order.iter().copied().filter(|a| self.apps[*a].controller == Controller::StatefulSet) {
            let mut v = self.statefulset_json(app_index, counts[app_index], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        for app_index in app_order.iter().copied().filter(|a| self.apps[*a].controller == Controller::DaemonSet) {
            let mut v = self.daemonset_json(app_index, counts[app_index], next_rv());
            v.sort_all_objects();
            sink(v);
        }
        let claims = self.claims();
        for claim in &claims {
            sink(self.claim_json(claim, next_rv()));
        }
        let mut volumes: Vec<Value> = claims.iter().filter_map(|c| self.volume_json(c, next_rv())).collect();
        volumes.sort_by(|a, b| a["metadata"]["name"].as_str().cmp(&b["metadata"]["name"].as_str()));
        for v in volumes {
            sink(v);
        }
    }
}

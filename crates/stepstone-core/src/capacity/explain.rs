//! Why no node takes a pod: the slow path, taken only on failure, that walks every node and
//! counts the reasons the way kube-scheduler's `0/N nodes are available` message does.

use std::collections::{BTreeMap, BTreeSet};

use super::CapacityModel;
use super::class::static_reason;
use super::headroom::{HeadroomResource, Overflow, Unschedulable, percent_ceil};
use crate::inventory::Pod;

impl CapacityModel {
    /// Why no node takes `pod` (considering only the nodes in `within`, when given, as
    /// [`pick`](Self::pick) does), counted per reason the way kube-scheduler's message does.
    pub fn explain(&self, pod: &Pod, within: Option<&BTreeSet<String>>) -> Unschedulable {
        let namespace = self.ns_ids.get(pod.namespace.as_str()).copied();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut closest: Option<(u32, u64, Overflow)> = None;
        let r = &pod.requests;
        for n in &self.nodes {
            if n.unschedulable {
                *counts.entry("node(s) were unschedulable".to_string()).or_default() += 1;
                continue;
            }
            if let Some(reason) = static_reason(n, pod) {
                *counts.entry(reason).or_default() += 1;
                continue;
            }
            let mut short = Vec::new();
            let mut over_headroom = Vec::new();
            let cpu_after = n.requested.cpu_millis.saturating_add(r.cpu_millis);
            let mem_after = n.requested.memory_bytes.saturating_add(r.memory_bytes);
            if r.cpu_millis > 0 && cpu_after > n.allocatable.cpu_millis {
                short.push("Insufficient cpu".to_string());
            } else if r.cpu_millis > 0 && cpu_after > n.cpu_limit {
                over_headroom.push((HeadroomResource::Cpu, percent_ceil(cpu_after, n.allocatable.cpu_millis)));
            }
            if r.memory_bytes > 0 && mem_after > n.allocatable.memory_bytes {
                short.push("Insufficient memory".to_string());
            } else if r.memory_bytes > 0 && mem_after > n.memory_limit {
                over_headroom.push((HeadroomResource::Memory, percent_ceil(mem_after, n.allocatable.memory_bytes)));
            }
            if n.requested.pods.saturating_add(1) > n.allocatable.pods {
                short.push("Too many pods".to_string());
            }
            if r.ephemeral_storage_bytes > 0
                && n.requested.ephemeral_storage_bytes.saturating_add(r.ephemeral_storage_bytes)
                    > n.allocatable.ephemeral_storage_bytes
            {
                short.push("Insufficient ephemeral-storage".to_string());
            }
            if !short.is_empty() {
                for s in short {
                    *counts.entry(s).or_default() += 1;
                }
                continue;
            }
            if within.is_some_and(|v| !v.contains(&n.name)) {
                *counts.entry("node(s) had volume node affinity conflict".to_string()).or_default() += 1;
                continue;
            }
            if let Some(reason) = self.anti_affinity_reason(n, namespace, &pod.anti_affinity_hostname, &pod.labels) {
                *counts.entry(reason.to_string()).or_default() += 1;
                continue;
            }
            if !over_headroom.is_empty() {
                let label = format!(
                    "node(s) would go above the {}% headroom on {}",
                    self.headroom.as_percent(),
                    over_headroom.iter().map(|(res, _)| res.to_string()).collect::<Vec<_>>().join(" and ")
                );
                *counts.entry(label).or_default() += 1;
                let (resource, percent_after) =
                    over_headroom.iter().copied().max_by_key(|(_, p)| *p).expect("not empty");
                let candidate = (percent_after, n.score());
                if closest.as_ref().is_none_or(|(p, s, _)| candidate < (*p, *s)) {
                    closest = Some((
                        percent_after,
                        n.score(),
                        Overflow {
                            node: n.name.clone(),
                            resource,
                            percent_after,
                            headroom_percent: self.headroom.as_percent(),
                        },
                    ));
                }
                continue;
            }
            // Every filter passed: only possible if the caller asks about a pod that fits,
            // which `pick` never does. Count it honestly anyway.
            *counts.entry("node(s) fit".to_string()).or_default() += 1;
        }
        let mut reasons: Vec<(String, usize)> = counts.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Unschedulable { pod: pod.key(), nodes: self.nodes.len(), reasons, closest: closest.map(|(_, _, o)| o) }
    }
}

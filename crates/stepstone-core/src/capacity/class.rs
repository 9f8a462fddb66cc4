//! The static part of kube-scheduler's filters (node selector, required node affinity, taints),
//! computed once per distinct set of scheduling constraints and shared by every pod that has it.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::{NODE_NAME_FIELD, SimNode};
use crate::fasthash::FastHasher;
use crate::inventory::{Pod, Toleration};
use crate::selector::{Operator, Selector};

/// The static part of the filters for one distinct set of scheduling constraints.
pub(super) struct Class {
    pub(super) key: ClassKey,
    /// Per node: selector, affinity and taints allow it (empty when `few` is set).
    pub(super) feasible: Vec<bool>,
    /// When few nodes are feasible, their indices: scanning them beats walking the global order.
    pub(super) few: Option<Vec<u32>>,
}

/// A pod's scheduling constraints, as the class cache key.
#[derive(PartialEq, Eq, Default)]
pub(super) struct ClassKey {
    pub(super) node_selector: BTreeMap<String, String>,
    pub(super) node_affinity: Vec<Selector>,
    pub(super) tolerations: Vec<Toleration>,
}

impl Class {
    /// Selector, affinity and taints allow node `i`.
    pub(super) fn admits(&self, i: u32) -> bool {
        match &self.few {
            Some(few) => few.contains(&i),
            None => self.feasible[i as usize],
        }
    }
}

impl ClassKey {
    pub(super) fn matches(&self, pod: &Pod) -> bool {
        self.node_selector == pod.node_selector
            && self.node_affinity == pod.node_affinity
            && self.tolerations == pod.tolerations
    }
}

pub(super) fn class_hash(pod: &Pod) -> u64 {
    let mut h = FastHasher::default();
    pod.node_selector.hash(&mut h);
    pod.node_affinity.len().hash(&mut h);
    for term in &pod.node_affinity {
        term.requirements.len().hash(&mut h);
        for r in &term.requirements {
            r.key.hash(&mut h);
            operator_code(&r.operator).hash(&mut h);
            r.values.hash(&mut h);
        }
    }
    pod.tolerations.len().hash(&mut h);
    for t in &pod.tolerations {
        t.key.hash(&mut h);
        t.operator.hash(&mut h);
        t.value.hash(&mut h);
        t.effect.hash(&mut h);
    }
    h.finish()
}

fn operator_code(op: &Operator) -> u8 {
    match op {
        Operator::In => 0,
        Operator::NotIn => 1,
        Operator::Exists => 2,
        Operator::DoesNotExist => 3,
        Operator::Gt => 4,
        Operator::Lt => 5,
    }
}

pub(super) fn is_plain(pod: &Pod) -> bool {
    pod.node_selector.is_empty() && pod.node_affinity.is_empty() && pod.tolerations.is_empty()
}

/// Selector, affinity and taints allow the node (allocation-free: run once per node and class).
pub(super) fn static_ok(node: &SimNode, pod: &Pod) -> bool {
    pod.node_selector.iter().all(|(k, v)| node.match_labels.get(k) == Some(v))
        && (pod.node_affinity.is_empty() || pod.node_affinity.iter().any(|t| t.matches(&node.match_labels)))
        && node.taints.iter().all(|taint| pod.tolerations.iter().any(|t| t.tolerates(taint)))
}

/// The node names a pod's affinity pins it to, when every term names nodes (`matchFields`
/// on `metadata.name`, as DaemonSet pods carry): only those nodes need a look.
pub(super) fn pinned_names(pod: &Pod) -> Option<Vec<&str>> {
    if pod.node_affinity.is_empty() {
        return None;
    }
    let mut names = Vec::new();
    for term in &pod.node_affinity {
        let r = term.requirements.iter().find(|r| r.key == NODE_NAME_FIELD && r.operator == Operator::In)?;
        names.extend(r.values.iter().map(String::as_str));
    }
    Some(names)
}

/// Why a node is statically out for a pod (selector, affinity, taints), kube-scheduler wording.
pub(super) fn static_reason(node: &SimNode, pod: &Pod) -> Option<String> {
    let selector_ok = pod.node_selector.iter().all(|(k, v)| node.match_labels.get(k) == Some(v));
    let affinity_ok = pod.node_affinity.is_empty() || pod.node_affinity.iter().any(|t| t.matches(&node.match_labels));
    if !selector_ok || !affinity_ok {
        return Some("node(s) didn't match Pod's node affinity/selector".to_string());
    }
    for taint in &node.taints {
        if !pod.tolerations.iter().any(|t| t.tolerates(taint)) {
            return Some(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            ));
        }
    }
    None
}

//! The capacity model: where would a pod land if the scheduler placed it now? Shared by the
//! planner (waves, blockers) and the lab's scheduler, so both place pods the same way.
//!
//! [`CapacityModel`] keeps, per node, the sum of the requests of the pods bound to it and answers
//! [`CapacityModel::pick`] the way kube-scheduler's filters would (node unschedulable, node
//! selector and required node affinity, taints with `NoSchedule`/`NoExecute`, requests against
//! allocatable, required pod anti-affinity on `kubernetes.io/hostname`), plus one rule the real
//! scheduler does not have: the *headroom*, a ceiling on the share of allocatable CPU and memory
//! requested on any node after the move. Among the nodes that fit, the least allocated wins
//! (mean of the CPU and memory shares requested), ties broken by node name, so placement is
//! deterministic.
//!
//! It is built for fleets of thousands of nodes: requests are summed per node once, schedulable
//! nodes are kept ordered by allocation, and the static part of the filters (selector, affinity,
//! taints) is computed once per distinct set of scheduling constraints. A pick is then a walk down
//! the ordered nodes until the first that fits, not a pass over every pod.
//!
//! One way in: nodes are addressed by [`NodeIdx`] (looked up once with [`CapacityModel::node`]),
//! pods by [`PodSlot`] (a handle from [`CapacityModel::slot`]); [`pick`](CapacityModel::pick),
//! [`bind`](CapacityModel::bind), [`unbind`](CapacityModel::unbind) and
//! [`set_unschedulable`](CapacityModel::set_unschedulable) take those, and
//! [`explain`](CapacityModel::explain) words a failed pick the way kube-scheduler does.

mod class;
mod explain;
mod headroom;

pub use headroom::{Headroom, HeadroomError, HeadroomResource, NodeUsage, Overflow, Unschedulable};

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use self::class::{Class, ClassKey, class_hash, is_plain, pinned_names, static_ok};
use self::headroom::ppm;
use crate::fasthash::{FastHasher, FastMap};
use crate::inventory::{Node, Pod, Taint};
use crate::quantity::Resources;
use crate::selector::Selector;

/// The label kube-scheduler's hostname topology uses; anti-affinity on it means "not on the same node".
pub const HOSTNAME_TOPOLOGY: &str = "kubernetes.io/hostname";

pub use crate::selector::NODE_NAME_FIELD;

/// A node's index in the model. Nodes are indexed in name order, so ties broken by index are
/// broken by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIdx(pub(crate) u32);

impl NodeIdx {
    /// Position in name order, for callers that keep per-node tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A pod's handle in the model: what the model remembers of the pod (requests, labels,
/// anti-affinity, scheduling constraints) and where it is bound. Handles stay valid for the
/// model's life, so a pod moved again and again (as the planner does) is looked up once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PodSlot(u32);

/// A node as the model sees it: what it offers, what is requested on it, and who is bound there.
struct SimNode {
    name: String,
    /// Labels plus `metadata.name`, for node affinity terms.
    match_labels: BTreeMap<String, String>,
    /// Only the taints that stop scheduling (`NoSchedule`, `NoExecute`).
    taints: Vec<Taint>,
    unschedulable: bool,
    allocatable: Resources,
    /// Allocatable CPU and memory scaled down to the headroom.
    cpu_limit: u64,
    memory_limit: u64,
    requested: Resources,
    /// Slab indices of the pods bound here.
    pods: Vec<u32>,
    /// The subset of `pods` that carries hostname anti-affinity terms.
    anti_pods: Vec<u32>,
}

impl SimNode {
    fn score(&self) -> u64 {
        (ppm(self.requested.cpu_millis, self.allocatable.cpu_millis)
            + ppm(self.requested.memory_bytes, self.allocatable.memory_bytes))
            / 2
    }
}

/// What the model remembers of a pod. Slots outlive a binding, so a pod moved again and again
/// (as the planner does) is not copied again and again.
struct SimPod {
    /// Index into `CapacityModel::namespaces`.
    namespace: u32,
    /// Shared between pods with the same labels (the replicas of one ReplicaSet).
    labels: Arc<BTreeMap<String, String>>,
    anti_affinity: Vec<Selector>,
    requests: Resources,
    /// The node it is bound to, or [`NOWHERE`].
    node: u32,
    class: Arc<Class>,
}

/// Where a pod would fit, given the nodes and the pods bound to them. See the module docs.
pub struct CapacityModel {
    headroom: Headroom,
    nodes: Vec<SimNode>,
    by_name: FastMap<String, u32>,
    /// Schedulable nodes ordered by (allocation score, name order).
    order: BTreeSet<(u64, u32)>,
    slots: Vec<SimPod>,
    /// Namespace names; a namespace's index is its id in `ns_ids` and `keys`.
    namespaces: Vec<String>,
    ns_ids: FastMap<String, u32>,
    /// Per namespace id: pod name -> slot.
    keys: Vec<FastMap<String, u32>>,
    /// Distinct label sets, by hash.
    label_sets: FastMap<u64, Vec<Arc<BTreeMap<String, String>>>>,
    bound: usize,
    plain: Arc<Class>,
    classes: Mutex<FastMap<u64, Vec<Arc<Class>>>>,
}

impl std::fmt::Debug for CapacityModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapacityModel")
            .field("headroom", &self.headroom)
            .field("nodes", &self.nodes.len())
            .field("pods", &self.bound)
            .finish()
    }
}

impl Clone for CapacityModel {
    fn clone(&self) -> Self {
        CapacityModel {
            headroom: self.headroom,
            nodes: self
                .nodes
                .iter()
                .map(|n| SimNode {
                    name: n.name.clone(),
                    match_labels: n.match_labels.clone(),
                    taints: n.taints.clone(),
                    unschedulable: n.unschedulable,
                    allocatable: n.allocatable,
                    cpu_limit: n.cpu_limit,
                    memory_limit: n.memory_limit,
                    requested: n.requested,
                    pods: n.pods.clone(),
                    anti_pods: n.anti_pods.clone(),
                })
                .collect(),
            by_name: self.by_name.clone(),
            order: self.order.clone(),
            slots: self
                .slots
                .iter()
                .map(|p| SimPod {
                    namespace: p.namespace,
                    labels: p.labels.clone(),
                    anti_affinity: p.anti_affinity.clone(),
                    requests: p.requests,
                    node: p.node,
                    class: p.class.clone(),
                })
                .collect(),
            namespaces: self.namespaces.clone(),
            ns_ids: self.ns_ids.clone(),
            keys: self.keys.clone(),
            label_sets: self.label_sets.clone(),
            bound: self.bound,
            plain: self.plain.clone(),
            classes: Mutex::new(self.classes.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        }
    }
}

/// Node index meaning "not bound".
const NOWHERE: u32 = u32::MAX;

impl CapacityModel {
    /// A model of `nodes` with every unfinished pod that has a `node_name` counted against its
    /// node. Pods naming a node that is not in `nodes` are ignored.
    pub fn new(nodes: &[Node], pods: &[Pod], headroom: Headroom) -> Self {
        Self::with_placement(nodes, pods, headroom).0
    }

    /// [`Self::new`], and for each of `pods` (same order) the node it is counted against and
    /// its handle: `None` for a finished pod or one naming no node of the model. Callers that
    /// keep per-pod tables need no lookup by name afterwards.
    pub fn with_placement(nodes: &[Node], pods: &[Pod], headroom: Headroom) -> (Self, Vec<Option<(NodeIdx, PodSlot)>>) {
        let mut sorted: Vec<&Node> = nodes.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        sorted.dedup_by(|a, b| a.name == b.name);
        let sim_nodes: Vec<SimNode> = sorted
            .iter()
            .map(|n| {
                let mut match_labels = n.labels.clone();
                match_labels.insert(NODE_NAME_FIELD.to_string(), n.name.clone());
                SimNode {
                    name: n.name.clone(),
                    match_labels,
                    taints: n
                        .taints
                        .iter()
                        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                        .cloned()
                        .collect(),
                    unschedulable: n.unschedulable,
                    allocatable: n.allocatable,
                    cpu_limit: headroom.limit(n.allocatable.cpu_millis),
                    memory_limit: headroom.limit(n.allocatable.memory_bytes),
                    requested: Resources::default(),
                    pods: Vec::new(),
                    anti_pods: Vec::new(),
                }
            })
            .collect();
        let by_name = sim_nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i as u32)).collect();
        let plain = Arc::new(Class {
            key: ClassKey::default(),
            feasible: sim_nodes.iter().map(|n| n.taints.is_empty()).collect(),
            few: None,
        });
        let mut model = CapacityModel {
            headroom,
            nodes: sim_nodes,
            by_name,
            order: BTreeSet::new(),
            slots: Vec::with_capacity(pods.len()),
            namespaces: Vec::new(),
            ns_ids: FastMap::default(),
            keys: Vec::new(),
            label_sets: FastMap::default(),
            bound: 0,
            plain,
            classes: Mutex::new(FastMap::default()),
        };
        let mut placement = Vec::with_capacity(pods.len());
        for pod in pods {
            let mut placed = None;
            if !pod.phase.is_finished()
                && let Some(node) = pod.node_name.as_deref()
                && let Some(&idx) = model.by_name.get(node)
            {
                placed = Some((NodeIdx(idx), PodSlot(model.attach(pod, idx))));
            }
            placement.push(placed);
        }
        for (i, n) in model.nodes.iter().enumerate() {
            if !n.unschedulable {
                model.order.insert((n.score(), i as u32));
            }
        }
        (model, placement)
    }

    pub fn headroom(&self) -> Headroom {
        self.headroom
    }

    /// Every node with its name, in name order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeIdx, &str)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeIdx(i as u32), n.name.as_str()))
    }

    /// The index of the node called `name`, if the model has it.
    pub fn node(&self, name: &str) -> Option<NodeIdx> {
        self.by_name.get(name).map(|&i| NodeIdx(i))
    }

    pub fn node_name(&self, node: NodeIdx) -> &str {
        &self.nodes[node.index()].name
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Pods counted against some node.
    pub fn bound_count(&self) -> usize {
        self.bound
    }

    fn slot_of(&self, pod: &Pod) -> Option<u32> {
        let ns = *self.ns_ids.get(pod.namespace.as_str())?;
        self.keys[ns as usize].get(pod.name.as_str()).copied()
    }

    /// How allocated a node is now.
    pub fn usage(&self, node: NodeIdx) -> NodeUsage {
        let n = &self.nodes[node.index()];
        NodeUsage { allocatable: n.allocatable, requested: n.requested, unschedulable: n.unschedulable }
    }

    /// The handle of `pod`, created or refreshed from it (its binding is left alone). The pod
    /// must not change while its handle is used without calling `slot` again.
    pub fn slot(&mut self, pod: &Pod) -> PodSlot {
        PodSlot(self.ensure_slot(pod))
    }

    /// The handle of a pod the model already knows (no refresh from the pod).
    pub fn existing_slot(&self, pod: &Pod) -> Option<PodSlot> {
        self.slot_of(pod).map(PodSlot)
    }

    /// The node a pod is bound to in the model.
    pub fn node_of(&self, slot: PodSlot) -> Option<NodeIdx> {
        let n = self.slots[slot.0 as usize].node;
        (n != NOWHERE).then_some(NodeIdx(n))
    }

    /// The node the scheduler would choose for the pod, or `None` when no node takes it (ask
    /// [`explain`](Self::explain) why). The pod's current binding, if any, is not taken into
    /// account: unbind it first to model a move.
    ///
    /// `within`, when given, are the only nodes the pod's bound volumes can be reached from (a
    /// local PersistentVolume's node affinity): kube-scheduler's VolumeBinding filter.
    pub fn pick(&self, slot: PodSlot, within: Option<&BTreeSet<String>>) -> Option<NodeIdx> {
        let s = slot.0;
        let class = &self.slots[s as usize].class;
        let found = match within {
            None => self.pick_in(class, s),
            Some(names) => names
                .iter()
                .filter_map(|n| self.by_name.get(n.as_str()).copied())
                .filter(|&i| class.admits(i) && self.dynamic_fit(i, s))
                .min_by_key(|&i| (self.nodes[i as usize].score(), i)),
        };
        found.map(NodeIdx)
    }

    fn pick_in(&self, class: &Class, s: u32) -> Option<u32> {
        if let Some(few) = &class.few {
            return few
                .iter()
                .copied()
                .filter(|&i| self.dynamic_fit(i, s))
                .min_by_key(|&i| (self.nodes[i as usize].score(), i));
        }
        self.order.iter().map(|&(_, i)| i).find(|&i| class.feasible[i as usize] && self.dynamic_fit(i, s))
    }

    /// Count the pod against `node`, moving it if it was bound elsewhere.
    pub fn bind(&mut self, slot: PodSlot, node: NodeIdx) {
        self.unbind(slot);
        self.reorder(node.0, |m| m.attach_slot(slot.0, node.0));
    }

    /// Stop counting the pod (deleted, evicted, finished, or about to move).
    pub fn unbind(&mut self, slot: PodSlot) {
        let node = self.slots[slot.0 as usize].node;
        if node != NOWHERE {
            self.reorder(node, |m| m.detach(slot.0));
        }
    }

    /// Cordon (`true`) or uncordon a node.
    pub fn set_unschedulable(&mut self, node: NodeIdx, unschedulable: bool) {
        let idx = node.0;
        let n = &mut self.nodes[idx as usize];
        if n.unschedulable == unschedulable {
            return;
        }
        n.unschedulable = unschedulable;
        let key = (n.score(), idx);
        if unschedulable {
            self.order.remove(&key);
        } else {
            self.order.insert(key);
        }
    }

    /// Change a node's bookkeeping while keeping `order` consistent.
    fn reorder(&mut self, idx: u32, change: impl FnOnce(&mut Self)) {
        let n = &self.nodes[idx as usize];
        let listed = !n.unschedulable;
        if listed {
            self.order.remove(&(n.score(), idx));
        }
        change(self);
        let n = &self.nodes[idx as usize];
        if listed {
            self.order.insert((n.score(), idx));
        }
    }

    /// The slot remembering `pod`, created or refreshed from it. Its binding is left alone.
    fn ensure_slot(&mut self, pod: &Pod) -> u32 {
        match self.slot_of(pod) {
            Some(s) => {
                let class = if self.slots[s as usize].class.key.matches(pod) { None } else { Some(self.class_of(pod)) };
                if *self.slots[s as usize].labels != pod.labels {
                    let labels = self.intern_labels(&pod.labels);
                    self.slots[s as usize].labels = labels;
                }
                let p = &mut self.slots[s as usize];
                if p.anti_affinity != pod.anti_affinity_hostname {
                    p.anti_affinity = pod.anti_affinity_hostname.clone();
                }
                if let Some(c) = class {
                    p.class = c;
                }
                if p.requests != pod.requests && p.node != NOWHERE {
                    // Requests changed while bound: re-count them on the node.
                    let idx = p.node;
                    self.reorder(idx, |m| m.detach(s));
                    self.slots[s as usize].requests = pod.requests;
                    self.reorder(idx, |m| m.attach_slot(s, idx));
                } else {
                    self.slots[s as usize].requests = pod.requests;
                }
                s
            }
            None => {
                let class = self.class_of(pod);
                let namespace = self.namespace_id(&pod.namespace);
                let labels = self.intern_labels(&pod.labels);
                self.slots.push(SimPod {
                    namespace,
                    labels,
                    anti_affinity: pod.anti_affinity_hostname.clone(),
                    requests: pod.requests,
                    node: NOWHERE,
                    class,
                });
                let s = (self.slots.len() - 1) as u32;
                self.keys[namespace as usize].insert(pod.name.clone(), s);
                s
            }
        }
    }

    fn namespace_id(&mut self, namespace: &str) -> u32 {
        if let Some(&id) = self.ns_ids.get(namespace) {
            return id;
        }
        let id = self.namespaces.len() as u32;
        self.namespaces.push(namespace.to_string());
        self.ns_ids.insert(namespace.to_string(), id);
        self.keys.push(FastMap::default());
        id
    }

    fn intern_labels(&mut self, labels: &BTreeMap<String, String>) -> Arc<BTreeMap<String, String>> {
        let mut h = FastHasher::default();
        labels.hash(&mut h);
        let bucket = self.label_sets.entry(h.finish()).or_default();
        if let Some(found) = bucket.iter().find(|l| ***l == *labels) {
            return found.clone();
        }
        let new = Arc::new(labels.clone());
        bucket.push(new.clone());
        new
    }

    /// Bind a pod that is not bound to anything (callers unbind first); its slot.
    fn attach(&mut self, pod: &Pod, idx: u32) -> u32 {
        let slot = self.ensure_slot(pod);
        if self.slots[slot as usize].node != NOWHERE {
            // The same key twice in the input (duplicate pods): the later one wins.
            let old = self.slots[slot as usize].node;
            self.reorder(old, |m| m.detach(slot));
        }
        self.attach_slot(slot, idx);
        slot
    }

    fn attach_slot(&mut self, slot: u32, idx: u32) {
        let p = &mut self.slots[slot as usize];
        p.node = idx;
        let (requests, anti) = (p.requests, !p.anti_affinity.is_empty());
        self.bound += 1;
        let n = &mut self.nodes[idx as usize];
        n.requested = n.requested.saturating_add(requests);
        n.pods.push(slot);
        if anti {
            n.anti_pods.push(slot);
        }
    }

    fn detach(&mut self, slot: u32) {
        let p = &mut self.slots[slot as usize];
        let idx = p.node;
        p.node = NOWHERE;
        let requests = p.requests;
        self.bound -= 1;
        let n = &mut self.nodes[idx as usize];
        n.requested = n.requested.saturating_sub(requests);
        if let Some(pos) = n.pods.iter().rposition(|&s| s == slot) {
            n.pods.swap_remove(pos);
        }
        if let Some(pos) = n.anti_pods.iter().rposition(|&s| s == slot) {
            n.anti_pods.swap_remove(pos);
        }
    }

    fn class_of(&self, pod: &Pod) -> Arc<Class> {
        if is_plain(pod) {
            return self.plain.clone();
        }
        let hash = class_hash(pod);
        let mut classes = self.classes.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = classes.entry(hash).or_default();
        if let Some(c) = bucket.iter().find(|c| c.key.matches(pod)) {
            return c.clone();
        }
        let (feasible, few) = match pinned_names(pod) {
            Some(names) => {
                let mut few: Vec<u32> = names
                    .iter()
                    .filter_map(|n| self.by_name.get(*n).copied())
                    .filter(|&i| static_ok(&self.nodes[i as usize], pod))
                    .collect();
                few.sort_unstable();
                few.dedup();
                (Vec::new(), Some(few))
            }
            None => {
                let feasible: Vec<bool> = self.nodes.iter().map(|n| static_ok(n, pod)).collect();
                let count = feasible.iter().filter(|f| **f).count();
                // Below one node in sixteen, walking the global order would mostly skip: scan instead.
                if count * 16 < self.nodes.len() {
                    let few = feasible.iter().enumerate().filter(|(_, f)| **f).map(|(i, _)| i as u32).collect();
                    (Vec::new(), Some(few))
                } else {
                    (feasible, None)
                }
            }
        };
        let class = Arc::new(Class {
            key: ClassKey {
                node_selector: pod.node_selector.clone(),
                node_affinity: pod.node_affinity.clone(),
                tolerations: pod.tolerations.clone(),
            },
            feasible,
            few,
        });
        bucket.push(class.clone());
        class
    }

    fn resources_fit(&self, n: &SimNode, r: &Resources) -> bool {
        // kube-scheduler only checks a resource the pod asks for; the pod slot always counts.
        (r.cpu_millis == 0 || n.requested.cpu_millis.saturating_add(r.cpu_millis) <= n.cpu_limit)
            && (r.memory_bytes == 0 || n.requested.memory_bytes.saturating_add(r.memory_bytes) <= n.memory_limit)
            && n.requested.pods.saturating_add(r.pods.max(1)) <= n.allocatable.pods
            && (r.ephemeral_storage_bytes == 0
                || n.requested.ephemeral_storage_bytes.saturating_add(r.ephemeral_storage_bytes)
                    <= n.allocatable.ephemeral_storage_bytes)
    }

    fn dynamic_fit(&self, i: u32, s: u32) -> bool {
        let n = &self.nodes[i as usize];
        let p = &self.slots[s as usize];
        !n.unschedulable
            && self.resources_fit(n, &p.requests)
            && self.anti_affinity_reason(n, Some(p.namespace), &p.anti_affinity, &p.labels).is_none()
    }

    /// Hostname anti-affinity between an incoming pod (its namespace id, if the model knows the
    /// namespace, its terms and its labels) and the pods bound to `n`, in both directions.
    fn anti_affinity_reason(
        &self,
        n: &SimNode,
        namespace: Option<u32>,
        terms: &[Selector],
        labels: &BTreeMap<String, String>,
    ) -> Option<&'static str> {
        // A namespace the model has never seen holds no pod to clash with.
        let ns = namespace?;
        if !terms.is_empty() {
            let clash = n.pods.iter().any(|&s| {
                let other = &self.slots[s as usize];
                other.namespace == ns && terms.iter().any(|t| t.matches(&other.labels))
            });
            if clash {
                return Some("node(s) didn't match pod anti-affinity rules");
            }
        }
        let existing = n.anti_pods.iter().any(|&s| {
            let other = &self.slots[s as usize];
            other.namespace == ns && other.anti_affinity.iter().any(|t| t.matches(labels))
        });
        existing.then_some("node(s) didn't satisfy existing pods anti-affinity rules")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{PodPhase, Toleration};
    use crate::version::KubeVersion;

    pub(crate) fn node(name: &str, cpu: u64, mem_gi: u64) -> Node {
        let alloc =
            Resources { cpu_millis: cpu, memory_bytes: mem_gi << 30, pods: 110, ephemeral_storage_bytes: 100 << 30 };
        Node {
            generation: "gen".to_string(),
            labels: BTreeMap::from([(HOSTNAME_TOPOLOGY.to_string(), name.to_string())]),
            ..Node::worker(name, KubeVersion::new(1, 32, 0), alloc)
        }
    }

    /// Pick for `p` and name the node, or explain why none takes it.
    fn place_within(
        m: &mut CapacityModel,
        p: &Pod,
        within: Option<&BTreeSet<String>>,
    ) -> Result<String, Unschedulable> {
        let slot = m.slot(p);
        m.pick(slot, within).map(|n| m.node_name(n).to_string()).ok_or_else(|| m.explain(p, within))
    }

    fn place(m: &mut CapacityModel, p: &Pod) -> Result<String, Unschedulable> {
        place_within(m, p, None)
    }

    fn bind(m: &mut CapacityModel, p: &Pod, node: &str) {
        let slot = m.slot(p);
        let node = m.node(node).expect("node in the model");
        m.bind(slot, node);
    }

    fn requested_cpu(m: &CapacityModel, node: &str) -> u64 {
        m.usage(m.node(node).expect("node in the model")).requested.cpu_millis
    }

    pub(crate) fn pod(ns: &str, name: &str, node: Option<&str>, cpu: u64, mem_mi: u64) -> Pod {
        Pod {
            node_name: node.map(String::from),
            labels: BTreeMap::from([("app".to_string(), name.split('-').next().unwrap_or(name).to_string())]),
            requests: Resources { cpu_millis: cpu, memory_bytes: mem_mi << 20, pods: 1, ephemeral_storage_bytes: 0 },
            ..Pod::running(ns, name)
        }
    }

    #[test]
    fn least_allocated_then_name() {
        let nodes = vec![node("b", 4000, 8), node("a", 4000, 8), node("c", 4000, 8)];
        let pods = vec![pod("x", "p1", Some("a"), 1000, 0)];
        let mut m = CapacityModel::new(&nodes, &pods, Headroom::none());
        // a is busier; b and c tie, b wins by name.
        assert_eq!(place(&mut m, &pod("x", "new", None, 100, 100)).unwrap(), "b");
    }

    #[test]
    fn volume_nodes_admit_only_their_node_and_name_the_conflict() {
        let nodes = vec![node("a", 4000, 8), node("b", 4000, 8), node("c", 4000, 8)];
        let mut m = CapacityModel::new(&nodes, &[], Headroom::none());
        let only_c = BTreeSet::from(["c".to_string()]);
        let p = pod("x", "db-0", None, 100, 100);
        assert_eq!(place_within(&mut m, &p, Some(&only_c)).unwrap(), "c");
        m.set_unschedulable(m.node("c").unwrap(), true);
        let err = place_within(&mut m, &p, Some(&only_c)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x/db-0: 0/3 nodes are available: 2 node(s) had volume node affinity conflict, 1 node(s) were unschedulable"
        );
        // A node the volume admits but that is full reports the shortage, not the conflict.
        m.set_unschedulable(m.node("c").unwrap(), false);
        let big = pod("x", "db-0", None, 4500, 100);
        let err = place_within(&mut m, &big, Some(&only_c)).unwrap_err();
        assert_eq!(err.reasons, vec![("Insufficient cpu".to_string(), 3)]);
    }

    #[test]
    fn counts_requests_and_honours_headroom() {
        let nodes = vec![node("a", 1000, 8)];
        let pods = vec![pod("x", "p1", Some("a"), 700, 0)];
        let mut m = CapacityModel::new(&nodes, &pods, Headroom::percent(85));
        let err = place(&mut m, &pod("x", "p2", None, 200, 0)).unwrap_err();
        assert_eq!(err.to_string(), "x/p2: 0/1 nodes are available: 1 node(s) would go above the 85% headroom on CPU");
        let closest = err.closest.unwrap();
        assert_eq!(closest.to_string(), "a at 90% CPU (headroom 85%)");
        assert_eq!(place(&mut m, &pod("x", "p3", None, 150, 0)).unwrap(), "a");
        let mut none = CapacityModel::new(&nodes, &pods, Headroom::none());
        assert_eq!(place(&mut none, &pod("x", "p2", None, 300, 0)).unwrap(), "a");
        let err = place(&mut none, &pod("x", "p2", None, 301, 0)).unwrap_err();
        assert_eq!(err.reasons, vec![("Insufficient cpu".to_string(), 1)]);
    }

    #[test]
    fn finished_and_foreign_pods_do_not_count() {
        let nodes = vec![node("a", 1000, 8)];
        let mut done = pod("x", "done", Some("a"), 900, 0);
        done.phase = PodPhase::Succeeded;
        let elsewhere = pod("x", "other", Some("zzz"), 900, 0);
        let m = CapacityModel::new(&nodes, &[done, elsewhere], Headroom::none());
        assert_eq!(requested_cpu(&m, "a"), 0);
    }

    #[test]
    fn bind_unbind_and_cordon() {
        let nodes = vec![node("a", 1000, 8), node("b", 1000, 8)];
        let mut m = CapacityModel::new(&nodes, &[], Headroom::none());
        let p = pod("x", "p", None, 600, 0);
        bind(&mut m, &p, "a");
        let at = m.existing_slot(&p).and_then(|s| m.node_of(s));
        assert_eq!(at.map(|n| m.node_name(n)), Some("a"));
        assert_eq!(place(&mut m, &pod("x", "q", None, 600, 0)).unwrap(), "b");
        m.set_unschedulable(m.node("b").unwrap(), true);
        let err = place(&mut m, &pod("x", "q", None, 600, 0)).unwrap_err();
        assert_eq!(err.to_string(), "x/q: 0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable");
        bind(&mut m, &p, "b"); // a move
        assert_eq!(requested_cpu(&m, "a"), 0);
        assert_eq!(requested_cpu(&m, "b"), 600);
        m.unbind(m.existing_slot(&p).unwrap());
        assert_eq!(requested_cpu(&m, "b"), 0);
        m.set_unschedulable(m.node("b").unwrap(), false);
        assert_eq!(place(&mut m, &pod("x", "q", None, 600, 0)).unwrap(), "a");
    }

    #[test]
    fn selector_affinity_and_name_field() {
        let mut a = node("a", 1000, 8);
        a.labels.insert("disk".into(), "ssd".into());
        let nodes = vec![a, node("b", 1000, 8), node("c", 1000, 8)];
        let mut m = CapacityModel::new(&nodes, &[], Headroom::none());
        let mut p = pod("x", "p", None, 100, 0);
        p.node_selector.insert("disk".into(), "ssd".into());
        assert_eq!(place(&mut m, &p).unwrap(), "a");
        let mut q = pod("x", "q", None, 100, 0);
        q.node_affinity = vec![Selector::parse("metadata.name in (c)").unwrap()];
        assert_eq!(place(&mut m, &q).unwrap(), "c");
        let mut r = pod("x", "r", None, 100, 0);
        r.node_selector.insert("disk".into(), "nvme".into());
        assert_eq!(
            place(&mut m, &r).unwrap_err().to_string(),
            "x/r: 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector"
        );
    }

    #[test]
    fn taints_and_tolerations() {
        let mut cp = node("cp", 8000, 8);
        cp.taints.push(Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            value: None,
            effect: "NoSchedule".into(),
        });
        let mut soft = node("soft", 1000, 8);
        soft.taints.push(Taint { key: "x".into(), value: None, effect: "PreferNoSchedule".into() });
        let mut m = CapacityModel::new(&[cp, soft], &[], Headroom::none());
        assert_eq!(
            place(&mut m, &pod("x", "p", None, 2000, 0)).unwrap_err().to_string(),
            "x/p: 0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
        );
        let mut tolerant = pod("x", "t", None, 2000, 0);
        tolerant.tolerations.push(Toleration {
            key: "node-role.kubernetes.io/control-plane".into(),
            operator: "Exists".into(),
            value: String::new(),
            effect: "NoSchedule".into(),
        });
        assert_eq!(place(&mut m, &tolerant).unwrap(), "cp");
    }

    #[test]
    fn anti_affinity_both_directions() {
        let nodes = vec![node("a", 4000, 8), node("b", 4000, 8)];
        let mut r1 = pod("db", "redis-0", Some("a"), 100, 0);
        r1.anti_affinity_hostname = vec![Selector::parse("app=redis").unwrap()];
        let mut m = CapacityModel::new(&nodes, &[r1.clone()], Headroom::none());
        // An incoming redis without terms is still kept off `a` by r1's rule.
        let plain = pod("db", "redis-1", None, 100, 0);
        assert_eq!(place(&mut m, &plain).unwrap(), "b");
        // Another namespace is not affected.
        assert_eq!(place(&mut m, &pod("other", "redis-1", None, 100, 0)).unwrap(), "b");
        let mut m2 = CapacityModel::new(&nodes, &[pod("db", "redis-0", Some("a"), 100, 0)], Headroom::none());
        let mut r2 = pod("db", "redis-1", None, 100, 0);
        r2.anti_affinity_hostname = vec![Selector::parse("app=redis").unwrap()];
        assert_eq!(place(&mut m2, &r2).unwrap(), "b");
        bind(&mut m2, &pod("db", "redis-2", None, 0, 0), "b");
        let err = place(&mut m2, &r2).unwrap_err();
        assert_eq!(err.reasons, vec![("node(s) didn't match pod anti-affinity rules".to_string(), 2)]);
    }

    #[test]
    fn few_feasible_nodes_scan_path() {
        let mut nodes: Vec<Node> = (0..40).map(|i| node(&format!("n{i:02}"), 1000, 8)).collect();
        nodes[7].labels.insert("gpu".into(), "yes".into());
        nodes[9].labels.insert("gpu".into(), "yes".into());
        let mut m = CapacityModel::new(&nodes, &[], Headroom::none());
        let mut p = pod("x", "g1", None, 600, 0);
        p.node_selector.insert("gpu".into(), "yes".into());
        assert_eq!(place(&mut m, &p).unwrap(), "n07");
        bind(&mut m, &p, "n07");
        let mut q = pod("x", "g2", None, 600, 0);
        q.node_selector.insert("gpu".into(), "yes".into());
        assert_eq!(place(&mut m, &q).unwrap(), "n09");
    }

    #[test]
    fn headroom_parse() {
        assert_eq!(Headroom::parse("85%").unwrap().as_percent(), 85);
        assert_eq!(Headroom::parse(" 90 ").unwrap().as_percent(), 90);
        assert!(Headroom::parse("0%").is_err());
        assert!(Headroom::parse("150%").is_err());
        assert!(Headroom::parse("most").is_err());
    }
}

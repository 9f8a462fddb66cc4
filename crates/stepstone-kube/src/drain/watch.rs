//! What the pod watches tell the drain: which evicted pods are gone, and whether each affected
//! controller has its Ready replicas back on nodes that are not being drained.
//!
//! Pure state: the engine feeds it pod observations from `kube::runtime::watcher` streams
//! (one per namespace that has pods to evict) and acts on the [`Progress`] it returns.

use std::collections::{BTreeMap, BTreeSet};

use stepstone_core::object_key::ObjectKey;

/// The facts the drain needs about one pod, taken from a watch event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodObservation {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    /// UID of the controller owner reference.
    pub owner_uid: Option<String>,
    pub ready: bool,
    pub terminating: bool,
}

impl PodObservation {
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(&self.namespace, &self.name)
    }
}

/// Something the drain waited for has happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Gone { node: String, pod: ObjectKey },
    ReplacementReady { nodes: Vec<String>, controller: String, ready: i64, target: i64 },
}

#[derive(Debug, Clone)]
struct Awaited {
    node: String,
    key: ObjectKey,
    namespace: String,
    /// The controller whose replacement goal waits for this pod to be gone.
    controller: Option<String>,
    gone: bool,
}

#[derive(Debug, Clone)]
struct Goal {
    /// `deploy/prod/redis` style label for messages.
    label: String,
    namespace: String,
    /// Ready replicas to get back; `None` until the namespace's first listing sets it.
    target: Option<i64>,
    nodes: BTreeSet<String>,
    reached: bool,
}

/// The drain's view of the pods it waits on.
#[derive(Debug, Default)]
pub struct WaitState {
    draining: BTreeSet<String>,
    /// Every pod seen in the watched namespaces, by UID.
    pods: BTreeMap<String, PodObservation>,
    /// Pods to be evicted, by UID.
    awaited: BTreeMap<String, Awaited>,
    /// Controllers whose replacements must be Ready, by controller UID.
    goals: BTreeMap<String, Goal>,
    /// Namespaces whose initial listing has arrived.
    listed: BTreeSet<String>,
}

impl WaitState {
    pub fn new(draining_nodes: impl IntoIterator<Item = String>) -> Self {
        WaitState { draining: draining_nodes.into_iter().collect(), ..Default::default() }
    }

    /// A pod the drain will remove. `controller` is `(uid, label)` when replacements are awaited.
    pub fn expect_removal(&mut self, node: &str, pod: &PodObservation, controller: Option<(&str, &str)>) {
        self.awaited.insert(
            pod.uid.clone(),
            Awaited {
                node: node.to_string(),
                key: pod.key(),
                namespace: pod.namespace.clone(),
                controller: controller.map(|(uid, _)| uid.to_string()),
                gone: false,
            },
        );
        if let Some((uid, label)) = controller {
            let goal = self.goals.entry(uid.to_string()).or_insert_with(|| Goal {
                label: label.to_string(),
                namespace: pod.namespace.clone(),
                target: None,
                nodes: BTreeSet::new(),
                reached: false,
            });
            goal.nodes.insert(node.to_string());
        }
    }

    /// The namespaces to watch.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.awaited.values().map(|a| a.namespace.clone()).collect()
    }

    /// True once every watched namespace has delivered its first full listing, so the baselines
    /// are known and evictions may start.
    pub fn ready_to_evict(&self) -> bool {
        self.namespaces().iter().all(|ns| self.listed.contains(ns))
    }

    /// A watch (re)listed a namespace: replace what we knew about it.
    pub fn relist(&mut self, namespace: &str, pods: Vec<PodObservation>) -> Vec<Progress> {
        self.pods.retain(|_, p| p.namespace != namespace);
        for p in pods {
            self.pods.insert(p.uid.clone(), p);
        }
        if self.listed.insert(namespace.to_string()) {
            // First listing: the Ready replicas each controller has now, on any node, is what
            // it must have again, away from the drained nodes, before the drain counts as done.
            let ready_by_owner = self.ready_by_owner(|_| true);
            for (uid, goal) in self.goals.iter_mut().filter(|(_, g)| g.namespace == namespace) {
                goal.target = Some(ready_by_owner.get(uid).copied().unwrap_or(0));
            }
        }
        self.progress()
    }

    pub fn apply(&mut self, pod: PodObservation) -> Vec<Progress> {
        self.pods.insert(pod.uid.clone(), pod);
        self.progress()
    }

    pub fn delete(&mut self, uid: &str) -> Vec<Progress> {
        self.pods.remove(uid);
        self.progress()
    }

    /// Mark an awaited pod as gone without a watch event (404 on eviction, UID mismatch).
    pub fn forget(&mut self, uid: &str) -> Vec<Progress> {
        if let Some(a) = self.awaited.get(uid)
            && !a.gone
        {
            self.pods.remove(uid);
        }
        self.progress()
    }

    /// Pods of `node` still present, as `ns/name`.
    pub fn remaining_on(&self, node: &str) -> Vec<ObjectKey> {
        self.awaited.values().filter(|a| a.node == node && !a.gone).map(|a| a.key.clone()).collect()
    }

    /// Controllers of `node` whose evicted pods are gone but whose replacements are not Ready
    /// yet: (label, ready, target). Controllers with pods still on the node are not listed:
    /// those pods are what holds the drain up.
    pub fn pending_replacements(&self, node: &str) -> Vec<(String, i64, i64)> {
        let ready = self.ready_by_owner(|p| !self.on_draining(p));
        let waiting_on_pods: BTreeSet<&str> =
            self.awaited.values().filter(|a| !a.gone).filter_map(|a| a.controller.as_deref()).collect();
        self.goals
            .iter()
            .filter(|(uid, g)| g.nodes.contains(node) && !g.reached && !waiting_on_pods.contains(uid.as_str()))
            .map(|(uid, g)| (g.label.clone(), ready.get(uid).copied().unwrap_or(0), g.target.unwrap_or(0)))
            .collect()
    }

    /// Every awaited pod of `node` is gone and every replacement goal touching it is met.
    pub fn node_done(&self, node: &str, wait_replacements: bool) -> bool {
        self.remaining_on(node).is_empty()
            && (!wait_replacements || self.goals.values().all(|g| g.reached || !g.nodes.contains(node)))
    }

    fn on_draining(&self, p: &PodObservation) -> bool {
        p.node.as_ref().is_some_and(|n| self.draining.contains(n))
    }

    fn ready_by_owner(&self, keep: impl Fn(&PodObservation) -> bool) -> BTreeMap<String, i64> {
        let mut counts = BTreeMap::new();
        for p in self.pods.values().filter(|p| p.ready && !p.terminating && keep(p)) {
            if let Some(owner) = &p.owner_uid {
                *counts.entry(owner.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn progress(&mut self) -> Vec<Progress> {
        let mut out = Vec::new();
        for (uid, a) in self.awaited.iter_mut() {
            // A pod counts as gone when its UID is no longer listed in a namespace we have seen.
            if !a.gone && self.listed.contains(&a.namespace) && !self.pods.contains_key(uid) {
                a.gone = true;
                out.push(Progress::Gone { node: a.node.clone(), pod: a.key.clone() });
            }
        }
        let ready = self.ready_by_owner(|p| !self.on_draining(p));
        for (uid, goal) in self.goals.iter_mut() {
            let Some(target) = goal.target else { continue };
            // Goals wait for the controller's own evicted pods to be gone first, so a pod that is
            // still terminating is never mistaken for its replacement.
            let own_gone = self.awaited.values().all(|a| a.gone || a.controller.as_deref() != Some(uid.as_str()));
            let count = ready.get(uid).copied().unwrap_or(0);
            if !goal.reached && own_gone && count >= target {
                goal.reached = true;
                out.push(Progress::ReplacementReady {
                    nodes: goal.nodes.iter().cloned().collect(),
                    controller: goal.label.clone(),
                    ready: count,
                    target,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, name: &str, node: &str, owner: &str, ready: bool) -> PodObservation {
        PodObservation {
            uid: uid.into(),
            namespace: "prod".into(),
            name: name.into(),
            node: Some(node.into()),
            owner_uid: Some(owner.into()),
            ready,
            terminating: false,
        }
    }

    #[test]
    fn node_is_done_when_pod_gone_and_replacement_ready_elsewhere() {
        let mut w = WaitState::new(["w1".to_string()]);
        let victim = pod("u1", "redis-1", "w1", "rs1", true);
        w.expect_removal("w1", &victim, Some(("rs1", "deploy/prod/redis")));
        assert!(!w.ready_to_evict());
        let listed = vec![victim.clone(), pod("u2", "redis-2", "w2", "rs1", true)];
        assert!(w.relist("prod", listed).is_empty());
        assert!(w.ready_to_evict());
        assert!(!w.node_done("w1", true));

        // Terminating, then gone: the pod is gone but only 1 of 2 replicas is Ready elsewhere.
        let mut terminating = victim.clone();
        terminating.terminating = true;
        assert!(w.apply(terminating).is_empty());
        assert_eq!(w.delete("u1"), vec![Progress::Gone { node: "w1".into(), pod: ObjectKey::new("prod", "redis-1") }]);
        assert!(w.node_done("w1", false));
        assert!(!w.node_done("w1", true));
        assert_eq!(w.pending_replacements("w1"), vec![("deploy/prod/redis".to_string(), 1, 2)]);

        // The replacement is scheduled (not Ready yet), then Ready on w3.
        assert!(w.apply(pod("u3", "redis-3", "w3", "rs1", false)).is_empty());
        let p = w.apply(pod("u3", "redis-3", "w3", "rs1", true));
        assert_eq!(
            p,
            vec![Progress::ReplacementReady {
                nodes: vec!["w1".into()],
                controller: "deploy/prod/redis".into(),
                ready: 2,
                target: 2
            }]
        );
        assert!(w.node_done("w1", true));
    }

    #[test]
    fn a_replacement_on_another_draining_node_does_not_count() {
        let mut w = WaitState::new(["w1".to_string(), "w2".to_string()]);
        let victim = pod("u1", "web-1", "w1", "rs", true);
        w.expect_removal("w1", &victim, Some(("rs", "deploy/prod/web")));
        w.relist("prod", vec![victim]);
        w.delete("u1");
        assert!(w.apply(pod("u2", "web-2", "w2", "rs", true)).is_empty());
        assert!(!w.node_done("w1", true));
    }

    #[test]
    fn replacement_is_not_declared_before_the_evicted_pod_is_gone() {
        let mut w = WaitState::new(["w1".to_string()]);
        let victim = pod("u1", "web-1", "w1", "rs", true);
        w.expect_removal("w1", &victim, Some(("rs", "deploy/prod/web")));
        w.relist("prod", vec![victim]);
        // A scale-up lands a Ready pod elsewhere while the victim still runs.
        assert!(w.apply(pod("u2", "web-2", "w2", "rs", true)).is_empty());
        let p = w.forget("u1");
        assert_eq!(p.len(), 2);
        assert!(w.node_done("w1", true));
    }

    #[test]
    fn a_pod_missing_from_the_first_listing_is_already_gone() {
        let mut w = WaitState::new(["w1".to_string()]);
        let victim = pod("u1", "job-1", "w1", "x", true);
        w.expect_removal("w1", &victim, None);
        assert_eq!(
            w.relist("prod", vec![]),
            vec![Progress::Gone { node: "w1".into(), pod: ObjectKey::new("prod", "job-1") }]
        );
        assert!(w.node_done("w1", true));
    }
}

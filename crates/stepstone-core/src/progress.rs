//! Where a cluster really is on its way to a version: per node, which upgrade steps'
//! postconditions already hold, read from the control-plane static pods' image versions and the
//! kubelets' reported versions.
//!
//! A cluster may be half-upgraded (someone ran `kubeadm upgrade apply v1.35.0` on cp-01 and
//! stopped, or a rollout crashed): cp-01's static pods run v1.35.0 while cp-02 and cp-03 still run
//! v1.34.6. Planning from the oldest apiserver alone would ask for `kubeadm upgrade apply` of an
//! older version on cp-01: a downgrade. Here the state is read per node so that `path`, `plan`,
//! the runbook and the rollout all continue from where the cluster is.
//!
//! The postconditions, for a hop that ends on version `to`:
//! - **apply** (the cluster-wide `kubeadm upgrade apply`): some control-plane node runs every
//!   control-plane static pod (kube-apiserver, kube-controller-manager, kube-scheduler) at `to`
//!   or newer. kubeadm writes the cluster's `ClusterConfiguration` and that node's manifests in
//!   the same command, so the node shows that it ran.
//! - **a control-plane node** (`kubeadm upgrade apply|node`, then its kubelet): its three static
//!   pods at `to` or newer, and its kubelet at `to` or newer. Static pods without the kubelet mean
//!   only the kubelet's packages and restart are left.
//! - **a worker** (drain, packages, `kubeadm upgrade node`, kubelet): its kubelet at `to` or newer.
//!
//! Everything here is pure and deterministic (nodes in name order).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::inventory::{Component, Inventory};
use crate::version::KubeVersion;

/// The control-plane components whose static pods `kubeadm upgrade` rewrites per node. etcd has
/// its own version line and kube-proxy is a DaemonSet, so neither tells a node's progress.
pub const UPGRADED_STATIC_PODS: [Component; 3] =
    [Component::KubeApiserver, Component::KubeControllerManager, Component::KubeScheduler];

/// The control plane's versions, node by node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneState {
    /// Per control-plane node (by name): the version of its oldest upgraded static pod; `None`
    /// when the inventory shows none of them on that node.
    pub nodes: BTreeMap<String, Option<KubeVersion>>,
    /// The oldest control-plane component anywhere (falls back to the apiserver's `/version`):
    /// what every kubelet must stay within, and where the path starts.
    pub oldest: KubeVersion,
    /// The newest control-plane component anywhere: what the last `kubeadm upgrade apply` set
    /// the cluster to. Nothing may be planned below it.
    pub newest: KubeVersion,
    /// The node running the newest control-plane component (first by name on a tie), when
    /// known per node.
    pub newest_node: Option<String>,
}

impl ControlPlaneState {
    /// Read from the inventory; `None` when no control-plane version is known at all.
    pub fn read(inv: &Inventory) -> Option<Self> {
        let mut per_component: BTreeMap<String, Vec<KubeVersion>> = BTreeMap::new();
        for c in &inv.components {
            if UPGRADED_STATIC_PODS.contains(&c.component)
                && let Some(v) = c.version()
            {
                per_component.entry(c.node.clone()).or_default().push(v);
            }
        }
        let mut nodes: BTreeMap<String, Option<KubeVersion>> =
            inv.control_plane_nodes().map(|n| (n.name.clone(), None)).collect();
        // (oldest, newest, node of the newest) over every component instance.
        let mut span: Option<(KubeVersion, KubeVersion, String)> = None;
        for (node, versions) in per_component {
            let (low, high) = (versions.iter().min().cloned(), versions.iter().max().cloned());
            if let (Some(low), Some(high)) = (&low, high) {
                span = Some(match span {
                    None => (low.clone(), high, node.clone()),
                    Some((lo, hi, at)) => {
                        let lo = lo.min(low.clone());
                        // Strictly newer only: the first node by name keeps a tie.
                        if high > hi { (lo, high, node.clone()) } else { (lo, hi, at) }
                    }
                });
            }
            nodes.insert(node, low);
        }
        let (oldest, newest, newest_node) = match span {
            Some((lo, hi, at)) => (lo, hi, Some(at)),
            None => {
                let v = inv.server_version.clone()?;
                (v.clone(), v, None)
            }
        };
        Some(ControlPlaneState { nodes, oldest, newest, newest_node })
    }

    /// Control-plane nodes run different versions: an upgrade was started and not finished.
    pub fn in_transition(&self) -> bool {
        self.oldest != self.newest
    }

    /// Nodes whose control plane is older than the newest, by name.
    pub fn behind(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, v)| v.as_ref().is_some_and(|v| *v < self.newest))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// One node's state against a hop's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeProgress {
    pub node: String,
    pub control_plane: bool,
    /// Control-plane nodes: the version of the node's oldest upgraded static pod, when seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_pods: Option<KubeVersion>,
    pub kubelet: KubeVersion,
    /// Control-plane nodes: `kubeadm upgrade apply|node` has run for the target. Always true
    /// for workers (their static pods are not upgraded).
    pub static_pods_done: bool,
    /// The kubelet reports the target or newer.
    pub kubelet_done: bool,
}

impl NodeProgress {
    /// Every postcondition of the node's step holds: nothing left to do on it for this hop.
    pub fn done(&self) -> bool {
        self.static_pods_done && self.kubelet_done
    }
}

/// Which steps of a hop that ends on `to` are already done, read from the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HopProgress {
    pub to: KubeVersion,
    /// The node on which `kubeadm upgrade apply` ran (or has to run): the control-plane node
    /// already on the newest version if the control plane is in transition towards this hop,
    /// else the first control-plane node by name.
    pub apply_node: Option<String>,
    /// `kubeadm upgrade apply` for `to` has run: some control-plane node runs `to` or newer.
    pub apply_done: bool,
    /// Every node, control plane first, each group by name.
    pub nodes: Vec<NodeProgress>,
}

impl HopProgress {
    pub fn node(&self, name: &str) -> Option<&NodeProgress> {
        self.nodes.iter().find(|n| n.node == name)
    }

    /// Nodes whose step is complete, control plane first, each group by name.
    pub fn done(&self) -> Vec<String> {
        self.nodes.iter().filter(|n| n.done()).map(|n| n.node.clone()).collect()
    }

    /// The whole hop is complete: nothing left to run.
    pub fn complete(&self) -> bool {
        self.apply_done && self.nodes.iter().all(NodeProgress::done)
    }
}

/// For this inventory and a hop ending on `to`: which steps' postconditions already hold.
///
/// The rollout engine calls this before every step (a step whose postcondition holds is
/// skipped), and the path uses it to leave finished work out of the plan. Unknown static pod
/// versions count as not done: a step is only skipped on evidence.
pub fn hop_progress(inv: &Inventory, to: &KubeVersion) -> HopProgress {
    let state = ControlPlaneState::read(inv);
    let static_pods = |name: &str| state.as_ref().and_then(|s| s.nodes.get(name).cloned().flatten());
    let mut nodes: Vec<NodeProgress> = inv
        .nodes
        .iter()
        .map(|n| {
            let control_plane = n.is_control_plane();
            let pods = if control_plane { static_pods(&n.name) } else { None };
            NodeProgress {
                node: n.name.clone(),
                control_plane,
                static_pods_done: !control_plane || pods.as_ref().is_some_and(|v| v >= to),
                static_pods: pods,
                kubelet_done: n.kubelet_version >= *to,
                kubelet: n.kubelet_version.clone(),
            }
        })
        .collect();
    nodes.sort_by(|a, b| (!a.control_plane, &a.node).cmp(&(!b.control_plane, &b.node)));
    let apply_done = nodes.iter().any(|n| n.control_plane && n.static_pods_done);
    let apply_node = apply_node(state.as_ref(), to, &nodes);
    HopProgress { to: to.clone(), apply_node, apply_done, nodes }
}

/// Where `kubeadm upgrade apply` belongs in a hop to `to`: a node that already moved to this
/// hop's minor (it holds the cluster's new configuration), else the first control-plane node.
fn apply_node(state: Option<&ControlPlaneState>, to: &KubeVersion, nodes: &[NodeProgress]) -> Option<String> {
    if let Some(s) = state
        && s.in_transition()
        && s.newest.minor() == to.minor()
        && let Some(n) = &s.newest_node
    {
        return Some(n.clone());
    }
    nodes.iter().find(|n| n.control_plane).map(|n| n.node.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ComponentInstance, Node, NodeRole};

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    fn node(name: &str, cp: bool, kubelet: &str) -> Node {
        // The committed small example (`stepstone_fleet::FleetSpec::small()`).
        let text = include_str!("../../../examples/small.json");
        let mut inv = crate::snapshot::load_str("examples/small.json", text, &Default::default())
            .expect("the small fleet parses");
        let mut n = inv.nodes.remove(0);
        n.name = name.to_string();
        n.role = if cp { NodeRole::ControlPlane } else { NodeRole::Worker };
        n.kubelet_version = v(kubelet);
        n
    }

    fn static_pods(node: &str, version: &str) -> Vec<ComponentInstance> {
        UPGRADED_STATIC_PODS
            .iter()
            .map(|&component| ComponentInstance {
                component,
                node: node.to_string(),
                image: format!("registry.k8s.io/{component}:{version}"),
                tag: version.to_string(),
            })
            .collect()
    }

    /// cp-01 moved to v1.35.0 (static pods and kubelet), cp-02 and cp-03 still on v1.34.6,
    /// w-1 on v1.34.6, w-2 already on v1.35.0.
    fn half_upgraded() -> Inventory {
        let mut components = static_pods("cp-01", "v1.35.0");
        components.extend(static_pods("cp-02", "v1.34.6"));
        components.extend(static_pods("cp-03", "v1.34.6"));
        Inventory {
            source: "half".to_string(),
            nodes: vec![
                node("cp-01", true, "v1.35.0"),
                node("cp-02", true, "v1.34.6"),
                node("cp-03", true, "v1.34.6"),
                node("w-1", false, "v1.34.6"),
                node("w-2", false, "v1.35.0"),
            ],
            components,
            ..Inventory::default()
        }
    }

    #[test]
    fn a_half_upgraded_control_plane_is_in_transition() {
        let s = ControlPlaneState::read(&half_upgraded()).unwrap();
        assert!(s.in_transition());
        assert_eq!(s.oldest, v("v1.34.6"));
        assert_eq!(s.newest, v("v1.35.0"));
        assert_eq!(s.newest_node.as_deref(), Some("cp-01"));
        assert_eq!(s.behind(), vec!["cp-02", "cp-03"]);
    }

    #[test]
    fn steps_done_at_the_version_cp_01_reached() {
        let p = hop_progress(&half_upgraded(), &v("v1.35.0"));
        assert!(p.apply_done);
        assert_eq!(p.apply_node.as_deref(), Some("cp-01"));
        assert_eq!(p.done(), vec!["cp-01", "w-2"]);
        assert!(!p.complete());
        let cp2 = p.node("cp-02").unwrap();
        assert!(!cp2.static_pods_done && !cp2.kubelet_done);
    }

    #[test]
    fn nothing_is_done_at_a_later_patch_but_apply_stays_on_cp_01() {
        let p = hop_progress(&half_upgraded(), &v("v1.35.8"));
        assert!(!p.apply_done);
        assert_eq!(p.apply_node.as_deref(), Some("cp-01"));
        assert!(p.done().is_empty(), "{:?}", p.done());
    }

    #[test]
    fn static_pods_without_the_kubelet_leave_only_the_kubelet() {
        let mut inv = half_upgraded();
        inv.nodes[0].kubelet_version = v("v1.34.6");
        let p = hop_progress(&inv, &v("v1.35.0"));
        let cp1 = p.node("cp-01").unwrap();
        assert!(cp1.static_pods_done && !cp1.kubelet_done && !cp1.done());
        assert!(p.apply_done);
    }

    #[test]
    fn a_finished_hop_is_complete_and_unknown_static_pods_are_never_done() {
        let mut inv = half_upgraded();
        inv.components = ["cp-01", "cp-02", "cp-03"].iter().flat_map(|n| static_pods(n, "v1.35.0")).collect();
        for n in &mut inv.nodes {
            n.kubelet_version = v("v1.35.0");
        }
        assert!(hop_progress(&inv, &v("v1.35.0")).complete());
        assert!(!ControlPlaneState::read(&inv).unwrap().in_transition());
        // Only /version known: no node is proven done.
        inv.components.clear();
        inv.server_version = Some(v("v1.35.0"));
        let p = hop_progress(&inv, &v("v1.35.0"));
        assert!(!p.apply_done && !p.complete());
        assert_eq!(ControlPlaneState::read(&inv).unwrap().oldest, v("v1.35.0"));
    }
}

//! What an operator sees on a node (role, generation, OS, kernel, cgroup version, installed
//! packages, the running kubelet), package installs (`apt-get install kubeadm=...`) and the
//! node's package repository.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use stepstone_core::inventory::{CGROUP_LABEL, CgroupVersion};
use stepstone_core::version::KubeVersion;

use super::{
    KUBEADM_ANNOTATION, KUBECTL_ANNOTATION, KUBELET_ANNOTATION, KubeletState, LabNodes, NodeOpError, Package,
    STATIC_COMPONENTS, annotation, image_tag, is_control_plane, ready_condition, record_event, repo, static_pod,
};
use crate::resources::NODES;
use crate::store::{self, Part, Store, meta_mut};
use crate::sync::lock;

/// One node as a bare-metal operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFacts {
    pub name: String,
    pub control_plane: bool,
    pub generation: Option<String>,
    pub os_image: String,
    pub kernel_version: String,
    /// The cgroup version the node boots with, from its `stepstone.io/cgroup-version` label;
    /// none when the label is missing or names neither `v1` nor `v2`.
    pub cgroup_version: Option<CgroupVersion>,
    pub container_runtime: String,
    /// Installed package versions.
    pub packages: BTreeMap<String, String>,
    /// The minor the node's Kubernetes package repository points at (`v1.35`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The version the running kubelet reports; none when the node reports none.
    pub kubelet_version: Option<KubeVersion>,
    pub kubelet: KubeletState,
    pub ready: bool,
    /// Image tag of each control-plane static pod on this node.
    pub static_pods: BTreeMap<String, String>,
}

impl LabNodes {
    fn facts_of(&self, store: &Store, node: &Value) -> NodeFacts {
        let name = store::name_of(node).to_string();
        let labels = store::labels_of(node);
        let generation =
            stepstone_core::inventory::DEFAULT_GENERATION_LABELS.iter().find_map(|l| labels.get(*l).cloned());
        let info =
            |k: &str| node.pointer(&format!("/status/nodeInfo/{k}")).and_then(Value::as_str).unwrap_or("").to_string();
        let packages =
            [("kubeadm", KUBEADM_ANNOTATION), ("kubelet", KUBELET_ANNOTATION), ("kubectl", KUBECTL_ANNOTATION)]
                .into_iter()
                .filter_map(|(p, a)| annotation(node, a).map(|v| (p.to_string(), v.to_string())))
                .collect();
        let static_pods = STATIC_COMPONENTS
            .iter()
            .filter_map(|c| static_pod(store, c, &name).and_then(|p| image_tag(&p)).map(|t| (c.to_string(), t)))
            .collect();
        NodeFacts {
            control_plane: is_control_plane(node),
            generation,
            os_image: info("osImage"),
            kernel_version: info("kernelVersion"),
            cgroup_version: match labels.get(CGROUP_LABEL).map(String::as_str) {
                Some("v1") => Some(CgroupVersion::V1),
                Some("v2") => Some(CgroupVersion::V2),
                _ => None,
            },
            container_runtime: info("containerRuntimeVersion"),
            packages,
            repository: repo::configured(node).map(repo::repository_name),
            kubelet_version: info("kubeletVersion").parse().ok(),
            kubelet: lock(&self.shared.kubelets).get(&name).cloned().unwrap_or(KubeletState::Running),
            ready: ready_condition(node) == Some("True"),
            static_pods,
            name,
        }
    }

    pub fn facts(&self, node: &str) -> Result<NodeFacts, NodeOpError> {
        let store = self.shared.store();
        let n = self.node(&store, node)?;
        Ok(self.facts_of(&store, &n))
    }

    pub fn list(&self) -> Vec<NodeFacts> {
        let store = self.shared.store();
        store.iter(NODES, None, None).map(|n| self.facts_of(&store, &n)).collect()
    }

    /// `apt-get install kubeadm=1.35.3-1.1` (or kubelet/kubectl), resolved against the node's
    /// package repository ([`repo`]): a version it does not hold is apt's "not found", a glob
    /// (`1.35.3-*`) installs the newest match. Installing the kubelet package does not restart
    /// the running kubelet: that is [`restart_kubelet`](Self::restart_kubelet).
    pub fn install_package(&self, node: &str, package: Package, version: &str) -> Result<NodeFacts, NodeOpError> {
        let now = self.shared.now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        let resolved = repo::resolve(node, repo::configured(&n), package, version)?;
        let mut next = (*n).clone();
        let m = meta_mut(&mut next);
        let ann = m.entry("annotations").or_insert_with(|| json!({}));
        ann[package.annotation()] = json!(resolved);
        let updated = store.update(NODES, next, Part::All, false).expect("node exists");
        let pkg = format!("{package:?}").to_lowercase();
        record_event(
            &mut store,
            now,
            &updated,
            "Normal",
            "PackageInstalled",
            &format!("{pkg} {resolved} installed"),
            "stepstone-lab",
        );
        drop(store);
        self.shared.wake.notify_one();
        self.facts(node)
    }

    /// Point the node's Kubernetes package repository at another minor (`v1.35`), as editing
    /// `/etc/apt/sources.list.d/kubernetes.list` (or the yum `.repo` file) does: from then on
    /// installs see that minor's packages and no other's.
    pub fn configure_repository(&self, node: &str, repository: &str) -> Result<NodeFacts, NodeOpError> {
        let minor = repo::parse_repository(repository)?;
        let now = self.shared.now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        if repo::configured(&n) != Some(minor) || annotation(&n, repo::REPOSITORY_ANNOTATION).is_none() {
            let mut next = (*n).clone();
            let ann = meta_mut(&mut next).entry("annotations").or_insert_with(|| json!({}));
            ann[repo::REPOSITORY_ANNOTATION] = json!(repo::repository_name(minor));
            let updated = store.update(NODES, next, Part::All, false).expect("node exists");
            record_event(
                &mut store,
                now,
                &updated,
                "Normal",
                "PackageRepositoryConfigured",
                &format!(
                    "Kubernetes package repository set to pkgs.k8s.io/core:/stable:/{}",
                    repo::repository_name(minor)
                ),
                "stepstone-lab",
            );
        }
        drop(store);
        self.facts(node)
    }
}

/// Fill in the package annotations of a node loaded without them: packages match the running
/// kubelet, as on a freshly provisioned node.
pub fn default_packages(node: &mut Value) {
    let kubelet =
        node.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).unwrap_or("v1.32.0").to_string();
    let pkg = match kubelet.parse::<KubeVersion>() {
        Ok(v) => format!("{}-1.1", v.bare()),
        Err(_) => kubelet.trim_start_matches('v').to_string(),
    };
    let m = meta_mut(node);
    let ann = m.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = ann.as_object_mut() {
        for key in [KUBEADM_ANNOTATION, KUBELET_ANNOTATION, KUBECTL_ANNOTATION] {
            a.entry(key).or_insert_with(|| json!(pkg));
        }
    }
    // The node starts with the repository of the minor it runs.
    if let Some(minor) = repo::configured(node) {
        let ann = meta_mut(node).entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.entry(repo::REPOSITORY_ANNOTATION).or_insert_with(|| json!(repo::repository_name(minor)));
        }
    }
}

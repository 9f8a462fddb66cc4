//! Bare-metal node simulation and the node-operation API: installed kubeadm/kubelet/kubectl
//! packages, `kubeadm upgrade plan|apply|node`, kubelet restarts (NotReady while restarting, back
//! with the new `kubeletVersion`, or stuck NotReady when a kubelet >= 1.35 meets cgroup v1),
//! control-plane static pods whose image tags follow upgrades, the kube-proxy and CoreDNS
//! addons kubeadm upgrades once every control-plane node is on the new version, and `/version`.
//!
//! The facts live on the Node objects, so kubectl sees them: packages as annotations
//! (`stepstone.io/kubeadm-version`, ...), cgroup version as the `stepstone.io/cgroup-version`
//! label, the rest in `status.nodeInfo`. [`LabNodes`] is the Rust API; the same operations are
//! served under `/lab/v1/nodes/{name}/...` for other processes ([`http`], with the request and
//! answer types of [`wire`]).
//!
//! Here: the operation handle, its errors and the node and pod helpers the controllers share;
//! [`facts`] (facts and packages), [`plan`] (`kubeadm upgrade plan`), [`upgrade`] (`kubeadm
//! upgrade apply|node`), [`kubelet`] (the simulated kubelet), [`http`] (the HTTP handlers).

pub(crate) mod etcd;
pub(crate) mod facts;
pub(crate) mod host;
pub(crate) mod http;
mod images;
pub(crate) mod journal;
pub(crate) mod kubelet;
pub(crate) mod plan;
pub(crate) mod repo;
pub(crate) mod upgrade;
pub(crate) mod wire;

use std::sync::Arc;

use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepstone_core::version::{KubeVersion, PackageVersion};

pub use self::etcd::{EtcdSnapshotReport, SnapshotMetadata};
pub use self::facts::{NodeFacts, default_packages};
pub use self::host::OsRefresh;
pub(crate) use self::http::router;
pub use self::journal::KubeletLogs;
pub(crate) use self::kubelet::{
    finish_restarts, hold_in_container_creating, kubelet_down, last_heard, mark_status_unknown,
    node_monitor_grace_seconds, restart_containers, set_lifecycle_taints,
};
pub use self::plan::{ComponentConfigState, PlanRow, UpgradePlan};
pub use self::upgrade::{KubeadmVersion, UpgradeOptions, UpgradeReport};
use crate::clock;
use crate::resources::{CONFIGMAPS, NODES, PODS};
pub use crate::state::KubeletState;
use crate::state::Shared;
use crate::store::{self, Store};

pub const KUBEADM_ANNOTATION: &str = "stepstone.io/kubeadm-version";
pub const KUBELET_ANNOTATION: &str = "stepstone.io/kubelet-version";
pub const KUBECTL_ANNOTATION: &str = "stepstone.io/kubectl-version";

/// `false` when the kubelet configuration sets `failCgroupV1: false` (the opt-out to stay on v1).
pub const FAIL_CGROUP_V1_ANNOTATION: &str = "stepstone.io/kubelet-fail-cgroup-v1";

/// The kubelet error upstream's kubelet stops with on a cgroup v1 host when `failCgroupV1` is on.
pub const CGROUP_V1_ERROR: &str =
    "kubelet is configured to not run on a host using cgroup v1. cgroup v1 support is in maintenance mode";

/// The components kubeadm runs as static pods on a control-plane node.
pub const STATIC_COMPONENTS: [&str; 4] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"];

/// A package kubeadm-based nodes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Package {
    Kubeadm,
    Kubelet,
    Kubectl,
}

impl Package {
    /// Every package, in the order the lab lists them.
    pub const ALL: [Package; 3] = [Package::Kubeadm, Package::Kubelet, Package::Kubectl];

    /// The package's name, as apt and dnf know it.
    pub fn name(self) -> &'static str {
        match self {
            Package::Kubeadm => "kubeadm",
            Package::Kubelet => "kubelet",
            Package::Kubectl => "kubectl",
        }
    }

    fn annotation(self) -> &'static str {
        match self {
            Package::Kubeadm => KUBEADM_ANNOTATION,
            Package::Kubelet => KUBELET_ANNOTATION,
            Package::Kubectl => KUBECTL_ANNOTATION,
        }
    }
}

impl std::str::FromStr for Package {
    type Err = NodeOpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kubeadm" => Ok(Package::Kubeadm),
            "kubelet" => Ok(Package::Kubelet),
            "kubectl" => Ok(Package::Kubectl),
            other => Err(NodeOpError::UnknownPackage(other.to_string())),
        }
    }
}

/// Why a node operation failed. Messages name the node and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeOpError {
    #[error("node \"{0}\" not found in the lab; list nodes with `kubectl get nodes`")]
    UnknownNode(String),
    #[error("unknown package \"{0}\"; the lab knows kubeadm, kubelet and kubectl")]
    UnknownPackage(String),
    #[error("version \"{0}\" is not a Kubernetes package version (examples: 1.35.3-1.1, 1.35.3)")]
    BadVersion(String),
    #[error("{node}: `kubeadm upgrade apply` runs on a control-plane node; on workers use `kubeadm upgrade node`")]
    NotControlPlane { node: String },
    #[error(
        "{node}: [upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n\t- Specified version to upgrade to \"{target}\" is higher than the kubeadm version \"{kubeadm}\". Upgrade kubeadm first using the tool you used to install kubeadm"
    )]
    KubeadmTooOld { node: String, target: String, kubeadm: String },
    #[error(
        "{node}: [upgrade/version] FATAL: Specified version to upgrade to \"{target}\" is too high; kubeadm can upgrade only 1 minor version at a time (cluster is at {current})"
    )]
    SkipsMinor { node: String, target: String, current: String },
    #[error(
        "{node}: [preflight] Some fatal errors occurred:\n\t[ERROR SystemVerification]: kubelet {kubelet} does not support cgroup v1 hosts unless failCgroupV1 is false in the kubelet configuration; migrate the node to cgroup v2, or set failCgroupV1: false in the kube-system/kubelet-config ConfigMap and pass --ignore-preflight-errors=SystemVerification"
    )]
    CgroupV1Preflight { node: String, kubelet: String },
    #[error(
        "{node}: no control-plane version known: the cluster has no kubeadm-config ConfigMap and no kube-apiserver static pod"
    )]
    NoClusterVersion { node: String },
    #[error(
        "{node}: `kubeadm upgrade plan` runs on a control-plane node, where /etc/kubernetes/admin.conf exists; run it on one (`stepstone lab nodes` shows each node's ROLE)"
    )]
    PlanNotControlPlane { node: String },
    #[error(
        "{node}: [upgrade/versions] FATAL: Specified version to upgrade to \"{target}\" is lower than the cluster version \"{current}\"; `kubeadm upgrade plan` plans upgrades, give a version above {current} or none"
    )]
    PlanBelowCluster { node: String, target: String, current: String },
    #[error(
        "{node}: no etcd member runs on this node: kubeadm runs etcd on control-plane nodes; take the snapshot on one (`stepstone lab nodes` shows each node's ROLE)"
    )]
    NoEtcdMember { node: String },
    #[error(
        "{node}: [upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n\t- There are kubelets in this cluster that are too old that have these versions [{versions}]\n\nkubelets may be at most 3 minors older than {target}: upgrade them (kubeadm upgrade node, then the kubelet package) before the control plane moves"
    )]
    KubeletsTooOld { node: String, target: String, versions: String },
    #[error(
        "{node}: [upgrade] FATAL: kubeadm {kubeadm} is newer than the cluster ({cluster}): the control plane has not been upgraded yet; run `kubeadm upgrade apply {kubeadm}` on the first control-plane node, then `kubeadm upgrade node` here"
    )]
    ControlPlaneNotUpgraded { node: String, kubeadm: String, cluster: String },
    #[error("cgroup version \"{0}\" is not one a node can boot with; give v2 (or v1)")]
    BadCgroupVersion(String),
    #[error("{what} \"{value}\" is empty or has control characters; give it as the node would report it")]
    BadHostValue { what: &'static str, value: String },
    /// apt's `E: Version '...' for '...' was not found`, with where the version is (or what the
    /// node's repository holds) and the fix: the whole message, built by [`repo`].
    #[error("{0}")]
    VersionNotFound(String),
    #[error(
        "Kubernetes package repository \"{given}\" does not exist: pkgs.k8s.io has one per minor, {oldest} to {newest}; give one as v1.35"
    )]
    UnknownRepository { given: String, oldest: String, newest: String },
    #[error("{node}: snapshot directory {}: {detail}", dir.display())]
    SnapshotDir { node: String, dir: std::path::PathBuf, detail: String },
    #[error("snapshot label {0}")]
    BadLabel(String),
    #[error("{node}: cannot write {}: {detail}", path.display())]
    SnapshotWrite { node: String, path: std::path::PathBuf, detail: String },
}

impl NodeOpError {
    pub(crate) fn http_code(&self) -> StatusCode {
        match self {
            NodeOpError::UnknownNode(_) | NodeOpError::VersionNotFound(_) => StatusCode::NOT_FOUND,
            NodeOpError::UnknownRepository { .. } => StatusCode::BAD_REQUEST,
            NodeOpError::UnknownPackage(_)
            | NodeOpError::BadVersion(_)
            | NodeOpError::SnapshotDir { .. }
            | NodeOpError::BadLabel(_)
            | NodeOpError::BadCgroupVersion(_)
            | NodeOpError::BadHostValue { .. } => StatusCode::BAD_REQUEST,
            NodeOpError::SnapshotWrite { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::CONFLICT,
        }
    }
}

/// The node-operation API: what the rollout's lab backend calls instead of SSH.
#[derive(Clone, Debug)]
pub struct LabNodes {
    shared: Arc<Shared>,
}

impl LabNodes {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        LabNodes { shared }
    }

    fn node(&self, store: &Store, name: &str) -> Result<Arc<Value>, NodeOpError> {
        store.get(NODES, "", name).ok_or_else(|| NodeOpError::UnknownNode(name.to_string()))
    }
}

fn version_of_package(s: &str) -> Result<KubeVersion, NodeOpError> {
    let s = s.trim();
    if let Ok(p) = s.parse::<PackageVersion>() {
        return Ok(p.upstream);
    }
    s.parse::<KubeVersion>().map_err(|_| NodeOpError::BadVersion(s.to_string()))
}

fn ready_condition(node: &Value) -> Option<&str> {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
}

pub fn is_control_plane(node: &Value) -> bool {
    store::labels_of(node).contains_key("node-role.kubernetes.io/control-plane")
        || store::labels_of(node).contains_key("node-role.kubernetes.io/master")
}

/// The kube-system static pod of `component` on `node`, if the fleet has one.
fn static_pod(store: &Store, component: &str, node: &str) -> Option<Arc<Value>> {
    store.get(PODS, "kube-system", &format!("{component}-{node}"))
}

/// The image tag of a pod's first container.
pub fn image_tag(pod: &Value) -> Option<String> {
    pod.pointer("/spec/containers/0/image")
        .and_then(Value::as_str)
        .map(|i| stepstone_core::snapshot::image_tag(i).to_string())
}

/// The cluster's control-plane version: the kubeadm-config ConfigMap's `kubernetesVersion`,
/// else the newest kube-apiserver static pod tag.
pub fn cluster_version(store: &Store) -> Option<KubeVersion> {
    if let Some(cm) = store.get(CONFIGMAPS, "kube-system", "kubeadm-config")
        && let Some(text) = cm.pointer("/data/ClusterConfiguration").and_then(Value::as_str)
        && let Some(line) = text.lines().find(|l| l.trim_start().starts_with("kubernetesVersion:"))
        && let Ok(v) =
            line.split_once(':').map(|(_, v)| v.trim().trim_matches('"')).unwrap_or("").parse::<KubeVersion>()
    {
        return Some(v);
    }
    apiserver_versions(store).into_iter().max()
}

pub(super) fn apiserver_versions(store: &Store) -> Vec<KubeVersion> {
    store
        .iter(PODS, Some("kube-system"), None)
        .filter(|p| {
            store::labels_of(p).get("component").map(String::as_str) == Some("kube-apiserver")
                || store::name_of(p).starts_with("kube-apiserver-")
        })
        .filter_map(|p| image_tag(&p).and_then(|t| t.parse::<KubeVersion>().ok()))
        .collect()
}

/// `/version`: the newest kube-apiserver behind the (simulated) load balancer, which is what
/// answers once `kubeadm upgrade apply` has run on the first control-plane node.
pub fn version_info(shared: &Shared) -> Value {
    let store = shared.store();
    let v = apiserver_versions(&store)
        .into_iter()
        .max()
        .or_else(|| cluster_version(&store))
        .or_else(|| {
            store
                .iter(NODES, None, None)
                .filter_map(|n| {
                    n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str)?.parse::<KubeVersion>().ok()
                })
                .max()
        })
        .unwrap_or(KubeVersion::new(1, 32, 0));
    json!({
        "major": v.major.to_string(),
        "minor": v.minor.to_string(),
        "gitVersion": v.canonical(),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn annotation<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    store::meta(node).get("annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

/// Store a changed pod and, once it is stored, record a Warning event about it (the reason a
/// controller changed it); a pod removed meanwhile gets no event.
pub fn update_pod_and_warn(
    store: &mut Store,
    pod: Value,
    now: Timestamp,
    reason: &str,
    message: &str,
    component: &str,
) {
    if let Ok(updated) = store.update(crate::resources::PODS, pod, crate::store::Part::All, false) {
        record_event(store, now, &updated, "Warning", reason, message, component);
    }
}

/// Record a core/v1 Event about an object.
pub fn record_event(
    store: &mut Store,
    now: Timestamp,
    about: &Value,
    kind: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ns = match store::namespace_of(about) {
        "" => "default".to_string(),
        n => n.to_string(),
    };
    let name = format!("{}.{:x}", store::name_of(about), now.as_nanosecond() as u64 ^ (store.resource_version() << 8));
    let t = clock::format(now);
    let host = about
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .or_else(|| (about["kind"] == "Node").then(|| store::name_of(about)));
    let mut source = json!({"component": component});
    if let Some(h) = host {
        source["host"] = json!(h);
    }
    let event = json!({
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {
            "kind": about["kind"], "apiVersion": about["apiVersion"], "name": store::name_of(about),
            "namespace": store::namespace_of(about), "uid": store::uid_of(about),
        },
        "reason": reason, "message": message, "type": kind, "count": 1,
        "firstTimestamp": t, "lastTimestamp": t, "source": source,
        "reportingComponent": component, "reportingInstance": host.unwrap_or(""),
    });
    let _ = store.create(crate::resources::EVENTS, event, now, true);
}

pub fn set_pod_condition(pod: &mut Value, kind: &str, ok: bool, now: Timestamp) {
    let status = if ok { "True" } else { "False" };
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let conds = pod["status"].as_object_mut().expect("object").entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conds.as_array_mut() else { return };
    match list.iter_mut().find(|c| c["type"] == kind) {
        Some(c) => {
            if c["status"] != status {
                c["status"] = json!(status);
                c["lastTransitionTime"] = json!(clock::format(now));
            }
        }
        None => list.push(
            json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": clock::format(now)}),
        ),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn package_versions_parse_both_forms() {
        assert_eq!(version_of_package("1.35.3-1.1").unwrap().canonical(), "v1.35.3");
        assert_eq!(version_of_package("v1.35.3").unwrap().canonical(), "v1.35.3");
        assert!(version_of_package("latest").is_err());
    }
}

//! Bare-metal node simulation and the node-operation API: installed kubeadm/kubelet/kubectl
//! packages, `kubeadm upgrade plan|apply|node`, kubelet restarts (NotReady while restarting, back
//! with the new `kubeletVersion`, or stuck NotReady when a kubelet >= 1.35 meets cgroup v1),
//! control-plane static pods whose image tags follow upgrades, the kube-proxy and CoreDNS
//! addons kubeadm upgrades once every control-plane node is on the new version, and `/version`.
//!
//! The facts live on the Node objects, so kubectl sees them: packages as annotations
//! (`stepstone.io/kubeadm-version`, ...), cgroup version as the `stepstone.io/cgroup-version`
//! label, the rest in `status.nodeInfo`. [`NodeOps`] is the Rust API; the same operations are
//! served under `/lab/v1/nodes/{name}/...` for other processes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepstone_core::inventory::CGROUP_LABEL;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::{KubeVersion, PackageVersion};

use crate::clock;
use crate::resources::{CONFIGMAPS, DAEMONSETS, DEPLOYMENTS, NODES, PODS};
use crate::state::{Shared, lock};
use crate::store::{self, Part, Store, meta_mut};

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

/// What the simulated kubelet of a node is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum KubeletState {
    Running,
    /// Restarting; back at `until` (simulated time), or never when `until` is `None`.
    Restarting {
        until: Option<String>,
        version: String,
    },
    /// Exited and stays down (the cgroup v1 refusal).
    Failed {
        reason: String,
    },
}

/// A package kubeadm-based nodes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Package {
    Kubeadm,
    Kubelet,
    Kubectl,
}

impl Package {
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
}

impl NodeOpError {
    fn http_code(&self) -> StatusCode {
        match self {
            NodeOpError::UnknownNode(_) => StatusCode::NOT_FOUND,
            NodeOpError::UnknownPackage(_) | NodeOpError::BadVersion(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::CONFLICT,
        }
    }
}

/// One node as a bare-metal operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFacts {
    pub name: String,
    pub control_plane: bool,
    pub generation: Option<String>,
    pub os_image: String,
    pub kernel_version: String,
    /// `v1` or `v2`.
    pub cgroup_version: Option<String>,
    pub container_runtime: String,
    /// Installed package versions.
    pub packages: BTreeMap<String, String>,
    /// The version the running kubelet reports.
    pub kubelet_version: String,
    pub kubelet: KubeletState,
    pub ready: bool,
    /// Image tag of each control-plane static pod on this node.
    pub static_pods: BTreeMap<String, String>,
}

/// What a `kubeadm upgrade` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeReport {
    pub node: String,
    pub version: String,
    /// Static pod and addon images changed, `component: old -> new` (addons as `coredns` and
    /// `kube-proxy`).
    pub changed: Vec<String>,
    pub message: String,
}

/// Options of `kubeadm upgrade apply|node`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpgradeOptions {
    /// Preflight checks to downgrade to warnings (`SystemVerification`, `all`).
    pub ignore_preflight_errors: Vec<String>,
}

impl UpgradeOptions {
    fn ignores(&self, check: &str) -> bool {
        self.ignore_preflight_errors.iter().any(|c| c.eq_ignore_ascii_case(check) || c == "all")
    }
}

/// One row of a `kubeadm upgrade plan` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanRow {
    pub component: String,
    /// Empty for the cluster-wide addons (kube-proxy, CoreDNS), as kubeadm prints them.
    pub node: String,
    pub current: String,
    pub target: String,
}

/// A row of the component config table at the end of `kubeadm upgrade plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentConfigState {
    pub api_group: String,
    pub current_version: String,
    pub preferred_version: String,
    pub manual_upgrade_required: bool,
}

/// What `kubeadm upgrade plan [VERSION]` tells an operator on a control-plane node. Computing
/// it changes nothing in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePlan {
    pub node: String,
    pub cluster_version: String,
    /// The kubeadm installed on `node`.
    pub kubeadm_version: String,
    /// The VERSION argument, when one was given.
    pub requested: Option<String>,
    /// The newest release `kubeadm upgrade apply` takes the cluster to with the installed
    /// kubeadm: above the cluster version, at most one minor above it, not above kubeadm.
    /// `None` when the installed kubeadm cannot move the cluster.
    pub target: Option<String>,
    /// Why that target: real kubeadm asks dl.k8s.io, the lab uses stepstone's release data.
    pub target_source: String,
    /// The newest patch of the cluster's minor in stepstone's release data.
    pub latest_in_series: Option<String>,
    /// Newer releases the installed kubeadm cannot apply: install that kubeadm first.
    pub needs_newer_kubeadm: Vec<String>,
    /// kube-apiserver, kube-controller-manager, kube-scheduler and etcd per control-plane
    /// node; kube-proxy and CoreDNS once. Empty without a target.
    pub components: Vec<PlanRow>,
    /// Every node's running kubelet, to be upgraded by hand after `kubeadm upgrade apply`.
    pub kubelets: Vec<PlanRow>,
    pub component_configs: Vec<ComponentConfigState>,
    /// kubeadm's output.
    pub message: String,
}

/// Which version `kubeadm upgrade plan` offers, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TargetChoice {
    target: Option<KubeVersion>,
    source: String,
    needs_newer_kubeadm: Vec<KubeVersion>,
}

/// kubeadm refuses to upgrade to a release newer than itself.
fn kubeadm_too_old(kubeadm: &KubeVersion, target: &KubeVersion) -> bool {
    kubeadm.minor() < target.minor() || (kubeadm.minor() == target.minor() && kubeadm.patch < target.patch)
}

/// The plan's target. Given a VERSION, kubeadm's refusals apply as in `kubeadm upgrade apply`.
/// Without one, real kubeadm asks dl.k8s.io for the latest stable release and falls back to
/// the latest of its own minor when that is newer than itself; the lab, offline, takes the
/// newest release of the next minor in `data`, limited to what the installed kubeadm applies.
fn choose_plan_target(
    node: &str,
    cluster: &KubeVersion,
    kubeadm: &KubeVersion,
    requested: Option<&KubeVersion>,
    data: &ReleaseData,
) -> Result<TargetChoice, NodeOpError> {
    let too_old = |target: &KubeVersion| NodeOpError::KubeadmTooOld {
        node: node.to_string(),
        target: target.canonical(),
        kubeadm: kubeadm.canonical(),
    };
    if let Some(t) = requested {
        if kubeadm_too_old(kubeadm, t) {
            return Err(too_old(t));
        }
        if t.minor().minus(cluster.minor()) > 1 {
            return Err(NodeOpError::SkipsMinor {
                node: node.to_string(),
                target: t.canonical(),
                current: cluster.canonical(),
            });
        }
        if t < cluster {
            return Err(NodeOpError::PlanBelowCluster {
                node: node.to_string(),
                target: t.canonical(),
                current: cluster.canonical(),
            });
        }
        return Ok(TargetChoice {
            target: (t > cluster).then(|| t.clone()),
            source: format!("{}, the version given", t.canonical()),
            needs_newer_kubeadm: Vec::new(),
        });
    }
    if kubeadm.minor() < cluster.minor() {
        return Err(too_old(cluster));
    }
    let next = cluster.minor().next();
    let (candidate, source) = if kubeadm.minor() > next {
        match data.latest_patch(next) {
            Some(v) => (
                v.clone(),
                format!(
                    "{}, the newest v{next} release in stepstone's release data (kubeadm {} upgrades one minor at most)",
                    v.canonical(),
                    kubeadm.canonical()
                ),
            ),
            None => (
                KubeVersion::new(next.major, next.minor, 0),
                format!(
                    "v{next}.0: stepstone's release data has no v{next} entry and kubeadm upgrades one minor at most"
                ),
            ),
        }
    } else {
        // A kubeadm of the cluster's minor or the next one applies releases up to its own.
        let minor = kubeadm.minor();
        let source = match data.latest_patch(minor) {
            Some(newest) if newest > kubeadm => format!(
                "{k}, the installed kubeadm; stepstone's release data knows {n}, which needs kubeadm {n} first",
                k = kubeadm.canonical(),
                n = newest.canonical()
            ),
            _ => format!(
                "{}, the installed kubeadm and the newest v{minor} release in stepstone's release data",
                kubeadm.canonical()
            ),
        };
        (kubeadm.clone(), source)
    };
    let target = (candidate > *cluster).then_some(candidate);
    let floor = target.clone().unwrap_or_else(|| cluster.clone());
    let mut needs: Vec<KubeVersion> = [data.latest_patch(cluster.minor()), data.latest_patch(next)]
        .into_iter()
        .flatten()
        .filter(|v| **v > floor && kubeadm_too_old(kubeadm, v))
        .cloned()
        .collect();
    needs.dedup();
    let source = match &target {
        Some(_) => source,
        None => format!(
            "none: kubeadm {} applies nothing newer than the cluster's {}",
            kubeadm.canonical(),
            cluster.canonical()
        ),
    };
    Ok(TargetChoice { target, source, needs_newer_kubeadm: needs })
}

/// Lines aligned as Go's `tabwriter.NewWriter(w, 10, 4, 3, ' ', 0)` aligns kubeadm's tables:
/// every column but the last padded to its widest cell plus 3, at least 10.
fn tabulate(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.len() + 3).max().unwrap_or(0).max(10))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            match widths.get(c) {
                Some(w) if c + 1 < row.len() => line.push_str(&format!("{cell:<w$}")),
                _ => line.push_str(cell),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

const PLAN_SEPARATOR: &str = "_____________________________________________________________________";

/// kubeadm's text for a plan.
fn render_plan(p: &UpgradePlan) -> String {
    let mut out = String::from(
        "[preflight] Running pre-flight checks.\n\
         [upgrade/config] Reading configuration from the cluster...\n\
         [upgrade/config] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'\n\
         [upgrade] Running cluster health checks\n\
         [upgrade] Fetching available versions to upgrade to\n",
    );
    out.push_str(&format!("[upgrade/versions] Cluster version: {}\n", p.cluster_version));
    out.push_str(&format!("[upgrade/versions] kubeadm version: {}\n", p.kubeadm_version));
    if p.requested.is_none() {
        out.push_str(&format!(
            "[upgrade/versions] The lab does not look versions up online; target: {}\n",
            p.target_source
        ));
    }
    if let Some(t) = &p.target {
        out.push_str(&format!("[upgrade/versions] Target version: {t}\n"));
    }
    if let Some(l) = &p.latest_in_series {
        let series = p.cluster_version.rsplit_once('.').map_or(p.cluster_version.as_str(), |(m, _)| m);
        out.push_str(&format!("[upgrade/versions] Latest version in the {series} series: {l}\n"));
    }
    out.push('\n');
    let Some(target) = &p.target else {
        if p.needs_newer_kubeadm.is_empty() {
            out.push_str("Awesome, you're up-to-date! Enjoy!\n");
        } else {
            out.push_str(&format!(
                "kubeadm {} cannot upgrade this cluster beyond {}. Upgrade kubeadm first using the tool you used to install kubeadm, then plan again:\n",
                p.kubeadm_version, p.cluster_version
            ));
            for v in &p.needs_newer_kubeadm {
                out.push_str(&format!("\tkubeadm {} for the upgrade to {v}\n", v.trim_start_matches('v')));
            }
        }
        return out;
    };
    if !p.kubelets.is_empty() {
        out.push_str(
            "Components that must be upgraded manually after you have upgraded the control plane with 'kubeadm upgrade apply':\n",
        );
        let mut rows = vec![vec!["COMPONENT".into(), "NODE".into(), "CURRENT".into(), "TARGET".into()]];
        rows.extend(
            p.kubelets.iter().map(|r| vec![r.component.clone(), r.node.clone(), r.current.clone(), r.target.clone()]),
        );
        out.push_str(&tabulate(&rows));
        out.push('\n');
    }
    let same_minor = p.cluster_version.rsplit_once('.').map(|(m, _)| m) == target.rsplit_once('.').map(|(m, _)| m);
    let description = if same_minor {
        format!("version in the {} series", target.rsplit_once('.').map_or(target.as_str(), |(m, _)| m))
    } else {
        "stable version".to_string()
    };
    out.push_str(&format!("Upgrade to the latest {description}:\n\n"));
    let mut rows = vec![vec!["COMPONENT".into(), "NODE".into(), "CURRENT".into(), "TARGET".into()]];
    rows.extend(
        p.components.iter().map(|r| vec![r.component.clone(), r.node.clone(), r.current.clone(), r.target.clone()]),
    );
    out.push_str(&tabulate(&rows));
    out.push_str(&format!(
        "\nYou can now apply the upgrade by executing the following command:\n\n\tkubeadm upgrade apply {target}\n\n"
    ));
    for v in &p.needs_newer_kubeadm {
        out.push_str(&format!(
            "Note: {v} is newer still; to upgrade to it, you have to update kubeadm to {v} first.\n\n"
        ));
    }
    out.push_str(PLAN_SEPARATOR);
    out.push_str(
        "\n\n\nThe table below shows the current state of component configs as understood by this version of kubeadm.\n\
         Configs that have a \"yes\" mark in the \"MANUAL UPGRADE REQUIRED\" column require manual config upgrade or\n\
         resetting to kubeadm defaults before a successful upgrade can be performed. The version to manually\n\
         upgrade to is denoted in the \"PREFERRED VERSION\" column.\n\n",
    );
    let mut rows = vec![vec![
        "API GROUP".into(),
        "CURRENT VERSION".into(),
        "PREFERRED VERSION".into(),
        "MANUAL UPGRADE REQUIRED".into(),
    ]];
    rows.extend(p.component_configs.iter().map(|c| {
        vec![
            c.api_group.clone(),
            c.current_version.clone(),
            c.preferred_version.clone(),
            if c.manual_upgrade_required { "yes" } else { "no" }.to_string(),
        ]
    }));
    out.push_str(&tabulate(&rows));
    out.push_str(PLAN_SEPARATOR);
    out.push('\n');
    out
}

/// The kube-proxy and kubelet component config versions kubeadm of every supported minor
/// reads and writes (`kubeproxy.config.k8s.io/v1alpha1`, `kubelet.config.k8s.io/v1beta1`).
fn component_configs() -> Vec<ComponentConfigState> {
    [("kubeproxy.config.k8s.io", "v1alpha1"), ("kubelet.config.k8s.io", "v1beta1")]
        .into_iter()
        .map(|(group, v)| ComponentConfigState {
            api_group: group.to_string(),
            current_version: v.to_string(),
            preferred_version: v.to_string(),
            manual_upgrade_required: false,
        })
        .collect()
}

/// The image tag of the first container named `container` (else the first) of a workload's
/// pod template.
fn template_tag(obj: &Value, container: &str) -> Option<String> {
    let containers = obj.pointer("/spec/template/spec/containers").and_then(Value::as_array)?;
    let c = containers.iter().find(|c| c["name"] == container).or(containers.first())?;
    c["image"].as_str().map(|i| stepstone_core::snapshot::image_tag(i).to_string())
}

/// The component and kubelet tables of a plan to `target`, with the images `kubeadm upgrade
/// apply` would set.
fn plan_rows(store: &Store, cluster: &KubeVersion, target: &KubeVersion) -> (Vec<PlanRow>, Vec<PlanRow>) {
    let row = |component: &str, node: &str, current: String, target: String| PlanRow {
        component: component.to_string(),
        node: node.to_string(),
        current,
        target,
    };
    let mut nodes: Vec<&Arc<Value>> = store.iter(NODES, None, None).collect();
    nodes.sort_by(|a, b| store::name_of(a).cmp(store::name_of(b)));
    let control_planes: Vec<&str> = nodes.iter().filter(|n| is_control_plane(n)).map(|n| store::name_of(n)).collect();
    let mut components = Vec::new();
    for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        for node in &control_planes {
            // A node whose static pod the fleet does not carry runs the cluster version, as
            // kubeadm wrote its manifest.
            let current =
                static_pod(store, component, node).and_then(|p| image_tag(p)).unwrap_or_else(|| cluster.canonical());
            components.push(row(component, node, current, target.canonical()));
        }
    }
    if let Some(ds) = store.get(DAEMONSETS, "kube-system", "kube-proxy")
        && let Some(current) = template_tag(ds, "kube-proxy")
    {
        components.push(row("kube-proxy", "", current, target.canonical()));
    }
    if let Some(deploy) = store.get(DEPLOYMENTS, "kube-system", "coredns")
        && let Some(current) = template_tag(deploy, "coredns")
    {
        let next = cluster_config_dns_tag(store)
            .or_else(|| kubeadm_coredns_tag(target).map(String::from))
            .unwrap_or_else(|| current.clone());
        components.push(row("CoreDNS", "", current, next));
    }
    // Without etcd static pods the etcd is external, which kubeadm leaves out of the plan.
    for node in &control_planes {
        if let Some(current) = static_pod(store, "etcd", node).and_then(|p| image_tag(p)) {
            let next = kubeadm_etcd_tag(target, &current).unwrap_or_else(|| current.clone());
            components.push(row("etcd", node, current, next));
        }
    }
    let kubelets = nodes
        .iter()
        .filter_map(|n| {
            let current = n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str)?;
            Some(row("kubelet", store::name_of(n), current.to_string(), target.canonical()))
        })
        .collect();
    (components, kubelets)
}

/// The node-operation API: what the rollout's lab backend calls instead of SSH.
#[derive(Clone, Debug)]
pub struct NodeOps {
    shared: Arc<Shared>,
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
fn static_pod<'a>(store: &'a Store, component: &str, node: &str) -> Option<&'a Arc<Value>> {
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

fn apiserver_versions(store: &Store) -> Vec<KubeVersion> {
    store
        .iter(PODS, Some("kube-system"), None)
        .filter(|p| {
            store::labels_of(p).get("component").map(String::as_str) == Some("kube-apiserver")
                || store::name_of(p).starts_with("kube-apiserver-")
        })
        .filter_map(|p| image_tag(p).and_then(|t| t.parse::<KubeVersion>().ok()))
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
                .filter_map(|n| n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str))
                .filter_map(|v| v.parse::<KubeVersion>().ok())
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
}

fn annotation<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    store::meta(node).get("annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

fn set_ready(node: &mut Value, status: &str, reason: &str, message: &str, now: Timestamp) {
    let t = clock::format(now);
    if !node.get("status").is_some_and(Value::is_object) {
        node["status"] = json!({});
    }
    let conds = node["status"].as_object_mut().expect("object").entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conds.as_array_mut() else { return };
    match list.iter_mut().find(|c| c["type"] == "Ready") {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(t);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            c["lastHeartbeatTime"] = json!(t);
        }
        None => list.push(json!({"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": t, "lastTransitionTime": t})),
    }
    // TaintNodesByCondition: the node lifecycle controller keeps NotReady nodes out of scheduling.
    let taint_key = match status {
        "True" => None,
        "False" => Some("node.kubernetes.io/not-ready"),
        _ => Some("node.kubernetes.io/unreachable"),
    };
    if !node.get("spec").is_some_and(Value::is_object) {
        node["spec"] = json!({});
    }
    let spec = node["spec"].as_object_mut().expect("object");
    let mut taints: Vec<Value> = spec.get("taints").and_then(Value::as_array).cloned().unwrap_or_default();
    taints.retain(|t| t["key"] != "node.kubernetes.io/not-ready" && t["key"] != "node.kubernetes.io/unreachable");
    if let Some(k) = taint_key {
        taints.push(json!({"key": k, "effect": "NoSchedule", "timeAdded": t}));
    }
    if taints.is_empty() {
        spec.remove("taints");
    } else {
        spec.insert("taints".into(), Value::Array(taints));
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

impl NodeOps {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        NodeOps { shared }
    }

    fn node(&self, store: &Store, name: &str) -> Result<Arc<Value>, NodeOpError> {
        store.get(NODES, "", name).cloned().ok_or_else(|| NodeOpError::UnknownNode(name.to_string()))
    }

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
            .filter_map(|c| static_pod(store, c, &name).and_then(|p| image_tag(p)).map(|t| (c.to_string(), t)))
            .collect();
        NodeFacts {
            control_plane: is_control_plane(node),
            generation,
            os_image: info("osImage"),
            kernel_version: info("kernelVersion"),
            cgroup_version: labels.get(CGROUP_LABEL).cloned(),
            container_runtime: info("containerRuntimeVersion"),
            packages,
            kubelet_version: info("kubeletVersion"),
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
        store.iter(NODES, None, None).map(|n| self.facts_of(&store, n)).collect()
    }

    /// `apt-get install kubeadm=1.35.3-1.1` (or kubelet/kubectl). Installing the kubelet
    /// package does not restart the running kubelet: that is [`restart_kubelet`](Self::restart_kubelet).
    pub fn install_package(&self, node: &str, package: Package, version: &str) -> Result<NodeFacts, NodeOpError> {
        version_of_package(version)?;
        let now = self.shared.now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        let mut next = (*n).clone();
        let m = meta_mut(&mut next);
        let ann = m.entry("annotations").or_insert_with(|| json!({}));
        ann[package.annotation()] = json!(version.trim());
        let updated = store.update(NODES, next, Part::All, false).expect("node exists");
        let pkg = format!("{package:?}").to_lowercase();
        record_event(
            &mut store,
            now,
            &updated,
            "Normal",
            "PackageInstalled",
            &format!("{pkg} {} installed", version.trim()),
            "stepstone-lab",
        );
        drop(store);
        self.shared.wake.notify_one();
        self.facts(node)
    }

    /// `kubeadm upgrade apply vX` on a control-plane node: the cluster version becomes `vX` and
    /// this node's static pods get the new images (they restart and turn Ready again).
    pub fn kubeadm_upgrade_apply(
        &self,
        node: &str,
        version: &str,
        opts: &UpgradeOptions,
    ) -> Result<UpgradeReport, NodeOpError> {
        let target = version.trim().parse::<KubeVersion>().map_err(|_| NodeOpError::BadVersion(version.to_string()))?;
        let now = self.shared.now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        if !is_control_plane(&n) {
            return Err(NodeOpError::NotControlPlane { node: node.to_string() });
        }
        self.check_kubeadm(&n, &target)?;
        let current =
            cluster_version(&store).ok_or_else(|| NodeOpError::NoClusterVersion { node: node.to_string() })?;
        if target.minor().minus(current.minor()) > 1 {
            return Err(NodeOpError::SkipsMinor {
                node: node.to_string(),
                target: target.canonical(),
                current: current.canonical(),
            });
        }
        self.check_cgroup(&store, &n, opts)?;
        set_cluster_version(&mut store, &target, now);
        let apiserver_before = static_pod(&store, "kube-apiserver", node).is_some();
        let mut changed = upgrade_static_pods(&mut store, node, &target, now);
        // kubeadm writes the new kube-apiserver manifest; without a static pod in the fleet the
        // lab cannot compare images, and a new cluster version means a new manifest.
        self.apiserver_restarted(&changed, !apiserver_before && target != current);
        let (addons, addon_output) = upgrade_addons(&mut store, node, &target, "kubeadm upgrade apply", now);
        changed.extend(addons);
        record_event(
            &mut store,
            now,
            &n,
            "Normal",
            "KubeadmUpgradeApply",
            &format!("kubeadm upgrade apply {} succeeded", target.canonical()),
            "kubeadm",
        );
        drop(store);
        self.shared.wake.notify_one();
        Ok(UpgradeReport {
            node: node.to_string(),
            version: target.canonical(),
            changed,
            message: format!(
                "{}[upgrade/successful] SUCCESS! Your cluster was upgraded to \"{}\". Enjoy!\n\n[upgrade/kubelet] Now that your control plane is upgraded, please proceed with upgrading your kubelets if you haven't already done so.",
                addon_output.iter().map(|l| format!("{l}\n")).collect::<String>(),
                target.canonical()
            ),
        })
    }

    /// `kubeadm upgrade node`: a control-plane node's static pods follow the cluster version;
    /// every node picks up the kubelet configuration (`failCgroupV1`) from `kubelet-config`.
    pub fn kubeadm_upgrade_node(&self, node: &str, opts: &UpgradeOptions) -> Result<UpgradeReport, NodeOpError> {
        let now = self.shared.now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        let target = cluster_version(&store).ok_or_else(|| NodeOpError::NoClusterVersion { node: node.to_string() })?;
        self.check_kubeadm(&n, &target)?;
        self.check_cgroup(&store, &n, opts)?;
        let fail_v1 = kubelet_config_fail_cgroup_v1(&store);
        let mut next = (*n).clone();
        let ann = meta_mut(&mut next).entry("annotations").or_insert_with(|| json!({}));
        ann[FAIL_CGROUP_V1_ANNOTATION] = json!(fail_v1.to_string());
        store.update(NODES, next, Part::All, false).expect("node exists");
        let (changed, addon_output) = if is_control_plane(&n) {
            let mut changed = upgrade_static_pods(&mut store, node, &target, now);
            self.apiserver_restarted(&changed, false);
            let (addons, output) = upgrade_addons(&mut store, node, &target, "kubeadm upgrade node", now);
            changed.extend(addons);
            (changed, output)
        } else {
            (Vec::new(), Vec::new())
        };
        record_event(&mut store, now, &n, "Normal", "KubeadmUpgradeNode", "kubeadm upgrade node succeeded", "kubeadm");
        drop(store);
        self.shared.wake.notify_one();
        Ok(UpgradeReport {
            node: node.to_string(),
            version: target.canonical(),
            changed,
            message: format!(
                "{}[upgrade] The configuration for this node was successfully upgraded!\n[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager.",
                addon_output.iter().map(|l| format!("{l}\n")).collect::<String>()
            ),
        })
    }

    /// `kubeadm upgrade plan [VERSION]` on a control-plane node: the cluster and kubeadm
    /// versions, the release `kubeadm upgrade apply` can take the cluster to with the installed
    /// kubeadm (see [`UpgradePlan::target`]), the component and kubelet tables for it, and
    /// kubeadm's refusals for a VERSION it would not apply. Changes nothing.
    pub fn kubeadm_upgrade_plan(&self, node: &str, target: Option<&str>) -> Result<UpgradePlan, NodeOpError> {
        let requested = match target.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => Some(t.parse::<KubeVersion>().map_err(|_| NodeOpError::BadVersion(t.to_string()))?),
            None => None,
        };
        let store = self.shared.store();
        let n = self.node(&store, node)?;
        if !is_control_plane(&n) {
            return Err(NodeOpError::PlanNotControlPlane { node: node.to_string() });
        }
        let cluster =
            cluster_version(&store).ok_or_else(|| NodeOpError::NoClusterVersion { node: node.to_string() })?;
        // A node without the annotation was provisioned with packages matching its kubelet.
        let kubeadm = match annotation(&n, KUBEADM_ANNOTATION) {
            Some(k) => version_of_package(k)?,
            None => cluster.clone(),
        };
        let data = ReleaseData::embedded();
        let choice = choose_plan_target(node, &cluster, &kubeadm, requested.as_ref(), data)?;
        let (components, kubelets) = match &choice.target {
            Some(t) => plan_rows(&store, &cluster, t),
            None => (Vec::new(), Vec::new()),
        };
        let mut plan = UpgradePlan {
            node: node.to_string(),
            cluster_version: cluster.canonical(),
            kubeadm_version: kubeadm.canonical(),
            requested: requested.map(|r| r.canonical()),
            target: choice.target.map(|t| t.canonical()),
            target_source: choice.source,
            latest_in_series: data.latest_patch(cluster.minor()).filter(|l| **l > cluster).map(KubeVersion::canonical),
            needs_newer_kubeadm: choice.needs_newer_kubeadm.iter().map(KubeVersion::canonical).collect(),
            components,
            kubelets,
            component_configs: component_configs(),
            message: String::new(),
        };
        plan.message = render_plan(&plan);
        Ok(plan)
    }

    /// A `kubeadm upgrade` that gave kube-apiserver a new image (or `forced`) restarted it, so its
    /// `/metrics` start again from zero. The lab's one API endpoint stands for every control-plane
    /// node's apiserver behind the load balancer, so each restart resets it.
    fn apiserver_restarted(&self, changed: &[String], forced: bool) {
        if forced || changed.iter().any(|c| c.starts_with("kube-apiserver:")) {
            self.shared.metrics.reset();
        }
    }

    fn check_kubeadm(&self, n: &Value, target: &KubeVersion) -> Result<(), NodeOpError> {
        let installed = annotation(n, KUBEADM_ANNOTATION).map(version_of_package).transpose()?;
        if let Some(k) = installed
            && kubeadm_too_old(&k, target)
        {
            return Err(NodeOpError::KubeadmTooOld {
                node: store::name_of(n).to_string(),
                target: target.canonical(),
                kubeadm: k.canonical(),
            });
        }
        Ok(())
    }

    fn check_cgroup(&self, store: &Store, n: &Value, opts: &UpgradeOptions) -> Result<(), NodeOpError> {
        let cgroup_v1 = store::labels_of(n).get(CGROUP_LABEL).map(String::as_str) == Some("v1");
        let kubelet = annotation(n, KUBELET_ANNOTATION).and_then(|k| version_of_package(k).ok());
        let kubeadm = annotation(n, KUBEADM_ANNOTATION).and_then(|k| version_of_package(k).ok());
        let newest = kubelet.into_iter().chain(kubeadm).max();
        if cgroup_v1
            && newest.as_ref().is_some_and(|v| v.minor() >= stepstone_core::version::Minor::new(1, 35))
            && kubelet_config_fail_cgroup_v1(store)
            && !opts.ignores("SystemVerification")
        {
            return Err(NodeOpError::CgroupV1Preflight {
                node: store::name_of(n).to_string(),
                kubelet: newest.map(|v| v.canonical()).unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// `systemctl restart kubelet`: NotReady now, back after the restart time with the
    /// installed kubelet's version, unless the kubelet refuses to start (cgroup v1 with kubelet
    /// >= 1.35 and `failCgroupV1` on) or a fault keeps it down.
    pub fn restart_kubelet(&self, node: &str) -> Result<NodeFacts, NodeOpError> {
        let now = self.shared.now();
        let mut store = self.shared.store();
        let n = self.node(&store, node)?;
        let version = annotation(&n, KUBELET_ANNOTATION)
            .map(version_of_package)
            .transpose()?
            .map(|v| v.canonical())
            .or_else(|| n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        let never = lock(&self.shared.faults).never_return.contains(node);
        let until = (!never).then(|| clock::format(clock::plus(now, self.shared.timing.kubelet_restart_seconds)));
        lock(&self.shared.kubelets)
            .insert(node.to_string(), KubeletState::Restarting { until, version: version.clone() });
        let mut next = (*n).clone();
        set_ready(&mut next, "False", "KubeletNotReady", "kubelet is restarting", now);
        let updated = store.update(NODES, next, Part::All, false).expect("node exists");
        record_event(&mut store, now, &updated, "Normal", "Starting", "Starting kubelet.", "kubelet");
        drop(store);
        self.shared.wake.notify_one();
        self.facts(node)
    }
}

fn kubelet_config_fail_cgroup_v1(store: &Store) -> bool {
    let Some(cm) = store.get(CONFIGMAPS, "kube-system", "kubelet-config") else { return true };
    let text = cm.pointer("/data/kubelet").and_then(Value::as_str).unwrap_or("");
    !text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("failCgroupV1:") && l.trim_start_matches("failCgroupV1:").trim() == "false"
    })
}

fn set_cluster_version(store: &mut Store, v: &KubeVersion, now: Timestamp) {
    let existing = store.get(CONFIGMAPS, "kube-system", "kubeadm-config").cloned();
    match existing {
        Some(cm) => {
            let mut next = (*cm).clone();
            let text = cm.pointer("/data/ClusterConfiguration").and_then(Value::as_str).unwrap_or("").to_string();
            let mut replaced = false;
            let mut lines: Vec<String> = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("kubernetesVersion:") {
                        replaced = true;
                        format!("kubernetesVersion: {}", v.canonical())
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            if !replaced {
                lines.push(format!("kubernetesVersion: {}", v.canonical()));
            }
            next["data"]["ClusterConfiguration"] = json!(lines.join("\n") + "\n");
            let _ = store.update(CONFIGMAPS, next, Part::All, false);
        }
        None => {
            let cm = json!({"metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
                "data": {"ClusterConfiguration": format!(
                    "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {}\n", v.canonical())}});
            let _ = store.create(CONFIGMAPS, cm, now, true);
        }
    }
}

/// Point the static pods of `node` at `target` (etcd at kubeadm's etcd for that minor) and
/// restart them. Returns `component: old -> new` for each change.
fn upgrade_static_pods(store: &mut Store, node: &str, target: &KubeVersion, now: Timestamp) -> Vec<String> {
    let mut changed = Vec::new();
    for component in STATIC_COMPONENTS {
        let Some(pod) = static_pod(store, component, node).cloned() else { continue };
        let new_tag = if component == "etcd" {
            match kubeadm_etcd_tag(target, &image_tag(&pod).unwrap_or_default()) {
                Some(e) => e,
                None => continue,
            }
        } else {
            target.canonical()
        };
        let old_tag = image_tag(&pod).unwrap_or_default();
        if old_tag == new_tag {
            continue;
        }
        let mut next = (*pod).clone();
        if let Some(c) = next.pointer_mut("/spec/containers/0") {
            let image = c["image"].as_str().unwrap_or("").to_string();
            let base = stepstone_core::snapshot::image_name(&image).to_string();
            c["image"] = json!(format!("{base}:{new_tag}"));
        }
        restart_containers(&mut next, now, false);
        let _ = store.update(PODS, next, Part::All, false);
        changed.push(format!("{component}: {old_tag} -> {new_tag}"));
    }
    changed
}

/// The etcd image tag `kubeadm upgrade` to `target` sets where etcd runs `current`: the etcd
/// of the target's minor, never older than `current` (kubeadm never downgrades etcd). `None`
/// when the release data does not know the minor.
fn kubeadm_etcd_tag(target: &KubeVersion, current: &str) -> Option<String> {
    // kubeadm's etcd images carry a build suffix: etcd 3.6.4 is `registry.k8s.io/etcd:3.6.4-0`.
    let etcd = ReleaseData::embedded()
        .get(target.minor())
        .map(|r| if r.etcd.contains('-') { r.etcd.clone() } else { format!("{}-0", r.etcd) })?;
    Some(if !current.is_empty() && etcd_older(&etcd, current) { current.to_string() } else { etcd })
}

/// The CoreDNS image tag `kubeadm upgrade apply` of each minor deploys: kubeadm's
/// `constants.CoreDNSVersion` (cmd/kubeadm/app/constants/constants.go) of that release.
/// Sources: 1.32 from kubernetes/kubernetes constants.go on the 1.32 branch (with
/// `SupportedEtcdVersion` 29..32); 1.33, 1.34 and 1.35 from `kubeadm config images list` and
/// `kubeadm upgrade plan` output of v1.33.5/v1.33.7, v1.34.0/v1.34.1 and v1.35.0; 1.36 from the
/// images of kubeadm-built (kind) v1.36.1 clusters. Not listed, so the running image is kept:
/// 1.31 (published outputs disagree between v1.11.1 and v1.11.3), older minors, and 1.37+.
const KUBEADM_COREDNS: &[(u32, &str)] =
    &[(32, "v1.11.3"), (33, "v1.12.0"), (34, "v1.12.1"), (35, "v1.13.1"), (36, "v1.14.2")];

/// The CoreDNS tag kubeadm deploys with `target`, when known.
pub fn kubeadm_coredns_tag(target: &KubeVersion) -> Option<&'static str> {
    if target.major != 1 {
        return None;
    }
    KUBEADM_COREDNS.iter().find(|(m, _)| *m == target.minor).map(|(_, t)| *t)
}

/// `dns.imageTag` of the kubeadm-config ClusterConfiguration: a user's pin that kubeadm
/// deploys instead of its own CoreDNS version.
fn cluster_config_dns_tag(store: &Store) -> Option<String> {
    let cm = store.get(CONFIGMAPS, "kube-system", "kubeadm-config")?;
    let text = cm.pointer("/data/ClusterConfiguration").and_then(Value::as_str)?;
    let mut in_dns = false;
    for line in text.lines() {
        if !line.starts_with([' ', '\t']) {
            in_dns = line.trim_end() == "dns:";
            continue;
        }
        if in_dns && let Some(v) = line.trim().strip_prefix("imageTag:") {
            let v = v.trim().trim_matches('"').trim_matches('\'');
            return (!v.is_empty()).then(|| v.to_string());
        }
    }
    None
}

/// Control-plane nodes whose kube-apiserver runs another image than `node`'s (upstream
/// `UnupgradedControlPlaneInstances`): kubeadm upgrades the addons only once none is left,
/// so with several control-plane nodes it is the last `kubeadm upgrade node` that does it.
fn unupgraded_control_planes(store: &Store, node: &str, target: &KubeVersion) -> Vec<String> {
    let images: BTreeMap<String, String> = store
        .iter(PODS, Some("kube-system"), None)
        .filter(|p| store::labels_of(p).get("component").map(String::as_str) == Some("kube-apiserver"))
        .filter_map(|p| {
            let on = p.pointer("/spec/nodeName").and_then(Value::as_str)?.to_string();
            let containers = p.pointer("/spec/containers").and_then(Value::as_array)?;
            let c = containers.iter().find(|c| c["name"] == "kube-apiserver").or(containers.first())?;
            Some((on, c["image"].as_str().unwrap_or("").to_string()))
        })
        .collect();
    match images.get(node) {
        Some(mine) => images.iter().filter(|(_, image)| *image != mine).map(|(n, _)| n.clone()).collect(),
        None => images
            .iter()
            .filter(|(_, image)| stepstone_core::snapshot::image_tag(image) != target.canonical())
            .map(|(n, _)| n.clone())
            .collect(),
    }
}

/// Point container `container` (else the first) of a workload's pod template at `tag`,
/// keeping the image repository. Returns the old and new image when it changed.
fn retag_template(obj: &mut Value, container: &str, tag: &str) -> Option<(String, String)> {
    let containers = obj.pointer_mut("/spec/template/spec/containers").and_then(Value::as_array_mut)?;
    let idx = containers.iter().position(|c| c["name"] == container).unwrap_or(0);
    let c = containers.get_mut(idx)?;
    let old = c["image"].as_str()?.to_string();
    let new = format!("{}:{tag}", stepstone_core::snapshot::image_name(&old));
    if new == old {
        return None;
    }
    c["image"] = json!(new);
    Some((old, new))
}

/// kubeadm's `addon/coredns` and `addon/kube-proxy` phases: the `coredns` Deployment gets the
/// CoreDNS image kubeadm pins for `target` and the `kube-proxy` DaemonSet `kube-proxy:<target>`;
/// their controllers then roll the pods. Only addons the cluster has are touched (upstream
/// checks their ConfigMaps, which `kubectl get` snapshots do not carry, so the lab looks at
/// the workloads). Returns `addon: old -> new` changes and kubeadm's output lines.
fn upgrade_addons(
    store: &mut Store,
    node: &str,
    target: &KubeVersion,
    command: &str,
    now: Timestamp,
) -> (Vec<String>, Vec<String>) {
    let mut changed = Vec::new();
    let mut output = Vec::new();
    let pending = unupgraded_control_planes(store, node, target);
    if !pending.is_empty() {
        output.push(format!(
            "[upgrade/addons] skip upgrade addons because control plane instances [{}] have not been upgraded",
            pending.join(" ")
        ));
        return (changed, output);
    }
    let coredns_tag = cluster_config_dns_tag(store).or_else(|| kubeadm_coredns_tag(target).map(String::from));
    let kube_proxy_tag = target.canonical();
    let addons = [
        (DEPLOYMENTS, "coredns", "coredns", "CoreDNS", coredns_tag),
        (DAEMONSETS, "kube-proxy", "kube-proxy", "kube-proxy", Some(kube_proxy_tag)),
    ];
    for (res, name, container, label, tag) in addons {
        let Some(obj) = store.get(res, "kube-system", name).cloned() else { continue };
        output.push(format!("[addons] Applied essential addon: {label}"));
        let Some(tag) = tag else { continue };
        let mut next = (*obj).clone();
        let Some((old, new)) = retag_template(&mut next, container, &tag) else { continue };
        if res == DAEMONSETS {
            // kubeadm replaces the DaemonSet with its own manifest, whose strategy is a plain
            // RollingUpdate (the apiserver fills in one unavailable pod, no surge): a site's
            // OnDelete or custom maxUnavailable on kube-proxy does not survive the upgrade.
            next["spec"]["updateStrategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}});
            // kubeadm writes through the API, which moves the template generation on a template change.
            crate::api::set_template_generation(&mut next, Some(&obj));
        }
        let Ok(updated) = store.update(res, next, Part::Main, false) else { continue };
        record_event(
            store,
            now,
            &updated,
            "Normal",
            "KubeadmAddonUpgrade",
            &format!("{command} {}: image {old} -> {new}", target.canonical()),
            "kubeadm",
        );
        let old_tag = stepstone_core::snapshot::image_tag(&old);
        changed.push(format!("{name}: {old_tag} -> {tag}"));
    }
    (changed, output)
}

fn etcd_older(candidate: &str, current: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split(['.', '-']).filter_map(|p| p.parse().ok()).collect() };
    parse(candidate) < parse(current)
}

/// Restart a pod's containers now: not ready until the kubelet simulation sees the start
/// delay pass; crash-looping ones wait in back-off instead.
pub fn restart_containers(pod: &mut Value, now: Timestamp, crash: bool) {
    let t = clock::format(now);
    let images: Vec<(String, String)> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["image"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let previous: BTreeMap<String, i64> = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["restartCount"].as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let statuses: Vec<Value> = images
        .iter()
        .map(|(name, image)| {
            let restarts = previous.get(name).map_or(0, |r| r + 1);
            let state = if crash {
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off restarting failed container {name}")}})
            } else {
                json!({"running": {"startedAt": t}})
            };
            json!({"name": name, "image": image, "imageID": "", "ready": false, "started": !crash,
                "restartCount": restarts, "state": state,
                "lastState": {"terminated": {"exitCode": if crash {1} else {0}, "reason": if crash {"Error"} else {"Completed"}, "finishedAt": t}}})
        })
        .collect();
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    pod["status"]["containerStatuses"] = json!(statuses);
    set_pod_condition(pod, "Ready", false, now);
    set_pod_condition(pod, "ContainersReady", false, now);
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

/// Complete kubelet restarts that are due: the node reports the new version and Ready, or
/// stays NotReady with an error Event. Returns the earliest pending restart end.
pub(crate) fn finish_restarts(shared: &Shared, store: &mut Store, now: Timestamp) -> Option<Timestamp> {
    let mut next_due: Option<Timestamp> = None;
    let due: Vec<(String, String)> = {
        let kubelets = lock(&shared.kubelets);
        kubelets
            .iter()
            .filter_map(|(node, st)| match st {
                KubeletState::Restarting { until: Some(u), version } => {
                    let at = clock::parse(u)?;
                    if at <= now {
                        Some((node.clone(), version.clone()))
                    } else {
                        next_due = Some(next_due.map_or(at, |d: Timestamp| d.min(at)));
                        None
                    }
                }
                _ => None,
            })
            .collect()
    };
    for (node, version) in due {
        let Some(n) = store.get(NODES, "", &node).cloned() else {
            lock(&shared.kubelets).remove(&node);
            continue;
        };
        let cgroup_v1 = store::labels_of(&n).get(CGROUP_LABEL).map(String::as_str) == Some("v1");
        let opted_out = annotation(&n, FAIL_CGROUP_V1_ANNOTATION) == Some("false");
        let new_minor = version.parse::<KubeVersion>().ok().map(|v| v.minor());
        let refuses =
            cgroup_v1 && !opted_out && new_minor.is_some_and(|m| m >= stepstone_core::version::Minor::new(1, 35));
        let mut next = (*n).clone();
        if refuses {
            // The lab reports the refusal at once (Ready=Unknown, the `unreachable` NoSchedule
            // taint); the node lifecycle controller adds the NoExecute taint once the grace period
            // has passed without a status from this node.
            lock(&shared.kubelets).insert(node.clone(), KubeletState::Failed { reason: CGROUP_V1_ERROR.into() });
            set_ready(&mut next, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", now);
            let updated = store.update(NODES, next, Part::All, false).expect("node exists");
            record_event(
                store,
                now,
                &updated,
                "Warning",
                "KubeletFailed",
                &format!("failed to run Kubelet: {CGROUP_V1_ERROR}"),
                "kubelet",
            );
            continue;
        }
        let old_version =
            n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).unwrap_or("").to_string();
        lock(&shared.kubelets).insert(node.clone(), KubeletState::Running);
        if !version.is_empty() {
            next["status"]["nodeInfo"]["kubeletVersion"] = json!(version);
        }
        set_ready(&mut next, "True", "KubeletReady", "kubelet is posting ready status", now);
        // The kubelet posts its pressure conditions again, replacing the controller's Unknown.
        if let Some(list) = next.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter(|c| c["status"] == "Unknown") {
                if let Some((_, reason, message)) = KUBELET_CONDITIONS.iter().find(|(k, _, _)| c["type"] == *k) {
                    c["status"] = json!("False");
                    c["reason"] = json!(reason);
                    c["message"] = json!(message);
                    c["lastHeartbeatTime"] = json!(clock::format(now));
                    c["lastTransitionTime"] = json!(clock::format(now));
                }
            }
        }
        let updated = store.update(NODES, next, Part::All, false).expect("node exists");
        record_event(
            store,
            now,
            &updated,
            "Normal",
            "NodeReady",
            &format!("Node {node} status is now: NodeReady"),
            "kubelet",
        );
        // A new kubelet restarts every container on the node (the container spec hash changes).
        if old_version != version {
            let faults = lock(&shared.faults).clone();
            let pods: Vec<Arc<Value>> = store
                .iter(PODS, None, None)
                .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node.as_str()))
                .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
                .cloned()
                .collect();
            for p in pods {
                let mut np = (*p).clone();
                let crash = faults.crash_loops(store::namespace_of(&p), store::name_of(&p), &node);
                restart_containers(&mut np, now, crash);
                let _ = store.update(PODS, np, Part::All, false);
            }
        }
    }
    next_due
}

/// kube-controller-manager's `--node-monitor-grace-period` default for the cluster's version:
/// 40s before v1.32, 50s from v1.32 on (kubernetes/kubernetes#126287).
pub(crate) fn node_monitor_grace_seconds(store: &Store) -> f64 {
    match cluster_version(store) {
        Some(v) if v.minor() < stepstone_core::version::Minor::new(1, 32) => 40.0,
        _ => 50.0,
    }
}

/// When the node was last heard from: the Ready condition's `lastHeartbeatTime` (what the kubelet
/// last posted) or the node Lease's `renewTime`, whichever is newer.
pub(crate) fn last_heard(store: &Store, node: &Value) -> Option<Timestamp> {
    let posted = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["lastHeartbeatTime"].as_str())
        .and_then(clock::parse);
    let renewed = store
        .get(crate::resources::LEASES, "kube-node-lease", store::name_of(node))
        .and_then(|l| l.pointer("/spec/renewTime").and_then(Value::as_str).and_then(clock::parse));
    posted.into_iter().chain(renewed).max()
}

/// The conditions the kubelet posts, with what a healthy kubelet reports for the pressure ones.
const KUBELET_CONDITIONS: [(&str, &str, &str); 3] = [
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
];

/// The node lifecycle controller's verdict on a node whose kubelet stopped posting status
/// (upstream `tryUpdateNodeHealth`): Ready and the pressure conditions turn `Unknown` with reason
/// `NodeStatusUnknown`; `lastHeartbeatTime` keeps the kubelet's last post. Returns whether the Ready
/// condition changed.
pub(crate) fn mark_status_unknown(node: &mut Value, now: Timestamp) -> bool {
    let t = clock::format(now);
    if !node.get("status").is_some_and(Value::is_object) {
        node["status"] = json!({});
    }
    let conds = node["status"].as_object_mut().expect("object").entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conds.as_array_mut() else { return false };
    let mut ready_changed = false;
    let mut has_ready = false;
    for c in list.iter_mut() {
        let kubelets = c["type"] == "Ready" || KUBELET_CONDITIONS.iter().any(|(k, _, _)| c["type"] == *k);
        has_ready |= c["type"] == "Ready";
        if !kubelets || c["status"] == "Unknown" {
            continue;
        }
        ready_changed |= c["type"] == "Ready";
        c["status"] = json!("Unknown");
        c["reason"] = json!("NodeStatusUnknown");
        c["message"] = json!("Kubelet stopped posting node status.");
        c["lastTransitionTime"] = json!(t);
    }
    if !has_ready {
        list.push(json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.", "lastTransitionTime": t}));
        ready_changed = true;
    }
    ready_changed
}

/// Set the node lifecycle controller's taints (TaintNodesByCondition and TaintBasedEvictions):
/// `key` with `NoSchedule` and `NoExecute`, or none. The other of `not-ready` and `unreachable`
/// goes; a taint already there keeps its `timeAdded`, which taint-based eviction counts from.
/// Returns whether the taints changed.
pub(crate) fn set_lifecycle_taints(node: &mut Value, key: Option<&str>, now: Timestamp) -> bool {
    if !node.get("spec").is_some_and(Value::is_object) {
        node["spec"] = json!({});
    }
    let spec = node["spec"].as_object_mut().expect("object");
    let before: Vec<Value> = spec.get("taints").and_then(Value::as_array).cloned().unwrap_or_default();
    let lifecycle = |t: &Value| t["key"] == crate::api::TAINT_NOT_READY || t["key"] == crate::api::TAINT_UNREACHABLE;
    let mut taints: Vec<Value> = before.iter().filter(|t| !lifecycle(t)).cloned().collect();
    if let Some(k) = key {
        for effect in ["NoSchedule", "NoExecute"] {
            let kept = before.iter().find(|t| t["key"] == k && t["effect"] == effect).cloned();
            taints.push(kept.unwrap_or_else(|| json!({"key": k, "effect": effect, "timeAdded": clock::format(now)})));
        }
    }
    if taints == before {
        return false;
    }
    if taints.is_empty() {
        spec.remove("taints");
    } else {
        spec.insert("taints".into(), Value::Array(taints));
    }
    true
}

/// Nodes whose kubelet is not running (pods there do not progress).
pub(crate) fn kubelet_down(shared: &Shared) -> std::collections::BTreeSet<String> {
    lock(&shared.kubelets).iter().filter(|(_, s)| **s != KubeletState::Running).map(|(n, _)| n.clone()).collect()
}

// ---- HTTP: /lab/v1

fn op_error(e: NodeOpError) -> Response {
    (e.http_code(), axum::Json(json!({"error": e.to_string()}))).into_response()
}

fn ops(shared: &Arc<Shared>) -> NodeOps {
    NodeOps::new(shared.clone())
}

async fn list_nodes(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(ops(&shared).list()).into_response()
}

async fn get_node(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match ops(&shared).facts(&name) {
        Ok(f) => axum::Json(f).into_response(),
        Err(e) => op_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct InstallBody {
    package: String,
    version: String,
}

async fn install(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    axum::Json(b): axum::Json<InstallBody>,
) -> Response {
    let result = b.package.parse::<Package>().and_then(|p| ops(&shared).install_package(&name, p, &b.version));
    match result {
        Ok(f) => axum::Json(f).into_response(),
        Err(e) => op_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplyBody {
    version: String,
    #[serde(default)]
    ignore_preflight_errors: Vec<String>,
}

async fn upgrade_apply(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    axum::Json(b): axum::Json<ApplyBody>,
) -> Response {
    let opts = UpgradeOptions { ignore_preflight_errors: b.ignore_preflight_errors };
    match ops(&shared).kubeadm_upgrade_apply(&name, &b.version, &opts) {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => op_error(e),
    }
}

async fn upgrade_node(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Option<axum::Json<UpgradeOptions>>,
) -> Response {
    let opts = body.map(|b| b.0).unwrap_or_default();
    match ops(&shared).kubeadm_upgrade_node(&name, &opts) {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => op_error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PlanParams {
    version: Option<String>,
}

/// `GET|POST .../kubeadm/upgrade-plan[?version=vX]`; a POST may carry `{"version": "vX"}` instead.
async fn upgrade_plan(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<PlanParams>,
    body: Option<axum::Json<PlanParams>>,
) -> Response {
    let version = query.version.or_else(|| body.and_then(|b| b.0.version));
    match ops(&shared).kubeadm_upgrade_plan(&name, version.as_deref()) {
        Ok(p) => axum::Json(p).into_response(),
        Err(e) => op_error(e),
    }
}

async fn restart(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match ops(&shared).restart_kubelet(&name) {
        Ok(f) => axum::Json(f).into_response(),
        Err(e) => op_error(e),
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats.snapshot()).into_response()
}

async fn clock_info(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({"now": clock::format(shared.now()), "speed": shared.clock.speed()})).into_response()
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/lab/v1/nodes", get(list_nodes))
        .route("/lab/v1/nodes/{name}", get(get_node))
        .route("/lab/v1/nodes/{name}/packages", post(install))
        .route("/lab/v1/nodes/{name}/kubeadm/upgrade-plan", get(upgrade_plan).post(upgrade_plan))
        .route("/lab/v1/nodes/{name}/kubeadm/upgrade-apply", post(upgrade_apply))
        .route("/lab/v1/nodes/{name}/kubeadm/upgrade-node", post(upgrade_node))
        .route("/lab/v1/nodes/{name}/kubelet/restart", post(restart))
        .route("/lab/v1/stats", get(stats))
        .route("/lab/v1/clock", get(clock_info))
}

#[cfg(test)]
mod tests {
    use stepstone_core::version::Minor;

    use super::*;

    #[test]
    fn package_versions_parse_both_forms() {
        assert_eq!(version_of_package("1.35.3-1.1").unwrap().canonical(), "v1.35.3");
        assert_eq!(version_of_package("v1.35.3").unwrap().canonical(), "v1.35.3");
        assert!(version_of_package("latest").is_err());
    }

    #[test]
    fn coredns_follows_kubeadm_releases_and_unknown_ones_keep_the_image() {
        let tag = |v: &str| kubeadm_coredns_tag(&v.parse::<KubeVersion>().unwrap());
        assert_eq!(tag("v1.34.6"), Some("v1.12.1"));
        assert_eq!(tag("v1.35.0"), Some("v1.13.1"));
        assert_eq!(tag("v1.31.14"), None);
        assert_eq!(tag("v1.37.0"), None);
    }

    #[test]
    fn template_images_are_retagged_keeping_the_repository() {
        let mut ds = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "busybox:1"},
            {"name": "kube-proxy", "image": "mirror.example/k8s/kube-proxy:v1.34.2"}]}}}});
        let change = retag_template(&mut ds, "kube-proxy", "v1.35.0");
        assert_eq!(
            change,
            Some(("mirror.example/k8s/kube-proxy:v1.34.2".into(), "mirror.example/k8s/kube-proxy:v1.35.0".into()))
        );
        assert_eq!(ds["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1");
        assert_eq!(retag_template(&mut ds, "kube-proxy", "v1.35.0"), None);
    }

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    #[test]
    fn plan_target_is_limited_by_the_installed_kubeadm() {
        let data = ReleaseData::embedded();
        let latest_34 = data.latest_patch(Minor::new(1, 34)).unwrap().clone();
        let latest_35 = data.latest_patch(Minor::new(1, 35)).unwrap().clone();
        assert!(latest_35 > v("v1.35.0"), "the test needs a v1.35 patch above .0 in the release data");

        // kubeadm of the cluster's release: nothing to apply until kubeadm is upgraded.
        let c = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.34.6"), None, data).unwrap();
        assert_eq!(c.target, None);
        assert_eq!(c.needs_newer_kubeadm, vec![latest_34.clone(), latest_35.clone()]);

        // A newer kubeadm of the same minor: the patch upgrade up to kubeadm itself.
        let c = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.34.8"), None, data).unwrap();
        assert_eq!(c.target, Some(v("v1.34.8")));

        // kubeadm of the next minor but older than its newest patch: limited to kubeadm.
        let c = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.35.0"), None, data).unwrap();
        assert_eq!(c.target, Some(v("v1.35.0")));
        assert_eq!(c.needs_newer_kubeadm, vec![latest_35.clone()]);
        assert!(c.source.contains(&latest_35.canonical()), "{}", c.source);

        // kubeadm two minors ahead: one minor at most, the newest patch of it.
        let c = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.36.0"), None, data).unwrap();
        assert_eq!(c.target, Some(latest_35.clone()));
        assert!(c.needs_newer_kubeadm.is_empty());
        assert!(c.source.contains("release data"), "{}", c.source);

        // kubeadm older than the cluster cannot plan at all.
        let e = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.33.2"), None, data).unwrap_err();
        assert!(matches!(e, NodeOpError::KubeadmTooOld { .. }), "{e}");
    }

    #[test]
    fn plan_for_a_given_version_refuses_what_apply_refuses() {
        let data = ReleaseData::embedded();
        let skip = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.36.0"), Some(&v("v1.36.0")), data).unwrap_err();
        assert_eq!(
            skip,
            NodeOpError::SkipsMinor { node: "cp-01".into(), target: "v1.36.0".into(), current: "v1.34.6".into() }
        );
        assert!(skip.to_string().contains("kubeadm can upgrade only 1 minor version at a time"), "{skip}");
        let old = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.34.6"), Some(&v("v1.35.2")), data).unwrap_err();
        assert!(old.to_string().contains("is higher than the kubeadm version \"v1.34.6\""), "{old}");
        let down = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.35.0"), Some(&v("v1.33.9")), data).unwrap_err();
        assert!(matches!(down, NodeOpError::PlanBelowCluster { .. }), "{down}");
        let ok = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.35.2"), Some(&v("v1.35.1")), data).unwrap();
        assert_eq!(ok.target, Some(v("v1.35.1")));
        let same = choose_plan_target("cp-01", &v("v1.34.6"), &v("v1.35.2"), Some(&v("v1.34.6")), data).unwrap();
        assert_eq!(same.target, None, "planning the running version is up to date");
    }

    #[test]
    fn plan_tables_align_like_kubeadms_tabwriter() {
        let rows = vec![
            vec!["COMPONENT".to_string(), "NODE".into(), "CURRENT".into(), "TARGET".into()],
            vec!["kubelet".to_string(), "rhel1".into(), "v1.30.14".into(), "v1.31.14".into()],
            vec!["kube-proxy".to_string(), "".into(), "v1.30.14".into(), "v1.31.14".into()],
        ];
        assert_eq!(
            tabulate(&rows),
            "COMPONENT    NODE      CURRENT    TARGET\n\
             kubelet      rhel1     v1.30.14   v1.31.14\n\
             kube-proxy             v1.30.14   v1.31.14\n"
        );
    }

    #[test]
    fn etcd_tags_compare_numerically() {
        assert!(etcd_older("3.5.16-0", "3.5.21-0"));
        assert!(!etcd_older("3.6.4-0", "3.5.21-0"));
    }
}

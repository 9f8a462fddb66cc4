//! `kubeadm upgrade plan [VERSION]`: the target kubeadm would offer with the installed kubeadm,
//! the component and kubelet tables, and kubeadm's text. Computing a plan changes nothing.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::KubeVersion;

use super::images::{cluster_config_dns_tag, kubeadm_coredns_tag, kubeadm_etcd_tag};
use super::{
    KUBEADM_ANNOTATION, LabNodes, NodeOpError, annotation, cluster_version, image_tag, is_control_plane, static_pod,
    version_of_package,
};
use crate::resources::{DAEMONSETS, DEPLOYMENTS, NODES};
use crate::store::{self, Store};

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
pub(super) fn kubeadm_too_old(kubeadm: &KubeVersion, target: &KubeVersion) -> bool {
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
pub(super) fn plan_rows(store: &Store, cluster: &KubeVersion, target: &KubeVersion) -> (Vec<PlanRow>, Vec<PlanRow>) {
    let row = |component: &str, node: &str, current: String, target: String| PlanRow {
        component: component.to_string(),
        node: node.to_string(),
        current,
        target,
    };
    let mut nodes: Vec<Arc<Value>> = store.iter(NODES, None, None).collect();
    nodes.sort_by(|a, b| store::name_of(a).cmp(store::name_of(b)));
    let control_planes: Vec<&str> = nodes.iter().filter(|n| is_control_plane(n)).map(|n| store::name_of(n)).collect();
    let mut components = Vec::new();
    for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        for node in &control_planes {
            // A node whose static pod the fleet does not carry runs the cluster version, as
            // kubeadm wrote its manifest.
            let current =
                static_pod(store, component, node).and_then(|p| image_tag(&p)).unwrap_or_else(|| cluster.canonical());
            components.push(row(component, node, current, target.canonical()));
        }
    }
    if let Some(ds) = store.get(DAEMONSETS, "kube-system", "kube-proxy")
        && let Some(current) = template_tag(&ds, "kube-proxy")
    {
        components.push(row("kube-proxy", "", current, target.canonical()));
    }
    if let Some(deploy) = store.get(DEPLOYMENTS, "kube-system", "coredns")
        && let Some(current) = template_tag(&deploy, "coredns")
    {
        let next = cluster_config_dns_tag(store)
            .or_else(|| kubeadm_coredns_tag(target).map(String::from))
            .unwrap_or_else(|| current.clone());
        components.push(row("CoreDNS", "", current, next));
    }
    // Without etcd static pods the etcd is external, which kubeadm leaves out of the plan.
    for node in &control_planes {
        if let Some(current) = static_pod(store, "etcd", node).and_then(|p| image_tag(&p)) {
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

impl LabNodes {
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
}

#[cfg(test)]
mod tests {
    use stepstone_core::version::Minor;

    use super::*;

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

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }
}

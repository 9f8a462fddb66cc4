//! `kubeadm upgrade apply VERSION` and `kubeadm upgrade node`: kubeadm's refusals (kubeadm too
//! old, a skipped minor, the cgroup v1 preflight), the cluster version in `kubeadm-config`, the
//! control-plane static pods and the CoreDNS and kube-proxy addons kubeadm upgrades once every
//! control-plane node runs the new version.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepstone_core::inventory::CGROUP_LABEL;
use stepstone_core::version::KubeVersion;

use super::images::{cluster_config_dns_tag, kubeadm_coredns_tag, kubeadm_etcd_tag};
use super::kubelet::restart_containers;
use super::plan::kubeadm_too_old;
use super::{
    FAIL_CGROUP_V1_ANNOTATION, KUBEADM_ANNOTATION, KUBELET_ANNOTATION, LabNodes, NodeOpError, STATIC_COMPONENTS,
    annotation, cluster_version, image_tag, is_control_plane, record_event, static_pod, version_of_package,
};
use crate::resources::{CONFIGMAPS, DAEMONSETS, DEPLOYMENTS, NODES, PODS};
use crate::store::{self, Part, Store, meta_mut};

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
    /// `--dry-run`: run every check and say what would change, changing nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl UpgradeOptions {
    fn ignores(&self, check: &str) -> bool {
        self.ignore_preflight_errors.iter().any(|c| c.eq_ignore_ascii_case(check) || c == "all")
    }
}

impl LabNodes {
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
        let too_old = kubelets_too_old(&store, &target);
        if !too_old.is_empty() {
            return Err(NodeOpError::KubeletsTooOld {
                node: node.to_string(),
                target: target.canonical(),
                versions: too_old.join(" "),
            });
        }
        if opts.dry_run {
            // kubeadm's dry run writes the new manifests to a temporary directory and stops
            // there: every check above ran, nothing in the cluster moves.
            let (components, _) = super::plan::plan_rows(&store, &current, &target);
            let changed: Vec<String> = components
                .iter()
                .filter(|r| (r.node.is_empty() || r.node == node) && r.current != r.target)
                .map(|r| format!("{}: {} -> {}", r.component, r.current, r.target))
                .collect();
            return Ok(UpgradeReport {
                node: node.to_string(),
                version: target.canonical(),
                message: format!(
                    "[preflight] Running pre-flight checks.\n[upgrade/version] You have chosen to change the cluster version to \"{t}\"\n[dryrun] Would write the upgraded static Pod manifests for this node and the addons to a temporary directory\n[dryrun] Finished dryrunning successfully!\n[upgrade/successful] SUCCESS! A dry run of the upgrade to \"{t}\" found nothing in the way; nothing was changed.",
                    t = target.canonical()
                ),
                changed,
            });
        }
        set_cluster_version(&mut store, &target, now);
        let apiserver_before = static_pod(&store, "kube-apiserver", node).is_some();
        let mut changed = upgrade_static_pods(&mut store, node, &target, now);
        // kubeadm writes the new kube-apiserver manifest; without a static pod in the fleet the
        // lab cannot compare images, and a new cluster version means a new manifest.
        self.apiserver_restarted(&changed, !apiserver_before && target != current);
        let phases = apply_phases(&current, &target, &changed);
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
                "{phases}{}[upgrade/successful] SUCCESS! Your cluster was upgraded to \"{}\". Enjoy!\n\n[upgrade/kubelet] Now that your control plane is upgraded, please proceed with upgrading your kubelets if you haven't already done so.",
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
        if let Some(k) = annotation(&n, KUBEADM_ANNOTATION).and_then(|k| version_of_package(k).ok())
            && k.minor() > target.minor()
        {
            return Err(NodeOpError::ControlPlaneNotUpgraded {
                node: node.to_string(),
                kubeadm: k.canonical(),
                cluster: target.canonical(),
            });
        }
        if opts.dry_run {
            return Ok(UpgradeReport {
                node: node.to_string(),
                version: target.canonical(),
                changed: Vec::new(),
                message: "[dryrun] Finished dryrunning successfully!\n[upgrade] A dry run of `kubeadm upgrade node` found nothing in the way; nothing was changed.".to_string(),
            });
        }
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
}

/// What `kubeadm version` prints on a node: the installed kubeadm package's release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeadmVersion {
    pub node: String,
    /// `v1.35.0`
    pub version: String,
    /// kubeadm's own line (`kubeadm version: &version.Info{...}`).
    pub message: String,
}

impl LabNodes {
    /// `kubeadm version` on `node`: the installed kubeadm (the running kubelet's release on a
    /// node provisioned without the package annotation).
    pub fn kubeadm_version(&self, node: &str) -> Result<KubeadmVersion, NodeOpError> {
        let store = self.shared.store();
        let n = self.node(&store, node)?;
        let v = match annotation(&n, KUBEADM_ANNOTATION) {
            Some(k) => version_of_package(k)?,
            None => n
                .pointer("/status/nodeInfo/kubeletVersion")
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<KubeVersion>().ok())
                .ok_or_else(|| NodeOpError::NoClusterVersion { node: node.to_string() })?,
        };
        let message = format!(
            "kubeadm version: &version.Info{{Major:\"{}\", Minor:\"{}\", GitVersion:\"{}\", GitCommit:\"0000000000000000000000000000000000000000\", GitTreeState:\"clean\", BuildDate:\"2026-01-01T00:00:00Z\", GoVersion:\"go1.24.0\", Compiler:\"gc\", Platform:\"linux/amd64\"}}",
            v.major,
            v.minor,
            v.canonical()
        );
        Ok(KubeadmVersion { node: node.to_string(), version: v.canonical(), message })
    }
}

/// kubeadm's version policy: kubelets more than three minors older than the release `kubeadm
/// upgrade apply` moves to (`MaximumAllowedMinorVersionKubeletSkew`) make the upgrade refuse.
/// Returns their versions, sorted and once each.
fn kubelets_too_old(store: &Store, target: &KubeVersion) -> Vec<String> {
    let mut versions: Vec<KubeVersion> = store
        .iter(NODES, None, None)
        .filter_map(|n| {
            n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str)?.parse::<KubeVersion>().ok()
        })
        .filter(|v| target.minor().minus(v.minor()) > 3)
        .collect();
    versions.sort();
    versions.dedup();
    versions.iter().map(KubeVersion::canonical).collect()
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
    let existing = store.get(CONFIGMAPS, "kube-system", "kubeadm-config");
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
        let Some(pod) = static_pod(store, component, node) else { continue };
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
        let Some(obj) = store.get(res, "kube-system", name) else { continue };
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

/// The phases `kubeadm upgrade apply` prints before its addons and verdict (kubeadm 1.31 and
/// later), with a line for each static pod it moved, so an operator reads what ran.
fn apply_phases(current: &KubeVersion, target: &KubeVersion, changed: &[String]) -> String {
    let t = target.canonical();
    let mut out = format!(
        "[upgrade] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...\n\
         [upgrade/preflight] Running preflight checks\n\
         [upgrade] Running cluster health checks\n\
         [upgrade/preflight] You have chosen to upgrade the cluster version to \"{t}\"\n\
         [upgrade/versions] Cluster version: {}\n\
         [upgrade/versions] kubeadm version: {t}\n\
         [upgrade/preflight] Pulling images required for setting up a Kubernetes cluster\n\
         [upgrade/control-plane] Upgrading your static Pod-hosted control plane to version \"{t}\" (timeout: 5m0s)...\n\
         [upgrade/staticpods] Writing new Static Pod manifests to \"/etc/kubernetes/tmp/kubeadm-upgraded-manifests\"\n",
        current.canonical()
    );
    for component in super::STATIC_COMPONENTS {
        if changed.iter().any(|c| c.starts_with(&format!("{component}:"))) {
            out.push_str(&format!(
                "[upgrade/staticpods] Moving new manifest to \"/etc/kubernetes/manifests/{component}.yaml\" and backing up old manifest\n\
                 [upgrade/staticpods] Component \"{component}\" upgraded successfully!\n"
            ));
        }
    }
    out.push_str(
        "[upgrade/control-plane] The control plane instance for this node was successfully upgraded!\n\
         [upgrade/kubeconfig] The kubeconfig files for this node were successfully upgraded!\n\
         [upgrade/upload-config] Uploading the kubeadm ClusterConfiguration to a ConfigMap\n\
         [upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!\n\
         [upgrade/bootstrap-token] Configuring bootstrap token and cluster-info RBAC rules\n",
    );
    out
}

#[cfg(test)]
mod tests {

    use super::*;

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
}

//! The image tags kubeadm deploys on an upgrade: etcd per release (never older than the one
//! running), CoreDNS per minor, and the user's `dns.imageTag` pin in the kubeadm-config
//! ClusterConfiguration, read by the upgrade plan and the upgrade alike.

use serde_json::Value;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::KubeVersion;

use crate::resources::CONFIGMAPS;
use crate::store::Store;

/// The etcd image tag `kubeadm upgrade` to `target` sets where etcd runs `current`: the etcd
/// kubeadm of that patch deploys, never older than `current` (kubeadm never downgrades etcd). `None`
/// when the release data does not know the minor.
pub(super) fn kubeadm_etcd_tag(target: &KubeVersion, current: &str) -> Option<String> {
    // kubeadm's etcd images carry a build suffix: etcd 3.6.4 is `registry.k8s.io/etcd:3.6.4-0`.
    let etcd = ReleaseData::embedded()
        .etcd_for(target)
        .map(|e| if e.contains('-') { e.to_string() } else { format!("{e}-0") })?;
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
pub(super) fn cluster_config_dns_tag(store: &Store) -> Option<String> {
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

fn etcd_older(candidate: &str, current: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split(['.', '-']).filter_map(|p| p.parse().ok()).collect() };
    parse(candidate) < parse(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_tags_compare_numerically() {
        assert!(etcd_older("3.5.16-0", "3.5.21-0"));
        assert!(!etcd_older("3.6.4-0", "3.5.21-0"));
    }
}

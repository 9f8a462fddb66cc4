//! Which node steps stop for the cgroup v1 choice: from 1.35 on, kubeadm's SystemVerification
//! preflight fails on a cgroup v1 host and the kubelet refuses to start there (`failCgroupV1`
//! defaults to true), so installing that kubelet on such a node without a decision breaks it.

use stepstone_core::inventory::{CgroupVersion, Inventory};
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::KubeVersion;

/// Whether `node` runs cgroup v1 (as the inventory knows it) and kubeadm and the kubelet of
/// `version` refuse such a host by default. Without an inventory nothing is known, and the
/// plan's own `path.cgroup-v2-required` finding is all the runbook can show.
pub fn stops(inventory: Option<&Inventory>, node: &str, version: &KubeVersion) -> bool {
    let refused = ReleaseData::embedded().get(version.minor()).is_some_and(|r| r.cgroup_v2_required);
    refused && inventory.and_then(|inv| inv.node(node)).is_some_and(|n| n.cgroup == Some(CgroupVersion::V1))
}

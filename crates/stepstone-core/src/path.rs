//! The upgrade path: from the control plane's current version to a target, one minor per hop,
//! with the nodes each hop has to move and when.
//!
//! The rules it follows:
//! - The control plane never skips a minor (kubeadm refuses to, and the skew policy's upgrade
//!   order assumes it). Each hop ends on the latest known patch of its minor
//!   ([`ReleaseData::latest_patch`]); only the final hop may be pinned to an exact patch.
//! - Before a hop's control plane moves, every kubelet that would fall out of the kubelet skew
//!   window against the hop's target ([`ReleaseData::kubelet_skew_window`]) is upgraded to the
//!   hop's starting version: [`PathHop::kubelets_first`].
//! - Control-plane nodes move every hop (their static pods, then their kubelet).
//! - Workers follow [`WorkerStrategy`]: `lockstep` moves every worker every hop (nodes more
//!   than one minor behind first catch up to the hop's starting version, so no node skips a
//!   minor); `skip-minors` leaves workers where they are until the last hop, except those the
//!   window forces to move earlier.
//!
//! - A half-upgraded control plane (some nodes already on the next minor) is continued, never
//!   rolled back: the path starts at the oldest control-plane node, no version below the newest
//!   is planned, `kubeadm upgrade apply` stays on the node that already ran it, and steps whose
//!   postconditions hold ([`crate::progress`]) are left out and listed in [`PathHop::done`].
//! - A control plane already on the target with kubelets still behind it (the upgrade stopped
//!   after the control plane) gets one hop from the target to itself in which only those
//!   kubelets move, straight to the target: [`resolve_cluster_target`].
//! - A cgroup v1 host whose kubelet moves into a minor that refuses cgroup v1 is an error for the
//!   hop in which that kubelet moves (before or after the control plane).
//!
//! Planning is pure: the same inventory and request always give the same path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::findings::{self, Finding, Severity};
use crate::inventory::{CgroupVersion, Inventory};
use crate::progress::ControlPlaneState;
use crate::releases::ReleaseData;
use crate::version::{KubeVersion, Minor, VersionRequest};

/// How workers follow the control plane across several hops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerStrategy {
    /// Every node moves at every hop: the way kubeadm supports.
    #[default]
    Lockstep,
    /// Workers stay within the kubelet skew while the control plane climbs, then move once.
    /// kubeadm does not support skipping minors on a node in place: for reprovisioned nodes.
    SkipMinors,
}

/// Why a path cannot be planned. Each message names the input and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "{cluster}: the control-plane version is unknown (no kube-apiserver static pods and no /version); include kube-system pods in the snapshot (`kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json`) or read the cluster with --kubeconfig"
    )]
    UnknownControlPlane { cluster: String },
    #[error(
        "target {input} is older than the control plane ({from}): stepstone plans upgrades only; to go back, restore the pre-upgrade etcd snapshot and package versions as the rollback runbook describes"
    )]
    Downgrade { input: String, from: KubeVersion },
    #[error(
        "target {input} is older than {node}, whose control plane already runs {newest} (the cluster is part-way through an upgrade): plan to {newest} or newer to finish it; to go back instead, follow the rollback runbook"
    )]
    BehindNode { input: String, node: String, newest: String },
    #[error(
        "{cluster}: control-plane nodes are more than one minor apart ({versions}); kubeadm never leaves a cluster like this: bring {oldest_nodes} to {oldest_next} with `kubeadm upgrade node` by hand, then plan again"
    )]
    ControlPlaneSplit { cluster: String, versions: String, oldest_nodes: String, oldest_next: String },
    #[error(
        "target {input}: the control plane already runs {from}, nothing to upgrade; pick a newer minor (`stepstone versions` lists them)"
    )]
    SameVersion { input: String, from: KubeVersion },
    #[error(
        "target {input} is not a known Kubernetes release: {reason}; `stepstone versions` lists the known releases"
    )]
    UnknownVersion { input: String, reason: String },
    #[error(
        "target {input} is newer than the release data (newest known minor {newest}, data updated {updated}); add the release with its source to data/releases.toml, or pick {newest} or older"
    )]
    NewerThanReleaseData { input: String, newest: Minor, updated: String },
}

/// One minor step of the path (or the single patch step when the target is on the same minor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathHop {
    /// The control plane's version when the hop starts.
    pub from: KubeVersion,
    /// The control plane's version when the hop ends.
    pub to: KubeVersion,
    /// The etcd version kubeadm of the target minor deploys (stacked etcd moves with `apply`).
    pub etcd: Option<String>,
    /// Control-plane nodes, sorted by name; all of them move in this hop, one at a time (the
    /// first with `kubeadm upgrade apply`, the others with `kubeadm upgrade node`), each
    /// followed by its kubelet.
    pub control_plane: Vec<String>,
    /// `kubeadm upgrade apply` for `to` has already run (a control-plane node runs `to`): every
    /// control-plane step left is `kubeadm upgrade node`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apply_done: bool,
    /// Nodes whose step in this hop is already done, read from the cluster (static pods and
    /// kubelet at `to`): they appear in no other list of the hop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
    /// Nodes whose kubelet would be outside the skew window once the control plane runs `to`.
    /// They are upgraded to `from` before the control plane moves.
    pub kubelets_first: Vec<String>,
    /// Lockstep only: nodes more than one minor behind `to` that are not in `kubelets_first`.
    /// They are brought to `from` before the control plane moves, so that every node's move in
    /// this hop is a single minor.
    pub catch_up: Vec<String>,
    /// Workers that move to `to` in this hop, after the control plane.
    pub workers: Vec<String>,
}

/// The whole path from the cluster's version to the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePath {
    /// Where the inventory came from.
    pub cluster: String,
    /// The control plane's version now: the oldest kube-apiserver.
    pub from: KubeVersion,
    pub to: KubeVersion,
    pub strategy: WorkerStrategy,
    pub hops: Vec<PathHop>,
    pub findings: Vec<Finding>,
}

/// A node as the path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVersion {
    pub name: String,
    pub control_plane: bool,
    pub kubelet: KubeVersion,
    /// When known (pre-flight or a node label recorded it).
    pub cgroup: Option<CgroupVersion>,
    /// Control-plane nodes: the version of the node's oldest kube-apiserver, controller-manager
    /// or scheduler static pod, when the inventory shows them.
    pub static_pods: Option<KubeVersion>,
}

/// Work out the final version a request means, starting from `from`.
pub fn resolve_target(
    from: &KubeVersion,
    request: &VersionRequest,
    data: &ReleaseData,
) -> Result<KubeVersion, PathError> {
    let input = request.to_string();
    if request.minor() < from.minor() {
        return Err(PathError::Downgrade { input, from: from.clone() });
    }
    let target = resolve_release(request, data)?;
    let latest = data.latest_patch(request.minor()).cloned().unwrap_or_else(|| target.clone());
    if target < *from {
        return Err(PathError::Downgrade { input, from: from.clone() });
    }
    if target == *from || (request.minor() == from.minor() && *from >= latest) {
        return Err(PathError::SameVersion { input, from: from.clone() });
    }
    Ok(target)
}

/// [`resolve_target`] for a whole cluster: a control plane already on the requested release
/// while some kubelet (`oldest_kubelet`) is still behind it is not "nothing to upgrade" but a
/// catch-up to the control plane's own version, in which only the kubelets move.
pub fn resolve_cluster_target(
    from: &KubeVersion,
    oldest_kubelet: Option<&KubeVersion>,
    request: &VersionRequest,
    data: &ReleaseData,
) -> Result<KubeVersion, PathError> {
    match resolve_target(from, request, data) {
        Err(PathError::SameVersion { .. }) if oldest_kubelet.is_some_and(|k| k < from) => Ok(from.clone()),
        other => other,
    }
}

/// The release a request means, without a cluster to compare it with: a minor the release
/// data knows (its latest patch), or a released patch of one. What [`resolve_target`] checks
/// first; commands that cannot tell the control plane's version check this much.
pub fn resolve_release(request: &VersionRequest, data: &ReleaseData) -> Result<KubeVersion, PathError> {
    let input = request.to_string();
    let minor = request.minor();
    if minor > data.newest() {
        return Err(PathError::NewerThanReleaseData {
            input,
            newest: data.newest(),
            updated: data.updated.to_string(),
        });
    }
    let latest = data.latest_patch(minor).ok_or_else(|| PathError::UnknownVersion {
        input: input.clone(),
        reason: format!("the release data covers {} to {}", data.oldest(), data.newest()),
    })?;
    match request {
        VersionRequest::Minor(_) => Ok(latest.clone()),
        VersionRequest::Exact(v) if v.is_prerelease() => Err(PathError::UnknownVersion {
            input,
            reason: "pre-releases are not planned; pick a released patch".to_string(),
        }),
        VersionRequest::Exact(v) if v > latest => Err(PathError::UnknownVersion {
            input,
            reason: format!(
                "the newest known {minor} patch is {latest} (data updated {}); if {v} has been released since, add it to data/releases.toml",
                data.updated
            ),
        }),
        VersionRequest::Exact(v) => Ok(KubeVersion::new(v.major, v.minor, v.patch)),
    }
}

/// Plan the path for an inventory. The path starts at the oldest control-plane component; a
/// control plane part-way through an upgrade is continued from where each node is.
pub fn upgrade_path(
    inv: &Inventory,
    request: &VersionRequest,
    strategy: WorkerStrategy,
    data: &ReleaseData,
) -> Result<UpgradePath, PathError> {
    let state =
        ControlPlaneState::read(inv).ok_or_else(|| PathError::UnknownControlPlane { cluster: inv.source.clone() })?;
    if state.newest.minor().minus(state.oldest.minor()) > 1 {
        return Err(PathError::ControlPlaneSplit {
            cluster: inv.source.clone(),
            versions: format!(
                "{} on {}, {} on {}",
                state.oldest,
                state.behind().join(", "),
                state.newest,
                state.newest_node.clone().unwrap_or_default()
            ),
            oldest_nodes: state.behind().join(", "),
            oldest_next: state.oldest.minor().next().to_string(),
        });
    }
    let from = state.oldest.clone();
    let oldest_kubelet = inv.nodes.iter().map(|n| &n.kubelet_version).min();
    let to = resolve_cluster_target(&from, oldest_kubelet, request, data)?;
    if to < state.newest {
        return Err(PathError::BehindNode {
            input: request.to_string(),
            node: state.newest_node.clone().unwrap_or_else(|| "a control-plane node".to_string()),
            newest: state.newest.to_string(),
        });
    }
    let nodes: Vec<NodeVersion> = inv
        .nodes
        .iter()
        .map(|n| NodeVersion {
            name: n.name.clone(),
            control_plane: n.is_control_plane(),
            kubelet: n.kubelet_version.clone(),
            cgroup: n.cgroup,
            static_pods: state.nodes.get(&n.name).cloned().flatten(),
        })
        .collect();
    let (hops, mut findings) = plan_hops(&from, &to, &nodes, strategy, data)?;
    if state.in_transition() {
        let newest_node = state.newest_node.clone().unwrap_or_default();
        findings.push(Finding::new(
            Severity::Warning,
            "path.in-progress",
            "control-plane",
            format!(
                "the control plane is part-way through an upgrade: {newest_node} runs {}, {} still {}",
                state.newest,
                state.behind().join(", "),
                state.oldest
            ),
            format!(
                "the plan continues from here: finish the control plane before anything else (`kubeadm upgrade node` on {}), and never go back to {} with kubeadm",
                state.behind().join(", "),
                state.oldest
            ),
        ));
        findings::sort(&mut findings);
    }
    Ok(UpgradePath { cluster: inv.source.clone(), from, to, strategy, hops, findings })
}

/// The hops from `from` to an already resolved `to`, with the findings that explain them.
pub fn plan_hops(
    from: &KubeVersion,
    to: &KubeVersion,
    nodes: &[NodeVersion],
    strategy: WorkerStrategy,
    data: &ReleaseData,
) -> Result<(Vec<PathHop>, Vec<Finding>), PathError> {
    let mut findings = Vec::new();
    // Each control-plane node's static pods, as far as the inventory shows them.
    let mut statics: BTreeMap<String, Option<KubeVersion>> =
        nodes.iter().filter(|n| n.control_plane).map(|n| (n.name.clone(), n.static_pods.clone())).collect();
    let newest_static = statics.values().flatten().max().cloned();
    let in_transition = newest_static.as_ref().is_some_and(|n| n > from);
    // Each hop's end version: the latest patch of every minor on the way, then `to`. A node
    // already past the release data's latest patch of its minor is never planned backwards.
    let mut ends = Vec::new();
    let mut minor = from.minor();
    while minor < to.minor() {
        minor = minor.next();
        if minor == to.minor() {
            break;
        }
        let latest = data.latest_patch(minor).ok_or_else(|| PathError::UnknownVersion {
            input: to.to_string(),
            reason: format!("no release data for {minor}, which the path from {from} passes through"),
        })?;
        let end = match &newest_static {
            Some(n) if n.minor() == minor && n > latest => n.clone(),
            _ => latest.clone(),
        };
        ends.push(end);
    }
    ends.push(to.clone());

    if to.minor() > from.minor()
        && !in_transition
        && let Some(latest) = data.latest_patch(from.minor())
        && from < latest
    {
        findings.push(Finding::new(
            Severity::Info,
            "path.patch-first",
            "control-plane",
            format!("the control plane runs {from}; the latest {} patch is {latest}", from.minor()),
            format!(
                "upgrade to {latest} first (`kubeadm upgrade apply {latest}`): the skew policy expects each minor upgrade to start from the latest patch"
            ),
        ));
    }

    let mut kubelets: BTreeMap<String, (bool, KubeVersion)> =
        nodes.iter().map(|n| (n.name.clone(), (n.control_plane, n.kubelet.clone()))).collect();
    let cgroups: BTreeMap<&str, Option<CgroupVersion>> = nodes.iter().map(|n| (n.name.as_str(), n.cgroup)).collect();
    let requires_v2 = |m: Minor| data.get(m).is_some_and(|r| r.cgroup_v2_required);
    let on_v1 = |n: &str| cgroups.get(n) == Some(&Some(CgroupVersion::V1));
    let mut hops = Vec::new();
    let mut current = from.clone();
    let last = ends.len() - 1;
    let mut skipping_moves = 0usize;

    // The control plane already runs the target: one hop in which only kubelets move, each
    // straight to the target (there is no earlier control-plane version to stop at).
    let kubelets_only = from == to;
    if kubelets_only {
        let behind: Vec<String> = kubelets.iter().filter(|(_, (_, k))| k < to).map(|(n, _)| n.clone()).collect();
        findings.push(Finding::new(
            Severity::Info,
            "path.kubelets-behind",
            "control-plane",
            format!("the control plane already runs {to}; the kubelet is behind it on {}", preview(&behind)),
            format!(
                "this plan moves only those kubelets to {to} (drain, packages, `kubeadm upgrade node`, kubelet restart, uncordon); the control plane's steps are already done"
            ),
        ));
        for (name, (_, k)) in &kubelets {
            if to.minor().minus(k.minor()) > 1 {
                findings.push(Finding::new(
                    Severity::Warning,
                    "path.node-skips-minors",
                    name.clone(),
                    format!("{name} runs kubelet {k}, more than one minor behind {to}, the version it moves to"),
                    "kubeadm moves a node one minor at a time: upgrade it through each minor in turn, or reprovision it at the new version".to_string(),
                ));
            }
        }
    }

    for (index, end) in ends.into_iter().enumerate() {
        let target_minor = end.minor();
        let mut kubelets_first = Vec::new();
        let mut catch_up = Vec::new();
        for (name, (cp, version)) in kubelets.iter().filter(|_| !kubelets_only) {
            let behind = target_minor.minus(version.minor());
            let window = i64::from(data.kubelet_skew_window(target_minor, version.minor()));
            if behind > window {
                kubelets_first.push(name.clone());
            } else if behind > 1 && (*cp || strategy == WorkerStrategy::Lockstep) {
                catch_up.push(name.clone());
            }
        }
        let hop_label = format!("hop {} ({} -> {})", index + 1, current, end);
        if !kubelets_first.is_empty() {
            findings.push(Finding::new(
                Severity::Warning,
                "path.kubelets-first",
                hop_label.clone(),
                format!(
                    "the kubelet would be outside the skew window of kube-apiserver {end} on {}",
                    preview(&kubelets_first)
                ),
                format!("drain and upgrade their kubelets to {current} before the control plane moves to {end}"),
            ));
        }
        if !catch_up.is_empty() {
            findings.push(Finding::new(
                Severity::Info,
                "path.catch-up",
                hop_label.clone(),
                format!("the kubelet is more than one minor behind {end} on {}", preview(&catch_up)),
                format!(
                    "bring them to {current} before the control plane moves, so every node moves one minor in this hop"
                ),
            ));
        }
        // cgroup v1 hosts whose kubelet enters a minor that refuses cgroup v1 in this hop.
        let mut v1_before = Vec::new();
        for name in kubelets_first.iter().chain(&catch_up) {
            let entry = kubelets.get_mut(name).expect("listed from the map");
            if current.minor().minus(entry.1.minor()) > 1 {
                skipping_moves += 1;
                findings.push(Finding::new(
                    Severity::Warning,
                    "path.node-skips-minors",
                    name.clone(),
                    format!(
                        "{name} runs kubelet {}, more than one minor behind {current}, the version it must reach first",
                        entry.1
                    ),
                    "kubeadm moves a node one minor at a time: upgrade it through each minor in turn, or reprovision it at the new version".to_string(),
                ));
            }
            if entry.1 < current {
                if on_v1(name) && requires_v2(current.minor()) && !requires_v2(entry.1.minor()) {
                    v1_before.push(name.clone());
                }
                entry.1 = current.clone();
            }
        }

        // The control plane: `apply` stays on a node that already moved towards this hop's
        // minor; nodes whose static pods and kubelet are already at `end` are done.
        let apply_done = statics.values().flatten().any(|v| *v >= end);
        let apply_node = statics
            .iter()
            .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .filter(|(_, v)| v.minor() == target_minor)
            .map(|(n, _)| n.clone());
        let mut done = Vec::new();
        let mut control_plane = Vec::new();
        for (name, version) in &statics {
            let kubelet_done = kubelets.get(name).is_some_and(|(_, k)| *k >= end);
            if version.as_ref().is_some_and(|v| *v >= end) && kubelet_done {
                done.push(name.clone());
            } else if apply_node.as_ref() == Some(name) {
                control_plane.insert(0, name.clone());
            } else {
                control_plane.push(name.clone());
            }
        }

        let mut workers = Vec::new();
        let mut v1_after = Vec::new();
        for (name, (cp, version)) in kubelets.iter_mut() {
            let moves = if *cp {
                true
            } else {
                match strategy {
                    WorkerStrategy::Lockstep => true,
                    WorkerStrategy::SkipMinors => index == last,
                }
            };
            if !moves {
                continue;
            }
            if *version >= end {
                if !*cp {
                    done.push(name.clone());
                }
                continue;
            }
            if on_v1(name) && requires_v2(target_minor) && !requires_v2(version.minor()) {
                v1_after.push(name.clone());
            }
            if !*cp {
                if end.minor().minus(version.minor()) > 1 {
                    skipping_moves += 1;
                }
                workers.push(name.clone());
            }
            *version = end.clone();
        }
        for v in statics.values_mut() {
            *v = Some(end.clone());
        }
        for (moved, when, version) in [(&v1_before, "before the control plane", &current), (&v1_after, "", &end)] {
            if !moved.is_empty() {
                findings.push(cgroup_v1_finding(&hop_label, moved, when, version.minor()));
            }
        }
        hops.push(PathHop {
            from: current.clone(),
            to: end.clone(),
            etcd: data.etcd_for(&end).map(str::to_string),
            control_plane,
            apply_done,
            done,
            kubelets_first,
            catch_up,
            workers,
        });
        current = end;
    }

    if strategy == WorkerStrategy::SkipMinors && skipping_moves > 0 {
        findings.push(Finding::new(
            Severity::Warning,
            "path.skip-minors",
            "workers",
            format!(
                "with skip-minors, {skipping_moves} node move(s) jump more than one minor; kubeadm does not support skipping minors on a node in place"
            ),
            "use skip-minors only for nodes that are reprovisioned (reinstalled at the new version and rejoined); otherwise plan with --workers lockstep".to_string(),
        ));
    }
    findings::sort(&mut findings);
    Ok((hops, findings))
}

/// kubeadm's `SystemVerification` preflight fails on cgroup v1 once the kubelet is on a minor
/// that refuses cgroup v1, and that kubelet does not start (`failCgroupV1` defaults to true): an
/// error for the hop that moves these kubelets, with both ways out.
fn cgroup_v1_finding(hop_label: &str, nodes: &[String], when: &str, minor: Minor) -> Finding {
    let when = if when.is_empty() { String::new() } else { format!(" ({when})") };
    Finding::new(
        Severity::Error,
        "path.cgroup-v2-required",
        hop_label,
        format!(
            "cgroup v1 on {} whose kubelet moves to {minor} in this hop{when}: kubeadm {minor} fails its SystemVerification preflight and the {minor} kubelet does not start on cgroup v1 (failCgroupV1 defaults to true)",
            preview(nodes)
        ),
        "for each node, before its upgrade, either move the OS to cgroup v2 (recommended: cgroup v1 support is being removed, no earlier than 1.38), or keep cgroup v1 deliberately: set `failCgroupV1: false` in the kube-system/kubelet-config ConfigMap and the node's /var/lib/kubelet/config.yaml and run `kubeadm upgrade node --ignore-preflight-errors=SystemVerification`; then check `journalctl -u kubelet` shows no cgroup v1 error".to_string(),
    )
}

/// "3 nodes (a, b, c)" or "12 nodes (a, b, c, d, …)".
fn preview(names: &[String]) -> String {
    const SHOWN: usize = 4;
    let head: Vec<&str> = names.iter().take(SHOWN).map(String::as_str).collect();
    let more = if names.len() > SHOWN { ", …" } else { "" };
    let noun = if names.len() == 1 { "node" } else { "nodes" };
    format!("{} {noun} ({}{more})", names.len(), head.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    fn req(s: &str) -> VersionRequest {
        s.parse().unwrap()
    }

    fn data() -> &'static ReleaseData {
        ReleaseData::embedded()
    }

    fn fleet(cp: &str, workers: &[(&str, &str)]) -> Vec<NodeVersion> {
        let mut out: Vec<NodeVersion> = (1..=3)
            .map(|i| NodeVersion {
                name: format!("cp-{i}"),
                control_plane: true,
                kubelet: v(cp),
                cgroup: None,
                static_pods: Some(v(cp)),
            })
            .collect();
        out.extend(workers.iter().map(|(n, k)| NodeVersion {
            name: n.to_string(),
            control_plane: false,
            kubelet: v(k),
            cgroup: None,
            static_pods: None,
        }));
        out
    }

    #[test]
    fn each_hop_carries_the_etcd_of_its_target_patch() {
        // kubeadm bumped etcd from 3.5.21 to 3.5.24 in v1.33.6.
        for (target, etcd) in [("v1.33.5", "3.5.21"), ("v1.33.6", "3.5.24"), ("v1.33.13", "3.5.24")] {
            let nodes = fleet("v1.32.13", &[("w-1", "v1.32.13")]);
            let (hops, _) = plan_hops(&v("v1.32.13"), &v(target), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
            assert_eq!(hops[0].etcd.as_deref(), Some(etcd), "{target}");
        }
    }

    #[test]
    fn one_minor_per_hop_on_latest_patches() {
        let to = resolve_target(&v("v1.33.4"), &req("v1.35"), data()).unwrap();
        assert_eq!(to, v("v1.35.8"));
        let nodes = fleet("v1.33.4", &[("w-1", "v1.33.4"), ("r640-1", "v1.32.13")]);
        let (hops, findings) = plan_hops(&v("v1.33.4"), &to, &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        let steps: Vec<(String, String)> = hops.iter().map(|h| (h.from.to_string(), h.to.to_string())).collect();
        assert_eq!(steps, vec![("v1.33.4".into(), "v1.34.11".into()), ("v1.34.11".into(), "v1.35.8".into())]);
        assert_eq!(hops[0].etcd.as_deref(), Some("3.6.4"));
        assert_eq!(hops[0].control_plane, vec!["cp-1", "cp-2", "cp-3"]);
        // Lockstep: the 1.32 node catches up to 1.33 before the control plane goes to 1.34.
        assert_eq!(hops[0].catch_up, vec!["r640-1"]);
        assert!(hops[0].kubelets_first.is_empty());
        assert_eq!(hops[0].workers, vec!["r640-1", "w-1"]);
        assert_eq!(hops[1].workers, vec!["r640-1", "w-1"]);
        assert!(hops[1].catch_up.is_empty());
        let codes: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, vec!["path.catch-up", "path.patch-first"]);
    }

    #[test]
    fn pinned_final_patch_and_patch_only_paths() {
        assert_eq!(resolve_target(&v("v1.33.4"), &req("v1.35.3"), data()).unwrap(), v("v1.35.3"));
        assert_eq!(resolve_target(&v("v1.33.4"), &req("v1.33"), data()).unwrap(), v("v1.33.13"));
        let nodes = fleet("v1.33.4", &[("w-1", "v1.33.4")]);
        let (hops, f) = plan_hops(&v("v1.33.4"), &v("v1.33.13"), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        assert_eq!(hops.len(), 1);
        assert_eq!(hops[0].workers, vec!["w-1"]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn refusals_name_the_input_and_the_fix() {
        let from = v("v1.33.4");
        let e = resolve_target(&from, &req("v1.32"), data()).unwrap_err();
        assert!(matches!(e, PathError::Downgrade { .. }), "{e}");
        assert!(e.to_string().contains("target v1.32 is older than the control plane (v1.33.4)"), "{e}");
        let e = resolve_target(&from, &req("v1.33.2"), data()).unwrap_err();
        assert!(matches!(e, PathError::Downgrade { .. }), "{e}");
        let e = resolve_target(&from, &req("v1.33.4"), data()).unwrap_err();
        assert!(matches!(e, PathError::SameVersion { .. }), "{e}");
        let e = resolve_target(&v("v1.33.13"), &req("v1.33"), data()).unwrap_err();
        assert!(matches!(e, PathError::SameVersion { .. }), "{e}");
        let e = resolve_target(&from, &req("v1.38"), data()).unwrap_err();
        assert!(matches!(e, PathError::NewerThanReleaseData { .. }), "{e}");
        assert!(e.to_string().contains("data/releases.toml"), "{e}");
        let e = resolve_target(&from, &req("v1.35.99"), data()).unwrap_err();
        assert!(e.to_string().contains("newest known 1.35 patch is v1.35.8"), "{e}");
        let e = resolve_target(&from, &req("v1.36.0-rc.1"), data()).unwrap_err();
        assert!(matches!(e, PathError::UnknownVersion { .. }), "{e}");
        let e = resolve_target(&v("v1.20.4"), &req("v1.21"), data()).unwrap_err();
        assert!(e.to_string().contains("covers 1.24 to 1.37"), "{e}");
    }

    #[test]
    fn skip_minors_moves_workers_once_unless_the_window_forces_them() {
        let nodes = fleet("v1.33.13", &[("w-1", "v1.33.13"), ("r640-1", "v1.32.13")]);
        let (hops, findings) =
            plan_hops(&v("v1.33.13"), &v("v1.36.4"), &nodes, WorkerStrategy::SkipMinors, data()).unwrap();
        assert_eq!(hops.len(), 3);
        assert!(hops[0].workers.is_empty() && hops[1].workers.is_empty());
        // At 1.36 a 1.32 kubelet is 4 minors behind: it must reach 1.35.8 before the last hop.
        assert_eq!(hops[2].kubelets_first, vec!["r640-1"]);
        assert_eq!(hops[2].workers, vec!["r640-1", "w-1"]);
        assert!(hops.iter().all(|h| h.catch_up.is_empty()));
        let codes: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
        assert!(codes.contains(&"path.skip-minors"), "{codes:?}");
        assert!(codes.contains(&"path.kubelets-first"), "{codes:?}");
    }

    #[test]
    fn lockstep_moves_a_too_old_kubelet_before_the_first_hop() {
        // 1.30 under a 1.33 control plane is allowed (n-3) but not under 1.34.
        let nodes = fleet("v1.33.13", &[("old", "v1.30.14")]);
        let (hops, findings) =
            plan_hops(&v("v1.33.13"), &v("v1.34.11"), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        assert_eq!(hops[0].kubelets_first, vec!["old"]);
        assert!(findings.iter().any(|f| f.code == "path.node-skips-minors" && f.subject == "old"));
    }

    #[test]
    fn cgroup_v1_nodes_are_warned_at_the_hop_that_needs_v2() {
        let mut nodes = fleet("v1.34.11", &[("r640-1", "v1.34.11"), ("r740-1", "v1.34.11")]);
        nodes[3].cgroup = Some(CgroupVersion::V1);
        nodes[4].cgroup = Some(CgroupVersion::V2);
        let (_, f) = plan_hops(&v("v1.34.11"), &v("v1.35.8"), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        let w: Vec<_> = f.iter().filter(|f| f.code == "path.cgroup-v2-required").collect();
        assert_eq!(w.len(), 1, "{f:?}");
        assert!(w[0].message.contains("1 node (r640-1)"), "{}", w[0].message);
        // Before 1.35 nothing to say.
        let (_, f) = plan_hops(&v("v1.33.13"), &v("v1.34.11"), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        assert!(f.iter().all(|f| f.code != "path.cgroup-v2-required"), "{f:?}");
    }

    /// cp-1 ran `kubeadm upgrade apply v1.35.0` (static pods and kubelet), cp-2 and cp-3 still
    /// run v1.34.6, like every worker.
    fn half_upgraded() -> Vec<NodeVersion> {
        let mut nodes = fleet("v1.34.6", &[("w-1", "v1.34.6"), ("w-2", "v1.34.6")]);
        nodes[0].static_pods = Some(v("v1.35.0"));
        nodes[0].kubelet = v("v1.35.0");
        nodes
    }

    #[test]
    fn a_half_upgraded_control_plane_is_continued_not_downgraded() {
        let nodes = half_upgraded();
        let (hops, findings) =
            plan_hops(&v("v1.34.6"), &v("v1.35.8"), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        assert_eq!(hops.len(), 1);
        // `apply` stays on cp-1 (to v1.35.8, upward from its v1.35.0), then the others.
        assert_eq!(hops[0].control_plane, vec!["cp-1", "cp-2", "cp-3"]);
        assert!(!hops[0].apply_done);
        assert!(hops[0].done.is_empty());
        // No advice to `kubeadm upgrade apply v1.34.11`: that would be a downgrade on cp-1.
        let codes: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
        assert!(!codes.contains(&"path.patch-first"), "{findings:?}");

        // To exactly the version cp-1 reached: cp-1 is done and apply has run.
        let (hops, _) = plan_hops(&v("v1.34.6"), &v("v1.35.0"), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        assert_eq!(hops[0].done, vec!["cp-1"]);
        assert!(hops[0].apply_done);
        assert_eq!(hops[0].control_plane, vec!["cp-2", "cp-3"]);
        assert_eq!(hops[0].workers, vec!["w-1", "w-2"]);
    }

    #[test]
    fn a_control_plane_on_the_target_with_kubelets_behind_is_a_kubelets_only_hop() {
        let cp = v("v1.35.8");
        // Nothing behind: nothing to upgrade, as before.
        let e = resolve_cluster_target(&cp, Some(&cp), &req("v1.35"), data()).unwrap_err();
        assert!(matches!(e, PathError::SameVersion { .. }), "{e}");
        // A kubelet behind: the control plane's own version, for a bare minor or the exact patch.
        for r in ["v1.35", "v1.35.8"] {
            assert_eq!(resolve_cluster_target(&cp, Some(&v("v1.34.6")), &req(r), data()).unwrap(), cp, "{r}");
        }
        // Older than the control plane stays a refusal.
        let e = resolve_cluster_target(&cp, Some(&v("v1.34.6")), &req("v1.35.3"), data()).unwrap_err();
        assert!(matches!(e, PathError::Downgrade { .. }), "{e}");

        // cp-1's kubelet and two workers are behind, one of them two minors.
        let mut nodes = fleet("v1.35.8", &[("w-1", "v1.34.6"), ("w-2", "v1.35.8"), ("w-old", "v1.33.13")]);
        nodes[0].kubelet = v("v1.34.6");
        let (hops, findings) = plan_hops(&cp, &cp, &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        assert_eq!(hops.len(), 1);
        let hop = &hops[0];
        assert_eq!((&hop.from, &hop.to), (&cp, &cp));
        assert!(hop.apply_done, "no `kubeadm upgrade apply` again");
        // cp-1 still needs its kubelet (`kubeadm upgrade node`, then the kubelet); cp-2/3 are done.
        assert_eq!(hop.control_plane, vec!["cp-1"]);
        assert_eq!(hop.done, vec!["cp-2", "cp-3", "w-2"]);
        assert_eq!(hop.workers, vec!["w-1", "w-old"]);
        assert!(hop.kubelets_first.is_empty() && hop.catch_up.is_empty(), "{hop:?}");
        let codes: Vec<(&str, &str)> = findings.iter().map(|f| (f.code.as_str(), f.subject.as_str())).collect();
        assert!(codes.contains(&("path.kubelets-behind", "control-plane")), "{codes:?}");
        assert!(codes.contains(&("path.node-skips-minors", "w-old")), "{codes:?}");
        assert!(!codes.iter().any(|(c, _)| *c == "path.patch-first"), "{codes:?}");
    }

    #[test]
    fn the_path_of_an_inventory_whose_control_plane_is_done_moves_the_kubelets() {
        let text = include_str!("../../../examples/small.json");
        let mut inv = crate::snapshot::load_str("examples/small.json", text, &Default::default()).unwrap();
        for c in &mut inv.components {
            if crate::progress::UPGRADED_STATIC_PODS.contains(&c.component) {
                c.tag = "v1.35.8".to_string();
                c.image = format!("registry.k8s.io/{}:v1.35.8", c.component);
            }
        }
        for n in inv.nodes.iter_mut().filter(|n| n.is_control_plane()) {
            n.kubelet_version = v("v1.35.8");
        }
        let path = upgrade_path(&inv, &req("v1.35"), WorkerStrategy::Lockstep, data()).unwrap();
        assert_eq!((path.from.clone(), path.to.clone()), (v("v1.35.8"), v("v1.35.8")));
        let hop = &path.hops[0];
        assert!(hop.control_plane.is_empty(), "{hop:?}");
        let workers: Vec<String> = inv.nodes.iter().filter(|n| !n.is_control_plane()).map(|n| n.name.clone()).collect();
        assert_eq!(hop.workers, workers);
        // Every kubelet on the target: nothing to upgrade, with the way on.
        for n in &mut inv.nodes {
            n.kubelet_version = v("v1.35.8");
        }
        let e = upgrade_path(&inv, &req("v1.35"), WorkerStrategy::Lockstep, data()).unwrap_err();
        assert!(e.to_string().contains("nothing to upgrade"), "{e}");
    }

    #[test]
    fn apply_stays_on_the_node_that_ran_it_even_when_it_is_not_first_by_name() {
        let mut nodes = fleet("v1.34.6", &[("w-1", "v1.34.6")]);
        nodes[1].static_pods = Some(v("v1.35.0"));
        let (hops, _) = plan_hops(&v("v1.34.6"), &v("v1.35.0"), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        // cp-2's static pods moved but its kubelet did not: its step (kubelet) stays, first.
        assert_eq!(hops[0].control_plane, vec!["cp-2", "cp-1", "cp-3"]);
        assert!(hops[0].apply_done);
        assert!(hops[0].done.is_empty());
    }

    #[test]
    fn the_path_of_a_half_upgraded_inventory_agrees_with_hop_progress() {
        use crate::inventory::{Component, ComponentInstance};
        // The committed small example (`stepstone_fleet::FleetSpec::small()`).
        let text = include_str!("../../../examples/small.json");
        let mut inv = crate::snapshot::load_str("examples/small.json", text, &Default::default())
            .expect("the small fleet parses");
        let first_cp = inv.control_plane_nodes().map(|n| n.name.clone()).min().unwrap();
        let set = |c: &mut ComponentInstance, tag: &str| {
            c.tag = tag.to_string();
            c.image = format!("registry.k8s.io/{}:{tag}", c.component);
        };
        for c in &mut inv.components {
            if matches!(
                c.component,
                Component::KubeApiserver | Component::KubeControllerManager | Component::KubeScheduler
            ) {
                let tag = if c.node == first_cp { "v1.35.0" } else { "v1.34.6" };
                set(c, tag);
            }
        }
        for n in &mut inv.nodes {
            n.kubelet_version = if n.name == first_cp { v("v1.35.0") } else { v("v1.34.6") };
        }
        // Today's target is older than cp-01: refused, naming the node.
        let e = upgrade_path(&inv, &req("v1.34"), WorkerStrategy::Lockstep, data()).unwrap_err();
        assert!(matches!(e, PathError::BehindNode { .. }), "{e}");
        assert!(e.to_string().contains(&format!("older than {first_cp}")), "{e}");
        let path = upgrade_path(&inv, &req("v1.35.0"), WorkerStrategy::Lockstep, data()).unwrap();
        assert_eq!(path.from, v("v1.34.6"));
        let progress = crate::progress::hop_progress(&inv, &path.hops[0].to);
        assert_eq!(path.hops[0].done, progress.done());
        assert_eq!(path.hops[0].apply_done, progress.apply_done);
        assert!(path.findings.iter().any(|f| f.code == "path.in-progress"), "{:?}", path.findings);
        // Two minors apart is not a state kubeadm leaves: refused with the way out.
        for c in &mut inv.components {
            if c.node == first_cp && c.component == Component::KubeApiserver {
                set(c, "v1.36.0");
            }
        }
        let e = upgrade_path(&inv, &req("v1.36"), WorkerStrategy::Lockstep, data()).unwrap_err();
        assert!(matches!(e, PathError::ControlPlaneSplit { .. }), "{e}");
    }

    #[test]
    fn cgroup_v1_is_an_error_at_the_hop_that_moves_the_kubelet_into_1_35() {
        // skip-minors to 1.37: the 1.32 kubelet of r640-1 is outside the n-3 window of 1.36, so
        // it moves to 1.35 before hop 3's control plane: the finding belongs to hop 3.
        let mut nodes = fleet("v1.33.13", &[("r640-1", "v1.32.13"), ("r740-1", "v1.33.13")]);
        nodes[3].cgroup = Some(CgroupVersion::V1);
        nodes[4].cgroup = Some(CgroupVersion::V1);
        let (hops, f) = plan_hops(&v("v1.33.13"), &v("v1.37.0"), &nodes, WorkerStrategy::SkipMinors, data())
            .unwrap_or_else(|e| panic!("{e}"));
        let cg: Vec<&Finding> = f.iter().filter(|f| f.code == "path.cgroup-v2-required").collect();
        assert!(cg.iter().all(|f| f.severity == Severity::Error), "{cg:?}");
        let forced_hop = hops.iter().position(|h| h.kubelets_first.contains(&"r640-1".to_string())).unwrap();
        let label = format!("hop {} ({} -> {})", forced_hop + 1, hops[forced_hop].from, hops[forced_hop].to);
        assert!(hops[forced_hop].from.minor() >= Minor::new(1, 35), "{hops:?}");
        assert!(
            cg.iter().any(|f| f.subject == label
                && f.message.contains("r640-1")
                && f.message.contains("before the control plane")),
            "{cg:?}"
        );
        // r740-1 moves once, at the last hop: that hop carries it, and r640-1 is not repeated.
        let last = format!("hop {} ({} -> {})", hops.len(), hops[hops.len() - 1].from, hops[hops.len() - 1].to);
        let at_last: Vec<&&Finding> = cg.iter().filter(|f| f.subject == last).collect();
        assert_eq!(at_last.len(), 1, "{cg:?}");
        assert!(at_last[0].message.contains("r740-1") && !at_last[0].message.contains("r640-1"), "{cg:?}");
        assert!(
            at_last[0].hint.contains("failCgroupV1: false")
                && at_last[0].hint.contains("--ignore-preflight-errors=SystemVerification")
        );
        assert!(at_last[0].hint.contains("cgroup v2 (recommended"));
        // Lockstep: exactly one finding, at the hop into 1.35, for both nodes.
        let (_, f) = plan_hops(&v("v1.33.13"), &v("v1.37.0"), &nodes, WorkerStrategy::Lockstep, data()).unwrap();
        let cg: Vec<&Finding> = f.iter().filter(|f| f.code == "path.cgroup-v2-required").collect();
        assert_eq!(cg.len(), 1, "{cg:?}");
        assert!(cg[0].subject.contains("-> v1.35.8"), "{cg:?}");
        assert!(cg[0].message.contains("2 nodes (r640-1, r740-1)"), "{cg:?}");
    }

    fn arb_fleet() -> impl Strategy<Value = (u32, Vec<u32>)> {
        (28u32..=34, prop::collection::vec(0u32..=3, 1..8))
    }

    proptest! {
        /// Whatever the fleet: hops are consecutive minors, end on the target, and after each hop
        /// no kubelet is newer than the control plane or outside its skew window.
        #[test]
        fn every_hop_keeps_the_fleet_within_skew(
            (cp, lags) in arb_fleet(),
            extra in 1u32..=3,
            lockstep in any::<bool>(),
        ) {
            let strategy = if lockstep { WorkerStrategy::Lockstep } else { WorkerStrategy::SkipMinors };
            let from = data().latest_patch(Minor::new(1, cp)).unwrap().clone();
            let to = data().latest_patch(Minor::new(1, cp + extra)).unwrap().clone();
            let workers: Vec<(String, String)> =
                lags.iter().enumerate().map(|(i, l)| (format!("w-{i}"), format!("v1.{}.0", cp - l))).collect();
            let refs: Vec<(&str, &str)> = workers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let nodes = fleet(&from.to_string(), &refs);
            let (hops, _) = plan_hops(&from, &to, &nodes, strategy, data()).unwrap();
            prop_assert_eq!(hops.len() as u32, extra);
            prop_assert_eq!(&hops.last().unwrap().to, &to);
            let mut versions: BTreeMap<String, KubeVersion> =
                nodes.iter().map(|n| (n.name.clone(), n.kubelet.clone())).collect();
            for (i, hop) in hops.iter().enumerate() {
                prop_assert_eq!(hop.to.minor().minus(hop.from.minor()), 1);
                if i > 0 { prop_assert_eq!(&hop.from, &hops[i - 1].to); }
                for n in hop.kubelets_first.iter().chain(&hop.catch_up) {
                    let k = versions.get_mut(n).unwrap();
                    if *k < hop.from { *k = hop.from.clone(); }
                }
                // Before the control plane moves: nothing is outside the window of `to`.
                for k in versions.values() {
                    let w = i64::from(data().kubelet_skew_window(hop.to.minor(), k.minor()));
                    prop_assert!(hop.to.minor().minus(k.minor()) <= w);
                }
                for n in hop.control_plane.iter().chain(&hop.workers) {
                    versions.insert(n.clone(), hop.to.clone());
                }
                for k in versions.values() {
                    prop_assert!(*k <= hop.to);
                }
            }
            // The last hop leaves every node on the target.
            prop_assert!(versions.values().all(|k| *k == to));
        }
    }
}

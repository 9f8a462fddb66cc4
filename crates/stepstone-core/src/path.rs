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
//! Planning is pure: the same inventory and request always give the same path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::findings::{self, Finding, Severity};
use crate::inventory::{CgroupVersion, Inventory};
use crate::plan::model::WorkerStrategy;
use crate::releases::ReleaseData;
use crate::version::{KubeVersion, Minor, VersionRequest};

/// Why a path cannot be planned. Each message names the input and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "{cluster}: the control-plane version is unknown (no kube-apiserver static pods and no /version); include kube-system pods in the snapshot (`kubectl get nodes,pods,pdb,deploy,rs,sts,ds -A -o json`) or read the cluster with --kubeconfig"
    )]
    UnknownControlPlane { cluster: String },
    #[error(
        "target {input} is older than the control plane ({from}): stepstone plans upgrades only; to go back, restore the pre-upgrade etcd snapshot and package versions as the rollback runbook describes"
    )]
    Downgrade { input: String, from: KubeVersion },
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
}

/// Work out the final version a request means, starting from `from`.
pub fn resolve_target(
    from: &KubeVersion,
    request: &VersionRequest,
    data: &ReleaseData,
) -> Result<KubeVersion, PathError> {
    let input = request.to_string();
    let minor = request.minor();
    if minor < from.minor() {
        return Err(PathError::Downgrade { input, from: from.clone() });
    }
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
    let target = match request {
        VersionRequest::Minor(_) => latest.clone(),
        VersionRequest::Exact(v) if v.is_prerelease() => {
            return Err(PathError::UnknownVersion {
                input,
                reason: "pre-releases are not planned; pick a released patch".to_string(),
            });
        }
        VersionRequest::Exact(v) if v > latest => {
            return Err(PathError::UnknownVersion {
                input,
                reason: format!(
                    "the newest known {minor} patch is {latest} (data updated {}); if {v} has been released since, add it to data/releases.toml",
                    data.updated
                ),
            });
        }
        VersionRequest::Exact(v) => KubeVersion::new(v.major, v.minor, v.patch),
    };
    if target < *from {
        return Err(PathError::Downgrade { input, from: from.clone() });
    }
    if target == *from || (minor == from.minor() && from >= latest) {
        return Err(PathError::SameVersion { input, from: from.clone() });
    }
    Ok(target)
}

/// Plan the path for an inventory. The control plane's version is its oldest apiserver.
pub fn upgrade_path(
    inv: &Inventory,
    request: &VersionRequest,
    strategy: WorkerStrategy,
    data: &ReleaseData,
) -> Result<UpgradePath, PathError> {
    let from =
        inv.control_plane_version().ok_or_else(|| PathError::UnknownControlPlane { cluster: inv.source.clone() })?;
    let to = resolve_target(&from, request, data)?;
    let nodes: Vec<NodeVersion> = inv
        .nodes
        .iter()
        .map(|n| NodeVersion {
            name: n.name.clone(),
            control_plane: n.is_control_plane(),
            kubelet: n.kubelet_version.clone(),
            cgroup: n.cgroup,
        })
        .collect();
    let (hops, findings) = plan_hops(&from, &to, &nodes, strategy, data)?;
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
    // Each hop's end version: the latest patch of every minor on the way, then `to`.
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
        ends.push(latest.clone());
    }
    ends.push(to.clone());

    if to.minor() > from.minor()
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
    let control_plane: Vec<String> = kubelets.iter().filter(|(_, (cp, _))| *cp).map(|(n, _)| n.clone()).collect();
    let mut hops = Vec::new();
    let mut current = from.clone();
    let last = ends.len() - 1;
    let mut skipping_moves = 0usize;

    for (index, end) in ends.into_iter().enumerate() {
        let target_minor = end.minor();
        let mut kubelets_first = Vec::new();
        let mut catch_up = Vec::new();
        for (name, (cp, version)) in &kubelets {
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
                entry.1 = current.clone();
            }
        }
        let mut workers = Vec::new();
        let mut moving = Vec::new();
        for (name, (cp, version)) in kubelets.iter_mut() {
            let moves = if *cp {
                true
            } else {
                match strategy {
                    WorkerStrategy::Lockstep => true,
                    WorkerStrategy::SkipMinors => index == last,
                }
            };
            if moves && *version < end {
                moving.push(name.clone());
                if !*cp {
                    if end.minor().minus(version.minor()) > 1 {
                        skipping_moves += 1;
                    }
                    workers.push(name.clone());
                }
                *version = end.clone();
            }
        }
        // The kubelet of a cgroup-v2-only minor refuses to start on a cgroup v1 host.
        let requires_v2 = data.get(target_minor).is_some_and(|r| r.cgroup_v2_required);
        let on_v1: Vec<String> =
            moving.into_iter().filter(|n| cgroups.get(n.as_str()) == Some(&Some(CgroupVersion::V1))).collect();
        if requires_v2 && !on_v1.is_empty() {
            findings.push(Finding::new(
                Severity::Warning,
                "path.cgroup-v2-required",
                hop_label.clone(),
                format!("the {target_minor} kubelet does not start on cgroup v1 by default; cgroup v1 on {}", preview(&on_v1)),
                "move these hosts to cgroup v2 before this hop, or set failCgroupV1: false in the kube-system/kubelet-config ConfigMap before upgrading (cgroup v1 support is being removed)".to_string(),
            ));
        }
        hops.push(PathHop {
            from: current.clone(),
            to: end.clone(),
            etcd: data.get(target_minor).map(|r| r.etcd.clone()),
            control_plane: control_plane.clone(),
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
            .map(|i| NodeVersion { name: format!("cp-{i}"), control_plane: true, kubelet: v(cp), cgroup: None })
            .collect();
        out.extend(workers.iter().map(|(n, k)| NodeVersion {
            name: n.to_string(),
            control_plane: false,
            kubelet: v(k),
            cgroup: None,
        }));
        out
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

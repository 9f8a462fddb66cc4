//! The one reading of an upgrade target (`--to`, `--target`) for every command, as `plan`
//! reads it: written as upstream names releases, a release the data knows, no pre-release, and
//! no older than the control plane when the inventory shows it (the control plane's own version
//! while some kubelet is still behind it).

use stepstone_core::inventory::Inventory;
use stepstone_core::path;
use stepstone_core::progress::ControlPlaneState;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::{KubeVersion, VersionRequest};

use crate::exit::usage;

/// `--to` as `plan`, `path` and `addons` take it: required, read by [`parse_request`].
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Target version: a minor (v1.35, its latest known patch) or an exact patch (v1.35.3).
    #[arg(long, value_name = "VERSION", value_parser = parse_request)]
    pub to: VersionRequest,
}

/// The `Cluster:` and `Path:` lines that open the text output of `path` and `addons`; `note`
/// follows the hop count (` (workers: lockstep)`) or is empty.
pub fn path_header(cluster: &str, from: &KubeVersion, to: &KubeVersion, hops: usize, note: &str) -> String {
    let plural = if hops == 1 { "" } else { "s" };
    format!("Cluster: {cluster}\nPath: {from} -> {to} in {hops} hop{plural}{note}\n\n")
}

/// A `--to` value as written (`v1.35`, `v1.35.3`), for clap's `value_parser`: the one parser of
/// every command that takes the target as a flag.
pub fn parse_request(s: &str) -> Result<VersionRequest, String> {
    s.parse::<VersionRequest>().map_err(|e| e.to_string())
}

/// The release `to` means for this inventory; exit 2 with `plan`'s message when it is none.
pub fn resolve(flag: &str, to: &str, inventory: &Inventory) -> anyhow::Result<KubeVersion> {
    let request: VersionRequest = to.parse().map_err(|e| usage(format!("--{flag}: {e}")))?;
    let data = ReleaseData::embedded();
    match ControlPlaneState::read(inventory) {
        Some(state) => {
            let oldest_kubelet = inventory.nodes.iter().map(|n| &n.kubelet_version).min();
            path::resolve_cluster_target(&state.oldest, oldest_kubelet, &request, data)
        }
        None => path::resolve_release(&request, data),
    }
    .map_err(|e| usage(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Inventory {
        let text = crate::source::EXAMPLES.iter().find(|(n, _)| *n == "small").unwrap().1;
        stepstone_core::snapshot::load_str("small.json", text, &Default::default()).unwrap()
    }

    #[test]
    fn a_bare_minor_is_its_latest_patch_like_plan() {
        let inv = small();
        let latest = ReleaseData::embedded().latest_patch("1.35".parse().unwrap()).unwrap().clone();
        assert_eq!(resolve("to", "v1.35", &inv).unwrap(), latest);
        assert_eq!(resolve("to", "v1.35.0", &inv).unwrap().to_string(), "v1.35.0");
    }

    #[test]
    fn what_plan_refuses_is_refused() {
        let inv = small();
        for (to, says) in [
            ("v1.33", "older than the control plane"),
            ("v0.1", "older than the control plane"),
            ("v1.35.999", "newest known 1.35 patch"),
            ("v1.35.0-rc.1", "pre-releases are not planned"),
            ("v01.35", "leading zero"),
            ("v1.35.0+k3s1", "build metadata"),
            ("v9.1", "newer than the release data"),
        ] {
            let e = resolve("to", to, &inv).unwrap_err();
            assert!(e.downcast_ref::<crate::exit::UsageError>().is_some(), "{to}");
            assert!(e.to_string().contains(says), "{to}: {e}");
        }
    }
}

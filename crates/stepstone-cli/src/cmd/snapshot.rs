//! `stepstone snapshot`: save a live cluster as the kubectl `v1 List` every command reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use stepstone_core::snapshot::SnapshotOptions;

/// Save nodes, pods, PDBs and workload controllers of a live cluster to a file.
///
/// The file is the same `v1 List` that `kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json`
/// prints, so it can be read back with `--snapshot`, diffed, or shared without cluster access.
/// It is written atomically (a temporary file renamed into place). Here -o names the output file.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone snapshot --kubeconfig /etc/kubernetes/admin.conf -o cluster.json
  stepstone snapshot --kubeconfig ~/.kube/config --context prod -o prod-2026-11-25.json
  stepstone plan --snapshot cluster.json --to v1.35")]
pub struct Args {
    /// Kubeconfig of the cluster to read.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: PathBuf,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The file to write (JSON).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let set = crate::exit::block_on(stepstone_kube::collect::collect_objects(
        Some(args.kubeconfig.as_path()),
        args.context.as_deref(),
    ))
    .with_context(|| format!("reading the cluster through {}", args.kubeconfig.display()))?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, o) in &set.objects {
        *counts.entry(o["kind"].as_str().unwrap_or("?").to_string()).or_default() += 1;
    }
    let server = set.server_version.clone().unwrap_or_else(|| "unknown".into());
    let list = stepstone_kube::collect::to_kubectl_list(&set);
    // Refuse to write a file that `--snapshot` could not read back.
    set.into_inventory(&args.output.display().to_string(), &SnapshotOptions::default())
        .map_err(|e| crate::exit::usage(format!("the cluster's objects do not form a usable snapshot: {e}")))?;
    let text = serde_json::to_string_pretty(&list)? + "\n";
    write_atomically(&args.output, text.as_bytes())?;
    let count = |k: &str| counts.get(k).copied().unwrap_or(0);
    eprintln!(
        "wrote {}: {} nodes, {} pods, {} PodDisruptionBudgets, {} workload controllers (server {server})",
        args.output.display(),
        count("Node"),
        count("Pod"),
        count("PodDisruptionBudget"),
        count("Deployment") + count("ReplicaSet") + count("StatefulSet") + count("DaemonSet"),
    );
    Ok(ExitCode::SUCCESS)
}

/// Write to a temporary file next to `path`, flush it to disk, then rename it over `path`, so a
/// reader never sees half a snapshot.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().with_context(|| format!("{} is not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| -> std::io::Result<()> {
        // A cluster snapshot names every workload and node: readable by its owner only.
        stepstone_host::private::write_file(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(crate::exit::usage(format!("cannot write {}: {e}", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_snapshot_file_is_private_even_when_it_replaces_a_readable_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_atomically(&path, b"{}").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
    }
}

//! `stepstone apis`: removed and deprecated APIs along the upgrade path, from manifests, Helm
//! releases, live objects' managedFields and the apiserver's deprecated-API metric.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use stepstone_apis::report::render_text;
use stepstone_apis::{RemovedApis, Scan, evaluate};
use stepstone_core::snapshot::{self, ObjectSet};
use stepstone_core::version::{KubeVersion, Minor, VersionRequest};
use stepstone_kube::apis::{ApiSourceRequest, fetch};

use crate::exit::usage;
use crate::output::{OutputArgs, emit};
use crate::source::SourceArgs;

/// Find removed and deprecated APIs on every hop of the path to a target version.
///
/// Four sources, each reported with where it was found:
/// manifests (--manifests: YAML/JSON files or directories, Kustomize or `helm template` output,
/// kubelet flag files such as kubeadm-flags.env; file:line of each apiVersion),
/// Helm releases (--helm: the newest deployed revision of every release in the cluster),
/// live objects' managedFields (which client, by manager name, still writes an old version;
/// a stale last-applied annotation is not reported when managedFields show the object has been
/// written with a served version since), and the apiserver's apiserver_requested_deprecated_apis
/// metric (what clients actually call; live /metrics or --metrics FILE), plus the API version of
/// the kubeadm-config ConfigMap.
///
/// With --snapshot the snapshot's objects are checked (include managedFields:
/// `kubectl get ... -o json --show-managed-fields`); with --kubeconfig the live cluster is read.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone apis --to v1.35.3 --kubeconfig admin.conf --helm
  stepstone apis --to v1.35 --from v1.32 --manifests ./deploy --manifests ./rendered.yaml
  stepstone apis --snapshot cluster.json --metrics metrics.txt --to v1.37 -o json

Save the metric with `kubectl get --raw /metrics > metrics.txt` (on each apiserver: it counts only
the requests that apiserver served since it started).

Exit codes: 0 nothing breaks at or before the target (deprecations are warnings), 1 something
breaks at or before the target, 2 bad input.")]
pub struct Args {
    /// Target version (v1.35 or v1.35.3).
    #[arg(long, value_name = "VERSION")]
    pub to: String,

    /// Current control-plane version, when no cluster or snapshot says it (or to override).
    #[arg(long, value_name = "VERSION")]
    pub from: Option<String>,

    #[command(flatten)]
    pub source: SourceArgs,

    /// Manifest files or directories to scan (repeatable). Directories are read recursively:
    /// *.yaml, *.yml, *.json, and kubelet flag files (*.env, *.conf).
    #[arg(long, value_name = "FILE|DIR")]
    pub manifests: Vec<PathBuf>,

    /// Read Helm 3 release records (owner=helm Secrets and ConfigMaps) from the cluster.
    #[arg(long)]
    pub helm: bool,

    /// A saved copy of the apiserver's /metrics (Prometheus text). Without it, a live cluster's
    /// /metrics is read.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_minor(flag: &str, s: &str) -> anyhow::Result<Minor> {
    s.parse::<VersionRequest>().map(|r| r.minor()).map_err(|e| usage(format!("--{flag}: {e}")))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data = RemovedApis::embedded();
    let target = parse_minor("to", &args.to)?;
    let mut current = args.from.as_deref().map(|f| parse_minor("from", f)).transpose()?;
    if args.source.example.is_some() {
        return Err(usage(
            "--example fleets carry no API objects; pass --snapshot, --kubeconfig, --manifests or --metrics",
        ));
    }
    let live = args.source.snapshot.is_empty() && args.source.kubeconfig.is_some();
    if args.helm && !live && args.source.snapshot.is_empty() {
        return Err(usage(
            "--helm reads release records from a cluster: pass --kubeconfig (or a --snapshot that includes the owner=helm Secrets)",
        ));
    }
    if args.manifests.is_empty() && args.metrics.is_none() && args.source.snapshot.is_empty() && !live {
        return Err(usage("nothing to check: pass --manifests, --metrics, --snapshot or --kubeconfig"));
    }

    let mut scan = Scan::new(data);
    for path in &args.manifests {
        scan.add_manifest_path(path).map_err(|e| usage(e.to_string()))?;
    }
    if let Some(path) = &args.metrics {
        let text = std::fs::read_to_string(path).map_err(|e| {
            usage(format!(
                "cannot read --metrics {}: {e}; save it with `kubectl get --raw /metrics > metrics.txt`",
                path.display()
            ))
        })?;
        scan.add_metrics_text(&path.display().to_string(), &text, true).map_err(|e| usage(e.to_string()))?;
    }

    if !args.source.snapshot.is_empty() {
        let mut set = ObjectSet::default();
        for path in &args.source.snapshot {
            set.add_path(path).map_err(|e| usage(e.to_string()))?;
        }
        let mut by_origin: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for (origin, obj) in set.objects {
            by_origin.entry(origin).or_default().push(obj);
        }
        for (origin, objects) in &by_origin {
            scan.add_objects(origin, objects);
        }
        if current.is_none() {
            current = snapshot::load_paths(&args.source.snapshot, &args.source.options())
                .ok()
                .and_then(|inv| inv.control_plane_version())
                .map(|v| v.minor());
        }
    } else if let Some(kubeconfig) = &args.source.kubeconfig {
        let sources = crate::exit::block_on(async {
            let conn = stepstone_kube::connect(Some(kubeconfig.as_path()), args.source.context.as_deref()).await?;
            let mut request = ApiSourceRequest::new(data.kinds(), data.groups());
            request.helm = args.helm;
            request.metrics = args.metrics.is_none();
            let sources = fetch(&conn, &request).await?;
            anyhow::Ok((conn.label, sources))
        })
        .with_context(|| format!("reading the cluster through {}", kubeconfig.display()))?;
        let (label, sources) = sources;
        scan.add_objects(&label, &sources.objects);
        if let Some(text) = &sources.metrics {
            scan.add_metrics_text("apiserver /metrics", text, false).map_err(|e| anyhow::anyhow!(e))?;
        }
        for note in sources.notes {
            scan.note(note);
        }
        if current.is_none() {
            current = sources.server_version.as_deref().and_then(|v| v.parse::<KubeVersion>().ok()).map(|v| v.minor());
        }
    }
    if current.is_none() {
        scan.note(
            "the current control-plane version is unknown (pass --from): every removal up to the target is listed",
        );
    }
    if let Some(c) = current
        && c > target
    {
        return Err(usage(format!(
            "--to {} is older than the current control plane ({c}); pass a newer target",
            args.to
        )));
    }

    let report = evaluate(scan, current, target);
    emit(args.output.output, "ApiReport", &report, || render_text(&report))?;
    Ok(crate::exit::for_findings(&report.findings))
}

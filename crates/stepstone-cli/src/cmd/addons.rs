//! `stepstone addons`: the add-ons running in the cluster (CNI, ingress, load balancer,
//! certificates, storage, CSI sidecars, metrics) judged against every hop of the path.

use std::process::ExitCode;

use serde::Serialize;
use stepstone_core::addons::{self, AddonData, FoundAddon, HopSupport};
use stepstone_core::findings::Finding;
use stepstone_core::path;
use stepstone_core::plan::WorkerStrategy;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::{KubeVersion, Minor};

use crate::output::{OutputArgs, Table, emit, findings_table};
use crate::source::SourceArgs;
use crate::target::{TargetArgs, path_header};

/// Check the add-ons the cluster runs against the Kubernetes minors each project supports.
///
/// Add-ons are recognised by their pods' images (`quay.io/calico/node:v3.29.3` is Calico
/// v3.29.3): Calico, Cilium, Flannel, ingress-nginx, MetalLB, cert-manager, Rook-Ceph, Longhorn,
/// the CSI sidecars and metrics-server. For every hop of the path each version is supported,
/// not supported (with the first release that supports the hop, to install before it), or
/// unknown (the project publishes no matrix, or the release is not in stepstone's table). The
/// table and the source of every row are in data/addons.toml.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone addons --example small --to v1.35
  stepstone addons --snapshot cluster.json --to v1.35 -o json
  stepstone addons --kubeconfig admin.conf --to v1.34

Exit codes: 0 every add-on supports every hop (or is unknown), 1 an add-on blocks a hop,
2 bad input (unknown or older target).")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// One hop as the report lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportHop {
    pub hop: usize,
    pub from: Minor,
    pub to: Minor,
}

/// The `AddonReport` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonReport {
    pub cluster: String,
    pub from: KubeVersion,
    pub to: KubeVersion,
    pub hops: Vec<ReportHop>,
    pub addons: Vec<FoundAddon>,
    pub findings: Vec<Finding>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inv = args.source.load()?;
    let path = path::upgrade_path(&inv, &args.target.to, WorkerStrategy::Lockstep, ReleaseData::embedded())
        .map_err(|e| crate::exit::usage(e.to_string()))?;
    let hops = addons::hops_of(&path);
    let check = addons::check(&inv, &hops, AddonData::embedded());
    let report = AddonReport {
        cluster: path.cluster.clone(),
        from: path.from.clone(),
        to: path.to.clone(),
        hops: hops.iter().enumerate().map(|(i, h)| ReportHop { hop: i + 1, from: h.from, to: h.to }).collect(),
        addons: check.addons,
        findings: check.findings,
    };
    emit(args.output.output, "AddonReport", &report, || render(&report))?;
    Ok(crate::exit::for_findings(&report.findings))
}

/// The cell for one add-on on one hop.
pub fn verdict(support: HopSupport, upgrade_to: Option<&str>) -> String {
    match (support, upgrade_to) {
        (HopSupport::NotSupported, Some(v)) => format!("no: {v}+"),
        (HopSupport::NotSupported, None) => "no".to_string(),
        (HopSupport::Supported, _) => "yes".to_string(),
        (HopSupport::Unknown, _) => "unknown".to_string(),
    }
}

/// The add-on table (shared with `plan`): one row per add-on version, one column per hop.
pub fn addon_table(found: &[FoundAddon], hops: &[(Minor, Minor)]) -> String {
    if found.is_empty() {
        return "No add-on of stepstone's table (data/addons.toml) runs in the cluster.\n".to_string();
    }
    let mut header = vec!["ADD-ON".to_string(), "VERSION".into(), "PODS".into(), "SUPPORTS".into()];
    header.extend(hops.iter().enumerate().map(|(i, (from, to))| format!("HOP {} {from}->{to}", i + 1)));
    let mut t = Table::new(header);
    for a in found {
        let mut row =
            vec![a.name.clone(), a.version.clone(), a.pods.to_string(), a.supports.clone().unwrap_or("?".into())];
        row.extend(a.hops.iter().map(|h| verdict(h.support, h.upgrade_to.as_deref())));
        t.row(row);
    }
    let mut out = t.render();
    out.push_str("\"no: vX+\" = not supported; vX is the first release that supports the hop, to install before it.\n");
    out.push_str("\nSources:\n");
    for a in found {
        out.push_str(&format!("  {} {}: {}\n", a.name, a.version, a.source));
    }
    out
}

fn render(r: &AddonReport) -> String {
    let mut out = path_header(&r.cluster, &r.from, &r.to, r.hops.len(), "");
    let hops: Vec<(Minor, Minor)> = r.hops.iter().map(|h| (h.from, h.to)).collect();
    out.push_str(&addon_table(&r.addons, &hops));
    out.push('\n');
    out.push_str(&findings_table(&r.findings));
    out
}

//! `stepstone skew`: judge the cluster's component versions against the version skew policy,
//! as they are or as they would be with the control plane on another version.

use std::collections::BTreeMap;
use std::process::ExitCode;

use stepstone_core::releases::ReleaseData;
use stepstone_core::skew::{self, Part, SkewOptions, SkewReport, Topology};
use stepstone_core::version::KubeVersion;

use crate::output::{OutputArgs, Table, emit, findings_table};
use crate::source::SourceArgs;

/// Check component versions against the Kubernetes version skew policy.
///
/// kube-apiserver, kube-controller-manager and kube-scheduler versions come from the kube-system
/// static pods, kubelets from the nodes, kube-proxy from its pod on each node. Every finding
/// names the rule it breaks (skew.kubelet-too-old, skew.ha-apiservers, ...). A control plane
/// half-way through kubeadm's documented upgrade order is reported as upgrade.in-progress
/// (a warning with the next step), not as an error.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone skew --snapshot cluster.json
  stepstone skew --snapshot cluster.json --target v1.35.3      # what breaks if the control plane moved to v1.35.3
  stepstone skew --kubeconfig admin.conf --kubectl-version v1.34.2 -o json

Exit codes: 0 no errors (warnings allowed), 1 at least one finding of severity error, 2 bad input.")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Judge the state after the control plane (and the kube-proxy DaemonSet, which kubeadm
    /// upgrades with it) moved to this version, with the kubelets as they are.
    #[arg(long, value_name = "VERSION")]
    pub target: Option<String>,

    /// Also check a kubectl client of this version (kubectl is supported within one minor).
    #[arg(long = "kubectl-version", value_name = "VERSION", value_parser = parse_version)]
    pub kubectl_version: Option<KubeVersion>,

    /// Which kube-apiserver the controller-manager, scheduler and control-plane kubelets reach:
    /// the one on their own node (kubeadm) or any of them through a load balancer.
    #[arg(long, value_enum, default_value_t = TopologyArg::Kubeadm)]
    pub topology: TopologyArg,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopologyArg {
    /// Each control-plane node's components use the apiserver on the same node.
    Kubeadm,
    /// Components reach every apiserver through a load balancer.
    LoadBalanced,
}

impl From<TopologyArg> for Topology {
    fn from(t: TopologyArg) -> Self {
        match t {
            TopologyArg::Kubeadm => Topology::Kubeadm,
            TopologyArg::LoadBalanced => Topology::LoadBalanced,
        }
    }
}

/// Parse a version flag; clap reports the error with the flag name and exits with 2.
pub fn parse_version(s: &str) -> Result<KubeVersion, String> {
    s.parse::<KubeVersion>().map_err(|e| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inv = args.source.load()?;
    let target = args.target.as_deref().map(|t| crate::target::resolve("target", t, &inv)).transpose()?;
    let opts = SkewOptions { topology: args.topology.into(), target, kubectl: args.kubectl_version };
    let report = skew::check(&inv, &opts, ReleaseData::embedded());
    emit(args.output.output, "SkewReport", &report, || render(&report))?;
    Ok(crate::exit::for_findings(&report.findings))
}

fn render(report: &SkewReport) -> String {
    let mut out = format!("Cluster: {}\n", report.cluster);
    match (&report.target, &report.control_plane) {
        (Some(t), _) => out.push_str(&format!("Judging the control plane at {t} (hypothetical), nodes as they are\n")),
        (None, Some(cp)) => out.push_str(&format!("Control plane: {cp}\n")),
        (None, None) => out.push_str("Control plane: unknown\n"),
    }
    out.push('\n');
    // Versions per part, nodes grouped under each version.
    let mut groups: BTreeMap<(Part, KubeVersion), Vec<&str>> = BTreeMap::new();
    for i in &report.instances {
        groups.entry((i.part, i.version.clone())).or_default().push(i.node.as_str());
    }
    let mut t = Table::new(["COMPONENT", "VERSION", "COUNT", "WHERE"]);
    for ((part, version), nodes) in &groups {
        let named: Vec<&str> = nodes.iter().copied().filter(|n| !n.is_empty()).collect();
        let place = match named.len() {
            0 => "-".to_string(),
            n if n <= 4 => named.join(", "),
            n => format!("{}, … ({} more)", named[..3].join(", "), n - 3),
        };
        t.row([part.to_string(), version.to_string(), nodes.len().to_string(), place]);
    }
    out.push_str(&t.render());
    out.push('\n');
    out.push_str(&findings_table(&report.findings));
    out
}

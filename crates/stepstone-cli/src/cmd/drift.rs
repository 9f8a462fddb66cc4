//! `stepstone drift`: nodes that differ from the rest of their hardware generation.

use std::collections::BTreeMap;
use std::process::ExitCode;

use stepstone_host::drift::{self, DriftReport};
use stepstone_host::node::NodeTarget;

use super::preflight::{SshArgs, select_nodes};
use crate::exit;
use crate::output::{OutputArgs, Table, emit, findings_table};
use crate::source::SourceArgs;

/// Report nodes whose kernel, OS image, runtime, kubelet version or kubelet config differ from
/// the majority of their hardware generation.
///
/// Works from a snapshot alone; with --kubelet-config the kubelet config file
/// (/var/lib/kubelet/config.yaml) is also read from each node over SSH and compared key by key.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone drift --snapshot cluster.json
  stepstone drift --snapshot cluster.json --kubelet-config --ssh-user ops -o json")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Also compare the kubelet config files, read over SSH.
    #[arg(long)]
    pub kubelet_config: bool,
    /// Which nodes to read kubelet configs from: a label selector or node names (default: all).
    #[arg(long, value_name = "SELECTOR|NAMES", requires = "kubelet_config")]
    pub nodes: Option<String>,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inventory = args.source.load()?;
    let mut configs = BTreeMap::new();
    if args.kubelet_config {
        let targets: Vec<NodeTarget> =
            select_nodes(&inventory, args.nodes.as_deref())?.into_iter().map(NodeTarget::from_node).collect();
        let ops = args.ssh.ops();
        let read = exit::block_on(drift::read_kubelet_configs(ops.as_dyn(), &targets, args.ssh.timeout()));
        if ops.print_recorded() {
            return Ok(ExitCode::SUCCESS);
        }
        for (node, result) in read {
            match result {
                Ok(c) => {
                    configs.insert(node, c);
                }
                Err(e) => eprintln!("warning: {node}: kubelet config not compared: {e}"),
            }
        }
    }
    let report = drift::drift(&inventory, &configs);
    emit(args.output.output, "DriftReport", &report, || render(&report))?;
    Ok(exit::for_findings(&report.findings))
}

fn render(report: &DriftReport) -> String {
    let mut t = Table::new(["GENERATION", "NODES", "FIELD", "MAJORITY", "OTHER VALUES"]);
    for g in &report.generations {
        if g.drifting.is_empty() {
            t.row([g.generation.clone(), g.nodes.to_string(), "-".into(), "all alike".into(), String::new()]);
        }
        for d in &g.drifting {
            let others: Vec<String> = d
                .values
                .iter()
                .filter(|(v, _)| Some(*v) != d.majority.as_ref())
                .map(|(v, ns)| format!("{v} ({})", ns.join(",")))
                .collect();
            t.row([
                g.generation.clone(),
                g.nodes.to_string(),
                d.field.clone(),
                d.majority.clone().unwrap_or_else(|| "(no majority)".into()),
                others.join("; "),
            ]);
        }
    }
    format!("{}\n{}", t.render(), findings_table(&report.findings))
}

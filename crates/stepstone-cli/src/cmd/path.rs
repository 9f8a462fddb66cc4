//! `stepstone path`: the minor-by-minor route from the cluster's version to a target, with the
//! nodes each hop has to move.

use std::process::ExitCode;

use stepstone_core::path::{self, UpgradePath};
use stepstone_core::plan::WorkerStrategy;
use stepstone_core::releases::ReleaseData;

use crate::output::{OutputArgs, Table, emit, findings_table};
use crate::source::SourceArgs;
use crate::target::{TargetArgs, path_header};

/// Show the upgrade path from the cluster's control-plane version to a target version.
///
/// The control plane moves one minor per hop, each hop to the latest known patch of its minor
/// (an exact --to pins the final patch). For every hop the path lists the kubelets that must be
/// upgraded before the control plane may move (kubelet skew window), the control-plane nodes,
/// and the workers that move with it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone path --snapshot cluster.json --to v1.35
  stepstone path --snapshot cluster.json --to v1.35.3 -o json
  stepstone path --kubeconfig admin.conf --to v1.36 --workers skip-minors

Exit codes: 0 path printed, 2 bad input (downgrade, same version, unknown or too new target).")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub target: TargetArgs,

    /// How workers follow the control plane across hops: lockstep moves every node every hop
    /// (the kubeadm-supported way); skip-minors leaves workers within the skew window and moves
    /// them once at the end, which fits nodes that are reprovisioned rather than upgraded in place.
    #[arg(long, value_enum, default_value_t = WorkersArg::Lockstep)]
    pub workers: WorkersArg,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkersArg {
    /// Every node moves at every hop.
    Lockstep,
    /// Workers move once, at the last hop or when the skew window forces them.
    SkipMinors,
}

impl From<WorkersArg> for WorkerStrategy {
    fn from(w: WorkersArg) -> Self {
        match w {
            WorkersArg::Lockstep => WorkerStrategy::Lockstep,
            WorkersArg::SkipMinors => WorkerStrategy::SkipMinors,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inv = args.source.load()?;
    let path = path::upgrade_path(&inv, &args.target.to, args.workers.into(), ReleaseData::embedded())
        .map_err(|e| crate::exit::usage(e.to_string()))?;
    emit(args.output.output, "UpgradePath", &path, || render(&path))?;
    Ok(crate::exit::for_findings(&path.findings))
}

fn names(list: &[String]) -> String {
    match list.len() {
        0 => "-".to_string(),
        n if n <= 3 => list.join(", "),
        n => format!("{} ({}, …)", n, list[..2].join(", ")),
    }
}

fn render(p: &UpgradePath) -> String {
    let strategy = match p.strategy {
        WorkerStrategy::Lockstep => "lockstep",
        WorkerStrategy::SkipMinors => "skip-minors",
    };
    let mut out = path_header(&p.cluster, &p.from, &p.to, p.hops.len(), &format!(" (workers: {strategy})"));
    let mut t = Table::new(["HOP", "FROM", "TO", "ETCD", "BEFORE CONTROL PLANE", "CONTROL PLANE", "WORKERS AFTER"]);
    for (i, h) in p.hops.iter().enumerate() {
        let mut before: Vec<String> = h.kubelets_first.clone();
        before.extend(h.catch_up.iter().cloned());
        before.sort();
        t.row([
            (i + 1).to_string(),
            h.from.to_string(),
            h.to.to_string(),
            h.etcd.clone().unwrap_or_else(|| "-".into()),
            names(&before),
            names(&h.control_plane),
            names(&h.workers),
        ]);
    }
    out.push_str(&t.render());
    for (i, h) in p.hops.iter().enumerate().filter(|(_, h)| !h.done.is_empty()) {
        let apply = if h.apply_done { "; `kubeadm upgrade apply` has run" } else { "" };
        out.push_str(&format!("Hop {} already done on: {}{apply}\n", i + 1, names(&h.done)));
    }
    out.push('\n');
    out.push_str(&findings_table(&p.findings));
    out
}

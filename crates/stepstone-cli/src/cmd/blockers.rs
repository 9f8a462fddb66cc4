//! `stepstone blockers`: what would make a drain hang or a wave unsafe, found before anything
//! runs, with the fix for each and the nodes it holds up.

use std::process::ExitCode;

use stepstone_core::capacity::Headroom;
use stepstone_core::drain::DrainOptions;
use stepstone_core::plan::blockers::{self, BlockerOptions, BlockersReport};

use crate::output::{OutputArgs, Table, emit};
use crate::source::SourceArgs;

/// List the blockers of every drain: disruption budgets that allow no eviction, pods selected
/// by several budgets, pods without a controller, pods with node-local data, singletons, and
/// pods that fit on no other node when their node is drained, each with the fix.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone blockers
  stepstone blockers --snapshot cluster.json
  stepstone blockers --kubeconfig admin.conf --headroom 90% -o json

Exit codes: 0 nothing blocks a drain (warnings may remain), 1 at least one blocker of severity
error, 2 bad input.")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    /// No node may be above this share of allocatable CPU or memory requested after a drain.
    #[arg(long, value_name = "PERCENT", default_value = "85%", value_parser = parse_headroom)]
    pub headroom: Headroom,

    /// Consent to losing emptyDir data of evicted pods (as `kubectl drain --delete-emptydir-data`).
    #[arg(long)]
    pub delete_emptydir_data: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_headroom(s: &str) -> Result<Headroom, String> {
    Headroom::parse(s).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inv = args.source.load()?;
    let opts = BlockerOptions {
        drain: DrainOptions { delete_emptydir_data: args.delete_emptydir_data, ..DrainOptions::default() },
        headroom: args.headroom,
        check_placement: true,
    };
    let report = blockers::analyse(&inv, &opts).report;
    emit(args.output.output, "BlockersReport", &report, || render(&report))?;
    Ok(crate::exit::for_findings(&report.findings()))
}

fn nodes(list: &[String]) -> String {
    match list.len() {
        0 => "-".to_string(),
        n if n <= 3 => list.join(", "),
        n => format!("{} ({}, …)", n, list[..2].join(", ")),
    }
}

fn render(report: &BlockersReport) -> String {
    let s = &report.summary;
    let mut out = format!(
        "Blockers for {}: {} error(s), {} warning(s); {} of {} nodes cannot be drained as they are (headroom {}%)\n",
        report.cluster, s.errors, s.warnings, s.nodes_blocked, s.nodes, report.headroom_percent
    );
    if report.blockers.is_empty() {
        out.push_str("\nNothing blocks a drain.\n");
        return out;
    }
    out.push('\n');
    let mut t = Table::new(["SEVERITY", "CODE", "SUBJECT", "NODES", "MESSAGE"]);
    for b in &report.blockers {
        let f = &b.finding;
        t.row([f.severity.to_string(), f.code.clone(), f.subject.clone(), nodes(&b.nodes), f.message.clone()]);
    }
    out.push_str(&t.render());
    out.push_str("\nFixes:\n");
    for b in report.blockers.iter().filter(|b| !b.finding.hint.is_empty()) {
        out.push_str(&format!("- {} ({}): {}\n", b.finding.subject, b.finding.code, b.finding.hint));
    }
    out
}

//! `stepstone runbook`: the upgrade runbook (Markdown), the rollback runbook (`--rollback`) and
//! the self-contained HTML report (`--format html`), from a plan file or a plan computed here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use stepstone_core::drain::DrainOptions;
use stepstone_core::inventory::Inventory;
use stepstone_core::plan::Plan;
use stepstone_runbook::{
    Distro, DistroChoice, PackageIndex, RunbookOptions, Templates, html_report, rollback_markdown, upgrade_markdown,
};

use crate::exit::usage;
use crate::package_repo;
use crate::source::SourceArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DistroArg {
    /// Per node, from its osImage: Debian/Ubuntu -> apt; RHEL/Rocky/Alma/CentOS/Fedora -> dnf;
    /// openSUSE/SLES -> zypper.
    Auto,
    Apt,
    Dnf,
    Zypper,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The runbook to work from, one checkbox per step.
    Markdown,
    /// One self-contained HTML file: summary, findings, generations, blockers, Gantt timeline.
    Html,
}

/// Write the upgrade runbook for this cluster: preparation checklist, then per hop and per node
/// in plan order the exact commands (repository switch, packages pinned to the pkgs.k8s.io
/// revision, kubeadm, safe drain, kubelet restart, verification, uncordon), the gates between
/// waves and the rollback triggers with the command that checks each.
///
/// `--rollback` writes the rollback runbook instead: per hop, a worker, one control-plane node,
/// and the whole control plane with the etcd snapshot restore (and what that loses).
/// `--format html` writes the report. Templates can be replaced file by file with
/// `--template-dir` (e.g. a hooks.md with your notification steps).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone runbook --snapshot cluster.json --to v1.35.3 > upgrade.md
  stepstone runbook --plan plan.json --snapshot cluster.json --distro auto -o upgrade.md
  stepstone runbook --plan plan.json --distro dnf --rollback -o rollback.md
  stepstone runbook --plan plan.json --format html -o report.html
  stepstone runbook --plan plan.json --distro apt --template-dir ./runbook-templates

Templates (replace any of them with a file of the same name in --template-dir):
  upgrade.md, rollback.md, checks.md, hooks.md (notification steps), staging.md, report.html")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Plan written by `stepstone plan -o json`. Without it, the plan is computed from the
    /// cluster (--snapshot/--kubeconfig/--example) and --to.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,

    /// Target version when computing the plan (v1.35 = its latest patch, or v1.35.3).
    #[arg(long, value_name = "VERSION", conflicts_with = "plan")]
    pub to: Option<String>,

    /// Package family for the commands.
    #[arg(long, value_enum, default_value_t = DistroArg::Auto)]
    pub distro: DistroArg,

    /// Document format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,

    /// Write the rollback runbook instead of the upgrade runbook.
    #[arg(long)]
    pub rollback: bool,

    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Directory of template files that replace the embedded ones by name.
    #[arg(long, value_name = "DIR")]
    pub template_dir: Option<PathBuf>,

    /// `kubectl drain --timeout` in the drain steps.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = crate::duration::seconds)]
    pub drain_timeout: std::time::Duration,

    /// Where etcd snapshots are written and looked for.
    #[arg(long, value_name = "DIR", default_value = "/var/backups/stepstone")]
    pub backup_dir: String,

    /// Image of the probe pods in the network and DNS checks (needs httpd, wget, nslookup).
    #[arg(long, value_name = "IMAGE", default_value = "busybox:1.36")]
    pub probe_image: String,

    /// When computing the plan: drains may evict pods with emptyDir volumes (their data is
    /// lost), and the printed `kubectl drain` lines carry `--delete-emptydir-data`. Without it
    /// they do not, and such pods are blockers. (A plan file carries its own consents.)
    #[arg(long, conflicts_with = "plan")]
    pub delete_emptydir_data: bool,

    /// When computing the plan: drains may delete pods no controller recreates.
    #[arg(long, conflicts_with = "plan")]
    pub delete_unmanaged_pods: bool,

    /// When computing the plan: drains may evict pods bound to node-local storage.
    #[arg(long, conflicts_with = "plan")]
    pub allow_local_storage_loss: bool,

    /// The Kubernetes repository's own package index, to pin the exact build instead of
    /// `'1.x.y-*'`: a file (the per-minor deb `Packages` or the rpm `repodata/*-primary.xml`, a
    /// mirror's copy on offline sites) or an http(s) URL of one index or of a repository root
    /// (`https://pkgs.k8s.io/core:/stable:` reads every minor of the plan). An unreachable URL
    /// leaves `'1.x.y-*'` with a note. Repeatable.
    #[arg(long, value_name = "FILE|URL")]
    pub package_index: Vec<String>,
}

/// Read a plan file: the `stepstone/v1alpha1` envelope (`kind: Plan`) or the bare Plan object.
pub fn read_plan(path: &std::path::Path) -> anyhow::Result<Plan> {
    let text =
        std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read the plan {}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        usage(format!("{} is not JSON ({e}): write it with `stepstone plan ... -o json > plan.json`", path.display()))
    })?;
    if let Some(kind) = value.get("kind").and_then(|k| k.as_str())
        && kind != "Plan"
    {
        return Err(usage(format!(
            "{} holds a {kind}, not a Plan: write it with `stepstone plan -o json`",
            path.display()
        )));
    }
    serde_json::from_value(value).map_err(|e| {
        usage(format!(
            "{} is not a stepstone plan ({e}): write it with `stepstone plan ... -o json` of this version",
            path.display()
        ))
    })
}

fn source_given(s: &SourceArgs) -> bool {
    !s.snapshot.is_empty() || s.kubeconfig.is_some() || s.example.is_some()
}

/// Plan with `stepstone plan`'s defaults, starting now; for other knobs write the plan with
/// `stepstone plan -o json` and pass `--plan`.
fn compute_plan(inventory: &Inventory, to: &str, drain: DrainOptions) -> anyhow::Result<Plan> {
    let target: stepstone_core::version::VersionRequest =
        to.parse().map_err(|e: stepstone_core::version::VersionError| usage(format!("--to: {e}")))?;
    // The core never reads the clock; the command supplies "now", to the minute.
    let start = jiff::Timestamp::now().round(jiff::Unit::Minute).map_err(|e| usage(e.to_string()))?;
    let request = stepstone_core::plan::PlanRequest { drain, ..stepstone_core::plan::PlanRequest::new(target, start) };
    stepstone_core::plan::make_plan(inventory, &request, stepstone_core::releases::ReleaseData::embedded())
        .map_err(|e| usage(e.to_string()))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (plan, inventory) = match &args.plan {
        Some(path) => {
            let plan = read_plan(path)?;
            let inventory = if source_given(&args.source) { Some(args.source.load()?) } else { None };
            (plan, inventory)
        }
        None => {
            let to = args.to.as_deref().ok_or_else(|| {
                usage("say which plan to write from: --plan plan.json, or the cluster and --to VERSION")
            })?;
            let inventory = args.source.load()?;
            let drain = DrainOptions {
                delete_emptydir_data: args.delete_emptydir_data,
                delete_unmanaged: args.delete_unmanaged_pods,
                allow_local_storage_loss: args.allow_local_storage_loss,
                ..DrainOptions::default()
            };
            (compute_plan(&inventory, to, drain)?, Some(inventory))
        }
    };
    let templates = match &args.template_dir {
        Some(dir) => Templates::with_dir(dir).map_err(|e| usage(e.to_string()))?,
        None => Templates::embedded(),
    };
    let fixed = match args.distro {
        DistroArg::Auto => None,
        DistroArg::Apt => Some(Distro::Apt),
        DistroArg::Dnf => Some(Distro::Dnf),
        DistroArg::Zypper => Some(Distro::Zypper),
    };
    let package_index = if args.package_index.is_empty() {
        PackageIndex::default()
    } else {
        let resolved = crate::exit::block_on(package_repo::resolve(
            &args.package_index,
            &package_repo::minors_of(&plan),
            &package_repo::formats_for(fixed),
        ))?;
        for note in &resolved.notes {
            eprintln!("note: {note}");
        }
        resolved.index
    };
    let opts = RunbookOptions {
        distro: fixed.map_or(DistroChoice::Auto, DistroChoice::Fixed),
        drain_timeout: crate::duration::go(args.drain_timeout),
        backup_dir: args.backup_dir.trim_end_matches('/').to_string(),
        probe_image: args.probe_image.clone(),
        package_index,
        ..RunbookOptions::default()
    };
    let text = match (args.format, args.rollback) {
        (Format::Html, true) => {
            return Err(usage(
                "the rollback runbook is Markdown: drop --format html, or drop --rollback for the report",
            ));
        }
        (Format::Html, false) => html_report(&plan, inventory.as_ref(), &templates),
        (Format::Markdown, true) => rollback_markdown(&plan, inventory.as_ref(), &opts, &templates),
        (Format::Markdown, false) => upgrade_markdown(&plan, inventory.as_ref(), &opts, &templates),
    }
    .map_err(|e| usage(e.to_string()))?;
    match &args.output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

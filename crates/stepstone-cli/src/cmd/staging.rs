//! `stepstone staging`: the staging cluster to build from the production inventory, and the
//! test matrix to run on it before the production upgrade.

use std::path::PathBuf;
use std::process::ExitCode;

use stepstone_core::inventory::Inventory;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::KubeVersion;
use stepstone_runbook::staging::summary_line;
use stepstone_runbook::{Templates, staging_design, staging_markdown};

use crate::exit::usage;
use crate::output::{OutputFormat, Table, emit};
use crate::source::SourceArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StagingFormat {
    /// Aligned tables for people.
    Table,
    /// One JSON document (`kind: StagingDesign`).
    Json,
    /// The same document as YAML.
    Yaml,
    /// A Markdown document with every test's commands (rendered from staging.md).
    Markdown,
}

/// Design the staging cluster that mirrors production: 3 control-plane nodes of the production
/// control-plane hardware, one worker per hardware generation (named by generation, kernel and
/// runtime), the same CNI/CSI/ingress and other add-on versions (from the workloads' images),
/// and the test matrix with a command for each test.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone staging --snapshot cluster.json
  stepstone staging --snapshot cluster.json --to v1.35.3 -o markdown > staging.md
  stepstone staging --example three-generations -o json")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    /// The version the staging cluster rehearses (default: the latest patch of the next minor).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StagingFormat::Table)]
    pub output: StagingFormat,

    /// Directory whose staging.md replaces the embedded template.
    #[arg(long, value_name = "DIR")]
    pub template_dir: Option<PathBuf>,
}

/// The target: `--to` as `plan` reads it, else the next minor's latest patch.
pub fn resolve_target(to: Option<&str>, inventory: &Inventory) -> anyhow::Result<KubeVersion> {
    if let Some(to) = to {
        return crate::target::resolve("to", to, inventory);
    }
    let current = inventory.control_plane_version().ok_or_else(|| {
        usage("the control-plane version is unknown (no apiserver in the inventory): pass --to VERSION")
    })?;
    let next = current.minor().next();
    ReleaseData::embedded()
        .latest_patch(next)
        .cloned()
        .ok_or_else(|| usage(format!("no release data for {next}: pass an exact version such as --to v{next}.0")))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inventory = args.source.load()?;
    let target = resolve_target(args.to.as_deref(), &inventory)?;
    let design = staging_design(&inventory, &target);
    let templates = match &args.template_dir {
        Some(dir) => Templates::with_dir(dir).map_err(|e| usage(e.to_string()))?,
        None => Templates::embedded(),
    };
    let format = match args.output {
        StagingFormat::Table => OutputFormat::Table,
        StagingFormat::Json => OutputFormat::Json,
        StagingFormat::Yaml => OutputFormat::Yaml,
        StagingFormat::Markdown => {
            print!("{}", staging_markdown(&design, &templates).map_err(|e| usage(e.to_string()))?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    emit(format, "StagingDesign", &design, || {
        let mut out = summary_line(&design);
        out.push_str("\n\nCONTROL PLANE\n");
        let cp = &design.control_plane;
        let mut t = Table::new(["NODES", "GENERATION", "LIKE", "OS", "KERNEL", "RUNTIME", "CGROUP"]);
        t.row([
            cp.names.join(","),
            cp.node.generation.clone(),
            cp.node.like.clone(),
            cp.node.os_image.clone(),
            cp.node.kernel.clone(),
            cp.node.runtime.clone(),
            cp.node.cgroup.clone(),
        ]);
        out.push_str(&t.render());
        out.push_str("\nWORKERS (one per hardware generation)\n");
        let mut t = Table::new(["NAME", "GENERATION", "STANDS-FOR", "LIKE", "OS", "KERNEL", "RUNTIME", "CGROUP"]);
        for w in &design.workers {
            t.row([
                w.name.clone(),
                w.generation.clone(),
                w.production_nodes.to_string(),
                w.like.clone(),
                w.os_image.clone(),
                w.kernel.clone(),
                w.runtime.clone(),
                w.cgroup.clone(),
            ]);
        }
        out.push_str(&t.render());
        out.push_str("\nADD-ONS (install at these versions)\n");
        let mut t = Table::new(["ROLE", "WORKLOAD", "IMAGE"]);
        for a in &design.addons {
            t.row([a.role.clone(), format!("{} {}/{}", a.kind, a.namespace, a.name), a.image.clone()]);
        }
        out.push_str(&if t.is_empty() { "none found in the inventory\n".to_string() } else { t.render() });
        out.push_str("\nTEST MATRIX (commands: -o markdown)\n");
        let mut t = Table::new(["ID", "TEST", "PASSES WHEN"]);
        for test in &design.tests {
            t.row([test.id.clone(), test.name.clone(), test.pass_when.clone()]);
        }
        out.push_str(&t.render());
        for n in &design.notes {
            out.push_str(&format!("\nnote: {n}"));
        }
        if !design.notes.is_empty() {
            out.push('\n');
        }
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

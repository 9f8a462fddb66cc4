//! stepstone-runbook: turns a Plan (and, when given, the Inventory it was made from) into the
//! documents people work from: the upgrade runbook, the rollback runbook, the staging design and
//! a self-contained HTML report.
//!
//! Every document is rendered by minijinja from a serialisable view model built here, with the
//! templates in `templates/` embedded in the binary and overridable file by file
//! (`--template-dir`). Commands that depend on the distribution come from `data/packages.toml`.

pub mod cgroup_gate;
pub mod package_index;
pub mod packages;
pub mod report;
pub mod shell;
pub mod staging;
pub mod templates;
pub mod time;
pub mod upgrade;

pub use package_index::{IndexError, IndexFormat, PackageIndex};
pub use packages::{Distro, DistroChoice, PackageCommands};
pub use report::{ReportView, html_report};
pub use staging::{StagingDesign, staging_design, staging_markdown};
pub use templates::Templates;
pub use upgrade::{RunbookOptions, rollback_markdown, upgrade_markdown};

/// Why a document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error(transparent)]
    Package(#[from] packages::PackageError),
    #[error(
        "--distro auto reads each node's osImage from the inventory, but node {node} is not in it: \
         pass the cluster (--snapshot FILE or --kubeconfig) with --plan, or choose --distro apt|dnf|zypper"
    )]
    NodeNotInInventory { node: String },
    #[error("template {name}: {detail}")]
    Template { name: String, detail: String },
    #[error("reading the template directory {path}: {source}: pass a directory of template files (see --help)")]
    TemplateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a template stepstone knows ({known}): a file there must replace an embedded template \
         or be included by one"
    )]
    UnusedTemplate { path: String, known: String },
    #[error(
        "{what} {value:?} contains a control character (a newline or an escape): no Kubernetes name or \
         address does; check the plan and the snapshot it came from, or fix the option"
    )]
    ControlCharacter { what: String, value: String },
    #[error("plan field schedule.timeZone is '{name}', not an IANA time zone such as Europe/Berlin")]
    TimeZone { name: String },
}

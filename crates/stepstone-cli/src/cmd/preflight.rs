//! `stepstone preflight`: check every node over SSH before an upgrade (cgroup, disk, runtime,
//! swap, kernel, packages and repositories, certificates, time sync), grouped by generation.
//! Also home of the SSH flags every node-touching command shares.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use stepstone_core::inventory::{Inventory, Node};
use stepstone_core::releases::ReleaseData;
use stepstone_core::selector::Selector;
use stepstone_host::node::NodeOps;
use stepstone_host::preflight::{self, CheckContext, PreflightNode, PreflightReport, Thresholds};
use stepstone_host::print::PrintNodeOps;
use stepstone_host::ssh::{HostKeyPolicy, SshNodeOps, SshOptions, SudoMode};

use crate::exit::{self, usage};
use crate::output::{OutputArgs, Table, emit, findings_table};
use crate::source::SourceArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Run commands through the system `ssh` client.
    Ssh,
    /// Only print the `ssh` commands that would run.
    Print,
}

/// How to reach nodes. Your `~/.ssh/config`, agent, ProxyJump and known_hosts apply.
#[derive(Debug, Clone, clap::Args)]
pub struct SshArgs {
    /// `ssh` runs the commands; `print` only shows them.
    #[arg(long, value_enum, default_value_t = Backend::Ssh)]
    pub backend: Backend,
    /// An ssh config file to use instead of ~/.ssh/config (ssh -F).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Remote user (ssh -l). Commands run through `sudo -n` when it is not root.
    #[arg(long, value_name = "USER")]
    pub ssh_user: Option<String>,
    /// Remote port (ssh -p).
    #[arg(long, value_name = "PORT")]
    pub ssh_port: Option<u16>,
    /// Private key file (ssh -i).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// known_hosts file to check host keys against (default: ssh's own).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// DANGER: trust host keys seen for the first time (StrictHostKeyChecking=accept-new).
    /// Changed keys are still refused.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// How long to wait for a TCP connection and SSH handshake (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::duration::seconds)]
    pub connect_timeout: Duration,
    /// How long a remote command may run (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = crate::duration::seconds)]
    pub timeout: Duration,
    /// Nodes contacted at once.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub concurrency: usize,
    /// Do not wrap commands in `sudo -n` even when the remote user is not root.
    #[arg(long)]
    pub no_sudo: bool,
    /// Directory for the per-node logs of every command and its output.
    #[arg(long, value_name = "DIR", default_value = "stepstone-logs")]
    pub log_dir: PathBuf,
}

/// The backend chosen on the command line.
pub enum Ops {
    Ssh(SshNodeOps),
    Print(PrintNodeOps),
}

impl Ops {
    pub fn as_dyn(&self) -> &dyn NodeOps {
        match self {
            Ops::Ssh(o) => o,
            Ops::Print(o) => o,
        }
    }

    /// Print what the print backend recorded; true when this was the print backend.
    pub fn print_recorded(&self) -> bool {
        match self {
            Ops::Ssh(_) => false,
            Ops::Print(p) => {
                for line in p.take_lines() {
                    println!("{line}\n");
                }
                true
            }
        }
    }
}

impl SshArgs {
    pub fn options(&self) -> SshOptions {
        SshOptions {
            config_file: self.ssh_config.clone(),
            user: self.ssh_user.clone(),
            port: self.ssh_port,
            identity: self.identity.clone(),
            known_hosts: self.known_hosts.clone(),
            host_keys: if self.accept_new_host_keys { HostKeyPolicy::AcceptNew } else { HostKeyPolicy::Strict },
            connect_timeout: self.connect_timeout(),
            concurrency: self.concurrency.max(1),
            sudo: if self.no_sudo { SudoMode::Never } else { SudoMode::Auto },
            log_dir: Some(self.log_dir.clone()),
            ..SshOptions::default()
        }
    }

    pub fn ops(&self) -> Ops {
        if self.accept_new_host_keys {
            eprintln!(
                "warning: --accept-new-host-keys: host keys seen for the first time are trusted without checking"
            );
        }
        match self.backend {
            Backend::Ssh => Ops::Ssh(SshNodeOps::new(self.options())),
            Backend::Print => Ops::Print(PrintNodeOps::new(SshOptions { log_dir: None, ..self.options() })),
        }
    }

    /// At least a second: a zero timeout would fail every command before it starts.
    pub fn timeout(&self) -> Duration {
        self.timeout.max(Duration::from_secs(1))
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout.max(Duration::from_secs(1))
    }
}

/// Pick nodes by `--nodes`: a label selector (`tier=gpu`, `gen in (a,b)`) or a comma list of names.
pub fn select_nodes<'a>(inventory: &'a Inventory, spec: Option<&str>) -> anyhow::Result<Vec<&'a Node>> {
    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(inventory.nodes.iter().collect());
    };
    let looks_like_selector = spec.contains(['=', '!', '(']) || spec.contains(" in ") || spec.contains(" notin ");
    let picked: Vec<&Node> = if looks_like_selector {
        let sel = Selector::parse(spec).map_err(|e| usage(format!("--nodes '{spec}': {e}")))?;
        inventory.nodes.iter().filter(|n| sel.matches(&n.labels)).collect()
    } else {
        let mut out = Vec::new();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let node = inventory.node(name).ok_or_else(|| {
                usage(format!(
                    "--nodes: no node named '{name}' in {}; run `stepstone inventory` to list them",
                    inventory.source
                ))
            })?;
            out.push(node);
        }
        out
    };
    if picked.is_empty() {
        return Err(usage(format!("--nodes '{spec}' matches no node in {}", inventory.source)));
    }
    Ok(picked)
}

/// Check nodes over SSH before upgrading them to --to.
///
/// One SSH session per node runs a read-only script; the results are judged locally and shown
/// per hardware generation (generation -> check -> pass/warn/fail), then each problem in detail.
/// Per-node logs of every command and its output go to --log-dir.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone preflight --snapshot cluster.json --to v1.35.3
  stepstone preflight --snapshot cluster.json --to v1.35 --nodes 'stepstone.io/hardware-generation=gen-b'
  stepstone preflight --snapshot cluster.json --to v1.35 --nodes cp-1,w-7 --ssh-user ops --ssh-config ~/.ssh/prod
  stepstone preflight --snapshot cluster.json --to v1.35 --backend print   # show the commands only")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The Kubernetes version the nodes will run (v1.35.3 or 1.35).
    #[arg(long, value_name = "VERSION")]
    pub to: String,
    /// Which nodes: a label selector or a comma-separated list of node names (default: all).
    #[arg(long, value_name = "SELECTOR|NAMES")]
    pub nodes: Option<String>,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inventory = args.source.load()?;
    let target = crate::target::resolve("to", &args.to, &inventory)?;
    let nodes: Vec<PreflightNode> =
        select_nodes(&inventory, args.nodes.as_deref())?.into_iter().map(PreflightNode::from_node).collect();
    let ops = args.ssh.ops();
    let thresholds = Thresholds::embedded();
    let timeout = args.ssh.timeout();
    let collected = exit::block_on(preflight::collect(ops.as_dyn(), &nodes, thresholds, timeout));
    if ops.print_recorded() {
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = CheckContext { target, releases: ReleaseData::embedded(), thresholds, now: jiff::Timestamp::now() };
    let report = preflight::evaluate(&nodes, &collected, &ctx);
    emit(args.output.output, "PreflightReport", &report, || render(&report))?;
    if args.output.output == crate::output::OutputFormat::Table {
        eprintln!("per-node command logs: {}", args.ssh.log_dir.display());
    }
    Ok(exit::for_findings(&report.findings))
}

fn render(report: &PreflightReport) -> String {
    let mut out = format!("Pre-flight for v{} by hardware generation\n\n", report.target.bare());
    let mut t = Table::new(["GENERATION", "NODES", "CHECK", "PASS", "WARN", "FAIL"]);
    for g in &report.generations {
        let mut first = true;
        let mut checks: Vec<(&String, &preflight::Counts)> = g.checks.iter().collect();
        let order = |c: &str| preflight::rules::CHECKS.iter().position(|x| *x == c).unwrap_or(0);
        checks.sort_by_key(|(c, _)| (order(c), c.to_string()));
        for (check, c) in checks {
            let (gen_cell, nodes_cell) = if first {
                (g.generation.clone(), format!("{} ({} failing)", g.nodes.len(), g.failing_nodes))
            } else {
                (String::new(), String::new())
            };
            first = false;
            let mark = |n: usize| if n == 0 { "-".to_string() } else { n.to_string() };
            t.row([gen_cell, nodes_cell, check.clone(), mark(c.pass), mark(c.warn), mark(c.fail)]);
        }
    }
    out.push_str(&t.render());
    out.push('\n');
    out.push_str(&findings_table(&report.findings));
    out
}

//! The `stepstone` binary: argument parsing and dispatch only; the work lives in the library
//! crates and in one `cmd/` module per command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Collections and the lab build and drop millions of small JSON nodes; the system allocator
/// spends most of that time consolidating free lists, this one does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;
#[cfg(test)]
mod document_commands;
mod duration;
mod exit;
mod output;
mod package_repo;
mod source;
mod target;

/// Plan, rehearse, execute and verify Kubernetes upgrades of bare-metal kubeadm clusters.
///
/// Every command reads the cluster from a snapshot (`--snapshot cluster.json`, as written by
/// `kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json` or `stepstone snapshot`) or from a
/// live cluster (`--kubeconfig`). With neither, the bundled three-generation example fleet is used.
#[derive(Debug, Parser)]
#[command(name = "stepstone", version, propagate_version = true, max_term_width = 110)]
#[command(after_help = "Examples:
  stepstone demo                                  # the whole upgrade on an embedded lab
  stepstone plan --to v1.35                       # plan the bundled example fleet
  stepstone inventory --snapshot cluster.json
  stepstone skew --snapshot cluster.json --target v1.35.3 -o json
  stepstone path --snapshot cluster.json --to v1.35
  stepstone lab up --fleet examples/three-generations.json --kubeconfig ./lab.kubeconfig

Exit codes: 0 ok, 1 findings of severity error (or an operation stopped short), 2 bad input or usage,
3 the cluster's API server kept failing a read (5xx, 429 or dropped connections through every retry).")]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Inventory(cmd::inventory::Args),
    Snapshot(cmd::snapshot::Args),
    Versions(cmd::versions::Args),
    Skew(cmd::skew::Args),
    Path(cmd::path::Args),
    Plan(cmd::plan::Args),
    Rollout(cmd::rollout::Args),
    Demo(cmd::demo::Args),
    Blockers(cmd::blockers::Args),
    Lab(cmd::lab::Args),
    Drain(cmd::drain::Args),
    Uncordon(cmd::drain::UncordonArgs),
    Preflight(cmd::preflight::Args),
    Drift(cmd::drift::Args),
    Etcd(cmd::etcd::Args),
    Runbook(cmd::runbook::Args),
    Staging(cmd::staging::Args),
    Apis(cmd::apis::Args),
    Addons(cmd::addons::Args),
    Completions(cmd::completions::Args),
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // kube's client logs a refused connection as an ERROR line of its own; the command's
        // error already says it in one line, naming the kubeconfig and the fix (-v shows both).
        0 => "warn,kube_client=off",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal: logs piped to a file or a CI log stay plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour)
        .init();
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Inventory(a) => cmd::inventory::run(a),
        Command::Snapshot(a) => cmd::snapshot::run(a),
        Command::Versions(a) => cmd::versions::run(a),
        Command::Skew(a) => cmd::skew::run(a),
        Command::Path(a) => cmd::path::run(a),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Rollout(a) => cmd::rollout::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Blockers(a) => cmd::blockers::run(a),
        Command::Lab(a) => cmd::lab::run(a),
        Command::Drain(a) => cmd::drain::run(a),
        Command::Uncordon(a) => cmd::drain::run_uncordon(a),
        Command::Preflight(a) => cmd::preflight::run(a),
        Command::Drift(a) => cmd::drift::run(a),
        Command::Etcd(a) => cmd::etcd::run(a),
        Command::Runbook(a) => cmd::runbook::run(a),
        Command::Staging(a) => cmd::staging::run(a),
        Command::Apis(a) => cmd::apis::run(a),
        Command::Addons(a) => cmd::addons::run(a),
        Command::Completions(a) => cmd::completions::run(a, <Cli as clap::CommandFactory>::command()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::for_error(&e))
        }
    }
}

//! `stepstone lab faults`: show or change the faults a running lab injects.

use std::process::ExitCode;

use stepstone_lab::{FaultConfig, FaultsChange};

use crate::exit::usage;
use crate::output::{Table, emit};

use super::LabCall;

/// Show or change the faults a running lab injects.
///
/// Without flags, prints the current faults. Flags change only what they name (start from
/// nothing with --clear). Error and throttle rates hit Kubernetes API requests, not discovery
/// and not these node operations.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab faults
  stepstone lab faults --error-rate 0.05 --throttle-rate 0.1 --latency-ms 20
  stepstone lab faults --drop-watch-rate 0.3
  stepstone lab faults --never-return r650-03 --crash-loop node:r650-04
  stepstone lab faults --stuck-creating node:r650-05
  stepstone lab faults --clear")]
pub struct FaultsArgs {
    /// Share of API requests answered 500 (0.0 to 1.0).
    #[arg(long, value_name = "RATE")]
    pub error_rate: Option<f64>,

    /// Share of API requests answered 429 throttling (0.0 to 1.0).
    #[arg(long, value_name = "RATE")]
    pub throttle_rate: Option<f64>,

    /// Milliseconds added to every API request.
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<u64>,

    /// Share of watches cut mid-stream within a second of starting (0.0 to 1.0).
    #[arg(long, value_name = "RATE")]
    pub drop_watch_rate: Option<f64>,

    /// A node whose kubelet never returns from its next restart. Repeatable.
    #[arg(long, value_name = "NODE")]
    pub never_return: Vec<String>,

    /// A pod (NAMESPACE/NAME), or every pod of a node (node:NAME), that crash-loops after its
    /// node's next kubelet restart. Repeatable.
    #[arg(long, value_name = "POD|node:NODE")]
    pub crash_loop: Vec<String>,

    /// A pod (NAMESPACE/NAME), or every pod of a node (node:NAME), whose volumes never mount:
    /// it stays in ContainerCreating when it next starts. Repeatable.
    #[arg(long, value_name = "POD|node:NODE")]
    pub stuck_creating: Vec<String>,

    /// Remove every fault first (then apply the other flags).
    #[arg(long)]
    pub clear: bool,

    #[command(flatten)]
    pub lab: LabCall,
}

/// The most latency a fault may add to a request: beyond a minute every client has timed out.
const MAX_LATENCY_MS: u64 = 60_000;

/// `--latency-ms`, of `lab faults` and `lab up`.
pub fn check_latency(ms: u64) -> anyhow::Result<()> {
    if ms > MAX_LATENCY_MS {
        return Err(usage(format!("--latency-ms {ms} must be at most {MAX_LATENCY_MS} (a minute)")));
    }
    Ok(())
}

pub fn faults(a: FaultsArgs) -> anyhow::Result<ExitCode> {
    for (flag, rate, of) in [
        ("--error-rate", a.error_rate, "API requests"),
        ("--throttle-rate", a.throttle_rate, "API requests"),
        ("--drop-watch-rate", a.drop_watch_rate, "watches"),
    ] {
        if let Some(r) = rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err(usage(format!("{flag} {r} must be between 0.0 and 1.0 (0.05 = 5% of {of})")));
        }
    }
    if let Some(ms) = a.latency_ms {
        check_latency(ms)?;
    }
    let api = a.lab.api()?;
    let change = FaultsChange {
        clear: a.clear,
        error_rate: a.error_rate,
        throttle_rate: a.throttle_rate,
        latency_ms: a.latency_ms,
        drop_watch_rate: a.drop_watch_rate,
        add_never_return: a.never_return.clone(),
        add_crash_loop: a.crash_loop.clone(),
        add_stuck_creating: a.stuck_creating.clone(),
    };
    let shown: FaultConfig =
        if change.is_empty() { api.run(|c| c.faults())? } else { api.run(|c| c.change_faults(&change))? };
    emit(a.lab.output.output, "LabFaults", &shown, || {
        let list = |s: &std::collections::BTreeSet<String>| {
            if s.is_empty() { "<none>".to_string() } else { s.iter().cloned().collect::<Vec<_>>().join(", ") }
        };
        let mut t = Table::new(["FAULT", "VALUE"]);
        t.row(["error-rate".to_string(), shown.error_rate.to_string()]);
        t.row(["throttle-rate".to_string(), shown.throttle_rate.to_string()]);
        t.row(["latency-ms".to_string(), shown.latency_ms.to_string()]);
        t.row(["drop-watch-rate".to_string(), shown.drop_watch_rate.to_string()]);
        t.row(["never-return".to_string(), list(&shown.never_return)]);
        t.row(["crash-loop".to_string(), list(&shown.crash_loop)]);
        t.row(["stuck-creating".to_string(), list(&shown.stuck_creating)]);
        t.render()
    })?;
    Ok(ExitCode::SUCCESS)
}

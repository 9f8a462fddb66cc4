//! `stepstone plan`: the whole upgrade as data: hops, control-plane steps, canaries, capacity-
//! and budget-safe batches per hardware generation, blockers, and a calendar.

use std::process::ExitCode;

use stepstone_core::capacity::Headroom;
use stepstone_core::drain::DrainOptions;
use stepstone_core::plan::limits::BatchLimits;
use stepstone_core::plan::schedule::{self, ScheduleOptions};
use stepstone_core::plan::window::MaintenanceWindow;
use stepstone_core::plan::{self, Durations, PlanRequest};
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::VersionRequest;

use crate::cmd::path::WorkersArg;
use crate::exit::usage;
use crate::output::{OutputArgs, emit};
use crate::source::SourceArgs;
use crate::target::TargetArgs;

/// Plan the upgrade: control plane first, then one canary per hardware generation (oldest
/// first), then every generation in batches that the capacity and disruption-budget simulator
/// proves safe, with a calendar.
///
/// Every batch is as large as --max-unavailable (or the fleet's default) allows unless the
/// simulator shows that one more node would leave a pod with nowhere to go or push a node above
/// the headroom; each wave says what decided its size (operator, generation share, capacity,
/// budget). Blockers (budgets at 0, unmanaged or node-local pods, pods with nowhere
/// to go) are listed with their fix, and the nodes they hold up still appear in the plan.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone plan --to v1.35
  stepstone plan --snapshot cluster.json --to v1.35.3 --max-unavailable 3 --headroom 85%
  stepstone plan --snapshot cluster.json --to v1.35 --window 'Tue,Wed 09:00-13:00 Europe/Berlin' \\
      --start 2026-12-01T09:00 -o json > plan.json

Exit codes: 0 plan made, 1 plan made but findings of severity error stop some drains or hops,
2 bad input (unknown target, bad window, unknown generation).")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The policy flags of `plan`, shared by every command that makes a plan (`plan`, `rollout`).
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Most workers drained at the same time: one number, or per hardware generation
    /// (dell-r640=2,default=3). Default: from the fleet, per generation 1/8 of the oldest
    /// generation's workers and 1/5 of each later one's, capped by what capacity allows; the
    /// simulator may still stop a batch earlier (capacity, or budget waits beyond the
    /// generation's fair share that outlast one more batch).
    #[arg(long, value_name = "N|GEN=N,...", value_parser = parse_batch_limits)]
    pub max_unavailable: Option<BatchLimits>,

    /// No node may be above this share of allocatable CPU or memory requested after a drain.
    #[arg(long, value_name = "PERCENT", default_value = "85%", value_parser = parse_headroom)]
    pub headroom: Headroom,

    /// Watch time after each canary before the next wave (e.g. 30m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::duration::minutes)]
    pub canary_soak: u32,

    /// Wait between batches, for evicted pods to settle (e.g. 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::duration::minutes)]
    pub batch_wait: u32,

    /// Maintenance window: days, hours and IANA time zone, e.g. 'Tue,Wed 09:00-13:00 Europe/Berlin'.
    /// Repeatable. Work starts only inside a window and never runs past its end.
    #[arg(long, value_name = "WINDOW", value_parser = parse_window)]
    pub window: Vec<MaintenanceWindow>,

    /// When the plan starts, local to the window's time zone (UTC without a window),
    /// e.g. 2026-12-01T09:00. Default: now.
    #[arg(long, value_name = "DATETIME", value_parser = parse_start)]
    pub start: Option<jiff::civil::DateTime>,

    /// How workers follow the control plane across hops.
    #[arg(long, value_enum, default_value_t = WorkersArg::Lockstep)]
    pub workers: WorkersArg,

    /// Hardware generations oldest first, e.g. dell-r640,dell-r740,hp-dl380 (default: inferred
    /// from the earliest node creation time per generation, then the oldest kernel).
    #[arg(long, value_name = "GEN,GEN,...", value_delimiter = ',')]
    pub generation_order: Vec<String>,

    /// Plan as if drains evict pods with emptyDir volumes (their data is lost), as
    /// `stepstone drain --delete-emptydir-data` does. Without it such pods block their node.
    #[arg(long)]
    pub delete_emptydir_data: bool,

    /// Plan as if drains delete pods no controller recreates (they are gone for good).
    #[arg(long)]
    pub delete_unmanaged_pods: bool,

    /// Plan as if drains evict pods bound to node-local storage (their data stays behind).
    #[arg(long)]
    pub allow_local_storage_loss: bool,

    /// Do not warn about work on Saturdays and Sundays.
    #[arg(long)]
    pub allow_weekend: bool,

    /// Do not warn about work on Friday afternoons.
    #[arg(long)]
    pub allow_friday: bool,

    /// Assumed time to drain a worker (evictions without budget waits).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::duration::minutes)]
    pub drain_time: u32,

    /// Assumed time to install packages and run `kubeadm upgrade node` on a worker.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::duration::minutes)]
    pub upgrade_time: u32,

    /// Assumed time to restart the kubelet.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::duration::minutes)]
    pub restart_time: u32,

    /// Assumed time until the node is Ready and uncordoned.
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = crate::duration::minutes)]
    pub ready_time: u32,

    /// Assumed time for one control-plane node (drain, kubeadm upgrade, kubelet, checks).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::duration::minutes)]
    pub control_plane_time: u32,

    /// Assumed time from an eviction to its replacement pod being Ready.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::duration::minutes)]
    pub pod_start_time: u32,
}

impl PolicyArgs {
    /// The plan request these flags ask for, to `target`.
    pub fn request(&self, target: VersionRequest) -> anyhow::Result<PlanRequest> {
        let start = match self.start {
            Some(local) => schedule::resolve_start(local, &self.window).map_err(|e| usage(e.to_string()))?,
            // The core never reads the clock; the command supplies "now", to the minute.
            None => jiff::Timestamp::now().round(jiff::Unit::Minute).map_err(|e| usage(e.to_string()))?,
        };
        let mut schedule = ScheduleOptions::new(start);
        schedule.windows = self.window.clone();
        schedule.allow_weekend = self.allow_weekend;
        schedule.allow_friday = self.allow_friday;
        Ok(PlanRequest {
            target,
            max_unavailable: self.max_unavailable.clone().unwrap_or_default(),
            headroom: self.headroom,
            canary_soak_minutes: self.canary_soak,
            batch_wait_minutes: self.batch_wait,
            strategy: self.workers.into(),
            generation_order: self.generation_order.clone(),
            durations: Durations {
                drain_minutes: self.drain_time,
                package_upgrade_minutes: self.upgrade_time,
                kubelet_restart_minutes: self.restart_time,
                ready_minutes: self.ready_time,
                control_plane_minutes: self.control_plane_time,
                pod_start_minutes: self.pod_start_time,
            },
            drain: self.drain_options(),
            schedule,
        })
    }

    /// The drain overrides the consent flags give.
    pub fn drain_options(&self) -> DrainOptions {
        DrainOptions {
            delete_emptydir_data: self.delete_emptydir_data,
            delete_unmanaged: self.delete_unmanaged_pods,
            allow_local_storage_loss: self.allow_local_storage_loss,
            ..DrainOptions::default()
        }
    }
}

fn parse_batch_limits(s: &str) -> Result<BatchLimits, String> {
    s.parse::<BatchLimits>().map_err(|e| e.to_string())
}

fn parse_headroom(s: &str) -> Result<Headroom, String> {
    Headroom::parse(s).map_err(|e| e.to_string())
}

fn parse_window(s: &str) -> Result<MaintenanceWindow, String> {
    MaintenanceWindow::parse(s).map_err(|e| e.to_string())
}

fn parse_start(s: &str) -> Result<jiff::civil::DateTime, String> {
    s.parse::<jiff::civil::DateTime>()
        .map_err(|_| format!("'{s}' is not a local date and time; use e.g. 2026-12-01T09:00"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inv = args.source.load()?;
    let request = args.policy.request(args.target.to.clone())?;
    let plan = plan::make_plan(&inv, &request, ReleaseData::embedded()).map_err(|e| usage(e.to_string()))?;
    emit(args.output.output, "Plan", &plan, || plan::table::render(&plan))?;
    // Path findings count too: a cgroup v1 node on the hop to 1.35 stops that hop like a blocker.
    let all: Vec<_> = plan.blockers.iter().chain(&plan.findings).cloned().collect();
    // The process ends right after this, as after `inventory`: freeing the inventory and the
    // plan object by object would only delay the exit; the kernel takes the memory back at once.
    std::mem::forget(inv);
    std::mem::forget(plan);
    Ok(crate::exit::for_findings(&all))
}

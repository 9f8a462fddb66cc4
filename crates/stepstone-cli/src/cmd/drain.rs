//! `stepstone drain` and `stepstone uncordon`: flags, progress display (bars on a terminal,
//! log lines otherwise, JSON lines for scripts) and the final report. The drain itself lives in
//! `stepstone_kube::drain`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use stepstone_kube::drain::{DrainConfig, DrainEvent, DrainReport, EventSink, RetryPolicy, RuleOptions};

use crate::exit::{Failure, block_on, usage};

/// Cordon nodes and evict their pods without ever breaking a PodDisruptionBudget.
///
/// The nodes are cordoned, their pods classified by the same drain rules the planner uses, and
/// blockers (pods with local data, pods no controller recreates, ...) stop the drain before any
/// eviction, each with its fix. Evictions go through the Eviction API; a budget that refuses is
/// retried and named ("needs 2 healthy pods and has 2 currently") until the timeout. By default a
/// node counts as drained only once its evicted pods are gone and their controllers have their
/// Ready replicas back on other nodes. Several nodes are drained as one batch that shares one
/// view of every budget.
///
/// On timeout the nodes stay cordoned and a report names what is left, each blocking budget
/// with its numbers, and the command that unblocks it; the exit code is 1.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone drain worker-07
  stepstone drain worker-07 worker-08 --timeout 10m --delete-emptydir-data
  stepstone drain worker-07 --pod-selector 'app!=critical-singleton' --dry-run
  stepstone drain worker-07 -o json | jq -c 'select(.event == \"blocked\")'

Exit codes: 0 every node drained (or, with --dry-run, no blockers), 1 stopped short (blockers,
timeout, pods that cannot be evicted), 2 bad input.")]
pub struct Args {
    /// Nodes to drain, together, as one batch.
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Stop evicting after this long (e.g. 90s, 5m, 1h); the nodes stay cordoned.
    #[arg(long, default_value = "300s", value_parser = crate::duration::seconds, value_name = "DURATION")]
    pub timeout: Duration,

    /// Drain only the pods matching this label selector (e.g. 'app!=critical-singleton').
    #[arg(long, value_name = "SELECTOR")]
    pub pod_selector: Option<String>,

    /// Evict pods with emptyDir volumes: their data is lost.
    #[arg(long)]
    pub delete_emptydir_data: bool,

    /// Grace period given to each pod (default: the pod's own terminationGracePeriodSeconds).
    #[arg(long, value_parser = crate::duration::seconds, value_name = "DURATION")]
    pub grace_period: Option<Duration>,

    /// Show what would be evicted and what would block, without cordoning or evicting.
    #[arg(long)]
    pub dry_run: bool,

    /// Count a node as drained once its pods are gone and their replacements are Ready on other
    /// nodes (the default).
    #[arg(long, overrides_with = "no_wait_replacements")]
    pub wait_replacements: bool,

    /// Count a node as drained as soon as its evicted pods are gone.
    #[arg(long)]
    pub no_wait_replacements: bool,

    /// Evictions in flight at once across the batch.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub concurrency: usize,

    /// Interval between attempts while a PodDisruptionBudget refuses an eviction.
    #[arg(long, default_value = "5s", value_parser = crate::duration::seconds, value_name = "DURATION")]
    pub retry_interval: Duration,

    /// DANGER: evict pods that no controller recreates (kubectl's --force). They are gone for good.
    #[arg(long)]
    pub delete_unmanaged_pods: bool,

    /// DANGER: evict pods bound to this node's storage (hostPath, local volumes, node pinning);
    /// their data stays behind and their replacements may not start elsewhere.
    #[arg(long)]
    pub allow_local_storage_loss: bool,

    /// DANGER: delete pods instead of evicting them, ignoring every PodDisruptionBudget
    /// (kubectl's --disable-eviction). Expect outages of the workloads those budgets protect.
    #[arg(long)]
    pub disable_eviction_i_accept_outages: bool,

    /// Do not post Kubernetes Events on the nodes.
    #[arg(long)]
    pub no_events: bool,

    /// table: progress on stderr (bars on a terminal), the report on stdout. json: one JSON
    /// event per line on stdout, then the report as a `DrainReport` line.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = EventOutput::Table)]
    pub output: EventOutput,
}

/// How drain and uncordon print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventOutput {
    /// Progress for people, then the report.
    Table,
    /// One JSON object per line: each event (with `time` and `event`), then the report.
    Json,
}

/// The cluster to talk to: the flags of every command that acts on a live cluster (drain,
/// uncordon, rollout).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// The cluster's kubeconfig (default: KUBECONFIG, then ~/.kube/config; a lab's:
    /// ./lab.kubeconfig).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Make nodes schedulable again after a drain.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone uncordon worker-07
  stepstone uncordon worker-07 worker-08 -o json")]
pub struct UncordonArgs {
    /// Nodes to uncordon.
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Do not post Kubernetes Events on the nodes.
    #[arg(long)]
    pub no_events: bool,

    /// table: one line per node on stderr. json: one JSON event per line on stdout.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = EventOutput::Table)]
    pub output: EventOutput,
}

impl Args {
    fn config(&self) -> anyhow::Result<DrainConfig> {
        if self.concurrency == 0 {
            return Err(usage("--concurrency must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(usage("--timeout must be longer than 0s"));
        }
        if let Some(sel) = &self.pod_selector {
            stepstone_core::selector::Selector::parse(sel)
                .map_err(|e| usage(format!("--pod-selector '{sel}': {e}; write e.g. 'app!=critical-singleton'")))?;
        }
        let rules = RuleOptions {
            delete_emptydir_data: self.delete_emptydir_data,
            delete_unmanaged: self.delete_unmanaged_pods,
            allow_local_storage_loss: self.allow_local_storage_loss,
            ..RuleOptions::default()
        };
        Ok(DrainConfig {
            timeout: self.timeout,
            grace_period: self.grace_period.map(|d| d.as_secs() as i64),
            pod_selector: self.pod_selector.clone(),
            rules,
            bypass_budgets: self.disable_eviction_i_accept_outages,
            dry_run: self.dry_run,
            wait_replacements: !self.no_wait_replacements,
            concurrency: self.concurrency,
            retry: RetryPolicy { budget_interval: self.retry_interval, ..RetryPolicy::default() },
            node_events: !self.no_events,
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let json = args.output == EventOutput::Json;
    let mut warnings = Vec::new();
    if args.delete_unmanaged_pods {
        warnings.push("--delete-unmanaged-pods: pods that no controller recreates are evicted and gone for good");
    }
    if args.allow_local_storage_loss {
        warnings
            .push("--allow-local-storage-loss: pods bound to this node's storage are evicted; their data stays behind");
    }
    if args.disable_eviction_i_accept_outages {
        warnings.push(
            "--disable-eviction-i-accept-outages: pods are DELETED, PodDisruptionBudgets are NOT consulted; the workloads they protect may go down",
        );
    }
    let sink = Progress::new(json, args.nodes.len());
    for w in warnings {
        sink.emit(&DrainEvent::Warning { node: None, message: w.to_string() });
    }
    let report = block_on(async {
        let client = stepstone_kube::connect(args.cluster.kubeconfig.as_deref(), args.cluster.context.as_deref())
            .await
            .map_err(|e| usage(e.to_string()))?
            .unretried;
        stepstone_kube::drain::drain(&client, &args.nodes, &config, &sink)
            .await
            .with_context(|| format!("draining {}", args.nodes.join(", ")))
    })?;
    sink.finish();
    print_report(&report, json)?;
    if report.succeeded() { Ok(ExitCode::SUCCESS) } else { Err(Failure(failure_summary(&report)).into()) }
}

pub fn run_uncordon(args: UncordonArgs) -> anyhow::Result<ExitCode> {
    let json = args.output == EventOutput::Json;
    let sink = Progress::new(json, 0);
    block_on(async {
        let client = stepstone_kube::connect(args.cluster.kubeconfig.as_deref(), args.cluster.context.as_deref())
            .await
            .map_err(|e| usage(e.to_string()))?
            .unretried;
        stepstone_kube::drain::uncordon(&client, &args.nodes, !args.no_events, &sink)
            .await
            .with_context(|| format!("uncordoning {}", args.nodes.join(", ")))
    })?;
    Ok(ExitCode::SUCCESS)
}

fn failure_summary(report: &DrainReport) -> String {
    let not: Vec<String> = report
        .nodes
        .iter()
        .filter(|n| !matches!(n.outcome, stepstone_kube::drain::NodeOutcome::Drained))
        .map(|n| {
            format!(
                "{} ({})",
                n.node,
                serde_json::to_value(n.outcome).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            )
        })
        .collect();
    if report.dry_run {
        format!("the drain would stop on blockers: {}", not.join(", "))
    } else {
        format!("not drained: {}", not.join(", "))
    }
}

#[derive(Serialize)]
struct Stamped<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a DrainEvent,
}

fn print_report(report: &DrainReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut doc = serde_json::to_value(report)?;
        if let Some(o) = doc.as_object_mut() {
            let mut with_head = serde_json::Map::new();
            with_head.insert("apiVersion".into(), stepstone_core::API_VERSION.into());
            with_head.insert("kind".into(), "DrainReport".into());
            with_head.extend(std::mem::take(o));
            doc = serde_json::Value::Object(with_head);
        }
        writeln!(out, "{}", serde_json::to_string(&doc)?)?;
    } else {
        write!(out, "{}", report.render())?;
    }
    Ok(())
}

/// Where events go: JSON lines on stdout, bars on a terminal, or log lines on stderr.
struct Progress {
    mode: Mode,
}

enum Mode {
    Json,
    Lines,
    Bars { multi: MultiProgress, bars: Mutex<BTreeMap<String, ProgressBar>> },
}

impl Progress {
    fn new(json: bool, nodes: usize) -> Self {
        let mode = if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() && nodes > 0 {
            Mode::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::new(BTreeMap::new()),
            }
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    fn finish(&self) {
        if let Mode::Bars { bars, .. } = &self.mode {
            for bar in bars.lock().expect("not poisoned").values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

impl EventSink for Progress {
    fn emit(&self, event: &DrainEvent) {
        match &self.mode {
            Mode::Json => {
                let stamped = Stamped { time: jiff::Timestamp::now().to_string(), event };
                if let Ok(line) = serde_json::to_string(&stamped) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
            // Retries are told by the refusal that follows each one; the attempt line adds nothing.
            Mode::Lines if matches!(event, DrainEvent::Evicting { attempt, .. } if *attempt > 1) => {}
            Mode::Lines => eprintln!("{}", event.line()),
            Mode::Bars { multi, bars } => {
                let Some(node) = event.node() else {
                    let _ = multi.println(event.line());
                    return;
                };
                let mut bars = bars.lock().expect("not poisoned");
                let bar = bars.entry(node.to_string()).or_insert_with(|| {
                    // A spinner until the pods are counted, then a bar of pods gone.
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>12} {spinner} {wide_msg}").expect("valid template"),
                    );
                    bar.set_prefix(node.to_string());
                    bar.enable_steady_tick(Duration::from_millis(250));
                    bar
                });
                match event {
                    DrainEvent::Classified { evict, delete, terminating, .. } => {
                        bar.set_style(
                            ProgressStyle::with_template("{prefix:>12} [{bar:24}] {pos}/{len} pods  {wide_msg}")
                                .expect("valid template")
                                .progress_chars("=> "),
                        );
                        bar.set_length((evict.len() + delete.len() + terminating.len()) as u64);
                        bar.set_message(event.message());
                    }
                    DrainEvent::Gone { .. } => {
                        bar.inc(1);
                        bar.set_message(event.message());
                    }
                    DrainEvent::Drained { .. } => bar.finish_with_message(event.message()),
                    DrainEvent::Timeout { .. } | DrainEvent::Stopped { .. } => {
                        bar.abandon_with_message(event.message())
                    }
                    DrainEvent::Warning { .. } | DrainEvent::Failed { .. } => {
                        let _ = multi.println(event.line());
                        bar.set_message(event.message());
                    }
                    _ => bar.set_message(event.message()),
                }
            }
        }
    }
}

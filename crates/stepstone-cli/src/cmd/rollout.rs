//! `stepstone rollout`: execute the plan on a live cluster, step by step, through the rollout
//! engine (`stepstone_exec`), and `rollout status|pause|resume|abort` against the same cluster.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use stepstone_core::plan::{self, Plan};
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::VersionRequest;
use stepstone_exec::backend::{ManualBackend, NodeBackend, SshBackend};
use stepstone_exec::cluster::{CONTROL_KEY, ClusterApi, JOURNAL_KEY, KubeCluster};
use stepstone_exec::engine::{Engine, EngineConfig, Outcome};
use stepstone_exec::etcd_access::{StaticPod, remote_etcdctl};
use stepstone_exec::events::{Clock, Notifier, RolloutEvent, Sink, SystemClock, Webhook};
use stepstone_exec::journal::{Journal, JournalFile, Phase, RolloutState};
use stepstone_exec::lab::LabBackend;
use stepstone_exec::lease::Identity;
use stepstone_exec::observe::{ClusterState, Decision, decide};
use stepstone_exec::steps::sequence;
use stepstone_exec::triggers::TriggerOptions;
use stepstone_host::etcd::RemoteEtcdctl;
use stepstone_kube::Connection;
use stepstone_kube::drain::{DrainConfig, RetryPolicy, RuleOptions};

use crate::cmd::drain::ClusterArgs;
use crate::cmd::plan::PolicyArgs;
use crate::cmd::preflight::{Backend as SshBackendArg, SshArgs};
use crate::exit::usage;

/// Execute the upgrade: notify, etcd snapshot, control plane one node at a time with health
/// gates, one canary per hardware generation with its soak, batches with their waits, smoke
/// checks, version diff, report.
///
/// Every step reads the cluster first and is skipped when its result is already there, so a
/// crashed, paused or half-upgraded rollout continues from where the cluster really is. A Lease
/// in kube-system keeps a second rollout out; the journal is written to --journal and to the
/// ConfigMap kube-system/stepstone-rollout. Without --yes, prints the plan and what it would do
/// first, and changes nothing.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = "Examples:
  stepstone rollout --kubeconfig ./lab.kubeconfig --to v1.35 --node-ops lab            # preview
  stepstone rollout --kubeconfig ./lab.kubeconfig --to v1.35 --node-ops lab --yes
  stepstone rollout --kubeconfig admin.conf --plan plan.json --node-ops ssh --ssh-user ops --yes
  stepstone rollout --kubeconfig admin.conf --to v1.35 --node-ops manual --yes
  stepstone rollout status --kubeconfig admin.conf
  stepstone rollout pause --kubeconfig admin.conf      # stops at the next step boundary
  stepstone rollout resume --kubeconfig admin.conf

Exit codes: 0 complete (or previewed), 1 halted, paused or aborted (the reason is printed),
2 bad input (no plan, outside the window, another rollout holds the lock).")]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<RolloutCommand>,

    #[command(flatten)]
    pub start: Box<StartArgs>,
}

#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    Status(StatusArgs),
    /// Stop the rollout at the next step boundary; `rollout resume` continues it.
    Pause(RolloutTarget),
    Resume(Box<ResumeArgs>),
    /// Stop the rollout for good at the next step boundary; nothing more of it runs.
    Abort(RolloutTarget),
}

/// The cluster a rollout acts on, and where its journal is kept.
#[derive(Debug, Clone, clap::Args)]
pub struct RolloutTarget {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// The journal file; the cluster keeps a copy in ConfigMap kube-system/stepstone-rollout.
    #[arg(long, value_name = "FILE", default_value = "stepstone-rollout.json")]
    pub journal: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeOpsArg {
    /// The lab's node API (`stepstone lab up`).
    Lab,
    /// SSH to each node (system OpenSSH), commands from the runbook's package data.
    Ssh,
    /// Print each node's commands, wait until the node reports the new version.
    Manual,
}

impl NodeOpsArg {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "lab" => Some(NodeOpsArg::Lab),
            "ssh" => Some(NodeOpsArg::Ssh),
            "manual" => Some(NodeOpsArg::Manual),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            NodeOpsArg::Lab => "lab",
            NodeOpsArg::Ssh => "ssh",
            NodeOpsArg::Manual => "manual",
        }
    }
}

/// How a run behaves (shared by the start and `resume`).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Where etcd snapshots are written (0700; files 0600).
    #[arg(long, value_name = "DIR", default_value = "etcd-snapshots")]
    pub snapshot_dir: PathBuf,

    /// The snapshot must be younger than this before a control-plane step.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::duration::minutes)]
    pub snapshot_max_age: u32,

    /// --node-ops manual: the etcd snapshot taken by hand (`stepstone etcd backup`).
    #[arg(long, value_name = "FILE")]
    pub etcd_snapshot: Option<PathBuf>,

    /// --node-ops manual: how long to wait for a node to report the new version.
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = crate::duration::minutes)]
    pub manual_wait: u32,

    /// Give up a drain after this long (cluster time); the nodes stay cordoned, the rollout halts.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::duration::minutes)]
    pub drain_timeout: u32,

    /// Halt when more than this share of pods is newly in CrashLoopBackOff.
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0)]
    pub crash_loop_percent: f64,

    /// A command run after each hop (sh -c); a non-zero exit halts. Repeatable.
    #[arg(long, value_name = "COMMAND")]
    pub smoke: Vec<String>,

    /// Slack-compatible webhook for start, halt, each hop and completion.
    #[arg(long, value_name = "URL", env = "STEPSTONE_WEBHOOK", hide_env_values = true)]
    pub webhook: Option<String>,

    /// Seconds the rollout Lease lives without renewal.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lease_seconds: u64,

    /// The final report in Markdown; the HTML report goes beside it (same name, `.html`).
    #[arg(long, value_name = "FILE", default_value = "stepstone-rollout-report.md")]
    pub report: PathBuf,

    /// Package family instead of detecting it from each node's osImage (ssh, manual).
    #[arg(long, value_name = "apt|dnf|zypper")]
    pub distro: Option<String>,

    /// ssh, manual: pin the exact builds the Kubernetes repository's own index lists, as
    /// `stepstone runbook --package-index` does (a file, or an http(s) URL of one index or of a
    /// repository root such as https://pkgs.k8s.io/core:/stable:). Unreachable: `'1.x.y-*'`.
    #[arg(long, value_name = "FILE|URL")]
    pub package_index: Vec<String>,

    /// `json`: one JSON event per line instead of text.
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "text")]
    pub output: String,

    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub target: RolloutTarget,

    /// Target version: a minor (v1.35) or an exact patch (v1.35.3).
    #[arg(long, value_name = "VERSION", value_parser = crate::target::parse_request)]
    pub to: Option<VersionRequest>,

    /// A saved plan (`stepstone plan -o json > plan.json`) instead of planning now.
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub plan: Option<PathBuf>,

    /// How node operations are done.
    #[arg(long, value_enum)]
    pub node_ops: Option<NodeOpsArg>,

    /// Really do it. Without it, print the plan and the first step and change nothing.
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Where the rollout stands: state, next step, held nodes, lock holder.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: RolloutTarget,

    /// `json`: the journal as JSON.
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "text")]
    pub output: String,
}

/// Continue a halted, paused or interrupted rollout (from this machine's journal or the
/// cluster's copy). Nodes held after a rollback are released for another try.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub target: RolloutTarget,

    /// Override the node operations the rollout was started with.
    #[arg(long, value_enum)]
    pub node_ops: Option<NodeOpsArg>,

    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(RolloutCommand::Status(a)) => crate::exit::block_on(status(a)),
        Some(RolloutCommand::Pause(a)) => crate::exit::block_on(control(a, "pause")),
        Some(RolloutCommand::Abort(a)) => crate::exit::block_on(control(a, "abort")),
        Some(RolloutCommand::Resume(a)) => crate::exit::block_on(resume(*a)),
        None => crate::exit::block_on(start(*args.start)),
    }
}

/// The cluster's connections.
pub async fn connect(c: &ClusterArgs) -> anyhow::Result<KubeCluster> {
    if c.kubeconfig.is_none() && std::env::var_os("KUBECONFIG").is_none() && !Path::new(&home_kubeconfig()).exists() {
        return Err(usage("a rollout acts on a live cluster: pass --kubeconfig FILE (for a lab: ./lab.kubeconfig)"));
    }
    let conn = stepstone_kube::connect(c.kubeconfig.as_deref(), c.context.as_deref()).await?;
    Ok(KubeCluster { drain_client: conn.unretried.clone(), conn })
}

fn home_kubeconfig() -> String {
    format!("{}/.kube/config", std::env::var("HOME").unwrap_or_default())
}

/// Print events as text or JSON lines.
pub fn sink(output: &str) -> Sink {
    if output == "json" {
        Arc::new(|e: &RolloutEvent| println!("{}", serde_json::to_string(e).unwrap_or_default()))
    } else {
        Arc::new(|e: &RolloutEvent| println!("{}", e.text()))
    }
}

fn check_output(output: &str) -> anyhow::Result<()> {
    match output {
        "text" | "json" => Ok(()),
        other => Err(usage(format!("-o {other}: rollout prints `text` (default) or `json` (one event per line)"))),
    }
}

/// The node backend for `ops`.
pub async fn backend(
    ops: NodeOpsArg,
    conn: &Connection,
    run: &RunArgs,
    plan: &stepstone_core::plan::Plan,
) -> anyhow::Result<(Arc<dyn NodeBackend>, f64)> {
    let distro = run
        .distro
        .as_deref()
        .map(|d| d.parse::<stepstone_runbook::packages::Distro>().map_err(|e| usage(format!("--distro: {e}"))))
        .transpose()?;
    let package_index = if run.package_index.is_empty() || ops == NodeOpsArg::Lab {
        stepstone_runbook::PackageIndex::default()
    } else {
        let resolved = crate::package_repo::resolve(
            &run.package_index,
            &crate::package_repo::minors_of(plan),
            &crate::package_repo::formats_for(distro),
        )
        .await?;
        for note in &resolved.notes {
            eprintln!("note: {note}");
        }
        resolved.index
    };
    Ok(match ops {
        NodeOpsArg::Lab => {
            let lab = LabBackend::new(&conn.server).await.map_err(|e| {
                usage(format!(
                    "--node-ops lab: {e}; the kubeconfig must point at a lab started with `stepstone lab up`"
                ))
            })?;
            let speed = lab.speed;
            (Arc::new(lab), speed)
        }
        NodeOpsArg::Ssh => {
            if run.ssh.backend == SshBackendArg::Print {
                return Err(usage(
                    "--backend print does not run anything: use --node-ops manual to print each node's commands",
                ));
            }
            let ops = stepstone_host::ssh::SshNodeOps::new(run.ssh.options());
            let backend = SshBackend {
                ops: Arc::new(ops),
                distro,
                command_timeout: run.ssh.timeout(),
                etcd_by_node: etcd_by_node(conn).await?,
                etcd: Default::default(),
                package_index,
            };
            (Arc::new(backend), cluster_speed(conn).await)
        }
        NodeOpsArg::Manual => {
            let backend = ManualBackend {
                distro,
                out: Arc::new(|s: &str| println!("{s}")),
                wait: Duration::from_secs(u64::from(run.manual_wait) * 60),
                snapshot: run.etcd_snapshot.clone(),
                package_index,
            };
            (Arc::new(backend), cluster_speed(conn).await)
        }
    })
}

/// How `etcdctl` on each control-plane node reaches etcd, from the cluster's control-plane
/// static pods in kube-system (stacked or external etcd, their flags).
async fn etcd_by_node(conn: &Connection) -> anyhow::Result<std::collections::BTreeMap<String, RemoteEtcdctl>> {
    use k8s_openapi::api::core::v1::Pod;
    use stepstone_kube::read::{ReadError, get_text};
    const WHAT: &str = "reading the control-plane static pods in kube-system (for the etcd snapshot)";
    let request = http::Request::get("/api/v1/namespaces/kube-system/pods").body(Vec::new())?;
    // The retrying read path, as every other read: a restarting API server is ridden out.
    let text = get_text(&conn.unretried, &conn.server, request, &conn.retry).await.map_err(|e| match e {
        ReadError::Server(e) => anyhow::Error::new(e).context(WHAT),
        ReadError::Refused(e) => anyhow::anyhow!("{WHAT}: {e}"),
    })?;
    let list: k8s_openapi::List<Pod> =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{WHAT}: the answer is not a pod list: {e}"))?;
    let statics: Vec<StaticPod> = list
        .items
        .iter()
        .filter_map(|p| {
            let component = p.metadata.labels.as_ref()?.get("component")?.clone();
            let spec = p.spec.as_ref()?;
            let container = spec.containers.first()?;
            let command = container.command.iter().flatten().chain(container.args.iter().flatten()).cloned().collect();
            Some(StaticPod { node: spec.node_name.clone()?, component, command })
        })
        .collect();
    let nodes: std::collections::BTreeSet<&str> = statics.iter().map(|p| p.node.as_str()).collect();
    Ok(nodes.into_iter().map(|n| (n.to_string(), remote_etcdctl(&statics, n))).collect())
}

/// How fast the cluster's durations pass: a lab's speed (whose nodes may still be worked on over
/// SSH or by hand), 1 for every other cluster, which has no `/lab/v1/clock`.
async fn cluster_speed(conn: &Connection) -> f64 {
    async fn lab_speed(conn: &Connection) -> Option<f64> {
        let request = http::Request::get("/lab/v1/clock").body(Vec::new()).ok()?;
        let info: serde_json::Value = conn.client.request(request).await.ok()?;
        info.get("speed")?.as_f64().filter(|s| s.is_finite() && *s > 0.0)
    }
    lab_speed(conn).await.unwrap_or(1.0)
}

/// Assemble the engine for a run.
pub async fn engine(
    mut cluster: KubeCluster,
    ops: NodeOpsArg,
    run: &RunArgs,
    rules: RuleOptions,
    journal: &Path,
    plan: &stepstone_core::plan::Plan,
) -> anyhow::Result<Engine> {
    check_output(&run.output)?;
    let (backend, speed) = backend(ops, &cluster.conn, run, plan).await?;
    // A lab answers in lab time, as it runs everything else: its `Retry-After: 1` is one lab
    // second, a budget's 5 s retry interval five lab seconds. Waiting them in real time made
    // a faulty run at speed 300 twice as long as a clean one. Speed 1 (any real cluster) keeps
    // every wait as it is.
    cluster.conn.retry = cluster.conn.retry.scaled(speed);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock { speed });
    let notifier: Option<Arc<dyn Notifier>> = match &run.webhook {
        Some(url) => Some(Arc::new(Webhook::new(url).map_err(usage)?)),
        None => None,
    };
    let config = EngineConfig {
        max_snapshot_age: Duration::from_secs(u64::from(run.snapshot_max_age) * 60),
        snapshot_dir: run.snapshot_dir.clone(),
        drain: DrainConfig {
            timeout: Duration::from_secs(u64::from(run.drain_timeout) * 60),
            rules,
            wait_replacements: false,
            retry: RetryPolicy::default().scaled(speed),
            ..DrainConfig::default()
        },
        triggers: TriggerOptions { crash_loop_percent: run.crash_loop_percent, ..TriggerOptions::default() },
        smoke: run.smoke.clone(),
        lease_duration: Duration::from_secs(run.lease_seconds.max(3)),
        report: Some(run.report.clone()),
        ..EngineConfig::default()
    };
    Ok(Engine {
        cluster: Arc::new(cluster),
        backend,
        clock,
        notifier,
        sink: sink(&run.output),
        file: JournalFile::new(journal),
        config,
        identity: Identity::current(),
    })
}

fn load_plan(path: &Path) -> anyhow::Result<Plan> {
    let text =
        std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read --plan {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "--plan {}: not a plan ({e}); write one with `stepstone plan --kubeconfig ... --to v1.35 -o json > plan.json`",
            path.display()
        ))
    })
}

/// The journal of this cluster's rollout: the file if it exists, else the cluster's copy.
async fn find_journal(cluster: &dyn ClusterApi, file: &JournalFile) -> anyhow::Result<Option<Journal>> {
    if file.exists() {
        return Ok(Some(file.load()?));
    }
    let mirror = cluster.read_mirror().await?;
    match mirror.and_then(|d| d.get(JOURNAL_KEY).cloned()) {
        Some(text) => Ok(Some(Journal::from_json("ConfigMap kube-system/stepstone-rollout", &text)?)),
        None => Ok(None),
    }
}

fn exit_for(outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::Complete => ExitCode::SUCCESS,
        _ => ExitCode::from(crate::exit::FINDINGS),
    }
}

async fn start(a: StartArgs) -> anyhow::Result<ExitCode> {
    let cluster = connect(&a.target.cluster).await?;
    let inv = cluster.inventory().await?;
    let plan = match (&a.plan, &a.to) {
        (Some(path), _) => load_plan(path)?,
        (None, Some(to)) => {
            let request = a.policy.request(to.clone())?;
            plan::make_plan(&inv, &request, ReleaseData::embedded()).map_err(|e| usage(e.to_string()))?
        }
        (None, None) => return Err(usage("give the target with --to v1.35 (or a saved plan with --plan plan.json)")),
    };
    let file = JournalFile::new(&a.target.journal);
    if let Some(existing) = find_journal(&cluster, &file).await?
        && !matches!(existing.state, RolloutState::Complete | RolloutState::Aborted)
    {
        return Err(usage(format!(
            "rollout {} to {} is not finished ({:?}); continue it with `stepstone rollout resume` or end it with `stepstone rollout abort`",
            existing.id, existing.plan.to, existing.state
        )));
    }
    let steps = sequence(&plan);
    let state = ClusterState::from_inventory(&inv);
    let now = jiff::Timestamp::now();
    let id = format!("{}-{}", plan.to.canonical(), now.strftime("%Y%m%dT%H%M%SZ"));
    let ops = a.node_ops.ok_or_else(|| usage("choose how nodes are upgraded: --node-ops lab|ssh|manual"))?;
    let mut journal = Journal::new(id, inv.source.clone(), ops.name().into(), plan, now);
    if !a.yes {
        print!("{}", plan::table::render(&journal.plan));
        let max_age = Duration::from_secs(u64::from(a.run.snapshot_max_age) * 60);
        let pending: Vec<_> =
            steps.iter().filter(|s| decide(s, &state, &journal, now, max_age) != Decision::Done).collect();
        println!("\n{} of {} steps to run with --node-ops {}.", pending.len(), steps.len(), ops.name());
        if let Some(first) = pending.first() {
            println!("The first would be: {}", first.describe());
        }
        println!("Nothing was changed: add --yes to run the rollout.");
        return Ok(ExitCode::SUCCESS);
    }
    if !a.policy.window.is_empty() {
        let fit = stepstone_core::plan::window::fit(&a.policy.window, now, 0).start();
        if fit > now {
            return Err(usage(format!(
                "it is {now}, outside the maintenance window ({}); the next one opens at {fit}",
                a.policy.window.iter().map(|w| w.text().to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let rules = a.policy.drain_options();
    journal.drain_options = Some(rules.clone());
    let engine = engine(cluster, ops, &a.run, rules, &a.target.journal, &journal.plan).await?;
    let outcome = engine.run(&mut journal, false).await.map_err(lock_is_usage)?;
    Ok(exit_for(&outcome))
}

fn lock_is_usage(e: stepstone_exec::ExecError) -> anyhow::Error {
    match e {
        stepstone_exec::ExecError::Locked { .. } => usage(e.to_string()),
        other => other.into(),
    }
}

async fn resume(a: ResumeArgs) -> anyhow::Result<ExitCode> {
    let cluster = connect(&a.target.cluster).await?;
    let file = JournalFile::new(&a.target.journal);
    let Some(mut journal) = find_journal(&cluster, &file).await? else {
        return Err(usage(format!(
            "no rollout to resume: neither {} nor ConfigMap kube-system/stepstone-rollout holds a journal; start one with `stepstone rollout --to ...`",
            a.target.journal.display()
        )));
    };
    if matches!(journal.state, RolloutState::Complete | RolloutState::Aborted) {
        return Err(usage(format!("rollout {} is {:?}: nothing to resume", journal.id, journal.state)));
    }
    let ops = match a.node_ops {
        Some(o) => o,
        None => NodeOpsArg::parse(&journal.node_ops)
            .ok_or_else(|| usage("the journal names no known --node-ops; pass one"))?,
    };
    let released: Vec<String> = std::mem::take(&mut journal.holds).into_keys().collect();
    if !released.is_empty() {
        journal.record(
            jiff::Timestamp::now(),
            "rollout",
            Phase::Info,
            None,
            format!("released for another try: {}", released.join(", ")),
        );
    }
    let rules = journal.drain_options.clone().unwrap_or_default();
    let engine = engine(cluster, ops, &a.run, rules, &a.target.journal, &journal.plan).await?;
    let outcome = engine.run(&mut journal, true).await.map_err(lock_is_usage)?;
    Ok(exit_for(&outcome))
}

async fn control(c: RolloutTarget, what: &str) -> anyhow::Result<ExitCode> {
    let cluster = connect(&c.cluster).await?;
    let file = JournalFile::new(&c.journal);
    let Some(journal) = find_journal(&cluster, &file).await? else {
        return Err(usage("no rollout on this cluster (ConfigMap kube-system/stepstone-rollout has no journal)"));
    };
    cluster.write_mirror([(CONTROL_KEY.to_string(), Some(what.to_string()))].into()).await?;
    let lease = cluster.read_lease().await?.and_then(|l| l.view.holder).filter(|h| !h.is_empty());
    match lease {
        Some(holder) => {
            println!("{what} requested for rollout {}; {holder} stops at the next step boundary", journal.id)
        }
        None => {
            // Nobody runs it: record the state directly.
            let mut journal = journal;
            journal.state = if what == "pause" { RolloutState::Paused } else { RolloutState::Aborted };
            journal.record(
                jiff::Timestamp::now(),
                "rollout",
                Phase::Info,
                None,
                format!("{what} requested while not running"),
            );
            if file.exists() {
                file.save(&journal)?;
            }
            cluster.write_mirror([(JOURNAL_KEY.to_string(), Some(journal.to_json()))].into()).await?;
            println!("rollout {} is not running; marked {what}d", journal.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let cluster = connect(&a.target.cluster).await?;
    let file = JournalFile::new(&a.target.journal);
    let Some(journal) = find_journal(&cluster, &file).await? else {
        println!("no rollout on this cluster");
        return Ok(ExitCode::SUCCESS);
    };
    if a.output == "json" {
        println!("{}", journal.to_json());
        return Ok(ExitCode::SUCCESS);
    }
    check_output(&a.output)?;
    let inv = cluster.inventory().await?;
    let state = ClusterState::from_inventory(&inv);
    let steps = sequence(&journal.plan);
    let now = jiff::Timestamp::now();
    let done =
        steps.iter().filter(|s| decide(s, &state, &journal, now, Duration::from_secs(3600)) == Decision::Done).count();
    println!("rollout {} of {}: {} -> {}", journal.id, journal.cluster, journal.plan.from, journal.plan.to);
    println!("state: {:?}", journal.state);
    println!("steps: {done} of {} done", steps.len());
    if let Some(next) =
        steps.iter().find(|s| decide(s, &state, &journal, now, Duration::from_secs(3600)) != Decision::Done)
    {
        println!("next: {}", next.describe());
    }
    for (node, reason) in &journal.holds {
        println!("held: {node}: {reason}");
    }
    match cluster.read_lease().await?.and_then(|l| l.view.holder).filter(|h| !h.is_empty()) {
        Some(h) => println!("lock: held by {h}"),
        None => println!("lock: free (no rollout running)"),
    }
    if let Some(control) = cluster.read_mirror().await?.and_then(|d| d.get(CONTROL_KEY).cloned()) {
        println!("requested: {control}");
    }
    Ok(if matches!(journal.state, RolloutState::Halted { .. }) {
        ExitCode::from(crate::exit::FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

//! `stepstone lab nodes|node|faults`: what an SRE does over SSH on a server, done on a running
//! lab through its node-operation API (`/lab/v1/`), found through the lab's kubeconfig.
//! Faults change by patch, so two people changing different faults at once both keep theirs.
//!
//! The requests go through the lab crate's [`LabClient`], which refuses anything that is not a
//! plain-HTTP loopback server before a request is sent; this module turns its answers and
//! refusals into output and exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use stepstone_core::version::{KubeVersion, PackageVersion};
use stepstone_lab::{
    FaultConfig, FaultField, FaultsChange, KubeletState, LabClient, LabClientError, NodeFacts, OsRefresh, Package,
    UpgradeOptions, UpgradePlan, UpgradeReport,
};

use crate::exit::{Failure, usage};
use crate::output::{OutputArgs, Table, emit};

/// Which lab to drive.
#[derive(Debug, Clone, clap::Args)]
pub struct LabTarget {
    /// The kubeconfig `stepstone lab up` wrote; its server must be a lab on 127.0.0.1.
    /// The flag wins, then the KUBECONFIG environment variable, then ./lab.kubeconfig.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE", default_value = "./lab.kubeconfig")]
    pub kubeconfig: PathBuf,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Show the lab's nodes as an operator on each server would see them.
///
/// Role, hardware generation, kubelet state, the installed kubeadm/kubelet/kubectl packages,
/// cgroup version, kernel and container runtime. KUBELET is the version the running kubelet
/// reports; KUBELET-PKG the installed package, which a kubelet restart starts.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab nodes
  stepstone lab nodes --kubeconfig ./lab.kubeconfig -o json
  stepstone lab nodes cp-01 r650-01 -o yaml")]
pub struct NodesArgs {
    /// Only these nodes (default: every node).
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Run a node operation on one lab node, as you would over SSH on the server.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 repo v1.35
  stepstone lab node cp-01 install kubeadm=1.35.0-1.1
  stepstone lab node cp-01 kubeadm upgrade plan
  stepstone lab node cp-01 kubeadm upgrade apply v1.35.0
  stepstone lab node cp-02 kubeadm upgrade node
  stepstone lab node cp-01 install kubelet=1.35.0-1.1 kubectl=1.35.0-1.1
  stepstone lab node cp-01 restart-kubelet --wait
  stepstone lab node cp-01 etcd snapshot --dir /var/backups/etcd
  stepstone lab node r630-01 os refresh --cgroup v2 --wait
  stepstone lab node r630-01 logs kubelet --tail 20")]
pub struct NodeArgs {
    /// The node, as `stepstone lab nodes` or `kubectl get nodes` names it.
    #[arg(value_name = "NODE")]
    pub node: String,

    #[command(subcommand)]
    pub action: NodeAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum NodeAction {
    Repo(RepoArgs),
    Install(InstallArgs),
    Kubeadm(KubeadmArgs),
    RestartKubelet(RestartArgs),
    Etcd(EtcdArgs),
    Reboot(RebootArgs),
    Os(OsArgs),
    Logs(LogsCommandArgs),
}

/// `systemctl reboot`: the kubelet is silent while the machine reboots, then starts again.
///
/// The node turns NotReady (Ready Unknown) once the grace period passes without a status, as
/// the node lifecycle controller does; when the machine is back the kubelet starts with the
/// installed package's version and every container on the node starts again.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node r650-01 reboot
  stepstone lab node r650-01 reboot --wait --timeout 120")]
pub struct RebootArgs {
    /// Wait until the node is Ready again (or the kubelet failed to start).
    #[arg(long)]
    pub wait: bool,

    /// With --wait: give up after this many real seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, requires = "wait")]
    pub timeout: u64,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The node's operating system.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node r630-01 os refresh --cgroup v2 --wait")]
pub struct OsArgs {
    #[command(subcommand)]
    pub command: OsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum OsCommand {
    Refresh(RefreshArgs),
}

/// An OS refresh, then a reboot: a new OS image, a new kernel, or a move to cgroup v2.
///
/// What an operator does when preflight finds a node a new kubelet cannot run on: a kubelet of
/// 1.35 or later that refused a cgroup v1 host starts after `--cgroup v2`. Options not given
/// keep their value; without any, it is a plain reboot.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node r630-01 os refresh --cgroup v2 --wait
  stepstone lab node r630-01 os refresh --os-image 'Ubuntu 24.04.1 LTS' --kernel 6.8.0-49-generic --cgroup v2
  stepstone lab node r650-02 os refresh --kernel 6.1.0-28-amd64")]
pub struct RefreshArgs {
    /// The cgroup version the node boots with: v2 (or v1).
    #[arg(long, value_name = "v2|v1")]
    pub cgroup: Option<String>,

    /// The OS image the node reports after the refresh (its os-release PRETTY_NAME).
    #[arg(long, value_name = "NAME")]
    pub os_image: Option<String>,

    /// The kernel the node boots (a kernel change).
    #[arg(long, value_name = "VERSION")]
    pub kernel: Option<String>,

    #[command(flatten)]
    pub reboot: RebootArgs,
}

/// Logs on the node.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node r630-01 logs kubelet --tail 20")]
pub struct LogsCommandArgs {
    #[command(subcommand)]
    pub command: LogsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum LogsCommand {
    Kubelet(LogsArgs),
}

/// `journalctl -u kubelet`: systemd's lines and the simulated kubelet's, oldest first.
///
/// What an operator reads when a kubelet does not come back: a 1.35 kubelet on a cgroup v1
/// host logs upstream's `failed to run Kubelet: kubelet is configured to not run on a host
/// using cgroup v1` and exits.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node r630-01 logs kubelet
  stepstone lab node r630-01 logs kubelet --tail 5 -o json")]
pub struct LogsArgs {
    /// Only the newest N lines (journalctl -n).
    #[arg(long, short = 'n', value_name = "N")]
    pub tail: Option<usize>,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `etcdctl` on a control-plane node.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 etcd snapshot --dir /var/backups/etcd")]
pub struct EtcdArgs {
    #[command(subcommand)]
    pub command: EtcdCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EtcdCommand {
    Snapshot(SnapshotArgs),
}

/// `etcdctl snapshot save` on a control-plane node: the lab's objects now, with metadata.
///
/// Writes `etcd-<cluster>-<UTC time>.db` and its `.db.json` metadata (the format `stepstone
/// etcd backup` writes, which the rollout's snapshot gate reads) into DIR: created 0700 when
/// missing, refused when others can read it; both files 0600. The .db holds the lab's objects
/// as JSON, not a bbolt database, so `stepstone etcd verify` cannot read it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 etcd snapshot --dir ./backups
  stepstone lab node cp-01 etcd snapshot --dir /var/backups/etcd -o json")]
pub struct SnapshotArgs {
    /// The directory to write the snapshot and its metadata to.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Point the node's Kubernetes package repository at a minor (pkgs.k8s.io/core:/stable:/v1.35).
///
/// pkgs.k8s.io has one repository per minor, and a node sees only the one its
/// /etc/apt/sources.list.d/kubernetes.list (or yum .repo file) names: a node starts with the
/// repository of the minor it runs, and moving to the next minor starts here. Without a
/// repository, prints the one the node uses.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 repo
  stepstone lab node cp-01 repo v1.35")]
pub struct RepoArgs {
    /// The minor's repository, e.g. v1.35.
    #[arg(value_name = "vX.Y")]
    pub repository: Option<String>,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Install package versions (`apt-get install kubeadm=1.35.0-1.1`, `dnf install kubeadm-1.35.0`).
///
/// Versions come from the node's package repository (see `repo`), which holds every patch of
/// its minor: the deb form (1.35.0-1.1), the rpm form (1.35.0-150500.1.1), an apt glob
/// (1.35.0-*, the newest match) or the bare release (1.35.0). A version the repository does not
/// hold fails as apt fails (`E: Version ... was not found`) and exits 2. Every argument is
/// checked before anything is installed. Installing the kubelet package does not restart the
/// running kubelet: run `restart-kubelet` for that.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 install kubeadm=1.35.0-1.1
  stepstone lab node r650-01 install kubelet=1.35.0-1.1 kubectl=1.35.0-1.1
  stepstone lab node r650-01 install 'kubelet=1.35.0-*'
  stepstone lab node r650-01 install kubeadm-1.35.0-150500.1.1")]
pub struct InstallArgs {
    /// PACKAGE=VERSION (or PACKAGE-VERSION); PACKAGE is kubeadm, kubelet or kubectl.
    #[arg(required = true, value_name = "PACKAGE=VERSION")]
    pub packages: Vec<String>,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `kubeadm` on the node.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 kubeadm upgrade plan
  stepstone lab node cp-01 kubeadm upgrade apply v1.35.0
  stepstone lab node r650-01 kubeadm upgrade node")]
pub struct KubeadmArgs {
    #[command(subcommand)]
    pub command: KubeadmCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KubeadmCommand {
    Upgrade(KubeadmUpgradeArgs),
    Version(KubeadmVersionArgs),
}

/// `kubeadm version`: the kubeadm installed on the node.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 kubeadm version
  stepstone lab node cp-01 kubeadm version -o json")]
pub struct KubeadmVersionArgs {
    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `kubeadm upgrade plan|apply|node`: `plan` and `apply` on the first control-plane node, then
/// `node` on the others.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 kubeadm upgrade plan
  stepstone lab node cp-01 kubeadm upgrade apply v1.35.0
  stepstone lab node cp-02 kubeadm upgrade node")]
pub struct KubeadmUpgradeArgs {
    #[command(subcommand)]
    pub command: UpgradeCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum UpgradeCommand {
    Plan(PlanArgs),
    Apply(ApplyArgs),
    Node(UpgradeNodeArgs),
}

/// `kubeadm upgrade plan [VERSION]` on a control-plane node: what `apply` would do. Changes nothing.
///
/// Shows the cluster version, the installed kubeadm, the release to upgrade to, and per node
/// the components (kube-apiserver, kube-controller-manager, kube-scheduler, etcd; kube-proxy
/// and CoreDNS once) and kubelets with their current and target versions. Without VERSION the
/// target is the newest release of the next minor in stepstone's release data that the
/// installed kubeadm can apply (real kubeadm asks dl.k8s.io); when kubeadm must be upgraded
/// first, the plan says so. A VERSION kubeadm would refuse (newer than kubeadm, skipping a
/// minor) exits 1 with kubeadm's message.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 kubeadm upgrade plan
  stepstone lab node cp-01 kubeadm upgrade plan v1.35.0
  stepstone lab node cp-01 kubeadm upgrade plan -o json")]
pub struct PlanArgs {
    /// The release to plan for, e.g. v1.35.0 (default: the newest the installed kubeadm can apply).
    #[arg(value_name = "VERSION")]
    pub release: Option<String>,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `kubeadm upgrade apply VERSION` on the first control-plane node.
///
/// Refused, as kubeadm refuses it, when the node is not a control-plane node, the installed
/// kubeadm is older than VERSION, VERSION skips a minor, or the node is on cgroup v1 with
/// kubelet/kubeadm >= 1.35 while the kubelet configuration keeps `failCgroupV1` on.
/// Prints kubeadm's output; a refusal exits 1 with kubeadm's message.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-01 install kubeadm=1.35.0-1.1
  stepstone lab node cp-01 kubeadm upgrade apply v1.35.0
  stepstone lab node cp-01 kubeadm upgrade apply v1.35.0 -y --ignore-preflight-errors=all")]
pub struct ApplyArgs {
    /// The exact release to upgrade the control plane to, e.g. v1.35.0.
    // Not named `version`: that id belongs to the `--version` flag every command carries.
    #[arg(value_name = "VERSION")]
    pub release: String,

    #[command(flatten)]
    pub upgrade: UpgradeFlags,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `kubeadm upgrade node` on the other control-plane nodes and on workers.
///
/// Control-plane nodes get static pods of the cluster version (the last one also the CoreDNS
/// and kube-proxy addons); every node picks up the kubelet configuration. Prints kubeadm's
/// output; a refusal exits 1 with kubeadm's message.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node cp-02 kubeadm upgrade node
  stepstone lab node r650-01 kubeadm upgrade node -o json
  stepstone lab node r650-01 kubeadm upgrade node --ignore-preflight-errors=SystemVerification")]
pub struct UpgradeNodeArgs {
    #[command(flatten)]
    pub upgrade: UpgradeFlags,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// kubeadm's own flags, so a runbook line can be pasted unchanged.
#[derive(Debug, Clone, clap::Args)]
pub struct UpgradeFlags {
    /// Preflight checks to turn into warnings, comma-separated (SystemVerification, all).
    #[arg(long, value_name = "CHECKS", value_delimiter = ',')]
    pub ignore_preflight_errors: Vec<String>,

    /// Accepted as kubeadm accepts it; the lab never asks for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Run every check and say what would change, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl UpgradeFlags {
    fn options(&self) -> UpgradeOptions {
        UpgradeOptions { ignore_preflight_errors: self.ignore_preflight_errors.clone(), dry_run: self.dry_run }
    }
}

/// `systemctl restart kubelet`: the node is NotReady until the kubelet is back.
///
/// The kubelet comes back running the installed kubelet package's version, unless it refuses
/// to start (cgroup v1 with kubelet >= 1.35 and `failCgroupV1` on) or a fault keeps it down.
/// With --wait, waits for the outcome and exits 1 if the kubelet failed or did not return.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab node r650-01 restart-kubelet
  stepstone lab node r650-01 restart-kubelet --wait --timeout 120")]
pub struct RestartArgs {
    /// Wait until the node is Ready again (or the kubelet failed).
    #[arg(long)]
    pub wait: bool,

    /// With --wait: give up after this many real seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, requires = "wait")]
    pub timeout: u64,

    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

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
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

// ---- the lab endpoint

/// A running lab's node-operation API through [`LabClient`], run to completion for each command.
pub struct LabApi {
    client: LabClient,
    kubeconfig: PathBuf,
    runtime: tokio::runtime::Runtime,
}

impl LabApi {
    /// Find the lab through a kubeconfig; the client refuses any server that is not plain HTTP
    /// on loopback, since these commands change node state and only make sense against a lab.
    pub fn from_target(t: &LabTarget) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = runtime
            .block_on(LabClient::from_kubeconfig(&t.kubeconfig, t.context.as_deref()))
            .map_err(|e| lab_error(&t.kubeconfig, e))?;
        Ok(LabApi { client, kubeconfig: t.kubeconfig.clone(), runtime })
    }

    /// One operation; the lab's refusals become exit 2 (bad input: unknown node, bad version)
    /// or exit 1 (the operation was refused, as kubeadm refuses it).
    fn run<'a, T, F>(&'a self, op: impl FnOnce(&'a LabClient) -> F) -> anyhow::Result<T>
    where
        F: Future<Output = Result<T, LabClientError>> + 'a,
    {
        self.runtime.block_on(op(&self.client)).map_err(|e| lab_error(&self.kubeconfig, e))
    }
}

/// The lab's fault settings as the flags of `stepstone lab faults` name them.
pub(super) fn fault_flag(field: FaultField) -> &'static str {
    match field {
        FaultField::ErrorRate => "--error-rate",
        FaultField::ThrottleRate => "--throttle-rate",
        FaultField::DropWatchRate => "--drop-watch-rate",
        FaultField::NeverReturn => "--never-return",
        FaultField::CrashLoop => "--crash-loop",
        FaultField::StuckCreating => "--stuck-creating",
    }
}

/// A client error in terms of this command line: its flags, its exit codes.
fn lab_error(kubeconfig: &Path, e: LabClientError) -> anyhow::Error {
    let shown = kubeconfig.display();
    match e {
        LabClientError::KubeconfigMissing { .. } => usage(format!(
            "cannot read --kubeconfig {shown}: no such file; start a lab with `stepstone lab up --fleet FILE --kubeconfig {shown}`"
        )),
        LabClientError::KubeconfigInvalid { reason, .. } => usage(format!(
            "--kubeconfig {shown} is not a kubeconfig ({reason}); pass the file `stepstone lab up` wrote"
        )),
        LabClientError::NoCurrentContext { .. } => {
            usage(format!("--kubeconfig {shown} has no current-context; pass --context NAME"))
        }
        LabClientError::UnknownContext { context, known, .. } => usage(format!(
            "--kubeconfig {shown} has no context \"{context}\" (it has: {known}); pass one with --context"
        )),
        LabClientError::NoServer { context, cluster, .. } => usage(format!(
            "--kubeconfig {shown}: context \"{context}\" names cluster \"{cluster}\", which the file does not define with a server"
        )),
        LabClientError::NotALab { url, why } => usage(format!(
            "--kubeconfig {shown}: server {url} {why}; `stepstone lab` node commands drive only a lab started with `stepstone lab up`, so pass the kubeconfig it wrote (default ./lab.kubeconfig)"
        )),
        LabClientError::NotServed { url, path } => usage(format!(
            "{url} (from --kubeconfig {shown}) does not serve {path}; is it a lab started by this version of `stepstone lab up`?"
        )),
        LabClientError::BadRequest { faults: Some(f), .. } => {
            usage(format!("fault flags: {} (the lab keeps its current faults)", f.message_with(fault_flag)))
        }
        LabClientError::BadRequest { message, .. } => usage(message),
        LabClientError::Refused { message } => Failure(message).into(),
        other => anyhow::anyhow!("{other} (the lab of --kubeconfig {shown})"),
    }
}

// ---- commands

#[derive(Debug, Serialize)]
struct NodeList<'a> {
    lab: &'a str,
    nodes: &'a [NodeFacts],
}

pub fn nodes(a: NodesArgs) -> anyhow::Result<ExitCode> {
    let api = LabApi::from_target(&a.target)?;
    let mut facts: Vec<NodeFacts> = if a.nodes.is_empty() {
        api.run(|c| c.list_nodes())?
    } else {
        a.nodes.iter().map(|n| api.run(|c| c.facts(n))).collect::<anyhow::Result<_>>()?
    };
    if a.nodes.is_empty() {
        facts.sort_by(|x, y| (!x.control_plane, &x.name).cmp(&(!y.control_plane, &y.name)));
    }
    emit(a.output.output, "LabNodeList", &NodeList { lab: api.client.url(), nodes: &facts }, || nodes_table(&facts))?;
    Ok(ExitCode::SUCCESS)
}

fn status_of(f: &NodeFacts) -> String {
    let ready = if f.ready { "Ready" } else { "NotReady" };
    match &f.kubelet {
        KubeletState::Running => ready.to_string(),
        KubeletState::Restarting { .. } => format!("{ready},KubeletRestarting"),
        KubeletState::Rebooting { .. } => format!("{ready},Rebooting"),
        KubeletState::Failed { .. } => format!("{ready},KubeletFailed"),
    }
}

fn nodes_table(facts: &[NodeFacts]) -> String {
    let mut t = Table::new([
        "NAME",
        "ROLE",
        "GENERATION",
        "STATUS",
        "KUBELET",
        "KUBEADM-PKG",
        "KUBELET-PKG",
        "KUBECTL-PKG",
        "CGROUP",
        "KERNEL",
        "RUNTIME",
    ]);
    let or_none = |s: Option<&String>| s.filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| "<none>".into());
    for f in facts {
        t.row([
            f.name.clone(),
            if f.control_plane { "control-plane" } else { "worker" }.to_string(),
            or_none(f.generation.as_ref()),
            status_of(f),
            or_none(Some(&f.kubelet_version)),
            or_none(f.packages.get("kubeadm")),
            or_none(f.packages.get("kubelet")),
            or_none(f.packages.get("kubectl")),
            or_none(f.cgroup_version.as_ref()),
            or_none(Some(&f.kernel_version)),
            or_none(Some(&f.container_runtime)),
        ]);
    }
    t.render()
}

pub fn node(a: NodeArgs) -> anyhow::Result<ExitCode> {
    match a.action {
        NodeAction::Repo(r) => repository(&a.node, r),
        NodeAction::Install(i) => install(&a.node, i),
        NodeAction::Kubeadm(KubeadmArgs { command: KubeadmCommand::Version(v) }) => {
            let api = LabApi::from_target(&v.target)?;
            let version = api.run(|c| c.kubeadm_version(&a.node))?;
            emit(v.output.output, "KubeadmVersion", &version, || format!("{}\n", version.message))?;
            Ok(ExitCode::SUCCESS)
        }
        NodeAction::Kubeadm(KubeadmArgs { command: KubeadmCommand::Upgrade(u) }) => match u.command {
            UpgradeCommand::Plan(x) => upgrade_plan(&a.node, x),
            UpgradeCommand::Apply(x) => upgrade_apply(&a.node, x),
            UpgradeCommand::Node(x) => upgrade_node(&a.node, x),
        },
        NodeAction::RestartKubelet(r) => restart(&a.node, r),
        NodeAction::Etcd(EtcdArgs { command: EtcdCommand::Snapshot(s) }) => etcd_snapshot(&a.node, s),
        NodeAction::Reboot(r) => reboot(&a.node, r, None),
        NodeAction::Os(OsArgs { command: OsCommand::Refresh(r) }) => {
            let refresh = OsRefresh { os_image: r.os_image, kernel_version: r.kernel, cgroup_version: r.cgroup };
            reboot(&a.node, r.reboot, Some(refresh))
        }
        NodeAction::Logs(LogsCommandArgs { command: LogsCommand::Kubelet(l) }) => kubelet_logs(&a.node, l),
    }
}

/// `kubeadm=1.35.0-1.1` (apt) or `kubeadm-1.35.0-150500.1.1` (dnf) into package and version,
/// checked as the lab checks them so a bad argument installs nothing.
fn parse_install(arg: &str) -> anyhow::Result<(Package, String)> {
    let split = arg.split_once('=').or_else(|| {
        ["kubeadm-", "kubelet-", "kubectl-"]
            .iter()
            .find(|p| arg.starts_with(*p))
            .map(|p| (&arg[..p.len() - 1], &arg[p.len()..]))
    });
    let Some((name, version)) = split else {
        return Err(usage(format!(
            "install {arg}: expected PACKAGE=VERSION, e.g. kubeadm=1.35.0-1.1 (PACKAGE is kubeadm, kubelet or kubectl)"
        )));
    };
    let package: Package = name.trim().parse().map_err(|e| usage(format!("install {arg}: {e}")))?;
    let version = version.trim().trim_matches(['\'', '"']).to_string();
    let glob = version.contains(['*', '?']) && version.starts_with(|c: char| c.is_ascii_digit() || c == 'v');
    if !glob && version.parse::<PackageVersion>().is_err() && version.parse::<KubeVersion>().is_err() {
        return Err(usage(format!(
            "install {arg}: \"{version}\" is not a Kubernetes package version; give the deb form 1.35.0-1.1, the rpm form 1.35.0-150500.1.1, a glob 1.35.0-* or the release 1.35.0 (`apt-cache madison {}` lists them)",
            name.trim()
        )));
    }
    Ok((package, version))
}

#[derive(Debug, Serialize)]
struct Installed {
    package: &'static str,
    from: Option<String>,
    to: String,
}

#[derive(Debug, Serialize)]
struct InstallReport {
    node: String,
    installed: Vec<Installed>,
    facts: NodeFacts,
}

fn install(node: &str, a: InstallArgs) -> anyhow::Result<ExitCode> {
    let wanted = a.packages.iter().map(|p| parse_install(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let api = LabApi::from_target(&a.target)?;
    let mut facts = api.run(|c| c.facts(node))?;
    let mut installed = Vec::new();
    for (package, version) in wanted {
        let name = package.name();
        let from = facts.packages.get(name).cloned();
        facts = api.run(|c| c.install_package(node, package, &version))?;
        // What the repository resolved a glob or a bare release to.
        let to = facts.packages.get(name).cloned().unwrap_or(version);
        installed.push(Installed { package: name, from, to });
    }
    let report = InstallReport { node: node.to_string(), installed, facts };
    emit(a.output.output, "LabPackageInstall", &report, || {
        let mut out = String::new();
        for i in &report.installed {
            match &i.from {
                Some(from) if *from != i.to => out.push_str(&format!("{node}: {} {from} -> {}\n", i.package, i.to)),
                Some(_) => out.push_str(&format!("{node}: {} {} is already the installed version\n", i.package, i.to)),
                None => out.push_str(&format!("{node}: {} {} installed\n", i.package, i.to)),
            }
        }
        if report.installed.iter().any(|i| i.package == "kubelet")
            && report.facts.packages.get("kubelet").is_some_and(|p| !same_release(p, &report.facts.kubelet_version))
        {
            out.push_str(&format!(
                "the running kubelet is still {}; restart it with `stepstone lab node {node} restart-kubelet`\n",
                report.facts.kubelet_version
            ));
        }
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

fn repository(node: &str, a: RepoArgs) -> anyhow::Result<ExitCode> {
    let api = LabApi::from_target(&a.target)?;
    let before = api.run(|c| c.facts(node))?.repository;
    let facts = match &a.repository {
        Some(r) => api.run(|c| c.configure_repository(node, r.trim()))?,
        None => api.run(|c| c.facts(node))?,
    };
    let now = facts.repository.clone().unwrap_or_else(|| "none".into());
    emit(a.output.output, "LabNodeFacts", &facts, || match (&a.repository, before) {
        (Some(_), Some(b)) if b != now => {
            format!("{node}: Kubernetes package repository {b} -> {now} (pkgs.k8s.io/core:/stable:/{now})\n")
        }
        _ => format!("{node}: Kubernetes package repository {now} (pkgs.k8s.io/core:/stable:/{now})\n"),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn same_release(package: &str, running: &str) -> bool {
    let release = |s: &str| s.parse::<PackageVersion>().map(|p| p.upstream).or_else(|_| s.parse::<KubeVersion>()).ok();
    release(package).is_some_and(|p| release(running).is_some_and(|r| p == r))
}

fn upgrade_plan(node: &str, a: PlanArgs) -> anyhow::Result<ExitCode> {
    let version = a.release.as_deref().map(str::trim);
    if let Some(v) = version
        && v.parse::<KubeVersion>().is_err()
    {
        return Err(usage(format!(
            "kubeadm upgrade plan {v}: not a Kubernetes release; give the exact version, e.g. v1.35.0, or none for the newest the installed kubeadm can apply"
        )));
    }
    let api = LabApi::from_target(&a.target)?;
    let plan: UpgradePlan = api.run(|c| c.kubeadm_upgrade_plan(node, version))?;
    emit(a.output.output, "KubeadmUpgradePlan", &plan, || {
        let mut out = format!("{}\n", plan.message.trim_end());
        if plan.target.is_none()
            && let Some(v) = plan.needs_newer_kubeadm.last()
        {
            // The lab's way of doing what kubeadm asks for.
            out.push_str(&format!(
                "\nin the lab: stepstone lab node {node} install kubeadm={}-1.1\n",
                v.trim_start_matches('v')
            ));
        }
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

fn upgrade_apply(node: &str, a: ApplyArgs) -> anyhow::Result<ExitCode> {
    let version = a.release.trim();
    if version.parse::<KubeVersion>().is_err() {
        return Err(usage(format!(
            "kubeadm upgrade apply {version}: not a Kubernetes release; give the exact version, e.g. v1.35.0"
        )));
    }
    let api = LabApi::from_target(&a.target)?;
    let opts = a.upgrade.options();
    let report = api.run(|c| c.kubeadm_upgrade_apply(node, version, &opts))?;
    print_upgrade(a.output, &report)
}

fn upgrade_node(node: &str, a: UpgradeNodeArgs) -> anyhow::Result<ExitCode> {
    let api = LabApi::from_target(&a.target)?;
    let opts = a.upgrade.options();
    let report = api.run(|c| c.kubeadm_upgrade_node(node, &opts))?;
    print_upgrade(a.output, &report)
}

fn print_upgrade(output: OutputArgs, report: &UpgradeReport) -> anyhow::Result<ExitCode> {
    emit(output.output, "KubeadmUpgrade", report, || {
        // kubeadm's own lines first, as on the server; then what changed, which kubeadm spreads
        // over many lines the lab does not imitate.
        let mut out = format!("{}\n", report.message.trim_end());
        if !report.changed.is_empty() {
            out.push_str(&format!("\nchanged by this upgrade ({} on {}):\n", report.version, report.node));
            for c in &report.changed {
                out.push_str(&format!("  {c}\n"));
            }
        }
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RestartReport {
    node: String,
    waited: bool,
    facts: NodeFacts,
}

fn restart(node: &str, a: RestartArgs) -> anyhow::Result<ExitCode> {
    let api = LabApi::from_target(&a.target)?;
    let mut facts = api.run(|c| c.restart_kubelet(node))?;
    if a.wait {
        facts = wait_until_back(&api, node, facts, a.timeout, "the kubelet restart")?;
    }
    let report = RestartReport { node: node.to_string(), waited: a.wait, facts };
    emit(a.output.output, "LabKubeletRestart", &report, || match &report.facts.kubelet {
        KubeletState::Restarting { until: Some(until), version } => format!(
            "{node}: kubelet restarting (NotReady) to run {version}; back at {until} simulated time\n  kubectl --kubeconfig {} get node {node} -w\n",
            a.target.kubeconfig.display()
        ),
        KubeletState::Restarting { until: None, .. } => format!(
            "{node}: kubelet restarting (NotReady) and not coming back: the lab holds it down with a never-return fault (`stepstone lab faults`)\n"
        ),
        _ => format!("{node}: kubelet {} running, node {}\n", report.facts.kubelet_version, status_of(&report.facts)),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Poll until the node's kubelet runs and the node is Ready; a kubelet that failed to start, or
/// a node not back within `timeout` real seconds, is exit 1 with where to look.
fn wait_until_back(
    api: &LabApi,
    node: &str,
    mut facts: NodeFacts,
    timeout: u64,
    after: &str,
) -> anyhow::Result<NodeFacts> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        match &facts.kubelet {
            KubeletState::Running if facts.ready => return Ok(facts),
            KubeletState::Failed { reason } => {
                return Err(Failure(format!(
                    "{node}: the kubelet did not start: {reason}; see `stepstone lab node {node} logs kubelet` and `kubectl --kubeconfig {} get events --field-selector involvedObject.name={node}`",
                    api.kubeconfig.display()
                ))
                .into());
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(Failure(format!(
                "{node}: not Ready {timeout}s after {after} (status {}); raise --timeout, or check `stepstone lab faults` for a never-return fault",
                status_of(&facts)
            ))
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
        facts = api.run(|c| c.facts(node))?;
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RebootReport {
    node: String,
    waited: bool,
    facts: NodeFacts,
}

fn reboot(node: &str, a: RebootArgs, refresh: Option<OsRefresh>) -> anyhow::Result<ExitCode> {
    let api = LabApi::from_target(&a.target)?;
    let mut facts = match &refresh {
        Some(r) => api.run(|c| c.os_refresh(node, r))?,
        None => api.run(|c| c.reboot(node))?,
    };
    if a.wait {
        facts = wait_until_back(&api, node, facts, a.timeout, "the reboot")?;
    }
    let report = RebootReport { node: node.to_string(), waited: a.wait, facts };
    let kind = if refresh.is_some() { "LabOsRefresh" } else { "LabReboot" };
    emit(a.output.output, kind, &report, || {
        let f = &report.facts;
        let host = format!(
            "{} (kernel {}, cgroup {})",
            f.os_image,
            f.kernel_version,
            f.cgroup_version.as_deref().unwrap_or("<none>")
        );
        match &f.kubelet {
            KubeletState::Rebooting { until: Some(until), .. } => format!(
                "{node}: rebooting into {host}; the kubelet starts at {until} simulated time\n  stepstone lab node {node} logs kubelet\n"
            ),
            KubeletState::Rebooting { until: None, .. } => format!(
                "{node}: rebooting into {host} and not coming back: the lab holds it down with a never-return fault (`stepstone lab faults`)\n"
            ),
            _ => format!("{node}: back on {host}, kubelet {} running, node {}\n", f.kubelet_version, status_of(f)),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn kubelet_logs(node: &str, a: LogsArgs) -> anyhow::Result<ExitCode> {
    let api = LabApi::from_target(&a.target)?;
    let logs = api.run(|c| c.kubelet_logs(node, a.tail))?;
    emit(a.output.output, "LabKubeletLogs", &logs, || {
        if logs.lines.is_empty() {
            "-- No entries --\n".to_string()
        } else {
            logs.lines.iter().map(|l| format!("{l}\n")).collect()
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn etcd_snapshot(node: &str, a: SnapshotArgs) -> anyhow::Result<ExitCode> {
    // The lab writes the files, from its own working directory: give it the full path.
    let dir = std::path::absolute(&a.dir)
        .map_err(|e| usage(format!("--dir {}: cannot make it absolute ({e}); give a full path", a.dir.display())))?;
    let api = LabApi::from_target(&a.target)?;
    let report = api.run(|c| c.etcd_snapshot(node, &dir))?;
    emit(a.output.output, "LabEtcdSnapshot", &report, || {
        format!(
            "{}\n{node}: snapshot of revision {} ({} objects, {} bytes), metadata {}\n",
            report.message.trim_end(),
            report.metadata.revision,
            report.metadata.total_keys,
            report.metadata.size_bytes,
            report.metadata_path.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
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
    if let Some(ms) = a.latency_ms.filter(|ms| *ms > super::lab::MAX_LATENCY_MS) {
        return Err(usage(format!("--latency-ms {ms} must be at most {} (a minute)", super::lab::MAX_LATENCY_MS)));
    }
    let api = LabApi::from_target(&a.target)?;
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
    emit(a.output.output, "LabFaults", &shown, || {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_arguments_take_apt_and_dnf_forms() {
        let (p, v) = parse_install("kubeadm=1.35.0-1.1").unwrap();
        assert_eq!((p, v.as_str()), (Package::Kubeadm, "1.35.0-1.1"));
        let (p, v) = parse_install("kubelet-1.35.0-150500.1.1").unwrap();
        assert_eq!((p, v.as_str()), (Package::Kubelet, "1.35.0-150500.1.1"));
        let (p, v) = parse_install("kubectl='1.35.0'").unwrap();
        assert_eq!((p, v.as_str()), (Package::Kubectl, "1.35.0"));
        assert!(parse_install("kubeadm").unwrap_err().to_string().contains("PACKAGE=VERSION"));
        assert!(parse_install("docker=1.0").unwrap_err().to_string().contains("unknown package"));
        assert!(parse_install("kubeadm=latest").unwrap_err().to_string().contains("not a Kubernetes package version"));
    }
}

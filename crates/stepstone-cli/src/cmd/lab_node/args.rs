//! The arguments of `stepstone lab node NODE ACTION`, one struct per action.

use std::path::PathBuf;
use std::time::Duration;

use stepstone_lab::UpgradeOptions;

use super::LabCall;

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
    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub lab: LabCall,
}

/// `--wait [--timeout DURATION]` of the operations that take the kubelet down.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Wait until the node is Ready again (or its kubelet failed to start).
    #[arg(long)]
    pub wait: bool,

    /// With --wait: give up after this long, in real time (90, 90s, 2m; a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::duration::seconds, requires = "wait")]
    pub timeout: Duration,
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
    pub lab: LabCall,
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
    pub lab: LabCall,
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
    pub lab: LabCall,
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
    pub lab: LabCall,
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
    pub lab: LabCall,
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
    pub lab: LabCall,
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
    pub lab: LabCall,
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
    pub lab: LabCall,
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
    pub(super) fn options(&self) -> UpgradeOptions {
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
    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub lab: LabCall,
}

//! `stepstone lab nodes|node|faults`: what an SRE does over SSH on a server, done on a running
//! lab through its node-operation API (`/lab/v1/`), found through the lab's kubeconfig.
//! Faults change by patch, so two people changing different faults at once both keep theirs.
//!
//! The requests go through the lab crate's [`LabClient`], which refuses anything that is not a
//! plain-HTTP loopback server before a request is sent; this module turns its answers and
//! refusals into output and exit codes. Here: the lab target, the client, `lab nodes` and the
//! dispatch of `lab node`; the actions' arguments are in [`args`], packages in [`packages`],
//! kubeadm in [`kubeadm`], the machine itself (kubelet, reboot, OS, journal, etcd) in [`host`],
//! and `lab faults` in [`faults`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use stepstone_core::inventory::CgroupVersion;
use stepstone_lab::{FaultField, KubeletState, LabClient, LabClientError, NodeFacts, OsRefresh};

use crate::exit::{Failure, usage};
use crate::output::{OutputArgs, Table, emit};

mod args;
mod faults;
mod host;
mod kubeadm;
mod packages;

pub use args::*;
pub use faults::{FaultsArgs, check_latency, faults};
use host::{etcd_snapshot, kubelet_logs, reboot, restart};
use kubeadm::{upgrade_apply, upgrade_node, upgrade_plan};
use packages::{install, repository};

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

/// The flags of every command that drives a lab: which lab, and how to print its answer.
#[derive(Debug, Clone, clap::Args)]
pub struct LabCall {
    #[command(flatten)]
    pub target: LabTarget,

    #[command(flatten)]
    pub output: OutputArgs,
}

impl LabCall {
    /// A client of the lab these flags name.
    pub fn api(&self) -> anyhow::Result<LabApi> {
        LabApi::from_target(&self.target)
    }
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
    pub lab: LabCall,
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
    let api = a.lab.api()?;
    let mut facts: Vec<NodeFacts> = if a.nodes.is_empty() {
        api.run(|c| c.list_nodes())?
    } else {
        a.nodes.iter().map(|n| api.run(|c| c.facts(n))).collect::<anyhow::Result<_>>()?
    };
    if a.nodes.is_empty() {
        facts.sort_by(|x, y| (!x.control_plane, &x.name).cmp(&(!y.control_plane, &y.name)));
    }
    emit(a.lab.output.output, "LabNodeList", &NodeList { lab: api.client.url(), nodes: &facts }, || {
        nodes_table(&facts)
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn status_of(f: &NodeFacts) -> String {
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
    for f in facts {
        t.row([
            f.name.clone(),
            if f.control_plane { "control-plane" } else { "worker" }.to_string(),
            shown(f.generation.as_ref()),
            status_of(f),
            shown(f.kubelet_version.as_ref()),
            shown(f.packages.get("kubeadm")),
            shown(f.packages.get("kubelet")),
            shown(f.packages.get("kubectl")),
            shown(f.cgroup_version.map(cgroup_name)),
            shown(Some(&f.kernel_version)),
            shown(Some(&f.container_runtime)),
        ]);
    }
    t.render()
}

/// A fact as a table or a sentence shows it: `<none>`, as kubectl shows a missing value, when
/// the node does not report it.
pub(super) fn shown(fact: Option<impl std::fmt::Display>) -> String {
    fact.map(|f| f.to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| "<none>".into())
}

/// A cgroup version as the node's label spells it.
pub(super) fn cgroup_name(version: CgroupVersion) -> &'static str {
    match version {
        CgroupVersion::V1 => "v1",
        CgroupVersion::V2 => "v2",
    }
}

pub fn node(a: NodeArgs) -> anyhow::Result<ExitCode> {
    match a.action {
        NodeAction::Repo(r) => repository(&a.node, r),
        NodeAction::Install(i) => install(&a.node, i),
        NodeAction::Kubeadm(KubeadmArgs { command: KubeadmCommand::Version(v) }) => {
            let api = v.lab.api()?;
            let version = api.run(|c| c.kubeadm_version(&a.node))?;
            emit(v.lab.output.output, "KubeadmVersion", &version, || format!("{}\n", version.message))?;
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

//! `stepstone etcd backup|verify|restore-plan`: take, check and plan the restore of etcd snapshots.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use stepstone_host::etcd::restore::{RestoreMember, RestoreOptions, restore_plan};
use stepstone_host::etcd::{
    self, CheckStatus, EtcdError, GrpcSnapshotOptions, RemoteEtcdctl, SnapshotMetadata, TlsFiles, VerifyOptions,
    VerifyReport,
};
use stepstone_host::node::NodeTarget;

use super::preflight::SshArgs;
use crate::exit::{self, Failure, usage};
use crate::output::{OutputArgs, Table, emit};
use crate::source::SourceArgs;

/// Take, verify and plan the restore of etcd snapshots.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: EtcdCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EtcdCommand {
    Backup(Box<BackupArgs>),
    Verify(VerifyArgs),
    RestorePlan(RestorePlanArgs),
}

/// Take a snapshot: over the etcd v3 API (--endpoint, with mTLS) or with etcdctl on a
/// control-plane node over SSH (--via-ssh, using the node's own certificates).
///
/// Writes etcd-<cluster>-<UTC time>.db and etcd-<cluster>-<UTC time>.db.json (sha256, revision,
/// key count, size, etcd version, endpoint, time) into --dir, mode 0600; a missing --dir is
/// created with mode 0700.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone etcd backup --endpoint https://10.0.0.1:2379 --cacert ca.crt --cert client.crt --key client.key --dir /backup
  stepstone etcd backup --via-ssh cp-1 --snapshot cluster.json --dir /backup --label before-hop1")]
pub struct BackupArgs {
    /// etcd client URL to stream the snapshot from (one member).
    #[arg(long, visible_alias = "endpoints", value_name = "URL", conflicts_with = "via_ssh")]
    pub endpoint: Option<String>,
    /// CA certificate of etcd's client port (kubeadm: /etc/kubernetes/pki/etcd/ca.crt).
    #[arg(long, value_name = "FILE", requires_all = ["cert", "key"])]
    pub cacert: Option<PathBuf>,
    /// Client certificate (kubeadm: apiserver-etcd-client.crt or etcd/healthcheck-client.crt).
    #[arg(long, value_name = "FILE", requires_all = ["cacert", "key"])]
    pub cert: Option<PathBuf>,
    /// Client key.
    #[arg(long, value_name = "FILE", requires_all = ["cacert", "cert"])]
    pub key: Option<PathBuf>,
    /// Take the snapshot on this control-plane node with its etcdctl (or the etcd container's).
    #[arg(long, value_name = "NODE")]
    pub via_ssh: Option<String>,
    /// With --via-ssh: the etcd client URL as seen from the node.
    #[arg(long, value_name = "URL", default_value = "https://127.0.0.1:2379")]
    pub remote_endpoint: String,
    /// With --via-ssh: the node's etcd certificate directory (ca.crt, server.crt, server.key).
    #[arg(long, value_name = "DIR", default_value = "/etc/kubernetes/pki/etcd")]
    pub remote_cert_dir: String,
    /// With --via-ssh: where the node writes the snapshot before it is copied back.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/etcd")]
    pub remote_dir: String,
    /// Directory for the snapshot and its metadata.
    #[arg(long, short = 'd', value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Cluster name used in the file name.
    #[arg(long, value_name = "NAME", default_value = "kubernetes")]
    pub cluster: String,
    /// What the snapshot is for (e.g. before-hop2): recorded in the metadata and put in the file
    /// name, so `etcd verify --label` and a rollback find exactly this snapshot.
    #[arg(long, value_name = "LABEL", value_parser = parse_label)]
    pub label: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Check a snapshot: size and sha256 against its metadata, the bbolt structure and etcd's own
/// SHA-256 trailer, `etcdutl`/`etcdctl snapshot status` when installed, and its age.
///
/// Exit code 1 when any check fails.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone etcd verify /backup/etcd-prod-20260822T101500Z.db
  stepstone etcd verify /backup/etcd-prod-20260822T101500Z.db --max-age 30m -o json
  stepstone etcd verify old.db --any-age")]
pub struct VerifyArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// Metadata file (default: FILE.json).
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,
    /// Fail when the snapshot is older than this (1h, 30m, 2h30m).
    #[arg(long, value_name = "DURATION", default_value = "1h", conflicts_with = "any_age", value_parser = crate::duration::seconds)]
    pub max_age: Duration,
    /// Skip the age check (integrity only).
    #[arg(long)]
    pub any_age: bool,
    /// Do not run etcdutl/etcdctl even when installed.
    #[arg(long)]
    pub no_etcd_tool: bool,
    /// Fail unless the metadata carries this label (given to `etcd backup --label`).
    #[arg(long, value_name = "LABEL", value_parser = parse_label)]
    pub label: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Print the restore procedure of a snapshot for this cluster's control-plane nodes.
///
/// Members are the control-plane nodes of the inventory (name and InternalIP, peer URL
/// https://<ip>:2380), or those given with --member.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone etcd restore-plan /backup/etcd-prod-20260822T101500Z.db --snapshot cluster.json
  stepstone etcd restore-plan /backup/etcd-prod-20260822T101500Z.db --member cp-1=10.0.0.1 --member cp-2=10.0.0.2")]
pub struct RestorePlanArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// Metadata file (default: FILE.json).
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,
    /// A member as NODE=IP; repeat for each. Overrides the inventory.
    #[arg(long, value_name = "NODE=IP")]
    pub member: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        EtcdCommand::Backup(a) => backup(*a),
        EtcdCommand::Verify(a) => verify(a),
        EtcdCommand::RestorePlan(a) => plan(a),
    }
}

fn parse_label(s: &str) -> Result<String, String> {
    etcd::check_label(s).map(|()| s.to_string())
}

fn etcd_failure(e: EtcdError) -> anyhow::Error {
    match e {
        EtcdError::TlsFile { .. } => usage(e.to_string()),
        other => Failure(other.to_string()).into(),
    }
}

fn source_given(s: &SourceArgs) -> bool {
    !s.snapshot.is_empty() || s.kubeconfig.is_some() || s.example.is_some()
}

fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    // A missing directory is created 0700: snapshots hold every Secret of the cluster.
    etcd::prepare_snapshot_dir(&args.dir).map_err(|e| usage(format!("--dir: {e}")))?;
    let now = jiff::Timestamp::now();
    let taken_at = now.round(jiff::Unit::Second).unwrap_or(now);
    let result = if let Some(node_name) = &args.via_ssh {
        let target = if source_given(&args.source) {
            let inv = args.source.load()?;
            inv.node(node_name).map(NodeTarget::from_node).ok_or_else(|| {
                usage(format!(
                    "--via-ssh {node_name}: no such node in {}; run `stepstone inventory` to list them",
                    inv.source
                ))
            })?
        } else {
            NodeTarget::new(node_name, node_name)
        };
        let remote = RemoteEtcdctl::with_cert_dir(&args.remote_endpoint, &args.remote_cert_dir, &args.remote_dir);
        let ops = args.ssh.ops();
        let got = exit::block_on(etcd::snapshot_via_ssh(
            ops.as_dyn(),
            &target,
            &remote,
            &args.dir,
            &args.cluster,
            taken_at,
            args.ssh.timeout(),
        ))
        .map_err(etcd_failure)?;
        if ops.print_recorded() {
            return Ok(ExitCode::SUCCESS);
        }
        got.ok_or_else(|| Failure("the snapshot was not taken".into()))?
    } else {
        let Some(endpoint) = args.endpoint.clone() else {
            return Err(usage("give --endpoint URL (with --cacert/--cert/--key for https) or --via-ssh NODE"));
        };
        if endpoint.contains(',') {
            return Err(usage(format!(
                "--endpoint '{endpoint}': give one member's URL; a snapshot is taken from a single member"
            )));
        }
        let tls = match (&args.cacert, &args.cert, &args.key) {
            (Some(ca), Some(cert), Some(key)) => {
                Some(TlsFiles { cacert: ca.clone(), cert: cert.clone(), key: key.clone() })
            }
            _ => None,
        };
        let options = GrpcSnapshotOptions {
            endpoint,
            tls,
            connect_timeout: args.ssh.connect_timeout(),
            timeout: args.ssh.timeout(),
        };
        exit::block_on(etcd::snapshot_grpc(&options, &args.dir, &args.cluster, taken_at)).map_err(etcd_failure)?
    };
    let (path, meta) = match &args.label {
        Some(label) => etcd::apply_label(&result.0, &result.1, label).map_err(etcd_failure)?,
        None => result,
    };
    emit(args.output.output, "EtcdSnapshot", &meta, || {
        format!(
            "snapshot  {}\nmetadata  {}\nsha256    {}\nsize      {} bytes\nrevision  {}\nkeys      {}\netcd      {}\nfrom      {}\ntaken at  {}\n",
            path.display(),
            SnapshotMetadata::path_for(&path).display(),
            meta.sha256,
            meta.size_bytes,
            meta.revision,
            meta.total_keys,
            meta.etcd_version.as_deref().unwrap_or("unknown"),
            meta.endpoint,
            meta.taken_at
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // A file that is not there is a wrong argument (exit 2), not a snapshot that failed its checks.
    if !args.file.is_file() {
        let what = if args.file.exists() { "is not a regular file" } else { "does not exist" };
        return Err(usage(format!(
            "{} {what}: pass the .db file written by `stepstone etcd backup` (its metadata sits beside it as FILE.json)",
            args.file.display()
        )));
    }
    let max_age = if args.any_age { None } else { Some(args.max_age) };
    let report = etcd::verify(
        &args.file,
        &VerifyOptions {
            metadata: args.metadata,
            max_age,
            now: jiff::Timestamp::now(),
            external_tool: !args.no_etcd_tool,
            label: args.label,
        },
    );
    emit(args.output.output, "EtcdSnapshotVerification", &report, || render_verify(&report))?;
    if report.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        let failed: Vec<&str> =
            report.checks.iter().filter(|c| c.status == CheckStatus::Fail).map(|c| c.name.as_str()).collect();
        Err(Failure(format!("{}: the snapshot failed verification ({})", report.file, failed.join(", "))).into())
    }
}

fn render_verify(report: &VerifyReport) -> String {
    let mut t = Table::new(["CHECK", "RESULT", "DETAIL"]);
    for c in &report.checks {
        let status = match c.status {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skipped => "skipped",
        };
        t.row([c.name.clone(), status.to_string(), c.detail.clone()]);
    }
    format!("{}\n{}{}\n", report.file, t.render(), if report.ok { "\nThe snapshot is sound." } else { "" })
}

fn parse_member(spec: &str) -> anyhow::Result<RestoreMember> {
    let (name, ip) = spec
        .split_once('=')
        .filter(|(n, i)| !n.is_empty() && !i.is_empty())
        .ok_or_else(|| usage(format!("--member '{spec}': write it as NODE=IP, e.g. cp-1=10.0.0.1")))?;
    Ok(RestoreMember::kubeadm(name, ip))
}

fn plan(args: RestorePlanArgs) -> anyhow::Result<ExitCode> {
    let meta_path = args.metadata.clone().unwrap_or_else(|| SnapshotMetadata::path_for(&args.file));
    let meta = etcd::read_metadata(&meta_path).map_err(|e| usage(e.to_string()))?;
    let members: Vec<RestoreMember> = if args.member.is_empty() {
        let inv = args.source.load()?;
        let mut cps: Vec<_> = inv.control_plane_nodes().collect();
        cps.sort_by(|a, b| a.name.cmp(&b.name));
        if cps.is_empty() {
            return Err(usage(format!("{} has no control-plane nodes; name them with --member NODE=IP", inv.source)));
        }
        cps.iter()
            .map(|n| match &n.internal_ip {
                Some(ip) => Ok(RestoreMember::kubeadm(&n.name, ip)),
                None => Err(usage(format!(
                    "control-plane node {} has no InternalIP in {}; give the members with --member NODE=IP",
                    n.name, inv.source
                ))),
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        args.member.iter().map(|m| parse_member(m)).collect::<anyhow::Result<_>>()?
    };
    let shown = absolute(&args.file);
    let plan = restore_plan(&meta, &shown, &members, &RestoreOptions::default());
    emit(args.output.output, "EtcdRestorePlan", &plan, || plan.to_text())?;
    Ok(ExitCode::SUCCESS)
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

//! etcd snapshots: take one (over the v3 gRPC API, or with `etcdctl` on a control-plane node over
//! SSH), record its metadata beside it, verify it later, and gate control-plane steps on a fresh,
//! sound snapshot. The restore procedure lives in [`restore`].
//!
//! Files: `etcd-<cluster>-<UTC timestamp>.db` and `etcd-<cluster>-<UTC timestamp>.db.json`.

pub mod bbolt;
pub mod restore;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::node::{NodeError, NodeOps, NodeTarget, RemoteCommand, shell_quote};
use bbolt::{BoltError, DbStatus};

pub use stepstone_core::etcd_backup::{METADATA_KIND, SnapshotMetadata, check_label};

/// Read the metadata file at `path` (see [`SnapshotMetadata::path_for`]).
pub fn read_metadata(path: &Path) -> Result<SnapshotMetadata, EtcdError> {
    let bad = |detail: String| EtcdError::Metadata { path: path.display().to_string(), detail };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    SnapshotMetadata::from_json(&text).map_err(bad)
}

/// What can go wrong taking or reading a snapshot. Each message names the input and the fix.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error(
        "{path}: cannot read the TLS file: {detail}. Pass readable --cacert/--cert/--key files (kubeadm: /etc/kubernetes/pki/etcd/)"
    )]
    TlsFile { path: String, detail: String },
    #[error(
        "cannot connect to etcd at {endpoint}: {detail}. Check the URL (https:// for kubeadm's etcd), the port (2379) and the client certificates"
    )]
    Connect { endpoint: String, detail: String },
    #[error("etcd at {endpoint} failed while streaming the snapshot: {detail}")]
    Stream { endpoint: String, detail: String },
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{node}: taking the snapshot with etcdctl failed (exit {status}): {detail}")]
    Remote { node: String, status: String, detail: String },
    #[error("{path}: not a sound etcd snapshot: {source}")]
    Bolt { path: String, source: BoltError },
    #[error(
        "{path}: cannot read the snapshot metadata: {detail}. It is written by `stepstone etcd backup` beside the .db file"
    )]
    Metadata { path: String, detail: String },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> EtcdError + '_ {
    move |e| EtcdError::Io { path: path.display().to_string(), detail: e.to_string() }
}

/// `etcd-<cluster>-20260822T101500Z.db`; characters outside `[A-Za-z0-9._-]` become `-`.
pub fn snapshot_file_name(cluster: &str, taken_at: Timestamp) -> String {
    stepstone_core::etcd_backup::snapshot_file_name(cluster, None, taken_at)
}

/// Make `dir` ready to receive snapshots: created with mode 0700 (parents too) when missing.
/// An existing directory is used as it is; the files themselves are always 0600.
pub fn prepare_snapshot_dir(dir: &Path) -> Result<(), EtcdError> {
    crate::private::create_dir_all(dir).map_err(|e| EtcdError::Io {
        path: dir.display().to_string(),
        detail: format!("cannot create the snapshot directory: {e}; pass --dir with a directory you can write"),
    })
}

/// Give a snapshot just taken its label: recorded in the metadata and put in the file name
/// (`etcd-<cluster>-<label>-<time>.db`), so that a listing finds the snapshot of one step.
pub fn apply_label(
    path: &Path,
    meta: &SnapshotMetadata,
    label: &str,
) -> Result<(PathBuf, SnapshotMetadata), EtcdError> {
    check_label(label).map_err(|detail| EtcdError::Io { path: path.display().to_string(), detail })?;
    let stamp = format!("-{}.db", meta.taken_at.strftime("%Y%m%dT%H%M%SZ"));
    let name = meta.file.strip_suffix(&stamp).map(|base| format!("{base}-{label}{stamp}"));
    let name = name.unwrap_or_else(|| format!("{}-{label}.db", meta.file.trim_end_matches(".db")));
    let labelled = path.with_file_name(&name);
    let meta = SnapshotMetadata { file: name, label: Some(label.to_string()), ..meta.clone() };
    std::fs::rename(path, &labelled).map_err(io_err(&labelled))?;
    write_metadata(&labelled, &meta)?;
    let old = SnapshotMetadata::path_for(path);
    std::fs::remove_file(&old).map_err(io_err(&old))?;
    Ok((labelled, meta))
}

/// Client certificate files for etcd's mTLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cacert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How to reach etcd's client API from here.
#[derive(Debug, Clone)]
pub struct GrpcSnapshotOptions {
    /// The member to stream from (one endpoint: a snapshot is one member's view).
    pub endpoint: String,
    pub tls: Option<TlsFiles>,
    pub connect_timeout: Duration,
    /// Limit for the whole stream.
    pub timeout: Duration,
}

fn read_file(path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|e| EtcdError::TlsFile { path: path.display().to_string(), detail: e.to_string() })
}

/// Stream a snapshot over the v3 API into `dir`, then check it and write its metadata.
pub async fn snapshot_grpc(
    options: &GrpcSnapshotOptions,
    dir: &Path,
    cluster: &str,
    taken_at: Timestamp,
) -> Result<(PathBuf, SnapshotMetadata), EtcdError> {
    let endpoint = options.endpoint.clone();
    let connect_err = |detail: String| EtcdError::Connect { endpoint: endpoint.clone(), detail };
    let mut connect =
        etcd_client::ConnectOptions::new().with_connect_timeout(options.connect_timeout).with_timeout(options.timeout);
    if let Some(tls) = &options.tls {
        let ca = etcd_client::Certificate::from_pem(read_file(&tls.cacert)?);
        let identity = etcd_client::Identity::from_pem(read_file(&tls.cert)?, read_file(&tls.key)?);
        connect = connect.with_tls(etcd_client::TlsOptions::new().ca_certificate(ca).identity(identity));
    } else if endpoint.starts_with("https://") {
        return Err(connect_err("an https:// endpoint needs --cacert, --cert and --key".into()));
    }
    let mut client = etcd_client::Client::connect([endpoint.as_str()], Some(connect))
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let version = client.status().await.map_err(|e| connect_err(e.to_string()))?.version().to_string();

    let name = snapshot_file_name(cluster, taken_at);
    let final_path = dir.join(&name);
    let partial = dir.join(format!("{name}.partial"));
    let stream_err = |detail: String| EtcdError::Stream { endpoint: endpoint.clone(), detail };
    let mut file = tokio::fs::File::from_std(crate::private::create_file(&partial).map_err(io_err(&partial))?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let streamed = tokio::time::timeout(options.timeout, async {
        let mut stream = client.snapshot().await.map_err(|e| stream_err(e.to_string()))?;
        while let Some(chunk) = stream.message().await.map_err(|e| stream_err(e.to_string()))? {
            let blob = chunk.blob();
            hasher.update(blob);
            size += blob.len() as u64;
            file.write_all(blob).await.map_err(io_err(&partial))?;
        }
        Ok::<(), EtcdError>(())
    })
    .await;
    let result = match streamed {
        Err(_) => Err(stream_err(format!("no end of stream within {}s (raise --timeout)", options.timeout.as_secs()))),
        Ok(r) => r,
    };
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    file.sync_all().await.map_err(io_err(&partial))?;
    drop(file);
    let meta = finish(
        &partial,
        &final_path,
        FinishInfo {
            cluster,
            sha256: hex::encode(hasher.finalize()),
            size,
            etcd_version: Some(version),
            endpoint: endpoint.clone(),
            method: "grpc",
            taken_at,
        },
    )?;
    Ok((final_path, meta))
}

struct FinishInfo<'a> {
    cluster: &'a str,
    sha256: String,
    size: u64,
    etcd_version: Option<String>,
    endpoint: String,
    method: &'static str,
    taken_at: Timestamp,
}

/// Check the downloaded file, move it into place and write its metadata beside it.
fn finish(partial: &Path, final_path: &Path, info: FinishInfo<'_>) -> Result<SnapshotMetadata, EtcdError> {
    let status = match bbolt::inspect(partial) {
        Ok(s) => s,
        Err(source) => {
            let _ = std::fs::remove_file(partial);
            return Err(EtcdError::Bolt { path: partial.display().to_string(), source });
        }
    };
    std::fs::rename(partial, final_path).map_err(io_err(final_path))?;
    let meta = SnapshotMetadata {
        api_version: stepstone_core::API_VERSION.to_string(),
        kind: METADATA_KIND.to_string(),
        file: final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        cluster: info.cluster.to_string(),
        sha256: info.sha256,
        size_bytes: info.size,
        revision: status.revision,
        total_keys: status.total_keys,
        hash: status.hash,
        etcd_version: info.etcd_version,
        endpoint: info.endpoint,
        method: info.method.to_string(),
        taken_at: info.taken_at,
        label: None,
    };
    write_metadata(final_path, &meta)?;
    Ok(meta)
}

fn write_metadata(snapshot: &Path, meta: &SnapshotMetadata) -> Result<(), EtcdError> {
    let path = SnapshotMetadata::path_for(snapshot);
    let tmp = path.with_extension("json.partial");
    let text = serde_json::to_string_pretty(meta).expect("metadata serialises") + "\n";
    let mut f = crate::private::create_file(&tmp).map_err(io_err(&tmp))?;
    f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// How `etcdctl` is called on a control-plane node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEtcdctl {
    /// The member's client URL as seen from the node itself.
    pub endpoint: String,
    /// The CA of etcd's client port, on the node (kubeadm: /etc/kubernetes/pki/etcd/ca.crt).
    pub cacert: String,
    /// A client certificate etcd accepts, and its key, on the node (kubeadm, stacked: the
    /// member's own /etc/kubernetes/pki/etcd/server.crt; external: the apiserver's
    /// /etc/kubernetes/pki/apiserver-etcd-client.crt).
    pub cert: String,
    pub key: String,
    /// Where the snapshot is written on the node before it is copied back. kubeadm's etcd pod
    /// mounts /var/lib/etcd, so the fallback through `crictl exec` can write there too.
    pub remote_dir: String,
}

impl Default for RemoteEtcdctl {
    fn default() -> Self {
        RemoteEtcdctl {
            endpoint: "https://127.0.0.1:2379".into(),
            cacert: "/etc/kubernetes/pki/etcd/ca.crt".into(),
            cert: "/etc/kubernetes/pki/etcd/server.crt".into(),
            key: "/etc/kubernetes/pki/etcd/server.key".into(),
            remote_dir: "/var/lib/etcd".into(),
        }
    }
}

impl RemoteEtcdctl {
    /// `ca.crt`, `server.crt` and `server.key` in `cert_dir`, as kubeadm lays out a stacked member.
    pub fn with_cert_dir(endpoint: &str, cert_dir: &str, remote_dir: &str) -> Self {
        let d = cert_dir.trim_end_matches('/');
        RemoteEtcdctl {
            endpoint: endpoint.to_string(),
            cacert: format!("{d}/ca.crt"),
            cert: format!("{d}/server.crt"),
            key: format!("{d}/server.key"),
            remote_dir: remote_dir.to_string(),
        }
    }

    /// The script run on the node: `etcdctl snapshot save` (the node's own binary, or the one
    /// inside the running etcd container), then `endpoint status` for the server version.
    pub fn script(&self, remote_file: &str) -> String {
        let mut flags = vec![format!("--endpoints={}", self.endpoint)];
        if self.endpoint.starts_with("https://") {
            flags.push(format!("--cacert={}", self.cacert));
            flags.push(format!("--cert={}", self.cert));
            flags.push(format!("--key={}", self.key));
        }
        let flags = flags.iter().map(|f| shell_quote(f)).collect::<Vec<_>>().join(" ");
        let out = shell_quote(remote_file);
        format!(
            r#"set -u
umask 077
export ETCDCTL_API=3
if command -v etcdctl >/dev/null 2>&1; then
  run() {{ etcdctl "$@"; }}
else
  id=$(crictl ps --name '^etcd$' -q 2>/dev/null | head -n 1)
  if [ -z "$id" ]; then echo "neither etcdctl nor a running etcd container on this node" >&2; exit 3; fi
  run() {{ crictl exec "$id" etcdctl "$@"; }}
fi
run {flags} snapshot save {out} >&2 || exit $?
run {flags} endpoint status -w json || true
"#
        )
    }
}

/// The server version from `etcdctl endpoint status -w json`.
pub fn parse_endpoint_status_version(out: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
    let first = v.as_array()?.first()?;
    first.pointer("/Status/version").and_then(|v| v.as_str()).map(String::from)
}

/// Take a snapshot with `etcdctl` on `node`, copy it back into `dir`, check it, write metadata,
/// and delete the node's copy. `Ok(None)` when the backend only printed the commands.
pub async fn snapshot_via_ssh(
    ops: &dyn NodeOps,
    node: &NodeTarget,
    remote: &RemoteEtcdctl,
    dir: &Path,
    cluster: &str,
    taken_at: Timestamp,
    timeout: Duration,
) -> Result<Option<(PathBuf, SnapshotMetadata)>, EtcdError> {
    let name = snapshot_file_name(cluster, taken_at);
    let remote_file = format!("{}/stepstone-{name}", remote.remote_dir.trim_end_matches('/'));
    // etcdctl writes `<file>.part` and renames it when done: a stopped snapshot leaves the part.
    let leftovers = [remote_file.clone(), format!("{remote_file}.part")];
    let cleanup = RemoteCommand::argv(["rm", "-f", "--", &leftovers[0], &leftovers[1]]);
    let out = match ops.run(node, &RemoteCommand::script(remote.script(&remote_file)), timeout).await {
        Ok(out) => out,
        Err(e) => {
            if let Err(rm) = ops.run(node, &cleanup, timeout).await {
                tracing::warn!("could not remove {remote_file}.part on {}: {rm}", node.name);
            }
            return Err(e.into());
        }
    };
    let final_path = dir.join(&name);
    let partial = dir.join(format!("{name}.partial"));
    if !out.executed {
        ops.fetch_file(node, &remote_file, &partial, timeout).await?;
        ops.run(node, &cleanup, timeout).await?;
        return Ok(None);
    }
    if !out.success() {
        if let Err(rm) = ops.run(node, &cleanup, timeout).await {
            tracing::warn!("could not remove {remote_file}.part on {}: {rm}", node.name);
        }
        let detail = out.stderr.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("no message").to_string();
        return Err(EtcdError::Remote {
            node: node.name.clone(),
            status: out.status.map_or("signal".into(), |s| s.to_string()),
            detail,
        });
    }
    let version = parse_endpoint_status_version(&out.stdout);
    let fetched = ops.fetch_file(node, &remote_file, &partial, timeout).await;
    // The node's copy goes whatever happened; a failed removal is only worth a warning.
    if let Err(e) = ops.run(node, &cleanup, timeout).await {
        tracing::warn!("could not remove {remote_file} on {}: {e}", node.name);
    }
    let size = fetched?;
    let sha256 = sha256_file(&partial)?;
    let meta = finish(
        &partial,
        &final_path,
        FinishInfo {
            cluster,
            sha256,
            size,
            etcd_version: version,
            endpoint: format!("ssh://{}/{}", node.name, remote.endpoint),
            method: "ssh-etcdctl",
            taken_at,
        },
    )?;
    Ok(Some((final_path, meta)))
}

/// SHA-256 of a file, hex, read in 64 KiB chunks.
pub fn sha256_file(path: &Path) -> Result<String, EtcdError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Why the freshness gate refused to let a control-plane step start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error(
        "the etcd snapshot {file} was taken at {taken_at}, {age} ago, more than the allowed {max_age}. \
         Take a new one (stepstone etcd backup) right before the control-plane step"
    )]
    TooOld { file: String, taken_at: Timestamp, age: String, max_age: String },
    #[error(
        "the etcd snapshot {file} claims to be taken at {taken_at}, after now ({now}): check this machine's clock and the metadata"
    )]
    FromTheFuture { file: String, taken_at: Timestamp, now: Timestamp },
}

/// Allow a control-plane step only when the snapshot is younger than `max_age` at `now`.
/// (A small clock difference of up to one minute into the future is tolerated.)
pub fn freshness_gate(meta: &SnapshotMetadata, now: Timestamp, max_age: Duration) -> Result<(), GateError> {
    let age = meta.taken_at.duration_until(now);
    if age < jiff::SignedDuration::from_secs(-60) {
        return Err(GateError::FromTheFuture { file: meta.file.clone(), taken_at: meta.taken_at, now });
    }
    let max = jiff::SignedDuration::try_from(max_age).unwrap_or(jiff::SignedDuration::MAX);
    if age > max {
        return Err(GateError::TooOld {
            file: meta.file.clone(),
            taken_at: meta.taken_at,
            age: human_duration(age),
            max_age: human_duration(max),
        });
    }
    Ok(())
}

/// `1h 5m`, `42s`: whole seconds, largest units first.
pub fn human_duration(d: jiff::SignedDuration) -> String {
    let mut secs = d.as_secs().max(0);
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if parts.is_empty() { "0s".into() } else { parts.join(" ") }
}

/// The outcome of one verification step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyCheck {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
}

/// What `stepstone etcd verify` found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub file: String,
    pub ok: bool,
    pub checks: Vec<VerifyCheck>,
    pub metadata: Option<SnapshotMetadata>,
    pub status: Option<DbStatus>,
}

/// How verification runs.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Metadata file (default: beside the snapshot).
    pub metadata: Option<PathBuf>,
    /// Fail when older than this (the freshness gate); `None` skips the age check.
    pub max_age: Option<Duration>,
    pub now: Timestamp,
    /// Also ask `etcdutl`/`etcdctl snapshot status` when one is on PATH.
    pub external_tool: bool,
    /// Fail unless the metadata carries this label (the snapshot of one step, not just any).
    pub label: Option<String>,
}

/// Check a snapshot: metadata, size, SHA-256, the file's own structure, etcd's own tool, age.
pub fn verify(snapshot: &Path, options: &VerifyOptions) -> VerifyReport {
    let mut checks = Vec::new();
    let mut add = |name: &str, status: CheckStatus, detail: String| {
        checks.push(VerifyCheck { name: name.to_string(), status, detail })
    };
    let file = snapshot.display().to_string();
    let size = match std::fs::metadata(snapshot) {
        Ok(m) => m.len(),
        Err(e) => {
            add("file", CheckStatus::Fail, format!("cannot read {file}: {e}"));
            return VerifyReport { file, ok: false, checks, metadata: None, status: None };
        }
    };
    let meta_path = options.metadata.clone().unwrap_or_else(|| SnapshotMetadata::path_for(snapshot));
    let metadata = match read_metadata(&meta_path) {
        Ok(m) => {
            add(
                "metadata",
                CheckStatus::Pass,
                format!("{} (taken {} from {})", meta_path.display(), m.taken_at, m.endpoint),
            );
            Some(m)
        }
        Err(e) => {
            add("metadata", CheckStatus::Fail, e.to_string());
            None
        }
    };
    if let (Some(want), Some(m)) = (&options.label, &metadata) {
        match &m.label {
            Some(l) if l == want => add("label", CheckStatus::Pass, l.clone()),
            other => add(
                "label",
                CheckStatus::Fail,
                format!(
                    "the metadata says {}, not '{want}': this is not the snapshot of that step; list the others with ls",
                    other.as_deref().map_or("no label".to_string(), |l| format!("'{l}'"))
                ),
            ),
        }
    }
    if let Some(m) = &metadata {
        if m.size_bytes == size {
            add("size", CheckStatus::Pass, format!("{size} bytes"));
        } else {
            add(
                "size",
                CheckStatus::Fail,
                format!("{size} bytes on disk, {} recorded: the file was truncated or replaced", m.size_bytes),
            );
        }
        match sha256_file(snapshot) {
            Ok(sum) if sum == m.sha256 => add("sha256", CheckStatus::Pass, sum),
            Ok(sum) => add(
                "sha256",
                CheckStatus::Fail,
                format!("{sum} on disk, {} recorded: the file changed after it was taken", m.sha256),
            ),
            Err(e) => add("sha256", CheckStatus::Fail, e.to_string()),
        }
    } else {
        add("sha256", CheckStatus::Skipped, "no metadata to compare with".into());
    }
    let status = match bbolt::inspect(snapshot) {
        Ok(s) => {
            let trailer = if s.sha256_trailer { ", etcd's SHA-256 trailer matches" } else { ", no SHA-256 trailer" };
            add(
                "structure",
                CheckStatus::Pass,
                format!(
                    "bbolt database: revision {}, {} keys, {} bytes{trailer}",
                    s.revision, s.total_keys, s.total_size
                ),
            );
            if let Some(m) = &metadata {
                if (m.revision, m.total_keys, m.hash) == (s.revision, s.total_keys, s.hash) {
                    add(
                        "contents",
                        CheckStatus::Pass,
                        format!("revision {}, keys {}, hash {:08x} as recorded", s.revision, s.total_keys, s.hash),
                    );
                } else {
                    add(
                        "contents",
                        CheckStatus::Fail,
                        format!(
                            "revision {}, keys {}, hash {:08x}; recorded revision {}, keys {}, hash {:08x}",
                            s.revision, s.total_keys, s.hash, m.revision, m.total_keys, m.hash
                        ),
                    );
                }
            }
            Some(s)
        }
        Err(e) => {
            add("structure", CheckStatus::Fail, e.to_string());
            None
        }
    };
    if options.external_tool {
        let (st, detail) = external_status(snapshot, status.as_ref());
        add("etcd-tool", st, detail);
    }
    match (options.max_age, &metadata) {
        (None, _) => add("age", CheckStatus::Skipped, "no --max-age given".into()),
        (Some(_), None) => add("age", CheckStatus::Fail, "no metadata, so the snapshot's age is unknown".into()),
        (Some(max), Some(m)) => match freshness_gate(m, options.now, max) {
            Ok(()) => add(
                "age",
                CheckStatus::Pass,
                format!(
                    "taken {} ago (limit {})",
                    human_duration(m.taken_at.duration_until(options.now)),
                    human_duration(jiff::SignedDuration::try_from(max).unwrap_or(jiff::SignedDuration::MAX))
                ),
            ),
            Err(e) => add("age", CheckStatus::Fail, e.to_string()),
        },
    }
    let ok = checks.iter().all(|c| c.status != CheckStatus::Fail);
    VerifyReport { file, ok, checks, metadata, status }
}

/// Find `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Ask etcd's own tool (`etcdutl`, else `etcdctl` up to 3.5) for the snapshot status and compare.
fn external_status(snapshot: &Path, ours: Option<&DbStatus>) -> (CheckStatus, String) {
    let tool = ["etcdutl", "etcdctl"].into_iter().find_map(|t| find_on_path(t).map(|p| (t, p)));
    let Some((name, program)) = tool else {
        return (CheckStatus::Skipped, "neither etcdutl nor etcdctl is on PATH (Debian package etcd-client)".into());
    };
    let mut child = match std::process::Command::new(&program)
        .args(["snapshot", "status", "-w", "json"])
        .arg(snapshot)
        .env("ETCDCTL_API", "3")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (CheckStatus::Skipped, format!("{name} did not start: {e}")),
    };
    // A damaged file can make bbolt spin; do not wait forever for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return (CheckStatus::Fail, format!("{name} snapshot status did not finish within 60s"));
            }
        }
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return (CheckStatus::Skipped, format!("{name}: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("unknown command") || stderr.contains("deprecated") && stderr.contains("etcdutl") {
            return (CheckStatus::Skipped, format!("{name} has no `snapshot status` (etcd 3.6+: install etcdutl)"));
        }
        let line = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("goroutine"))
            .unwrap_or("no message");
        return (CheckStatus::Fail, format!("{name} snapshot status rejects the file: {line}"));
    }
    let json: serde_json::Value = match stdout.lines().rev().find_map(|l| serde_json::from_str(l.trim()).ok()) {
        Some(v) => v,
        None => return (CheckStatus::Fail, format!("{name} printed no JSON status: {}", stdout.trim())),
    };
    let get = |k: &str| json.get(k).and_then(serde_json::Value::as_i64).unwrap_or(-1);
    let (rev, keys, hash) = (get("revision"), get("totalKey"), get("hash"));
    match ours {
        Some(s) if (rev, keys, hash) == (s.revision, s.total_keys as i64, i64::from(s.hash)) => {
            (CheckStatus::Pass, format!("{name} snapshot status agrees: revision {rev}, {keys} keys, hash {hash:08x}"))
        }
        Some(s) => (
            CheckStatus::Fail,
            format!(
                "{name} snapshot status says revision {rev}, {keys} keys, hash {hash:08x}; the file reads revision {}, {} keys, hash {:08x}",
                s.revision, s.total_keys, s.hash
            ),
        ),
        // Our reader rejected the file; the tool reading something is no proof of health,
        // but a revision of 0 means it found no key history at all.
        None if rev <= 0 => (CheckStatus::Fail, format!("{name} snapshot status finds no revision ({keys} keys)")),
        None => (CheckStatus::Pass, format!("{name} snapshot status reads revision {rev}, {keys} keys")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(taken_at: &str) -> SnapshotMetadata {
        SnapshotMetadata {
            api_version: stepstone_core::API_VERSION.into(),
            kind: METADATA_KIND.into(),
            file: "etcd-prod-20260822T100000Z.db".into(),
            cluster: "prod".into(),
            sha256: "00".into(),
            size_bytes: 1,
            revision: 1,
            total_keys: 1,
            hash: 0,
            etcd_version: None,
            endpoint: "https://10.0.0.1:2379".into(),
            method: "grpc".into(),
            taken_at: taken_at.parse().unwrap(),
            label: None,
        }
    }

    #[test]
    fn the_gate_passes_fresh_snapshots_only() {
        let m = meta("2026-08-22T10:00:00Z");
        let hour = Duration::from_secs(3600);
        assert_eq!(freshness_gate(&m, "2026-08-22T10:59:59Z".parse().unwrap(), hour), Ok(()));
        let err = freshness_gate(&m, "2026-08-22T11:05:00Z".parse().unwrap(), hour).unwrap_err();
        assert!(matches!(err, GateError::TooOld { .. }));
        assert!(err.to_string().contains("1h 5m ago, more than the allowed 1h"), "{err}");
        assert_eq!(freshness_gate(&m, "2026-08-22T09:59:30Z".parse().unwrap(), hour), Ok(()), "small skew tolerated");
        let future = freshness_gate(&m, "2026-08-22T09:00:00Z".parse().unwrap(), hour).unwrap_err();
        assert!(matches!(future, GateError::FromTheFuture { .. }));
    }

    #[test]
    fn durations_print() {
        assert_eq!(human_duration(jiff::SignedDuration::from_secs(90061)), "1d 1h 1m 1s");
    }

    #[test]
    fn file_names_are_safe_and_sortable() {
        let t: Timestamp = "2026-08-22T10:15:00Z".parse().unwrap();
        assert_eq!(snapshot_file_name("prod/eu west", t), "etcd-prod-eu-west-20260822T101500Z.db");
        assert_eq!(
            SnapshotMetadata::path_for(Path::new("/b/etcd-x-20260822T101500Z.db")),
            PathBuf::from("/b/etcd-x-20260822T101500Z.db.json")
        );
    }

    #[test]
    fn the_remote_script_uses_the_nodes_certificates() {
        let s = RemoteEtcdctl::default().script("/var/lib/etcd/stepstone-etcd-x.db");
        assert!(s.contains("--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key"));
        assert!(s.contains("snapshot save /var/lib/etcd/stepstone-etcd-x.db"));
        let plain = RemoteEtcdctl { endpoint: "http://127.0.0.1:2379".into(), ..RemoteEtcdctl::default() };
        assert!(!plain.script("/tmp/x.db").contains("--cacert"));
        let status = std::process::Command::new("sh").args(["-n", "-c", &s]).status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn endpoint_status_json_gives_the_server_version() {
        let out = r#"[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":1,"member_id":2,"revision":5,"raft_term":2},"version":"3.5.16","dbSize":20480,"leader":2,"raftIndex":9,"raftTerm":2}}]"#;
        assert_eq!(parse_endpoint_status_version(out).as_deref(), Some("3.5.16"));
        assert_eq!(parse_endpoint_status_version("Error: context deadline exceeded"), None);
    }
}

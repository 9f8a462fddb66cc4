//! `NodeOps` over the system OpenSSH client: the operator's `~/.ssh/config`, agent, ProxyJump and
//! known_hosts all apply, because stepstone runs the same `ssh` binary they do.
//!
//! Safety choices: `BatchMode=yes` (never prompt), host keys always checked (`yes`, or
//! `accept-new` only behind a loudly named flag; never `no`), `sudo -n` when the remote user is
//! not root, a global limit on concurrent sessions, and a per-node log of every command and its
//! output (no environment and no key material is ever written there).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::node::{BoxFuture, CommandOutput, NodeError, NodeOps, NodeTarget, RemoteCommand, shell_quote};

/// How unknown or changed host keys are treated. There is deliberately no "off" setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// `StrictHostKeyChecking=yes`: the key must already be in known_hosts.
    #[default]
    Strict,
    /// `StrictHostKeyChecking=accept-new`: first-seen keys are recorded; changed keys are still refused.
    AcceptNew,
}

/// When commands are wrapped in `sudo -n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SudoMode {
    /// Decided on the node: `sudo -n` unless the login user is already root.
    #[default]
    Auto,
    /// Never: the commands run as the login user.
    Never,
}

/// Everything the SSH backend needs; every field maps to one `ssh` option.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// The client binary (default `ssh` from PATH).
    pub program: PathBuf,
    /// `-F FILE`: an ssh config used instead of `~/.ssh/config`.
    pub config_file: Option<PathBuf>,
    /// `-l USER`.
    pub user: Option<String>,
    /// `-p PORT`.
    pub port: Option<u16>,
    /// `-i FILE`.
    pub identity: Option<PathBuf>,
    /// `-o UserKnownHostsFile=FILE`.
    pub known_hosts: Option<PathBuf>,
    pub host_keys: HostKeyPolicy,
    /// `-o ConnectTimeout=N` (whole seconds, at least 1).
    pub connect_timeout: Duration,
    /// How many SSH sessions may run at once across all nodes.
    pub concurrency: usize,
    pub sudo: SudoMode,
    /// Directory for per-node logs (`<node>.log`); `None` keeps no log.
    pub log_dir: Option<PathBuf>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            program: PathBuf::from("ssh"),
            config_file: None,
            user: None,
            port: None,
            identity: None,
            known_hosts: None,
            host_keys: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            concurrency: 10,
            sudo: SudoMode::Auto,
            log_dir: None,
        }
    }
}

impl SshOptions {
    /// The `ssh` arguments for running `remote` on `node` (without the program name).
    pub fn ssh_args(&self, node: &NodeTarget, remote: &str) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        if let Some(f) = &self.config_file {
            args.extend(["-F".to_string(), f.display().to_string()]);
        }
        let strict = match self.host_keys {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
        };
        let connect = self.connect_timeout.as_secs().max(1);
        for opt in [
            "BatchMode=yes".to_string(),
            format!("StrictHostKeyChecking={strict}"),
            format!("ConnectTimeout={connect}"),
            "ServerAliveInterval=15".to_string(),
            "ServerAliveCountMax=3".to_string(),
        ] {
            args.extend(["-o".to_string(), opt]);
        }
        if let Some(k) = &self.known_hosts {
            args.extend(["-o".to_string(), format!("UserKnownHostsFile={}", k.display())]);
        }
        if let Some(p) = self.port {
            args.extend(["-p".to_string(), p.to_string()]);
        }
        if let Some(i) = &self.identity {
            args.extend(["-i".to_string(), i.display().to_string()]);
        }
        if let Some(u) = &self.user {
            args.extend(["-l".to_string(), u.clone()]);
        }
        args.extend(["-T".to_string(), "--".to_string(), node.address.clone(), remote.to_string()]);
        args
    }

    /// The command line the remote shell receives: `sh -c '…'`, with `sudo -n` decided on the node.
    pub fn remote_command_line(&self, command: &RemoteCommand) -> String {
        self.command_line(command, None)
    }

    /// As [`Self::remote_command_line`], bounded on the node too: coreutils `timeout` runs the
    /// command in its own process group and kills the whole group when `timeout` has passed
    /// (TERM, then KILL 5s later). Killing the local `ssh` alone leaves the remote command
    /// running, reparented to init.
    pub fn bounded_command_line(&self, command: &RemoteCommand, timeout: Duration) -> String {
        self.command_line(command, Some(timeout))
    }

    fn command_line(&self, command: &RemoteCommand, timeout: Option<Duration>) -> String {
        let program = match command {
            RemoteCommand::Argv { argv } => argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "),
            RemoteCommand::Script { .. } => "sh -s".to_string(),
        };
        let program = match timeout {
            Some(t) => format!("timeout -k {REMOTE_KILL_GRACE_SECS} {} {program}", t.as_secs().max(1)),
            None => program,
        };
        let inner = match self.sudo {
            SudoMode::Never => format!("exec {program}"),
            SudoMode::Auto => {
                format!("if [ \"$(id -u)\" -eq 0 ]; then exec {program}; else exec sudo -n {program}; fi")
            }
        };
        format!("sh -c {}", shell_quote(&inner))
    }
}

/// Seconds between the remote TERM and KILL when a bounded command overruns.
const REMOTE_KILL_GRACE_SECS: u64 = 5;

/// coreutils `timeout`'s exit status when it stopped the command (124), or KILLed it (137).
fn stopped_by_remote_timeout(status: Option<i32>) -> bool {
    matches!(status, Some(124) | Some(137))
}

/// The SSH backend. Cheap to clone; clones share the concurrency limit.
#[derive(Debug, Clone)]
pub struct SshNodeOps {
    options: Arc<SshOptions>,
    permits: Arc<Semaphore>,
}

impl SshNodeOps {
    pub fn new(options: SshOptions) -> Self {
        let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
        SshNodeOps { options: Arc::new(options), permits }
    }

    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    fn command(&self, node: &NodeTarget, remote: &str) -> Command {
        let mut cmd = Command::new(&self.options.program);
        cmd.args(self.options.ssh_args(node, remote))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    fn log(&self, node: &NodeTarget, entry: &str) {
        let Some(dir) = &self.options.log_dir else { return };
        if let Err(e) = append_log(dir, &node.name, entry) {
            tracing::warn!("cannot write the log for {}: {e}", node.name);
        }
    }

    async fn run_inner(
        &self,
        node: &NodeTarget,
        command: &RemoteCommand,
        timeout: Duration,
    ) -> Result<CommandOutput, NodeError> {
        check_address(node)?;
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let remote = self.options.bounded_command_line(command, timeout);
        let started = Instant::now();
        let mut child = self.command(node, &remote).spawn().map_err(|e| NodeError::Spawn {
            node: node.name.clone(),
            program: self.options.program.display().to_string(),
            detail: e.to_string(),
        })?;
        let stdin_data = match command {
            RemoteCommand::Script { script } => script.clone().into_bytes(),
            RemoteCommand::Argv { .. } => Vec::new(),
        };
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let feed = async move {
            // A node that closes stdin early (refused connection) is reported through the exit
            // status, not as a write error.
            let _ = stdin.write_all(&stdin_data).await;
            drop(stdin);
        };
        let waited = tokio::time::timeout(timeout, async {
            let (_, out) = tokio::join!(feed, child.wait_with_output());
            out
        })
        .await;
        let elapsed = started.elapsed();
        let output = match waited {
            Err(_) => {
                self.log(
                    node,
                    &format!("$ {}\n--- stopped after {}s (timeout)\n", command.describe(), timeout.as_secs()),
                );
                return Err(NodeError::Timeout {
                    node: node.name.clone(),
                    address: node.address.clone(),
                    seconds: timeout.as_secs(),
                });
            }
            Ok(Err(e)) => {
                return Err(NodeError::Ssh { node: node.name.clone(), detail: e.to_string() });
            }
            Ok(Ok(o)) => o,
        };
        if stopped_by_remote_timeout(output.status.code()) {
            self.log(
                node,
                &format!("$ {}\n--- stopped on the node after {}s (timeout)\n", command.describe(), timeout.as_secs()),
            );
            return Err(NodeError::Timeout {
                node: node.name.clone(),
                address: node.address.clone(),
                seconds: timeout.as_secs(),
            });
        }
        let out = CommandOutput {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            executed: true,
        };
        self.log(
            node,
            &format!(
                "$ {}\n--- exit {} after {:.2}s\n--- stdout\n{}\n--- stderr\n{}\n",
                command.describe(),
                out.status.map_or("signal".to_string(), |s| s.to_string()),
                elapsed.as_secs_f64(),
                out.stdout.trim_end(),
                out.stderr.trim_end()
            ),
        );
        classify(node, &self.options, out)
    }

    async fn fetch_inner(
        &self,
        node: &NodeTarget,
        remote_path: &str,
        local_path: &Path,
        timeout: Duration,
    ) -> Result<u64, NodeError> {
        check_address(node)?;
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let command = RemoteCommand::argv(["cat", "--", remote_path]);
        let remote = self.options.bounded_command_line(&command, timeout);
        let mut child = self.command(node, &remote).spawn().map_err(|e| NodeError::Spawn {
            node: node.name.clone(),
            program: self.options.program.display().to_string(),
            detail: e.to_string(),
        })?;
        drop(child.stdin.take());
        let local_err = |e: std::io::Error| NodeError::LocalIo {
            node: node.name.clone(),
            path: local_path.display().to_string(),
            detail: e.to_string(),
        };
        // Whatever is fetched from a node (an etcd snapshot, a kubeconfig) may hold secrets.
        let mut file = tokio::fs::File::from_std(crate::private::create_file(local_path).map_err(local_err)?);
        // Whatever goes wrong from here, no half-copied file stays behind.
        let result = self.copy_out(node, &command, remote_path, local_path, timeout, &mut child, &mut file).await;
        drop(file);
        if result.is_err() {
            let _ = std::fs::remove_file(local_path);
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_out(
        &self,
        node: &NodeTarget,
        command: &RemoteCommand,
        remote_path: &str,
        local_path: &Path,
        timeout: Duration,
        child: &mut tokio::process::Child,
        file: &mut tokio::fs::File,
    ) -> Result<u64, NodeError> {
        let local_err = |e: std::io::Error| NodeError::LocalIo {
            node: node.name.clone(),
            path: local_path.display().to_string(),
            detail: e.to_string(),
        };
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let copied = tokio::time::timeout(timeout, async {
            let mut err_buf = Vec::new();
            let (copied, _) = tokio::join!(
                tokio::io::copy(&mut stdout, file),
                tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut err_buf)
            );
            let status = child.wait().await;
            (copied, status, err_buf)
        })
        .await;
        let (copied, status, err_buf) = match copied {
            Err(_) => {
                return Err(NodeError::Timeout {
                    node: node.name.clone(),
                    address: node.address.clone(),
                    seconds: timeout.as_secs(),
                });
            }
            Ok(v) => v,
        };
        let bytes = copied.map_err(local_err)?;
        file.flush().await.map_err(local_err)?;
        let status = status.map_err(|e| NodeError::Ssh { node: node.name.clone(), detail: e.to_string() })?;
        if stopped_by_remote_timeout(status.code()) {
            return Err(NodeError::Timeout {
                node: node.name.clone(),
                address: node.address.clone(),
                seconds: timeout.as_secs(),
            });
        }
        let out = CommandOutput {
            status: status.code(),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&err_buf).into_owned(),
            executed: true,
        };
        self.log(
            node,
            &format!(
                "$ {}\n--- copied {bytes} bytes to {}; exit {}\n--- stderr\n{}\n",
                command.describe(),
                local_path.display(),
                out.status.map_or("signal".to_string(), |s| s.to_string()),
                out.stderr.trim_end()
            ),
        );
        let out = classify(node, &self.options, out)?;
        if !out.success() {
            return Err(NodeError::Ssh {
                node: node.name.clone(),
                detail: format!("reading {remote_path} failed: {}", last_line(&out.stderr)),
            });
        }
        Ok(bytes)
    }
}

impl NodeOps for SshNodeOps {
    fn run<'a>(
        &'a self,
        node: &'a NodeTarget,
        command: &'a RemoteCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<CommandOutput, NodeError>> {
        Box::pin(self.run_inner(node, command, timeout))
    }

    fn fetch_file<'a>(
        &'a self,
        node: &'a NodeTarget,
        remote_path: &'a str,
        local_path: &'a Path,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<u64, NodeError>> {
        Box::pin(self.fetch_inner(node, remote_path, local_path, timeout))
    }

    fn backend_name(&self) -> &'static str {
        "ssh"
    }
}

/// An address starting with `-` would be read by `ssh` as an option.
fn check_address(node: &NodeTarget) -> Result<(), NodeError> {
    if node.address.is_empty() || node.address.starts_with('-') {
        return Err(NodeError::Unreachable {
            node: node.name.clone(),
            address: node.address.clone(),
            detail: "the address is empty or starts with '-'".into(),
        });
    }
    Ok(())
}

fn last_line(s: &str) -> String {
    s.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("no message").to_string()
}

/// Turn OpenSSH's own failures (exit status 255 with its messages on stderr) into errors that
/// say what to do; anything else is the remote command's result and passes through.
fn classify(node: &NodeTarget, options: &SshOptions, out: CommandOutput) -> Result<CommandOutput, NodeError> {
    let name = || node.name.clone();
    let address = || node.address.clone();
    if out.status == Some(1) && out.stderr.contains("sudo: a password is required") {
        return Err(NodeError::SudoPassword { node: name() });
    }
    if out.status != Some(255) {
        return Ok(out);
    }
    let err = &out.stderr;
    if err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || err.contains("Host key for") && err.contains("has changed")
    {
        return Err(NodeError::HostKeyChanged { node: name(), address: address() });
    }
    if err.contains("Host key verification failed") || err.contains("host key is known for") {
        return Err(NodeError::HostKeyUnknown { node: name(), address: address() });
    }
    if err.contains("Permission denied") || err.contains("Too many authentication failures") {
        return Err(NodeError::AuthFailed { node: name(), address: address(), detail: last_line(err) });
    }
    let unreachable_markers = [
        "Connection refused",
        "Connection timed out",
        "timed out",
        "No route to host",
        "Network is unreachable",
        "Could not resolve hostname",
        "Name or service not known",
        "Connection closed by",
        "Connection reset",
        "kex_exchange_identification",
    ];
    if unreachable_markers.iter().any(|m| err.contains(m)) {
        let mut detail = last_line(err);
        if detail.contains("timed out") {
            detail = format!("{detail} (ConnectTimeout={}s)", options.connect_timeout.as_secs().max(1));
        }
        return Err(NodeError::Unreachable { node: name(), address: address(), detail });
    }
    if err.trim().is_empty() {
        // The remote command itself exited 255 without a word from ssh.
        return Ok(out);
    }
    Err(NodeError::Ssh { node: name(), detail: last_line(err) })
}

fn append_log(dir: &Path, node: &str, entry: &str) -> std::io::Result<()> {
    crate::private::create_dir_all(dir)?;
    let safe: String =
        node.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    let mut f = crate::private::append_file(&dir.join(format!("{safe}.log")))?;
    let header =
        format!("=== {}\n", jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()));
    f.write_all(format!("{header}{entry}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeTarget {
        NodeTarget::new("cp-1", "10.0.0.1")
    }

    #[test]
    fn defaults_check_host_keys_and_never_prompt() {
        let o = SshOptions::default();
        let args = o.ssh_args(&node(), "true");
        let joined = args.join(" ");
        assert!(joined.contains("-o BatchMode=yes"));
        assert!(joined.contains("-o StrictHostKeyChecking=yes"));
        assert!(joined.contains("-o ConnectTimeout=10"));
        assert!(!joined.contains("StrictHostKeyChecking=no"));
        assert_eq!(&args[args.len() - 3..], ["--", "10.0.0.1", "true"]);
    }

    #[test]
    fn every_flag_maps_to_one_ssh_option() {
        let o = SshOptions {
            config_file: Some("/tmp/cfg".into()),
            user: Some("ops".into()),
            port: Some(2222),
            identity: Some("/tmp/id".into()),
            known_hosts: Some("/tmp/kh".into()),
            host_keys: HostKeyPolicy::AcceptNew,
            connect_timeout: Duration::from_millis(300),
            ..SshOptions::default()
        };
        let joined = o.ssh_args(&node(), "true").join(" ");
        for want in [
            "-F /tmp/cfg",
            "-l ops",
            "-p 2222",
            "-i /tmp/id",
            "UserKnownHostsFile=/tmp/kh",
            "StrictHostKeyChecking=accept-new",
            "ConnectTimeout=1",
        ] {
            assert!(joined.contains(want), "{want} missing from {joined}");
        }
    }

    #[test]
    fn sudo_is_decided_on_the_node() {
        let o = SshOptions::default();
        let line = o.remote_command_line(&RemoteCommand::argv(["cat", "/etc/kubernetes/admin conf"]));
        assert_eq!(
            line,
            r#"sh -c 'if [ "$(id -u)" -eq 0 ]; then exec cat '\''/etc/kubernetes/admin conf'\''; else exec sudo -n cat '\''/etc/kubernetes/admin conf'\''; fi'"#
        );
        let never = SshOptions { sudo: SudoMode::Never, ..SshOptions::default() };
        assert_eq!(never.remote_command_line(&RemoteCommand::script("uname -r")), "sh -c 'exec sh -s'");
    }

    fn failed(stderr: &str) -> CommandOutput {
        CommandOutput { status: Some(255), stderr: stderr.into(), executed: true, ..CommandOutput::default() }
    }

    #[test]
    fn openssh_failures_become_errors_that_say_what_to_do() {
        let o = SshOptions::default();
        let changed =
            "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n";
        assert!(matches!(classify(&node(), &o, failed(changed)), Err(NodeError::HostKeyChanged { .. })));
        let unknown = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.\n";
        assert!(matches!(classify(&node(), &o, failed(unknown)), Err(NodeError::HostKeyUnknown { .. })));
        let refused = "ssh: connect to host 10.0.0.1 port 22: Connection refused\n";
        let e = classify(&node(), &o, failed(refused)).unwrap_err();
        assert!(
            e.to_string().contains("unreachable: ssh: connect to host 10.0.0.1 port 22: Connection refused"),
            "{e}"
        );
        let slow = "ssh: connect to host 10.0.0.1 port 22: Connection timed out\n";
        assert!(classify(&node(), &o, failed(slow)).unwrap_err().to_string().contains("(ConnectTimeout=10s)"));
        let denied = "ops@10.0.0.1: Permission denied (publickey).\n";
        assert!(matches!(classify(&node(), &o, failed(denied)), Err(NodeError::AuthFailed { .. })));
        let sudo = CommandOutput {
            status: Some(1),
            stderr: "sudo: a password is required\n".into(),
            executed: true,
            ..Default::default()
        };
        assert!(matches!(classify(&node(), &o, sudo), Err(NodeError::SudoPassword { .. })));
        let ok = CommandOutput { status: Some(3), stdout: "x".into(), executed: true, ..Default::default() };
        assert_eq!(classify(&node(), &o, ok.clone()).unwrap(), ok);
    }

    #[test]
    fn addresses_that_look_like_options_are_refused() {
        assert!(check_address(&NodeTarget::new("x", "-oProxyCommand=evil")).is_err());
    }
}

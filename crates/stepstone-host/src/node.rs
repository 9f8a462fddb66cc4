//! The `NodeOps` trait: the one way stepstone reaches a server (run a command, fetch a file),
//! plus the shared types every backend speaks and the bounded fan-out across many nodes.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// A boxed future, so `NodeOps` stays object-safe and a backend can be picked at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A server to reach: the name it has in the cluster and the address SSH should dial.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NodeTarget {
    /// The Kubernetes node name (used for logs and messages).
    pub name: String,
    /// What `ssh` connects to: the InternalIP, or the node name when no address is known
    /// (so `Host` blocks in the operator's `~/.ssh/config` can match it).
    pub address: String,
}

impl NodeTarget {
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        NodeTarget { name: name.into(), address: address.into() }
    }

    /// The target for an inventory node: its InternalIP when known, else its name.
    pub fn from_node(node: &stepstone_core::inventory::Node) -> Self {
        let address = node.internal_ip.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| node.name.clone());
        NodeTarget { name: node.name.clone(), address }
    }
}

/// What to run on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum RemoteCommand {
    /// A program and its arguments; each argument is quoted for the remote shell.
    Argv { argv: Vec<String> },
    /// A POSIX `sh` script fed on standard input (nothing of it lands on the command line).
    Script { script: String },
}

impl RemoteCommand {
    pub fn argv<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RemoteCommand::Argv { argv: args.into_iter().map(Into::into).collect() }
    }

    pub fn script(script: impl Into<String>) -> Self {
        RemoteCommand::Script { script: script.into() }
    }

    /// A one-line description for logs and the print backend.
    pub fn describe(&self) -> String {
        match self {
            RemoteCommand::Argv { argv } => argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "),
            RemoteCommand::Script { script } => format!("sh -s <<'EOF'\n{}\nEOF", script.trim_end()),
        }
    }
}

/// Quote `s` for a POSIX shell: plain words stay as they are, everything else is single-quoted.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '@' | '+'));
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// The result of a command that ran (whatever its exit status).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CommandOutput {
    /// The exit status, `None` when the process was killed by a signal.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// False when the backend only printed the command (the `print` backend).
    pub executed: bool,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Why a command could not be run on a node. Each variant says what the operator can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error(
        "{node} ({address}): host key verification failed: the key the server presented does not match known_hosts. \
         If the server was reinstalled, check its new key out of band and update known_hosts (ssh-keygen -R {address}); \
         otherwise treat this as a possible man-in-the-middle"
    )]
    HostKeyChanged { node: String, address: String },
    #[error(
        "{node} ({address}): the server's host key is not in known_hosts and strict checking is on. \
         Add it after checking its fingerprint (ssh-keyscan {address} >> ~/.ssh/known_hosts), \
         or pass --accept-new-host-keys to trust keys seen for the first time"
    )]
    HostKeyUnknown { node: String, address: String },
    #[error(
        "{node} ({address}): SSH authentication failed ({detail}). Check --ssh-user/--identity, \
         the agent (ssh-add -l) and the node's authorized_keys"
    )]
    AuthFailed { node: String, address: String, detail: String },
    #[error(
        "{node} ({address}): unreachable: {detail}. Check the address (InternalIP or node name), \
         --ssh-port, the ssh config and firewalls"
    )]
    Unreachable { node: String, address: String, detail: String },
    #[error(
        "{node} ({address}): no answer within {seconds}s; the command was stopped. Raise --timeout if the node is slow"
    )]
    Timeout { node: String, address: String, seconds: u64 },
    #[error(
        "{node}: `sudo -n` needs a password for this user; allow passwordless sudo for the commands stepstone runs \
         or connect as root (--ssh-user root)"
    )]
    SudoPassword { node: String },
    #[error(
        "{node}: could not start `{program}`: {detail}. Install the OpenSSH client (Debian package openssh-client)"
    )]
    Spawn { node: String, program: String, detail: String },
    #[error("{node}: local file {path}: {detail}")]
    LocalIo { node: String, path: String, detail: String },
    #[error("{node}: SSH failed: {detail}")]
    Ssh { node: String, detail: String },
}

impl NodeError {
    /// A short stable code for findings (`node.host-key-changed`, `node.timeout`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::HostKeyChanged { .. } => "node.host-key-changed",
            NodeError::HostKeyUnknown { .. } => "node.host-key-unknown",
            NodeError::AuthFailed { .. } => "node.auth-failed",
            NodeError::Unreachable { .. } => "node.unreachable",
            NodeError::Timeout { .. } => "node.timeout",
            NodeError::SudoPassword { .. } => "node.sudo-password",
            NodeError::Spawn { .. } => "node.ssh-missing",
            NodeError::LocalIo { .. } => "node.local-io",
            NodeError::Ssh { .. } => "node.ssh-failed",
        }
    }
}

/// One outside system: a server stepstone can run commands on.
///
/// Implementations: [`crate::ssh::SshNodeOps`] (system OpenSSH) and [`crate::print::PrintNodeOps`]
/// (prints what it would run). A backend bounds its own concurrency, so callers may fan out freely.
pub trait NodeOps: Send + Sync {
    /// Run `command` on `node`, giving up after `timeout`. A non-zero exit status is not an
    /// error: it comes back in [`CommandOutput::status`].
    fn run<'a>(
        &'a self,
        node: &'a NodeTarget,
        command: &'a RemoteCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<CommandOutput, NodeError>>;

    /// Copy `remote_path` from the node into `local_path` (streamed, any size) and return the
    /// number of bytes written.
    fn fetch_file<'a>(
        &'a self,
        node: &'a NodeTarget,
        remote_path: &'a str,
        local_path: &'a Path,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<u64, NodeError>>;

    /// A name for messages (`ssh`, `print`).
    fn backend_name(&self) -> &'static str;
}

impl<T: NodeOps + ?Sized> NodeOps for Arc<T> {
    fn run<'a>(
        &'a self,
        node: &'a NodeTarget,
        command: &'a RemoteCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<CommandOutput, NodeError>> {
        (**self).run(node, command, timeout)
    }

    fn fetch_file<'a>(
        &'a self,
        node: &'a NodeTarget,
        remote_path: &'a str,
        local_path: &'a Path,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<u64, NodeError>> {
        (**self).fetch_file(node, remote_path, local_path, timeout)
    }

    fn backend_name(&self) -> &'static str {
        (**self).backend_name()
    }
}

/// Run the same command on every node at once (the backend bounds how many really run in
/// parallel); results come back in the order of `nodes`, one per node, failures included.
pub async fn run_on_all<O: NodeOps + ?Sized>(
    ops: &O,
    nodes: &[NodeTarget],
    command: &RemoteCommand,
    timeout: Duration,
) -> Vec<(NodeTarget, Result<CommandOutput, NodeError>)> {
    let futures = nodes.iter().map(|n| async move { (n.clone(), ops.run(n, command, timeout).await) });
    futures::future::join_all(futures).await
}

impl fmt::Display for NodeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name == self.address { f.write_str(&self.name) } else { write!(f, "{} ({})", self.name, self.address) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/etc/kubernetes/pki"), "/etc/kubernetes/pki");
        assert_eq!(shell_quote("--name=cp-1"), "--name=cp-1");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
    }

    #[test]
    fn a_node_is_dialled_at_its_internal_ip_or_its_name() {
        let json =
            serde_json::json!({"metadata": {"name": "w-1"}, "status": {"nodeInfo": {"kubeletVersion": "v1.34.1"}}});
        let mut node = stepstone_core::snapshot::parse_node(&json, &Default::default()).unwrap();
        assert_eq!(NodeTarget::from_node(&node).address, "w-1");
        node.internal_ip = Some("10.0.0.7".into());
        assert_eq!(NodeTarget::from_node(&node), NodeTarget::new("w-1", "10.0.0.7"));
    }
}

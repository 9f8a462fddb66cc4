//! The `print` backend: records the exact `ssh` command lines it would run and runs nothing,
//! so an operator can review (or hand-run) every step before trusting stepstone with a fleet.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::node::{BoxFuture, CommandOutput, NodeError, NodeOps, NodeTarget, RemoteCommand, shell_quote};
use crate::ssh::SshOptions;

/// Collects what would run; read it back with [`PrintNodeOps::take_lines`].
#[derive(Debug, Default)]
pub struct PrintNodeOps {
    options: SshOptions,
    lines: Mutex<Vec<String>>,
}

impl PrintNodeOps {
    /// `options` shape the printed `ssh` command lines exactly as the SSH backend would build them.
    pub fn new(options: SshOptions) -> Self {
        PrintNodeOps { options, lines: Mutex::new(Vec::new()) }
    }

    /// Everything recorded so far, in call order, and forget it.
    pub fn take_lines(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().expect("print log lock"))
    }

    fn ssh_line(&self, node: &NodeTarget, remote: &str) -> String {
        let mut words = vec![self.options.program.display().to_string()];
        words.extend(self.options.ssh_args(node, remote).iter().map(|a| shell_quote(a)));
        words.join(" ")
    }

    fn record(&self, line: String) {
        self.lines.lock().expect("print log lock").push(line);
    }
}

/// A name as a `#` comment's text: a newline or other control character in it would end the
/// comment and put the rest of the name on a line of its own.
fn comment(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

impl NodeOps for PrintNodeOps {
    fn run<'a>(
        &'a self,
        node: &'a NodeTarget,
        command: &'a RemoteCommand,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<CommandOutput, NodeError>> {
        Box::pin(async move {
            let remote = self.options.bounded_command_line(command, timeout);
            let mut line = format!("# {}\n{}", comment(&node.name), self.ssh_line(node, &remote));
            if let RemoteCommand::Script { script } = command {
                line.push_str(&format!(" <<'STEPSTONE_EOF'\n{}\nSTEPSTONE_EOF", script.trim_end()));
            }
            self.record(line);
            Ok(CommandOutput { status: None, stdout: String::new(), stderr: String::new(), executed: false })
        })
    }

    fn fetch_file<'a>(
        &'a self,
        node: &'a NodeTarget,
        remote_path: &'a str,
        local_path: &'a Path,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<u64, NodeError>> {
        Box::pin(async move {
            let remote = self.options.bounded_command_line(&RemoteCommand::argv(["cat", "--", remote_path]), timeout);
            let line = format!(
                "# {}\n{} > {}",
                comment(&node.name),
                self.ssh_line(node, &remote),
                shell_quote(&local_path.display().to_string())
            );
            self.record(line);
            Ok(0)
        })
    }

    fn backend_name(&self) -> &'static str {
        "print"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prints_the_exact_ssh_command_and_runs_nothing() {
        let ops = PrintNodeOps::new(SshOptions { user: Some("ops".into()), ..SshOptions::default() });
        let node = NodeTarget::new("w-1", "10.0.0.9");
        let out = ops.run(&node, &RemoteCommand::script("uname -r"), Duration::from_secs(1)).await.unwrap();
        assert!(!out.executed);
        ops.fetch_file(&node, "/var/lib/etcd/x.db", Path::new("/tmp/x.db"), Duration::from_secs(1)).await.unwrap();
        let lines = ops.take_lines();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("# w-1\nssh -o BatchMode=yes"), "{}", lines[0]);
        assert!(lines[0].contains("-l ops -T -- 10.0.0.9"));
        assert!(lines[0].ends_with("<<'STEPSTONE_EOF'\nuname -r\nSTEPSTONE_EOF"));
        assert!(lines[1].ends_with("> /tmp/x.db"));
        assert!(ops.take_lines().is_empty());
    }
}

//! What `journalctl -u kubelet` shows on a node: systemd's lines about the unit and the
//! simulated kubelet's own klog lines (the version it starts, the error it stops with, such as a
//! 1.35 kubelet's refusal of a cgroup v1 host), stamped with the lab's clock, and a `-- Boot --`
//! marker at each reboot. Kept per node, the newest [`KEEP`] lines.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{LabNodes, NodeOpError};
use crate::state::Shared;
use crate::sync::lock;

/// Lines kept per node.
const KEEP: usize = 2000;

/// `GET /lab/v1/nodes/{name}/logs/kubelet`: the newest lines of the node's kubelet journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletLogs {
    pub node: String,
    /// Oldest first, as journalctl prints them.
    pub lines: Vec<String>,
}

/// A process id that stays the same for one kubelet start and changes with the next.
fn pid(node: &str, at: Timestamp) -> u32 {
    let mut h = DefaultHasher::new();
    (node, at.as_second()).hash(&mut h);
    1000 + (h.finish() % 60_000) as u32
}

/// A klog line as the kubelet writes it: `I1205 01:02:03.000000    1234 server.go:484] "..."`.
fn klog(severity: char, at: Timestamp, pid: u32, source: &str, message: &str) -> String {
    format!("{severity}{} {pid:>7} {source}] {message}", at.strftime("%m%d %H:%M:%S%.6f"))
}

/// One journal line from `ident` on `node`.
fn line(node: &str, at: Timestamp, ident: &str, message: &str) -> String {
    format!("{} {node} {ident}: {message}", at.strftime("%b %d %H:%M:%S"))
}

fn append(shared: &Shared, node: &str, lines: impl IntoIterator<Item = String>) {
    let mut journal = lock(&shared.journal);
    let entries = journal.entry(node.to_string()).or_default();
    entries.extend(lines);
    let excess = entries.len().saturating_sub(KEEP);
    entries.drain(..excess);
}

/// `systemctl stop kubelet` (as a restart or a shutdown begins).
pub(crate) fn kubelet_stopping(shared: &Shared, node: &str, at: Timestamp) {
    append(
        shared,
        node,
        [
            line(node, at, "systemd[1]", "Stopping kubelet.service - kubelet: The Kubernetes Node Agent..."),
            line(node, at, "systemd[1]", "kubelet.service: Deactivated successfully."),
            line(node, at, "systemd[1]", "Stopped kubelet.service - kubelet: The Kubernetes Node Agent."),
        ],
    );
}

/// A new boot of the machine.
pub(crate) fn booted(shared: &Shared, node: &str, at: Timestamp) {
    let mut h = DefaultHasher::new();
    (node, at.as_nanosecond()).hash(&mut h);
    append(shared, node, [format!("-- Boot {:016x}{:016x} --", h.finish(), h.finish().rotate_left(17))]);
}

/// A line of the kubelet process `pid` in klog's format.
fn kubelet_line(node: &str, at: Timestamp, pid: u32, severity: char, source: &str, message: &str) -> String {
    line(node, at, &format!("kubelet[{pid}]"), &klog(severity, at, pid, source, message))
}

/// A kubelet start: systemd starts the unit, the kubelet names its version, then logs the lines
/// `then` writes with the klog writer of this process (severity, source, message).
fn append_kubelet_run<const N: usize>(
    shared: &Shared,
    node: &str,
    at: Timestamp,
    version: &str,
    then: impl FnOnce(&dyn Fn(char, &str, &str) -> String) -> [String; N],
) {
    let p = pid(node, at);
    let klog = |severity: char, source: &str, message: &str| kubelet_line(node, at, p, severity, source, message);
    let started = [
        line(node, at, "systemd[1]", "Started kubelet.service - kubelet: The Kubernetes Node Agent."),
        klog('I', "server.go:530", &format!("\"Kubelet version\" kubeletVersion=\"{version}\"")),
    ];
    append(shared, node, started.into_iter().chain(then(&klog)));
}

/// The kubelet started and runs `version`.
pub(crate) fn kubelet_started(shared: &Shared, node: &str, at: Timestamp, version: &str, cgroup: &str) {
    append_kubelet_run(shared, node, at, version, |klog| {
        [
            klog('I', "server.go:956", "\"Client rotation is on, will bootstrap in background\""),
            klog(
                'I',
                "container_manager_linux.go:270",
                &format!("\"Creating Container Manager object based on Node Config\" cgroupVersion=\"{cgroup}\""),
            ),
            klog('I', "kubelet_node_status.go:78", &format!("\"Successfully registered node\" node=\"{node}\"")),
        ]
    });
}

/// The kubelet started and exited at once with `error` (as klog's `run.go` reports it).
pub(crate) fn kubelet_failed(shared: &Shared, node: &str, at: Timestamp, version: &str, error: &str) {
    append_kubelet_run(shared, node, at, version, |klog| {
        [
            klog('E', "run.go:72", &format!("\"command failed\" err=\"failed to run Kubelet: {error}\"")),
            line(node, at, "systemd[1]", "kubelet.service: Main process exited, code=exited, status=1/FAILURE"),
            line(node, at, "systemd[1]", "kubelet.service: Failed with result 'exit-code'."),
        ]
    });
}

/// A warning the running kubelet logs.
pub(crate) fn kubelet_warning(shared: &Shared, node: &str, at: Timestamp, source: &str, message: &str) {
    let p = pid(node, at);
    append(shared, node, [kubelet_line(node, at, p, 'W', source, message)]);
}

impl LabNodes {
    /// `journalctl -u kubelet [-n tail]` on `node`.
    pub fn kubelet_logs(&self, node: &str, tail: Option<usize>) -> Result<KubeletLogs, NodeOpError> {
        {
            let store = self.shared.store();
            self.node(&store, node)?;
        }
        let journal = lock(&self.shared.journal);
        let lines = journal.get(node).map(Vec::as_slice).unwrap_or(&[]);
        let from = tail.map_or(0, |n| lines.len().saturating_sub(n));
        Ok(KubeletLogs { node: node.to_string(), lines: lines[from..].to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn klog_lines_carry_severity_date_pid_and_source() {
        let at: Timestamp = "2026-12-05T01:02:03Z".parse().unwrap();
        assert_eq!(
            klog('E', at, 2345, "run.go:72", "\"command failed\""),
            "E1205 01:02:03.000000    2345 run.go:72] \"command failed\""
        );
        assert_eq!(line("cp-01", at, "systemd[1]", "x"), "Dec 05 01:02:03 cp-01 systemd[1]: x");
    }
}

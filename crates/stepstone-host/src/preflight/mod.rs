//! Pre-flight: collect facts from every node in one SSH round trip, judge them with small rules,
//! and report per hardware generation so that one bad generation stands out.
//!
//! Collection is a single POSIX `sh` script that prints delimited sections; [`parse`] reads each
//! section, [`rules`] turns facts into findings. Thresholds live in `data/preflight.toml`.

pub mod flags;
pub mod parse;
pub mod rules;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use stepstone_core::findings::{self, Finding, Severity};
use stepstone_core::inventory::Node;
use stepstone_core::releases::ReleaseData;
use stepstone_core::version::{KubeVersion, Minor};

use crate::node::{NodeError, NodeOps, NodeTarget, RemoteCommand, shell_quote};

const PREFLIGHT_TOML: &str = include_str!("../../../../data/preflight.toml");

/// The thresholds from `data/preflight.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thresholds {
    pub disk_max_used_percent: u32,
    pub disk_paths: Vec<String>,
    pub cert_min_days: i64,
    pub kernel_check_warns_from: Minor,
    pub node_swap_ga: Minor,
    pub containerd_2_warn_minors_ahead: u32,
    pub kube_packages: Vec<String>,
}

impl Thresholds {
    /// The table embedded at build time (a broken file is a build defect the tests catch).
    pub fn embedded() -> &'static Thresholds {
        static DATA: OnceLock<Thresholds> = OnceLock::new();
        DATA.get_or_init(|| toml::from_str(PREFLIGHT_TOML).expect("data/preflight.toml is valid"))
    }
}

/// Marker lines around each section of the facts script's output.
const BEGIN: &str = "@@stepstone-begin ";
const END: &str = "@@stepstone-end ";

/// The facts script: every section is one command whose output and exit status are printed
/// between markers, so one SSH session answers every check. Nothing here changes the node.
pub fn facts_script(thresholds: &Thresholds) -> String {
    let paths = thresholds.disk_paths.iter().map(|p| shell_quote(p)).collect::<Vec<_>>().join(" ");
    let packages = thresholds.kube_packages.iter().map(|p| shell_quote(p)).collect::<Vec<_>>().join(" ");
    format!(
        r#"export LC_ALL=C
PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
section() {{ name=$1; shift; printf '{BEGIN}%s\n' "$name"; "$@" 2>&1 </dev/null; rc=$?; printf '\n{END}%s %s\n' "$name" "$rc"; }}
s_disk() {{ for p in "$@"; do printf 'path %s\n' "$p"; if [ -e "$p" ]; then df -P "$p"; else echo absent; fi; done; }}
s_pkgmgr() {{ for m in apt-get dnf yum zypper; do command -v "$m"; done; return 0; }}
s_dpkg() {{ command -v dpkg-query >/dev/null || return 0; dpkg-query -W -f='${{Package}} ${{Version}} ${{db:Status-Abbrev}}\n' "$@"; }}
s_holds() {{ command -v apt-mark >/dev/null || return 0; apt-mark showhold; }}
s_rpm() {{ command -v rpm >/dev/null || return 0; rpm -q "$@"; }}
s_versionlock() {{ for f in /etc/dnf/plugins/versionlock.list /etc/yum/pluginconf.d/versionlock.list; do [ -f "$f" ] && cat "$f"; done; return 0; }}
s_repos() {{ for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources /etc/yum.repos.d/*.repo /etc/zypp/repos.d/*.repo; do if [ -f "$f" ] && grep -qiE 'k8s[.]io|kubernetes' "$f"; then printf 'file %s\n' "$f"; cat "$f"; echo; fi; done; return 0; }}
s_certs() {{ if [ ! -f /etc/kubernetes/manifests/kube-apiserver.yaml ]; then echo '{NOT_CONTROL_PLANE}'; return 0; fi; kubeadm certs check-expiration; }}
s_kubelet_flags() {{ for f in /var/lib/kubelet/kubeadm-flags.env /etc/default/kubelet /etc/sysconfig/kubelet; do if [ -f "$f" ]; then printf 'file %s\n' "$f"; cat "$f"; echo; fi; done; return 0; }}
s_time() {{ if command -v timedatectl >/dev/null; then timedatectl show -p NTPSynchronized; fi; if command -v chronyc >/dev/null; then chronyc -n tracking; fi; return 0; }}
section os cat /etc/os-release
section kernel uname -r
section cgroup stat -fc %T /sys/fs/cgroup
section kubelet-config cat /var/lib/kubelet/config.yaml
section kubelet-flags s_kubelet_flags
section disk s_disk {paths}
section crictl crictl --timeout 5s version
section containerd containerd --version
section swap cat /proc/swaps
section pkgmgr s_pkgmgr
section dpkg s_dpkg {packages}
section holds s_holds
section rpm s_rpm {packages}
section versionlock s_versionlock
section repos s_repos
section certs s_certs
section time s_time
"#
    )
}

/// Printed by the certs section on nodes without a kube-apiserver manifest.
pub const NOT_CONTROL_PLANE: &str = "stepstone: not a control-plane node";

/// One section of the facts script's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub output: String,
    pub status: i32,
}

/// Everything one node printed, by section name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeFacts {
    pub sections: BTreeMap<String, Section>,
}

impl NodeFacts {
    /// Split the script's output into sections. Text outside markers is ignored; a section
    /// cut off (no end marker) is dropped, so a half-run script reads as missing facts.
    pub fn parse(stdout: &str) -> NodeFacts {
        let mut sections = BTreeMap::new();
        let mut current: Option<(String, String)> = None;
        for line in stdout.split_inclusive('\n') {
            if let Some(name) = line.strip_prefix(BEGIN) {
                current = Some((name.trim().to_string(), String::new()));
            } else if let Some(rest) = line.strip_prefix(END) {
                let mut it = rest.split_whitespace();
                let (name, status) = (it.next().unwrap_or(""), it.next().and_then(|s| s.parse().ok()).unwrap_or(-1));
                if let Some((open, mut output)) = current.take()
                    && open == name
                {
                    // The end marker starts with a newline of its own.
                    if output.ends_with('\n') {
                        output.pop();
                    }
                    sections.insert(open, Section { output, status });
                }
            } else if let Some((_, buf)) = current.as_mut() {
                buf.push_str(line);
            }
        }
        NodeFacts { sections }
    }

    /// The output of a section that ran (any status), if present.
    pub fn output(&self, name: &str) -> Option<&str> {
        self.sections.get(name).map(|s| s.output.as_str())
    }

    /// The output of a section that exited 0.
    pub fn ok_output(&self, name: &str) -> Option<&str> {
        self.sections.get(name).filter(|s| s.status == 0).map(|s| s.output.as_str())
    }
}

/// What the checks need to know besides the facts.
#[derive(Debug, Clone)]
pub struct CheckContext<'a> {
    pub target: KubeVersion,
    pub releases: &'a ReleaseData,
    pub thresholds: &'a Thresholds,
    /// The moment certificate lifetimes are measured from (injected for tests).
    pub now: Timestamp,
}

/// One check on one node. `finding.severity` is the outcome: info = pass, warning, error = fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub node: String,
    pub generation: String,
    pub check: String,
    pub finding: Finding,
}

/// Pass/warn/fail counts of one check within one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
}

/// One generation's results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationSummary {
    pub generation: String,
    pub nodes: Vec<String>,
    pub checks: BTreeMap<String, Counts>,
    pub failing_nodes: usize,
}

/// The whole pre-flight result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreflightReport {
    pub target: KubeVersion,
    pub generations: Vec<GenerationSummary>,
    pub results: Vec<CheckResult>,
    /// Warnings and errors, worst first.
    pub findings: Vec<Finding>,
}

impl PreflightReport {
    /// Group results by generation; `results` may come in any order.
    pub fn new(target: KubeVersion, mut results: Vec<CheckResult>) -> PreflightReport {
        results.sort_by(|a, b| (&a.generation, &a.node, &a.check).cmp(&(&b.generation, &b.node, &b.check)));
        let mut by_gen: BTreeMap<String, GenerationSummary> = BTreeMap::new();
        for r in &results {
            let g = by_gen.entry(r.generation.clone()).or_insert_with(|| GenerationSummary {
                generation: r.generation.clone(),
                nodes: Vec::new(),
                checks: BTreeMap::new(),
                failing_nodes: 0,
            });
            if g.nodes.last() != Some(&r.node) {
                g.nodes.push(r.node.clone());
            }
            let c = g.checks.entry(r.check.clone()).or_default();
            match r.finding.severity {
                Severity::Info => c.pass += 1,
                Severity::Warning => c.warn += 1,
                Severity::Error => c.fail += 1,
            }
        }
        for g in by_gen.values_mut() {
            g.failing_nodes = g
                .nodes
                .iter()
                .filter(|n| results.iter().any(|r| &r.node == *n && r.finding.severity == Severity::Error))
                .count();
        }
        let mut findings: Vec<Finding> =
            results.iter().filter(|r| r.finding.severity > Severity::Info).map(|r| r.finding.clone()).collect();
        findings::sort(&mut findings);
        PreflightReport { target, generations: by_gen.into_values().collect(), results, findings }
    }

    pub fn worst(&self) -> Option<Severity> {
        findings::worst(&self.findings)
    }
}

/// A node as pre-flight sees it: where to reach it and what the inventory says about it.
#[derive(Debug, Clone)]
pub struct PreflightNode {
    pub target: NodeTarget,
    pub generation: String,
    pub control_plane: bool,
}

impl PreflightNode {
    pub fn from_node(node: &Node) -> Self {
        PreflightNode {
            target: NodeTarget::from_node(node),
            generation: node.generation.clone(),
            control_plane: node.is_control_plane(),
        }
    }
}

/// What came back from one node: facts, an error reaching it, or nothing (print backend).
#[derive(Debug)]
pub enum Collected {
    Facts(NodeFacts),
    Failed(NodeError),
    NotRun,
}

/// Run the facts script on every node (the backend bounds concurrency). One result per node,
/// in the order given; an unreachable node never stops the others.
pub async fn collect<O: NodeOps + ?Sized>(
    ops: &O,
    nodes: &[PreflightNode],
    thresholds: &Thresholds,
    timeout: Duration,
) -> Vec<Collected> {
    let script = RemoteCommand::script(facts_script(thresholds));
    let targets: Vec<NodeTarget> = nodes.iter().map(|n| n.target.clone()).collect();
    crate::node::run_on_all(ops, &targets, &script, timeout)
        .await
        .into_iter()
        .map(|(_, r)| match r {
            Ok(out) if !out.executed => Collected::NotRun,
            Ok(out) => Collected::Facts(NodeFacts::parse(&out.stdout)),
            Err(e) => Collected::Failed(e),
        })
        .collect()
}

/// Judge what was collected. Nodes that were not run (print backend) produce no results.
pub fn evaluate(nodes: &[PreflightNode], collected: &[Collected], ctx: &CheckContext<'_>) -> PreflightReport {
    let mut results = Vec::new();
    for (node, got) in nodes.iter().zip(collected) {
        match got {
            Collected::Facts(facts) => results.extend(rules::check_node(node, facts, ctx)),
            Collected::Failed(e) => results.push(CheckResult {
                node: node.target.name.clone(),
                generation: node.generation.clone(),
                check: "reach".into(),
                finding: Finding::new(
                    Severity::Error,
                    format!("preflight.{}", e.code()),
                    &node.target.name,
                    e.to_string(),
                    "The node was not checked; fix access and run preflight again (other nodes were checked).",
                ),
            }),
            Collected::NotRun => {}
        }
    }
    PreflightReport::new(ctx.target.clone(), results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_load() {
        let t = Thresholds::embedded();
        assert_eq!(t.disk_max_used_percent, 85);
        assert_eq!(t.disk_paths.len(), 4);
        assert_eq!(t.node_swap_ga, Minor::new(1, 34));
    }

    #[test]
    fn sections_split_with_their_status() {
        let out = "noise\n@@stepstone-begin kernel\n6.1.0-26-amd64\n\n@@stepstone-end kernel 0\n\
                   @@stepstone-begin crictl\nsh: 1: crictl: not found\n\n@@stepstone-end crictl 127\n\
                   @@stepstone-begin cut\npartial";
        let f = NodeFacts::parse(out);
        assert_eq!(f.ok_output("kernel"), Some("6.1.0-26-amd64\n"));
        assert_eq!(f.sections["crictl"].status, 127);
        assert_eq!(f.ok_output("crictl"), None);
        assert!(!f.sections.contains_key("cut"));
    }

    #[test]
    fn the_script_is_valid_sh_and_names_every_section() {
        let s = facts_script(Thresholds::embedded());
        for name in [
            "os",
            "kernel",
            "cgroup",
            "kubelet-config",
            "kubelet-flags",
            "disk",
            "crictl",
            "swap",
            "repos",
            "certs",
            "time",
        ] {
            assert!(s.contains(&format!("section {name} ")), "{name}");
        }
        let status = std::process::Command::new("sh").args(["-n", "-c", &s]).status().expect("sh runs");
        assert!(status.success(), "sh -n rejects the facts script");
    }
}

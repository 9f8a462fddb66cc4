//! What an operator does to the machine itself: restart the kubelet, reboot, refresh the OS, read
//! the kubelet's journal, snapshot etcd.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use stepstone_lab::{KubeletState, NodeFacts, OsRefresh};

use crate::exit::{Failure, usage};
use crate::output::emit;

use super::args::*;
use super::{LabApi, cgroup_name, shown, status_of};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RestartReport {
    node: String,
    waited: bool,
    facts: NodeFacts,
}

pub(super) fn restart(node: &str, a: RestartArgs) -> anyhow::Result<ExitCode> {
    let api = a.lab.api()?;
    let mut facts = api.run(|c| c.restart_kubelet(node))?;
    if a.wait.wait {
        facts = wait_until_back(&api, node, facts, a.wait.timeout, "the kubelet restart")?;
    }
    let report = RestartReport { node: node.to_string(), waited: a.wait.wait, facts };
    emit(a.lab.output.output, "LabKubeletRestart", &report, || match &report.facts.kubelet {
        KubeletState::Restarting { until: Some(until), version } => format!(
            "{node}: kubelet restarting (NotReady) to run {version}; back at {}\n  kubectl --kubeconfig {} get node {node} -w\n",
            whole_seconds(until),
            a.lab.target.kubeconfig.display()
        ),
        KubeletState::Restarting { until: None, .. } => format!(
            "{node}: kubelet restarting (NotReady) and not coming back: the lab holds it down with a never-return fault (`stepstone lab faults`)\n"
        ),
        _ => format!(
            "{node}: kubelet {} running, node {}\n",
            shown(report.facts.kubelet_version.as_ref()),
            status_of(&report.facts)
        ),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Poll until the node's kubelet runs and the node is Ready; a kubelet that failed to start, or
/// a node not back within `timeout` (real time), is exit 1 with where to look.
fn wait_until_back(
    api: &LabApi,
    node: &str,
    mut facts: NodeFacts,
    timeout: Duration,
    after: &str,
) -> anyhow::Result<NodeFacts> {
    let deadline = Instant::now() + timeout;
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
                "{node}: not Ready {} after {after} (status {}); raise --timeout, or check `stepstone lab faults` for a never-return fault",
                crate::duration::go(timeout),
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

pub(super) fn reboot(node: &str, a: RebootArgs, refresh: Option<OsRefresh>) -> anyhow::Result<ExitCode> {
    let api = a.lab.api()?;
    let mut facts = match &refresh {
        Some(r) => api.run(|c| c.os_refresh(node, r))?,
        None => api.run(|c| c.reboot(node))?,
    };
    if a.wait.wait {
        facts = wait_until_back(&api, node, facts, a.wait.timeout, "the reboot")?;
    }
    let report = RebootReport { node: node.to_string(), waited: a.wait.wait, facts };
    let kind = if refresh.is_some() { "LabOsRefresh" } else { "LabReboot" };
    emit(a.lab.output.output, kind, &report, || {
        let f = &report.facts;
        let host = format!(
            "{} (kernel {}, cgroup {})",
            f.os_image,
            f.kernel_version,
            shown(f.cgroup_version.map(cgroup_name))
        );
        match &f.kubelet {
            KubeletState::Rebooting { until: Some(until), .. } => format!(
                "{node}: rebooting into {host}; the kubelet starts at {}\n  stepstone lab node {node} logs kubelet\n",
                whole_seconds(until)
            ),
            KubeletState::Rebooting { until: None, .. } => format!(
                "{node}: rebooting into {host} and not coming back: the lab holds it down with a never-return fault (`stepstone lab faults`)\n"
            ),
            _ => format!(
                "{node}: back on {host}, kubelet {} running, node {}\n",
                shown(f.kubelet_version.as_ref()),
                status_of(f)
            ),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn kubelet_logs(node: &str, a: LogsArgs) -> anyhow::Result<ExitCode> {
    let api = a.lab.api()?;
    let logs = api.run(|c| c.kubelet_logs(node, a.tail))?;
    emit(a.lab.output.output, "LabKubeletLogs", &logs, || {
        if logs.lines.is_empty() {
            "-- No entries --\n".to_string()
        } else {
            logs.lines.iter().map(|l| format!("{l}\n")).collect()
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn etcd_snapshot(node: &str, a: SnapshotArgs) -> anyhow::Result<ExitCode> {
    // The lab writes the files, from its own working directory: give it the full path.
    let dir = std::path::absolute(&a.dir)
        .map_err(|e| usage(format!("--dir {}: cannot make it absolute ({e}); give a full path", a.dir.display())))?;
    let api = a.lab.api()?;
    let report = api.run(|c| c.etcd_snapshot(node, &dir))?;
    emit(a.lab.output.output, "LabEtcdSnapshot", &report, || {
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

/// A time the lab keeps to the sub-second (when a restart ends), as people read it.
fn whole_seconds(t: &str) -> String {
    t.parse::<jiff::Timestamp>().map_or_else(|_| t.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

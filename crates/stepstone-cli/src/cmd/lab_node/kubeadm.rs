//! `kubeadm version` and `kubeadm upgrade plan|apply|node` on a node.

use std::process::ExitCode;

use stepstone_core::version::KubeVersion;
use stepstone_lab::{UpgradePlan, UpgradeReport};

use crate::exit::usage;
use crate::output::{OutputArgs, emit};

use super::args::*;

pub(super) fn upgrade_plan(node: &str, a: PlanArgs) -> anyhow::Result<ExitCode> {
    let version = a.release.as_deref().map(str::trim);
    if let Some(v) = version
        && v.parse::<KubeVersion>().is_err()
    {
        return Err(usage(format!(
            "kubeadm upgrade plan {v}: not a Kubernetes release; give the exact version, e.g. v1.35.0, or none for the newest the installed kubeadm can apply"
        )));
    }
    let api = a.lab.api()?;
    let plan: UpgradePlan = api.run(|c| c.kubeadm_upgrade_plan(node, version))?;
    emit(a.lab.output.output, "KubeadmUpgradePlan", &plan, || {
        let mut out = format!("{}\n", plan.message.trim_end());
        if plan.target.is_none()
            && let Some(v) = plan.needs_newer_kubeadm.last()
        {
            // The lab's way of doing what kubeadm asks for.
            out.push_str(&format!(
                "\nin the lab: stepstone lab node {node} install kubeadm={}-1.1\n",
                v.trim_start_matches('v')
            ));
        }
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn upgrade_apply(node: &str, a: ApplyArgs) -> anyhow::Result<ExitCode> {
    let version = a.release.trim();
    if version.parse::<KubeVersion>().is_err() {
        return Err(usage(format!(
            "kubeadm upgrade apply {version}: not a Kubernetes release; give the exact version, e.g. v1.35.0"
        )));
    }
    let api = a.lab.api()?;
    let opts = a.upgrade.options();
    let report = api.run(|c| c.kubeadm_upgrade_apply(node, version, &opts))?;
    print_upgrade(a.lab.output, &report)
}

pub(super) fn upgrade_node(node: &str, a: UpgradeNodeArgs) -> anyhow::Result<ExitCode> {
    let api = a.lab.api()?;
    let opts = a.upgrade.options();
    let report = api.run(|c| c.kubeadm_upgrade_node(node, &opts))?;
    print_upgrade(a.lab.output, &report)
}

fn print_upgrade(output: OutputArgs, report: &UpgradeReport) -> anyhow::Result<ExitCode> {
    emit(output.output, "KubeadmUpgrade", report, || {
        // kubeadm's own lines first, as on the server; then what changed, which kubeadm spreads
        // over many lines the lab does not imitate.
        let mut out = format!("{}\n", report.message.trim_end());
        if !report.changed.is_empty() {
            out.push_str(&format!("\nchanged by this upgrade ({} on {}):\n", report.version, report.node));
            for c in &report.changed {
                out.push_str(&format!("  {c}\n"));
            }
        }
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

//! A node's package repository and package installs (`apt-get install kubeadm=1.35.0-1.1`).

use std::process::ExitCode;

use serde::Serialize;
use stepstone_core::version::{KubeVersion, PackageVersion};
use stepstone_lab::{NodeFacts, Package};

use crate::exit::usage;
use crate::output::emit;

use super::args::*;
use super::shown;

/// `kubeadm=1.35.0-1.1` (apt) or `kubeadm-1.35.0-150500.1.1` (dnf) into package and version,
/// checked as the lab checks them so a bad argument installs nothing.
fn parse_install(arg: &str) -> anyhow::Result<(Package, String)> {
    let split = arg.split_once('=').or_else(|| {
        ["kubeadm-", "kubelet-", "kubectl-"]
            .iter()
            .find(|p| arg.starts_with(*p))
            .map(|p| (&arg[..p.len() - 1], &arg[p.len()..]))
    });
    let Some((name, version)) = split else {
        return Err(usage(format!(
            "install {arg}: expected PACKAGE=VERSION, e.g. kubeadm=1.35.0-1.1 (PACKAGE is kubeadm, kubelet or kubectl)"
        )));
    };
    let package: Package = name.trim().parse().map_err(|e| usage(format!("install {arg}: {e}")))?;
    let version = version.trim().trim_matches(['\'', '"']).to_string();
    let glob = version.contains(['*', '?']) && version.starts_with(|c: char| c.is_ascii_digit() || c == 'v');
    if !glob && version.parse::<PackageVersion>().is_err() && version.parse::<KubeVersion>().is_err() {
        return Err(usage(format!(
            "install {arg}: \"{version}\" is not a Kubernetes package version; give the deb form 1.35.0-1.1, the rpm form 1.35.0-150500.1.1, a glob 1.35.0-* or the release 1.35.0 (`apt-cache madison {}` lists them)",
            name.trim()
        )));
    }
    Ok((package, version))
}

#[derive(Debug, Serialize)]
struct Installed {
    package: &'static str,
    from: Option<String>,
    to: String,
}

#[derive(Debug, Serialize)]
struct InstallReport {
    node: String,
    installed: Vec<Installed>,
    facts: NodeFacts,
}

pub(super) fn install(node: &str, a: InstallArgs) -> anyhow::Result<ExitCode> {
    let wanted = a.packages.iter().map(|p| parse_install(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let api = a.lab.api()?;
    let mut facts = api.run(|c| c.facts(node))?;
    let mut installed = Vec::new();
    for (package, version) in wanted {
        let name = package.name();
        let from = facts.packages.get(name).cloned();
        facts = api.run(|c| c.install_package(node, package, &version))?;
        // What the repository resolved a glob or a bare release to.
        let to = facts.packages.get(name).cloned().unwrap_or(version);
        installed.push(Installed { package: name, from, to });
    }
    let report = InstallReport { node: node.to_string(), installed, facts };
    emit(a.lab.output.output, "LabPackageInstall", &report, || {
        let mut out = String::new();
        for i in &report.installed {
            match &i.from {
                Some(from) if *from != i.to => out.push_str(&format!("{node}: {} {from} -> {}\n", i.package, i.to)),
                Some(_) => out.push_str(&format!("{node}: {} {} is already the installed version\n", i.package, i.to)),
                None => out.push_str(&format!("{node}: {} {} installed\n", i.package, i.to)),
            }
        }
        if report.installed.iter().any(|i| i.package == "kubelet")
            && report
                .facts
                .packages
                .get("kubelet")
                .is_some_and(|p| !same_release(p, report.facts.kubelet_version.as_ref()))
        {
            out.push_str(&format!(
                "the running kubelet is still {}; restart it with `stepstone lab node {node} restart-kubelet`\n",
                shown(report.facts.kubelet_version.as_ref())
            ));
        }
        out
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn repository(node: &str, a: RepoArgs) -> anyhow::Result<ExitCode> {
    let api = a.lab.api()?;
    let before = api.run(|c| c.facts(node))?.repository;
    let facts = match &a.repository {
        Some(r) => api.run(|c| c.configure_repository(node, r.trim()))?,
        None => api.run(|c| c.facts(node))?,
    };
    let now = facts.repository.clone().unwrap_or_else(|| "none".into());
    emit(a.lab.output.output, "LabNodeFacts", &facts, || match (&a.repository, before) {
        (Some(_), Some(b)) if b != now => {
            format!("{node}: Kubernetes package repository {b} -> {now} (pkgs.k8s.io/core:/stable:/{now})\n")
        }
        _ => format!("{node}: Kubernetes package repository {now} (pkgs.k8s.io/core:/stable:/{now})\n"),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn same_release(package: &str, running: Option<&KubeVersion>) -> bool {
    let release = package.parse::<PackageVersion>().map(|p| p.upstream).or_else(|_| package.parse::<KubeVersion>());
    release.is_ok_and(|p| running == Some(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_arguments_take_apt_and_dnf_forms() {
        let (p, v) = parse_install("kubeadm=1.35.0-1.1").unwrap();
        assert_eq!((p, v.as_str()), (Package::Kubeadm, "1.35.0-1.1"));
        let (p, v) = parse_install("kubelet-1.35.0-150500.1.1").unwrap();
        assert_eq!((p, v.as_str()), (Package::Kubelet, "1.35.0-150500.1.1"));
        let (p, v) = parse_install("kubectl='1.35.0'").unwrap();
        assert_eq!((p, v.as_str()), (Package::Kubectl, "1.35.0"));
        assert!(parse_install("kubeadm").unwrap_err().to_string().contains("PACKAGE=VERSION"));
        assert!(parse_install("docker=1.0").unwrap_err().to_string().contains("unknown package"));
        assert!(parse_install("kubeadm=latest").unwrap_err().to_string().contains("not a Kubernetes package version"));
    }
}

//! The pre-flight rules: one small function per check, from parsed facts to one finding per
//! node (info = pass). Each message says what was seen; each hint says what to do.

use stepstone_core::findings::{Finding, Severity};
use stepstone_core::releases::Release;
use stepstone_core::version::Minor;

use super::flags;
use super::parse::{self, CgroupMode, KubeletConfigFacts, LooseVersion, PackageManager};
use super::{CheckContext, CheckResult, NOT_CONTROL_PLANE, NodeFacts, PreflightNode};

/// Every check, in report order.
pub const CHECKS: &[&str] =
    &["cgroup", "kubelet-flags", "disk", "runtime", "swap", "kernel", "packages", "repository", "certificates", "time"];

struct Verdict {
    severity: Severity,
    code: &'static str,
    message: String,
    hint: String,
}

fn pass(code: &'static str, message: impl Into<String>) -> Verdict {
    Verdict { severity: Severity::Info, code, message: message.into(), hint: String::new() }
}

fn warn(code: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Verdict {
    Verdict { severity: Severity::Warning, code, message: message.into(), hint: hint.into() }
}

fn fail(code: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Verdict {
    Verdict { severity: Severity::Error, code, message: message.into(), hint: hint.into() }
}

fn first_line(s: &str) -> &str {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no output")
}

/// Run every check on one node's facts.
pub fn check_node(node: &PreflightNode, facts: &NodeFacts, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
    let release = ctx.releases.get(ctx.target.minor());
    let kubelet = facts.ok_output("kubelet-config").and_then(|t| parse::parse_kubelet_config(t).ok());
    let cgroup = facts.ok_output("cgroup").and_then(parse::parse_cgroup_fs);
    let mut verdicts: Vec<(&str, Verdict)> = vec![
        ("cgroup", check_cgroup(facts, cgroup, kubelet.as_ref(), release, ctx)),
        ("kubelet-flags", check_kubelet_flags(facts, kubelet.as_ref(), ctx)),
        ("disk", check_disk(facts, ctx)),
        ("runtime", check_runtime(facts, release, ctx)),
        ("swap", check_swap(facts, cgroup, kubelet.as_ref(), ctx)),
        ("kernel", check_kernel(facts, release, ctx)),
        ("packages", check_packages(facts, ctx)),
        ("repository", check_repository(facts, ctx)),
        ("time", check_time(facts, node.control_plane)),
    ];
    if let Some(v) = check_certificates(facts, node.control_plane, ctx) {
        verdicts.push(("certificates", v));
    }
    verdicts
        .into_iter()
        .map(|(check, v)| CheckResult {
            node: node.target.name.clone(),
            generation: node.generation.clone(),
            check: check.to_string(),
            finding: Finding::new(v.severity, format!("preflight.{}", v.code), &node.target.name, v.message, v.hint),
        })
        .collect()
}

fn check_cgroup(
    facts: &NodeFacts,
    mode: Option<CgroupMode>,
    kubelet: Option<&KubeletConfigFacts>,
    release: Option<&Release>,
    ctx: &CheckContext<'_>,
) -> Verdict {
    let target = ctx.target.minor();
    match mode {
        Some(CgroupMode::V2) => pass("cgroup-v2", "cgroup v2 (/sys/fs/cgroup is cgroup2fs)"),
        None => warn(
            "cgroup-unknown",
            format!("could not read the cgroup filesystem type: {}", first_line(facts.output("cgroup").unwrap_or(""))),
            "Run `stat -fc %T /sys/fs/cgroup` on the node: cgroup2fs is v2, tmpfs is v1 or hybrid.",
        ),
        Some(CgroupMode::V1OrHybrid) => {
            let required = release.is_some_and(|r| r.cgroup_v2_required);
            let opted_out = kubelet.and_then(|k| k.fail_cgroup_v1) == Some(false);
            let seen = "cgroup v1 or hybrid (/sys/fs/cgroup is tmpfs)";
            let move_hint = "Move the node to cgroup v2 (kernel argument systemd.unified_cgroup_hierarchy=1, \
                             or an OS release that defaults to it) and reboot before the upgrade";
            if !required {
                warn(
                    "cgroup-v1",
                    format!("{seen}; cgroup v1 is in maintenance mode and kubelets from 1.35 refuse it by default"),
                    format!("{move_hint}; v{target} still accepts it."),
                )
            } else if opted_out {
                warn(
                    "cgroup-v1-opted-out",
                    format!(
                        "{seen}; the kubelet config sets failCgroupV1: false, so v{target} starts, but cgroup v1 support is going away"
                    ),
                    format!(
                        "{move_hint}; kubeadm {target} needs --ignore-preflight-errors=SystemVerification on this node."
                    ),
                )
            } else {
                fail(
                    "cgroup-v1",
                    format!(
                        "{seen}: the v{target} kubelet will not start on cgroup v1 (failCgroupV1 defaults to true)"
                    ),
                    format!(
                        "{move_hint}; or, to stay on v1 for now, set failCgroupV1: false in the kube-system/kubelet-config \
                         ConfigMap and /var/lib/kubelet/config.yaml before upgrading."
                    ),
                )
            }
        }
    }
}

fn check_disk(facts: &NodeFacts, ctx: &CheckContext<'_>) -> Verdict {
    let Some(out) = facts.output("disk") else {
        return warn("disk-unknown", "disk usage was not reported", "Run `df -P /var/lib/kubelet` on the node.");
    };
    let usage = parse::parse_disk_section(out);
    let max = ctx.thresholds.disk_max_used_percent;
    let present: Vec<_> = usage.iter().filter(|d| d.present).collect();
    if present.is_empty() {
        return warn("disk-unknown", "none of the kubelet/containerd/etcd paths exist", "Is this a Kubernetes node?");
    }
    let full: Vec<String> = present
        .iter()
        .filter(|d| d.used_percent > max)
        .map(|d| format!("{} {}% used ({} mounted on {})", d.path, d.used_percent, d.filesystem, d.mounted_on))
        .collect();
    if full.is_empty() {
        let worst = present.iter().max_by_key(|d| d.used_percent).expect("not empty");
        pass("disk-ok", format!("disk usage at most {}% ({}), limit {max}%", worst.used_percent, worst.path))
    } else {
        fail(
            "disk-full",
            format!("{} (limit {max}%)", full.join("; ")),
            "Free space first: `crictl rmi --prune` for unused images, old kubeadm backups under /etc/kubernetes/tmp, \
             etcd defragmentation on control-plane nodes.",
        )
    }
}

fn check_runtime(facts: &NodeFacts, release: Option<&Release>, ctx: &CheckContext<'_>) -> Verdict {
    let crictl = facts.output("crictl").unwrap_or("");
    let info = facts.ok_output("crictl").and_then(parse::parse_crictl_version);
    let Some(info) = info else {
        return fail(
            "runtime-unreachable",
            format!("the container runtime did not answer `crictl version`: {}", first_line(crictl)),
            "Check that containerd (or CRI-O) runs (`systemctl status containerd`) and that crictl is installed \
             and points at its socket (/etc/crictl.yaml).",
        );
    };
    if info.name != "containerd" {
        return pass("runtime-ok", format!("{} {} answers over CRI {}", info.name, info.version, info.api_version));
    }
    let Some(version) = LooseVersion::parse(&info.version) else {
        return warn(
            "runtime-version-unknown",
            format!("containerd reports an unreadable version '{}'", info.version),
            "Check `containerd --version`.",
        );
    };
    let target = ctx.target.minor();
    if let Some(min) = release.and_then(|r| r.containerd_min.as_deref()).and_then(LooseVersion::parse)
        && version < min
    {
        return fail(
            "containerd-too-old",
            format!("containerd {} is older than {min}, the minimum for v{target}", info.version),
            format!("Upgrade containerd to {min} or newer (2.x preferred) before the Kubernetes upgrade."),
        );
    }
    let needs_2 = ctx.releases.containerd_2_required_from;
    if version.0 < 2 {
        if target >= needs_2 {
            return fail(
                "containerd-1x-unsupported",
                format!("containerd {}: kubelets from v{needs_2} need containerd 2.x", info.version),
                "Upgrade containerd to 2.x (check the config migration: `containerd config migrate`) first.",
            );
        }
        if needs_2.minus(target) <= i64::from(ctx.thresholds.containerd_2_warn_minors_ahead) {
            return warn(
                "containerd-1x-ending",
                format!(
                    "containerd {} works with v{target}, but kubelets from v{needs_2} need containerd 2.x",
                    info.version
                ),
                "Plan the containerd 2.x upgrade (`containerd config migrate`) before reaching that minor.",
            );
        }
    }
    pass("runtime-ok", format!("containerd {} answers over CRI {}", info.version, info.api_version))
}

/// The kubelet's flag files: flags the target kubelet rejects or that are on their way out, and
/// a `--cgroup-driver` flag that overrides a different `cgroupDriver` in the config file.
fn check_kubelet_flags(facts: &NodeFacts, kubelet: Option<&KubeletConfigFacts>, ctx: &CheckContext<'_>) -> Verdict {
    let Some(out) = facts.ok_output("kubelet-flags") else {
        return warn(
            "kubelet-flags-unknown",
            "could not read the kubelet's flag files",
            "Read /var/lib/kubelet/kubeadm-flags.env and /etc/default/kubelet (or /etc/sysconfig/kubelet) on the node.",
        );
    };
    let set = flags::parse_flag_files(out);
    let target = ctx.target.minor();
    let problems = flags::judge(&set, target, flags::rules());
    let mut messages = Vec::new();
    let mut hints = Vec::new();
    for p in &problems {
        let what = if p.removed { "removed" } else { "deprecated" };
        messages.push(format!("--{} (in {}) is {what} from {} ({})", p.flag, p.file, p.since, p.source));
        hints.push(format!("--{}: {}", p.flag, p.fix));
    }
    let driver_flag = set.get("cgroup-driver").and_then(|f| f.value.clone().map(|v| (v, f.file.clone())));
    let driver_config = kubelet.and_then(|k| k.cgroup_driver.clone());
    let mismatch = match (&driver_flag, &driver_config) {
        (Some((flag, file)), Some(config)) if flag != config => {
            messages.push(format!(
                "--cgroup-driver={flag} (in {file}) overrides cgroupDriver: {config} in /var/lib/kubelet/config.yaml"
            ));
            hints.push(String::from(
                "--cgroup-driver: delete it and keep one setting, cgroupDriver in /var/lib/kubelet/config.yaml, equal to the container runtime's driver (kubeadm's default is systemd; containerd: SystemdCgroup = true)",
            ));
            true
        }
        _ => false,
    };
    if problems.iter().any(|p| p.removed) {
        messages.insert(0, format!("the {} kubelet will not start with these flags", ctx.target));
        return fail(
            "kubelet-flag-removed",
            messages.join("; "),
            format!("{}; then restart the kubelet.", hints.join("; ")),
        );
    }
    if !messages.is_empty() {
        let code =
            if mismatch && problems.is_empty() { "kubelet-cgroup-driver-mismatch" } else { "kubelet-flag-deprecated" };
        return warn(code, messages.join("; "), format!("{}.", hints.join("; ")));
    }
    if set.is_empty() {
        return pass(
            "kubelet-flags",
            "no kubelet flag files (kubeadm-flags.env, /etc/default/kubelet, /etc/sysconfig/kubelet)",
        );
    }
    pass("kubelet-flags", format!("{} kubelet flags, none removed or deprecated at v{target}", set.len()))
}

fn check_swap(
    facts: &NodeFacts,
    cgroup: Option<CgroupMode>,
    kubelet: Option<&KubeletConfigFacts>,
    ctx: &CheckContext<'_>,
) -> Verdict {
    let Some(out) = facts.ok_output("swap") else {
        return warn("swap-unknown", "could not read /proc/swaps", "Run `swapon --show` on the node.");
    };
    let areas = parse::parse_proc_swaps(out);
    if areas.is_empty() {
        return pass("swap-off", "no swap");
    }
    let names = areas.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ");
    let fail_swap_on = kubelet.and_then(|k| k.fail_swap_on).unwrap_or(true);
    let off_hint = "Turn swap off (`swapoff -a` and remove it from /etc/fstab or mask the swap unit), or enable \
                    NodeSwap: cgroup v2, failSwapOn: false and memorySwap.swapBehavior in the kubelet config.";
    if fail_swap_on {
        return fail(
            "swap-on",
            format!(
                "swap is on ({names}) and the kubelet's failSwapOn is true (the default): the kubelet will not start"
            ),
            off_hint,
        );
    }
    if cgroup != Some(CgroupMode::V2) {
        return fail("swap-needs-cgroup-v2", format!("swap is on ({names}) but NodeSwap needs cgroup v2"), off_hint);
    }
    let behavior = kubelet.and_then(|k| k.swap_behavior.clone()).unwrap_or_else(|| "NoSwap".into());
    if ctx.target.minor() < ctx.thresholds.node_swap_ga {
        return warn(
            "swap-beta",
            format!(
                "swap is on ({names}), swapBehavior {behavior}; NodeSwap is beta before v{}",
                ctx.thresholds.node_swap_ga
            ),
            "Keep the NodeSwap feature gate settings the same across the upgrade.",
        );
    }
    pass("swap-nodeswap", format!("swap is on ({names}) with failSwapOn: false, swapBehavior {behavior}, cgroup v2"))
}

fn check_kernel(facts: &NodeFacts, release: Option<&Release>, ctx: &CheckContext<'_>) -> Verdict {
    let Some(kernel) = facts.ok_output("kernel").and_then(parse::parse_kernel) else {
        return warn("kernel-unknown", "could not read the kernel version", "Run `uname -r` on the node.");
    };
    let raw = first_line(facts.output("kernel").unwrap_or(""));
    let Some(min) = release.and_then(|r| LooseVersion::parse(&r.kernel_min)) else {
        return pass("kernel-ok", format!("kernel {raw}"));
    };
    if kernel >= min {
        return pass("kernel-ok", format!("kernel {raw} (minimum {min})"));
    }
    let message = format!("kernel {raw} is older than {min}, the minimum kubeadm v{} checks for", ctx.target.minor());
    let hint = "Upgrade the kernel (and reboot) before the Kubernetes upgrade.";
    if ctx.target.minor() >= ctx.thresholds.kernel_check_warns_from {
        warn("kernel-too-old", message, hint)
    } else {
        fail("kernel-too-old", message, hint)
    }
}

fn check_packages(facts: &NodeFacts, ctx: &CheckContext<'_>) -> Verdict {
    let wanted: Vec<&str> = ctx.thresholds.kube_packages.iter().map(String::as_str).collect();
    let Some(manager) = facts.output("pkgmgr").and_then(parse::parse_package_manager) else {
        return warn(
            "package-manager-unknown",
            "no apt-get, dnf, yum or zypper found",
            "stepstone upgrades kubeadm and kubelet through the OS package manager; install them from pkgs.k8s.io.",
        );
    };
    let (installed, pinned, pin_word, pin_hint) = match manager {
        PackageManager::Apt => (
            parse::parse_dpkg_query(facts.output("dpkg").unwrap_or("")),
            parse::parse_apt_holds(facts.output("holds").unwrap_or("")),
            "held",
            "apt-mark hold kubeadm kubelet kubectl",
        ),
        _ => {
            let mut pinned = parse::parse_versionlock(facts.output("versionlock").unwrap_or(""), &wanted);
            for f in parse::parse_repo_files(facts.output("repos").unwrap_or("")) {
                pinned.extend(f.excludes.into_iter().filter(|e| wanted.contains(&e.as_str())));
            }
            (
                parse::parse_rpm_q(facts.output("rpm").unwrap_or(""), &wanted),
                pinned,
                "excluded/locked",
                "add `exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni` to the kubernetes repo file",
            )
        }
    };
    let missing: Vec<&str> = ["kubeadm", "kubelet"].into_iter().filter(|p| !installed.contains_key(*p)).collect();
    if !missing.is_empty() {
        return fail(
            "packages-missing",
            format!("{manager}: {} not installed as packages", missing.join(" and ")),
            "stepstone upgrades kubeadm/kubelet with the package manager; install them from the pkgs.k8s.io repository.",
        );
    }
    let listed: Vec<String> = installed
        .iter()
        .map(|(n, v)| if pinned.contains(n) { format!("{n} {v} ({pin_word})") } else { format!("{n} {v}") })
        .collect();
    let unpinned: Vec<&str> = ["kubeadm", "kubelet", "kubectl"]
        .into_iter()
        .filter(|p| installed.contains_key(*p) && !pinned.contains(*p))
        .collect();
    if unpinned.is_empty() {
        pass("packages-ok", format!("{manager}: {}", listed.join(", ")))
    } else {
        warn(
            "packages-not-pinned",
            format!(
                "{manager}: {} not {pin_word}; a routine OS update could move them: {}",
                unpinned.join(", "),
                listed.join(", ")
            ),
            format!("Pin them so only the upgrade changes them: {pin_hint}."),
        )
    }
}

fn check_repository(facts: &NodeFacts, ctx: &CheckContext<'_>) -> Verdict {
    let files = parse::parse_repo_files(facts.output("repos").unwrap_or(""));
    let target: Minor = ctx.target.minor();
    let apt = facts.output("pkgmgr").and_then(parse::parse_package_manager) == Some(PackageManager::Apt);
    let line = if apt {
        format!(
            "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v{target}/deb/ / \
             in /etc/apt/sources.list.d/kubernetes.list"
        )
    } else {
        format!("baseurl=https://pkgs.k8s.io/core:/stable:/v{target}/rpm/ in /etc/yum.repos.d/kubernetes.repo")
    };
    if let Some(legacy) = files.iter().find(|f| f.legacy) {
        return fail(
            "repository-legacy",
            format!(
                "{} uses the frozen legacy repository (apt.kubernetes.io / packages.cloud.google.com)",
                legacy.path
            ),
            format!("Replace it with the per-minor pkgs.k8s.io repository: {line}."),
        );
    }
    let mut minors: Vec<Minor> = files.iter().flat_map(|f| f.minors.iter().copied()).collect();
    minors.sort();
    minors.dedup();
    if minors.contains(&target) {
        return pass("repository-ok", format!("pkgs.k8s.io v{target} repository configured"));
    }
    let found = if minors.is_empty() {
        "no pkgs.k8s.io repository configured".to_string()
    } else {
        format!("pkgs.k8s.io configured for {}", minors.iter().map(|m| format!("v{m}")).collect::<Vec<_>>().join(", "))
    };
    warn(
        "repository-missing",
        format!("{found}; the v{target} packages come from the v{target} repository"),
        format!("Before upgrading this node switch the repository: {line}."),
    )
}

fn check_certificates(facts: &NodeFacts, control_plane: bool, ctx: &CheckContext<'_>) -> Option<Verdict> {
    let section = facts.sections.get("certs")?;
    if section.output.trim() == NOT_CONTROL_PLANE {
        return control_plane.then(|| {
            warn(
                "certificates-unknown",
                "the cluster lists this node as control plane, but it has no /etc/kubernetes/manifests/kube-apiserver.yaml",
                "Check that this is the right machine (address, ssh config) and that its control plane is kubeadm-managed.",
            )
        });
    }
    let certs = match parse::parse_cert_expiration(&section.output) {
        Ok(c) if section.status == 0 => c,
        _ => {
            return Some(warn(
                "certificates-unknown",
                format!("`kubeadm certs check-expiration` failed: {}", first_line(&section.output)),
                "Run `kubeadm certs check-expiration` on the node and check its output.",
            ));
        }
    };
    let min_days = ctx.thresholds.cert_min_days;
    let days_left = |c: &parse::CertExpiry| ctx.now.duration_until(c.expires).as_secs().div_euclid(86_400);
    let earliest = certs.iter().filter(|c| !c.externally_managed).min_by_key(|c| c.expires)?;
    let left = days_left(earliest);
    let short: Vec<String> = certs
        .iter()
        .filter(|c| !c.externally_managed && days_left(c) < min_days)
        .map(|c| {
            if days_left(c) < 0 {
                format!("{} expired {}", c.name, c.expires)
            } else {
                format!("{} in {}d", c.name, days_left(c))
            }
        })
        .collect();
    if short.is_empty() {
        return Some(pass(
            "certificates-ok",
            format!("certificates valid for at least {left} days (first: {} on {})", earliest.name, earliest.expires),
        ));
    }
    Some(fail(
        "certificates-expiring",
        format!("kubeadm certificates expire within {min_days} days: {}", short.join(", ")),
        "Renew them now with `kubeadm certs renew all` and restart the control-plane static pods; \
         an upgrade started with expired certificates cannot finish.",
    ))
}

fn check_time(facts: &NodeFacts, control_plane: bool) -> Verdict {
    match facts.output("time").and_then(parse::parse_time_sync) {
        Some(true) => pass("time-synced", "clock synchronised"),
        Some(false) => {
            let message = "the clock is not synchronised (NTP)";
            let hint = "Start time sync (`systemctl enable --now systemd-timesyncd` or chronyd) and check its servers; \
                        etcd leases and certificate checks depend on the clock.";
            if control_plane { fail("time-unsynced", message, hint) } else { warn("time-unsynced", message, hint) }
        }
        None => warn(
            "time-unknown",
            "could not tell whether the clock is synchronised (no timedatectl or chronyc answer)",
            "Check time sync on the node by hand (`timedatectl`, `chronyc tracking`).",
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stepstone_core::releases::ReleaseData;

    use super::*;
    use crate::node::NodeTarget;
    use crate::preflight::{Section, Thresholds};

    fn facts(sections: &[(&str, &str)]) -> NodeFacts {
        let sections: BTreeMap<String, Section> =
            sections.iter().map(|(k, v)| (k.to_string(), Section { output: v.to_string(), status: 0 })).collect();
        NodeFacts { sections }
    }

    fn results(f: &NodeFacts, target: &str, control_plane: bool) -> BTreeMap<String, Finding> {
        let ctx = CheckContext {
            target: target.parse().unwrap(),
            releases: ReleaseData::embedded(),
            thresholds: Thresholds::embedded(),
            now: "2026-08-22T10:00:00Z".parse().unwrap(),
        };
        let node = PreflightNode { target: NodeTarget::new("n", "n"), generation: "g".into(), control_plane };
        check_node(&node, f, &ctx).into_iter().map(|r| (r.check, r.finding)).collect()
    }

    /// An Ubuntu 22.04 worker on cgroup v1 with an old repository and unheld packages.
    fn ubuntu_worker() -> NodeFacts {
        facts(&[
            ("cgroup", "tmpfs\n"),
            ("kernel", "5.15.0-122-generic\n"),
            ("kubelet-config", "kind: KubeletConfiguration\ncgroupDriver: systemd\n"),
            (
                "disk",
                "path /var/lib/kubelet\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 81106868 23190200 57900284 29% /\npath /var/lib/etcd\nabsent\n",
            ),
            ("crictl", "Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  1.7.22\nRuntimeApiVersion:  v1\n"),
            ("swap", "Filename\tType\tSize\tUsed\tPriority\n"),
            ("pkgmgr", "/usr/bin/apt-get\n"),
            ("dpkg", "kubeadm 1.34.2-1.1 ii \nkubelet 1.34.2-1.1 ii \nkubectl 1.34.2-1.1 ii \n"),
            ("holds", "kubeadm\n"),
            (
                "repos",
                "file /etc/apt/sources.list.d/kubernetes.list\ndeb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /\n",
            ),
            ("certs", NOT_CONTROL_PLANE),
            ("time", "NTPSynchronized=yes\n"),
        ])
    }

    /// A Rocky 9 control plane on cgroup v2 with swap, chrony out of sync and a certificate
    /// that runs out in ten days.
    fn rocky_control_plane() -> NodeFacts {
        facts(&[
            ("cgroup", "cgroup2fs\n"),
            ("kernel", "5.14.0-427.13.1.el9_4.x86_64\n"),
            (
                "kubelet-config",
                "kind: KubeletConfiguration\nfailSwapOn: false\nmemorySwap:\n  swapBehavior: LimitedSwap\n",
            ),
            (
                "disk",
                "path /var/lib/etcd\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/mapper/rl-var 73364480 66028032 7336448 90% /var\n",
            ),
            ("crictl", "Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  v2.0.2\nRuntimeApiVersion:  v1\n"),
            ("swap", "Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1 partition 8253436 0 -2\n"),
            ("pkgmgr", "/usr/bin/dnf\n/usr/bin/yum\n"),
            (
                "rpm",
                "kubeadm-1.34.2-150500.1.1.x86_64\nkubelet-1.34.2-150500.1.1.x86_64\nkubectl-1.34.2-150500.1.1.x86_64\n",
            ),
            (
                "repos",
                "file /etc/yum.repos.d/kubernetes.repo\n[kubernetes]\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.35/rpm/\nenabled=1\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n",
            ),
            (
                "certs",
                "CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED\n\
                 apiserver                  Sep 01, 2026 09:12 UTC   9d              ca                      no\n\
                 admin.conf                 Jul 14, 2027 09:12 UTC   326d            ca                      no\n",
            ),
            ("time", "Reference ID    : 00000000 ()\nLeap status     : Not synchronised\n"),
        ])
    }

    #[test]
    fn ubuntu_worker_on_cgroup_v1_fails_for_1_35_only() {
        let r = results(&ubuntu_worker(), "v1.35.3", false);
        assert_eq!((r["cgroup"].severity, r["cgroup"].code.as_str()), (Severity::Error, "preflight.cgroup-v1"));
        assert_eq!(r["disk"].severity, Severity::Info);
        assert_eq!(r["runtime"].severity, Severity::Info);
        assert_eq!(r["swap"].code, "preflight.swap-off");
        assert_eq!(r["kernel"].severity, Severity::Info);
        assert_eq!(r["packages"].code, "preflight.packages-not-pinned");
        assert!(r["packages"].message.contains("kubelet, kubectl not held"), "{}", r["packages"].message);
        assert_eq!(r["repository"].code, "preflight.repository-missing");
        assert!(r["repository"].hint.contains("https://pkgs.k8s.io/core:/stable:/v1.35/deb/"));
        assert!(!r.contains_key("certificates"), "workers have no kubeadm certificates");
        assert_eq!(r["time"].severity, Severity::Info);

        let r = results(&ubuntu_worker(), "v1.34.2", false);
        assert_eq!(r["cgroup"].severity, Severity::Warning);
        assert_eq!(r["repository"].severity, Severity::Info);

        let mut opted_out = ubuntu_worker();
        opted_out.sections.get_mut("kubelet-config").unwrap().output.push_str("failCgroupV1: false\n");
        let r = results(&opted_out, "v1.35.3", false);
        assert_eq!(
            (r["cgroup"].severity, r["cgroup"].code.as_str()),
            (Severity::Warning, "preflight.cgroup-v1-opted-out")
        );
    }

    #[test]
    fn rocky_control_plane_problems() {
        let r = results(&rocky_control_plane(), "v1.35.3", true);
        assert_eq!(r["cgroup"].code, "preflight.cgroup-v2");
        assert_eq!(r["disk"].severity, Severity::Error);
        assert!(r["disk"].message.contains("/var/lib/etcd 90% used"));
        assert_eq!(r["runtime"].code, "preflight.runtime-ok");
        assert_eq!(r["swap"].code, "preflight.swap-nodeswap");
        assert_eq!(r["packages"].code, "preflight.packages-ok", "excluded in the repo file counts as pinned");
        assert_eq!(r["repository"].code, "preflight.repository-ok");
        assert_eq!(r["certificates"].severity, Severity::Error);
        assert!(r["certificates"].message.contains("apiserver in 9d"));
        assert_eq!(r["time"].severity, Severity::Error, "an unsynchronised control plane fails");
    }

    #[test]
    fn containerd_1x_ahead_of_the_containerd_2_minor() {
        let r = results(&ubuntu_worker(), "v1.36.0", false);
        assert_eq!(r["runtime"].code, "preflight.containerd-1x-ending");
        let mut old = ubuntu_worker();
        old.sections.get_mut("crictl").unwrap().output =
            "RuntimeName:  containerd\nRuntimeVersion:  1.6.20~ds1\n".into();
        let r = results(&old, "v1.35.3", false);
        assert_eq!(
            (r["runtime"].severity, r["runtime"].code.as_str()),
            (Severity::Error, "preflight.containerd-too-old")
        );
        let mut down = ubuntu_worker();
        down.sections.insert("crictl".into(), Section { output: "sh: 1: crictl: not found".into(), status: 127 });
        let r = results(&down, "v1.35.3", false);
        assert_eq!(r["runtime"].code, "preflight.runtime-unreachable");
        assert!(r["runtime"].message.contains("crictl: not found"));
    }
}

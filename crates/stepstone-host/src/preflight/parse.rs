//! Parsers for the command output pre-flight collects: each takes the text a node printed and
//! returns plain facts. No rules here; a parser says what the node has, not whether it is good.
//!
//! The fixtures in the tests are outputs from Debian/Ubuntu and RHEL-family hosts.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Serialize;
use stepstone_core::version::Minor;

/// A version compared on its first three numbers: `v1.7.22`, `1.6.20~ds1`, `5.15.0-122-generic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LooseVersion(pub u32, pub u32, pub u32);

impl LooseVersion {
    /// Read the leading `major.minor[.patch]` of `s`, ignoring a `v` prefix and any suffix.
    pub fn parse(s: &str) -> Option<LooseVersion> {
        let s = s.trim().trim_start_matches('v');
        let prefix: &str = &s[..s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len())];
        let mut nums = prefix.split('.').map(|n| n.parse::<u32>());
        let major = nums.next()?.ok()?;
        let minor = nums.next()?.ok()?;
        let patch = nums.next().and_then(Result::ok).unwrap_or(0);
        Some(LooseVersion(major, minor, patch))
    }
}

impl std::fmt::Display for LooseVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What `stat -fc %T /sys/fs/cgroup` says about the cgroup hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupMode {
    /// `cgroup2fs`: the unified hierarchy.
    V2,
    /// `tmpfs`: cgroup v1, or hybrid with v1 controllers (the kubelet treats both as v1).
    V1OrHybrid,
}

pub fn parse_cgroup_fs(out: &str) -> Option<CgroupMode> {
    match out.trim() {
        "cgroup2fs" => Some(CgroupMode::V2),
        "tmpfs" => Some(CgroupMode::V1OrHybrid),
        _ => None,
    }
}

/// `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_id: String,
    pub pretty_name: String,
}

impl OsRelease {
    pub fn is_debian_family(&self) -> bool {
        self.id == "debian" || self.id == "ubuntu" || self.id_like.iter().any(|l| l == "debian" || l == "ubuntu")
    }

    pub fn is_rhel_family(&self) -> bool {
        ["rhel", "centos", "fedora", "rocky", "almalinux", "ol"].contains(&self.id.as_str())
            || self.id_like.iter().any(|l| l == "rhel" || l == "fedora" || l == "centos")
    }
}

pub fn parse_os_release(out: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in out.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => os.id = v,
            "ID_LIKE" => os.id_like = v.split_whitespace().map(String::from).collect(),
            "VERSION_ID" => os.version_id = v,
            "PRETTY_NAME" => os.pretty_name = v,
            _ => {}
        }
    }
    os
}

/// `uname -r`: `5.15.0-122-generic`, `5.14.0-427.13.1.el9_4.x86_64`, `6.1.0-26-amd64`.
pub fn parse_kernel(out: &str) -> Option<LooseVersion> {
    LooseVersion::parse(out.lines().next()?.trim())
}

/// The settings of `/var/lib/kubelet/config.yaml` pre-flight cares about, plus every setting
/// flattened to `a.b.c = value` for drift.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfigFacts {
    pub fail_cgroup_v1: Option<bool>,
    pub fail_swap_on: Option<bool>,
    pub swap_behavior: Option<String>,
    pub cgroup_driver: Option<String>,
    pub flattened: BTreeMap<String, String>,
}

pub fn parse_kubelet_config(out: &str) -> Result<KubeletConfigFacts, String> {
    let value: serde_json::Value = serde_saphyr::from_str(out).map_err(|e| format!("not valid YAML: {e}"))?;
    if !value.is_object() {
        return Err("not a KubeletConfiguration mapping".into());
    }
    let mut flattened = BTreeMap::new();
    flatten("", &value, &mut flattened);
    let b = |k: &str| value.get(k).and_then(serde_json::Value::as_bool);
    Ok(KubeletConfigFacts {
        fail_cgroup_v1: b("failCgroupV1"),
        fail_swap_on: b("failSwapOn"),
        swap_behavior: value.pointer("/memorySwap/swapBehavior").and_then(|v| v.as_str()).map(String::from),
        cgroup_driver: value.get("cgroupDriver").and_then(|v| v.as_str()).map(String::from),
        flattened,
    })
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// One path's filesystem usage from `df -P`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskUsage {
    pub path: String,
    /// False when the path does not exist on this node (e.g. `/var/lib/etcd` on a worker).
    pub present: bool,
    pub filesystem: String,
    pub mounted_on: String,
    pub used_percent: u32,
    pub available_kib: u64,
}

/// The disk section: for each path a `path <p>` line, then `absent` or the `df -P` output.
pub fn parse_disk_section(out: &str) -> Vec<DiskUsage> {
    let mut result = Vec::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("path ") {
            current = Some(p.trim().to_string());
            continue;
        }
        let Some(path) = current.clone() else { continue };
        if line.trim() == "absent" {
            result.push(DiskUsage {
                path,
                present: false,
                filesystem: String::new(),
                mounted_on: String::new(),
                used_percent: 0,
                available_kib: 0,
            });
            current = None;
        } else if let Some(mut d) = parse_df_row(line) {
            d.path = path;
            result.push(d);
            current = None;
        }
    }
    result
}

/// One data row of `df -P` (`Filesystem 1024-blocks Used Available Capacity Mounted on`).
pub fn parse_df_row(line: &str) -> Option<DiskUsage> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.len() < 6 || cols[0] == "Filesystem" {
        return None;
    }
    let used_percent = cols[4].strip_suffix('%')?.parse().ok()?;
    Some(DiskUsage {
        path: String::new(),
        present: true,
        filesystem: cols[0].to_string(),
        mounted_on: cols[5..].join(" "),
        used_percent,
        available_kib: cols[3].parse().ok()?,
    })
}

/// The runtime as `crictl version` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeInfo {
    pub name: String,
    pub version: String,
    pub api_version: String,
}

pub fn parse_crictl_version(out: &str) -> Option<RuntimeInfo> {
    let field = |key: &str| {
        out.lines().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim_start_matches(':').trim().to_string()))
    };
    Some(RuntimeInfo {
        name: field("RuntimeName")?,
        version: field("RuntimeVersion")?,
        api_version: field("RuntimeApiVersion").unwrap_or_default(),
    })
}

/// `containerd --version`: the version is the third word
/// (`containerd containerd.io 1.7.22 <sha>`, `containerd github.com/containerd/containerd 1.6.20~ds1 …`).
pub fn parse_containerd_version(out: &str) -> Option<String> {
    let line = out.lines().find(|l| l.starts_with("containerd "))?;
    line.split_whitespace().nth(2).map(String::from)
}

/// An active swap area from `/proc/swaps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapArea {
    pub name: String,
    pub kind: String,
    pub size_kib: u64,
    pub used_kib: u64,
}

pub fn parse_proc_swaps(out: &str) -> Vec<SwapArea> {
    out.lines()
        .filter(|l| !l.starts_with("Filename"))
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c.len() >= 4).then(|| SwapArea {
                name: c[0].to_string(),
                kind: c[1].to_string(),
                size_kib: c[2].parse().unwrap_or(0),
                used_kib: c[3].parse().unwrap_or(0),
            })
        })
        .collect()
}

/// The node's package manager, by which binaries exist (`command -v` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Apt,
    Dnf,
    Yum,
    Zypper,
}

impl std::fmt::Display for PackageManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PackageManager::Apt => "apt",
            PackageManager::Dnf => "dnf",
            PackageManager::Yum => "yum",
            PackageManager::Zypper => "zypper",
        })
    }
}

/// The first manager found, preferring dnf over yum (RHEL 8+ ships both names).
pub fn parse_package_manager(command_v_output: &str) -> Option<PackageManager> {
    let found: BTreeSet<&str> =
        command_v_output.lines().filter_map(|l| l.trim().rsplit('/').next()).filter(|s| !s.is_empty()).collect();
    if found.contains("apt-get") {
        Some(PackageManager::Apt)
    } else if found.contains("dnf") {
        Some(PackageManager::Dnf)
    } else if found.contains("yum") {
        Some(PackageManager::Yum)
    } else if found.contains("zypper") {
        Some(PackageManager::Zypper)
    } else {
        None
    }
}

/// `dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' …`: installed packages only
/// (status `ii` or `hi`); "no packages found" lines are skipped.
pub fn parse_dpkg_query(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            match c.as_slice() {
                [name, version, status, ..] if status.starts_with('i') || status.starts_with('h') => {
                    let installed = status.chars().nth(1) == Some('i');
                    installed.then(|| (name.to_string(), version.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

/// `apt-mark showhold`: one package per line.
pub fn parse_apt_holds(out: &str) -> BTreeSet<String> {
    out.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains(' ')).map(String::from).collect()
}

/// `rpm -q kubeadm kubelet kubectl`: `kubeadm-1.34.1-150500.1.1.x86_64` or
/// `package kubectl is not installed`. Only `wanted` names are recognised, so that a name with
/// dashes is split correctly.
pub fn parse_rpm_q(out: &str, wanted: &[&str]) -> BTreeMap<String, String> {
    let mut result = BTreeMap::new();
    for line in out.lines().map(str::trim) {
        if line.starts_with("package ") {
            continue;
        }
        for name in wanted {
            let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('-')) else { continue };
            if !rest.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            let version = match rest.rsplit_once('.') {
                Some((v, arch)) if ["x86_64", "aarch64", "ppc64le", "s390x", "noarch"].contains(&arch) => v,
                _ => rest,
            };
            result.insert(name.to_string(), version.to_string());
        }
    }
    result
}

/// The dnf/yum versionlock list: `kubelet-0:1.34.1-150500.1.1.*` (dnf) or
/// `0:kubelet-1.28.2-150500.1.1.*` (yum). Returns the locked names among `wanted`.
pub fn parse_versionlock(out: &str, wanted: &[&str]) -> BTreeSet<String> {
    let mut locked = BTreeSet::new();
    for line in out.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let line = line.trim_start_matches('!');
        let line = match line.split_once(':') {
            Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => rest,
            _ => line,
        };
        for name in wanted {
            if let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('-'))
                && rest.starts_with(|c: char| c.is_ascii_digit())
            {
                locked.insert(name.to_string());
            }
        }
    }
    locked
}

/// A package repository file that mentions Kubernetes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoFile {
    pub path: String,
    /// Minors of the pkgs.k8s.io per-minor repositories configured (and enabled) in this file.
    pub minors: Vec<Minor>,
    /// The frozen legacy repositories (apt.kubernetes.io, packages.cloud.google.com).
    pub legacy: bool,
    /// Packages listed in `exclude=` lines (yum/dnf).
    pub excludes: Vec<String>,
}

const K8S_REPO_HOSTS: &[&str] =
    &["pkgs.k8s.io", "pkgs.kubernetes.io", "packages.kubernetes.io", "prod-cdn.packages.k8s.io"];

/// The repos section: `file <path>` lines each followed by that file's contents.
pub fn parse_repo_files(out: &str) -> Vec<RepoFile> {
    let mut files: Vec<RepoFile> = Vec::new();
    // In .repo files a section can be disabled as a whole; track it while reading.
    let mut section_enabled = true;
    let mut section_minors: Vec<Minor> = Vec::new();
    let flush = |file: &mut RepoFile, enabled: bool, minors: &mut Vec<Minor>| {
        if enabled {
            file.minors.append(minors);
        }
        minors.clear();
    };
    for raw in out.lines() {
        if let Some(p) = raw.strip_prefix("file ") {
            if let Some(f) = files.last_mut() {
                flush(f, section_enabled, &mut section_minors);
            }
            files.push(RepoFile { path: p.trim().to_string(), ..RepoFile::default() });
            section_enabled = true;
            continue;
        }
        let Some(file) = files.last_mut() else { continue };
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            flush(file, section_enabled, &mut section_minors);
            section_enabled = true;
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("enabled").map(|r| r.trim_start_matches([' ', '=', ':']).trim()) {
            // deb822 `Enabled: no` and yum `enabled=0`.
            if v == "0" || v == "no" || v == "false" {
                section_enabled = false;
            }
            continue;
        }
        if let Some(v) = lower.strip_prefix("exclude").and_then(|r| r.trim_start().strip_prefix('=')) {
            file.excludes.extend(v.split([' ', ',']).filter(|s| !s.is_empty()).map(String::from));
            continue;
        }
        if lower.contains("apt.kubernetes.io") || lower.contains("packages.cloud.google.com") {
            file.legacy = true;
        }
        if lower.starts_with("gpgkey") {
            continue;
        }
        if K8S_REPO_HOSTS.iter().any(|h| lower.contains(h))
            && let Some(m) = repo_minor(&lower)
            && !section_minors.contains(&m)
        {
            section_minors.push(m);
        }
    }
    if let Some(f) = files.last_mut() {
        flush(f, section_enabled, &mut section_minors);
    }
    for f in &mut files {
        f.minors.sort();
        f.minors.dedup();
        f.excludes.sort();
        f.excludes.dedup();
    }
    files
}

/// `…/core:/stable:/v1.34/deb/` -> 1.34.
fn repo_minor(line: &str) -> Option<Minor> {
    let at = line.find("stable:/v")? + "stable:/v".len();
    let rest = &line[at..];
    let end = rest.find('/').unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One row of `kubeadm certs check-expiration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertExpiry {
    pub name: String,
    pub expires: Timestamp,
    pub is_authority: bool,
    pub externally_managed: bool,
}

/// Both tables of `kubeadm certs check-expiration` (certificates, then authorities).
pub fn parse_cert_expiration(out: &str) -> Result<Vec<CertExpiry>, String> {
    let mut certs = Vec::new();
    let mut in_authorities = false;
    let mut in_table = false;
    for line in out.lines() {
        if line.starts_with("CERTIFICATE AUTHORITY") {
            in_authorities = true;
            in_table = true;
            continue;
        }
        if line.starts_with("CERTIFICATE") {
            in_authorities = false;
            in_table = true;
            continue;
        }
        if line.trim().is_empty() || line.starts_with('[') || !in_table {
            continue;
        }
        let cols: Vec<&str> = line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        if cols.len() < 3 {
            continue;
        }
        let expires = parse_kubeadm_time(cols[1]).map_err(|e| format!("row '{}': {e}", line.trim()))?;
        certs.push(CertExpiry {
            name: cols[0].to_string(),
            expires,
            is_authority: in_authorities,
            externally_managed: cols.last() == Some(&"yes"),
        });
    }
    if certs.is_empty() {
        return Err("no certificate rows found".into());
    }
    Ok(certs)
}

/// `Jul 14, 2026 09:12 UTC`.
fn parse_kubeadm_time(s: &str) -> Result<Timestamp, String> {
    let dt = jiff::civil::DateTime::strptime("%b %d, %Y %H:%M UTC", s.trim()).map_err(|e| e.to_string())?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).map_err(|e| e.to_string())
}

/// Whether the clock is synchronised: `timedatectl show -p NTPSynchronized` (`yes`/`no`) and/or
/// `chronyc tracking` (`Leap status : Normal`). `None` when neither tool answered.
pub fn parse_time_sync(out: &str) -> Option<bool> {
    let mut answer = None;
    for line in out.lines() {
        if let Some(v) = line.trim().strip_prefix("NTPSynchronized=") {
            match v.trim() {
                "yes" => return Some(true),
                "no" => answer = Some(false),
                _ => {}
            }
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim() == "Leap status"
        {
            if v.trim() == "Normal" {
                return Some(true);
            }
            answer = Some(false);
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_versions_from_runtime_and_kernel_strings() {
        assert_eq!(LooseVersion::parse("v1.7.22"), Some(LooseVersion(1, 7, 22)));
        assert_eq!(LooseVersion::parse("1.6.20~ds1"), Some(LooseVersion(1, 6, 20)));
        assert_eq!(LooseVersion::parse("2.0.0-rc.1"), Some(LooseVersion(2, 0, 0)));
        assert_eq!(LooseVersion::parse("5.15.0-122-generic"), Some(LooseVersion(5, 15, 0)));
        assert_eq!(LooseVersion::parse("4.19"), Some(LooseVersion(4, 19, 0)));
        assert_eq!(LooseVersion::parse("6.8-rc1"), Some(LooseVersion(6, 8, 0)));
        assert_eq!(LooseVersion::parse("garbage"), None);
    }

    #[test]
    fn cgroup_filesystem_types() {
        assert_eq!(parse_cgroup_fs("cgroup2fs\n"), Some(CgroupMode::V2)); // Ubuntu 22.04, RHEL 9
        assert_eq!(parse_cgroup_fs("tmpfs\n"), Some(CgroupMode::V1OrHybrid)); // Ubuntu 20.04, CentOS 7, RHEL 8
        assert_eq!(parse_cgroup_fs("stat: cannot read file system information for '/sys/fs/cgroup'"), None);
    }

    const UBUNTU_OS: &str = "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nID=ubuntu\nID_LIKE=debian\n";
    const ROCKY_OS: &str = "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n";

    #[test]
    fn os_release_families() {
        let u = parse_os_release(UBUNTU_OS);
        assert_eq!((u.id.as_str(), u.version_id.as_str()), ("ubuntu", "22.04"));
        assert!(u.is_debian_family() && !u.is_rhel_family());
        let r = parse_os_release(ROCKY_OS);
        assert_eq!(r.pretty_name, "Rocky Linux 9.4 (Blue Onyx)");
        assert!(r.is_rhel_family() && !r.is_debian_family());
        let d = parse_os_release("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
        assert!(d.is_debian_family());
    }

    #[test]
    fn kernels_of_several_distros() {
        assert_eq!(parse_kernel("5.15.0-122-generic\n"), Some(LooseVersion(5, 15, 0))); // Ubuntu
        assert_eq!(parse_kernel("6.1.0-26-amd64\n"), Some(LooseVersion(6, 1, 0))); // Debian 12
        assert_eq!(parse_kernel("5.14.0-427.13.1.el9_4.x86_64\n"), Some(LooseVersion(5, 14, 0))); // RHEL 9
        assert_eq!(parse_kernel("3.10.0-1160.119.1.el7.x86_64\n"), Some(LooseVersion(3, 10, 0))); // CentOS 7
    }

    #[test]
    fn kubelet_config_settings() {
        let kubeadm_default = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
            authentication:\n  anonymous:\n    enabled: false\ncgroupDriver: systemd\nclusterDNS:\n- 10.96.0.10\n\
            clusterDomain: cluster.local\nrotateCertificates: true\n";
        let c = parse_kubelet_config(kubeadm_default).unwrap();
        assert_eq!(c.fail_cgroup_v1, None);
        assert_eq!(c.cgroup_driver.as_deref(), Some("systemd"));
        assert_eq!(c.flattened.get("authentication.anonymous.enabled").map(String::as_str), Some("false"));
        assert_eq!(c.flattened.get("clusterDNS").map(String::as_str), Some("[\"10.96.0.10\"]"));
        let opted_out = "kind: KubeletConfiguration\nfailCgroupV1: false\nfailSwapOn: false\nmemorySwap:\n  swapBehavior: LimitedSwap\n";
        let c = parse_kubelet_config(opted_out).unwrap();
        assert_eq!((c.fail_cgroup_v1, c.fail_swap_on), (Some(false), Some(false)));
        assert_eq!(c.swap_behavior.as_deref(), Some("LimitedSwap"));
        assert!(parse_kubelet_config("cat: /var/lib/kubelet/config.yaml: No such file or directory").is_err());
    }

    // Ubuntu 22.04 worker (ext4, one root filesystem), no etcd directory.
    const UBUNTU_DF: &str = "path /var/lib/kubelet\n\
        Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
        /dev/sda1         81106868 23190200  57900284      29% /\n\
        path /var/lib/containerd\n\
        Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
        /dev/sdb1        102626232 89012345   8371111      92% /var/lib/containerd\n\
        path /var/lib/etcd\nabsent\n";
    // Rocky 9 control plane (xfs on LVM).
    const ROCKY_DF: &str = "path /var/lib/etcd\n\
        Filesystem                 1024-blocks    Used Available Capacity Mounted on\n\
        /dev/mapper/rl-root           73364480 9876544  63487936      14% /\n\
        path /etc/kubernetes\n\
        Filesystem                 1024-blocks    Used Available Capacity Mounted on\n\
        /dev/mapper/rl-root           73364480 9876544  63487936      14% /\n";

    #[test]
    fn df_sections() {
        let u = parse_disk_section(UBUNTU_DF);
        assert_eq!(u.len(), 3);
        assert_eq!((u[0].path.as_str(), u[0].used_percent, u[0].mounted_on.as_str()), ("/var/lib/kubelet", 29, "/"));
        assert_eq!((u[1].used_percent, u[1].available_kib), (92, 8371111));
        assert!(!u[2].present);
        let r = parse_disk_section(ROCKY_DF);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].filesystem, "/dev/mapper/rl-root");
        assert_eq!(r[1].path, "/etc/kubernetes");
    }

    #[test]
    fn crictl_and_containerd_versions() {
        let ubuntu = "Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  v1.7.22\nRuntimeApiVersion:  v1\n";
        let r = parse_crictl_version(ubuntu).unwrap();
        assert_eq!((r.name.as_str(), r.version.as_str(), r.api_version.as_str()), ("containerd", "v1.7.22", "v1"));
        let rhel_crio = "Version:  0.1.0\nRuntimeName:  cri-o\nRuntimeVersion:  1.30.4\nRuntimeApiVersion:  v1\n";
        assert_eq!(parse_crictl_version(rhel_crio).unwrap().name, "cri-o");
        let down = "time=\"2025-01-10T10:00:00Z\" level=fatal msg=\"validate service connection: validate CRI v1 runtime API for endpoint \\\"unix:///run/containerd/containerd.sock\\\": rpc error: code = Unavailable\"\n";
        assert_eq!(parse_crictl_version(down), None);
        assert_eq!(
            parse_containerd_version("containerd containerd.io 1.7.22 7f7fdf5fed64eb6a7caf99b3e12efcf9d60e311c\n")
                .as_deref(),
            Some("1.7.22") // Docker's containerd.io package, Ubuntu and RHEL alike
        );
        assert_eq!(
            parse_containerd_version("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n")
                .as_deref(),
            Some("1.6.20~ds1") // Debian 12
        );
        assert_eq!(
            parse_containerd_version(
                "containerd github.com/containerd/containerd/v2 v2.0.2 c507a0257ea6462fbd6f5ba4f5c74facb04021f4\n"
            )
            .as_deref(),
            Some("v2.0.2")
        );
    }

    #[test]
    fn proc_swaps() {
        assert!(parse_proc_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n").is_empty());
        let ubuntu = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img                               file\t\t4194300\t\t0\t\t-2\n";
        assert_eq!(parse_proc_swaps(ubuntu)[0].kind, "file");
        let rhel = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-1                               partition\t8253436\t\t1024\t\t-2\n";
        let s = &parse_proc_swaps(rhel)[0];
        assert_eq!((s.name.as_str(), s.size_kib, s.used_kib), ("/dev/dm-1", 8253436, 1024));
    }

    #[test]
    fn package_managers() {
        assert_eq!(parse_package_manager("/usr/bin/apt-get\n"), Some(PackageManager::Apt));
        assert_eq!(parse_package_manager("/usr/bin/dnf\n/usr/bin/yum\n"), Some(PackageManager::Dnf)); // RHEL 8/9
        assert_eq!(parse_package_manager("/usr/bin/yum\n"), Some(PackageManager::Yum)); // CentOS 7
        assert_eq!(parse_package_manager(""), None);
    }

    #[test]
    fn debian_packages_and_holds() {
        let out = "kubeadm 1.34.1-1.1 hi \nkubectl 1.34.1-1.1 ii \nkubelet 1.34.1-1.1 hi \ncri-tools 1.30.0-1.1 rc \n\
            dpkg-query: no packages found matching kubernetes-cni\n";
        let p = parse_dpkg_query(out);
        assert_eq!(p.len(), 3);
        assert_eq!(p["kubelet"], "1.34.1-1.1");
        assert!(!p.contains_key("cri-tools"));
        let holds = parse_apt_holds("kubeadm\nkubectl\nkubelet\n");
        assert_eq!(holds.into_iter().collect::<Vec<_>>(), ["kubeadm", "kubectl", "kubelet"]);
    }

    #[test]
    fn rpm_packages_and_versionlocks() {
        let wanted = ["kubeadm", "kubelet", "kubectl", "cri-tools"];
        let out = "kubeadm-1.34.1-150500.1.1.x86_64\nkubelet-1.34.1-150500.1.1.x86_64\npackage kubectl is not installed\ncri-tools-1.34.0-150500.1.1.aarch64\n";
        let p = parse_rpm_q(out, &wanted);
        assert_eq!(p["kubeadm"], "1.34.1-150500.1.1");
        assert_eq!(p["cri-tools"], "1.34.0-150500.1.1");
        assert!(!p.contains_key("kubectl"));
        let dnf =
            "# Added lock on Mon Jan  6 10:00:00 2025\nkubelet-0:1.34.1-150500.1.1.*\nkubeadm-0:1.34.1-150500.1.1.*\n";
        assert_eq!(parse_versionlock(dnf, &wanted).len(), 2);
        let yum = "0:kubectl-1.28.2-150500.1.1.*\n";
        assert!(parse_versionlock(yum, &wanted).contains("kubectl"));
    }

    #[test]
    fn repository_files() {
        let out = "file /etc/apt/sources.list.d/kubernetes.list\n\
            deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /\n\
            # deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.33/deb/ /\n\
            file /etc/apt/sources.list.d/kubernetes.sources\n\
            Types: deb\nURIs: https://pkgs.k8s.io/core:/stable:/v1.35/deb/\nSuites: /\nEnabled: no\n\
            file /etc/apt/sources.list.d/old.list\n\
            deb https://apt.kubernetes.io/ kubernetes-xenial main\n\
            file /etc/yum.repos.d/kubernetes.repo\n\
            [kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/\nenabled=1\ngpgcheck=1\n\
            gpgkey=https://pkgs.k8s.io/core:/stable:/v1.33/rpm/repodata/repomd.xml.key\n\
            exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n\
            [kubernetes-next]\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.35/rpm/\nenabled=0\n";
        let files = parse_repo_files(out);
        assert_eq!(files.len(), 4);
        assert_eq!(files[0].minors, vec![Minor::new(1, 34)]);
        assert!(files[1].minors.is_empty(), "disabled deb822 source counts for nothing");
        assert!(files[2].legacy && files[2].minors.is_empty());
        assert_eq!(files[3].minors, vec![Minor::new(1, 34)]);
        assert_eq!(files[3].excludes, ["cri-tools", "kubeadm", "kubectl", "kubelet", "kubernetes-cni"]);
    }

    const CERTS: &str = "[check-expiration] Reading configuration from the cluster...\n\
[check-expiration] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'\n\
\n\
CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED\n\
admin.conf                 Jul 14, 2026 09:12 UTC   324d            ca                      no\n\
apiserver                  Sep 02, 2025 09:12 UTC   <invalid>       ca                      no\n\
etcd-server                Jul 14, 2026 09:12 UTC   324d            etcd-ca                 no\n\
front-proxy-client         Jul 14, 2026 09:12 UTC   324d            front-proxy-ca          yes\n\
\n\
CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED\n\
ca                      Jul 12, 2035 09:12 UTC   9y              no\n\
etcd-ca                 Jul 12, 2035 09:12 UTC   9y              no\n";

    #[test]
    fn kubeadm_certificate_tables() {
        // The output is the same on every distro: kubeadm prints it.
        let certs = parse_cert_expiration(CERTS).unwrap();
        assert_eq!(certs.len(), 6);
        assert_eq!(certs[0].name, "admin.conf");
        assert_eq!(certs[0].expires.to_string(), "2026-07-14T09:12:00Z");
        assert_eq!(certs[1].expires.to_string(), "2025-09-02T09:12:00Z");
        assert!(certs[3].externally_managed);
        assert!(certs[4].is_authority && certs[4].name == "ca");
        assert!(parse_cert_expiration("kubeadm: command not found").is_err());
    }

    #[test]
    fn time_sync_sources() {
        assert_eq!(parse_time_sync("NTPSynchronized=yes\n"), Some(true)); // systemd-timesyncd (Debian/Ubuntu)
        assert_eq!(parse_time_sync("NTPSynchronized=no\n"), Some(false));
        let chrony_ok = "Reference ID    : A9FEA97B (169.254.169.123)\nStratum         : 4\nLeap status     : Normal\n";
        assert_eq!(parse_time_sync(chrony_ok), Some(true)); // chronyd (RHEL family)
        let chrony_bad = "Reference ID    : 00000000 ()\nStratum         : 0\nLeap status     : Not synchronised\n";
        assert_eq!(parse_time_sync(chrony_bad), Some(false));
        assert_eq!(parse_time_sync("NTPSynchronized=no\nLeap status     : Normal\n"), Some(true));
        assert_eq!(
            parse_time_sync(
                "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n"
            ),
            None
        );
    }
}

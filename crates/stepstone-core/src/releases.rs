//! The Kubernetes release calendar and per-minor facts, read from `data/releases.toml`.
//!
//! The data lives in a file, not in code, so a new patch or minor is a one-line change with
//! its source next to it. The file is embedded in the binary; nothing is fetched.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::version::{KubeVersion, Minor};

const RELEASES_TOML: &str = include_str!("../../../data/releases.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub minor: Minor,
    pub released: Date,
    pub maintenance: Date,
    pub eol: Date,
    pub latest: KubeVersion,
    pub etcd: String,
    pub kubelet_skew: u32,
    // The node requirements and sources are pre-flight's (`stepstone preflight` prints them);
    // serialised, a release is the row `stepstone versions` prints.
    #[serde(default, skip_serializing)]
    pub cgroup_v2_required: bool,
    #[serde(default, skip_serializing)]
    pub containerd_min: Option<String>,
    #[serde(skip_serializing)]
    pub kernel_min: String,
    #[serde(skip_serializing)]
    pub sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
struct RawRelease {
    minor: Minor,
    released: String,
    maintenance: String,
    eol: String,
    latest: KubeVersion,
    etcd: String,
    kubelet_skew: u32,
    #[serde(default)]
    cgroup_v2_required: bool,
    #[serde(default)]
    containerd_min: Option<String>,
    kernel_min: String,
    sources: Vec<String>,
}

/// From kubeadm `since` on (within its minor), kubeadm deploys etcd `etcd`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdPatch {
    pub since: KubeVersion,
    pub etcd: String,
    pub sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    updated: String,
    containerd_2_required_from: Minor,
    kubelet_skew_n3_from: Minor,
    kubelet_skew_n3_oldest_kubelet: Minor,
    release: Vec<RawRelease>,
    #[serde(default)]
    etcd_patch: Vec<EtcdPatch>,
}

/// Where a minor stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SupportStatus {
    Supported,
    Maintenance,
    EndOfLife,
}

/// The whole release table plus the policy constants that go with it.
#[derive(Debug, Clone)]
pub struct ReleaseData {
    pub updated: Date,
    pub containerd_2_required_from: Minor,
    pub kubelet_skew_n3_from: Minor,
    pub kubelet_skew_n3_oldest_kubelet: Minor,
    releases: BTreeMap<Minor, Release>,
    /// kubeadm's etcd bumps in patch releases, by the first patch that has each.
    etcd_patches: BTreeMap<KubeVersion, EtcdPatch>,
}

fn parse_date(field: &str, minor: Minor, s: &str) -> Date {
    s.parse().unwrap_or_else(|e| panic!("data/releases.toml: {minor} {field} '{s}': {e}"))
}

impl ReleaseData {
    /// The table embedded at build time. A broken data file is a build defect caught by the
    /// tests, so it panics with the row at fault rather than returning an error to users.
    pub fn embedded() -> &'static ReleaseData {
        static DATA: OnceLock<ReleaseData> = OnceLock::new();
        DATA.get_or_init(|| {
            let raw: RawFile = toml::from_str(RELEASES_TOML).expect("data/releases.toml is valid");
            let releases = raw
                .release
                .into_iter()
                .map(|r| {
                    let release = Release {
                        minor: r.minor,
                        released: parse_date("released", r.minor, &r.released),
                        maintenance: parse_date("maintenance", r.minor, &r.maintenance),
                        eol: parse_date("eol", r.minor, &r.eol),
                        latest: r.latest,
                        etcd: r.etcd,
                        kubelet_skew: r.kubelet_skew,
                        cgroup_v2_required: r.cgroup_v2_required,
                        containerd_min: r.containerd_min,
                        kernel_min: r.kernel_min,
                        sources: r.sources,
                    };
                    (release.minor, release)
                })
                .collect();
            ReleaseData {
                updated: raw.updated.parse().expect("data/releases.toml: updated"),
                containerd_2_required_from: raw.containerd_2_required_from,
                kubelet_skew_n3_from: raw.kubelet_skew_n3_from,
                kubelet_skew_n3_oldest_kubelet: raw.kubelet_skew_n3_oldest_kubelet,
                releases,
                etcd_patches: raw.etcd_patch.into_iter().map(|p| (p.since.clone(), p)).collect(),
            }
        })
    }

    pub fn get(&self, minor: Minor) -> Option<&Release> {
        self.releases.get(&minor)
    }

    pub fn all(&self) -> impl Iterator<Item = &Release> {
        self.releases.values()
    }

    pub fn oldest(&self) -> Minor {
        *self.releases.keys().next().expect("release data is not empty")
    }

    pub fn newest(&self) -> Minor {
        *self.releases.keys().next_back().expect("release data is not empty")
    }

    /// The etcd version kubeadm `version` deploys for stacked etcd: the latest patch bump at or
    /// before `version` within its minor, else the minor's value; `None` for an unknown minor.
    pub fn etcd_for(&self, version: &KubeVersion) -> Option<&str> {
        let release = self.get(version.minor())?;
        let bumped = self
            .etcd_patches
            .range(..=version.clone())
            .next_back()
            .filter(|(since, _)| since.minor() == version.minor())
            .map(|(_, p)| p.etcd.as_str());
        Some(bumped.unwrap_or(&release.etcd))
    }

    /// The patch bumps of kubeadm's etcd, oldest first.
    pub fn etcd_patches(&self) -> impl Iterator<Item = &EtcdPatch> {
        self.etcd_patches.values()
    }

    /// The latest known patch of `minor`.
    pub fn latest_patch(&self, minor: Minor) -> Option<&KubeVersion> {
        self.get(minor).map(|r| &r.latest)
    }

    /// How many minors older than an apiserver of `control_plane` a kubelet of `kubelet` may be.
    pub fn kubelet_skew_window(&self, control_plane: Minor, kubelet: Minor) -> u32 {
        let policy = self
            .get(control_plane)
            .map(|r| r.kubelet_skew)
            .unwrap_or(if control_plane >= self.kubelet_skew_n3_from { 3 } else { 2 });
        if kubelet < self.kubelet_skew_n3_oldest_kubelet { policy.min(2) } else { policy }
    }

    pub fn status(&self, minor: Minor, today: Date) -> Option<SupportStatus> {
        let r = self.get(minor)?;
        Some(if today > r.eol {
            SupportStatus::EndOfLife
        } else if today >= r.maintenance {
            SupportStatus::Maintenance
        } else {
            SupportStatus::Supported
        })
    }

    /// Minors that are released and not past end of life on `today`, newest first.
    pub fn supported_on(&self, today: Date) -> Vec<Minor> {
        self.releases.values().rev().filter(|r| r.released <= today && today <= r.eol).map(|r| r.minor).collect()
    }

    /// The newest minor already released on `today`.
    pub fn newest_released(&self, today: Date) -> Option<Minor> {
        self.releases.values().rev().find(|r| r.released <= today).map(|r| r.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_etcd_follows_its_patch_releases() {
        let data = ReleaseData::embedded();
        let v = |s: &str| s.parse::<KubeVersion>().unwrap();
        // kubeadm bumped etcd in v1.33.6: earlier 1.33 patches keep the minor's 3.5.21.
        assert_eq!(data.etcd_for(&v("1.33.0")), Some("3.5.21"));
        assert_eq!(data.etcd_for(&v("1.33.5")), Some("3.5.21"));
        assert_eq!(data.etcd_for(&v("1.33.6")), Some("3.5.24"));
        assert_eq!(data.etcd_for(&v("1.33.13")), Some("3.5.24"));
        // The same bump reached release-1.32 in v1.32.10 and release-1.31 in v1.31.14.
        assert_eq!(data.etcd_for(&v("1.32.9")), Some("3.5.16"));
        assert_eq!(data.etcd_for(&v("1.32.10")), Some("3.5.24"));
        assert_eq!(data.etcd_for(&v("1.31.13")), Some("3.5.14"));
        assert_eq!(data.etcd_for(&v("1.31.14")), Some("3.5.24"));
        // A bump in one minor never leaks into the next.
        assert_eq!(data.etcd_for(&v("1.34.0")), Some(data.get(Minor::new(1, 34)).unwrap().etcd.as_str()));
        assert_eq!(data.etcd_for(&v("1.99.0")), None);
        for p in data.etcd_patches() {
            assert!(!p.sources.is_empty(), "the etcd bump of {} has no source", p.since);
            assert!(data.get(p.since.minor()).is_some(), "{} is of an unknown minor", p.since);
        }
    }

    #[test]
    fn every_minor_from_1_24_to_1_37_is_present_and_ordered() {
        let data = ReleaseData::embedded();
        for m in 24..=37 {
            let r = data.get(Minor::new(1, m)).unwrap_or_else(|| panic!("1.{m} missing"));
            assert!(r.released < r.maintenance && r.maintenance < r.eol, "1.{m} dates out of order");
            assert_eq!(r.latest.minor(), r.minor, "1.{m} latest patch belongs to another minor");
            assert!(!r.sources.is_empty(), "1.{m} has no source");
        }
        assert_eq!(data.oldest(), Minor::new(1, 24));
        assert_eq!(data.newest(), Minor::new(1, 37));
    }

    #[test]
    fn skew_windows_follow_the_policy_history() {
        let data = ReleaseData::embedded();
        assert_eq!(data.kubelet_skew_window(Minor::new(1, 27), Minor::new(1, 26)), 2);
        assert_eq!(data.kubelet_skew_window(Minor::new(1, 28), Minor::new(1, 25)), 3);
        assert_eq!(data.kubelet_skew_window(Minor::new(1, 28), Minor::new(1, 24)), 2);
        assert_eq!(data.kubelet_skew_window(Minor::new(1, 35), Minor::new(1, 32)), 3);
    }

    #[test]
    fn cgroup_v2_becomes_mandatory_in_1_35() {
        let data = ReleaseData::embedded();
        assert!(!data.get(Minor::new(1, 34)).unwrap().cgroup_v2_required);
        assert!(data.get(Minor::new(1, 35)).unwrap().cgroup_v2_required);
        assert!(data.get(Minor::new(1, 37)).unwrap().cgroup_v2_required);
    }

    #[test]
    fn support_status_on_a_given_day() {
        let data = ReleaseData::embedded();
        let day: Date = "2026-11-25".parse().unwrap();
        assert_eq!(data.status(Minor::new(1, 34), day), Some(SupportStatus::EndOfLife));
        assert_eq!(data.status(Minor::new(1, 35), day), Some(SupportStatus::Supported));
        assert_eq!(data.supported_on(day), vec![Minor::new(1, 37), Minor::new(1, 36), Minor::new(1, 35)]);
    }
}

//! Per-distribution package commands for the pkgs.k8s.io repositories, read from
//! `data/packages.toml` so that repository URLs, revisions and hold commands are data.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use stepstone_core::inventory::Node;
use stepstone_core::version::KubeVersion;

use crate::package_index::{IndexFormat, PackageIndex};

const PACKAGES_TOML: &str = include_str!("../../../data/packages.toml");

/// A distribution family: decides the repository file, the package spec and the hold mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    Apt,
    Dnf,
    Zypper,
}

impl Distro {
    pub const ALL: [Distro; 3] = [Distro::Apt, Distro::Dnf, Distro::Zypper];

    pub fn as_str(self) -> &'static str {
        match self {
            Distro::Apt => "apt",
            Distro::Dnf => "dnf",
            Distro::Zypper => "zypper",
        }
    }
}

impl std::fmt::Display for Distro {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Distro {
    type Err = PackageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Distro::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| PackageError::UnknownDistro { input: s.to_string() })
    }
}

/// How the package family of each node is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DistroChoice {
    /// From each node's osImage (a mixed fleet gets per-node commands).
    #[default]
    Auto,
    /// The same family for every node.
    Fixed(Distro),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error("unknown package family '{input}': choose apt, dnf or zypper")]
    UnknownDistro { input: String },
    #[error(
        "node {node} runs '{os_image}', which --distro auto cannot map to apt, dnf or zypper: \
         pass --distro apt|dnf|zypper"
    )]
    UnknownOsImage { node: String, os_image: String },
}

/// One family's commands as written in `data/packages.toml`, placeholders unfilled.
#[derive(Debug, Clone, Deserialize)]
pub struct DistroForms {
    pub description: String,
    pub os_images: Vec<String>,
    pub revision: String,
    pub package_spec: String,
    pub repo_file: String,
    pub repo_switch: Vec<String>,
    pub list_versions: String,
    pub unhold: String,
    pub hold: String,
    pub hold_note: String,
    pub install: String,
    pub downgrade: String,
    pub installed: String,
}

#[derive(Debug, Deserialize)]
struct PackagesFile {
    distro: BTreeMap<Distro, DistroForms>,
}

/// The embedded package data. A malformed file is a build defect caught by the tests.
pub fn forms(distro: Distro) -> &'static DistroForms {
    static DATA: OnceLock<PackagesFile> = OnceLock::new();
    let data = DATA.get_or_init(|| toml::from_str(PACKAGES_TOML).expect("data/packages.toml is valid"));
    data.distro.get(&distro).unwrap_or_else(|| panic!("data/packages.toml has no [distro.{distro}]"))
}

/// The family a node's osImage belongs to (`Ubuntu 22.04.4 LTS` -> apt), if known.
pub fn detect(os_image: &str) -> Option<Distro> {
    let lower = os_image.to_ascii_lowercase();
    Distro::ALL.into_iter().find(|d| forms(*d).os_images.iter().any(|needle| lower.contains(needle.as_str())))
}

/// The family to use for `node` under `choice`.
pub fn distro_for(node: &Node, choice: DistroChoice) -> Result<Distro, PackageError> {
    match choice {
        DistroChoice::Fixed(d) => Ok(d),
        DistroChoice::Auto => detect(&node.os_image)
            .ok_or_else(|| PackageError::UnknownOsImage { node: node.name.clone(), os_image: node.os_image.clone() }),
    }
}

/// The commands of one family, filled for one Kubernetes version: what a runbook prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageCommands {
    pub distro: Distro,
    /// The package version pinned, e.g. `1.35.3-*` (the upstream version exactly, any build), or
    /// the build the repository's index lists (`1.28.14-2.1`).
    pub package_version: String,
    pub repo_file: String,
    /// Lines that point the node at the version's minor repository (may contain a here-document).
    pub repo_switch: String,
    /// Checks that the repository lists the pinned version before anything is installed.
    pub check_available: String,
    pub unhold_kubeadm: String,
    pub install_kubeadm: String,
    pub hold_kubeadm: String,
    pub unhold_kubelet: String,
    pub install_kubelet: String,
    pub hold_kubelet: String,
    /// Downgrade of all three packages to this version (used by the rollback runbook).
    pub downgrade_all: String,
    pub unhold_all: String,
    pub hold_all: String,
    /// Why there is no hold command, when the family pins another way.
    pub hold_note: String,
    pub installed: String,
}

fn fill(template: &str, version: &KubeVersion, revision: &str) -> String {
    template
        .replace("{minor}", &version.minor().to_string())
        .replace("{version}", &version.bare())
        .replace("{revision}", revision)
}

impl PackageCommands {
    /// The commands pinning `'1.x.y-*'`: any build of the upstream version, as kubeadm's docs do.
    pub fn new(distro: Distro, version: &KubeVersion) -> Self {
        Self::indexed(distro, version, &PackageIndex::default())
    }

    /// The commands pinning the exact build the repository's own index lists for each package,
    /// and `'1.x.y-*'` for a package it does not list.
    pub fn indexed(distro: Distro, version: &KubeVersion, index: &PackageIndex) -> Self {
        let f = forms(distro);
        let format = match distro {
            Distro::Apt => IndexFormat::Deb,
            Distro::Dnf | Distro::Zypper => IndexFormat::Rpm,
        };
        let revision_of = |name: &str| index.revision(format, name, &version.bare()).unwrap_or(&f.revision).to_string();
        let spec = |name: &str| fill(&f.package_spec.replace("{name}", name), version, &revision_of(name));
        let specs = |names: &[&str]| names.iter().map(|n| spec(n)).collect::<Vec<_>>().join(" ");
        let with_names = |cmd: &str, names: &[&str]| {
            if cmd.is_empty() {
                String::new()
            } else {
                fill(&cmd.replace("{names}", &names.join(" ")), version, &f.revision)
            }
        };
        let with_packages =
            |cmd: &str, names: &[&str]| fill(&cmd.replace("{packages}", &specs(names)), version, &f.revision);
        let pinned = format!("{}-{}", version.bare(), revision_of("kubeadm"));
        // The revision is whatever build the repository has: look for the upstream version.
        let check_available = format!(
            "{} | grep -F -- '{}-' || echo 'STOP: {} is not in the repository: check {}'",
            fill(&f.list_versions.replace("{name}", "kubeadm"), version, &f.revision),
            version.bare(),
            version.bare(),
            f.repo_file
        );
        PackageCommands {
            distro,
            package_version: pinned,
            repo_file: f.repo_file.clone(),
            repo_switch: f.repo_switch.iter().map(|l| fill(l, version, &f.revision)).collect::<Vec<_>>().join("\n"),
            check_available,
            unhold_kubeadm: with_names(&f.unhold, &["kubeadm"]),
            install_kubeadm: with_packages(&f.install, &["kubeadm"]),
            hold_kubeadm: with_names(&f.hold, &["kubeadm"]),
            unhold_kubelet: with_names(&f.unhold, &["kubelet", "kubectl"]),
            install_kubelet: with_packages(&f.install, &["kubelet", "kubectl"]),
            hold_kubelet: with_names(&f.hold, &["kubelet", "kubectl"]),
            downgrade_all: with_packages(&f.downgrade, &["kubeadm", "kubelet", "kubectl"]),
            unhold_all: with_names(&f.unhold, &["kubeadm", "kubelet", "kubectl"]),
            hold_all: with_names(&f.hold, &["kubeadm", "kubelet", "kubectl"]),
            hold_note: f.hold_note.clone(),
            installed: f.installed.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    #[test]
    fn every_family_is_in_the_data_file() {
        for d in Distro::ALL {
            let f = forms(d);
            assert!(!f.revision.is_empty() && !f.repo_switch.is_empty(), "{d}");
        }
    }

    #[test]
    fn apt_pins_the_deb_revision_and_the_minor_repository() {
        let c = PackageCommands::new(Distro::Apt, &v("v1.35.3"));
        assert_eq!(c.install_kubeadm, "apt-get install -y kubeadm='1.35.3-*'");
        assert_eq!(c.install_kubelet, "apt-get install -y kubelet='1.35.3-*' kubectl='1.35.3-*'");
        assert!(c.check_available.contains("grep -F -- '1.35.3-'"), "{}", c.check_available);
        assert_eq!(c.unhold_kubeadm, "apt-mark unhold kubeadm");
        assert!(c.repo_switch.contains("https://pkgs.k8s.io/core:/stable:/v1.35/deb/ /"), "{}", c.repo_switch);
        assert!(c.repo_switch.contains("/etc/apt/keyrings/kubernetes-apt-keyring.gpg"));
    }

    #[test]
    fn dnf_pins_the_rpm_revision_and_lifts_the_exclude() {
        let c = PackageCommands::new(Distro::Dnf, &v("1.34.6"));
        assert_eq!(c.install_kubeadm, "dnf install -y --disableexcludes=kubernetes kubeadm-'1.34.6-*'");
        assert!(c.repo_switch.contains("baseurl=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/"));
        assert!(c.unhold_kubeadm.is_empty() && !c.hold_note.is_empty());
        assert_eq!(
            c.downgrade_all,
            "dnf downgrade -y --disableexcludes=kubernetes kubeadm-'1.34.6-*' kubelet-'1.34.6-*' kubectl-'1.34.6-*'"
        );
    }

    #[test]
    fn no_family_guesses_a_build_revision() {
        // The v1.28 deb repository has 1.28.14-2.1, not -1.1: a guessed revision fails to install.
        for d in Distro::ALL {
            let c = PackageCommands::new(d, &v("v1.28.14"));
            for cmd in [&c.install_kubeadm, &c.install_kubelet, &c.downgrade_all] {
                assert!(!cmd.contains("-1.1") && !cmd.contains("150500"), "{d}: {cmd}");
                assert!(cmd.contains("1.28.14-*'"), "{d}: {cmd}");
            }
        }
    }

    #[test]
    fn an_index_pins_the_build_the_repository_has() {
        let mut index = PackageIndex::default();
        index.add("Packages", include_str!("../tests/fixtures/package-index/Packages-v1.28")).unwrap();
        index.add("primary.xml", include_str!("../tests/fixtures/package-index/primary-v1.28.xml")).unwrap();
        let apt = PackageCommands::indexed(Distro::Apt, &v("v1.28.14"), &index);
        assert_eq!(apt.install_kubeadm, "apt-get install -y kubeadm='1.28.14-2.1'");
        assert_eq!(apt.install_kubelet, "apt-get install -y kubelet='1.28.14-2.1' kubectl='1.28.14-2.1'");
        assert_eq!(apt.package_version, "1.28.14-2.1");
        let dnf = PackageCommands::indexed(Distro::Dnf, &v("v1.28.14"), &index);
        assert_eq!(dnf.install_kubeadm, "dnf install -y --disableexcludes=kubernetes kubeadm-'1.28.14-150500.2.1'");
        // The rpm excerpt lists no kubectl 1.28.14: that one keeps the wildcard.
        assert_eq!(
            dnf.install_kubelet,
            "dnf install -y --disableexcludes=kubernetes kubelet-'1.28.14-150500.2.1' kubectl-'1.28.14-*'"
        );
        // A version the index does not list is pinned as without an index.
        assert_eq!(
            PackageCommands::indexed(Distro::Apt, &v("v1.29.1"), &index),
            PackageCommands::new(Distro::Apt, &v("v1.29.1"))
        );
    }

    #[test]
    fn os_images_map_to_families() {
        assert_eq!(detect("Ubuntu 22.04.4 LTS"), Some(Distro::Apt));
        assert_eq!(detect("Debian GNU/Linux 12 (bookworm)"), Some(Distro::Apt));
        assert_eq!(detect("Rocky Linux 9.4 (Blue Onyx)"), Some(Distro::Dnf));
        assert_eq!(detect("Red Hat Enterprise Linux 8.10 (Ootpa)"), Some(Distro::Dnf));
        assert_eq!(detect("AlmaLinux 9.3"), Some(Distro::Dnf));
        assert_eq!(detect("openSUSE Leap 15.6"), Some(Distro::Zypper));
        assert_eq!(detect("Flatcar Container Linux"), None);
    }
}

//! Add-on compatibility: which Kubernetes minors the add-ons running in a cluster support, from
//! the projects' published matrices in `data/addons.toml`, judged for every hop of a path.
//!
//! Add-ons are recognised by the images of the cluster's pods (`quay.io/calico/node:v3.29.3`
//! is Calico v3.29.3). A version the table has no row for, or an add-on whose project publishes
//! no matrix, is reported as unknown with the reason: the table is never extrapolated.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::fasthash::FastMap;
use crate::findings::{self, Finding, Severity};
use crate::inventory::Inventory;
use crate::path::UpgradePath;
use crate::snapshot::{image_name, image_tag};
use crate::version::Minor;

const ADDONS_TOML: &str = include_str!("../../../data/addons.toml");

/// An add-on's own release number, read from an image tag (`v3.29.3`, `1.17.9-0`, `v0.15`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddonVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl AddonVersion {
    /// The numeric release in a tag: a leading `v`, then `major.minor[.patch]`; anything after
    /// `-` or `+` (a build suffix) is ignored. `latest` or a digest-only image gives `None`.
    pub fn from_tag(tag: &str) -> Option<AddonVersion> {
        let t = tag.strip_prefix('v').unwrap_or(tag);
        let core = t.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let number = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 9 {
                return None;
            }
            p.parse().ok()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            some => number(some)?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(AddonVersion { major, minor, patch })
    }

    fn line(self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for AddonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The Kubernetes minors a release supports: `min..=max`, or from `min` on with no upper bound
/// published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeRange {
    pub min: Minor,
    pub max: Option<Minor>,
}

impl KubeRange {
    pub fn contains(self, m: Minor) -> bool {
        m >= self.min && self.max.is_none_or(|max| m <= max)
    }

    fn parse(s: &str) -> Option<KubeRange> {
        if let Some(min) = s.strip_suffix('+') {
            return Some(KubeRange { min: min.parse().ok()?, max: None });
        }
        let (min, max) = s.split_once('-')?;
        let range = KubeRange { min: min.parse().ok()?, max: Some(max.parse().ok()?) };
        (range.max >= Some(range.min)).then_some(range)
    }
}

impl fmt::Display for KubeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) => write!(f, "{}-{}", self.min, max),
            None => write!(f, "{}+", self.min),
        }
    }
}

/// One row of an add-on's matrix.
#[derive(Debug, Clone)]
pub struct AddonRelease {
    pub since: AddonVersion,
    /// The last release line the row covers (inclusive).
    pub through: (u32, u32),
    pub kubernetes: KubeRange,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Addon {
    pub name: String,
    /// What it does in the cluster: one of [`ROLES`].
    pub role: String,
    pub images: Vec<String>,
    pub matrix: Option<String>,
    pub no_matrix: Option<String>,
    /// Sorted by `since`.
    pub releases: Vec<AddonRelease>,
}

impl Addon {
    /// Does this image (with or without registry, tag or digest) belong to the add-on?
    pub fn recognises(&self, image: &str) -> bool {
        let name = image_name(image);
        self.images.iter().any(|s| name == s || name.strip_suffix(s.as_str()).is_some_and(|rest| rest.ends_with('/')))
    }

    /// The row that applies to `v`: the newest `since` at or below it, if `v` is still within
    /// the lines that row covers.
    pub fn row(&self, v: AddonVersion) -> Option<&AddonRelease> {
        self.releases.iter().rev().find(|r| r.since <= v).filter(|r| v.line() <= r.through)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    since: String,
    through: Option<String>,
    kubernetes: String,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddon {
    name: String,
    role: String,
    images: Vec<String>,
    matrix: Option<String>,
    no_matrix: Option<String>,
    #[serde(default)]
    release: Vec<RawRelease>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    addon: Vec<RawAddon>,
}

/// The whole add-on table.
#[derive(Debug, Clone)]
pub struct AddonData {
    pub addons: Vec<Addon>,
}

impl AddonData {
    /// The table embedded at build time; a broken row is a build defect the tests catch.
    pub fn embedded() -> &'static AddonData {
        static DATA: OnceLock<AddonData> = OnceLock::new();
        DATA.get_or_init(|| AddonData::parse(ADDONS_TOML).unwrap_or_else(|e| panic!("data/addons.toml: {e}")))
    }

    /// Parse a table in the format of `data/addons.toml`, checking every row.
    pub fn parse(text: &str) -> Result<AddonData, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut addons = Vec::new();
        for a in raw.addon {
            if !ROLES.contains(&a.role.as_str()) {
                return Err(format!("{}: role `{}` is not one of {}", a.name, a.role, ROLES.join(", ")));
            }
            if a.matrix.is_some() == a.no_matrix.is_some() {
                return Err(format!("{}: give exactly one of `matrix` and `no_matrix`", a.name));
            }
            if a.no_matrix.is_some() && !a.release.is_empty() {
                return Err(format!("{}: rows without a matrix to cite", a.name));
            }
            let mut releases = Vec::new();
            for r in a.release {
                let at = |what: &str| format!("{} row since {}: {what}", a.name, r.since);
                let since = AddonVersion::from_tag(&r.since).ok_or_else(|| at("`since` is not x.y.z"))?;
                let through = match &r.through {
                    None => since.line(),
                    Some(t) => {
                        let v = AddonVersion::from_tag(t).ok_or_else(|| at("`through` is not x.y"))?;
                        if v.line() < since.line() {
                            return Err(at("`through` is older than `since`"));
                        }
                        v.line()
                    }
                };
                let kubernetes = KubeRange::parse(&r.kubernetes)
                    .ok_or_else(|| at("`kubernetes` is neither \"1.a-1.b\" nor \"1.a+\""))?;
                if r.source.trim().is_empty() {
                    return Err(at("no source"));
                }
                releases.push(AddonRelease { since, through, kubernetes, source: r.source });
            }
            releases.sort_by_key(|r| r.since);
            if releases.windows(2).any(|w| w[0].since == w[1].since) {
                return Err(format!("{}: two rows with the same `since`", a.name));
            }
            addons.push(Addon {
                name: a.name,
                role: a.role,
                images: a.images,
                matrix: a.matrix,
                no_matrix: a.no_matrix,
                releases,
            });
        }
        Ok(AddonData { addons })
    }

    /// The add-on an image belongs to.
    pub fn identify(&self, image: &str) -> Option<&Addon> {
        self.addons.iter().find(|a| a.recognises(image))
    }
}

/// What an add-on does in the cluster, in the order a staging cluster tests them: device
/// plugins, then the network, storage, ingress, DNS, monitoring, load balancers, certificates.
pub const ROLES: [&str; 8] =
    ["device-plugin", "cni", "csi", "ingress", "dns", "monitoring", "load-balancer", "certificates"];

/// Add-ons the compatibility table does not list, by a substring of the lower-cased image;
/// the first match wins, so device plugins (`sriov-cni`) are tried before network plugins.
const UNLISTED_ROLES: &[(&str, &[&str])] = &[
    ("device-plugin", &["device-plugin", "nvidia", "gpu-operator", "sriov", "intel/intel-"]),
    ("cni", &["calico", "cilium", "flannel", "weave", "kube-router", "antrea", "multus", "kube-ovn", "tigera"]),
    (
        "csi",
        &["csi", "rook", "ceph", "longhorn", "openebs", "local-path-provisioner", "portworx", "topolvm", "nfs-subdir"],
    ),
    ("ingress", &["ingress-nginx", "nginx-ingress", "traefik", "haproxy-ingress", "contour", "envoy", "kong"]),
    ("dns", &["coredns", "k8s-dns-node-cache", "nodelocaldns"]),
    (
        "monitoring",
        &["prometheus", "node-exporter", "kube-state-metrics", "grafana", "alertmanager", "victoria-metrics"],
    ),
    ("load-balancer", &["metallb", "kube-vip"]),
    ("certificates", &["cert-manager"]),
];

/// The role of the add-on an image belongs to: the table's add-on when it lists the image,
/// else a known add-on by name, else none.
pub fn role_of(image: &str) -> Option<&'static str> {
    if let Some(addon) = AddonData::embedded().identify(image) {
        return ROLES.iter().copied().find(|r| *r == addon.role);
    }
    let lower = image.to_ascii_lowercase();
    UNLISTED_ROLES.iter().find(|(_, needles)| needles.iter().any(|n| lower.contains(n))).map(|(role, _)| *role)
}

/// How an add-on version stands on the Kubernetes minor a hop ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HopSupport {
    Supported,
    NotSupported,
    Unknown,
}

impl fmt::Display for HopSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HopSupport::Supported => "supported",
            HopSupport::NotSupported => "not supported",
            HopSupport::Unknown => "unknown",
        })
    }
}

/// One control-plane hop, as the add-on check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub from: Minor,
    pub to: Minor,
}

/// The hops of a path, by the minors the control plane leaves and reaches.
pub fn hops_of(path: &UpgradePath) -> Vec<Hop> {
    path.hops.iter().map(|h| Hop { from: h.from.minor(), to: h.to.minor() }).collect()
}

/// One add-on version on one hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonHop {
    /// 1-based, as `path` and the runbook number hops.
    pub hop: usize,
    pub from: Minor,
    pub to: Minor,
    pub support: HopSupport,
    /// Not supported: the first release that supports both ends of the hop (so it can be
    /// installed before the hop), or failing that the first that supports its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_to: Option<String>,
    /// What `upgrade_to` supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_supports: Option<String>,
}

/// One add-on version found in the cluster, with its verdict per hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundAddon {
    pub name: String,
    /// As the image tag writes it.
    pub version: String,
    /// One image it was recognised by.
    pub image: String,
    pub pods: usize,
    pub namespaces: Vec<String>,
    /// The Kubernetes minors this version supports (`1.29-1.32`, `1.27+`), when the table knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports: Option<String>,
    /// Where `supports` comes from, or why there is nothing to judge by.
    pub source: String,
    pub hops: Vec<AddonHop>,
}

impl FoundAddon {
    /// The hops this version blocks.
    pub fn blocked(&self) -> impl Iterator<Item = &AddonHop> {
        self.hops.iter().filter(|h| h.support == HopSupport::NotSupported)
    }
}

/// The add-ons of a cluster judged for a path's hops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonCheck {
    pub addons: Vec<FoundAddon>,
    pub findings: Vec<Finding>,
}

/// Find the add-ons running in `inv` and judge each against every hop.
pub fn check(inv: &Inventory, hops: &[Hop], data: &AddonData) -> AddonCheck {
    // (add-on index, tag) → (images, pod count, namespaces)
    type Seen = (BTreeSet<String>, usize, BTreeSet<String>);
    let mut seen: BTreeMap<(usize, String), Seen> = BTreeMap::new();
    // Pods share a few images: each distinct image is matched against the add-ons once.
    let mut recognised: FastMap<&str, Option<usize>> = FastMap::default();
    for pod in &inv.pods {
        let mut counted = BTreeSet::new();
        for image in &pod.images {
            let found = *recognised
                .entry(image.as_str())
                .or_insert_with(|| data.addons.iter().position(|a| a.recognises(image)));
            let Some(index) = found else { continue };
            let key = (index, image_tag(image).to_string());
            let entry = seen.entry(key.clone()).or_default();
            if !entry.0.contains(image) {
                entry.0.insert(image.clone());
            }
            if counted.insert(key) {
                entry.1 += 1;
                entry.2.insert(pod.namespace.clone());
            }
        }
    }
    let mut addons = Vec::new();
    let mut findings = Vec::new();
    for ((index, tag), (images, pods, namespaces)) in seen {
        let addon = &data.addons[index];
        let found = judge(addon, &tag, images.into_iter().next().unwrap_or_default(), pods, namespaces, hops);
        findings.extend(findings_for(addon, &found));
        addons.push(found);
    }
    addons.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    findings::sort(&mut findings);
    AddonCheck { addons, findings }
}

fn judge(
    addon: &Addon,
    tag: &str,
    image: String,
    pods: usize,
    namespaces: BTreeSet<String>,
    hops: &[Hop],
) -> FoundAddon {
    let version = AddonVersion::from_tag(tag);
    let row = version.and_then(|v| addon.row(v));
    let source = match (&addon.no_matrix, row, version) {
        (Some(why), _, _) => why.clone(),
        (None, Some(r), _) => r.source.clone(),
        (None, None, None) => format!(
            "the tag '{tag}' carries no version number; pin the image to a release tag to have it judged against {}",
            addon.matrix.as_deref().unwrap_or("its matrix")
        ),
        (None, None, Some(_)) => format!(
            "this release is not in stepstone's table; read {} and add the row with its source to data/addons.toml",
            addon.matrix.as_deref().unwrap_or("the project's matrix")
        ),
    };
    let hops = hops
        .iter()
        .enumerate()
        .map(|(i, hop)| {
            let support = match row {
                None => HopSupport::Unknown,
                Some(r) if r.kubernetes.contains(hop.to) => HopSupport::Supported,
                Some(_) => HopSupport::NotSupported,
            };
            let target = (support == HopSupport::NotSupported)
                .then(|| version.and_then(|v| first_supporting(addon, v, *hop)))
                .flatten();
            AddonHop {
                hop: i + 1,
                from: hop.from,
                to: hop.to,
                support,
                upgrade_to: target.map(|r| r.since.to_string()),
                upgrade_supports: target.map(|r| r.kubernetes.to_string()),
            }
        })
        .collect();
    FoundAddon {
        name: addon.name.clone(),
        version: tag.to_string(),
        image,
        pods,
        namespaces: namespaces.into_iter().collect(),
        supports: row.map(|r| r.kubernetes.to_string()),
        source,
        hops,
    }
}

/// The oldest release newer than `current` that supports the hop's end, preferring one that
/// also runs on the hop's start (so it can go in before the control plane moves).
fn first_supporting(addon: &Addon, current: AddonVersion, hop: Hop) -> Option<&AddonRelease> {
    let newer = || addon.releases.iter().filter(move |r| r.since > current && r.kubernetes.contains(hop.to));
    newer().find(|r| r.kubernetes.contains(hop.from)).or_else(|| newer().next())
}

fn findings_for(addon: &Addon, found: &FoundAddon) -> Vec<Finding> {
    let subject = format!("{} {}", found.name, found.version);
    let blocked: Vec<&AddonHop> = found.blocked().collect();
    if let Some(first) = blocked.first() {
        let hops = blocked.iter().map(|h| format!("{} ({} → {})", h.hop, h.from, h.to)).collect::<Vec<_>>().join(", ");
        let message = format!(
            "{subject} supports Kubernetes {} only (its project's matrix); it does not support hop {hops}",
            found.supports.as_deref().unwrap_or("?"),
        );
        let hint = match (&first.upgrade_to, &first.upgrade_supports) {
            (Some(v), Some(range)) => format!(
                "upgrade {} to {v} or newer (supports {range}) before hop {}; check with `stepstone addons --to v{}`",
                found.name, first.hop, first.to
            ),
            _ => format!(
                "no release in stepstone's table supports Kubernetes {}: read {} for a newer release before hop {}",
                first.to,
                addon.matrix.as_deref().unwrap_or("the project's release notes"),
                first.hop
            ),
        };
        return vec![Finding::new(Severity::Error, "addons.unsupported", subject, message, hint)];
    }
    if found.hops.iter().any(|h| h.support == HopSupport::Unknown) {
        return vec![Finding::new(
            Severity::Warning,
            "addons.unknown",
            subject,
            format!("{} {}: support for the target is unknown", found.name, found.version),
            found.source.clone(),
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Pod;

    fn data() -> &'static AddonData {
        AddonData::embedded()
    }

    fn m(s: &str) -> Minor {
        s.parse().unwrap()
    }

    fn hop(from: &str, to: &str) -> Hop {
        Hop { from: m(from), to: m(to) }
    }

    fn inventory(images: &[&str]) -> Inventory {
        let pods = images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let mut pod = Pod::running("kube-system", &format!("pod-{i}"));
                pod.images = vec![image.to_string()];
                pod
            })
            .collect();
        Inventory { source: "test".into(), pods, ..Default::default() }
    }

    #[test]
    fn the_embedded_table_parses_and_every_row_has_a_source() {
        let d = data();
        for name in [
            "calico",
            "cilium",
            "flannel",
            "ingress-nginx",
            "metallb",
            "cert-manager",
            "rook-ceph",
            "longhorn",
            "csi external-provisioner",
            "csi external-attacher",
            "csi external-resizer",
            "csi external-snapshotter",
            "csi node-driver-registrar",
            "csi livenessprobe",
            "metrics-server",
        ] {
            let a = d.addons.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(a.matrix.is_some() || a.no_matrix.is_some(), "{name}");
            assert!(a.releases.iter().all(|r| !r.source.is_empty()), "{name}");
        }
    }

    #[test]
    fn tags_read_as_versions() {
        for (tag, want) in [
            ("v3.29.3", Some("v3.29.3")),
            ("3.29.3", Some("v3.29.3")),
            ("v1.17.9-0", Some("v1.17.9")),
            ("v0.15", Some("v0.15.0")),
            ("latest", None),
            ("", None),
            ("v1.2.3.4", None),
            ("v1.x.3", None),
        ] {
            assert_eq!(AddonVersion::from_tag(tag).map(|v| v.to_string()).as_deref(), want, "{tag}");
        }
    }

    #[test]
    fn images_are_recognised_by_the_end_of_their_name() {
        let d = data();
        for (image, want) in [
            ("quay.io/calico/node:v3.27.0", Some("calico")),
            ("docker.io/calico/typha:v3.29.1", Some("calico")),
            ("registry.k8s.io/ingress-nginx/controller:v1.9.4@sha256:abc", Some("ingress-nginx")),
            ("registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0", Some("csi node-driver-registrar")),
            ("longhornio/csi-provisioner:v5.2.0", Some("csi external-provisioner")),
            ("quay.io/jetstack/cert-manager-controller:v1.16.2", Some("cert-manager")),
            ("docker.io/rook/ceph:v1.15.0", Some("rook-ceph")),
            ("quay.io/cilium/cilium:v1.18.2", Some("cilium")),
            ("registry.k8s.io/metrics-server/metrics-server:v0.7.2", Some("metrics-server")),
            // Not an add-on of the table, or only sharing a suffix without the slash.
            ("quay.io/calico/node-exporter:v1.0.0", None),
            ("example.com/mycalico/node:v1", None),
            ("docker.io/library/redis:7.4.2", None),
        ] {
            assert_eq!(d.identify(image).map(|a| a.name.as_str()), want, "{image}");
        }
    }

    #[test]
    fn rows_apply_from_since_to_the_end_of_their_lines() {
        let d = data();
        let nginx = d.addons.iter().find(|a| a.name == "ingress-nginx").unwrap();
        let range = |tag: &str| nginx.row(AddonVersion::from_tag(tag).unwrap()).map(|r| r.kubernetes.to_string());
        assert_eq!(range("v1.10.0").as_deref(), Some("1.26-1.29"), "v1.10.0 has its own row");
        assert_eq!(range("v1.10.4").as_deref(), Some("1.26-1.30"));
        assert_eq!(range("v1.11.8").as_deref(), Some("1.26-1.30"), "through 1.11");
        assert_eq!(range("v1.12.1").as_deref(), Some("1.28-1.32"));
        assert_eq!(range("v1.9.4"), None, "older than every row");
        assert_eq!(range("v1.16.0"), None, "a newer line is never extrapolated");
    }

    #[test]
    fn hops_are_judged_with_the_first_release_that_supports_them() {
        struct Case {
            name: &'static str,
            image: &'static str,
            hops: Vec<Hop>,
            want: Vec<(HopSupport, Option<&'static str>)>,
        }
        let cases = [
            Case {
                name: "calico 3.29 across 1.34 → 1.35 needs 3.30, which runs on both",
                image: "quay.io/calico/node:v3.29.3",
                hops: vec![hop("1.34", "1.35")],
                want: vec![(HopSupport::NotSupported, Some("v3.30.0"))],
            },
            Case {
                name: "calico 3.29 is fine up to 1.32, then blocks",
                image: "quay.io/calico/node:v3.29.3",
                hops: vec![hop("1.31", "1.32"), hop("1.32", "1.33")],
                want: vec![(HopSupport::Supported, None), (HopSupport::NotSupported, Some("v3.30.0"))],
            },
            Case {
                name: "ingress-nginx 1.12 to 1.34 needs 1.14 (1.13 stops at 1.33)",
                image: "registry.k8s.io/ingress-nginx/controller:v1.12.1",
                hops: vec![hop("1.33", "1.34")],
                want: vec![(HopSupport::NotSupported, Some("v1.14.0"))],
            },
            Case {
                name: "a minimum-only matrix supports every later minor",
                image: "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0",
                hops: vec![hop("1.34", "1.35")],
                want: vec![(HopSupport::Supported, None)],
            },
            Case {
                name: "longhorn 1.11.2 supports 1.35 (minimum 1.25)",
                image: "longhornio/longhorn-manager:v1.11.2",
                hops: vec![hop("1.34", "1.35")],
                want: vec![(HopSupport::Supported, None)],
            },
            Case {
                name: "no matrix: unknown, never guessed",
                image: "docker.io/flannel/flannel:v0.26.1",
                hops: vec![hop("1.34", "1.35")],
                want: vec![(HopSupport::Unknown, None)],
            },
            Case {
                name: "a release the table does not know: unknown",
                image: "quay.io/calico/node:v3.40.0",
                hops: vec![hop("1.34", "1.35")],
                want: vec![(HopSupport::Unknown, None)],
            },
            Case {
                name: "an untagged image: unknown",
                image: "quay.io/calico/node:latest",
                hops: vec![hop("1.34", "1.35")],
                want: vec![(HopSupport::Unknown, None)],
            },
            Case {
                name: "no release supports both ends: the first that supports the end",
                image: "quay.io/calico/node:v3.26.0",
                hops: vec![hop("1.28", "1.36")],
                want: vec![(HopSupport::NotSupported, Some("v3.32.0"))],
            },
        ];
        for case in cases {
            let report = check(&inventory(&[case.image]), &case.hops, data());
            assert_eq!(report.addons.len(), 1, "{}", case.name);
            let got: Vec<(HopSupport, Option<&str>)> =
                report.addons[0].hops.iter().map(|h| (h.support, h.upgrade_to.as_deref())).collect();
            assert_eq!(got, case.want, "{}", case.name);
            let worst = findings::worst(&report.findings);
            let blocked = case.want.iter().any(|(s, _)| *s == HopSupport::NotSupported);
            assert_eq!(worst == Some(Severity::Error), blocked, "{}: {:?}", case.name, report.findings);
        }
    }

    #[test]
    fn the_finding_says_which_version_to_install_before_which_hop() {
        let report =
            check(&inventory(&["quay.io/calico/node:v3.29.3"]), &[hop("1.33", "1.34"), hop("1.34", "1.35")], data());
        let f = &report.findings[0];
        assert_eq!(f.code, "addons.unsupported");
        assert_eq!(f.subject, "calico v3.29.3");
        assert!(f.message.contains("hop 1 (1.33 → 1.34), 2 (1.34 → 1.35)"), "{}", f.message);
        assert!(f.hint.contains("upgrade calico to v3.30.0 or newer (supports 1.31-1.35) before hop 1"), "{}", f.hint);
    }

    #[test]
    fn one_entry_per_add_on_version_counting_pods_once() {
        let mut inv =
            inventory(&["quay.io/calico/node:v3.29.3", "quay.io/calico/node:v3.29.3", "quay.io/calico/node:v3.30.1"]);
        // A pod with two images of the same add-on version counts once.
        inv.pods[0].images.push("quay.io/calico/cni:v3.29.3".into());
        let report = check(&inv, &[hop("1.34", "1.35")], data());
        let summary: Vec<(&str, usize)> = report.addons.iter().map(|a| (a.version.as_str(), a.pods)).collect();
        assert_eq!(summary, [("v3.29.3", 2), ("v3.30.1", 1)]);
    }

    #[test]
    fn roles_come_from_the_table_then_from_known_names() {
        // Listed add-ons take the table's role, whatever their name contains.
        assert_eq!(role_of("quay.io/calico/node:v3.29.3"), Some("cni"));
        assert_eq!(role_of("registry.k8s.io/sig-storage/livenessprobe:v2.14.0"), Some("csi"));
        assert_eq!(role_of("registry.k8s.io/metrics-server/metrics-server:v0.7.2"), Some("monitoring"));
        assert_eq!(role_of("quay.io/jetstack/cert-manager-controller:v1.16.2"), Some("certificates"));
        // Unlisted ones by name; device plugins before network plugins.
        assert_eq!(role_of("ghcr.io/k8snetworkplumbingwg/sriov-cni:v2.8.1"), Some("device-plugin"));
        assert_eq!(role_of("quay.io/cilium/cilium-envoy:v1.30.9"), Some("cni"));
        assert_eq!(role_of("registry.k8s.io/coredns/coredns:v1.11.3"), Some("dns"));
        assert_eq!(role_of("docker.io/library/postgres:16"), None);
        for a in &AddonData::embedded().addons {
            assert!(ROLES.contains(&a.role.as_str()), "{}: {}", a.name, a.role);
        }
    }

    #[test]
    fn broken_tables_are_refused_with_the_row() {
        for (text, says) in [
            ("[[addon]]\nname='x'\nrole='cni'\nimages=['x']\n", "exactly one of"),
            ("[[addon]]\nname='x'\nrole='network'\nimages=['x']\nmatrix='u'\n", "role `network` is not one of"),
            (
                "[[addon]]\nname='x'\nrole='cni'\nimages=['x']\nmatrix='u'\n[[addon.release]]\nsince='1.0.0'\nkubernetes='1.30-1.28'\nsource='s'\n",
                "x row since 1.0.0",
            ),
            (
                "[[addon]]\nname='x'\nrole='cni'\nimages=['x']\nmatrix='u'\n[[addon.release]]\nsince='1.0.0'\nkubernetes='1.28+'\nsource=' '\n",
                "no source",
            ),
            (
                "[[addon]]\nname='x'\nrole='cni'\nimages=['x']\nno_matrix='n'\n[[addon.release]]\nsince='1.0.0'\nkubernetes='1.28+'\nsource='s'\n",
                "without a matrix",
            ),
        ] {
            let e = AddonData::parse(text).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}

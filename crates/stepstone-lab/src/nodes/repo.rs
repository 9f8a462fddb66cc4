//! The Kubernetes package repository a node installs from, as pkgs.k8s.io serves it: one
//! repository per minor (`core:/stable:/v1.35/deb/`), holding every patch release of that minor
//! known to the release data (deb revision `-1.1`, rpm revision `-150500.1.1`). A node sees
//! only the minor its `kubernetes.list` points at (the `stepstone.io/kubernetes-repository`
//! annotation; a node without one starts on the minor of its installed kubeadm), and an
//! install resolves its version against that repository as apt does: an exact version, a glob
//! such as `1.35.8-*`, or (dnf's form) a bare release.

use stepstone_core::releases::ReleaseData;
use stepstone_core::version::{KubeVersion, Minor, PackageVersion};

use super::{KUBEADM_ANNOTATION, KUBELET_ANNOTATION, NodeOpError, Package, annotation, version_of_package};

/// The minor the node's Kubernetes package repository points at, e.g. `v1.35`.
pub const REPOSITORY_ANNOTATION: &str = "stepstone.io/kubernetes-repository";

/// The revision pkgs.k8s.io gives every deb package.
pub const DEB_REVISION: &str = "1.1";
/// The revision pkgs.k8s.io gives every rpm package.
pub const RPM_REVISION: &str = "150500.1.1";

/// The repository's name as the node configures it: `v1.35`.
pub fn repository_name(minor: Minor) -> String {
    format!("v{minor}")
}

/// The releases the repository of `minor` holds, oldest first; empty when pkgs.k8s.io has no
/// repository for it (a minor the release data does not know).
pub fn releases(minor: Minor) -> Vec<KubeVersion> {
    ReleaseData::embedded()
        .get(minor)
        .map(|r| (0..=r.latest.patch).map(|p| KubeVersion::new(minor.major, minor.minor, p)).collect())
        .unwrap_or_default()
}

/// Every minor pkgs.k8s.io has a repository for, oldest first.
pub fn minors() -> Vec<Minor> {
    ReleaseData::embedded().all().map(|r| r.minor).collect()
}

/// Parse `v1.35`, `1.35` (or a full version, whose minor counts) into a repository minor that exists.
pub fn parse_repository(s: &str) -> Result<Minor, NodeOpError> {
    let unknown = || {
        let known = minors();
        NodeOpError::UnknownRepository {
            given: s.trim().to_string(),
            oldest: known.first().map(|m| repository_name(*m)).unwrap_or_default(),
            newest: known.last().map(|m| repository_name(*m)).unwrap_or_default(),
        }
    };
    let t = s.trim().trim_start_matches('v');
    let minor = match t.split('.').count() {
        2 => format!("{t}.0").parse::<KubeVersion>().map(|v| v.minor()).map_err(|_| unknown())?,
        _ => t.parse::<KubeVersion>().map(|v| v.minor()).map_err(|_| unknown())?,
    };
    if releases(minor).is_empty() {
        return Err(unknown());
    }
    Ok(minor)
}

/// The repository the node is configured with: its annotation, else the minor of its installed
/// kubeadm (else kubelet), as on a freshly provisioned node.
pub fn configured(node: &serde_json::Value) -> Option<Minor> {
    if let Some(r) = annotation(node, REPOSITORY_ANNOTATION) {
        return parse_repository(r).ok();
    }
    [KUBEADM_ANNOTATION, KUBELET_ANNOTATION]
        .iter()
        .find_map(|a| annotation(node, a))
        .and_then(|v| version_of_package(v).ok())
        .map(|v| v.minor())
        .or_else(|| {
            node.pointer("/status/nodeInfo/kubeletVersion")
                .and_then(serde_json::Value::as_str)
                .and_then(|v| v.parse::<KubeVersion>().ok())
                .map(|v| v.minor())
        })
}

/// The second half of apt's "not found": where the version is, or what the repository holds.
fn not_found_hint(
    node: &str,
    package: &str,
    repository: Option<&str>,
    wanted: Option<&str>,
    available: &str,
) -> String {
    match (repository, wanted) {
        (None, _) => format!(
            "the node has no Kubernetes package repository configured; configure one with `stepstone lab node {node} repo v1.35`"
        ),
        (Some(repo), Some(wanted)) => format!(
            "the node's Kubernetes package repository is {repo} and {wanted}'s packages are only in the {wanted} repository; point the node at it first with `stepstone lab node {node} repo {wanted}` (what editing /etc/apt/sources.list.d/kubernetes.list does)"
        ),
        (Some(repo), None) => format!(
            "the node's {repo} repository holds {package} {available}; pick one of those (`apt-cache madison {package}`), or point the node at another minor with `stepstone lab node {node} repo vX.Y`"
        ),
    }
}

/// apt's version glob: `*` matches any run of characters, `?` any one.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_matches(&pattern[1..], text) || (!text.is_empty() && glob_matches(pattern, &text[1..])),
        (Some(b'?'), Some(_)) => glob_matches(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob_matches(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Resolve what `apt-get install PACKAGE=SPEC` (or `dnf install PACKAGE-SPEC`) installs on a
/// node whose repository is `repo`: the exact version string the package manager records.
pub fn resolve(node: &str, repo: Option<Minor>, package: Package, spec: &str) -> Result<String, NodeOpError> {
    let spec = spec.trim();
    let not_found = || {
        let available = repo
            .and_then(|m| {
                let r = releases(m);
                Some(format!("{}-{DEB_REVISION} to {}-{DEB_REVISION}", r.first()?.bare(), r.last()?.bare()))
            })
            .unwrap_or_default();
        let wanted = wanted_minor(spec).filter(|m| Some(*m) != repo && !releases(*m).is_empty()).map(repository_name);
        let repository = repo.map(repository_name);
        let hint = not_found_hint(node, package.name(), repository.as_deref(), wanted.as_deref(), &available);
        NodeOpError::VersionNotFound(format!(
            "{node}: E: Version '{spec}' for '{}' was not found; {hint}",
            package.name()
        ))
    };
    let Some(minor) = repo else { return Err(not_found()) };
    let held = releases(minor);
    if spec.contains(['*', '?']) {
        let pattern = spec.as_bytes();
        return held
            .iter()
            .rev()
            .flat_map(|v| [format!("{}-{DEB_REVISION}", v.bare()), format!("{}-{RPM_REVISION}", v.bare())])
            .find(|candidate| glob_matches(pattern, candidate.as_bytes()))
            .ok_or_else(not_found);
    }
    if let Ok(p) = spec.parse::<PackageVersion>() {
        let known = held.contains(&p.upstream) && (p.revision == DEB_REVISION || p.revision == RPM_REVISION);
        return if known { Ok(p.to_string()) } else { Err(not_found()) };
    }
    // A bare release is dnf's form (`kubeadm-1.35.8`): the package of that release.
    match spec.trim_start_matches('v').parse::<KubeVersion>() {
        Ok(v) if held.contains(&v) => Ok(format!("{}-{DEB_REVISION}", v.bare())),
        Ok(_) => Err(not_found()),
        Err(_) => Err(NodeOpError::BadVersion(spec.to_string())),
    }
}

/// The minor a version spec asks for, when its text says (`1.35.8-*`, `1.35.*`, `1.35.8-1.1`).
fn wanted_minor(spec: &str) -> Option<Minor> {
    let mut parts = spec.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(Minor::new(major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(minor: u32) -> Option<Minor> {
        Some(Minor::new(1, minor))
    }

    #[test]
    fn repositories_hold_every_patch_of_their_minor() {
        let latest = ReleaseData::embedded().latest_patch(Minor::new(1, 35)).unwrap().clone();
        let held = releases(Minor::new(1, 35));
        assert_eq!(held.first().unwrap().canonical(), "v1.35.0");
        assert_eq!(held.last().unwrap(), &latest);
        assert!(releases(Minor::new(1, 99)).is_empty());
    }

    #[test]
    fn exact_versions_resolve_only_when_held() {
        assert_eq!(resolve("n", m(35), Package::Kubeadm, "1.35.0-1.1").unwrap(), "1.35.0-1.1");
        assert_eq!(resolve("n", m(35), Package::Kubeadm, "1.35.0-150500.1.1").unwrap(), "1.35.0-150500.1.1");
        let e = resolve("n", m(34), Package::Kubeadm, "1.34.99-1.1").unwrap_err();
        assert!(e.to_string().contains("E: Version '1.34.99-1.1' for 'kubeadm' was not found"), "{e}");
        assert!(resolve("n", m(35), Package::Kubeadm, "1.35.0-2.1").is_err());
    }

    #[test]
    fn a_minor_outside_the_configured_repository_is_not_found_and_the_fix_named() {
        let e = resolve("cp-01", m(34), Package::Kubeadm, "1.35.0-1.1").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("E: Version '1.35.0-1.1' for 'kubeadm' was not found"), "{text}");
        assert!(text.contains("stepstone lab node cp-01 repo v1.35"), "{text}");
    }

    #[test]
    fn globs_resolve_to_the_newest_match() {
        assert_eq!(resolve("n", m(35), Package::Kubelet, "1.35.8-*").unwrap(), "1.35.8-1.1");
        let latest = releases(Minor::new(1, 35)).last().unwrap().bare();
        assert_eq!(resolve("n", m(35), Package::Kubelet, "1.35.*").unwrap(), format!("{latest}-1.1"));
        assert_eq!(resolve("n", m(35), Package::Kubelet, "1.35.0-1505*").unwrap(), "1.35.0-150500.1.1");
        assert!(resolve("n", m(35), Package::Kubelet, "1.35.99-*").is_err());
        assert!(resolve("n", m(34), Package::Kubelet, "1.35.8-*").is_err());
    }

    #[test]
    fn bare_releases_resolve_like_dnf() {
        assert_eq!(resolve("n", m(35), Package::Kubectl, "1.35.2").unwrap(), "1.35.2-1.1");
        assert_eq!(resolve("n", m(35), Package::Kubectl, "v1.35.2").unwrap(), "1.35.2-1.1");
        assert!(matches!(resolve("n", m(35), Package::Kubectl, "latest"), Err(NodeOpError::BadVersion(_))));
    }

    #[test]
    fn repository_names_parse() {
        assert_eq!(parse_repository("v1.35").unwrap(), Minor::new(1, 35));
        assert_eq!(parse_repository("1.35").unwrap(), Minor::new(1, 35));
        assert_eq!(parse_repository("v1.35.3").unwrap(), Minor::new(1, 35));
        let e = parse_repository("v1.99").unwrap_err().to_string();
        assert!(e.contains("v1.99") && e.contains("v1.24"), "{e}");
        assert!(parse_repository("stable").is_err());
    }
}

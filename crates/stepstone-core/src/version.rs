//! Kubernetes and package version strings: parsing, ordering and minor arithmetic.
//!
//! `semver` is not used for raw strings: it rejects the leading `v` and treats the package
//! revision of `1.35.3-1.1` as a pre-release that sorts below `1.35.3`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("'{input}' is not a Kubernetes version: expected MAJOR.MINOR[.PATCH] such as v1.35.3")]
    Malformed { input: String },
    #[error("'{input}' is not a Kubernetes release: {reason}; write it like v1.35 or v1.35.3")]
    NotARelease { input: String, reason: &'static str },
    #[error("'{input}' is not a package version: expected 1.35.3-1.1 (deb) or 1.35.3-150500.1.1 (rpm)")]
    MalformedPackage { input: String },
}

/// A major.minor pair, the unit of the skew policy and of upgrade hops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor {
    pub major: u32,
    pub minor: u32,
}

impl Minor {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// How many minors `self` is ahead of `other` (negative when behind). Kubernetes has
    /// only ever had major 1, so a different major counts as a very large distance.
    pub fn minus(self, other: Minor) -> i64 {
        if self.major == other.major {
            i64::from(self.minor) - i64::from(other.minor)
        } else {
            (i64::from(self.major) - i64::from(other.major)) * 1000
        }
    }

    pub fn next(self) -> Minor {
        Minor::new(self.major, self.minor + 1)
    }

    pub fn previous(self) -> Option<Minor> {
        self.minor.checked_sub(1).map(|m| Minor::new(self.major, m))
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Minor {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v = KubeVersion::from_str(s)?;
        Ok(v.minor())
    }
}

impl Serialize for Minor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Minor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A pre-release tag such as `rc.1`, ordered like semver: numeric parts numerically,
/// alphanumeric parts lexically, a shorter list before a longer one with the same prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PreRelease(String);

impl PreRelease {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for PreRelease {
    fn cmp(&self, other: &Self) -> Ordering {
        let mut a = self.0.split('.');
        let mut b = other.0.split('.');
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                        (Ok(n), Ok(m)) => n.cmp(&m),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => x.cmp(y),
                    };
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
            }
        }
    }
}

impl PartialOrd for PreRelease {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A Kubernetes version: `v1.35.3`, `1.35`, `v1.36.0-rc.1`, `v1.32.4+k3s1`.
///
/// Build metadata (after `+`) is kept for display but ignored by ordering and equality,
/// as semver prescribes; a pre-release orders before its release.
#[derive(Debug, Clone)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub pre: Option<PreRelease>,
    pub build: Option<String>,
}

impl KubeVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self { major, minor, patch, pre: None, build: None }
    }

    pub fn minor(&self) -> Minor {
        Minor::new(self.major, self.minor)
    }

    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }

    /// The version without build metadata, as kubeadm and the package repositories spell it.
    pub fn canonical(&self) -> String {
        match &self.pre {
            Some(p) => format!("v{}.{}.{}-{}", self.major, self.minor, self.patch, p.as_str()),
            None => format!("v{}.{}.{}", self.major, self.minor, self.patch),
        }
    }

    /// The version without the leading `v`, as used inside package versions.
    pub fn bare(&self) -> String {
        self.canonical()[1..].to_string()
    }

    fn key(&self) -> (u32, u32, u32, bool, Option<&PreRelease>) {
        // A release (no pre-release) sorts after every pre-release of the same triple.
        (self.major, self.minor, self.patch, self.pre.is_none(), self.pre.as_ref())
    }
}

impl PartialEq for KubeVersion {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for KubeVersion {}

impl std::hash::Hash for KubeVersion {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl Ord for KubeVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}
impl PartialOrd for KubeVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn parse_number(part: &str, input: &str) -> Result<u32, VersionError> {
    let malformed = || VersionError::Malformed { input: input.to_string() };
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    part.parse().map_err(|_| malformed())
}

impl FromStr for KubeVersion {
    type Err = VersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let malformed = || VersionError::Malformed { input: input.to_string() };
        let s = input.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let (s, build) = match s.split_once('+') {
            Some((head, build)) if !build.is_empty() => (head, Some(build.to_string())),
            Some(_) => return Err(malformed()),
            None => (s, None),
        };
        let (core, pre) = match s.split_once('-') {
            Some((head, pre)) if !pre.is_empty() => (head, Some(PreRelease(pre.to_string()))),
            Some(_) => return Err(malformed()),
            None => (s, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        let (major, minor, patch) = match parts.as_slice() {
            [ma, mi] => (parse_number(ma, input)?, parse_number(mi, input)?, 0),
            [ma, mi, pa] => (parse_number(ma, input)?, parse_number(mi, input)?, parse_number(pa, input)?),
            _ => return Err(malformed()),
        };
        if pre.is_some() && parts.len() != 3 {
            return Err(malformed());
        }
        Ok(KubeVersion { major, minor, patch, pre, build })
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())?;
        if let Some(b) = &self.build {
            write!(f, "+{b}")?;
        }
        Ok(())
    }
}

impl Serialize for KubeVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubeVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A version request as a user types it: a whole minor (`v1.35`) or an exact patch (`v1.35.3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRequest {
    Minor(Minor),
    Exact(KubeVersion),
}

impl VersionRequest {
    pub fn minor(&self) -> Minor {
        match self {
            VersionRequest::Minor(m) => *m,
            VersionRequest::Exact(v) => v.minor(),
        }
    }
}

impl FromStr for VersionRequest {
    type Err = VersionError;
    /// Stricter than [`KubeVersion`]'s parser, which also reads what nodes report
    /// (`v1.30.4+k3s1`, `v1.29.1-eks-…`): a target is written as upstream names its releases.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let v: KubeVersion = input.parse()?;
        let bare = input.trim();
        let bare = bare.strip_prefix('v').unwrap_or(bare);
        let not_a_release = |reason| VersionError::NotARelease { input: input.to_string(), reason };
        if v.build.is_some() {
            return Err(not_a_release("build metadata (+…) names a distribution's build, not an upstream release"));
        }
        let core = bare.split(['-', '+']).next().unwrap_or(bare);
        if core.split('.').any(|n| n.len() > 1 && n.starts_with('0')) {
            return Err(not_a_release("a number with a leading zero"));
        }
        if core.split('.').count() == 2 { Ok(VersionRequest::Minor(v.minor())) } else { Ok(VersionRequest::Exact(v)) }
    }
}

impl fmt::Display for VersionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRequest::Minor(m) => write!(f, "v{m}"),
            VersionRequest::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// Which packaging a version string came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    Deb,
    Rpm,
}

/// A distribution package version of a Kubernetes component: `1.35.3-1.1` (pkgs.k8s.io deb)
/// or `1.35.3-150500.1.1` (pkgs.k8s.io rpm). The revision is kept verbatim and never
/// interpreted: to pin, pick the exact string the repository lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageVersion {
    pub upstream: KubeVersion,
    pub revision: String,
}

impl PackageVersion {
    /// The usual pkgs.k8s.io format this revision looks like.
    pub fn format(&self) -> PackageFormat {
        if self.revision.starts_with("1505") || self.revision.split('.').count() >= 3 {
            PackageFormat::Rpm
        } else {
            PackageFormat::Deb
        }
    }
}

impl FromStr for PackageVersion {
    type Err = VersionError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = || VersionError::MalformedPackage { input: input.to_string() };
        let s = input.trim();
        // An epoch such as `1:1.35.3-1.1` is legal in deb versions.
        let s = s.split_once(':').map_or(s, |(_, rest)| rest);
        let (up, rev) = s.rsplit_once('-').ok_or_else(bad)?;
        if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'~') {
            return Err(bad());
        }
        let upstream: KubeVersion = up.parse().map_err(|_| bad())?;
        if upstream.pre.is_some() && !up.contains('-') {
            return Err(bad());
        }
        Ok(PackageVersion { upstream, revision: rev.to_string() })
    }
}

impl fmt::Display for PackageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.upstream.bare(), self.revision)
    }
}

impl Serialize for PackageVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_usual_spellings() {
        assert_eq!(v("v1.35.3"), KubeVersion::new(1, 35, 3));
        assert_eq!(v("1.35.3"), KubeVersion::new(1, 35, 3));
        assert_eq!(v("v1.35"), KubeVersion::new(1, 35, 0));
        let rc = v("v1.36.0-rc.1");
        assert_eq!(rc.pre.as_ref().unwrap().as_str(), "rc.1");
        let k3s = v("v1.32.4+k3s1");
        assert_eq!(k3s, KubeVersion::new(1, 32, 4));
        assert_eq!(k3s.to_string(), "v1.32.4+k3s1");
        assert_eq!(k3s.canonical(), "v1.32.4");
    }

    #[test]
    fn refuses_garbage_with_the_input_named() {
        for bad in ["", "v", "1", "1.x.3", "v1.35.3.4", "latest", "1.35-", "1.35.3+", "v1..3"] {
            let err = bad.parse::<KubeVersion>().unwrap_err();
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn prerelease_orders_before_release() {
        assert!(v("v1.36.0-alpha.1") < v("v1.36.0-beta.0"));
        assert!(v("v1.36.0-beta.0") < v("v1.36.0-rc.1"));
        assert!(v("v1.36.0-rc.1") < v("v1.36.0-rc.2"));
        assert!(v("v1.36.0-rc.2") < v("v1.36.0"));
        assert!(v("v1.35.9") < v("v1.36.0-rc.1"));
        assert!(v("v1.36.0-rc.9") < v("v1.36.0-rc.10"));
    }

    #[test]
    fn package_versions() {
        let deb: PackageVersion = "1.35.3-1.1".parse().unwrap();
        assert_eq!(deb.upstream, KubeVersion::new(1, 35, 3));
        assert_eq!(deb.revision, "1.1");
        assert_eq!(deb.format(), PackageFormat::Deb);
        let rpm: PackageVersion = "1.35.3-150500.1.1".parse().unwrap();
        assert_eq!(rpm.upstream, KubeVersion::new(1, 35, 3));
        assert_eq!(rpm.format(), PackageFormat::Rpm);
        assert_eq!(rpm.to_string(), "1.35.3-150500.1.1");
        let legacy: PackageVersion = "1.27.4-00".parse().unwrap();
        assert_eq!(legacy.revision, "00");
        assert!("1.35.3".parse::<PackageVersion>().is_err());
        assert!("kubeadm-1.35".parse::<PackageVersion>().is_err());
    }

    #[test]
    fn requests_keep_minor_or_exact() {
        assert_eq!("v1.35".parse::<VersionRequest>().unwrap(), VersionRequest::Minor(Minor::new(1, 35)));
        assert_eq!("1.35.3".parse::<VersionRequest>().unwrap(), VersionRequest::Exact(KubeVersion::new(1, 35, 3)));
        assert_eq!("v1.35.0".parse::<VersionRequest>().unwrap(), VersionRequest::Exact(KubeVersion::new(1, 35, 0)));
    }

    #[test]
    fn requests_are_written_as_upstream_names_releases() {
        for bad in ["v01.35", "v1.035", "v1.35.03", "v1.35.0+k3s1", "1.35+build"] {
            let e = bad.parse::<VersionRequest>().unwrap_err();
            assert!(matches!(e, VersionError::NotARelease { .. }), "{bad}: {e}");
        }
        // What nodes report is still read.
        assert!("v1.30.4+k3s1".parse::<KubeVersion>().is_ok());
    }

    fn arb_version() -> impl Strategy<Value = KubeVersion> {
        (
            0u32..3,
            0u32..40,
            0u32..20,
            prop::option::of(prop_oneof![
                (0u32..5).prop_map(|n| format!("alpha.{n}")),
                (0u32..5).prop_map(|n| format!("beta.{n}")),
                (0u32..12).prop_map(|n| format!("rc.{n}")),
            ]),
        )
            .prop_map(|(ma, mi, pa, pre)| KubeVersion {
                major: ma,
                minor: mi,
                patch: pa,
                pre: pre.map(PreRelease),
                build: None,
            })
    }

    proptest! {
        #[test]
        fn display_round_trips(ver in arb_version()) {
            let again: KubeVersion = ver.to_string().parse().unwrap();
            prop_assert_eq!(&again, &ver);
            prop_assert_eq!(again.to_string(), ver.to_string());
        }

        #[test]
        fn ordering_is_total_and_consistent(a in arb_version(), b in arb_version(), c in arb_version()) {
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            if a <= b && b <= c { prop_assert!(a <= c); }
            prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
        }

        #[test]
        fn triple_dominates_prerelease(a in arb_version(), b in arb_version()) {
            let ta = (a.major, a.minor, a.patch);
            let tb = (b.major, b.minor, b.patch);
            if ta != tb { prop_assert_eq!(a.cmp(&b), ta.cmp(&tb)); }
        }

        #[test]
        fn build_metadata_never_changes_order(a in arb_version(), meta in "[a-z0-9]{1,6}") {
            let mut with = a.clone();
            with.build = Some(meta);
            prop_assert_eq!(with.cmp(&a), Ordering::Equal);
        }

        #[test]
        fn package_version_keeps_upstream_order(a in arb_version(), b in arb_version()) {
            prop_assume!(a.pre.is_none() && b.pre.is_none());
            let pa: PackageVersion = format!("{}-1.1", a.bare()).parse().unwrap();
            let pb: PackageVersion = format!("{}-150500.1.1", b.bare()).parse().unwrap();
            prop_assert_eq!(pa.upstream.cmp(&pb.upstream), a.cmp(&b));
        }
    }
}

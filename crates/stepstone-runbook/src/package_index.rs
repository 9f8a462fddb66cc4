//! The package revisions a pkgs.k8s.io repository really has, read from its own index: the
//! per-minor deb repository's `Packages` file and the rpm repository's `repodata/*primary.xml`.
//! A runbook built with an index pins the exact build (`kubeadm='1.28.14-2.1'`); without one it
//! pins `'1.28.14-*'`, as kubeadm's documentation does, and never guesses a revision.
//! Reading the index over the network is the binary's business; this module only parses.

use std::collections::BTreeMap;

/// Which package format an index describes: deb revisions do not apply to rpm nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexFormat {
    Deb,
    Rpm,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error(
        "{source_name} is neither a deb `Packages` index nor an rpm `primary.xml`: pass the file from \
         https://pkgs.k8s.io/core:/stable:/v1.NN/deb/Packages or the repodata/*-primary.xml of .../rpm/"
    )]
    Unknown { source_name: String },
    #[error("{source_name}: {detail}")]
    Malformed { source_name: String, detail: String },
    #[error("{source_name} lists no kubeadm, kubelet or kubectl package: is it the Kubernetes repository's index?")]
    NoKubernetesPackages { source_name: String },
}

/// Revisions by format, package name and upstream version (`1.28.14`), the newest build kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageIndex {
    revisions: BTreeMap<(IndexFormat, String, String), String>,
}

/// The packages a runbook installs; other entries of an index are ignored.
const PACKAGES: [&str; 3] = ["kubeadm", "kubelet", "kubectl"];

impl PackageIndex {
    /// Read one index, deb or rpm by its content, and add its revisions.
    pub fn add(&mut self, source_name: &str, text: &str) -> Result<(), IndexError> {
        let head = text.trim_start();
        let found = if head.starts_with("<?xml") || head.starts_with("<metadata") {
            parse_rpm_primary(source_name, text)?
        } else if text.lines().any(|l| l.starts_with("Package:")) {
            parse_deb_packages(source_name, text)?
        } else {
            return Err(IndexError::Unknown { source_name: source_name.to_string() });
        };
        if found.is_empty() {
            return Err(IndexError::NoKubernetesPackages { source_name: source_name.to_string() });
        }
        for (_, name, version, revision) in &found {
            // The revision is pasted into the runbook's shell lines (`kubeadm='1.35.3-1.1'`)
            // and sent to nodes: an index from the network must not be able to add syntax.
            if revision.is_empty() || !revision.chars().all(|c| c.is_ascii_alphanumeric() || ".+~_".contains(c)) {
                return Err(IndexError::Malformed {
                    source_name: source_name.to_string(),
                    detail: format!(
                        "{name} {version} has the build revision {revision:?}, which is not a package revision \
                         (letters, digits and . + ~ _ only): is the index damaged or not the Kubernetes repository's?"
                    ),
                });
            }
        }
        for (format, name, version, revision) in found {
            let slot = self.revisions.entry((format, name, version)).or_default();
            if slot.is_empty() || newer(&revision, slot) {
                *slot = revision;
            }
        }
        Ok(())
    }

    /// The newest revision of `name` at upstream `version` (`1.28.14`), if the index lists it.
    pub fn revision(&self, format: IndexFormat, name: &str, version: &str) -> Option<&str> {
        self.revisions.get(&(format, name.to_string(), version.to_string())).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }
}

/// Where an rpm repository keeps its `primary` index, from its `repodata/repomd.xml`: the
/// `href` of `<data type="primary">`'s `<location>`, relative to the repository's root
/// (`repodata/…-primary.xml.gz`).
pub fn primary_location(repomd: &str) -> Option<&str> {
    let mut rest = repomd;
    while let Some(start) = rest.find("<data ") {
        let body = &rest[start..];
        let end = body.find("</data>")?;
        let data = &body[..end];
        rest = &body[end..];
        let open_tag = &data[..data.find('>')?];
        if attribute(open_tag.trim_start_matches("<data "), "type") != Some("primary") {
            continue;
        }
        let location = between(data, "<location ", ">")?;
        return attribute(location.trim_end_matches('/'), "href");
    }
    None
}

type Entry = (IndexFormat, String, String, String);

/// A Debian `Packages` index: stanzas separated by blank lines, `Package:` and `Version:`
/// fields; the Debian revision is what follows the last `-` of the version.
pub fn parse_deb_packages(source_name: &str, text: &str) -> Result<Vec<Entry>, IndexError> {
    let mut out = Vec::new();
    for (i, stanza) in text.split("\n\n").enumerate() {
        let field = |key: &str| {
            stanza.lines().find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')).map(str::trim))
        };
        let Some(name) = field("Package") else { continue };
        if !PACKAGES.contains(&name) {
            continue;
        }
        let version = field("Version").ok_or_else(|| IndexError::Malformed {
            source_name: source_name.to_string(),
            detail: format!("stanza {} ({name}) has no Version field", i + 1),
        })?;
        // An epoch (`1:`) is not part of the upstream version kubeadm reports.
        let version = version.split_once(':').map_or(version, |(_, v)| v);
        let (upstream, revision) = version.rsplit_once('-').ok_or_else(|| IndexError::Malformed {
            source_name: source_name.to_string(),
            detail: format!("{name} version '{version}' has no Debian revision"),
        })?;
        out.push((IndexFormat::Deb, name.to_string(), upstream.to_string(), revision.to_string()));
    }
    Ok(out)
}

/// An rpm `primary.xml`: one `<package type="rpm">` per build, with `<name>` and
/// `<version epoch=".." ver=".." rel=".."/>`.
pub fn parse_rpm_primary(source_name: &str, text: &str) -> Result<Vec<Entry>, IndexError> {
    let malformed = |detail: String| IndexError::Malformed { source_name: source_name.to_string(), detail };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<package ") {
        let body = &rest[start..];
        let end = body.find("</package>").ok_or_else(|| malformed("a <package> element is not closed".into()))?;
        let package = &body[..end];
        rest = &body[end + "</package>".len()..];
        let name =
            between(package, "<name>", "</name>").ok_or_else(|| malformed("a <package> has no <name>".into()))?;
        if !PACKAGES.contains(&name) {
            continue;
        }
        let version_tag = between(package, "<version ", "/>")
            .ok_or_else(|| malformed(format!("package {name} has no <version .../>")))?;
        let ver = attribute(version_tag, "ver").ok_or_else(|| malformed(format!("package {name}: no ver=")))?;
        let rel = attribute(version_tag, "rel").ok_or_else(|| malformed(format!("package {name}: no rel=")))?;
        out.push((IndexFormat::Rpm, name.to_string(), ver.to_string(), rel.to_string()));
    }
    Ok(out)
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let from = text.find(open)? + open.len();
    let to = text[from..].find(close)? + from;
    Some(text[from..to].trim())
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    for quote in ['"', '\''] {
        let key = format!("{name}={quote}");
        let mut search = tag;
        while let Some(at) = search.find(&key) {
            // A whole attribute name, not the tail of another (`rel` in `xrel`).
            let whole = at == 0 || search.as_bytes()[at - 1].is_ascii_whitespace();
            let value = &search[at + key.len()..];
            if whole {
                return value.find(quote).map(|end| &value[..end]);
            }
            search = value;
        }
    }
    None
}

/// `a` is a later build than `b`: compared part by part, numbers as numbers.
fn newer(a: &str, b: &str) -> bool {
    let parts = |s: &str| -> Vec<(u64, String)> {
        s.split(['.', '-', '+', '~']).map(|p| (p.parse::<u64>().unwrap_or(0), p.to_string())).collect()
    };
    parts(a) > parts(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB: &str = include_str!("../tests/fixtures/package-index/Packages-v1.28");
    const RPM: &str = include_str!("../tests/fixtures/package-index/primary-v1.28.xml");

    #[test]
    fn a_deb_packages_index_gives_each_builds_revision() {
        let mut index = PackageIndex::default();
        index.add("Packages", DEB).unwrap();
        assert_eq!(index.revision(IndexFormat::Deb, "kubeadm", "1.28.14"), Some("2.1"));
        assert_eq!(index.revision(IndexFormat::Deb, "kubelet", "1.28.14"), Some("2.1"));
        assert_eq!(index.revision(IndexFormat::Deb, "kubeadm", "1.28.13"), Some("1.1"));
        assert_eq!(index.revision(IndexFormat::Deb, "kubeadm", "1.28.99"), None);
        // cri-tools shares the repository; it is not pinned by the runbook.
        assert_eq!(index.revision(IndexFormat::Deb, "cri-tools", "1.28.0"), None);
        assert_eq!(index.revision(IndexFormat::Rpm, "kubeadm", "1.28.14"), None, "deb revisions are not rpm ones");
        // A rebuilt version (a second index, or a later stanza): the newest build is pinned.
        index
            .add("Packages", "Package: kubeadm\nVersion: 1.28.14-10.1\n\nPackage: kubeadm\nVersion: 1.28.14-3.1\n")
            .unwrap();
        assert_eq!(index.revision(IndexFormat::Deb, "kubeadm", "1.28.14"), Some("10.1"));
    }

    #[test]
    fn an_rpm_primary_xml_gives_each_builds_release() {
        let mut index = PackageIndex::default();
        index.add("primary.xml", RPM).unwrap();
        assert_eq!(index.revision(IndexFormat::Rpm, "kubeadm", "1.28.14"), Some("150500.2.1"));
        assert_eq!(index.revision(IndexFormat::Rpm, "kubectl", "1.28.13"), Some("150500.1.1"));
        // Attribute order does not matter.
        assert_eq!(index.revision(IndexFormat::Rpm, "kubelet", "1.28.14"), Some("150500.2.1"));
        assert_eq!(index.revision(IndexFormat::Deb, "kubeadm", "1.28.14"), None);
    }

    #[test]
    fn bad_indexes_are_named_with_the_fix() {
        let mut index = PackageIndex::default();
        let e = index.add("index.html", "<html>not found</html>").unwrap_err();
        assert!(e.to_string().contains("index.html is neither") && e.to_string().contains("pkgs.k8s.io"), "{e}");
        let e = index.add("Packages", "Package: nginx\nVersion: 1.24-1\n").unwrap_err();
        assert!(e.to_string().contains("lists no kubeadm"), "{e}");
        let e = index.add("Packages", "Package: kubeadm\nArchitecture: amd64\n").unwrap_err();
        assert!(e.to_string().contains("has no Version field"), "{e}");
        let e = index
            .add("p.xml", "<?xml version=\"1.0\"?><metadata><package type=\"rpm\"><name>kubeadm</name>")
            .unwrap_err();
        assert!(e.to_string().contains("not closed"), "{e}");
        let e = index.add("Packages", "Package: kubeadm\nVersion: 1.35.3-1';reboot;'\n").unwrap_err();
        assert!(e.to_string().contains("not a package revision"), "{e}");
        let e = index
            .add("p.xml", "<metadata><package type=\"rpm\"><name>kubelet</name><version ver=\"1.35.3\" rel=\"1 $(reboot)\"/></package></metadata>")
            .unwrap_err();
        assert!(e.to_string().contains("not a package revision"), "{e}");
        assert!(index.is_empty());
    }

    #[test]
    fn repomd_names_the_primary_index() {
        let repomd = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo">
  <revision>1725000000</revision>
  <data type="filelists"><location href="repodata/aa-filelists.xml.gz"/></data>
  <data type="primary">
    <checksum type="sha256">bb</checksum>
    <location href="repodata/bb-primary.xml.gz"/>
  </data>
  <data type="primary_db"><location href="repodata/cc-primary.sqlite.bz2"/></data>
</repomd>"#;
        assert_eq!(primary_location(repomd), Some("repodata/bb-primary.xml.gz"));
        assert_eq!(primary_location("<repomd><data type=\"other\"><location href=\"x\"/></data></repomd>"), None);
        assert_eq!(primary_location("<html>404</html>"), None);
    }

    #[test]
    fn later_builds_win_numerically() {
        assert!(newer("2.1", "1.1"));
        assert!(newer("10.1", "9.1"));
        assert!(newer("150500.2.1", "150500.1.1"));
        assert!(!newer("1.1", "1.1"));
    }
}

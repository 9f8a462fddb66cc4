//! `--package-index`: the Kubernetes package repository's own index, from a file or over
//! http(s). A URL is either one index (`…/deb/Packages`, `…/rpm/repodata/repomd.xml`, a
//! `…primary.xml[.gz]`) or a repository root such as `https://pkgs.k8s.io/core:/stable:`, under
//! which the per-minor repositories of every minor the plan touches are read
//! (`v1.NN/deb/Packages`, `v1.NN/rpm/repodata/repomd.xml` and the primary index it names). An
//! index that cannot be reached (no network, a timeout, an HTTP error) is not fatal: the
//! versions it would have listed keep kubeadm's documented `'1.x.y-*'` pin, and a note says so.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};

use stepstone_core::plan::Plan;
use stepstone_runbook::package_index::primary_location;
use stepstone_runbook::{Distro, IndexFormat, PackageIndex};

use crate::exit::usage;

/// How long one index may take to arrive, redirects included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

/// Redirects followed before giving up (pkgs.k8s.io answers with one, to its CDN).
const MAX_REDIRECTS: usize = 5;

/// The largest index accepted: today's per-minor indexes are well under a megabyte.
const MAX_INDEX_BYTES: usize = 64 << 20;

/// The index read from every source, and a note for each one that could not be reached.
#[derive(Debug, Default)]
pub struct Resolved {
    pub index: PackageIndex,
    pub notes: Vec<String>,
}

/// The formats to read from a repository root: the fixed family's, or both when each node's
/// family comes from its osImage.
pub fn formats_for(distro: Option<Distro>) -> Vec<IndexFormat> {
    match distro {
        Some(Distro::Apt) => vec![IndexFormat::Deb],
        Some(Distro::Dnf | Distro::Zypper) => vec![IndexFormat::Rpm],
        None => vec![IndexFormat::Deb, IndexFormat::Rpm],
    }
}

/// The Kubernetes minors whose packages a runbook or rollout of `plan` installs or downgrades to.
pub fn minors_of(plan: &Plan) -> BTreeSet<u32> {
    plan.hops.iter().flat_map(|h| [h.from.minor().minor, h.to.minor().minor]).collect()
}

/// What one `--package-index` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File(String),
    /// One index at this URL.
    Index(String),
    /// A repository root: `{root}/v1.NN/deb/Packages` and `{root}/v1.NN/rpm/`.
    Root(String),
}

fn classify(spec: &str) -> Source {
    if !(spec.starts_with("http://") || spec.starts_with("https://")) {
        return Source::File(spec.to_string());
    }
    let path = spec.split(['?', '#']).next().unwrap_or(spec);
    let last = path.rsplit('/').next().unwrap_or("");
    if last == "Packages" || last == "repomd.xml" || last.ends_with("primary.xml") || last.ends_with("primary.xml.gz") {
        Source::Index(spec.to_string())
    } else {
        Source::Root(spec.trim_end_matches('/').to_string())
    }
}

/// Read every `--package-index` value. A file that cannot be read and an index that is not one
/// are bad input (exit 2); a URL that cannot be reached is a note.
pub async fn resolve(specs: &[String], minors: &BTreeSet<u32>, formats: &[IndexFormat]) -> anyhow::Result<Resolved> {
    let mut out = Resolved::default();
    for spec in specs {
        match classify(spec) {
            Source::File(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    usage(format!("cannot read the package index {path}: {e} (give a file or an http(s) URL)"))
                })?;
                out.index.add(&path, &text).map_err(|e| usage(e.to_string()))?;
            }
            Source::Index(url) => {
                if let Err(reason) = read_index(&url, &mut out.index).await? {
                    out.notes.push(format!(
                        "package index {url} not read ({reason}): the versions it lists are pinned as '1.x.y-*'"
                    ));
                }
            }
            Source::Root(root) => {
                for minor in minors {
                    for format in formats {
                        let url = match format {
                            IndexFormat::Deb => format!("{root}/v1.{minor}/deb/Packages"),
                            IndexFormat::Rpm => format!("{root}/v1.{minor}/rpm/repodata/repomd.xml"),
                        };
                        if let Err(reason) = read_index(&url, &mut out.index).await? {
                            let kind = if *format == IndexFormat::Deb { "deb" } else { "rpm" };
                            out.notes.push(format!(
                                "package index {url} not read ({reason}): {kind} packages of v1.{minor} are pinned as '1.{minor}.z-*'"
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Read one index URL into `index`. `Ok(Err(reason))`: not reachable, fall back to the pin;
/// `Err`: the server answered with something that is not a Kubernetes package index.
async fn read_index(url: &str, index: &mut PackageIndex) -> anyhow::Result<Result<(), String>> {
    let body = match fetch(url).await {
        Ok(body) => body,
        Err(reason) => return Ok(Err(reason)),
    };
    let (source, text) = if url.ends_with("repomd.xml") {
        let repomd = String::from_utf8_lossy(&body).into_owned();
        let href = primary_location(&repomd).ok_or_else(|| {
            usage(format!(
                "{url} names no primary index (<data type=\"primary\">): is it an rpm repository's repodata/repomd.xml?"
            ))
        })?;
        let root = url.trim_end_matches("repodata/repomd.xml");
        let primary = format!("{root}{}", href.trim_start_matches('/'));
        let body = match fetch(&primary).await {
            Ok(body) => body,
            Err(reason) => return Ok(Err(format!("{primary}: {reason}"))),
        };
        (primary, body)
    } else {
        (url.to_string(), body)
    };
    let text = match decompress(&source, &text) {
        Ok(text) => text,
        Err(reason) => return Ok(Err(reason)),
    };
    index.add(&source, &text).map_err(|e| usage(e.to_string()))?;
    Ok(Ok(()))
}

/// The index as text: plain, or gzip as rpm repositories publish `primary.xml.gz`.
fn decompress(source: &str, body: &[u8]) -> Result<String, String> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(body)
            .take(MAX_INDEX_BYTES as u64)
            .read_to_string(&mut text)
            .map_err(|e| format!("{source} is not readable gzip: {e}"))?;
        return Ok(text);
    }
    if body.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(format!(
            "{source} is zstd-compressed, which stepstone does not read: decompress it and pass the file with --package-index FILE"
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|_| format!("{source} is neither text nor gzip"))
}

/// GET `url`, following redirects, within [`FETCH_TIMEOUT`]. TLS certificates are checked as
/// for an API server. The error is why the index could not be had.
async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let uri: http::Uri = current.parse().map_err(|_| format!("{current} is not a URL"))?;
        let scheme = uri.scheme_str().unwrap_or_default().to_string();
        if scheme != "http" && scheme != "https" {
            return Err(format!("{current}: only http:// and https:// URLs are read"));
        }
        let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
        let base: http::Uri =
            format!("{scheme}://{authority}").parse().map_err(|_| format!("{current} is not a URL"))?;
        let client = kube::Client::try_from(kube::Config::new(base)).map_err(|e| e.to_string())?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let request = http::Request::get(path.as_str()).body(kube::client::Body::empty()).map_err(|e| e.to_string())?;
        let left = deadline.saturating_duration_since(Instant::now());
        let response = tokio::time::timeout(left, client.send(request))
            .await
            .map_err(|_| format!("no answer within {} s", FETCH_TIMEOUT.as_secs()))?
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("HTTP {status} without a Location"))?;
            current = if location.starts_with("http://") || location.starts_with("https://") {
                location.to_string()
            } else if location.starts_with('/') {
                format!("{scheme}://{authority}{location}")
            } else {
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                format!("{scheme}://{authority}{dir}/{location}")
            };
            continue;
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let body = tokio::time::timeout(left, response.into_body().collect_bytes())
            .await
            .map_err(|_| format!("no complete answer within {} s", FETCH_TIMEOUT.as_secs()))?
            .map_err(|e| e.to_string())?;
        if body.len() > MAX_INDEX_BYTES {
            return Err(format!("larger than {} MiB: not a package index", MAX_INDEX_BYTES >> 20));
        }
        return Ok(body.to_vec());
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_one_index_or_a_repository_root() {
        assert_eq!(classify("Packages-v1.28"), Source::File("Packages-v1.28".into()));
        assert_eq!(classify("/srv/mirror/Packages"), Source::File("/srv/mirror/Packages".into()));
        for one in [
            "https://pkgs.k8s.io/core:/stable:/v1.35/deb/Packages",
            "https://pkgs.k8s.io/core:/stable:/v1.35/rpm/repodata/repomd.xml",
            "http://mirror.lan/k8s/repodata/abc-primary.xml.gz",
            "http://mirror.lan/k8s/primary.xml",
        ] {
            assert_eq!(classify(one), Source::Index(one.into()), "{one}");
        }
        assert_eq!(
            classify("https://pkgs.k8s.io/core:/stable:/"),
            Source::Root("https://pkgs.k8s.io/core:/stable:".into())
        );
    }

    #[test]
    fn a_fixed_family_reads_only_its_format() {
        assert_eq!(formats_for(Some(Distro::Apt)), [IndexFormat::Deb]);
        assert_eq!(formats_for(Some(Distro::Zypper)), [IndexFormat::Rpm]);
        assert_eq!(formats_for(None), [IndexFormat::Deb, IndexFormat::Rpm]);
    }

    #[test]
    fn compressed_indexes_are_read_or_named() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"<metadata/>").unwrap();
        assert_eq!(decompress("p.xml.gz", &gz.finish().unwrap()).unwrap(), "<metadata/>");
        let e = decompress("p.xml.zst", &[0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap_err();
        assert!(e.contains("zstd") && e.contains("--package-index FILE"), "{e}");
        assert_eq!(decompress("Packages", b"Package: kubeadm\n").unwrap(), "Package: kubeadm\n");
    }
}

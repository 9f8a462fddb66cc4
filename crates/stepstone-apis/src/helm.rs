//! Helm 3 releases as Helm stores them: a Secret of type `helm.sh/release.v1` (or a ConfigMap with
//! the `owner=helm` label) whose `data.release` is `base64(gzip(json))` — base64 once more inside a
//! Secret's `data`. Only the newest deployed revision of each release is read: older revisions are
//! history, and what is installed now is what the upgrade must survive.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The Secret type Helm 3 uses for its release records.
pub const RELEASE_SECRET_TYPE: &str = "helm.sh/release.v1";

#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error("{object}: data.release is not base64: {message}")]
    Base64 { object: String, message: String },
    #[error("{object}: data.release is not a gzip stream: {message}")]
    Gzip { object: String, message: String },
    #[error("{object}: the release record is not Helm release JSON: {message}")]
    Json { object: String, message: String },
}

/// The parts of a Helm release record this crate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    pub revision: u64,
    /// `deployed`, `superseded`, `failed`, `pending-upgrade`, ...
    pub status: String,
    /// `chart-1.2.3`
    pub chart: String,
    /// The rendered manifest Helm applied (multi-document YAML with `# Source:` comments).
    pub manifest: String,
}

impl HelmRelease {
    pub fn label(&self) -> String {
        format!("helm release {}/{} revision {}", self.namespace, self.name, self.revision)
    }
}

/// Decode Helm's stored form: `base64(gzip(json))`, or `base64(json)` from Helm versions that did
/// not compress.
pub fn decode_release(object: &str, stored: &[u8]) -> Result<HelmRelease, HelmError> {
    let compact: Vec<u8> = stored.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = STANDARD
        .decode(&compact)
        .map_err(|e| HelmError::Base64 { object: object.to_string(), message: e.to_string() })?;
    let json = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| HelmError::Gzip { object: object.to_string(), message: e.to_string() })?;
        out
    } else {
        bytes
    };
    let record: Value = serde_json::from_slice(&json)
        .map_err(|e| HelmError::Json { object: object.to_string(), message: e.to_string() })?;
    let text = |p: &str| record.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let chart = match (text("/chart/metadata/name"), text("/chart/metadata/version")) {
        (n, v) if !n.is_empty() && !v.is_empty() => format!("{n}-{v}"),
        (n, _) => n,
    };
    let revision = record.get("version").and_then(Value::as_u64).ok_or_else(|| HelmError::Json {
        object: object.to_string(),
        message: "no numeric \"version\" (revision)".to_string(),
    })?;
    Ok(HelmRelease {
        name: text("/name"),
        namespace: text("/namespace"),
        revision,
        status: text("/info/status"),
        chart,
        manifest: text("/manifest"),
    })
}

/// Is this object a Helm release record (Secret of the Helm type, or ConfigMap with `owner=helm`)?
pub fn is_release_object(obj: &Value) -> bool {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let owner = obj.pointer("/metadata/labels/owner").and_then(Value::as_str);
    match kind {
        "Secret" => obj.get("type").and_then(Value::as_str) == Some(RELEASE_SECRET_TYPE),
        "ConfigMap" => owner == Some("helm") && obj.pointer("/data/release").is_some(),
        _ => false,
    }
}

/// Decode one release object. A Secret's `data` values are base64 of the stored bytes; a
/// ConfigMap's hold the stored text as is.
pub fn release_from_object(obj: &Value) -> Result<HelmRelease, HelmError> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let object = format!("{kind} {ns}/{name}");
    let data = obj.pointer("/data/release").and_then(Value::as_str).unwrap_or("");
    let mut release = if kind == "Secret" {
        let stored = STANDARD
            .decode(data.trim())
            .map_err(|e| HelmError::Base64 { object: object.clone(), message: e.to_string() })?;
        decode_release(&object, &stored)?
    } else {
        decode_release(&object, data.as_bytes())?
    };
    if release.namespace.is_empty() {
        release.namespace = ns.to_string();
    }
    Ok(release)
}

/// The newest `deployed` revision of each release (by namespace and name), and a note for every
/// release that has no deployed revision at all.
pub fn newest_deployed(releases: Vec<HelmRelease>) -> (Vec<HelmRelease>, Vec<String>) {
    let mut by_release: BTreeMap<(String, String), Vec<HelmRelease>> = BTreeMap::new();
    for r in releases {
        by_release.entry((r.namespace.clone(), r.name.clone())).or_default().push(r);
    }
    let mut chosen = Vec::new();
    let mut notes = Vec::new();
    for ((ns, name), mut revisions) in by_release {
        revisions.sort_by_key(|r| r.revision);
        match revisions.iter().rev().find(|r| r.status == "deployed") {
            Some(r) => chosen.push(r.clone()),
            None => {
                let last = revisions.last().map(|r| format!("revision {} is {}", r.revision, r.status));
                notes.push(format!(
                    "helm release {ns}/{name} has no deployed revision ({}); nothing read from it",
                    last.unwrap_or_default()
                ));
            }
        }
    }
    (chosen, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_base64_json_is_accepted() {
        let json = r#"{"name":"web","namespace":"shop","version":3,"info":{"status":"deployed"},"manifest":"---\n"}"#;
        let stored = STANDARD.encode(json);
        let r = decode_release("Secret shop/x", stored.as_bytes()).unwrap();
        assert_eq!((r.name.as_str(), r.revision, r.status.as_str()), ("web", 3, "deployed"));
    }

    #[test]
    fn garbage_is_refused_with_the_object_named() {
        let err = decode_release("Secret shop/x", b"!!!").unwrap_err().to_string();
        assert!(err.contains("Secret shop/x"), "{err}");
    }
}

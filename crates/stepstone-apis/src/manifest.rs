//! Reading manifests: multi-document YAML (`---`), JSON, kubectl `List`s, Kustomize output and
//! Helm-rendered output (`# Source:` comments), files or whole directories. Every document is
//! reported with the file and line of its `apiVersion`. Kubelet flags files (`kubeadm-flags.env`,
//! systemd drop-ins) and kubeadm `kubeletExtraArgs` are read for removed kubelet flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifests at {path}: {source}. Pass an existing file or directory to --manifests")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a regular file (a FIFO, device or socket); pass manifest files or directories to --manifests"
    )]
    NotRegular { path: PathBuf },
    #[error("{path} is {size} bytes, more than the {limit} bytes a manifest file may have; pass rendered manifests")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
}

/// The largest manifest file read (rendered charts of a whole cluster stay far below this).
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// One Kubernetes object found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDoc {
    pub file: String,
    /// 1-based line of the object's `apiVersion` in `file`.
    pub line: usize,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The chart template a Helm-rendered document came from (`# Source: web/templates/ing.yaml`).
    pub template: Option<String>,
}

/// A kubelet flag found in a flags file or a kubeadm configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUse {
    pub file: String,
    pub line: usize,
    /// Normalised to `--name` with hyphens.
    pub flag: String,
}

/// Everything found in one or more files.
#[derive(Debug, Default, Clone)]
pub struct ManifestScan {
    pub docs: Vec<ManifestDoc>,
    pub flags: Vec<FlagUse>,
    /// Files or documents that could not be read, each with the fix.
    pub problems: Vec<String>,
    pub files: usize,
}

impl ManifestScan {
    fn merge(&mut self, other: ManifestScan) {
        self.docs.extend(other.docs);
        self.flags.extend(other.flags);
        self.problems.extend(other.problems);
        self.files += other.files;
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<Spanned<String>>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(default)]
    items: Option<Vec<Head>>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// Scan a file or a directory (recursively, in name order). Directories that hold a Helm chart's
/// source (`Chart.yaml`) are not read: their templates are not YAML until rendered.
/// Symlinks are followed, but no directory is read twice: a link back up the tree is reported
/// as a problem instead of being walked forever. Only regular files are read.
pub fn scan_path(path: &Path) -> Result<ManifestScan, ManifestError> {
    scan_path_once(path, &mut std::collections::HashSet::new())
}

fn scan_path_once(
    path: &Path,
    visited: &mut std::collections::HashSet<PathBuf>,
) -> Result<ManifestScan, ManifestError> {
    let io = |source| ManifestError::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        if !meta.is_file() {
            return Err(ManifestError::NotRegular { path: path.to_path_buf() });
        }
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                path: path.to_path_buf(),
                size: meta.len(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let origin = path.display().to_string();
        let Ok(text) = String::from_utf8(bytes) else {
            let mut scan = ManifestScan { files: 1, ..Default::default() };
            scan.problems.push(format!("{origin}: not UTF-8 text; pass YAML or JSON manifests"));
            return Ok(scan);
        };
        return Ok(if is_flags_file(path) { scan_flags_text(&origin, &text) } else { scan_text(&origin, &text) });
    }
    let mut scan = ManifestScan::default();
    if !visited.insert(std::fs::canonicalize(path).map_err(io)?) {
        scan.problems.push(format!("{}: a directory already read (a symlink loop); skipped", path.display()));
        return Ok(scan);
    }
    if path.join("Chart.yaml").is_file() {
        scan.problems.push(format!(
            "{}: a Helm chart source, not rendered manifests; scan `helm template` output or the release (--helm)",
            path.display()
        ));
        return Ok(scan);
    }
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(path).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        let hidden = entry.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() || is_manifest_file(&entry) || is_flags_file(&entry) {
            scan.merge(scan_path_once(&entry, visited)?);
        }
    }
    Ok(scan)
}

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

fn is_manifest_file(path: &Path) -> bool {
    matches!(extension(path).as_str(), "yaml" | "yml" | "json")
}

/// `kubeadm-flags.env`, systemd drop-ins (`10-kubeadm.conf`), `/etc/default/kubelet`.
fn is_flags_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    matches!(extension(path).as_str(), "env" | "conf") || name == "kubelet"
}

/// Split a YAML stream into documents, keeping the line each starts on.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_end();
        let is_separator = trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        if is_separator || trimmed == "..." {
            if !current.trim().is_empty() {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = number;
            // Content after `--- ` on the same line belongs to the next document; blank out the
            // marker so columns and line numbers stay as in the file.
            if is_separator {
                current.push_str(&format!("   {}\n", &trimmed[3..]));
            } else {
                current.push('\n');
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        docs.push((start, current));
    }
    docs
}

/// Scan YAML or JSON text (any number of documents).
pub fn scan_text(origin: &str, text: &str) -> ManifestScan {
    let mut scan = ManifestScan { files: 1, ..Default::default() };
    for (start, doc) in split_documents(text) {
        let template = doc.lines().find_map(|l| l.trim().strip_prefix("# Source:").map(|s| s.trim().to_string()));
        let value: Value = match serde_saphyr::from_str(&doc) {
            Ok(v) => v,
            Err(e) => {
                let hint = if doc.contains("{{") {
                    "; it looks like an unrendered template: scan `helm template` output instead"
                } else {
                    ""
                };
                scan.problems
                    .push(format!("{origin}:{start}: not valid YAML/JSON: {}{hint}", first_line(&e.to_string())));
                continue;
            }
        };
        if !value.is_object() {
            continue;
        }
        collect_kubelet_args(origin, start, &doc, &value, &mut scan.flags);
        let head: Head = match serde_saphyr::from_str(&doc) {
            Ok(h) => h,
            // A document whose kind or metadata has an odd shape is not an object we can judge.
            Err(_) => continue,
        };
        push_head(origin, start, &head, template.as_deref(), &mut scan.docs);
    }
    scan
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn push_head(origin: &str, start: usize, head: &Head, template: Option<&str>, out: &mut Vec<ManifestDoc>) {
    if let Some(items) = &head.items
        && head.kind.as_deref().is_some_and(|k| k == "List" || k.ends_with("List"))
    {
        for item in items {
            push_head(origin, start, item, template, out);
        }
        return;
    }
    let (Some(api_version), Some(kind)) = (&head.api_version, &head.kind) else { return };
    let line = start + (api_version.referenced.line() as usize).saturating_sub(1);
    let meta = head.metadata.as_ref();
    out.push(ManifestDoc {
        file: origin.to_string(),
        line,
        api_version: api_version.value.trim().to_string(),
        kind: kind.clone(),
        namespace: meta.and_then(|m| m.namespace.clone()),
        name: meta.and_then(|m| m.name.clone()),
        template: template.map(str::to_string),
    });
}

/// kubeadm `InitConfiguration`/`JoinConfiguration` `nodeRegistration.kubeletExtraArgs`: a map in
/// v1beta3, a list of `{name, value}` in v1beta4.
fn collect_kubelet_args(origin: &str, start: usize, doc: &str, value: &Value, out: &mut Vec<FlagUse>) {
    let is_kubeadm = value.get("apiVersion").and_then(Value::as_str).is_some_and(|a| a.starts_with("kubeadm.k8s.io/"));
    if !is_kubeadm {
        return;
    }
    let Some(args) = value.pointer("/nodeRegistration/kubeletExtraArgs") else { return };
    let names: Vec<String> = match args {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(list) => {
            list.iter().filter_map(|a| a.get("name").and_then(Value::as_str).map(str::to_string)).collect()
        }
        _ => Vec::new(),
    };
    for name in names {
        let flag = normalise_flag(&name);
        let bare = flag.trim_start_matches('-');
        let line = doc.lines().position(|l| l.contains(bare)).map_or(start, |i| start + i);
        out.push(FlagUse { file: origin.to_string(), line, flag });
    }
}

/// `--housekeeping_interval`, `housekeeping-interval` → `--housekeeping-interval`.
pub fn normalise_flag(name: &str) -> String {
    format!("--{}", name.trim().trim_start_matches('-').replace('_', "-"))
}

/// Read kubelet flags from an env file or systemd drop-in: every `--flag` token on lines that set
/// `KUBELET_*ARGS` or start the kubelet.
pub fn scan_flags_text(origin: &str, text: &str) -> ManifestScan {
    let mut scan = ManifestScan { files: 1, ..Default::default() };
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        let relevant =
            trimmed.contains("KUBELET_") || (trimmed.starts_with("ExecStart=") && trimmed.contains("kubelet"));
        if !relevant {
            continue;
        }
        for token in trimmed.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            let token = token.split_once("=--").map_or(token, |(_, rest)| rest);
            let token = if token.starts_with("--") { token } else { continue };
            let name = token.split('=').next().unwrap_or(token);
            if name.len() > 2 {
                scan.flags.push(FlagUse { file: origin.to_string(), line: index + 1, flag: normalise_flag(name) });
            }
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_point_at_each_documents_api_version() {
        let text = "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n\n# Source: web/templates/ing.yaml\nkind: Ingress\napiVersion: extensions/v1beta1\nmetadata:\n  name: web\n  namespace: shop\n";
        let scan = scan_text("f.yaml", text);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(scan.docs.len(), 2);
        assert_eq!((scan.docs[0].line, scan.docs[0].kind.as_str()), (3, "ConfigMap"));
        assert_eq!((scan.docs[1].line, scan.docs[1].api_version.as_str()), (11, "extensions/v1beta1"));
        assert_eq!(scan.docs[1].template.as_deref(), Some("web/templates/ing.yaml"));
        assert_eq!(scan.docs[1].namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn json_lists_report_each_item() {
        let text = r#"{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {
      "apiVersion": "batch/v1beta1",
      "kind": "CronJob",
      "metadata": {"name": "a", "namespace": "n"}
    },
    {
      "apiVersion": "policy/v1beta1",
      "kind": "PodDisruptionBudget",
      "metadata": {"name": "b", "namespace": "n"}
    }
  ]
}"#;
        let scan = scan_text("l.json", text);
        let got: Vec<(usize, &str)> = scan.docs.iter().map(|d| (d.line, d.kind.as_str())).collect();
        assert_eq!(got, vec![(6, "CronJob"), (11, "PodDisruptionBudget")]);
    }

    #[test]
    fn a_broken_document_does_not_hide_the_others() {
        let text = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: a}\n---\nkey: [unclosed\n---\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: b}\n";
        let scan = scan_text("b.yaml", text);
        assert_eq!(scan.docs.len(), 2);
        assert_eq!(scan.docs[1].line, 7);
        assert_eq!(scan.problems.len(), 1);
        assert!(scan.problems[0].starts_with("b.yaml:4:"), "{}", scan.problems[0]);
    }

    #[test]
    fn flags_files_yield_flags_with_lines() {
        let text = "# generated\nKUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9 --housekeeping_interval 10s\"\n";
        let scan = scan_flags_text("kubeadm-flags.env", text);
        let flags: Vec<&str> = scan.flags.iter().map(|f| f.flag.as_str()).collect();
        assert_eq!(
            flags,
            vec!["--container-runtime-endpoint", "--pod-infra-container-image", "--housekeeping-interval"]
        );
        assert!(scan.flags.iter().all(|f| f.line == 2));
    }

    #[test]
    fn a_symlink_loop_is_read_once_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("apps");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("cron.yaml"), "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: a}\n")
            .unwrap();
        std::os::unix::fs::symlink(dir.path(), sub.join("loop")).unwrap();
        let scan = scan_path(dir.path()).expect("a loop ends");
        assert_eq!(scan.docs.len(), 1, "{:?}", scan.docs);
        assert!(scan.problems.iter().any(|p| p.contains("symlink loop")), "{:?}", scan.problems);
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo (coreutils) is needed");
        assert!(made.success());
        let err = scan_path(dir.path()).expect_err("a FIFO is refused, not read");
        assert!(matches!(err, ManifestError::NotRegular { .. }), "{err}");
        assert!(err.to_string().contains("pipe.yaml"), "{err}");
        assert!(matches!(scan_path(Path::new("/dev/zero")), Err(ManifestError::NotRegular { .. })));
    }
}

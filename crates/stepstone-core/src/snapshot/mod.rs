//! Turning Kubernetes JSON (a `kubectl get … -o json` List, single objects, or what the live
//! collector fetched) into an [`Inventory`].
//!
//! One parser serves every source, so a snapshot file and a live cluster can never disagree
//! about what a field means. Errors name the file and the object.

mod fields;
mod kinds;
mod pods;
pub mod stream;
pub mod volumes;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fasthash::FastMap;

use crate::inventory::*;
pub use fields::is_dns1123_subdomain;
use fields::str_at;
pub(crate) use fields::type_name;
pub use kinds::{node_selector_terms, parse_node, parse_pdb, parse_pod, parse_workload};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not valid JSON at line {line}, column {column}: {message}. Write it with `kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json > cluster.json` or `stepstone snapshot`"
    )]
    Json { path: String, line: usize, column: usize, message: String },
    #[error(
        "{path}: expected a kubectl List (\"kind\": \"List\" with \"items\") or a Kubernetes object, found {found}"
    )]
    NotAList { path: String, found: String },
    #[error("{path}: {kind} {name}: {reason}")]
    Object { path: String, kind: String, name: String, reason: String },
    #[error(
        "{path}: no nodes found; the snapshot must include nodes (kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json)"
    )]
    NoNodes { path: String },
    #[error("{path}: a directory with no .json files")]
    EmptyDir { path: String },
    #[error(
        "{path} is {what}, not a regular file; give a snapshot file (or a directory of .json files) written with `stepstone snapshot` or `kubectl get … -o json`"
    )]
    NotRegular { path: String, what: &'static str },
    #[error(
        "{path}: {what} is larger than {limit} bytes, which no Kubernetes object is; check that the file is a snapshot"
    )]
    TooLarge { path: String, what: String, limit: usize },
    #[error(
        "{path}: {found} in \"items\", where a Kubernetes object was expected; remove it or take the snapshot again"
    )]
    NotAnObject { path: String, found: &'static str },
    #[error(
        "{kind} {name} is in the snapshot twice ({first} and {second}); give each object once (one file per kind, or one List)"
    )]
    Duplicate { kind: String, name: String, first: String, second: String },
}

/// How to read hardware generations and other site conventions.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    pub generation_labels: Vec<String>,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions { generation_labels: DEFAULT_GENERATION_LABELS.iter().map(|s| s.to_string()).collect() }
    }
}

/// A parsed but not yet assembled set of objects, with where each came from.
#[derive(Debug, Default)]
pub struct ObjectSet {
    /// (origin, object)
    pub objects: Vec<(String, Value)>,
    /// Apiserver `/version` `gitVersion`, when the source knows it.
    pub server_version: Option<String>,
    /// The item kind and `apiVersion` of the last raw API list read (`PodList` → `Pod`), which
    /// its items do not carry.
    pub list_kind: Option<(String, Option<String>)>,
}

impl ObjectSet {
    /// Add the items of a List, a `XxxList`, or a single object.
    pub fn add_document(&mut self, origin: &str, mut doc: Value) -> Result<(), SnapshotError> {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        if let Some(Value::Array(items)) = doc.get_mut("items").filter(|i| i.is_array()).map(Value::take) {
            // kubectl get -o json lists carry kind on every item; a raw API list (`PodList`)
            // does not, so fill it in from the list kind.
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty()).map(str::to_string);
            let api_version = doc.get("apiVersion").cloned();
            self.list_kind =
                item_kind.clone().map(|k| (k, api_version.as_ref().and_then(Value::as_str).map(str::to_string)));
            self.objects.reserve(items.len());
            for (index, mut item) in items.into_iter().enumerate() {
                if !item.is_object() {
                    return Err(SnapshotError::NotAnObject {
                        path: format!("{origin} items[{index}]"),
                        found: type_name(&item),
                    });
                }
                if item.get("kind").is_none()
                    && let (Some(k), Some(obj)) = (&item_kind, item.as_object_mut())
                {
                    obj.insert("kind".into(), Value::String(k.clone()));
                    if let Some(av) = &api_version {
                        obj.insert("apiVersion".into(), av.clone());
                    }
                }
                self.objects.push((origin.to_string(), item));
            }
            return Ok(());
        }
        if kind.is_empty() || doc.get("metadata").is_none() {
            let found = match &doc {
                Value::Object(_) if kind.is_empty() => "an object without \"kind\"".to_string(),
                Value::Object(_) => format!("kind {kind} without metadata"),
                Value::Array(_) => "a JSON array".to_string(),
                other => format!("a JSON {}", type_name(other)),
            };
            return Err(SnapshotError::NotAList { path: origin.to_string(), found });
        }
        self.objects.push((origin.to_string(), doc));
        Ok(())
    }

    pub fn add_json_text(&mut self, origin: &str, text: &str) -> Result<(), SnapshotError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| SnapshotError::Json {
            path: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        self.add_document(origin, doc)
    }

    /// Read a file, or every `*.json` file of a directory in name order (regular files only).
    pub fn add_path(&mut self, path: &Path) -> Result<(), SnapshotError> {
        for file in stream::snapshot_files(&[path.to_path_buf()])? {
            let text =
                std::fs::read_to_string(&file).map_err(|source| SnapshotError::Io { path: file.clone(), source })?;
            self.add_json_text(&file.display().to_string(), &text)?;
        }
        Ok(())
    }

    /// Build the inventory. Unknown kinds are ignored (a snapshot may hold more than we need).
    pub fn into_inventory(self, source: &str, opts: &SnapshotOptions) -> Result<Inventory, SnapshotError> {
        let mut builder = InventoryBuilder::new(source, opts);
        builder.server_version(self.server_version.as_deref());
        for (origin, obj) in &self.objects {
            builder.add(origin, obj)?;
        }
        builder.finish()
    }
}

/// Parses objects one at a time into an inventory, so a caller reading page after page (the
/// live collector) can drop each page once it is parsed instead of holding the whole cluster.
#[derive(Debug)]
pub struct InventoryBuilder {
    inv: Inventory,
    opts: SnapshotOptions,
    /// Every object added, with where it came from: an index into `origins`, and the index in
    /// a List's `items` (the name of the place is only written out for an error).
    seen: FastMap<(String, String, String), (usize, Option<usize>)>,
    /// The files and URLs objects came from, each once.
    origins: Vec<String>,
}

impl InventoryBuilder {
    pub fn new(source: &str, opts: &SnapshotOptions) -> Self {
        InventoryBuilder {
            inv: Inventory { source: source.to_string(), ..Default::default() },
            opts: opts.clone(),
            seen: Default::default(),
            origins: Vec::new(),
        }
    }

    /// The apiserver's `/version` `gitVersion`, when known.
    pub fn server_version(&mut self, version: Option<&str>) {
        self.inv.server_version = version.and_then(|v| v.parse().ok());
    }

    /// Make room for `pods` more pods among `objects` more objects, when the caller knows (or
    /// can estimate) how many are coming.
    pub fn reserve(&mut self, pods: usize, objects: usize) {
        self.inv.pods.reserve(pods);
        self.seen.reserve(objects);
    }

    /// Parse one object; `origin` names the file or URL for errors.
    pub fn add(&mut self, origin: &str, obj: &Value) -> Result<(), SnapshotError> {
        let parsed = ParsedObject::parse(origin, obj, &self.opts)?;
        self.add_parsed(origin, parsed)
    }

    /// Add an object parsed elsewhere (on another thread) with [`ParsedObject::parse`]. An object
    /// given twice (the same kind, namespace and name) is refused: which copy is right cannot be
    /// told, and keeping either silently would plan on a guess.
    pub fn add_parsed(&mut self, origin: &str, object: ParsedObject) -> Result<(), SnapshotError> {
        self.add_from(origin, None, object)
    }

    /// Add an object parsed elsewhere that is `items[index]` of the List in `file`.
    pub fn add_item(&mut self, file: &str, index: usize, object: ParsedObject) -> Result<(), SnapshotError> {
        self.add_from(file, Some(index), object)
    }

    fn add_from(&mut self, origin: &str, index: Option<usize>, object: ParsedObject) -> Result<(), SnapshotError> {
        let ParsedObject { kind, namespace, name, parsed } = object;
        if matches!(parsed, Parsed::Ignored) {
            return Ok(());
        }
        if self.origins.last().map(String::as_str) != Some(origin) {
            self.origins.push(origin.to_string());
        }
        let here = (self.origins.len() - 1, index);
        let key = (kind, namespace, name);
        if let Some(&first) = self.seen.get(&key) {
            let (kind, ns, name) = key;
            let place = |(origin, index): (usize, Option<usize>)| match index {
                Some(i) => format!("{} items[{i}]", self.origins[origin]),
                None => self.origins[origin].clone(),
            };
            return Err(SnapshotError::Duplicate {
                kind,
                name: if ns.is_empty() { name } else { format!("{ns}/{name}") },
                first: place(first),
                second: place(here),
            });
        }
        self.seen.insert(key, here);
        let inv = &mut self.inv;
        match parsed {
            Parsed::Node(n) => inv.nodes.push(n),
            Parsed::Pod(p) => inv.pods.push(p),
            Parsed::Pdb(p) => inv.pdbs.push(p),
            Parsed::Workload(w) => inv.workloads.push(w),
            Parsed::Volume(v) => inv.volumes.push(v),
            Parsed::Claim(c) => inv.claims.push(c),
            Parsed::Ignored => {}
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Inventory, SnapshotError> {
        let InventoryBuilder { mut inv, seen, .. } = self;
        if inv.nodes.is_empty() {
            return Err(SnapshotError::NoNodes { path: inv.source.clone() });
        }
        // Freeing the duplicate check (three strings per object) on a second thread overlaps
        // the sorting instead of coming after it.
        std::thread::scope(|s| {
            s.spawn(move || drop(seen));
            finish(&mut inv);
        });
        Ok(inv)
    }
}

/// One object turned into what the inventory keeps of it, with its identity.
#[derive(Debug)]
pub struct ParsedObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub parsed: Parsed,
}

/// What an object of each kind becomes; kinds the inventory does not read are `Ignored`.
#[derive(Debug)]
pub enum Parsed {
    Node(Node),
    Pod(Pod),
    Pdb(Pdb),
    Workload(Workload),
    Volume(PersistentVolume),
    Claim(VolumeClaim),
    Ignored,
}

impl ParsedObject {
    /// Parse one object with the parser of its kind; `origin` names the file or URL for errors.
    pub fn parse(origin: &str, obj: &Value, opts: &SnapshotOptions) -> Result<ParsedObject, SnapshotError> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let ns = str_at(obj, &["metadata", "namespace"]).unwrap_or("");
        let name = str_at(obj, &["metadata", "name"]).unwrap_or("");
        let wrap = |reason: String| SnapshotError::Object {
            path: origin.to_string(),
            kind: kind.to_string(),
            name: if ns.is_empty() { name.to_string() } else { format!("{ns}/{name}") },
            reason,
        };
        let parsed = match kind {
            "Node" => Parsed::Node(parse_node(obj, opts).map_err(wrap)?),
            "Pod" => Parsed::Pod(parse_pod(obj).map_err(wrap)?),
            "PodDisruptionBudget" => Parsed::Pdb(parse_pdb(obj).map_err(wrap)?),
            _ if WorkloadKind::from_kind(kind).is_some() => Parsed::Workload(parse_workload(obj).map_err(wrap)?),
            "PersistentVolume" => Parsed::Volume(volumes::parse_volume(obj).map_err(wrap)?),
            "PersistentVolumeClaim" => Parsed::Claim(volumes::parse_claim(obj).map_err(wrap)?),
            _ => Parsed::Ignored,
        };
        Ok(ParsedObject { kind: kind.to_string(), namespace: ns.to_string(), name: name.to_string(), parsed })
    }
}

/// Read snapshot files or directories into an inventory, streaming each file
/// ([`stream`]).
pub fn load_paths(paths: &[PathBuf], opts: &SnapshotOptions) -> Result<Inventory, SnapshotError> {
    stream::load_paths(paths, opts)
}

/// Read snapshot files or directories whole into one set of objects, then into an inventory:
/// the reader for callers that need every field of every object (the removed-API scan), and the
/// reference the streaming reader is tested against.
pub fn load_paths_whole(paths: &[PathBuf], opts: &SnapshotOptions) -> Result<Inventory, SnapshotError> {
    let mut set = ObjectSet::default();
    for p in paths {
        set.add_path(p)?;
    }
    let source = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    set.into_inventory(&format!("snapshot {source}"), opts)
}

/// Parse one JSON text (for embedded examples and tests).
pub fn load_str(origin: &str, text: &str, opts: &SnapshotOptions) -> Result<Inventory, SnapshotError> {
    let mut set = ObjectSet::default();
    set.add_json_text(origin, text)?;
    set.into_inventory(&format!("snapshot {origin}"), opts)
}

/// Derive what needs more than one object: components from static pods, kube-proxy per node,
/// and a stable order.
fn finish(inv: &mut Inventory) {
    let mut components = Vec::new();
    for pod in &inv.pods {
        let Some(node) = &pod.node_name else { continue };
        if pod.namespace != "kube-system" {
            continue;
        }
        let component = pod
            .labels
            .get("component")
            .and_then(|c| Component::from_name(c))
            .filter(|c| *c != Component::KubeProxy)
            .or_else(|| {
                (pod.labels.get("k8s-app").map(String::as_str) == Some("kube-proxy")).then_some(Component::KubeProxy)
            });
        let Some(component) = component else { continue };
        let Some(image) =
            pod.images.iter().find(|i| image_name(i).ends_with(component.as_str())).or(pod.images.first())
        else {
            continue;
        };
        components.push(ComponentInstance {
            component,
            node: node.clone(),
            image: image.clone(),
            tag: image_tag(image).to_string(),
        });
    }
    components.sort();
    // Each node's first kube-proxy in that order, found by name rather than by a search of
    // every component per node (one kube-proxy per node makes that quadratic).
    let mut kube_proxies: FastMap<&str, &ComponentInstance> = FastMap::default();
    for c in components.iter().filter(|c| c.component == Component::KubeProxy) {
        kube_proxies.entry(c.node.as_str()).or_insert(c);
    }
    for node in &mut inv.nodes {
        node.kube_proxy_version = kube_proxies.get(node.name.as_str()).and_then(|c| c.version());
    }
    drop(kube_proxies);
    inv.components = components;
    inv.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    inv.pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    inv.pdbs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    inv.workloads.sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    inv.volumes.sort_by(|a, b| a.name.cmp(&b.name));
    inv.claims.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    inv.claim_nodes = crate::volumes::claim_nodes(inv);
}

/// `registry.k8s.io/kube-apiserver:v1.34.2` → `registry.k8s.io/kube-apiserver`.
pub fn image_name(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => no_digest,
    }
}

/// `registry.k8s.io/kube-apiserver:v1.34.2` → `v1.34.2` (empty when untagged).
pub fn image_tag(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_json(name: &str) -> Value {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"node.kubernetes.io/instance-type": "dell-r640"}},
            "status": {"nodeInfo": {"kubeletVersion": "v1.33.4", "kernelVersion": "5.15.0", "osImage": "Ubuntu 22.04",
                        "containerRuntimeVersion": "containerd://1.7.22", "architecture": "amd64"},
                       "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })
    }

    #[test]
    fn list_and_single_objects() {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [node_json("a"), node_json("b")]});
        let inv = load_str("x.json", &list.to_string(), &SnapshotOptions::default()).unwrap();
        assert_eq!(inv.nodes.len(), 2);
        assert_eq!(inv.nodes[0].generation, "dell-r640");
        assert_eq!(inv.nodes[0].allocatable.cpu_millis, 32000);
        let single = load_str("n.json", &node_json("c").to_string(), &SnapshotOptions::default()).unwrap();
        assert_eq!(single.nodes[0].name, "c");
    }

    #[test]
    fn raw_api_list_items_get_their_kind() {
        let mut n = node_json("a");
        n.as_object_mut().unwrap().remove("kind");
        let list = serde_json::json!({"apiVersion": "v1", "kind": "NodeList", "items": [n]});
        let inv = load_str("x.json", &list.to_string(), &SnapshotOptions::default()).unwrap();
        assert_eq!(inv.nodes.len(), 1);
    }

    #[test]
    fn errors_name_the_file_and_object() {
        let e = load_str("bad.json", "{\"kind\": \"List\", \"items\": [", &SnapshotOptions::default()).unwrap_err();
        assert!(e.to_string().starts_with("bad.json: not valid JSON at line 1"), "{e}");
        let e = load_str("arr.json", "[1,2]", &SnapshotOptions::default()).unwrap_err();
        assert!(e.to_string().contains("arr.json: expected a kubectl List"), "{e}");
        let mut n = node_json("w-1");
        n["status"].as_object_mut().unwrap().remove("nodeInfo");
        let list = serde_json::json!({"kind": "List", "items": [n]});
        let e = load_str("c.json", &list.to_string(), &SnapshotOptions::default()).unwrap_err();
        assert!(e.to_string().contains("c.json: Node w-1: has no status.nodeInfo"), "{e}");
        let e = load_str("e.json", "{\"kind\": \"List\", \"items\": []}", &SnapshotOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no nodes found"), "{e}");
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("registry.k8s.io/kube-apiserver:v1.34.2"), "v1.34.2");
        assert_eq!(image_name("registry.k8s.io/kube-apiserver:v1.34.2"), "registry.k8s.io/kube-apiserver");
        assert_eq!(image_tag("localhost:5000/etcd"), "");
        assert_eq!(image_tag("registry.k8s.io/etcd:3.5.16-0@sha256:abc"), "3.5.16-0");
    }
}

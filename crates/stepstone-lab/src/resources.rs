//! The resource types the lab serves: their group, version, kind, scope, short names,
//! categories and subresources, which drive URL routing, discovery documents and tables; and the
//! deprecated group/versions ([`Alias`]) served beside them while the cluster's version still has
//! them, taken from `data/removed-apis.toml`.

use std::sync::OnceLock;

use serde_json::{Value, json};
use stepstone_apis::RemovedApis;
use stepstone_core::version::Minor;

/// A resource the lab serves: a row of [`RESOURCES`]. Only this module's constants and lookups
/// make one, so every id names a row that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResId(u8);

impl ResId {
    /// Every served resource, in table order.
    pub fn all() -> impl Iterator<Item = ResId> {
        (0..RESOURCES.len()).map(Self::at)
    }

    /// The position in [`RESOURCES`], for tables kept per resource.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    pub fn def(self) -> &'static ResourceDef {
        &RESOURCES[self]
    }

    /// The id of row `index`; the table has far fewer than 256 rows (checked by a test).
    const fn at(index: usize) -> ResId {
        ResId(index as u8)
    }
}

impl std::ops::Index<ResId> for [ResourceDef] {
    type Output = ResourceDef;

    fn index(&self, res: ResId) -> &ResourceDef {
        &self[res.index()]
    }
}

#[derive(Debug)]
pub struct ResourceDef {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Has a `/status` subresource: updates of the main resource keep the stored status.
    pub status: bool,
    /// Has a `/scale` subresource (autoscaling/v1 Scale).
    pub scale: bool,
}

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Whether objects live in a namespace.
#[derive(Clone, Copy)]
enum Scope {
    Cluster,
    Namespaced,
}

/// The subresources beside the main resource.
#[derive(Clone, Copy)]
enum Subresources {
    Plain,
    Status,
    /// `/status` and `/scale`.
    StatusScale,
}

use Scope::{Cluster, Namespaced};
use Subresources::{Plain, Status, StatusScale};

/// One row of [`RESOURCES`], in the order of [`ResourceDef`]'s fields.
#[allow(clippy::too_many_arguments)]
const fn row(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    scope: Scope,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: Subresources,
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced: matches!(scope, Namespaced),
        short_names,
        categories,
        status: !matches!(subresources, Plain),
        scale: matches!(subresources, StatusScale),
    }
}

/// One resource per line: group, version, plural, singular, kind, scope, short names, categories,
/// subresources. The order is the discovery order and fixes the [`ResId`] constants below.
#[rustfmt::skip]
pub const RESOURCES: &[ResourceDef] = &[
    row("", "v1", "namespaces", "namespace", "Namespace", Cluster, &["ns"], &[], Status),
    row("", "v1", "nodes", "node", "Node", Cluster, &["no"], &[], Status),
    row("", "v1", "pods", "pod", "Pod", Namespaced, &["po"], &["all"], Status),
    row("", "v1", "events", "event", "Event", Namespaced, &["ev"], &[], Plain),
    row("", "v1", "configmaps", "configmap", "ConfigMap", Namespaced, &["cm"], &[], Plain),
    row("", "v1", "secrets", "secret", "Secret", Namespaced, &[], &[], Plain),
    row("apps", "v1", "deployments", "deployment", "Deployment", Namespaced, &["deploy"], &["all"], StatusScale),
    row("apps", "v1", "replicasets", "replicaset", "ReplicaSet", Namespaced, &["rs"], &["all"], StatusScale),
    row("apps", "v1", "statefulsets", "statefulset", "StatefulSet", Namespaced, &["sts"], &["all"], StatusScale),
    row("apps", "v1", "daemonsets", "daemonset", "DaemonSet", Namespaced, &["ds"], &["all"], Status),
    row("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", Namespaced, &["pdb"], &[], Status),
    row("coordination.k8s.io", "v1", "leases", "lease", "Lease", Namespaced, &[], &[], Plain),
    row("events.k8s.io", "v1", "events", "event", "Event", Namespaced, &[], &[], Plain),
    row("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", Namespaced, &[], &[], Plain),
    row("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", Cluster, &["pv"], &[], Status),
    row("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", Namespaced, &["pvc"], &[], Status),
];

pub const NAMESPACES: ResId = ResId::at(0);
pub const NODES: ResId = ResId::at(1);
pub const PODS: ResId = ResId::at(2);
pub const EVENTS: ResId = ResId::at(3);
pub const CONFIGMAPS: ResId = ResId::at(4);
pub const SECRETS: ResId = ResId::at(5);
pub const DEPLOYMENTS: ResId = ResId::at(6);
pub const REPLICASETS: ResId = ResId::at(7);
pub const STATEFULSETS: ResId = ResId::at(8);
pub const DAEMONSETS: ResId = ResId::at(9);
pub const PDBS: ResId = ResId::at(10);
pub const LEASES: ResId = ResId::at(11);
/// `events.k8s.io/v1` events are a second view of the core events: they share storage.
pub const EVENTS_V1: ResId = ResId::at(12);
/// The template history the DaemonSet controller keeps (`kubectl rollout history|undo ds`).
pub const CONTROLLER_REVISIONS: ResId = ResId::at(13);
pub const PERSISTENT_VOLUMES: ResId = ResId::at(14);
pub const PERSISTENT_VOLUME_CLAIMS: ResId = ResId::at(15);

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `pods` or `deployments.apps`: the name errors use.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// `Pod` or `Deployment.apps`: the name validation errors use.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() { self.kind.to_string() } else { format!("{}.{}", self.kind, self.group) }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

/// The resource stored for a served resource (aliases share storage).
pub fn storage_of(res: ResId) -> ResId {
    if res == EVENTS_V1 { EVENTS } else { res }
}

pub fn find(group: &str, version: &str, plural: &str) -> Option<ResId> {
    RESOURCES.iter().position(|r| r.group == group && r.version == version && r.plural == plural).map(ResId::at)
}

pub fn by_kind(api_version: &str, kind: &str) -> Option<ResId> {
    RESOURCES.iter().position(|r| r.kind == kind && r.api_version() == api_version).map(ResId::at)
}

/// The first resource served under `plural` (in the core group before any other).
pub fn by_plural(plural: &str) -> Option<ResId> {
    RESOURCES.iter().position(|r| r.plural == plural).map(ResId::at)
}

/// The groups served under `/apis`, in discovery order, with their versions: the lab's own
/// resources first (so the preferred version is the current one), then the deprecated
/// group/versions in `aliases`.
pub fn groups(aliases: &[&Alias]) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    let served = RESOURCES.iter().filter(|r| !r.group.is_empty()).map(|r| (r.group, r.version));
    for (group, version) in served.chain(aliases.iter().map(|a| (a.group, a.version))) {
        match out.iter_mut().find(|(g, _)| *g == group) {
            Some((_, versions)) => {
                if !versions.contains(&version) {
                    versions.push(version);
                }
            }
            None => out.push((group, vec![version])),
        }
    }
    // policy also answers v1beta1 evictions, but only v1 resources are listed.
    out
}

/// `APIResourceList` for one group/version, which may be one of the deprecated `aliases`.
pub fn resource_list(group: &str, version: &str, aliases: &[&Alias]) -> Option<Value> {
    let mut defs: Vec<&ResourceDef> = RESOURCES.iter().filter(|r| r.group == group && r.version == version).collect();
    defs.extend(aliases.iter().filter(|a| a.group == group && a.version == version).map(|a| &RESOURCES[a.res]));
    if defs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in &defs {
        let mut main = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            main["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            main["categories"] = json!(r.categories);
        }
        resources.push(main);
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        if r.scale {
            resources.push(json!({
                "name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
            }));
        }
        if r.plural == "pods" && r.group.is_empty() {
            resources.push(json!({
                "name": "pods/eviction", "singularName": "", "namespaced": true,
                "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"],
            }));
        }
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

pub fn group_list(aliases: &[&Alias]) -> Value {
    let groups: Vec<Value> = groups(aliases)
        .into_iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> =
                versions.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(name: &str, aliases: &[&Alias]) -> Option<Value> {
    groups(aliases).into_iter().find(|(g, _)| *g == name).map(|(g, versions)| {
        let vs: Vec<Value> =
            versions.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": vs, "preferredVersion": vs[0].clone()})
    })
}

/// The first minor whose apiserver sends deprecation warnings and keeps the
/// `apiserver_requested_deprecated_apis` metric (KEP-1693): older ones serve deprecated versions
/// silently.
pub const WARNINGS_SINCE: Minor = Minor::new(1, 19);

/// A deprecated group/version of a resource the lab serves, answered from the same stored objects
/// (with `apiVersion` rewritten) for as long as the cluster's version still serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub group: &'static str,
    pub version: &'static str,
    /// The served resource (the replacement) whose objects the alias reads and writes.
    pub res: ResId,
    /// First minor that no longer serves it; `None` while only deprecated.
    pub removed_in: Option<Minor>,
    /// Minor from which requests get a warning and mark the deprecated-API metric.
    pub deprecated_in: Option<Minor>,
    /// The replacement the warning names, if any.
    pub names_replacement: bool,
}

impl Alias {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn def(&self) -> &'static ResourceDef {
        &RESOURCES[self.res]
    }

    /// Served by an apiserver of minor `cluster`.
    pub fn served_at(&self, cluster: Minor) -> bool {
        self.removed_in.is_none_or(|r| cluster < r)
    }

    /// An apiserver of minor `cluster` warns about it and counts it in the deprecated-API metric.
    pub fn deprecated_at(&self, cluster: Minor) -> bool {
        cluster >= WARNINGS_SINCE && self.deprecated_in.is_some_and(|d| cluster >= d)
    }

    /// `1.25`, the `removed_release` label, or empty when no removal is known.
    pub fn removed_release(&self) -> String {
        self.removed_in.map(|m| m.to_string()).unwrap_or_default()
    }

    /// The text of the apiserver's `Warning: 299 - "..."` header for a request to this alias.
    pub fn warning(&self) -> String {
        let def = self.def();
        let mut text = format!("{} {}", self.api_version(), def.kind);
        if let Some(d) = self.deprecated_in {
            text.push_str(&format!(" is deprecated in v{d}+"));
        }
        if let Some(r) = self.removed_in {
            text.push_str(&format!(", unavailable in v{r}+"));
        }
        if self.names_replacement {
            text.push_str(&format!("; use {} {}", def.api_version(), def.kind));
        }
        text
    }
}

/// Every deprecated group/version/kind of `data/removed-apis.toml` whose replacement the lab
/// serves, whatever the cluster version.
pub fn alias_candidates() -> &'static [Alias] {
    static ALIASES: OnceLock<Vec<Alias>> = OnceLock::new();
    ALIASES.get_or_init(|| build_aliases(RemovedApis::embedded()))
}

fn build_aliases(data: &'static RemovedApis) -> Vec<Alias> {
    let mut out: Vec<Alias> = Vec::new();
    for rule in &data.api {
        let (group, version) = (rule.group(), rule.version());
        for kind in rule.kinds.iter().filter(|k| *k != "*") {
            let Some(res) = by_kind(&rule.replacement, kind) else { continue };
            // A group/version the lab serves as current (or already aliased) is not a second alias.
            if find(group, version, RESOURCES[res].plural).is_some()
                || out.iter().any(|a| a.group == group && a.version == version && a.res == res)
            {
                continue;
            }
            // The row's `lifecycle` is what the apiserver's warning quotes; without one, the
            // documented deprecation, else the release that made the replacement available.
            let (deprecated_in, names_replacement) = match (&rule.lifecycle, rule.deprecated_in) {
                (Some(l), _) => (Some(l.deprecated_in), l.names_replacement),
                (None, Some(d)) => (Some(d), true),
                (None, None) => (rule.replacement_since, true),
            };
            out.push(Alias { group, version, res, removed_in: rule.removed_in, deprecated_in, names_replacement });
        }
    }
    out
}

/// The aliases an apiserver of minor `cluster` serves.
pub fn aliases_at(cluster: Minor) -> Vec<&'static Alias> {
    alias_candidates().iter().filter(|a| a.served_at(cluster)).collect()
}

/// Whether `group` (and `version`, when given) has a deprecated version the lab may serve at some
/// cluster version, so that requests elsewhere need not look up the cluster version.
pub fn may_alias(group: &str, version: Option<&str>) -> bool {
    alias_candidates().iter().any(|a| a.group == group && version.is_none_or(|v| a.version == v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_point_at_their_resources() {
        assert!(RESOURCES.len() <= usize::from(u8::MAX), "ResId holds a u8");
        assert_eq!(ResId::all().count(), RESOURCES.len());
        assert_eq!(RESOURCES[NAMESPACES].plural, "namespaces");
        assert_eq!(RESOURCES[NODES].plural, "nodes");
        assert_eq!(RESOURCES[PODS].plural, "pods");
        assert_eq!(RESOURCES[EVENTS].plural, "events");
        assert_eq!(RESOURCES[CONFIGMAPS].plural, "configmaps");
        assert_eq!(RESOURCES[SECRETS].plural, "secrets");
        assert_eq!(RESOURCES[DEPLOYMENTS].plural, "deployments");
        assert_eq!(RESOURCES[REPLICASETS].plural, "replicasets");
        assert_eq!(RESOURCES[STATEFULSETS].plural, "statefulsets");
        assert_eq!(RESOURCES[DAEMONSETS].plural, "daemonsets");
        assert_eq!(RESOURCES[PDBS].plural, "poddisruptionbudgets");
        assert_eq!(RESOURCES[LEASES].plural, "leases");
        assert_eq!(RESOURCES[EVENTS_V1].group, "events.k8s.io");
        assert_eq!(RESOURCES[CONTROLLER_REVISIONS].plural, "controllerrevisions");
    }

    #[test]
    fn core_list_has_eviction_subresource() {
        let list = resource_list("", "v1", &[]).unwrap();
        let names: Vec<&str> =
            list["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"pods/eviction"));
        assert!(names.contains(&"pods/status"));
        let apps = resource_list("apps", "v1", &[]).unwrap();
        let names: Vec<&str> =
            apps["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"deployments/scale"));
        assert!(names.contains(&"statefulsets/scale"));
        assert!(names.contains(&"replicasets/scale"));
        let revisions = apps["resources"].as_array().unwrap().iter().find(|r| r["name"] == "controllerrevisions");
        let revisions = revisions.expect("controllerrevisions are served");
        assert_eq!(revisions["kind"], "ControllerRevision");
        assert_eq!(revisions["namespaced"], true);
    }

    #[test]
    fn aliases_follow_the_data_and_the_served_replacements() {
        let pdb = alias_candidates()
            .iter()
            .find(|a| a.group == "policy" && a.version == "v1beta1")
            .expect("policy/v1beta1 PodDisruptionBudget is aliased: the lab serves policy/v1");
        assert_eq!(pdb.res, PDBS);
        assert_eq!(
            pdb.warning(),
            "policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+, unavailable in v1.25+; use policy/v1 PodDisruptionBudget"
        );
        assert!(pdb.served_at(Minor::new(1, 24)) && !pdb.served_at(Minor::new(1, 25)));
        assert!(!pdb.deprecated_at(Minor::new(1, 20)) && pdb.deprecated_at(Minor::new(1, 24)));
        let events = alias_candidates().iter().find(|a| a.group == "events.k8s.io").unwrap();
        assert_eq!(events.warning(), "events.k8s.io/v1beta1 Event is deprecated in v1.22+, unavailable in v1.25+");
        let lease = alias_candidates().iter().find(|a| a.group == "coordination.k8s.io").unwrap();
        assert_eq!(
            lease.warning(),
            "coordination.k8s.io/v1beta1 Lease is deprecated in v1.19+, unavailable in v1.22+; use coordination.k8s.io/v1 Lease"
        );
        assert!(lease.deprecated_at(Minor::new(1, 21)) && !lease.served_at(Minor::new(1, 22)));
        // No replacement served (batch/v1 CronJob, networking.k8s.io/v1 Ingress): no alias.
        assert!(!alias_candidates().iter().any(|a| a.group == "batch" || a.group == "networking.k8s.io"));
        assert!(!alias_candidates().iter().any(|a| find(a.group, a.version, a.def().plural).is_some()));
        assert!(aliases_at(Minor::new(1, 32)).is_empty(), "{:?}", aliases_at(Minor::new(1, 32)));
    }

    #[test]
    fn discovery_lists_served_aliases_after_the_current_version() {
        let at_24 = aliases_at(Minor::new(1, 24));
        let policy = group("policy", &at_24).unwrap();
        assert_eq!(policy["preferredVersion"]["version"], "v1");
        let versions: Vec<&str> =
            policy["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        let list = resource_list("policy", "v1beta1", &at_24).unwrap();
        assert_eq!(list["groupVersion"], "policy/v1beta1");
        assert_eq!(list["resources"][0]["name"], "poddisruptionbudgets");
        let at_25 = aliases_at(Minor::new(1, 25));
        assert!(resource_list("policy", "v1beta1", &at_25).is_none());
        assert_eq!(group("policy", &at_25).unwrap()["versions"].as_array().unwrap().len(), 1);
        assert!(resource_list("policy", "v1beta1", &[]).is_none());
    }
}

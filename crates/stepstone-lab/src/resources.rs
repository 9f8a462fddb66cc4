//! The resource types the lab serves: their group, version, kind, scope, short names,
//! categories and subresources, which drive URL routing, discovery documents and tables.

use serde_json::{Value, json};

/// Index of a resource in [`RESOURCES`].
pub type ResId = usize;

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

pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        status: true,
        scale: false,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        status: true,
        scale: false,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        status: true,
        scale: false,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        scale: false,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        status: false,
        scale: false,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        scale: false,
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        status: true,
        scale: true,
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        status: true,
        scale: true,
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        short_names: &["sts"],
        categories: &["all"],
        status: true,
        scale: true,
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        categories: &["all"],
        status: true,
        scale: false,
    },
    ResourceDef {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short_names: &["pdb"],
        categories: &[],
        status: true,
        scale: false,
    },
    ResourceDef {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        scale: false,
    },
    ResourceDef {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        scale: false,
    },
];

pub const NAMESPACES: ResId = 0;
pub const NODES: ResId = 1;
pub const PODS: ResId = 2;
pub const EVENTS: ResId = 3;
pub const CONFIGMAPS: ResId = 4;
pub const SECRETS: ResId = 5;
pub const DEPLOYMENTS: ResId = 6;
pub const REPLICASETS: ResId = 7;
pub const STATEFULSETS: ResId = 8;
pub const DAEMONSETS: ResId = 9;
pub const PDBS: ResId = 10;
pub const LEASES: ResId = 11;
/// `events.k8s.io/v1` events are a second view of the core events: they share storage.
pub const EVENTS_V1: ResId = 12;

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
    RESOURCES.iter().position(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn by_kind(api_version: &str, kind: &str) -> Option<ResId> {
    RESOURCES.iter().position(|r| r.kind == kind && r.api_version() == api_version)
}

/// The groups served under `/apis`, in discovery order, with their versions.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    // policy also answers v1beta1 evictions, but only v1 resources are listed.
    out
}

/// `APIResourceList` for one group/version.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = RESOURCES.iter().filter(|r| r.group == group && r.version == version).collect();
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

pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> =
                versions.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(name: &str) -> Option<Value> {
    groups().into_iter().find(|(g, _)| *g == name).map(|(g, versions)| {
        let vs: Vec<Value> =
            versions.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": vs, "preferredVersion": vs[0].clone()})
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_point_at_their_resources() {
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
    }

    #[test]
    fn core_list_has_eviction_subresource() {
        let list = resource_list("", "v1").unwrap();
        let names: Vec<&str> =
            list["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"pods/eviction"));
        assert!(names.contains(&"pods/status"));
        let apps = resource_list("apps", "v1").unwrap();
        let names: Vec<&str> =
            apps["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"deployments/scale"));
        assert!(names.contains(&"statefulsets/scale"));
        assert!(names.contains(&"replicasets/scale"));
    }
}

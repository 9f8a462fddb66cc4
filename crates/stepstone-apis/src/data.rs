//! The removed-API data (`data/removed-apis.toml`): which group/version/kinds and kubelet flags stop
//! working in which minor, what replaces them, and where each row comes from.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use stepstone_core::version::Minor;

/// The data file compiled into the binary, so the tool works offline.
pub const EMBEDDED: &str = include_str!("../../../data/removed-apis.toml");

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{origin}: not valid removed-API data: {message}")]
    Toml { origin: String, message: String },
    #[error("{origin}: row {group_version}: {problem}")]
    Row { origin: String, group_version: String, problem: String },
}

/// One group/version whose kinds stop being served (or are deprecated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiRule {
    /// `extensions/v1beta1`, or `v1` for the core group.
    pub group_version: String,
    /// Kinds served under that group/version that stop; `*` stands for every kind.
    pub kinds: Vec<String>,
    /// First minor that no longer serves it; `None` while only deprecated.
    #[serde(default)]
    pub removed_in: Option<Minor>,
    #[serde(default)]
    pub deprecated_in: Option<Minor>,
    /// Announced removal that the sources have not confirmed.
    #[serde(default)]
    pub planned_removal: Option<Minor>,
    pub replacement: String,
    #[serde(default)]
    pub replacement_since: Option<Minor>,
    #[serde(default)]
    pub note: String,
    pub source: String,
    /// What the apiserver's own deprecation warning about these kinds says, where the row
    /// records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

/// The `k8s:prerelease-lifecycle-gen` tags of a deprecated type, which the apiserver quotes in
/// the `Warning: 299` header of every request to it (`policy/v1beta1 PodDisruptionBudget is
/// deprecated in v1.21+, unavailable in v1.25+; use policy/v1 PodDisruptionBudget`). Kept apart
/// from the row's `deprecated_in`, which records what the migration guides state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// The minor from which the apiserver warns (the `deprecated` tag).
    pub deprecated_in: Minor,
    /// Whether the warning names the replacement (the type has a `replacement` tag).
    #[serde(default = "names_replacement_default")]
    pub names_replacement: bool,
    pub source: String,
}

fn names_replacement_default() -> bool {
    true
}

impl ApiRule {
    pub fn group(&self) -> &str {
        split_group_version(&self.group_version).0
    }

    pub fn version(&self) -> &str {
        split_group_version(&self.group_version).1
    }

    pub fn covers_kind(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == "*" || k == kind)
    }

    /// The kind whose plural resource name is `resource` (`ingresses` → `Ingress`).
    pub fn kind_for_resource(&self, resource: &str) -> Option<&str> {
        self.kinds.iter().map(String::as_str).find(|k| *k != "*" && plural(k) == resource)
    }
}

/// Kubelet command-line flags that stop being accepted in a minor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagRule {
    pub flags: Vec<String>,
    pub removed_in: Minor,
    pub action: String,
    pub source: String,
}

/// Every row of the data file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedApis {
    /// The day the rows were last checked against their sources.
    pub updated: String,
    #[serde(default)]
    pub api: Vec<ApiRule>,
    #[serde(default)]
    pub kubelet_flag: Vec<FlagRule>,
}

impl RemovedApis {
    /// The data compiled into the binary (parsed once; the file is checked by the tests).
    pub fn embedded() -> &'static RemovedApis {
        static DATA: OnceLock<RemovedApis> = OnceLock::new();
        DATA.get_or_init(|| RemovedApis::parse("data/removed-apis.toml", EMBEDDED).expect("embedded data parses"))
    }

    pub fn parse(origin: &str, text: &str) -> Result<RemovedApis, DataError> {
        let data: RemovedApis =
            toml::from_str(text).map_err(|e| DataError::Toml { origin: origin.to_string(), message: e.to_string() })?;
        for rule in &data.api {
            let problem = if rule.kinds.is_empty() {
                Some("kinds is empty")
            } else if rule.removed_in.is_none() && rule.deprecated_in.is_none() {
                Some("needs removed_in or deprecated_in")
            } else if rule.source.trim().is_empty() {
                Some("source is empty")
            } else if rule.version().is_empty() {
                Some("group_version has no version")
            } else if rule.lifecycle.as_ref().is_some_and(|l| l.source.trim().is_empty()) {
                Some("lifecycle.source is empty")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(DataError::Row {
                    origin: origin.to_string(),
                    group_version: rule.group_version.clone(),
                    problem: problem.to_string(),
                });
            }
        }
        Ok(data)
    }

    /// Rows of the file: one per API group/version plus one per kubelet flag.
    pub fn row_count(&self) -> usize {
        self.api.len() + self.kubelet_flag.iter().map(|f| f.flags.len()).sum::<usize>()
    }

    /// The rule for `apiVersion` + `kind`, if that combination stops or is deprecated.
    pub fn rule_for(&self, api_version: &str, kind: &str) -> Option<&ApiRule> {
        self.api.iter().find(|r| r.group_version == api_version && r.covers_kind(kind))
    }

    /// The rule and kind for a group, version and plural resource (how the apiserver metric speaks).
    pub fn rule_for_resource(&self, group: &str, version: &str, resource: &str) -> Option<(&ApiRule, String)> {
        self.api.iter().filter(|r| r.group() == group && r.version() == version).find_map(|r| {
            r.kind_for_resource(resource)
                .map(|k| (r, k.to_string()))
                .or_else(|| r.kinds.iter().any(|k| k == "*").then(|| (r, resource.to_string())))
        })
    }

    pub fn flag_rule(&self, flag: &str) -> Option<&FlagRule> {
        self.kubelet_flag.iter().find(|r| r.flags.iter().any(|f| f == flag))
    }

    /// Every flag named by the data, for scanners.
    pub fn flags(&self) -> impl Iterator<Item = &str> {
        self.kubelet_flag.iter().flat_map(|r| r.flags.iter().map(String::as_str))
    }

    /// Kinds of cluster objects named by the data (without wildcards), whose live objects are worth
    /// reading for their managedFields.
    pub fn kinds(&self) -> BTreeSet<String> {
        self.api.iter().flat_map(|r| r.kinds.iter()).filter(|k| *k != "*").cloned().collect()
    }

    /// API groups that serve those kinds: each row's own group and its replacement's group.
    pub fn groups(&self) -> BTreeSet<String> {
        let mut groups = BTreeSet::new();
        for r in &self.api {
            groups.insert(r.group().to_string());
            if r.replacement.contains('/') && !r.replacement.contains(' ') {
                groups.insert(split_group_version(&r.replacement).0.to_string());
            }
        }
        groups
    }
}

/// `networking.k8s.io/v1` → (`networking.k8s.io`, `v1`); `v1` → (``, `v1`).
pub fn split_group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The plural resource name the apiserver uses for a kind. Every kind in the data follows the
/// regular English rules the apiserver's RESTMapper applies (`Ingress` → `ingresses`,
/// `PodSecurityPolicy` → `podsecuritypolicies`).
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if lower.ends_with('s') || lower.ends_with("sh") || lower.ends_with("ch") || lower.ends_with('x') {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_match_apiserver_resource_names() {
        for (kind, resource) in [
            ("Ingress", "ingresses"),
            ("IngressClass", "ingressclasses"),
            ("PodSecurityPolicy", "podsecuritypolicies"),
            ("CSIStorageCapacity", "csistoragecapacities"),
            ("FlowSchema", "flowschemas"),
            ("PriorityLevelConfiguration", "prioritylevelconfigurations"),
            ("HorizontalPodAutoscaler", "horizontalpodautoscalers"),
            ("Lease", "leases"),
            ("APIService", "apiservices"),
            ("EndpointSlice", "endpointslices"),
            ("Eviction", "evictions"),
        ] {
            assert_eq!(plural(kind), resource, "{kind}");
        }
    }

    #[test]
    fn a_row_without_removal_or_deprecation_is_refused() {
        let text = r#"
updated = "2026-01-01"
[[api]]
group_version = "x.example/v1beta1"
kinds = ["Thing"]
replacement = "x.example/v1"
source = "test"
"#;
        let err = RemovedApis::parse("t.toml", text).unwrap_err().to_string();
        assert!(err.contains("x.example/v1beta1") && err.contains("removed_in"), "{err}");
    }

    #[test]
    fn lifecycle_is_optional_and_names_the_replacement_unless_told() {
        let row = |lifecycle: &str| {
            format!(
                "updated = \"2026-01-01\"\n[[api]]\ngroup_version = \"x.example/v1beta1\"\nkinds = [\"Thing\"]\n\
                 removed_in = \"1.30\"\nreplacement = \"x.example/v1\"\nsource = \"test\"\n{lifecycle}"
            )
        };
        let plain = RemovedApis::parse("t.toml", &row("")).unwrap();
        assert_eq!(plain.api[0].lifecycle, None);
        let tagged =
            RemovedApis::parse("t.toml", &row("lifecycle = { deprecated_in = \"1.27\", source = \"tags\" }")).unwrap();
        assert_eq!(
            tagged.api[0].lifecycle,
            Some(Lifecycle { deprecated_in: Minor::new(1, 27), names_replacement: true, source: "tags".into() })
        );
        let bare = row("lifecycle = { deprecated_in = \"1.27\", names_replacement = false, source = \"tags\" }");
        assert!(!RemovedApis::parse("t.toml", &bare).unwrap().api[0].lifecycle.as_ref().unwrap().names_replacement);
        let err = RemovedApis::parse("t.toml", &row("lifecycle = { deprecated_in = \"1.27\", source = \" \" }"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lifecycle.source is empty"), "{err}");
    }

    #[test]
    fn the_served_aliases_record_what_the_apiserver_warns() {
        let data = RemovedApis::embedded();
        for (gv, kind, deprecated, named) in [
            ("policy/v1beta1", "PodDisruptionBudget", Minor::new(1, 21), true),
            ("coordination.k8s.io/v1beta1", "Lease", Minor::new(1, 19), true),
            ("events.k8s.io/v1beta1", "Event", Minor::new(1, 22), false),
        ] {
            let lifecycle =
                data.rule_for(gv, kind).and_then(|r| r.lifecycle.as_ref()).unwrap_or_else(|| panic!("{gv}"));
            assert_eq!((lifecycle.deprecated_in, lifecycle.names_replacement), (deprecated, named), "{gv} {kind}");
        }
    }
}

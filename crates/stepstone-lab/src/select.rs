//! List filters: label selectors (the core's selector parser) and field selectors with the
//! fields the API server indexes for each resource (`spec.nodeName`, `status.phase`, ...).

use serde_json::Value;
use stepstone_core::selector::Selector;

use crate::resources::{self, ResId};
use crate::status::ApiError;
use crate::store;

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    negate: bool,
}

/// `labelSelector` and `fieldSelector` of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    labels: Option<Selector>,
    fields: Vec<FieldTerm>,
}

impl Filter {
    /// The `labelSelector` and `fieldSelector` of a request's query.
    pub fn from_query(res: ResId, query: &std::collections::HashMap<String, String>) -> Result<Self, ApiError> {
        Self::parse(res, query.get("labelSelector").map(String::as_str), query.get("fieldSelector").map(String::as_str))
    }

    pub fn parse(res: ResId, label_selector: Option<&str>, field_selector: Option<&str>) -> Result<Self, ApiError> {
        let labels = match label_selector.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => {
                empty_term(s).map_err(ApiError::bad_request)?;
                let selector = Selector::parse(s)
                    .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
                check_requirements(&selector)
                    .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
                Some(selector)
            }
            None => None,
        };
        let mut fields = Vec::new();
        for term in field_selector.unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, value, negate) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{term}'; can't understand '{term}'")));
            };
            let field = field.trim();
            if !supported_field(res, field) {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            fields.push(FieldTerm { field: field.to_string(), value: value.trim().to_string(), negate });
        }
        Ok(Filter { labels, fields })
    }

    /// `metadata.name=x` pins the list to one name (kube-rs `await_condition` watches this way).
    #[cfg(test)]
    pub fn exact_name(&self) -> Option<&str> {
        self.fields.iter().find(|t| t.field == "metadata.name" && !t.negate).map(|t| t.value.as_str())
    }

    /// Whether it lets every object through (no selector), so objects need not be read.
    pub fn is_everything(&self) -> bool {
        self.labels.is_none() && self.fields.is_empty()
    }

    /// Whether a stored object passes, read from its pod facts when every term can be: a pod
    /// list or watch filtered by node or labels then reads no pod.
    pub fn matches_stored(&self, obj: &store::Stored) -> bool {
        if self.is_everything() {
            return true;
        }
        if let Some(f) = obj.pod_facts() {
            let field = |name: &str| -> Option<&str> {
                match name {
                    "metadata.name" => Some(&f.name),
                    "metadata.namespace" => Some(&f.namespace),
                    "spec.nodeName" if f.node_is_text => Some(&f.node),
                    _ => None,
                }
            };
            if self.fields.iter().all(|t| field(&t.field).is_some()) {
                return self.labels.as_ref().is_none_or(|sel| sel.matches(&f.labels))
                    && self.fields.iter().all(|t| (field(&t.field).unwrap_or("") == t.value) != t.negate);
            }
        }
        self.matches(&obj.value())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(sel) = &self.labels
            && !sel.matches(&store::labels_of(obj))
        {
            return false;
        }
        self.fields.iter().all(|t| {
            let v = field_value(obj, &t.field);
            (v.as_deref().unwrap_or("") == t.value) != t.negate
        })
    }
}

const NAME_PART_HELP: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_HELP: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const PREFIX_HELP: &str = "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
/// An empty term (`a=b,`, `,a`, `a,,b`), which the shared selector parser skips but the
/// apiserver's refuses with the label parser's own message.
fn empty_term(selector: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut terms = vec![String::new()];
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(t) = terms.last_mut() {
            t.push(c);
        }
    }
    for (i, term) in terms.iter().enumerate() {
        if !term.trim().is_empty() {
            continue;
        }
        return Err(match terms.get(i + 1) {
            // Nothing before the first comma: the parser meets the comma where a key belongs.
            Some(_) if i == 0 => "found ',', expected: !, identifier, or 'end of string'".to_string(),
            Some(_) => "found ',', expected: identifier after ','".to_string(),
            None => "found '', expected: identifier after ','".to_string(),
        });
    }
    Ok(())
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Upstream's `NewRequirement` checks: the key is a qualified name, each value a label value;
/// the error reads as the apiserver's (`key: Invalid value: "a b": name part must ...`).
fn check_requirements(selector: &Selector) -> Result<(), String> {
    for r in &selector.requirements {
        let key = r.key.as_str();
        let (prefix, name) = match key.split_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, key),
        };
        if let Some(p) = prefix
            && !is_dns_subdomain(p)
        {
            return Err(format!("key: Invalid value: {key:?}: {PREFIX_HELP}"));
        }
        if name.len() > 63 {
            return Err(format!("key: Invalid value: {key:?}: name part must be no more than 63 characters"));
        }
        if !is_name_part(name) {
            return Err(format!("key: Invalid value: {key:?}: {NAME_PART_HELP}"));
        }
        for (i, v) in r.values.iter().enumerate() {
            if v.len() > 63 {
                return Err(format!("values[{i}][{key}]: Invalid value: {v:?}: must be no more than 63 characters"));
            }
            if !v.is_empty() && !is_name_part(v) {
                return Err(format!("values[{i}][{key}]: Invalid value: {v:?}: {LABEL_VALUE_HELP}"));
            }
        }
    }
    Ok(())
}

fn supported_field(res: ResId, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match resources::storage_of(res) {
        resources::PODS => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        resources::NODES => field == "spec.unschedulable",
        resources::EVENTS => {
            field.starts_with("involvedObject.")
                || matches!(field, "reason" | "reportingComponent" | "source" | "type" | "regarding.name")
        }
        resources::SECRETS => field == "type",
        resources::NAMESPACES => field == "status.phase",
        resources::REPLICASETS => field == "status.replicas",
        _ => false,
    }
}

/// The string value of a selectable field (`""` when absent, as upstream's field sets have it).
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    if field == "metadata.namespace" {
        return Some(store::namespace_of(obj).to_string());
    }
    if field == "source" {
        return obj.pointer("/source/component").and_then(Value::as_str).map(String::from);
    }
    let pointer = format!("/{}", field.replace('.', "/"));
    match obj.pointer(&pointer) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => {
            if field == "spec.unschedulable" || field == "spec.hostNetwork" {
                Some("false".into())
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selectors_match_and_negate() {
        let pod = json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let f =
            Filter::parse(resources::PODS, Some("app=web"), Some("spec.nodeName=n1,status.phase!=Succeeded")).unwrap();
        assert!(f.matches(&pod));
        let f = Filter::parse(resources::PODS, None, Some("spec.nodeName==n2")).unwrap();
        assert!(!f.matches(&pod));
        let f = Filter::parse(resources::PODS, Some("app!=web"), None).unwrap();
        assert!(!f.matches(&pod));
        let f = Filter::parse(resources::PODS, None, Some("metadata.namespace=ns,metadata.name=a")).unwrap();
        assert!(f.matches(&pod));
        assert_eq!(f.exact_name(), Some("a"));
    }

    #[test]
    fn a_stored_pod_matches_from_its_facts_as_its_object_does() {
        let pods = [
            json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "1"}},
                "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}),
            json!({"metadata": {"name": "b", "namespace": "other"}, "spec": {}}),
            json!({"metadata": {"name": "c", "namespace": "ns", "labels": {"app": "db"}}, "spec": {"nodeName": "n2"}}),
        ];
        let selectors = [
            (None, None),
            (Some("app=web"), None),
            (Some("app in (web,db),!tier"), None),
            (None, Some("spec.nodeName=n1")),
            (None, Some("spec.nodeName=")),
            (None, Some("spec.nodeName!=n1,metadata.namespace=ns")),
            (Some("app"), Some("metadata.name=c")),
            // Not among the facts: read from the object.
            (Some("app=web"), Some("status.phase=Running")),
        ];
        for pod in &pods {
            let stored = store::Stored::new(resources::PODS, pod.clone());
            for (labels, fields) in selectors {
                let f = Filter::parse(resources::PODS, labels, fields).unwrap();
                assert_eq!(f.matches_stored(&stored), f.matches(pod), "{labels:?} {fields:?} on {pod}");
            }
        }
    }

    #[test]
    fn empty_label_terms_get_the_label_parsers_messages() {
        assert_eq!(empty_term("a=b,").unwrap_err(), "found '', expected: identifier after ','");
        assert_eq!(empty_term("a=b,,c").unwrap_err(), "found ',', expected: identifier after ','");
        assert_eq!(empty_term(",a").unwrap_err(), "found ',', expected: !, identifier, or 'end of string'");
        assert!(empty_term("a in (x,y),!b").is_ok());
    }

    #[test]
    fn unknown_field_is_a_bad_request() {
        let e = Filter::parse(resources::PODS, None, Some("spec.foo=1")).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(e.message, "field label not supported: spec.foo");
    }

    #[test]
    fn unschedulable_defaults_to_false() {
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        let f = Filter::parse(resources::NODES, None, Some("spec.unschedulable=false")).unwrap();
        assert!(f.matches(&node));
    }
}

//! Label selectors: the structured form (`matchLabels` / `matchExpressions`) and the string
//! form used on the command line and in `?labelSelector=` (`app=web,tier!=db,env in (a,b),!x`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The pseudo-label that stands for `matchFields: metadata.name` in node affinity terms.
pub const NODE_NAME_FIELD: &str = "metadata.name";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "label selector '{input}' is invalid: {reason} (examples: app=web, app!=critical-singleton, env in (prod,staging), !canary)"
)]
pub struct SelectorError {
    pub input: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    /// Only valid in node selector terms (numeric comparison).
    Gt,
    Lt,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default)]
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Gt | Operator::Lt => {
                let (Some(v), Some(bound)) = (value, self.values.first()) else { return false };
                match (v.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(v), Ok(b)) if self.operator == Operator::Gt => v > b,
                    (Ok(v), Ok(b)) => v < b,
                    _ => false,
                }
            }
        }
    }
}

/// A selector as a list of requirements that must all hold. An empty selector matches
/// everything (as a `policy/v1` PDB's `selector: {}` does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

impl Selector {
    pub fn everything() -> Self {
        Selector::default()
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// From a Kubernetes `LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_label_selector(value: &serde_json::Value) -> Result<Self, SelectorError> {
        let err = |reason: &str| SelectorError { input: value.to_string(), reason: reason.to_string() };
        let mut requirements = Vec::new();
        if let Some(ml) = value.get("matchLabels").and_then(|m| m.as_object()) {
            for (k, v) in ml {
                let v = v.as_str().ok_or_else(|| err("matchLabels values must be strings"))?;
                requirements.push(Requirement { key: k.clone(), operator: Operator::In, values: vec![v.to_string()] });
            }
        }
        if let Some(exprs) = value.get("matchExpressions").and_then(|m| m.as_array()) {
            for e in exprs {
                let key = e.get("key").and_then(|k| k.as_str()).ok_or_else(|| err("expression without key"))?;
                let op = match e.get("operator").and_then(|o| o.as_str()) {
                    Some("In") => Operator::In,
                    Some("NotIn") => Operator::NotIn,
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    Some("Gt") => Operator::Gt,
                    Some("Lt") => Operator::Lt,
                    _ => return Err(err("unknown operator")),
                };
                let values = e
                    .get("values")
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                    .unwrap_or_default();
                requirements.push(Requirement { key: key.to_string(), operator: op, values });
            }
        }
        Ok(Selector { requirements })
    }

    /// Parse the string form (`app=web,tier!=db,env in (a,b),env notin (c),key,!key`).
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let err = |reason: &str| SelectorError { input: input.to_string(), reason: reason.to_string() };
        let mut requirements = Vec::new();
        for term in split_terms(input).map_err(|r| err(&r))? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            if let Some(key) = term.strip_prefix('!') {
                check_key(key.trim()).map_err(|r| err(&r))?;
                requirements.push(Requirement {
                    key: key.trim().to_string(),
                    operator: Operator::DoesNotExist,
                    values: vec![],
                });
            } else if let Some((key, value)) = term.split_once("!=") {
                check_key(key.trim()).map_err(|r| err(&r))?;
                requirements.push(Requirement {
                    key: key.trim().to_string(),
                    operator: Operator::NotIn,
                    values: vec![value.trim().to_string()],
                });
            } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
                check_key(key.trim()).map_err(|r| err(&r))?;
                requirements.push(Requirement {
                    key: key.trim().to_string(),
                    operator: Operator::In,
                    values: vec![value.trim().to_string()],
                });
            } else if let Some((key, op, values)) = set_term(term) {
                check_key(key).map_err(|r| err(&r))?;
                requirements.push(Requirement { key: key.to_string(), operator: op, values });
            } else {
                check_key(term).map_err(|r| err(&r))?;
                requirements.push(Requirement { key: term.to_string(), operator: Operator::Exists, values: vec![] });
            }
        }
        Ok(Selector { requirements })
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')) {
        return Err(format!("'{key}' is not a valid label key"));
    }
    Ok(())
}

/// Split on commas that are not inside parentheses.
fn split_terms(input: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err("unbalanced ')'".into());
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    out.push(&input[start..]);
    Ok(out)
}

fn set_term(term: &str) -> Option<(&str, Operator, Vec<String>)> {
    let open = term.find('(')?;
    let close = term.rfind(')')?;
    let head = term[..open].trim();
    let (key, op) = if let Some(k) = head.strip_suffix(" notin") {
        (k.trim(), Operator::NotIn)
    } else if let Some(k) = head.strip_suffix(" in") {
        (k.trim(), Operator::In)
    } else {
        return None;
    };
    let values = term[open + 1..close].split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    Some((key, op, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn string_selectors() {
        let s = Selector::parse("app=web,tier!=db,env in (prod, staging),!canary").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("tier", "db")])));
        let ne = Selector::parse("app!=critical-singleton").unwrap();
        assert!(ne.matches(&labels(&[])));
        assert!(!ne.matches(&labels(&[("app", "critical-singleton")])));
        assert!(Selector::parse("").unwrap().is_empty());
        let e = Selector::parse("app in (a,b").unwrap_err();
        assert!(e.to_string().contains("app in (a,b"));
    }

    #[test]
    fn structured_selectors() {
        let v = serde_json::json!({"matchLabels": {"app": "redis"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["cache"]}]});
        let s = Selector::from_label_selector(&v).unwrap();
        assert!(s.matches(&labels(&[("app", "redis")])));
        assert!(!s.matches(&labels(&[("app", "redis"), ("tier", "cache")])));
        let all = Selector::from_label_selector(&serde_json::json!({})).unwrap();
        assert!(all.matches(&labels(&[("x", "y")])));
    }
}

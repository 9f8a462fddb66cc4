//! The `metav1.Status` body of a failed API call (`kind: Status`, `status: Failure`), built in
//! one place: the planner's eviction refusals and the lab's API answers both render through
//! [`failure`], so what the planner predicts and what the lab answers cannot drift apart.

use serde_json::{Value, json};

/// One `details.causes` entry. `reason` is the cause type (`FieldValueRequired`,
/// `DisruptionBudget`); an empty one is left out, as upstream leaves it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: Option<String>,
}

/// `Status.details`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<u32>,
}

/// The `Status` object for a failure. `reason` may be empty (upstream sends the several-budgets
/// eviction 500 without one); `details` appears when anything in it is set.
pub fn failure(code: u16, reason: &str, message: &str, details: &Details) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    });
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    let mut fields = serde_json::Map::new();
    if let Some(n) = &details.name {
        fields.insert("name".into(), json!(n));
    }
    if let Some(g) = &details.group {
        fields.insert("group".into(), json!(g));
    }
    if let Some(k) = &details.kind {
        fields.insert("kind".into(), json!(k));
    }
    if !details.causes.is_empty() {
        let causes: Vec<Value> = details
            .causes
            .iter()
            .map(|c| {
                let mut m = serde_json::Map::new();
                if !c.reason.is_empty() {
                    m.insert("reason".into(), json!(c.reason));
                }
                m.insert("message".into(), json!(c.message));
                if let Some(f) = &c.field {
                    m.insert("field".into(), json!(f));
                }
                Value::Object(m)
            })
            .collect();
        fields.insert("causes".into(), Value::Array(causes));
    }
    if let Some(s) = details.retry_after_seconds.filter(|s| *s > 0) {
        fields.insert("retryAfterSeconds".into(), json!(s));
    }
    if !fields.is_empty() || details.retry_after_seconds.is_some() {
        status["details"] = Value::Object(fields);
    }
    status["code"] = json!(code);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_in_the_api_servers_order_and_empty_ones_are_left_out() {
        let details = Details {
            name: Some("web".into()),
            causes: vec![Cause { reason: String::new(), message: "etcd timed out".into(), field: None }],
            ..Default::default()
        };
        let text = failure(500, "", "Internal error occurred: etcd timed out", &details).to_string();
        assert_eq!(
            text,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error occurred: etcd timed out","details":{"name":"web","causes":[{"message":"etcd timed out"}]},"code":500}"#
        );
        let bare = failure(404, "NotFound", "gone", &Details::default());
        assert!(bare.get("details").is_none(), "{bare}");
        assert_eq!(bare["reason"], "NotFound");
    }
}

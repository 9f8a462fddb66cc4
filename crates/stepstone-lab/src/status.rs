//! API errors as the `Status` objects a real API server sends: the same HTTP codes, reasons,
//! messages and details, so clients (kubectl, kube-rs) react to the lab as to a cluster.

use serde_json::{Value, json};

use crate::resources::ResourceDef;

pub use stepstone_core::api_status::{Cause, Details};

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    /// Empty for statuses that upstream sends without a reason (the several-PDB eviction 500).
    pub reason: String,
    pub message: String,
    pub details: Box<Details>,
}

impl ApiError {
    fn new(code: u16, reason: &str, message: String) -> Self {
        ApiError { code, reason: reason.to_string(), message, details: Box::default() }
    }

    fn for_resource(mut self, res: &ResourceDef, name: &str) -> Self {
        self.details.name = Some(name.to_string());
        self.details.group = (!res.group.is_empty()).then(|| res.group.to_string());
        self.details.kind = Some(res.plural.to_string());
        self
    }

    pub fn not_found(res: &ResourceDef, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{}\" not found", res.qualified(), name)).for_resource(res, name)
    }

    pub fn already_exists(res: &ResourceDef, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{}\" already exists", res.qualified(), name))
            .for_resource(res, name)
    }

    /// The optimistic-concurrency failure of an update with a stale `resourceVersion`.
    pub fn modified(res: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// A delete, eviction or update whose `preconditions.uid` (or object uid) is not the stored
    /// object's: the object was replaced under the same name.
    pub fn uid_precondition(res: &ResourceDef, name: &str, wanted: &str, stored: &str) -> Self {
        Self::conflict(
            res,
            name,
            &format!("Precondition failed: UID in precondition: {wanted}, UID in object meta: {stored}"),
        )
    }

    pub fn conflict(res: &ResourceDef, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{}\": {}", res.qualified(), name, why),
        )
        .for_resource(res, name)
    }

    /// 422 with one cause per field error, `Kind.group "name" is invalid: field: detail`.
    pub fn invalid(res: &ResourceDef, name: &str, errors: Vec<FieldError>) -> Self {
        let summary = if errors.len() == 1 {
            errors[0].to_string()
        } else {
            format!("[{}]", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        };
        let mut e = Self::new(422, "Invalid", format!("{} \"{}\" is invalid: {}", res.qualified_kind(), name, summary));
        e.details.name = Some(name.to_string());
        e.details.group = (!res.group.is_empty()).then(|| res.group.to_string());
        e.details.kind = Some(res.kind.to_string());
        e.details.causes = errors
            .into_iter()
            .map(|f| Cause { reason: f.kind.cause().to_string(), message: f.detail_message(), field: Some(f.field) })
            .collect();
        e
    }

    /// A patch whose result does not decode into the kind: upstream's patcher answers 422 with an
    /// empty kind and name, the patched object as the invalid value and the decoder's complaint.
    pub fn invalid_patch(patched: &Value, why: &str) -> Self {
        let error = FieldError::invalid("patch", format!("{:?}", patched.to_string()), why);
        let mut e = Self::new(422, "Invalid", format!(" \"\" is invalid: {error}"));
        e.details.causes = vec![Cause {
            reason: error.kind.cause().to_string(),
            message: error.detail_message(),
            field: Some(error.field),
        }];
        e
    }

    /// A create beyond the lab's object-count limit, in the words of the ResourceQuota admission.
    pub fn quota_exceeded(res: &ResourceDef, name: &str, used: usize, limit: usize) -> Self {
        let resource = res.qualified();
        Self::new(
            403,
            "Forbidden",
            format!(
                "{resource} \"{name}\" is forbidden: exceeded quota: stepstone-lab, requested: {resource}=1, used: {resource}={used}, limited: {resource}={limit} (the lab holds at most {limit} {resource} beyond the fleet it loaded; delete some or scale down)"
            ),
        )
        .for_resource(res, name)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into())
    }

    /// A create or update body in a media type the lab does not read (the apiserver also reads
    /// CBOR, and protobuf for every kind; the lab reads JSON, YAML and the protobuf of the kinds
    /// kubectl's generators create, see `protobuf.rs`).
    pub fn unsupported_body() -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml".to_string(),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
            ),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message.into())
    }

    /// 404 for a URL that names no resource: what the real server answers for unknown paths.
    pub fn no_route(path: &str) -> Self {
        let mut e = Self::new(404, "NotFound", "the server could not find the requested resource".to_string());
        e.details.causes = vec![Cause {
            reason: "UnexpectedServerResponse".into(),
            message: format!("404 page not found: {path}"),
            field: None,
        }];
        e
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into())
    }

    pub fn forbidden(res_qualified: &str, name: &str, why: &str) -> Self {
        let mut e = Self::new(403, "Forbidden", format!("{res_qualified} \"{name}\" is forbidden: {why}"));
        e.details.name = Some(name.to_string());
        e
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: u32) -> Self {
        let mut e = Self::new(429, "TooManyRequests", message.into());
        e.details.retry_after_seconds = Some(retry_after);
        e
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let m = message.into();
        let mut e = Self::new(500, "InternalError", format!("Internal error occurred: {m}"));
        e.details.causes = vec![Cause { reason: String::new(), message: m, field: None }];
        e
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message.into())
    }

    pub fn with_cause(mut self, reason: &str, message: String) -> Self {
        self.details.causes.push(Cause { reason: reason.to_string(), message, field: None });
        self
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        stepstone_core::api_status::failure(self.code, &self.reason, &self.message, &self.details)
    }
}

/// The kinds of field error the lab reports, with upstream's cause types and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    Forbidden,
}

impl FieldErrorKind {
    fn cause(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    pub field: String,
    /// The offending value as upstream prints it (`-1`, `"Web"`), for `Invalid`.
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: &str, detail: &str) -> Self {
        FieldError { kind: FieldErrorKind::Required, field: field.into(), value: None, detail: detail.into() }
    }

    pub fn invalid(field: &str, value: String, detail: &str) -> Self {
        FieldError { kind: FieldErrorKind::Invalid, field: field.into(), value: Some(value), detail: detail.into() }
    }

    pub fn forbidden(field: &str, detail: &str) -> Self {
        FieldError { kind: FieldErrorKind::Forbidden, field: field.into(), value: None, detail: detail.into() }
    }

    fn detail_message(&self) -> String {
        let head = match self.kind {
            FieldErrorKind::Required => "Required value".to_string(),
            FieldErrorKind::Invalid => format!("Invalid value: {}", self.value.as_deref().unwrap_or("")),
            FieldErrorKind::Forbidden => "Forbidden".to_string(),
        };
        if self.detail.is_empty() { head } else { format!("{head}: {}", self.detail) }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail_message())
    }
}

/// The body of a successful eviction or delete that returns a Status.
pub fn success(code: u16, details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    s["code"] = json!(code);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, PODS, RESOURCES};

    #[test]
    fn not_found_matches_upstream() {
        let s = ApiError::not_found(&RESOURCES[PODS], "web-0").to_status();
        assert_eq!(s["message"], "pods \"web-0\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["kind"], "pods");
        assert_eq!(s["code"], 404);
        let s = ApiError::not_found(&RESOURCES[DEPLOYMENTS], "web").to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["details"]["group"], "apps");
    }

    #[test]
    fn conflict_matches_upstream() {
        let s = ApiError::modified(&RESOURCES[PODS], "x").to_status();
        assert_eq!(
            s["message"],
            "Operation cannot be fulfilled on pods \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(s["code"], 409);
    }

    #[test]
    fn invalid_names_kind_and_field() {
        let e = ApiError::invalid(
            &RESOURCES[DEPLOYMENTS],
            "web",
            vec![FieldError::invalid("spec.replicas", "-1".into(), "must be greater than or equal to 0")],
        );
        let s = e.to_status();
        assert_eq!(
            s["message"],
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
        assert_eq!(s["details"]["causes"][0]["field"], "spec.replicas");
    }
}

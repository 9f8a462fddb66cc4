//! Who may do what in the lab: nobody is authenticated and nothing is forbidden (the lab listens
//! on loopback only and has no RBAC), so access reviews (`kubectl auth can-i`) answer allowed
//! and `kubectl auth whoami` names the lab's one user.

use serde_json::{Value, json};

use crate::status::ApiError;

/// The one user of every lab request (the kubeconfig `stepstone lab up` writes has no credentials).
pub const USER: &str = "stepstone-lab";
const REASON: &str = "the stepstone lab has no RBAC: every request is allowed";

/// The answer to a POST of `path`, when it is one of the review endpoints.
pub fn review(path: &str, body: &[u8]) -> Option<Result<Value, ApiError>> {
    let kind = match path.trim_end_matches('/') {
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" => "SelfSubjectAccessReview",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" => "SelfSubjectRulesReview",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews" => "SelfSubjectReview",
        _ => return None,
    };
    Some(answer(kind, body))
}

fn answer(kind: &str, body: &[u8]) -> Result<Value, ApiError> {
    // kubectl sends its reviews as protobuf, which the lab does not read for these kinds; the
    // answer does not depend on the question, so only a JSON question is echoed back.
    let request: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
    let group = if kind == "SelfSubjectReview" { "authentication.k8s.io/v1" } else { "authorization.k8s.io/v1" };
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match kind {
        "SelfSubjectAccessReview" => json!({"allowed": true, "reason": REASON}),
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        _ => json!({"userInfo": {"username": USER, "groups": ["system:masters", "system:authenticated"]}}),
    };
    let mut out = json!({"kind": kind, "apiVersion": group, "metadata": {"creationTimestamp": null}, "status": status});
    if kind != "SelfSubjectReview" {
        out["spec"] = spec;
    }
    Ok(out)
}

/// The answer to `kubectl logs`, `exec`, `attach` and `port-forward` on a pod: the lab starts no
/// containers, so there is nothing to read or enter; the message says where to look instead.
pub fn no_containers(namespace: &str, pod: &str, subresource: &str) -> ApiError {
    let what = match subresource {
        "log" => "there are no container logs to read",
        "exec" | "attach" => "there is no container to run a command in",
        _ => "there is no container port to forward",
    };
    ApiError::bad_request(format!(
        "pod {namespace}/{pod}: the stepstone lab simulates kubelets but runs no containers, so {what}; \
         read the pod's state with `kubectl describe pod {pod} -n {namespace}` and its events with \
         `kubectl events -n {namespace} --for pod/{pod}`"
    ))
}

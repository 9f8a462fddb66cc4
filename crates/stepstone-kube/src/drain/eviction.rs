//! What an answer to `POST …/pods/{name}/eviction` means for the drain: accepted, already gone,
//! blocked by a budget (and which one, with its numbers), throttled, a transient server error,
//! or a configuration error.
//!
//! Pure: the engine hands in the [`Status`] the server sent and acts on the [`EvictionOutcome`].

use kube::core::Status;
use serde::Serialize;

/// The cause reason the API server puts on a 429 refused by a PodDisruptionBudget.
pub const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";
/// The cause reason on a 403 for a pod whose namespace is being deleted.
pub const NAMESPACE_TERMINATING_CAUSE: &str = "NamespaceTerminating";

/// A budget that refused an eviction, as the server described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetRefusal {
    /// The PDB name (its namespace is the pod's).
    pub pdb: String,
    /// Healthy pods the budget needs (`desiredHealthy`), when the message said.
    pub needs: Option<i64>,
    /// Healthy pods it has (`currentHealthy`), when the message said.
    pub has: Option<i64>,
    /// The cause message verbatim.
    pub message: String,
}

/// What to do after one eviction request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionOutcome {
    /// 2xx: the pod is being deleted gracefully.
    Accepted,
    /// 404, or 409 on the UID precondition: the pod we meant is gone (a new pod may carry the
    /// same name, and it must not be evicted by mistake).
    Gone,
    /// 429 with a `DisruptionBudget` cause: retry at the budget interval.
    BudgetBlocked(BudgetRefusal),
    /// 429 without that cause: API priority and fairness throttling; retry with backoff.
    Throttled { retry_after_seconds: Option<u32> },
    /// 500 because more than one PDB selects the pod: retrying cannot help.
    MultipleBudgets { message: String },
    /// Any other 500, or 502, 503, 504: the server (or etcd behind it) failed before the
    /// eviction was applied, or it was applied and a retry finds the pod gone (404) or
    /// terminating. Retried a bounded number of times; `kubectl drain` gives up at once.
    ServerError { code: u16, message: String },
    /// 403 `NamespaceTerminating`: the namespace deletion removes the pod; keep waiting.
    NamespaceTerminating,
    /// Anything else: report it for this pod.
    Failed { code: u16, message: String },
}

impl EvictionOutcome {
    /// Read the server's answer to a refused eviction.
    pub fn from_status(status: &Status) -> Self {
        let causes = status.details.as_ref().map(|d| d.causes.as_slice()).unwrap_or_default();
        let retry_after = status.details.as_ref().map(|d| d.retry_after_seconds).filter(|s| *s > 0);
        match status.code {
            200..=299 => EvictionOutcome::Accepted,
            404 => EvictionOutcome::Gone,
            409 if is_uid_precondition(&status.message) => EvictionOutcome::Gone,
            429 => match causes.iter().find(|c| c.reason == DISRUPTION_BUDGET_CAUSE) {
                Some(cause) => EvictionOutcome::BudgetBlocked(parse_budget_message(&cause.message)),
                None => EvictionOutcome::Throttled { retry_after_seconds: retry_after },
            },
            500 if status.message.contains("more than one PodDisruptionBudget") => {
                EvictionOutcome::MultipleBudgets { message: status.message.clone() }
            }
            500 | 502..=504 => EvictionOutcome::ServerError { code: status.code, message: status.message.clone() },
            403 if causes.iter().any(|c| c.reason == NAMESPACE_TERMINATING_CAUSE) => {
                EvictionOutcome::NamespaceTerminating
            }
            code => EvictionOutcome::Failed { code, message: status.message.clone() },
        }
    }

    /// Read any client error: API answers through [`Self::from_status`]; transport errors
    /// (connection reset, timeout) are treated like throttling, so the loop backs off and retries
    /// within the drain timeout.
    pub fn from_error(error: &kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => Self::from_status(status),
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                EvictionOutcome::Throttled { retry_after_seconds: None }
            }
            other => EvictionOutcome::Failed { code: 0, message: other.to_string() },
        }
    }
}

/// The 409 the server sends when the UID precondition no longer matches.
fn is_uid_precondition(message: &str) -> bool {
    message.contains("Precondition failed") || message.contains("UID in precondition")
}

/// Parse "The disruption budget web needs 2 healthy pods and has 2 currently" (upstream
/// `eviction.go`); the "is still being processed by the server" variant names only the budget.
pub fn parse_budget_message(message: &str) -> BudgetRefusal {
    let mut refusal = BudgetRefusal { pdb: String::new(), needs: None, has: None, message: message.to_string() };
    let words: Vec<&str> = message.split_whitespace().collect();
    if let Some(i) = words.windows(2).position(|w| w[0] == "disruption" && w[1] == "budget")
        && let Some(name) = words.get(i + 2)
    {
        refusal.pdb = name.trim_end_matches(['.', ',']).to_string();
    }
    let number_after = |word: &str| {
        words.iter().position(|w| *w == word).and_then(|i| words.get(i + 1)).and_then(|n| n.parse::<i64>().ok())
    };
    refusal.needs = number_after("needs");
    refusal.has = number_after("has");
    refusal
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    fn status(code: u16, reason: &str, message: &str, causes: &[(&str, &str)]) -> Status {
        Status {
            code,
            reason: reason.to_string(),
            message: message.to_string(),
            details: Some(StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: causes
                    .iter()
                    .map(|(r, m)| StatusCause { reason: r.to_string(), message: m.to_string(), field: String::new() })
                    .collect(),
                retry_after_seconds: 0,
            }),
            ..Status::default()
        }
    }

    #[test]
    fn budget_429_names_the_budget_and_its_numbers() {
        let s = status(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            &[("DisruptionBudget", "The disruption budget redis needs 2 healthy pods and has 2 currently")],
        );
        let EvictionOutcome::BudgetBlocked(r) = EvictionOutcome::from_status(&s) else { panic!("not blocked") };
        assert_eq!((r.pdb.as_str(), r.needs, r.has), ("redis", Some(2), Some(2)));
    }

    #[test]
    fn budget_still_processing_names_only_the_budget() {
        let r = parse_budget_message("The disruption budget web is still being processed by the server.");
        assert_eq!((r.pdb.as_str(), r.needs, r.has), ("web", None, None));
    }

    #[test]
    fn plain_429_is_throttling_with_its_hint() {
        let mut s = status(429, "TooManyRequests", "too many requests", &[]);
        s.details.as_mut().unwrap().retry_after_seconds = 3;
        assert_eq!(EvictionOutcome::from_status(&s), EvictionOutcome::Throttled { retry_after_seconds: Some(3) });
    }

    #[test]
    fn other_answers() {
        assert_eq!(EvictionOutcome::from_status(&status(404, "NotFound", "gone", &[])), EvictionOutcome::Gone);
        assert_eq!(EvictionOutcome::from_status(&status(201, "", "", &[])), EvictionOutcome::Accepted);
        let precondition = status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on Pod \"web-0\": Precondition failed: UID in precondition: a, UID in object meta: b",
            &[],
        );
        assert_eq!(EvictionOutcome::from_status(&precondition), EvictionOutcome::Gone);
        let multi = status(
            500,
            "InternalError",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            &[],
        );
        assert!(matches!(EvictionOutcome::from_status(&multi), EvictionOutcome::MultipleBudgets { .. }));
        let etcd = status(500, "InternalError", "etcdserver: request timed out", &[]);
        assert!(matches!(EvictionOutcome::from_status(&etcd), EvictionOutcome::ServerError { code: 500, .. }));
        let unavailable =
            status(503, "ServiceUnavailable", "the server is currently unable to handle the request", &[]);
        assert!(matches!(EvictionOutcome::from_status(&unavailable), EvictionOutcome::ServerError { code: 503, .. }));
        let not_implemented = status(501, "NotImplemented", "no", &[]);
        assert!(matches!(EvictionOutcome::from_status(&not_implemented), EvictionOutcome::Failed { code: 501, .. }));
        let ns = status(403, "Forbidden", "namespace prod is terminating", &[("NamespaceTerminating", "")]);
        assert_eq!(EvictionOutcome::from_status(&ns), EvictionOutcome::NamespaceTerminating);
        let denied = status(403, "Forbidden", "pods \"a\" is forbidden", &[]);
        assert!(matches!(EvictionOutcome::from_status(&denied), EvictionOutcome::Failed { code: 403, .. }));
    }
}

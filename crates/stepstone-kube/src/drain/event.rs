//! The drain's progress as events: one enum the engine emits, rendered as a log line for people,
//! as one JSON object per line for automation, and (for a few of them) as a Kubernetes Event on
//! the node so `kubectl describe node` tells the story too.
//!
//! Pure: formatting only; the engine decides when to emit and the CLI where to print.

use std::time::Duration;
use stepstone_core::drain::BlockerKind;
use stepstone_core::object_key::ObjectKey;

use serde::Serialize;

/// A pod left on the node on purpose, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedPod {
    pub pod: ObjectKey,
    pub reason: String,
}

/// A rule-chain blocker as the drain reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockerView {
    pub kind: BlockerKind,
    pub pod: ObjectKey,
    pub reason: String,
    pub fix: String,
    /// The flag that overrides this kind of blocker, when one exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_flag: Option<String>,
}

/// How a pod is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removal {
    /// `policy/v1` Eviction: PodDisruptionBudgets are honoured.
    Eviction,
    /// Plain DELETE: only for pods the user explicitly allowed to lose (unmanaged pods) or with the
    /// budget-bypassing override.
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum DrainEvent {
    /// `spec.unschedulable` set.
    #[serde(rename_all = "camelCase")]
    Cordoned { node: String },
    /// The rule chain's verdict for every pod on the node.
    #[serde(rename_all = "camelCase")]
    Classified {
        node: String,
        evict: Vec<ObjectKey>,
        delete: Vec<ObjectKey>,
        /// Already terminating: nothing to send, their going is awaited.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        terminating: Vec<ObjectKey>,
        skipped: Vec<SkippedPod>,
        blockers: Vec<BlockerView>,
    },
    /// An override in effect, or anything else the operator must read.
    #[serde(rename_all = "camelCase")]
    Warning {
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        message: String,
    },
    #[serde(rename_all = "camelCase")]
    Evicting { node: String, pod: ObjectKey, attempt: u32, removal: Removal },
    /// A PodDisruptionBudget refused (or would refuse) the eviction.
    #[serde(rename_all = "camelCase")]
    Blocked {
        node: String,
        pod: ObjectKey,
        /// `namespace/name` of the budget, `(unnamed)` when the server named none and the pod
        /// has no known budget.
        pdb: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        needs: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        has: Option<i64>,
        retry_in_ms: u64,
    },
    /// The API server asked us to slow down.
    #[serde(rename_all = "camelCase")]
    Throttled { node: String, pod: ObjectKey, retry_in_ms: u64 },
    /// The API server failed an eviction (500, 502, 503, 504); it is sent again after the wait,
    /// up to `cap` failures in a row.
    #[serde(rename_all = "camelCase")]
    ServerError { node: String, pod: ObjectKey, code: u16, in_a_row: u32, cap: u32, retry_in_ms: u64 },
    /// The pod cannot be evicted; the drain of this node will not complete.
    #[serde(rename_all = "camelCase")]
    Failed { node: String, pod: ObjectKey, message: String },
    /// The server accepted the eviction (or deletion).
    #[serde(rename_all = "camelCase")]
    Evicted { node: String, pod: ObjectKey, removal: Removal },
    /// The pod object is gone (or was replaced by a new one under the same name).
    #[serde(rename_all = "camelCase")]
    Gone { node: String, pod: ObjectKey },
    /// The controller of evicted pods has its Ready replicas back, away from the drained nodes.
    #[serde(rename_all = "camelCase")]
    ReplacementReady { node: String, controller: String, ready: i64, target: i64 },
    #[serde(rename_all = "camelCase")]
    Drained { node: String, elapsed_ms: u64 },
    /// The drain stopped before evicting anything (blockers) or gave up on a pod.
    #[serde(rename_all = "camelCase")]
    Stopped { node: String, reason: String },
    #[serde(rename_all = "camelCase")]
    Timeout { node: String, left: usize },
    #[serde(rename_all = "camelCase")]
    Uncordoned { node: String },
}

/// Where progress goes (a terminal, log lines, JSON lines, a test's vector).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &DrainEvent);
}

impl<F: Fn(&DrainEvent) + Send + Sync> EventSink for F {
    fn emit(&self, event: &DrainEvent) {
        self(event)
    }
}

impl DrainEvent {
    /// The node the event is about.
    pub fn node(&self) -> Option<&str> {
        match self {
            DrainEvent::Warning { node, .. } => node.as_deref(),
            DrainEvent::Cordoned { node }
            | DrainEvent::Classified { node, .. }
            | DrainEvent::Evicting { node, .. }
            | DrainEvent::Blocked { node, .. }
            | DrainEvent::Throttled { node, .. }
            | DrainEvent::ServerError { node, .. }
            | DrainEvent::Failed { node, .. }
            | DrainEvent::Evicted { node, .. }
            | DrainEvent::Gone { node, .. }
            | DrainEvent::ReplacementReady { node, .. }
            | DrainEvent::Drained { node, .. }
            | DrainEvent::Stopped { node, .. }
            | DrainEvent::Timeout { node, .. }
            | DrainEvent::Uncordoned { node } => Some(node),
        }
    }

    /// One line for a log or a terminal, without the node prefix.
    pub fn message(&self) -> String {
        match self {
            DrainEvent::Cordoned { .. } => "cordoned".to_string(),
            DrainEvent::Classified { evict, delete, terminating, skipped, blockers, .. } => {
                let mut parts = vec![format!("{} to evict", evict.len())];
                if !delete.is_empty() {
                    parts.push(format!("{} to delete", delete.len()));
                }
                if !terminating.is_empty() {
                    parts.push(format!("{} already terminating", terminating.len()));
                }
                if !skipped.is_empty() {
                    let mut reasons: Vec<&str> = skipped.iter().map(|s| s.reason.as_str()).collect();
                    reasons.sort_unstable();
                    reasons.dedup();
                    parts.push(format!("{} left ({})", skipped.len(), reasons.join(", ")));
                }
                if !blockers.is_empty() {
                    parts.push(format!("{} blocker(s)", blockers.len()));
                }
                format!("pods: {}", parts.join(", "))
            }
            DrainEvent::Warning { message, .. } => format!("WARNING: {message}"),
            DrainEvent::Evicting { pod, attempt, removal, .. } => {
                let verb = match removal {
                    Removal::Eviction => "evicting",
                    Removal::Delete => "deleting",
                };
                if *attempt > 1 { format!("{verb} {pod} (attempt {attempt})") } else { format!("{verb} {pod}") }
            }
            DrainEvent::Blocked { pod, pdb, needs, has, retry_in_ms, .. } => {
                let numbers = match (needs, has) {
                    (Some(n), Some(h)) => format!(": needs {n} healthy pods and has {h} currently"),
                    _ => String::new(),
                };
                format!(
                    "{pod} blocked by PodDisruptionBudget {pdb}{numbers}; retrying in {}",
                    human_duration(Duration::from_millis(*retry_in_ms))
                )
            }
            DrainEvent::Throttled { pod, retry_in_ms, .. } => format!(
                "{pod}: the API server is throttling requests; retrying in {}",
                human_duration(Duration::from_millis(*retry_in_ms))
            ),
            DrainEvent::ServerError { pod, code, in_a_row, cap, retry_in_ms, .. } => format!(
                "{pod}: the API server answered {code} to its eviction ({in_a_row} of {cap} in a row); retrying in {}",
                human_duration(Duration::from_millis(*retry_in_ms))
            ),
            DrainEvent::Failed { pod, message, .. } => format!("{pod} cannot be evicted: {message}"),
            DrainEvent::Evicted { pod, removal, .. } => match removal {
                Removal::Eviction => format!("evicted {pod}"),
                Removal::Delete => format!("deleted {pod}"),
            },
            DrainEvent::Gone { pod, .. } => format!("{pod} is gone"),
            DrainEvent::ReplacementReady { controller, ready, target, .. } => {
                format!("{controller}: {ready}/{target} Ready replicas back on other nodes")
            }
            DrainEvent::Drained { elapsed_ms, .. } => {
                format!("drained in {}", human_duration(Duration::from_millis(*elapsed_ms)))
            }
            DrainEvent::Stopped { reason, .. } => format!("stopped: {reason}"),
            DrainEvent::Timeout { left, .. } => format!("timed out with {left} pod(s) left; the node stays cordoned"),
            DrainEvent::Uncordoned { .. } => "uncordoned".to_string(),
        }
    }

    /// `node/<name>: <message>`, the plain log line.
    pub fn line(&self) -> String {
        match self.node() {
            Some(node) => format!("node/{node}: {}", self.message()),
            None => self.message(),
        }
    }

    /// The Kubernetes Event to post on the node for this drain event, if it deserves one.
    /// Only milestones are posted, so a budget retried every few seconds does not flood the node.
    pub fn node_event(&self) -> Option<NodeEvent> {
        let (reason, warning) = match self {
            DrainEvent::Classified { blockers, .. } if blockers.is_empty() => ("StepstoneDrainStarted", false),
            DrainEvent::Blocked { .. } => ("StepstoneDrainBlocked", true),
            DrainEvent::Stopped { .. } => ("StepstoneDrainStopped", true),
            DrainEvent::Drained { .. } => ("StepstoneDrainCompleted", false),
            DrainEvent::Timeout { .. } => ("StepstoneDrainTimedOut", true),
            DrainEvent::Uncordoned { .. } => ("StepstoneUncordoned", false),
            _ => return None,
        };
        let node = self.node()?.to_string();
        Some(NodeEvent {
            node,
            reason,
            event_type: if warning { "Warning" } else { "Normal" },
            message: self.message(),
        })
    }
}

/// A Kubernetes Event about a node (core/v1 `Event`, involvedObject kind Node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    pub node: String,
    pub reason: &'static str,
    /// `Normal` or `Warning`.
    pub event_type: &'static str,
    pub message: String,
}

/// `5s`, `1.5s`, `250ms`, `2m5s`: short and exact enough for log lines.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{:.1}s", d.as_secs_f64()) }
    } else {
        let s = d.as_secs();
        if s.is_multiple_of(60) { format!("{}m", s / 60) } else { format!("{}m{}s", s / 60, s % 60) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_line_names_the_budget_and_numbers() {
        let e = DrainEvent::Blocked {
            node: "w1".into(),
            pod: ObjectKey::new("prod", "redis-0"),
            pdb: "prod/redis".into(),
            needs: Some(2),
            has: Some(2),
            retry_in_ms: 5000,
        };
        assert_eq!(
            e.line(),
            "node/w1: prod/redis-0 blocked by PodDisruptionBudget prod/redis: needs 2 healthy pods and has 2 currently; retrying in 5s"
        );
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"blocked","node":"w1","pod":"prod/redis-0","pdb":"prod/redis","needs":2,"has":2,"retryInMs":5000}"#
        );
        let ev = e.node_event().unwrap();
        assert_eq!((ev.reason, ev.event_type), ("StepstoneDrainBlocked", "Warning"));
    }

    #[test]
    fn server_error_line_counts_toward_the_cap() {
        let e = DrainEvent::ServerError {
            node: "w1".into(),
            pod: ObjectKey::new("prod", "web-1"),
            code: 503,
            in_a_row: 2,
            cap: 8,
            retry_in_ms: 1000,
        };
        assert_eq!(
            e.line(),
            "node/w1: prod/web-1: the API server answered 503 to its eviction (2 of 8 in a row); retrying in 1s"
        );
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"server-error","node":"w1","pod":"prod/web-1","code":503,"inARow":2,"cap":8,"retryInMs":1000}"#
        );
        assert!(e.node_event().is_none());
    }

    #[test]
    fn classified_summarises_reasons_once() {
        let e = DrainEvent::Classified {
            node: "w1".into(),
            evict: vec![ObjectKey::new("a", "x"), ObjectKey::new("a", "y")],
            delete: vec![],
            terminating: vec![],
            skipped: vec![
                SkippedPod { pod: ObjectKey::new("kube-system", "proxy"), reason: "DaemonSet".into() },
                SkippedPod { pod: ObjectKey::new("kube-system", "cni"), reason: "DaemonSet".into() },
                SkippedPod { pod: ObjectKey::new("kube-system", "etcd-w1"), reason: "mirror pod".into() },
            ],
            blockers: vec![],
        };
        assert_eq!(e.line(), "node/w1: pods: 2 to evict, 3 left (DaemonSet, mirror pod)");
        assert_eq!(e.node_event().unwrap().reason, "StepstoneDrainStarted");
        assert!(DrainEvent::Gone { node: "w1".into(), pod: ObjectKey::new("a", "x") }.node_event().is_none());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(125)), "2m5s");
    }
}

//! What the rollout tells people: the event stream (text for a terminal, one JSON object per
//! line with `-o json`), the clock it waits on, and the optional Slack-compatible webhook.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use stepstone_host::node::BoxFuture;

/// One thing that happened, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "event")]
pub enum RolloutEvent {
    Started {
        rollout: String,
        target: String,
        node_ops: String,
        steps: usize,
        resumed: bool,
    },
    /// A step starts; `done` steps of `total` are behind, `eta_minutes` of planned work ahead.
    Step {
        step: String,
        description: String,
        index: usize,
        total: usize,
        eta_minutes: u64,
        eta_wall_seconds: u64,
    },
    /// A step's postcondition already held.
    Skipped {
        step: String,
        description: String,
    },
    StepDone {
        step: String,
    },
    /// Something on one node (upgrade commands, drain lines, rollback).
    Node {
        node: String,
        message: String,
    },
    /// A rollback trigger fired.
    Trigger {
        message: String,
    },
    RolledBack {
        node: String,
        reason: String,
        kubelet_log: Vec<String>,
    },
    /// The rollout stopped and needs a person; `next` says what to do.
    Halted {
        reason: String,
        next: String,
    },
    Paused,
    Aborted,
    LockTakenOver {
        previous: String,
        why: String,
    },
    Completed {
        report: Option<String>,
    },
}

impl RolloutEvent {
    /// One line (or a few) for a terminal.
    pub fn text(&self) -> String {
        match self {
            RolloutEvent::Started { rollout, target, node_ops, steps, resumed } => format!(
                "{} rollout {rollout} to {target} with --node-ops {node_ops} ({steps} steps)",
                if *resumed { "resuming" } else { "starting" }
            ),
            RolloutEvent::Step { description, index, total, eta_minutes, eta_wall_seconds, .. } => {
                let pct = (*index * 100).checked_div(*total).unwrap_or(0);
                let wall = if *eta_wall_seconds > 0 && *eta_wall_seconds / 60 != *eta_minutes {
                    format!(", ~{} at this speed", human(*eta_wall_seconds))
                } else {
                    String::new()
                };
                format!("[{}/{total} {pct:>3}%] {description}  (ETA {}{wall})", index + 1, human(eta_minutes * 60))
            }
            RolloutEvent::Skipped { description, .. } => format!("  = already done: {description}"),
            RolloutEvent::StepDone { step } => format!("  ok {step}"),
            RolloutEvent::Node { node, message } => format!("  {node}: {message}"),
            RolloutEvent::Trigger { message } => format!("TRIGGER: {message}"),
            RolloutEvent::RolledBack { node, reason, kubelet_log } => {
                let mut s = format!("ROLLED BACK {node}: {reason}; left cordoned");
                for l in kubelet_log.iter().rev().take(5).rev() {
                    s.push_str(&format!("\n    kubelet log: {l}"));
                }
                s
            }
            RolloutEvent::Halted { reason, next } => format!("HALTED: {reason}\n  next: {next}"),
            RolloutEvent::Paused => "paused at a step boundary; `stepstone rollout resume` continues".into(),
            RolloutEvent::Aborted => "aborted; nothing more will run (the journal keeps what happened)".into(),
            RolloutEvent::LockTakenOver { previous, why } => {
                format!("took over the rollout lock from {previous}: {why}")
            }
            RolloutEvent::Completed { report } => match report {
                Some(r) => format!("rollout complete; report written to {r}"),
                None => "rollout complete".into(),
            },
        }
    }
}

/// `2h 5m`, `42s`.
pub fn human(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m"),
        _ => format!("{h}h {m}m"),
    }
}

/// Where events go.
pub type Sink = Arc<dyn Fn(&RolloutEvent) + Send + Sync>;

/// The clock the rollout waits on. Durations given to it are cluster time: against a lab that
/// runs `speed` times faster, a 30-minute soak lasts 30/speed real minutes.
/// `now` and `sleep` default to the wall clock, with waits shortened by `speed`.
pub trait Clock: Send + Sync {
    fn speed(&self) -> f64;
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
    fn sleep(&self, cluster_time: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(self.real(cluster_time)))
    }
    /// Real time that `cluster_time` lasts.
    fn real(&self, cluster_time: Duration) -> Duration {
        Duration::from_secs_f64(cluster_time.as_secs_f64() / self.speed())
    }
}

/// The system clock, with waits shortened by `speed` (1 outside a lab). A lab stamps its objects
/// on the wall clock too and only runs its durations faster, so this is also the clock against a
/// lab, with the speed `/lab/v1/clock` reports.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    pub speed: f64,
}

impl Clock for SystemClock {
    fn speed(&self) -> f64 {
        self.speed
    }
}

/// One outside system: where notices go (start, halt, each hop, completion).
pub trait Notifier: Send + Sync {
    fn notify<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// A Slack-compatible incoming webhook: `POST {"text": ...}` as JSON.
pub struct Webhook {
    client: kube::Client,
    path: String,
    url: String,
}

impl Webhook {
    /// `http://` or `https://` URL; the client checks TLS certificates as for an API server.
    pub fn new(url: &str) -> Result<Webhook, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| format!("--webhook {url}: not a URL; give e.g. https://hooks.slack.com/services/..."))?;
        let scheme = uri.scheme_str().unwrap_or("");
        if scheme != "http" && scheme != "https" {
            return Err(format!("--webhook {url}: only http:// and https:// URLs are supported"));
        }
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        let base: http::Uri =
            format!("{scheme}://{authority}").parse().map_err(|_| format!("--webhook {url}: not a URL"))?;
        let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let config = kube::Config::new(base);
        let client = kube::Client::try_from(config).map_err(|e| format!("--webhook {url}: {e}"))?;
        // Webhook URLs carry their secret in the path: messages name the host only.
        Ok(Webhook { client, path, url: format!("{scheme}://{authority}") })
    }
}

impl Notifier for Webhook {
    fn notify<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let body = serde_json::json!({"text": text}).to_string().into_bytes();
            let request = http::Request::post(self.path.as_str())
                .header("Content-Type", "application/json")
                .body(body)
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(Duration::from_secs(10), self.client.request_text(request))
                .await
                .map_err(|_| format!("webhook {}: no answer within 10 s", self.url))?
                .map(|_| ())
                .map_err(|e| format!("webhook {}: {e}", self.url))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_show_position_and_eta() {
        let e = RolloutEvent::Step {
            step: "h1/wave/2".into(),
            description: "batch dell-r640 -> v1.34.11: r640-02, r640-03".into(),
            index: 9,
            total: 40,
            eta_minutes: 185,
            eta_wall_seconds: 19,
        };
        assert_eq!(
            e.text(),
            "[10/40  22%] batch dell-r640 -> v1.34.11: r640-02, r640-03  (ETA 3h 5m, ~19s at this speed)"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["event"], "step");
        assert_eq!(json["etaMinutes"], 185);
    }

    #[tokio::test]
    async fn webhook_urls_are_checked_and_their_secret_path_kept_out_of_messages() {
        assert!(Webhook::new("ftp://example.com/x").is_err());
        let w = Webhook::new("http://127.0.0.1:9/services/T000/B000/SECRET").unwrap();
        assert_eq!(w.url, "http://127.0.0.1:9");
        assert_eq!(w.path, "/services/T000/B000/SECRET");
    }
}

//! Shared by the drain tests: a lab with a kubeconfig, a client built
//! the way `stepstone drain` builds it, an event recorder, and waits on the lab's state.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use stepstone_kube::drain::{DrainConfig, DrainEvent, DrainReport, EventSink, RetryPolicy, drain};
use stepstone_lab::{Lab, LabHandle, LabOptions};

/// Lab seconds per wall-clock second: a 30 s grace period takes 0.15 s, a pod starts and turns
/// Ready in 35 ms.
pub const SPEED: f64 = 200.0;

/// A running lab and a kubeconfig for it.
pub struct TestLab {
    pub lab: LabHandle,
    pub kubeconfig: PathBuf,
    /// The lab's clock moves only when the test steps it.
    pub manual: bool,
    _dir: tempfile::TempDir,
}

impl TestLab {
    pub async fn start(fleet: Value) -> TestLab {
        Self::start_with(fleet, false).await
    }

    /// A lab on a manual clock at speed 1: grace periods and start-ups pass only as the test
    /// steps the clock ([`step`](Self::step)).
    pub async fn start_manual(fleet: Value) -> TestLab {
        Self::start_with(fleet, true).await
    }

    async fn start_with(fleet: Value, manual: bool) -> TestLab {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("lab.kubeconfig");
        let speed = if manual { 1.0 } else { SPEED };
        let opts =
            LabOptions { speed, manual_clock: manual, kubeconfig: Some(kubeconfig.clone()), ..Default::default() };
        let lab = Lab::start(fleet, opts).await.expect("lab starts");
        TestLab { lab, kubeconfig, manual, _dir: dir }
    }

    /// Move a manual clock one second and let the lab act on it; on the wall clock, a short wait.
    pub async fn step(&self) {
        if self.manual {
            self.lab.advance(Duration::from_secs(1)).await.expect("a manual clock");
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A client exactly as `stepstone drain` builds one (no built-in 429 retry).
    pub async fn client(&self) -> kube::Client {
        stepstone_kube::connect(Some(&self.kubeconfig), None).await.expect("client").unretried
    }

    /// Pods of `app=<app>` in `ns` that count as healthy for a budget: Ready, not terminating.
    pub fn healthy(&self, ns: &str, app: &str) -> Vec<Value> {
        self.lab
            .list("pods", Some(ns))
            .into_iter()
            .filter(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app))
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none() && is_ready(p))
            .collect()
    }

    /// Wait (polling the lab's store, which costs no API request) until `app` has `n` healthy
    /// pods and every budget has caught up with them.
    pub async fn wait_healthy(&self, ns: &str, app: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.healthy(ns, app).len() < n {
            assert!(
                Instant::now() < deadline,
                "{ns}/{app} never reached {n} Ready pods: {:#?}",
                self.lab.list("pods", Some(ns))
            );
            self.step().await;
        }
        // The disruption controller reacts to the same pods; give it a moment to publish.
        if self.manual {
            self.lab.settle().await;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node running the first healthy pod of `app`.
    pub fn node_of(&self, ns: &str, app: &str) -> String {
        let pods = self.healthy(ns, app);
        let mut nodes: Vec<String> =
            pods.iter().filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str).map(String::from)).collect();
        nodes.sort();
        nodes.into_iter().next().unwrap_or_else(|| panic!("no healthy pod of {ns}/{app}"))
    }

    /// `(name, uid)` of every pod on `node`, sorted.
    pub fn pods_on(&self, node: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .lab
            .list("pods", None)
            .into_iter()
            .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .map(|p| {
                let ns = p.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
                let name = p.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                let uid = p.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
                (format!("{ns}/{name}"), uid.to_string())
            })
            .collect();
        out.sort();
        out
    }

    pub fn unschedulable(&self, node: &str) -> bool {
        self.lab
            .get("nodes", "", node)
            .and_then(|n| n.pointer("/spec/unschedulable").and_then(Value::as_bool))
            .unwrap_or(false)
    }

    /// The Events posted about `node`, as (reason, message).
    pub fn node_events(&self, node: &str) -> Vec<(String, String)> {
        self.lab
            .list("events", None)
            .into_iter()
            .filter(|e| {
                e.pointer("/involvedObject/kind").and_then(Value::as_str) == Some("Node")
                    && e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(node)
            })
            .map(|e| {
                (
                    e.get("reason").and_then(Value::as_str).unwrap_or_default().to_string(),
                    e.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// A drain configuration for the lab's clock: budget retries every 100 ms instead of 5 s.
pub fn config(timeout: Duration) -> DrainConfig {
    DrainConfig {
        timeout,
        retry: RetryPolicy {
            budget_interval: Duration::from_millis(100),
            ..RetryPolicy::default().scaled(SPEED / 4.0)
        },
        ..DrainConfig::default()
    }
}

/// Drain `nodes` with [`config`]`(timeout)`, keeping every event; panics when the drain cannot
/// start (a test's lab is always reachable).
pub async fn drain_recorded(client: &kube::Client, nodes: &[String], timeout: Duration) -> (DrainReport, Recorder) {
    let recorder = Recorder::default();
    let report = drain(client, nodes, &config(timeout), &recorder).await.expect("drain");
    (report, recorder)
}

/// Keeps every event, in order.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<DrainEvent>>,
}

impl Recorder {
    pub fn all(&self) -> Vec<DrainEvent> {
        self.events.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&DrainEvent) -> bool) -> usize {
        self.events.lock().unwrap().iter().filter(|e| pred(e)).count()
    }
}

impl EventSink for Recorder {
    fn emit(&self, event: &DrainEvent) {
        // Shown by the test harness when a test fails.
        eprintln!("{}", event.line());
        self.events.lock().unwrap().push(event.clone());
    }
}

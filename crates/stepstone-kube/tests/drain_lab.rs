//! `stepstone_kube::drain` against the lab: budgets that block and unblock, blockers found
//! before any eviction, pods left on purpose, consent for emptyDir data, and the timeout report.

mod drain_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use drain_support::{Recorder, TestLab, config, drain_recorded};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use stepstone_core::drain::BlockerKind;
use stepstone_fleet::Fleet;
use stepstone_kube::drain::{DrainEvent, EventSink, NodeOutcome, RuleOptions, drain};

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_blocks_until_the_deployment_is_scaled_up() {
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .deployment("prod", "redis", 2, json!([]))
        .pdb("prod", "redis", "redis", 2)
        .build();
    let t = TestLab::start(fleet).await;
    t.wait_healthy("prod", "redis", 2).await;
    let node = t.node_of("prod", "redis");
    let before = t.pods_on(&node);
    let client = t.client().await;
    let recorder = Arc::new(Recorder::default());

    let task = tokio::spawn({
        let (client, recorder, node) = (client.clone(), recorder.clone(), node.clone());
        async move { drain(&client, &[node], &config(Duration::from_secs(30)), &*recorder).await }
    });
    wait_for("the budget to block", || {
        recorder.count(
            |e| matches!(e, DrainEvent::Blocked { pdb, needs: Some(2), has: Some(2), .. } if pdb == "prod/redis"),
        ) >= 2
    })
    .await;
    // Blocked means blocked: the redis pod is still there, both replicas healthy.
    assert_eq!(t.pods_on(&node), before);
    assert_eq!(t.healthy("prod", "redis").len(), 2);
    assert!(t.unschedulable(&node), "the node is cordoned while the drain waits");

    // The operator follows the advice: one more replica.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "prod");
    deployments
        .patch("redis", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .expect("scale up");

    let report = task.await.expect("drain task").expect("drain");
    assert_eq!(report.nodes[0].outcome, NodeOutcome::Drained, "{}", report.render());
    assert!(report.succeeded());
    assert!(t.unschedulable(&node), "a drained node stays cordoned");
    assert!(!t.pods_on(&node).iter().any(|(p, _)| p.starts_with("prod/redis")), "{:?}", t.pods_on(&node));
    // Waiting for replacements means the budget is whole again when the drain returns.
    assert!(t.healthy("prod", "redis").len() >= 2);
    assert!(
        recorder.count(
            |e| matches!(e, DrainEvent::ReplacementReady { controller, .. } if controller == "deploy/prod/redis")
        ) == 1
    );
    let events = t.node_events(&node);
    assert!(events.iter().any(|(r, m)| r == "StepstoneDrainBlocked" && m.contains("prod/redis")), "{events:?}");
    assert!(events.iter().any(|(r, _)| r == "StepstoneDrainCompleted"), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_singleton_under_min_available_1_stops_the_drain_before_any_eviction() {
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .deployment("prod", "db", 1, json!([]))
        .pdb("prod", "db", "db", 1)
        .deployment("prod", "web", 4, json!([]))
        .build();
    let t = TestLab::start(fleet).await;
    t.wait_healthy("prod", "db", 1).await;
    t.wait_healthy("prod", "web", 4).await;
    let node = t.node_of("prod", "db");
    let before = t.pods_on(&node);
    let client = t.client().await;

    let (report, recorder) = drain_recorded(&client, std::slice::from_ref(&node), Duration::from_secs(30)).await;

    let n = &report.nodes[0];
    assert_eq!(n.outcome, NodeOutcome::Blocked, "{}", report.render());
    assert!(!report.succeeded());
    let blocker =
        n.blockers.iter().find(|b| b.pod.namespace == "prod" && b.pod.name.starts_with("db-")).expect("db blocker");
    assert_eq!(blocker.kind, BlockerKind::Budget);
    assert!(
        blocker.reason.contains("PodDisruptionBudget prod/db needs 1 healthy pods and has 1"),
        "{}",
        blocker.reason
    );
    assert!(blocker.fix.contains("--replicas=2"), "{}", blocker.fix);
    // Nothing was evicted: not the singleton, not the web pods beside it.
    assert_eq!(recorder.count(|e| matches!(e, DrainEvent::Evicting { .. })), 0);
    assert_eq!(t.pods_on(&node), before);
    assert!(t.unschedulable(&node));
    assert!(report.render().contains("stepstone uncordon"), "{}", report.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_and_mirror_pods_stay_on_the_node() {
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .daemonset("node-exporter")
        .mirror_pod("etcd", "w1")
        .deployment("prod", "web", 4, json!([]))
        .build();
    let t = TestLab::start(fleet).await;
    t.wait_healthy("prod", "web", 4).await;
    t.wait_healthy("kube-system", "node-exporter", 2).await;
    let kept: Vec<(String, String)> = t
        .pods_on("w1")
        .into_iter()
        .filter(|(p, _)| p.starts_with("kube-system/node-exporter") || p == "kube-system/etcd-w1")
        .collect();
    assert_eq!(kept.len(), 2, "{:?}", t.pods_on("w1"));
    let client = t.client().await;

    let (report, _) = drain_recorded(&client, &["w1".to_string()], Duration::from_secs(30)).await;

    let n = &report.nodes[0];
    assert_eq!(n.outcome, NodeOutcome::Drained, "{}", report.render());
    assert_eq!(t.pods_on("w1"), kept, "only the DaemonSet and mirror pods remain, untouched");
    let mut reasons: Vec<(String, &str)> = n.skipped.iter().map(|s| (s.pod.to_string(), s.reason.as_str())).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].1, "mirror pod");
    assert_eq!(reasons[1].1, "DaemonSet");
    assert_eq!(t.healthy("prod", "web").len(), 4, "every web replica is back, on w2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptydir_data_needs_consent() {
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .deployment("prod", "cache", 2, json!([{"name": "scratch", "emptyDir": {}}]))
        .build();
    let t = TestLab::start(fleet).await;
    t.wait_healthy("prod", "cache", 2).await;
    let node = t.node_of("prod", "cache");
    let before = t.pods_on(&node);
    let client = t.client().await;

    let (report, _) = drain_recorded(&client, std::slice::from_ref(&node), Duration::from_secs(30)).await;
    let n = &report.nodes[0];
    assert_eq!(n.outcome, NodeOutcome::Blocked, "{}", report.render());
    assert!(n.blockers.iter().all(|b| b.kind == BlockerKind::Emptydir));
    assert_eq!(n.blockers[0].override_flag.as_deref(), Some("--delete-emptydir-data"));
    assert_eq!(t.pods_on(&node), before, "nothing evicted without consent");

    let mut consent = config(Duration::from_secs(30));
    consent.rules = RuleOptions { delete_emptydir_data: true, ..Default::default() };
    let recorder = Recorder::default();
    let report = drain(&client, std::slice::from_ref(&node), &consent, &recorder).await.expect("drain");
    assert_eq!(report.nodes[0].outcome, NodeOutcome::Drained, "{}", report.render());
    assert!(
        recorder.count(
            |e| matches!(e, DrainEvent::Warning { message, .. } if message.starts_with("--delete-emptydir-data"))
        ) >= 1
    );
    assert!(!t.pods_on(&node).iter().any(|(p, _)| p.starts_with("prod/cache")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_reports_the_blocking_budget_and_leaves_the_node_cordoned() {
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .deployment("prod", "redis", 2, json!([]))
        .pdb("prod", "redis", "redis", 2)
        .deployment("prod", "web", 3, json!([]))
        .build();
    let t = TestLab::start(fleet).await;
    t.wait_healthy("prod", "redis", 2).await;
    t.wait_healthy("prod", "web", 3).await;
    let node = t.node_of("prod", "redis");
    let client = t.client().await;

    let started = Instant::now();
    let (report, recorder) = drain_recorded(&client, std::slice::from_ref(&node), Duration::from_millis(1500)).await;
    assert!(started.elapsed() < Duration::from_secs(6), "the timeout is honoured: {:?}", started.elapsed());

    let n = &report.nodes[0];
    assert_eq!(n.outcome, NodeOutcome::TimedOut, "{}", report.render());
    assert!(t.unschedulable(&node));
    let budget = n.budgets.iter().find(|b| b.budget.name == "redis").expect("redis budget in the report");
    assert_eq!((budget.budget.current_healthy, budget.budget.desired_healthy), (2, 2));
    assert_eq!(budget.fix, "kubectl scale deploy/redis -n prod --replicas=3");
    let left: Vec<&str> = n.left.iter().map(|l| l.reason.as_str()).collect();
    assert!(left.iter().any(|r| r.starts_with("blocked by PodDisruptionBudget prod/redis")), "{left:?}");
    let text = report.render();
    assert!(
        text.contains("PodDisruptionBudget prod/redis (minAvailable 2): 2 healthy of 2 expected, needs 2"),
        "{text}"
    );
    assert!(recorder.count(|e| matches!(e, DrainEvent::Timeout { .. })) == 1);
    assert!(t.node_events(&node).iter().any(|(r, _)| r == "StepstoneDrainTimedOut"));
    // The redis pod was never evicted.
    assert_eq!(t.healthy("prod", "redis").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_throttling_is_retried_with_backoff() {
    let fleet = Fleet::builder().worker("w1").worker("w2").worker("w3").deployment("prod", "web", 9, json!([])).build();
    let t = TestLab::start(fleet).await;
    t.wait_healthy("prod", "web", 9).await;
    let client = t.client().await;
    // Four requests in ten answered 429 without a budget cause: without retries the drain
    // (cordon, list, reads, three evictions, watches) would almost never get through.
    t.lab.set_faults(stepstone_lab::FaultConfig { throttle_rate: 0.4, ..Default::default() }).expect("faults");
    let (report, _) = drain_recorded(&client, &["w1".to_string()], Duration::from_secs(30)).await;
    t.lab.set_faults(stepstone_lab::FaultConfig::default()).expect("faults");
    assert_eq!(report.nodes[0].outcome, NodeOutcome::Drained, "{}", report.render());
    assert!(!t.pods_on("w1").iter().any(|(p, _)| p.starts_with("prod/")));
    assert_eq!(t.healthy("prod", "web").len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_controller_reads_are_retried() {
    // Two Deployments in one namespace (their ReplicaSets are listed) and one alone in another
    // (read by name), so both ways of reading controllers meet the faults.
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .deployment("prod", "web", 3, json!([]))
        .deployment("prod", "api", 3, json!([]))
        .deployment("batch", "jobs", 3, json!([]))
        .build();
    let t = TestLab::start(fleet).await;
    for (ns, app) in [("prod", "web"), ("prod", "api"), ("batch", "jobs")] {
        t.wait_healthy(ns, app, 3).await;
    }
    let client = t.client().await;
    // Three requests in ten throttled (429, which the eviction loop also retries): a read that
    // is not retried fails the drain.
    t.lab.set_faults(stepstone_lab::FaultConfig { throttle_rate: 0.3, ..Default::default() }).expect("faults");
    let (report, _) = drain_recorded(&client, &["w1".to_string()], Duration::from_secs(60)).await;
    t.lab.set_faults(stepstone_lab::FaultConfig::default()).expect("faults");
    assert_eq!(report.nodes[0].outcome, NodeOutcome::Drained, "{}", report.render());
    for (ns, app) in [("prod", "web"), ("prod", "api"), ("batch", "jobs")] {
        assert!(!t.pods_on("w1").iter().any(|(p, _)| p.starts_with(&format!("{ns}/{app}"))), "{ns}/{app} left w1");
    }
}

/// `namespace/name` of every budget the lab shows below its desired healthy pods (read from the
/// lab's store: no API request, so the faults do not touch it).
fn budgets_below(t: &TestLab) -> Vec<String> {
    t.lab
        .list("poddisruptionbudgets", None)
        .iter()
        .filter(|b| {
            b.pointer("/status/currentHealthy").and_then(serde_json::Value::as_i64)
                < b.pointer("/status/desiredHealthy").and_then(serde_json::Value::as_i64)
        })
        .map(|b| b["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_answered_500_are_retried_and_the_budget_holds() {
    // Sixty pods under a budget that allows three at a time: about twenty evictions from w1,
    // each with a 30 % chance of a 500 (kubectl drain would stop at the first one).
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .deployment("prod", "web", 60, json!([]))
        .pdb_max_unavailable("prod", "web", "web", 3)
        .build();
    let t = Arc::new(TestLab::start(fleet).await);
    t.wait_healthy("prod", "web", 60).await;
    assert!(budgets_below(&t).is_empty());
    let on_w1 = t.pods_on("w1").iter().filter(|(p, _)| p.starts_with("prod/web")).count();
    let client = t.client().await;
    t.lab.set_faults(stepstone_lab::FaultConfig { error_rate: 0.3, ..Default::default() }).expect("faults");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (t, stop) = (t.clone(), stop.clone());
        move || {
            let mut below = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                below.extend(budgets_below(&t));
                std::thread::sleep(Duration::from_millis(5));
            }
            below
        }
    });
    let (report, recorder) = drain_recorded(&client, &["w1".to_string()], Duration::from_secs(60)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    t.lab.set_faults(stepstone_lab::FaultConfig::default()).expect("faults");
    let below = sampler.join().expect("sampler");

    assert_eq!(report.nodes[0].outcome, NodeOutcome::Drained, "{}", report.render());
    assert!(below.is_empty(), "budgets went below their desired healthy pods: {below:?}");
    assert!(!t.pods_on("w1").iter().any(|(p, _)| p.starts_with("prod/web")), "{:?}", t.pods_on("w1"));
    assert_eq!(report.nodes[0].evicted.len(), on_w1);
    let retried = recorder.count(|e| matches!(e, DrainEvent::ServerError { code: 500, .. }));
    assert!(retried > 0, "no eviction met a 500 in {on_w1}: the test proves nothing");
    assert_eq!(report.nodes[0].server_errors_retried as usize, retried);
    assert!(
        report.render().contains(&format!("evictions sent again after a server error (500, 502, 503, 504): {retried}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_keeps_failing_evictions_stops_the_drain_with_the_reason() {
    let fleet = Fleet::builder().worker("w1").worker("w2").deployment("prod", "web", 4, json!([])).build();
    let t = Arc::new(TestLab::start(fleet).await);
    t.wait_healthy("prod", "web", 4).await;
    let node = t.node_of("prod", "web");
    let client = t.client().await;
    /// Fails every request from the first eviction on: the cordon and reads went through.
    struct FailFromFirstEviction {
        t: Arc<TestLab>,
        recorder: Recorder,
    }
    impl EventSink for FailFromFirstEviction {
        fn emit(&self, event: &DrainEvent) {
            if matches!(event, DrainEvent::Evicting { .. })
                && self.recorder.count(|e| matches!(e, DrainEvent::Evicting { .. })) == 0
            {
                self.t
                    .lab
                    .set_faults(stepstone_lab::FaultConfig { error_rate: 1.0, ..Default::default() })
                    .expect("faults");
            }
            self.recorder.emit(event);
        }
    }
    let sink = FailFromFirstEviction { t: t.clone(), recorder: Recorder::default() };
    let report =
        drain(&client, std::slice::from_ref(&node), &config(Duration::from_secs(30)), &sink).await.expect("drain");
    t.lab.set_faults(stepstone_lab::FaultConfig::default()).expect("faults");

    let n = &report.nodes[0];
    assert_eq!(n.outcome, NodeOutcome::Failed, "{}", report.render());
    assert!(t.unschedulable(&node), "the node stays cordoned");
    let failed: Vec<_> = n.left.iter().filter(|l| l.reason.contains("answered 500 to 8 evictions in a row")).collect();
    assert!(!failed.is_empty(), "{}", report.render());
    for l in &failed {
        // Seven retries, then the eighth failure gives up.
        let retries = sink.recorder.count(|e| matches!(e, DrainEvent::ServerError { pod, .. } if *pod == l.pod));
        assert_eq!(retries, 7, "{}", l.pod);
        assert!(l.reason.contains("etcdserver: request timed out") && l.reason.contains("Fix:"), "{}", l.reason);
        assert!(t.pods_on(&node).iter().any(|(p, _)| l.pod == p.as_str()), "{} is still on the node", l.pod);
    }
    assert_eq!(n.server_errors_retried as usize, 7 * failed.len());
}

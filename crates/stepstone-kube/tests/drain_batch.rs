//! Two nodes drained as one batch under a shared budget: a sampler that steps the lab's manual
//! clock a second at a time and reads its state after every step proves the budget's minimum was
//! never broken.

mod drain_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use drain_support::{Recorder, TestLab, config};
use serde_json::{Value, json};
use stepstone_fleet::Fleet;
use stepstone_kube::drain::{DrainEvent, NodeOutcome, drain};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_node_batch_never_takes_a_shared_budget_below_its_minimum() {
    const MIN_AVAILABLE: usize = 3;
    let fleet = Fleet::builder()
        .worker("w1")
        .worker("w2")
        .worker("w3")
        .worker("w4")
        .deployment("prod", "web", 4, json!([]))
        .pdb("prod", "web", "web", MIN_AVAILABLE as i64)
        .deployment("prod", "worker", 4, json!([]))
        .build();
    let t = Arc::new(TestLab::start_manual(fleet).await);
    t.wait_healthy("prod", "web", 4).await;
    t.wait_healthy("prod", "worker", 4).await;

    // The two nodes holding web pods first in name order: both have to give theirs up.
    let web_nodes: BTreeSet<String> = t
        .healthy("prod", "web")
        .iter()
        .filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str).map(String::from))
        .collect();
    let batch: Vec<String> = web_nodes.into_iter().take(2).collect();
    assert_eq!(batch.len(), 2, "web is spread over at least two nodes");

    // Step the clock and sample the lab's store (no API request) after every lab second: the
    // drain moves only as fast as the sampler lets time pass, so no state goes unseen.
    let lowest = Arc::new(AtomicUsize::new(usize::MAX));
    let samples = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (t, lowest, samples, stop) = (t.clone(), lowest.clone(), samples.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                lowest.fetch_min(t.healthy("prod", "web").len(), Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                t.step().await;
            }
        }
    });

    let client = t.client().await;
    let recorder = Recorder::default();
    // The drain's timeout runs on the wall clock, the lab's time only as fast as the sampler
    // steps it: on a loaded machine the ~80 lab seconds this drain needs can take longer than
    // any short timeout. The test is about the budget, so the timeout only stops a drain that
    // would otherwise never end.
    let report = drain(&client, &batch, &config(Duration::from_secs(300)), &recorder).await.expect("drain");
    stop.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");

    assert_eq!(report.nodes.len(), 2);
    for n in &report.nodes {
        assert_eq!(n.outcome, NodeOutcome::Drained, "{}", report.render());
        assert!(!t.pods_on(&n.node).iter().any(|(p, _)| p.starts_with("prod/")), "{:?}", t.pods_on(&n.node));
    }
    let lowest = lowest.load(Ordering::Relaxed);
    // One sample a lab second through at least one 30 s grace period.
    let samples = samples.load(Ordering::Relaxed);
    assert!(samples > 30, "the sampler ran throughout: {samples} samples");
    assert!(lowest >= MIN_AVAILABLE, "web fell to {lowest} healthy pods, below minAvailable {MIN_AVAILABLE}");
    // Only one web eviction fits the budget at a time, so the batch waited for a replacement
    // between the two (the view held the second back or the server refused it).
    let web_evictions = recorder.count(
        |e| matches!(e, DrainEvent::Evicted { pod, .. } if pod.namespace == "prod" && pod.name.starts_with("web-")),
    );
    assert_eq!(web_evictions, 2);
    let held = recorder.count(|e| matches!(e, DrainEvent::Blocked { pdb, .. } if pdb == "prod/web"));
    assert!(held >= 1, "the second web pod waited for the budget");
    assert_eq!(t.healthy("prod", "web").len(), 4, "all replicas back before the batch counts as drained");
}

//! The lab's one clock, seen through the real `kubectl`: on a lab that runs sixty times faster,
//! timestamps stay on the wall clock (ages read in seconds, never `<invalid>`) while durations
//! such as a 30-second grace period pass sixty times faster.

mod common;

use std::time::Duration;

use common::*;
use jiff::Timestamp;
use serde_json::Value;
use stepstone_lab::{Lab, LabOptions};

fn ts(v: &Value) -> Timestamp {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

/// Seconds between two times, as a float (negative when `to` is earlier).
fn secs(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// kubectl's short age in seconds (`45s`), or `None` for minutes, hours, `<invalid>`.
fn age_in_seconds(age: &str) -> Option<u64> {
    age.strip_suffix('s')?.parse().ok()
}

const HELD_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: held
  namespace: shop
  finalizers: [example.com/hold]
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
";

#[test]
fn a_fast_lab_stamps_objects_on_the_wall_clock_so_kubectl_ages_are_seconds() {
    let (lab, _dir, kc) = start_lab(drain_fleet(), 60.0);
    kubectl_ok(&kc, &["run", "fresh", "-n", "shop", "--image=registry.example/app:1.0"]);
    wait_for(30, "the pod to run Ready", || {
        lab.get("pods", "shop", "fresh").is_some_and(|p| {
            p["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
    });
    let pod: Value = serde_json::from_str(&kubectl_ok(&kc, &["get", "pod", "fresh", "-n", "shop", "-o", "json"]))
        .expect("kubectl prints JSON");
    let created = ts(&pod["metadata"]["creationTimestamp"]);
    let skew = secs(created, Timestamp::now());
    assert!((-2.0..30.0).contains(&skew), "created at {created}, {skew}s from the wall clock");
    let ready_at = pod["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    let skew = secs(ts(&ready_at["lastTransitionTime"]), Timestamp::now());
    assert!((-2.0..30.0).contains(&skew), "Ready at {ready_at}, {skew}s from the wall clock");

    let row = kubectl_ok(&kc, &["get", "pod", "fresh", "-n", "shop", "--no-headers"]);
    let age = row.split_whitespace().nth(4).unwrap_or_default();
    assert!(age_in_seconds(age).is_some_and(|s| s < 60), "AGE {age:?} in {row:?}");

    // The lab's events (Scheduled, Started...) and one kubectl writes itself read alike.
    kubectl_ok(&kc, &["create", "configmap", "marker", "-n", "shop", "--from-literal=k=v"]);
    let events = kubectl_ok(&kc, &["get", "events", "-n", "shop"]);
    assert!(!events.contains("<invalid>"), "{events}");
    let for_pod: Vec<&str> = events.lines().filter(|l| l.contains("pod/fresh")).collect();
    assert!(!for_pod.is_empty(), "no events for pod/fresh: {events}");
    for line in for_pod {
        let last_seen = line.split_whitespace().next().unwrap_or_default();
        assert!(age_in_seconds(last_seen).is_some_and(|s| s < 60), "LAST SEEN {last_seen:?} in {line:?}");
    }
    let all = kubectl_ok(&kc, &["get", "events", "-A"]);
    assert!(!all.contains("<invalid>"), "{all}");
}

#[test]
fn a_grace_period_lasts_its_share_of_wall_time_while_the_deletion_timestamp_reads_like_an_apiserver() {
    let (lab, _dir, kc) = start_lab(drain_fleet(), 60.0);
    let cache = kc.with_file_name("cache");
    let out = kubectl_fresh(&kc, &cache, &["create", "-f", "-"], Some(HELD_POD));
    assert!(out.status.success(), "{}", text(&out).1);
    wait_for(30, "the pod to run", || {
        lab.get("pods", "shop", "held").is_some_and(|p| p["status"]["phase"] == "Running")
    });
    let asked = Timestamp::now();
    kubectl_ok(&kc, &["delete", "pod", "held", "-n", "shop", "--wait=false"]);
    // The finalizer keeps the pod once its containers stop: the kubelet marks it Failed when the
    // 30 s grace period is over, half a second later at this speed.
    wait_for(30, "the kubelet to end the grace period", || {
        lab.get("pods", "shop", "held").is_some_and(|p| p["status"]["phase"] == "Failed")
    });
    let pod: Value = serde_json::from_str(&kubectl_ok(&kc, &["get", "pod", "held", "-n", "shop", "-o", "json"]))
        .expect("kubectl prints JSON");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    let deadline = ts(&pod["metadata"]["deletionTimestamp"]);
    let ahead = secs(asked, deadline);
    assert!((25.0..60.0).contains(&ahead), "deletionTimestamp {deadline} is {ahead}s after the request");
    let finished = ts(&pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]);
    assert!(finished < deadline, "containers stopped at {finished}, not before {deadline}");
}

#[test]
fn a_manual_clock_ends_a_30s_grace_period_after_half_a_second_at_speed_60() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("lab.kubeconfig");
    let lab = Lab::start_blocking(
        drain_fleet(),
        LabOptions { speed: 60.0, manual_clock: true, kubeconfig: Some(kc.clone()), ..Default::default() },
    )
    .expect("lab starts");
    let start = lab.now();
    lab.settle_blocking();
    assert_eq!(lab.now(), start, "nothing moves a manual clock but advance");
    let victim = "web-5d8f7c9b6-p0";
    let pod = lab.get("pods", "shop", victim).expect("the fleet's pod");
    assert!(pod["spec"]["nodeName"].is_string(), "{pod}");
    kubectl_ok(&kc, &["delete", "pod", victim, "-n", "shop", "--grace-period=30", "--wait=false"]);
    lab.settle_blocking();
    let terminating = lab.get("pods", "shop", victim).expect("terminating, not gone");
    assert_eq!(
        ts(&terminating["metadata"]["deletionTimestamp"]),
        jiff::Timestamp::from_second(start.as_second() + 30).unwrap()
    );
    lab.advance_blocking(Duration::from_millis(490)).unwrap();
    assert!(lab.get("pods", "shop", victim).is_some(), "gone before the grace period ended");
    lab.advance_blocking(Duration::from_millis(10)).unwrap();
    assert!(lab.get("pods", "shop", victim).is_none(), "still there when the grace period ended");
}

//! Read commands against a lab that fails requests (`stepstone lab faults`): transient 500s
//! and 429s are retried until the read succeeds; a server that keeps failing ends the command
//! with exit code 3 naming the URL, not 2 ("bad input") and never a clean report.

mod common;

use std::process::Output;

use common::{TestLab, stderr, stdout};

fn text(out: &Output) -> (String, String) {
    (stdout(out), stderr(out))
}

fn set_faults(lab: &TestLab, flags: &[&str]) {
    let mut args = vec!["lab", "faults"];
    args.extend(flags);
    let out = lab.run(&args);
    assert_eq!(out.status.code(), Some(0), "lab faults {flags:?}: {:?}", text(&out));
}

#[test]
fn inventory_rides_out_a_fifth_of_requests_failing_with_500() {
    let running = TestLab::small(100.0, |_| {});
    set_faults(&running, &["--error-rate", "0.2"]);
    let mut retried = 0;
    for run in 1..=20 {
        let out = running.run(&["inventory", "-o", "json", "-vv"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "run {run}: {stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).expect("inventory prints JSON");
        assert_eq!(doc["kind"], "Inventory", "{stdout}");
        retried += stderr.matches("read failed; retrying").count();
    }
    // The faults did hit (about a fifth of some 180 reads) and were ridden out.
    assert!(retried >= 5, "only {retried} retries in 20 runs");
}

#[test]
fn a_server_that_keeps_failing_exits_3_naming_the_url() {
    let running = TestLab::small(100.0, |_| {});
    set_faults(&running, &["--error-rate", "1"]);
    let url = running.lab.url();

    let out = running.run(&["inventory"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains(&format!("GET {url}/api/v1/nodes")), "{stderr}");
    assert!(stderr.contains("failed 8 times"), "{stderr}");

    // `apis` reads the same way: no "0 break" report over reads that failed.
    let out = running.run(&["apis", "--to", "v1.35"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    // (Discovery is not faulted, so the first list it reads is the one that fails.)
    assert!(stderr.contains(&format!("GET {url}/apis/")), "{stderr}");
    assert!(stderr.contains("500 InternalError"), "{stderr}");
    assert!(!stdout.contains("0 break"), "{stdout}");
}

#[test]
fn throttling_that_never_ends_exits_3_after_honouring_retry_after() {
    let running = TestLab::small(100.0, |_| {});
    set_faults(&running, &["--throttle-rate", "1"]);
    let out = running.run(&["versions"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("429") || stderr.contains("TooManyRequests"), "{stderr}");
}

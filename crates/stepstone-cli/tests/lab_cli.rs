//! `stepstone lab generate` and `stepstone lab up` as a user runs them, checked with the real
//! `kubectl`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::stepstone;

#[test]
fn generate_then_up_serves_the_fleet_to_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.json");
    let out = stepstone()
        .args(["lab", "generate", "--nodes", "6", "--generations", "2", "--utilization", "0.5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&fleet, &out.stdout).unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = list["items"].as_array().unwrap().iter().filter(|i| i["kind"] == "Node").count();
    assert_eq!(nodes, 6);

    let kubeconfig = dir.path().join("lab.kubeconfig");
    let mut lab = stepstone()
        .args(["lab", "up", "--fleet"])
        .arg(&fleet)
        .args(["--speed", "20", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(lab.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("lab serving http://127.0.0.1:") && first.contains("6 nodes"), "{first}");
    let kubectl = std::panic::catch_unwind(|| common::kubectl(&kubeconfig, &["get", "nodes", "--no-headers"], None));
    let _ = lab.kill();
    let _ = lab.wait();
    let kubectl = kubectl.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(kubectl.status.success(), "{}", String::from_utf8_lossy(&kubectl.stderr));
    assert_eq!(String::from_utf8_lossy(&kubectl.stdout).lines().filter(|l| l.contains(" Ready ")).count(), 6);
}

#[test]
fn bad_input_names_the_flag() {
    let out = stepstone().args(["lab", "up", "--fleet", "/nonexistent/fleet.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fleet /nonexistent/fleet.json"));
    let out = stepstone().args(["lab", "generate", "--utilization", "1.5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--utilization"));
}

#[test]
fn numeric_flags_out_of_range_exit_2_naming_flag_and_range() {
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/small.json");
    for speed in ["1e308", "1e20", "1e-300", "0", "NaN", "inf"] {
        let out = stepstone().args(["lab", "up", "--fleet", fleet, "--speed", speed]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--speed {speed}: {err}");
        assert!(err.contains("--speed") && err.contains("must be between 0.01 and 10000"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = stepstone().args(["lab", "up", "--fleet", fleet, "--latency-ms", "99999999999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--latency-ms 99999999999 must be at most 60000"));
    let out = stepstone().args(["lab", "generate", "--nodes", "99999999999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nodes 99999999999 must be between 1 and 20000"));
    let out = stepstone().args(["lab", "up", "--fleet", fleet, "--error-rate", "NaN"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--error-rate NaN is not between 0.0 and 1.0"));
}

#[test]
fn up_never_overwrites_a_running_labs_kubeconfig_and_lab_commands_read_kubeconfig_from_the_environment() {
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/small.json");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let mut lab = stepstone()
        .args(["lab", "up", "--fleet", fleet, "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(lab.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let written = std::fs::read_to_string(&kubeconfig).unwrap_or_default();

    let second = stepstone().args(["lab", "up", "--fleet", fleet, "--kubeconfig"]).arg(&kubeconfig).output().unwrap();
    // KUBECONFIG names the lab for `lab` commands run without --kubeconfig, from any directory.
    let nodes = stepstone()
        .args(["lab", "nodes", "-o", "json"])
        .env("KUBECONFIG", &kubeconfig)
        .current_dir(dir.path().parent().unwrap())
        .output()
        .unwrap();
    let _ = lab.kill();
    let _ = lab.wait();

    assert!(first.starts_with("lab serving http://127.0.0.1:"), "{first}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("belongs to the lab still running at http://127.0.0.1:"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(std::fs::read_to_string(&kubeconfig).unwrap(), written, "the running lab's kubeconfig is kept");
    assert_eq!(nodes.status.code(), Some(0), "{}", String::from_utf8_lossy(&nodes.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&nodes.stdout).unwrap();
    assert_eq!(doc["nodes"].as_array().map(Vec::len), Some(15));

    // Once the lab has stopped, its kubeconfig reaches nothing: one line says so.
    let gone = stepstone().args(["lab", "nodes", "--kubeconfig"]).arg(&kubeconfig).output().unwrap();
    let err = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("cannot reach the lab at http://127.0.0.1:"), "{err}");

    // Another cluster's kubeconfig is never replaced either.
    let other = dir.path().join("config");
    let theirs = "apiVersion: v1\nkind: Config\ncurrent-context: prod\n";
    std::fs::write(&other, theirs).unwrap();
    let out = stepstone().args(["lab", "up", "--fleet", fleet, "--kubeconfig"]).arg(&other).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a lab's kubeconfig"));
    assert_eq!(std::fs::read_to_string(&other).unwrap(), theirs);
}

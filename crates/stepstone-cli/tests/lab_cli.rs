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
        .env("XDG_RUNTIME_DIR", dir.path())
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
        .env("XDG_RUNTIME_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(lab.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let written = std::fs::read_to_string(&kubeconfig).unwrap_or_default();

    let second = stepstone()
        .args(["lab", "up", "--fleet", fleet, "--kubeconfig"])
        .arg(&kubeconfig)
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();
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
    let out = stepstone()
        .args(["lab", "up", "--fleet", fleet, "--kubeconfig"])
        .arg(&other)
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a lab's kubeconfig"));
    assert_eq!(std::fs::read_to_string(&other).unwrap(), theirs);
}

/// `lab up -d` twice under different names, `lab status`, `lab down`: like kind's clusters,
/// each named lab runs in the background with its own kubeconfig and state until it is stopped.
#[test]
fn named_labs_run_in_the_background_side_by_side_until_down() {
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/small.json");
    let dir = tempfile::tempdir().unwrap();
    let lab = |args: &[&str]| stepstone().args(["lab"]).args(args).env("XDG_RUNTIME_DIR", dir.path()).output().unwrap();
    /// Stops what the test started in the background, whether it passes or fails.
    struct Down<'a>(&'a std::path::Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            for name in ["alpha", "beta"] {
                let _ = stepstone().args(["lab", "down", "--name", name]).env("XDG_RUNTIME_DIR", self.0).output();
            }
        }
    }
    let _down = Down(dir.path());
    let up = lab(&["up", "-d", "--fleet", fleet, "--name", "alpha", "--speed", "5"]);
    let text = String::from_utf8_lossy(&up.stdout).into_owned();
    assert_eq!(up.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&up.stderr));
    let state = dir.path().join("stepstone/labs/alpha");
    let alpha_kubeconfig = state.join("kubeconfig");
    assert!(text.contains("lab alpha is running in the background"), "{text}");
    assert!(text.contains(&format!("kubeconfig: {}", alpha_kubeconfig.display())), "{text}");
    assert!(text.contains("stop it with: stepstone lab down --name alpha"), "{text}");
    // It answers kubectl, and the command that started it has returned.
    let nodes = common::kubectl(&alpha_kubeconfig, &["get", "nodes", "--no-headers"], None);
    assert_eq!(
        String::from_utf8_lossy(&nodes.stdout).lines().count(),
        15,
        "{}",
        String::from_utf8_lossy(&nodes.stderr)
    );

    // The same name again is refused; another name runs beside it.
    let again = lab(&["up", "-d", "--fleet", fleet, "--name", "alpha"]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{err}");
    assert!(err.contains("a lab named alpha is already running") && err.contains("lab down --name alpha"), "{err}");
    let beta = lab(&["up", "-d", "--fleet", fleet, "--name", "beta", "-o", "json"]);
    assert_eq!(beta.status.code(), Some(0), "{}", String::from_utf8_lossy(&beta.stderr));
    let beta: serde_json::Value = serde_json::from_slice(&beta.stdout).unwrap();
    assert_eq!(beta["kind"], "LabRunning", "{beta}");

    let status = lab(&["status", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let labs = doc["labs"].as_array().cloned().unwrap_or_else(|| panic!("{doc}"));
    let names: Vec<&str> = labs.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "beta"], "{doc}");
    assert!(labs.iter().all(|l| l["status"] == "running" && l["nodes"] == 15 && l["pid"].as_u64().is_some()), "{doc}");
    assert_eq!(labs[0]["speed"], 5.0);
    assert_ne!(labs[0]["port"], labs[1]["port"]);
    let table = String::from_utf8_lossy(&lab(&["status"]).stdout).into_owned();
    assert!(table.starts_with("NAME") && table.contains("alpha") && table.contains("running"), "{table}");

    // Down stops the lab and removes its kubeconfig and state; the other keeps running.
    let down = lab(&["down", "--name", "alpha"]);
    let said = String::from_utf8_lossy(&down.stdout);
    assert_eq!(down.status.code(), Some(0), "{said}{}", String::from_utf8_lossy(&down.stderr));
    assert!(said.contains("lab alpha stopped"), "{said}");
    assert!(!state.exists() && !alpha_kubeconfig.exists());
    let gone = common::kubectl(&alpha_kubeconfig, &["get", "nodes"], None);
    assert!(!gone.status.success());
    let status = lab(&["status", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        doc["labs"].as_array().map(|l| l.iter().map(|x| x["name"].clone()).collect()),
        Some(vec!["beta".into()])
    );
    let down = lab(&["down", "--name", "beta"]);
    assert_eq!(down.status.code(), Some(0), "{}", String::from_utf8_lossy(&down.stderr));
    let missing = lab(&["down", "--name", "beta"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no lab named beta"));
    let status = lab(&["status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("no labs running"));
}

/// A lab in the foreground says when it is ready and, on Ctrl-C, that it stops.
#[test]
fn foreground_lab_says_ready_and_stops_on_ctrl_c() {
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/small.json");
    let dir = tempfile::tempdir().unwrap();
    let mut lab = stepstone()
        .args(["lab", "up", "--fleet", fleet, "--name", "fg"])
        .env("XDG_RUNTIME_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(lab.stdout.take().unwrap());
    let mut said = String::new();
    while !said.contains("lab fg ready") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        said.push_str(&line);
    }
    assert!(said.contains("lab fg ready"), "{said}");
    let record = dir.path().join("stepstone/labs/fg/lab.json");
    common::wait_for(std::time::Duration::from_secs(60), "the lab's record", || record.exists());
    let interrupted = std::process::Command::new("kill").args(["-INT", &lab.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let output = lab.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("Ctrl-C: stopping lab fg") && err.contains("lab fg stopped"), "{err}");
    assert!(!record.exists(), "the record of a stopped lab is removed");
}

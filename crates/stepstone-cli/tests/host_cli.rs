//! The `preflight` and `etcd` commands end to end, against Debian's real sshd and etcd.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::real::{Etcd, Sshd};
use common::{run, stderr, stdout};

fn node(name: &str, ip: &str, generation: &str, control_plane: bool) -> serde_json::Value {
    let mut labels = serde_json::json!({"stepstone.io/hardware-generation": generation});
    if control_plane {
        labels["node-role.kubernetes.io/control-plane"] = "".into();
    }
    serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}],
            "nodeInfo": {"kubeletVersion": "v1.34.2", "kernelVersion": "6.1.0-26-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.22", "architecture": "amd64"}}})
}

#[test]
fn preflight_reports_per_generation_and_fails_on_errors() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("cluster.json");
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        node("self", "127.0.0.1", "gen-a", false), node("gone", "127.0.0.2", "gen-b", false)]});
    std::fs::write(&snapshot, list.to_string()).unwrap();
    let config = sshd.client_config(&sshd.path("known_hosts"));
    let logs = dir.path().join("logs");
    let common_args = [
        "preflight",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--to",
        "v1.35.3",
        "--ssh-config",
        config.to_str().unwrap(),
        "--connect-timeout",
        "2",
        "--log-dir",
        logs.to_str().unwrap(),
    ];
    let out = run(&[&common_args[..], &["-o", "json"]].concat());
    assert_eq!(out.status.code(), Some(1), "errors found -> exit 1; stderr: {}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["kind"], "PreflightReport");
    let results = doc["results"].as_array().unwrap();
    let find = |n: &str, c: &str| results.iter().find(|r| r["node"] == n && r["check"] == c).cloned();
    let gone = find("gone", "reach").expect("the unreachable node reports");
    assert_eq!(gone["finding"]["severity"], "error");
    assert!(gone["finding"]["message"].as_str().unwrap().contains("Connection refused"));
    let cgroup = find("self", "cgroup").expect("the reachable node was checked");
    let tmpfs = std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(4) == Some(&"/sys/fs/cgroup") && l.contains(" - tmpfs ")
    });
    if tmpfs {
        assert_eq!(cgroup["finding"]["code"], "preflight.cgroup-v1");
        assert_eq!(cgroup["finding"]["severity"], "error");
    }
    assert!(logs.join("self.log").is_file());

    let out = run(&common_args);
    let table = stdout(&out);
    assert!(table.starts_with("Pre-flight for v1.35.3 by hardware generation"), "{table}");
    assert!(table.contains("gen-b       1 (1 failing)  reach"), "{table}");

    let printed = run(&[&common_args[..], &["--backend", "print"]].concat());
    assert_eq!(printed.status.code(), Some(0));
    assert!(stdout(&printed).contains("-o StrictHostKeyChecking=yes"));
}

#[test]
fn etcd_backup_verify_and_restore_plan() {
    common::real::require("etcdctl", "etcd-client");
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start("default", &dir.path().join("data"));
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let out = run(&etcd_backup_json(&etcd, &backups, &["--cluster", "lab"]));
    assert!(out.status.success(), "backup: {}", stderr(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["kind"], "EtcdSnapshot");
    let file = backups.join(meta["file"].as_str().unwrap());

    let ok = run(&["etcd", "verify", file.to_str().unwrap()]);
    assert!(ok.status.success(), "verify: {}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("The snapshot is sound."));

    // Ages are whole seconds: let one pass so the snapshot is older than a zero limit.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let stale = run(&["etcd", "verify", file.to_str().unwrap(), "--max-age", "0s"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).contains("failed verification (age)"), "{}", stderr(&stale));

    let broken = backups.join("broken.db");
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 4096);
    std::fs::write(&broken, bytes).unwrap();
    let bad = run(&["etcd", "verify", broken.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let report = stdout(&bad);
    assert!(report.lines().any(|l| l.starts_with("metadata") && l.contains("FAIL")), "{report}");
    assert!(stdout(&bad).contains("truncated"), "{}", stdout(&bad));

    let plan = run(&[
        "etcd",
        "restore-plan",
        file.to_str().unwrap(),
        "--member",
        "cp-1=10.0.0.1",
        "--member",
        "cp-2=10.0.0.2",
    ]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan = stdout(&plan);
    assert!(plan.contains("etcdctl snapshot restore"), "{plan}");
    assert!(plan.contains("--initial-cluster=cp-1=https://10.0.0.1:2380,cp-2=https://10.0.0.2:2380"), "{plan}");
    let usage = run(&["etcd", "restore-plan", file.to_str().unwrap(), "--member", "cp-1"]);
    assert_eq!(usage.status.code(), Some(2));
}

/// The arguments of `stepstone etcd backup` from `etcd` into `dir` with `extra`, printing JSON.
fn etcd_backup_json<'a>(etcd: &'a Etcd, dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["etcd", "backup", "--endpoint", &etcd.client_url, "--dir", dir.to_str().unwrap()];
    args.extend(extra);
    args.extend(["-o", "json"]);
    args
}

/// Run stepstone with umask 000, the most permissive a careless shell can give it.
fn stepstone_umask_000(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(common::stepstone_bin())
        .args(args)
        .output()
        .expect("sh runs")
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn etcd_backup_creates_a_private_directory_and_private_files_whatever_the_umask() {
    common::real::require("etcdctl", "etcd-client");
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start("default", &dir.path().join("data"));
    let backups = dir.path().join("var/backups/stepstone");
    let out = stepstone_umask_000(&etcd_backup_json(&etcd, &backups, &["--label", "before-hop2"]));
    assert!(out.status.success(), "backup into a missing --dir: {}", stderr(&out));
    assert_eq!(mode(&backups), 0o700, "the snapshot directory");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = backups.join(meta["file"].as_str().unwrap());
    assert_eq!(mode(&file), 0o600, "the snapshot holds every Secret");
    assert_eq!(mode(&file.with_extension("db.json")), 0o600, "its metadata");

    // The label is in the file name and the metadata; verify --label refuses another hop's.
    assert_eq!(meta["label"], "before-hop2");
    let name = meta["file"].as_str().unwrap();
    assert!(name.starts_with("etcd-kubernetes-before-hop2-") && name.ends_with("Z.db"), "{name}");
    assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 2, "the .db and its .db.json, nothing else");
    let path = file.to_str().unwrap();
    let ok = run(&["etcd", "verify", path, "--label", "before-hop2"]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    let wrong = run(&["etcd", "verify", path, "--label", "before-hop1"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", stdout(&wrong));
    assert!(stdout(&wrong).contains("not the snapshot of that step"), "{}", stdout(&wrong));
    let bad = run(&["etcd", "verify", path, "--label", "../x"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn etcd_verify_of_a_missing_file_is_bad_input() {
    let out = run(&["etcd", "verify", "/nonexistent/etcd-x.db"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/etcd-x.db does not exist"), "{}", stderr(&out));
}

//! Hostile input at the readers, through the binary: each is refused with exit 2 and a message
//! that names the file or object, and nothing hangs or fills memory.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    common::stepstone().args(args).env("NO_COLOR", "1").output().expect("stepstone runs")
}

fn assert_bad_input(out: &Output, parts: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for part in parts {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo (coreutils) is needed");
    assert!(made.success());
}

#[test]
fn devices_and_fifos_are_refused_not_read() {
    assert_bad_input(&run(&["inventory", "--snapshot", "/dev/zero"]), &["/dev/zero", "character device"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/small.json"), dir.path().join("a.json"))
        .unwrap();
    mkfifo(&dir.path().join("b.json"));
    let d = dir.path().to_str().unwrap();
    assert_bad_input(&run(&["plan", "--snapshot", d, "--to", "v1.35"]), &["b.json", "FIFO"]);
    let manifests = tempfile::tempdir().unwrap();
    mkfifo(&manifests.path().join("pipe.yaml"));
    assert_bad_input(
        &run(&["apis", "--manifests", manifests.path().to_str().unwrap(), "--to", "v1.35"]),
        &["pipe.yaml", "not a regular file"],
    );
}

#[test]
fn a_symlink_loop_in_manifests_ends() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cron.yaml"), "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: a}\n")
        .unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
    let out = run(&["apis", "--manifests", dir.path().to_str().unwrap(), "--to", "v1.35"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("symlink loop") || String::from_utf8_lossy(&out.stderr).contains("symlink loop"),
        "{stdout}"
    );
    assert!(stdout.contains("CronJob"), "{stdout}");
}

#[test]
fn an_absurd_fleet_size_is_refused() {
    assert_bad_input(&run(&["lab", "generate", "--nodes", "99999999999"]), &["--nodes 99999999999"]);
    assert_bad_input(&run(&["lab", "generate", "--generations", "1000"]), &["--generations"]);
}

#[test]
fn a_malformed_item_deep_inside_a_generated_fleet_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.json");
    let p = path.to_str().unwrap();
    let out = run(&["lab", "generate", "--nodes", "40", "--out", p]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).unwrap();
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let items = list["items"].as_array().unwrap();
    // The last budget: after every node and pod.
    let deep = items.iter().rposition(|i| i["kind"] == "PodDisruptionBudget").unwrap();
    let name = items[deep]["metadata"]["name"].as_str().unwrap();
    let mut bad = list.clone();
    bad["items"][deep]["spec"]["minAvailable"] = serde_json::json!(-3);
    std::fs::write(&path, serde_json::to_string_pretty(&bad).unwrap()).unwrap();
    for cmd in [&["inventory", "--snapshot", p][..], &["plan", "--snapshot", p, "--to", "v1.35"][..]] {
        assert_bad_input(&run(cmd), &[&format!("items[{deep}]"), name, "minAvailable is -3"]);
    }
}

/// Every command that takes an upgrade target reads it as `plan` does: the same refusals, with
/// exit 2 and the same words.
#[test]
fn every_command_refuses_the_targets_plan_refuses() {
    let cases = [
        ("v1.33", "older than the control plane"),
        ("v0.1", "older than the control plane"),
        ("v1.35.999", "newest known 1.35 patch"),
        ("v1.35.0-rc.1", "pre-releases are not planned"),
        ("v01.35", "leading zero"),
        ("v1.35.0+k3s1", "build metadata"),
    ];
    let commands: [&[&str]; 4] =
        [&["plan", "--to"], &["skew", "--target"], &["staging", "--to"], &["preflight", "--to"]];
    for (target, says) in cases {
        for command in commands {
            let mut args = command.to_vec();
            args.extend([target, "--example", "small"]);
            let out = run(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(says), "{args:?}: {says:?} missing from: {stderr}");
            assert!(stderr.contains(target), "{args:?}: the target is not named: {stderr}");
        }
    }
}

/// `lab up` reads its fleet with the snapshot reader's validation: what `inventory` refuses, the
/// lab refuses too (exit 2 naming the item), instead of serving a cluster nothing else accepts.
#[test]
fn lab_up_refuses_the_fleets_every_other_command_refuses() {
    let small: serde_json::Value = serde_json::from_str(common::SMALL).unwrap();
    let items = small["items"].as_array().unwrap();
    let node = items.iter().position(|i| i["kind"] == "Node").unwrap();
    let node_name = items[node]["metadata"]["name"].as_str().unwrap().to_string();
    let pod = items.iter().position(|i| i["kind"] == "Pod").unwrap();
    let pod_name = items[pod]["metadata"]["name"].as_str().unwrap().to_string();
    let pdb = items.iter().position(|i| i["kind"] == "PodDisruptionBudget").unwrap();
    let pdb_name = items[pdb]["metadata"]["name"].as_str().unwrap().to_string();
    type Edit = fn(&mut serde_json::Value, usize);
    let cases: [(usize, &str, &str, Edit); 5] = [
        (node, &node_name, "labels", |l, i| l["items"][i]["metadata"]["labels"] = serde_json::json!(["a", "b"])),
        (pod, &pod_name, "spec", |l, i| {
            l["items"][i].as_object_mut().unwrap().remove("spec");
        }),
        (pdb, &pdb_name, "minAvailable is -3", |l, i| {
            l["items"][i]["spec"].as_object_mut().unwrap().remove("maxUnavailable");
            l["items"][i]["spec"]["minAvailable"] = serde_json::json!(-3);
        }),
        (pdb, &pdb_name, "maxUnavailable", |l, i| {
            l["items"][i]["spec"]["minAvailable"] = serde_json::json!(1);
            l["items"][i]["spec"]["maxUnavailable"] = serde_json::json!(1);
        }),
        (node, "null", "where a Kubernetes object was expected", |l, i| l["items"][i] = serde_json::Value::Null),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.json");
    let p = path.to_str().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let k = kubeconfig.to_str().unwrap();
    for (index, name, says, edit) in cases {
        let mut fleet = small.clone();
        edit(&mut fleet, index);
        std::fs::write(&path, serde_json::to_string(&fleet).unwrap()).unwrap();
        let inventory = run(&["inventory", "--snapshot", p]);
        assert_eq!(inventory.status.code(), Some(2), "inventory accepts the case {says:?}");
        let lab = run(&["lab", "up", "--fleet", p, "--port", "0", "--kubeconfig", k]);
        assert_bad_input(&lab, &[p, &format!("item {index}"), name, says]);
    }
}

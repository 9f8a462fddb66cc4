//! `stepstone plan` and `stepstone blockers` end to end on the example fleets: golden plans
//! (JSON contract and the table), exit codes, and errors that name the input and the fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{stderr, stdout};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    common::stepstone().args(args).current_dir(root()).output().expect("the stepstone binary runs")
}

const START: &str = "2026-12-01T09:00";

/// `stepstone plan --example EXAMPLE --to v1.35 EXTRA -o json`, and the document it printed.
fn plan_json(example: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec!["plan", "--example", example, "--to", "v1.35"];
    args.extend(extra);
    args.extend(["-o", "json"]);
    let out = run(&args);
    let doc = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (out, doc)
}

#[test]
fn three_generations_plan_json_golden() {
    let out = run(&[
        "plan",
        "--snapshot",
        "examples/three-generations.json",
        "--to",
        "v1.35",
        "--start",
        START,
        "-o",
        "json",
    ]);
    // The example fleet carries blockers (a budget at 0, local storage): exit 1, plan printed.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json = stdout(&out);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["apiVersion"], "stepstone/v1alpha1");
    assert_eq!(doc["kind"], "Plan");
    let hops = doc["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2);
    for hop in hops {
        assert!(hop["from"].is_string() && hop["to"].is_string());
        assert_eq!(hop["controlPlane"][0]["action"], "apply");
        let kinds: Vec<&str> = hop["waves"].as_array().unwrap().iter().map(|w| w["kind"].as_str().unwrap()).collect();
        assert_eq!(&kinds[..3], ["canary", "canary", "canary"]);
        assert!(hop["waves"][3]["reason"].as_str().unwrap().len() > 5);
    }
    assert!(doc["blockers"].as_array().unwrap().iter().any(|b| b["code"] == "blocker.budget"));
    assert!(
        doc["schedule"]["makespanMinutes"].as_u64().unwrap() >= doc["schedule"]["lowerBoundMinutes"].as_u64().unwrap()
    );
    insta::assert_snapshot!("plan_three_generations_json", json);
}

#[test]
fn small_plan_table_golden() {
    let out = run(&[
        "plan",
        "--snapshot",
        "examples/small.json",
        "--to",
        "v1.35",
        "--start",
        START,
        "--window",
        "Tue,Wed 09:00-13:00 Europe/Berlin",
        // Its api and worker pods keep caches in emptyDir: disposable, and consented to here.
        "--delete-emptydir-data",
    ]);
    let table = stdout(&out);
    assert!(table.contains("Control plane: cp-01 (apply) -> cp-02 -> cp-03"), "{table}");
    assert!(table.contains("Canary: "), "{table}");
    assert!(table.contains("Schedule (Europe/Berlin):"), "{table}");
    insta::assert_snapshot!("plan_small_table", table);
    let json = run(&["plan", "--snapshot", "examples/small.json", "--to", "v1.35", "--start", START, "-o", "json"]);
    insta::assert_snapshot!("plan_small_json", stdout(&json));
}

#[test]
fn the_same_plan_every_time() {
    let args = ["plan", "--example", "three-generations", "--to", "v1.35", "--start", START, "-o", "yaml"];
    let a = run(&args);
    let b = run(&args);
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn windows_move_work_and_weekends_are_flagged() {
    // 2026-12-04 is a Friday: without a window the plan runs from its evening into Saturday.
    let (_, doc) = plan_json("small", &["--start", "2026-12-04T20:00", "--delete-emptydir-data"]);
    let warnings: Vec<&str> =
        doc["schedule"]["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(warnings.iter().any(|w| w.contains("Friday afternoon") && w.contains("--allow-friday")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("weekend") && w.contains("--allow-weekend")), "{warnings:?}");
    let (_, doc) = plan_json("small", &["--start", "2026-12-04T20:00", "--allow-weekend", "--allow-friday"]);
    assert_eq!(doc["schedule"]["warnings"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_input_exits_2_and_says_what_to_do() {
    let out = run(&["plan", "--example", "small", "--to", "v1.35", "--window", "Tue 9-13"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("'9' is not a time of day") && err.contains("Tue,Wed 09:00-13:00 Europe/Berlin"), "{err}");
    let out = run(&["plan", "--example", "small", "--to", "v1.35", "--headroom", "120%"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["plan", "--example", "small", "--to", "v1.35", "--generation-order", "r640"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--generation-order names 'r640'"), "{}", stderr(&out));
    let out = run(&["plan", "--example", "small", "--to", "v1.30"]);
    assert_eq!(out.status.code(), Some(2));
    for (value, says) in [
        ("0", "'0' is not at least 1"),
        ("dell-r640=two", "'two' is not a whole number of nodes"),
        ("r640=2", "--max-unavailable names 'r640', which is no generation of this cluster's workers"),
    ] {
        let out = run(&["plan", "--example", "three-generations", "--to", "v1.35", "--max-unavailable", value]);
        assert_eq!(out.status.code(), Some(2), "{value}");
        let err = stderr(&out);
        assert!(err.contains(says), "{value}: {err}");
    }
}

#[test]
fn max_unavailable_per_generation_through_the_binary() {
    let (out, doc) = plan_json("three-generations", &["--start", START, "--max-unavailable", "dell-r640=1,default=3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let limits = &doc["policy"]["batchLimits"];
    assert_eq!(limits["dell-r640"]["limit"], 1);
    assert_eq!(limits["dell-r640"]["source"], "operator");
    assert_eq!(limits["hp-dl380"]["limit"], 3);
    assert_eq!(limits["hp-dl380"]["source"], "operator-default");
    for hop in doc["hops"].as_array().unwrap() {
        for w in hop["waves"].as_array().unwrap() {
            let most = if w["generation"] == "dell-r640" { 1 } else { 3 };
            assert!(w["nodes"].as_array().unwrap().len() <= most, "{w}");
            assert!(w["bound"].is_string(), "{w}");
        }
    }
}

#[test]
fn blockers_report_and_exit_code() {
    let out = run(&["blockers", "--snapshot", "examples/three-generations.json", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["kind"], "BlockersReport");
    let budget = doc["blockers"].as_array().unwrap().iter().find(|b| b["code"] == "blocker.budget").unwrap();
    assert_eq!(budget["subject"], "prod/redis-pdb");
    assert!(budget["hint"].as_str().unwrap().contains("to 3"), "{budget}");
    assert!(!budget["nodes"].as_array().unwrap().is_empty());
    let table = run(&["blockers", "--snapshot", "examples/three-generations.json"]);
    let t = stdout(&table);
    assert!(t.contains("SEVERITY") && t.contains("Fixes:"), "{t}");
    insta::assert_snapshot!("blockers_three_generations_table", t);
}

/// The three-generation example as someone left it half-upgraded: every kubelet and cp-02/03 on
/// v1.34.6, cp-01's control-plane static pods already on v1.35.0 (`kubeadm upgrade apply v1.35.0`
/// ran there and nothing else), written as `kubectl get -o json` output.
fn half_upgraded_snapshot(dir: &Path, cp01_kubelet: &str) -> PathBuf {
    let raw = std::fs::read_to_string(root().join("examples/three-generations.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
    for item in doc["items"].as_array_mut().unwrap() {
        let name = item["metadata"]["name"].as_str().unwrap_or("").to_string();
        if item["kind"] == "Node" {
            let kubelet = if name == "cp-01" { cp01_kubelet } else { "v1.34.6" };
            item["status"]["nodeInfo"]["kubeletVersion"] = kubelet.into();
        }
        if item["kind"] == "Pod" && item["metadata"]["namespace"] == "kube-system" {
            let on_cp01 = item["spec"]["nodeName"] == "cp-01";
            for c in item["spec"]["containers"].as_array_mut().unwrap() {
                let image = c["image"].as_str().unwrap().to_string();
                if image.ends_with(":v1.33.7") {
                    let upgraded = on_cp01 && !image.contains("kube-proxy");
                    let tag = if upgraded { ":v1.35.0" } else { ":v1.34.6" };
                    c["image"] = image.replace(":v1.33.7", tag).into();
                }
            }
        }
    }
    let file = dir.join("half-upgraded.json");
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    file
}

#[test]
fn a_half_upgraded_cluster_is_continued_not_downgraded() {
    let dir = tempfile::tempdir().unwrap();
    let snap = half_upgraded_snapshot(dir.path(), "v1.35.0");
    let snap = snap.to_str().unwrap();

    // To the latest 1.35: apply stays on cp-01 (v1.35.0 -> v1.35.8, upward), never v1.34.x.
    let out = run(&["plan", "--snapshot", snap, "--to", "v1.35", "--start", START, "-o", "json"]);
    let json = stdout(&out);
    assert!(!json.contains("apply v1.34"), "{json}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!(doc["from"], "v1.34.6");
    assert_eq!(doc["hops"].as_array().unwrap().len(), 1);
    let cp = &doc["hops"][0]["controlPlane"];
    assert_eq!((cp[0]["node"].as_str(), cp[0]["action"].as_str()), (Some("cp-01"), Some("apply")));
    let findings: Vec<&str> = doc["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(findings.contains(&"path.in-progress") && !findings.contains(&"path.patch-first"), "{findings:?}");

    // To exactly v1.35.0: cp-01 is done, no apply is planned, cp-02 and cp-03 run `upgrade node`.
    let out = run(&["plan", "--snapshot", snap, "--to", "v1.35.0", "--start", START, "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let hop = &doc["hops"][0];
    assert_eq!(hop["done"], serde_json::json!(["cp-01"]));
    let steps: Vec<(&str, &str)> = hop["controlPlane"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["node"].as_str().unwrap(), s["action"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, vec![("cp-02", "node"), ("cp-03", "node")]);
    let table = stdout(&run(&["plan", "--snapshot", snap, "--to", "v1.35.0", "--start", START]));
    assert!(table.contains("Already at v1.35.0 (nothing to do): cp-01"), "{table}");
    assert!(table.contains("Control plane: cp-02 -> cp-03"), "{table}");
    let path = stdout(&run(&["path", "--snapshot", snap, "--to", "v1.35.0"]));
    assert!(path.contains("Hop 1 already done on: cp-01; `kubeadm upgrade apply` has run"), "{path}");

    // A target below what cp-01 runs is refused, naming cp-01: exit 2.
    for cmd in ["plan", "path"] {
        let out = run(&[cmd, "--snapshot", snap, "--to", "v1.34"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("older than cp-01") && err.contains("v1.35.0"), "{cmd}: {err}");
    }
}

#[test]
fn a_half_upgraded_node_with_its_old_kubelet_keeps_its_step() {
    let dir = tempfile::tempdir().unwrap();
    let snap = half_upgraded_snapshot(dir.path(), "v1.34.6");
    let out = run(&["plan", "--snapshot", snap.to_str().unwrap(), "--to", "v1.35.0", "--start", START, "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let hop = &doc["hops"][0];
    assert!(hop.get("done").is_none(), "{hop}");
    let steps: Vec<(&str, &str)> = hop["controlPlane"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["node"].as_str().unwrap(), s["action"].as_str().unwrap()))
        .collect();
    // apply has run on cp-01; its kubelet is what is left there.
    assert_eq!(steps, vec![("cp-01", "node"), ("cp-02", "node"), ("cp-03", "node")]);
}

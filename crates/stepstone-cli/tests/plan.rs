//! `stepstone plan` and `stepstone blockers` end to end on the example fleets: golden plans
//! (JSON contract and the table), exit codes, and errors that name the input and the fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stepstone(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepstone"))
        .args(args)
        .current_dir(root())
        .env_remove("KUBECONFIG")
        .output()
        .expect("the stepstone binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const START: &str = "2026-12-01T09:00";

#[test]
fn three_generations_plan_json_golden() {
    let out = stepstone(&[
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
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json = text(&out.stdout);
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
    let out = stepstone(&[
        "plan",
        "--snapshot",
        "examples/small.json",
        "--to",
        "v1.35",
        "--start",
        START,
        "--window",
        "Tue,Wed 09:00-13:00 Europe/Berlin",
    ]);
    let table = text(&out.stdout);
    assert!(table.contains("Control plane: cp-01 (apply) -> cp-02 -> cp-03"), "{table}");
    assert!(table.contains("Canary: "), "{table}");
    assert!(table.contains("Schedule (Europe/Berlin):"), "{table}");
    insta::assert_snapshot!("plan_small_table", table);
    let json =
        stepstone(&["plan", "--snapshot", "examples/small.json", "--to", "v1.35", "--start", START, "-o", "json"]);
    insta::assert_snapshot!("plan_small_json", text(&json.stdout));
}

#[test]
fn the_same_plan_every_time() {
    let args = ["plan", "--example", "three-generations", "--to", "v1.35", "--start", START, "-o", "yaml"];
    let a = stepstone(&args);
    let b = stepstone(&args);
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn windows_move_work_and_weekends_are_flagged() {
    // 2026-12-04 is a Friday: without a window the plan runs from its evening into Saturday.
    let out = stepstone(&["plan", "--example", "small", "--to", "v1.35", "--start", "2026-12-04T20:00", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let warnings: Vec<&str> =
        doc["schedule"]["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(warnings.iter().any(|w| w.contains("Friday afternoon") && w.contains("--allow-friday")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("weekend") && w.contains("--allow-weekend")), "{warnings:?}");
    let out = stepstone(&[
        "plan",
        "--example",
        "small",
        "--to",
        "v1.35",
        "--start",
        "2026-12-04T20:00",
        "--allow-weekend",
        "--allow-friday",
        "-o",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(doc["schedule"]["warnings"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_input_exits_2_and_says_what_to_do() {
    let out = stepstone(&["plan", "--example", "small", "--to", "v1.35", "--window", "Tue 9-13"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("'9' is not a time of day") && err.contains("Tue,Wed 09:00-13:00 Europe/Berlin"), "{err}");
    let out = stepstone(&["plan", "--example", "small", "--to", "v1.35", "--headroom", "120%"]);
    assert_eq!(out.status.code(), Some(2));
    let out = stepstone(&["plan", "--example", "small", "--to", "v1.35", "--generation-order", "r640"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--generation-order names 'r640'"), "{}", text(&out.stderr));
    let out = stepstone(&["plan", "--example", "small", "--to", "v1.30"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn blockers_report_and_exit_code() {
    let out = stepstone(&["blockers", "--snapshot", "examples/three-generations.json", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(doc["kind"], "BlockersReport");
    let budget = doc["blockers"].as_array().unwrap().iter().find(|b| b["code"] == "blocker.budget").unwrap();
    assert_eq!(budget["subject"], "prod/redis-pdb");
    assert!(budget["hint"].as_str().unwrap().contains("to 3"), "{budget}");
    assert!(!budget["nodes"].as_array().unwrap().is_empty());
    let table = stepstone(&["blockers", "--snapshot", "examples/three-generations.json"]);
    let t = text(&table.stdout);
    assert!(t.contains("SEVERITY") && t.contains("Fixes:"), "{t}");
    insta::assert_snapshot!("blockers_three_generations_table", t);
}

//! Hostile snapshots: every one is refused with an error that names the object (the CLI turns
//! it into exit 2), by both readers.

use std::path::PathBuf;

use serde_json::{Value, json};
use stepstone_core::snapshot::{SnapshotError, SnapshotOptions, load_paths, load_paths_whole};

fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": "v1.34.2", "osImage": "Ubuntu", "kernelVersion": "6.8.0",
                "containerRuntimeVersion": "containerd://1.7.27", "architecture": "amd64"}
        }
    })
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "img:1"}]},
        "status": {"phase": "Running"}
    })
}

fn pdb(spec: Value) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "prod"}, "spec": spec})
}

/// The error both readers give for a List of `items` (after a valid node `n1`).
fn refused(items: Vec<Value>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let mut all = vec![node("n1")];
    all.extend(items);
    std::fs::write(&path, serde_json::to_string_pretty(&json!({"kind": "List", "items": all})).unwrap()).unwrap();
    let opts = SnapshotOptions::default();
    let streamed = load_paths(std::slice::from_ref(&path), &opts).expect_err("the streaming reader refuses it");
    let whole = load_paths_whole(&[path], &opts).expect_err("the whole-text reader refuses it");
    // The streaming reader also says which item; otherwise the messages are the same.
    let streamed = streamed.to_string();
    let without_item = match streamed.find(" items[") {
        Some(at) if !whole.to_string().contains(" items[") => {
            let end = at + streamed[at..].find(']').unwrap() + 1;
            format!("{}{}", &streamed[..at], &streamed[end..])
        }
        _ => streamed.clone(),
    };
    assert_eq!(without_item, whole.to_string(), "the readers disagree");
    streamed
}

fn assert_names(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn labels_that_are_not_a_map_of_strings_are_refused() {
    let mut n = node("n2");
    n["metadata"]["labels"] = json!(["a", "b"]);
    assert_names(&refused(vec![n]), &["Node n2", "metadata.labels is an array"]);
    let mut p = pod("web");
    p["metadata"]["labels"] = json!({"app": 7});
    assert_names(&refused(vec![p]), &["Pod prod/web", "metadata.labels.app is a number"]);
}

#[test]
fn items_that_are_not_objects_are_refused() {
    for (item, found) in [(Value::Null, "null"), (json!(17), "number"), (json!("n3"), "string")] {
        assert_names(&refused(vec![item]), &["items[1]", found]);
    }
}

#[test]
fn a_pod_without_spec_is_refused() {
    let mut p = pod("web");
    p.as_object_mut().unwrap().remove("spec");
    assert_names(&refused(vec![p]), &["Pod prod/web", "has no spec"]);
}

#[test]
fn impossible_budgets_are_refused() {
    let sel = json!({"matchLabels": {"app": "web"}});
    assert_names(
        &refused(vec![pdb(json!({"minAvailable": -3, "selector": sel}))]),
        &["PodDisruptionBudget prod/b", "spec.minAvailable is -3"],
    );
    assert_names(
        &refused(vec![pdb(json!({"minAvailable": 1, "maxUnavailable": 1, "selector": sel}))]),
        &["PodDisruptionBudget prod/b", "both spec.minAvailable and spec.maxUnavailable"],
    );
    assert_names(&refused(vec![pdb(json!({"maxUnavailable": "150%", "selector": sel}))]), &["150%"]);
}

#[test]
fn quantities_beyond_any_machine_are_refused() {
    let mut n = node("n2");
    n["status"]["allocatable"]["memory"] = json!("99999999999999Ei");
    assert_names(&refused(vec![n]), &["Node n2", "99999999999999Ei", "larger than any machine"]);
    let mut p = pod("web");
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "1e30"}});
    assert_names(&refused(vec![p]), &["Pod prod/web", "1e30"]);
}

#[test]
fn node_names_and_addresses_that_could_reach_a_shell_are_refused() {
    for name in ["n1;touch /tmp/pwned", "N1", "n1\nrm", "-n1", "n1.", ""] {
        let message = refused(vec![node(name)]);
        assert_names(&message, &["not a valid node name"]);
    }
    let mut n = node("n2");
    n["status"]["addresses"][0]["address"] = json!("$(reboot)");
    assert_names(&refused(vec![n]), &["Node n2", "InternalIP", "not an IP address"]);
    // Names and addresses as they are in real clusters pass.
    let mut n = node("r640-01.rack3.example.com");
    n["status"]["addresses"][0]["address"] = json!("fd00::12");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.json");
    std::fs::write(&path, json!({"kind": "List", "items": [n]}).to_string()).unwrap();
    load_paths(&[path], &SnapshotOptions::default()).expect("a valid node loads");
}

#[test]
fn duplicate_nodes_across_files_are_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["a.json", "b.json"] {
        std::fs::write(dir.path().join(file), json!({"kind": "List", "items": [node("n1")]}).to_string()).unwrap();
    }
    for reader in [load_paths, load_paths_whole] {
        let err = reader(&[dir.path().to_path_buf()], &SnapshotOptions::default()).unwrap_err();
        assert_names(&err.to_string(), &["Node n1", "a.json", "b.json", "twice"]);
    }
}

#[test]
fn only_regular_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), json!({"kind": "List", "items": [node("n1")]}).to_string()).unwrap();
    let fifo = dir.path().join("b.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo (coreutils) is needed");
    assert!(made.success());
    // Without the check, opening the FIFO would block this test forever.
    let err = load_paths(&[dir.path().to_path_buf()], &SnapshotOptions::default()).unwrap_err();
    assert!(matches!(err, SnapshotError::NotRegular { what: "a FIFO", .. }), "{err}");
    assert_names(&err.to_string(), &["b.json", "FIFO"]);
    let err = load_paths(&[PathBuf::from("/dev/zero")], &SnapshotOptions::default()).unwrap_err();
    assert!(matches!(err, SnapshotError::NotRegular { what: "a character device", .. }), "{err}");
}

/// Both readers' errors for the List of `node("n1")` and `item`, written pretty with the string
/// `"HERE"` replaced by `raw` (JSON no `Value` can hold).
fn refused_raw(item: Value, raw: &str) -> (SnapshotError, SnapshotError) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let text = serde_json::to_string_pretty(&json!({"kind": "List", "items": [node("n1"), item]})).unwrap();
    assert_eq!(text.matches("\"HERE\"").count(), 1);
    std::fs::write(&path, text.replace("\"HERE\"", raw)).unwrap();
    let opts = SnapshotOptions::default();
    let streamed = load_paths(std::slice::from_ref(&path), &opts).expect_err("the streaming reader refuses it");
    let whole = load_paths_whole(&[path], &opts).expect_err("the whole-text reader refuses it");
    (streamed, whole)
}

#[test]
fn numbers_beyond_f64_and_lone_surrogates_are_refused_wherever_they_are_with_the_same_message() {
    let mut in_metadata = pod("web");
    in_metadata["metadata"]["resourceVersion"] = json!("HERE");
    let mut in_a_container = pod("web");
    in_a_container["spec"]["containers"][0]["ports"] = json!([{"containerPort": "HERE"}]);
    let mut in_status = pod("web");
    in_status["status"]["containerStatuses"] = json!([{"restartCount": "HERE"}]);
    let mut in_a_node = node("n2");
    in_a_node["status"]["images"] = json!([{"sizeBytes": "HERE"}]);
    let mut in_a_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    in_a_secret["data"] = json!({"x": "HERE"});
    let huge_integer = format!("1{}", "0".repeat(400));
    for item in [in_metadata, in_a_container, in_status, in_a_node, in_a_secret] {
        for raw in ["1e400", "-2.5E+309", huge_integer.as_str(), "\"\\ud800\""] {
            let (streamed, whole) = refused_raw(item.clone(), raw);
            let (
                SnapshotError::Json { path, line, column, message },
                SnapshotError::Json { line: whole_line, column: whole_column, message: whole_message, .. },
            ) = (&streamed, &whole)
            else {
                panic!("{raw} in {item}: expected JSON errors, got {streamed:?} and {whole:?}");
            };
            assert!(path.ends_with("s.json items[1]"), "{raw}: {streamed}");
            assert_eq!((line, column), (whole_line, whole_column), "{raw}: {streamed} / {whole}");
            let what = if raw.starts_with('"') { "hex escape" } else { "number out of range" };
            assert!(message.contains(what), "{raw}: {streamed}");
            assert_eq!(message, whole_message, "{raw}");
        }
    }
}

//! The streaming snapshot reader against the whole-text reader: identical inventories on every
//! example and on generated fleets (pretty and compact, single files and directories, raw API
//! lists), and errors that name the item deep inside a large file.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use stepstone_core::snapshot::{SnapshotError, SnapshotOptions, load_paths, load_paths_whole};
use stepstone_fleet::{FleetSpec, generate, to_pretty_json};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn assert_same_inventory(paths: &[PathBuf]) {
    let opts = SnapshotOptions::default();
    let streamed = load_paths(paths, &opts).unwrap_or_else(|e| panic!("streamed {paths:?}: {e}"));
    let whole = load_paths_whole(paths, &opts).unwrap_or_else(|e| panic!("whole {paths:?}: {e}"));
    let (streamed, whole) = (serde_json::to_value(&streamed).unwrap(), serde_json::to_value(&whole).unwrap());
    for part in ["nodes", "pods", "pdbs", "workloads", "components"] {
        assert_eq!(streamed[part].as_array().map(Vec::len), whole[part].as_array().map(Vec::len), "{paths:?} {part}");
    }
    assert!(streamed == whole, "{paths:?}: the readers disagree");
}

#[test]
fn both_readers_give_identical_inventories_of_every_example() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        assert_same_inventory(std::slice::from_ref(f));
    }
    // The same objects twice are refused by both, naming both places.
    for reader in [load_paths, load_paths_whole] {
        let err = reader(&[files[0].clone(), files[0].clone()], &SnapshotOptions::default()).unwrap_err();
        assert!(matches!(err, SnapshotError::Duplicate { ref kind, .. } if kind == "Node"), "{err}");
    }
}

#[test]
fn both_readers_give_identical_inventories_of_generated_fleets() {
    let dir = tempfile::tempdir().unwrap();
    for (nodes, generations) in [(80, 4), (30, 6)] {
        let list = generate(&FleetSpec::synthetic(nodes, generations, 0.7));
        let pretty = dir.path().join(format!("pretty-{nodes}.json"));
        std::fs::write(&pretty, to_pretty_json(&list)).unwrap();
        let compact = dir.path().join(format!("compact-{nodes}.json"));
        std::fs::write(&compact, list.to_string()).unwrap();
        assert_same_inventory(&[pretty]);
        assert_same_inventory(&[compact]);
        // A directory of raw API lists, one per kind, as `kubectl get --raw` gives them: the
        // items carry no kind, the list does.
        let raw = dir.path().join(format!("raw-{nodes}"));
        std::fs::create_dir(&raw).unwrap();
        let mut by_kind: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        for item in list["items"].as_array().unwrap() {
            let mut item = item.clone();
            let kind = item.as_object_mut().unwrap().remove("kind").unwrap();
            by_kind.entry(kind.as_str().unwrap().to_string()).or_default().push(item);
        }
        for (kind, items) in by_kind {
            let api_version = items[0]["apiVersion"].clone();
            let doc = json!({"apiVersion": api_version, "items": items, "kind": format!("{kind}List"), "metadata": {}});
            std::fs::write(raw.join(format!("{kind}.json")), doc.to_string()).unwrap();
        }
        assert_same_inventory(&[raw]);
    }
}

#[test]
fn a_malformed_item_deep_inside_a_large_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // About 10 MB of pretty JSON: ten batches; the bad item is in one of the last.
    let list = generate(&FleetSpec::synthetic(80, 4, 0.7));
    let items = list["items"].as_array().unwrap();
    let deep = items
        .iter()
        .rposition(|i| i["kind"] == "Pod" && i["spec"]["containers"][0]["resources"]["requests"]["cpu"].is_string())
        .unwrap()
        - 5;
    let name = items[deep]["metadata"]["name"].as_str().unwrap().to_string();
    let text = to_pretty_json(&list);

    // A quantity that is not one.
    let mut bad = list.clone();
    bad["items"][deep]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("lots");
    let path = dir.path().join("wrong-type.json");
    std::fs::write(&path, to_pretty_json(&bad)).unwrap();
    let err = load_paths(std::slice::from_ref(&path), &SnapshotOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SnapshotError::Object { .. }), "{err:?}");
    assert!(message.contains(&format!("items[{deep}]")) && message.contains(&name), "{message}");

    // Broken JSON inside the item: the line in the file is given.
    let marker = format!("\"name\": \"{name}\"");
    let at = text.match_indices(&marker).map(|(i, _)| i).last().unwrap();
    let broken = format!("{}\"name\": \"{name}\" \"stray\"{}", &text[..at], &text[at + marker.len()..]);
    let line = text[..at].matches('\n').count() + 1;
    let path = dir.path().join("broken.json");
    std::fs::write(&path, broken).unwrap();
    let err = load_paths(std::slice::from_ref(&path), &SnapshotOptions::default()).unwrap_err();
    match &err {
        SnapshotError::Json { path, line: got, .. } => {
            assert!(path.ends_with(&format!("items[{deep}]")), "{err}");
            assert_eq!(*got, line, "{err}");
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

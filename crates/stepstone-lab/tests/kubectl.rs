//! The lab driven by the real `kubectl`: printed columns, cordon, uncordon, scale, and a drain
//! that a PodDisruptionBudget holds up until a scale-up gives it room.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use stepstone_lab::{Lab, LabHandle, LabOptions};

fn start(speed: f64) -> (LabHandle, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let lab = Lab::start_blocking(
        drain_fleet(),
        LabOptions { speed, kubeconfig: Some(kubeconfig.clone()), ..Default::default() },
    )
    .expect("lab starts");
    (lab, dir, kubeconfig)
}

fn header(out: &str) -> Vec<&str> {
    out.lines().next().unwrap_or("").split_whitespace().collect()
}

#[test]
fn get_prints_kubectl_columns() {
    let (_lab, _dir, kc) = start(20.0);
    let nodes = kubectl_ok(&kc, &["get", "nodes"]);
    assert_eq!(header(&nodes), ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], "{nodes}");
    assert!(
        nodes.lines().any(|l| l.starts_with("cp1 ")
            && l.contains("Ready")
            && l.contains("control-plane")
            && l.contains("v1.34.2")),
        "{nodes}"
    );
    let wide = kubectl_ok(&kc, &["get", "no", "-o", "wide"]);
    assert_eq!(
        header(&wide),
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ]
    );
    assert!(wide.contains("containerd://1.7.24") && wide.contains("6.1.0-18-amd64"), "{wide}");
    let pods = kubectl_ok(&kc, &["get", "po", "-n", "shop"]);
    assert_eq!(header(&pods), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(pods.contains("web-5d8f7c9b6-p0") && pods.contains("1/1") && pods.contains("Running"), "{pods}");
    let all = kubectl_ok(&kc, &["get", "pods", "-A", "-o", "wide"]);
    assert_eq!(&header(&all)[..3], ["NAMESPACE", "NAME", "READY"]);
    assert!(header(&all).contains(&"NODE"));
    let pdb = kubectl_ok(&kc, &["get", "pdb", "-n", "shop"]);
    assert_eq!(header(&pdb), ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]);
    wait_for(10, "the disruption controller to fill in the PDB status", || {
        let out = kubectl_ok(&kc, &["get", "pdb", "web", "-n", "shop", "-o", "jsonpath={.status.expectedPods}"]);
        out == "2"
    });
    let row = kubectl_ok(&kc, &["get", "pdb", "web", "-n", "shop", "--no-headers"]);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..4], ["web", "2", "N/A", "0"], "{row}");
    let deploy = kubectl_ok(&kc, &["get", "deploy", "-n", "shop"]);
    assert_eq!(header(&deploy), ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let everything = kubectl_ok(&kc, &["get", "all", "-n", "shop"]);
    assert!(
        everything.contains("deployment.apps/web") && everything.contains("replicaset.apps/web-5d8f7c9b6"),
        "{everything}"
    );
    let version = kubectl_ok(&kc, &["version", "-o", "json"]);
    assert!(version.contains("\"gitVersion\": \"v1.34.2\""), "{version}");
}

#[test]
fn cordon_uncordon_and_scale() {
    let (lab, _dir, kc) = start(50.0);
    assert!(kubectl_ok(&kc, &["cordon", "w3"]).contains("node/w3 cordoned"));
    let row = kubectl_ok(&kc, &["get", "node", "w3", "--no-headers"]);
    assert!(row.contains("Ready,SchedulingDisabled"), "{row}");
    assert!(kubectl_ok(&kc, &["uncordon", "w3"]).contains("node/w3 uncordoned"));
    let row = kubectl_ok(&kc, &["get", "node", "w3", "--no-headers"]);
    assert!(row.contains("Ready") && !row.contains("SchedulingDisabled"), "{row}");
    assert!(lab.get("nodes", "", "w3").unwrap()["spec"].get("unschedulable").is_none());

    assert!(
        kubectl_ok(&kc, &["scale", "deployment", "web", "-n", "shop", "--replicas=4"])
            .contains("deployment.apps/web scaled")
    );
    wait_for(20, "4 ready web pods", || {
        kubectl_ok(&kc, &["get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.status.readyReplicas}"]) == "4"
    });
    let wide = kubectl_ok(&kc, &["get", "pods", "-n", "shop", "-l", "app=web", "-o", "wide", "--no-headers"]);
    assert_eq!(wide.lines().count(), 4, "{wide}");
    assert!(
        wide.lines().all(|l| !l.contains("<none>   <none>   <none>") && !l.contains(" cp1 ")),
        "new pods are bound to workers: {wide}"
    );
    assert!(kubectl_ok(&kc, &["scale", "deploy/web", "-n", "shop", "--replicas=1"]).contains("scaled"));
    wait_for(20, "one web pod left", || {
        lab.list("pods", Some("shop")).iter().filter(|p| p["metadata"]["labels"]["app"] == "web").count() == 1
    });
}

#[test]
fn drain_waits_for_the_budget_and_completes_after_scale_up() {
    let (lab, _dir, kc) = start(30.0);
    wait_for(10, "the PDB status", || {
        lab.get("poddisruptionbudgets", "shop", "web").is_some_and(|p| p["status"]["expectedPods"] == 2)
    });
    let mut child = Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["drain", "w1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl drain starts");
    let output = Arc::new(Mutex::new(String::new()));
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut o = out.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        })
    })
    .collect();
    let blocked = "Cannot evict pod as it would violate the pod's disruption budget";
    wait_for(30, "kubectl drain to report the PDB block", || output.lock().unwrap().contains(blocked));
    assert!(child.try_wait().unwrap().is_none(), "drain must still be waiting: {}", output.lock().unwrap());
    assert!(lab.get("pods", "shop", "web-5d8f7c9b6-p0").is_some(), "the guarded pod is still there");
    assert!(lab.get("nodes", "", "w1").unwrap()["spec"]["unschedulable"] == true);

    kubectl_ok(&kc, &["scale", "deployment", "web", "-n", "shop", "--replicas=3"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "drain did not finish: {}", output.lock().unwrap());
        std::thread::sleep(Duration::from_millis(100));
    };
    for r in readers {
        r.join().unwrap();
    }
    let text = output.lock().unwrap().clone();
    assert!(status.success(), "{text}");
    assert!(text.contains("will retry after 5s"), "{text}");
    assert!(text.contains("Warning: ignoring DaemonSet-managed Pods: kube-system/kube-proxy-w1"), "{text}");
    assert!(text.contains("pod/web-5d8f7c9b6-p0 evicted"), "{text}");
    assert!(text.contains("node/w1 drained"), "{text}");
    let left: Vec<String> = lab
        .list("pods", None)
        .iter()
        .filter(|p| p["spec"]["nodeName"] == "w1")
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["kube-proxy-w1"]);
    let ready_web = lab.list("pods", Some("shop")).iter().filter(|p| p["metadata"]["labels"]["app"] == "web").count();
    assert!(ready_web >= 2);
}

#[test]
fn typed_generators_get_the_apiservers_415_and_manifests_work() {
    // `kubectl create deployment` sends protobuf, which the lab does not read: it answers like an
    // apiserver without that media type, and kubectl says so. The same object from a manifest works.
    let (_lab, _dir, kc) = start(50.0);
    let out = kubectl(&kc, &["create", "deployment", "gen", "-n", "shop", "--image=registry.example/app:1.0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"),
        "{stderr}"
    );
    let manifest = kubectl_ok(
        &kc,
        &[
            "create",
            "deployment",
            "gen",
            "-n",
            "shop",
            "--image=registry.example/app:1.0",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.yaml");
    std::fs::write(&file, manifest).unwrap();
    assert!(kubectl_ok(&kc, &["create", "-f", file.to_str().unwrap()]).contains("deployment.apps/gen created"));
}

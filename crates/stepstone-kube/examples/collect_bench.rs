//! The live inventory collection against a 1,000-node lab: `collect_with` (paginated lists of
//! nodes, pods, PDBs and workload controllers, kept as JSON) and `into_inventory` (the parser
//! shared with snapshot files), timed apart. The lab runs on its own runtime, as a remote API
//! server would.
//!
//! ```text
//! cargo run --release -p stepstone-kube --example collect_bench [NODES] [PAGE_SIZE]
//! ```

use std::time::{Duration, Instant};

/// The allocator of the `stepstone` binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use stepstone_core::snapshot::SnapshotOptions;
use stepstone_fleet::{FleetSpec, generate};
use stepstone_kube::collect::{CollectOptions, DEFAULT_PAGE_SIZE, collect_inventory_with, collect_with};
use stepstone_kube::connect;
use stepstone_lab::{Lab, LabOptions};

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let nodes: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let page_size: u32 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(DEFAULT_PAGE_SIZE);
    let fleet = generate(&FleetSpec::synthetic(nodes, 3, 0.8));
    let pods = fleet["items"].as_array().map_or(0, |i| i.iter().filter(|o| o["kind"] == "Pod").count());
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("lab.kubeconfig");
    let lab = Lab::start_blocking(fleet, LabOptions { kubeconfig: Some(kubeconfig.clone()), ..Default::default() })
        .expect("lab starts");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut full = Vec::new();
    let mut streamed = Vec::new();
    let opts = CollectOptions { page_size };
    let snapshot_opts = SnapshotOptions::default();
    runtime.block_on(async {
        let conn = connect(Some(&kubeconfig), None).await.expect("connect");
        let only_inventory = std::env::var_os("ONLY_INVENTORY").is_some();
        if only_inventory {
            eprintln!("collecting");
        }
        for _ in 0..5 {
            if only_inventory {
                let t = Instant::now();
                collect_inventory_with(&conn, &opts, &snapshot_opts).await.expect("inventory");
                full.push((t.elapsed(), t.elapsed(), 0));
                streamed.push((t.elapsed(), 0));
                continue;
            }
            // What `stepstone snapshot` keeps: every object whole, then parsed.
            let before = lab.requests().total;
            let t = Instant::now();
            let set = collect_with(&conn, &opts).await.expect("collect");
            let fetched = t.elapsed();
            let inv = set.into_inventory(&conn.label, &snapshot_opts).expect("inventory");
            assert_eq!(inv.pods.len(), pods, "every pod collected");
            full.push((t.elapsed(), fetched, lab.requests().total - before));
            // What `plan`, `check` and `inventory` use: pruned pages parsed as they arrive.
            let before = lab.requests().total;
            let t = Instant::now();
            let inv = collect_inventory_with(&conn, &opts, &snapshot_opts).await.expect("inventory");
            assert_eq!(inv.pods.len(), pods, "every pod collected");
            streamed.push((t.elapsed(), lab.requests().total - before));
        }
    });
    full.sort();
    streamed.sort();
    let n = full.len();
    println!(
        "collect benchmark: {nodes} nodes, {pods} pods, {page_size} per page (median of {n}; 2 cores shared with the lab)"
    );
    let (total, fetched, requests) = full[n / 2];
    println!(
        "  whole objects (snapshot):      {} ({} fetching, {} parsing; {} min, {} max; {requests} requests)",
        ms(total),
        ms(fetched),
        ms(total - fetched),
        ms(full[0].0),
        ms(full[n - 1].0)
    );
    let (total, requests) = streamed[n / 2];
    println!(
        "  inventory (pruned, streamed):  {} ({} min, {} max; {requests} requests)",
        ms(total),
        ms(streamed[0].0),
        ms(streamed[n - 1].0)
    );
    drop(lab);
}

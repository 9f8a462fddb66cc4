//! Write the example fleets, or a synthetic fleet for benchmarks.
//!
//! ```text
//! cargo run -p stepstone-fleet --example fleet -- write-examples
//! cargo run --release -p stepstone-fleet --example fleet -- synthetic 5000 4 0.7 > fleet.json
//! cargo run --release -p stepstone-fleet --example fleet -- bench
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use stepstone_core::snapshot::SnapshotOptions;
use stepstone_fleet::{self as fleet, FleetSpec};

fn usage() -> ! {
    eprintln!(
        "usage: fleet write-examples | fleet synthetic <nodes> <generations> <utilization 0.0-1.0> | fleet bench"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("write-examples") => {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
            for (file, spec) in
                [("small.json", FleetSpec::small()), ("three-generations.json", FleetSpec::three_generations())]
            {
                let path = dir.join(file);
                std::fs::write(&path, fleet::to_pretty_json(&fleet::generate(&spec)))
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                eprintln!("wrote {}", path.display());
            }
        }
        Some("synthetic") if args.len() == 4 => {
            let nodes: usize = args[1].parse().unwrap_or_else(|_| usage());
            let generations: usize = args[2].parse().unwrap_or_else(|_| usage());
            let utilization: f64 = args[3].parse().unwrap_or_else(|_| usage());
            let spec = FleetSpec::synthetic(nodes, generations, utilization);
            let started = Instant::now();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut counts = std::collections::BTreeMap::<String, usize>::new();
            let mut first = true;
            out.write_all(
                b"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},\"items\":[\n",
            )
            .expect("stdout");
            fleet::generate_items(&spec, |item| {
                *counts.entry(item["kind"].as_str().unwrap_or("").to_string()).or_default() += 1;
                if !first {
                    out.write_all(b",\n").expect("stdout");
                }
                first = false;
                serde_json::to_writer(&mut out, &item).expect("stdout");
            });
            out.write_all(b"\n]}\n").expect("stdout");
            out.flush().expect("stdout");
            eprintln!("generated and wrote {counts:?} in {:.2?}", started.elapsed());
        }
        Some("bench") => {
            // Generation alone (objects built and dropped one by one), then straight into an inventory.
            for nodes in [500, 5000] {
                let spec = FleetSpec::synthetic(nodes, 4, 0.7);
                let started = Instant::now();
                let mut items = 0usize;
                fleet::generate_items(&spec, |_| items += 1);
                let streamed = started.elapsed();
                let started = Instant::now();
                let inv =
                    fleet::generate_inventory(&spec, &SnapshotOptions::default()).expect("generated fleets parse");
                let inventory = started.elapsed();
                println!(
                    "{nodes} nodes: {items} objects ({} pods, {} budgets): generated in {:.2} s; generated and parsed into an inventory in {:.2} s",
                    inv.pods.len(),
                    inv.pdbs.len(),
                    streamed.as_secs_f64(),
                    inventory.as_secs_f64()
                );
            }
        }
        _ => usage(),
    }
}

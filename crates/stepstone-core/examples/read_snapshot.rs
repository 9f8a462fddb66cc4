//! Reading a snapshot file into an inventory, nothing else: the reader's share of
//! `stepstone inventory --snapshot` and `stepstone plan --snapshot`, for profiling it alone.
//!
//! Run: `cargo run --release -p stepstone-core --example read_snapshot -- f.json [--whole]`
//! (`--whole` reads with the whole-text reader the streaming one is tested against). Prints
//! wall and CPU time, the objects read and the peak RSS.

use std::path::PathBuf;
use std::time::Instant;

use stepstone_core::snapshot::{SnapshotOptions, load_paths, load_paths_whole};

// The allocator of the `stepstone` binary, so the figures are the command's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/procstat.rs"]
mod procstat;
use procstat::{cpu_seconds, status_mib};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let whole = args.iter().any(|a| a == "--whole");
    let paths: Vec<PathBuf> = args.iter().filter(|a| !a.starts_with("--")).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: read_snapshot FILE... [--whole]");
        std::process::exit(2);
    }
    let started = Instant::now();
    let read = if whole { load_paths_whole } else { load_paths };
    let inv = match read(&paths, &SnapshotOptions::default()) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "{} reader: {:.2} s wall, {:.2} s CPU, {} nodes, {} pods, {} budgets, {} workloads, peak RSS {:.0} MiB",
        if whole { "whole-text" } else { "streaming" },
        started.elapsed().as_secs_f64(),
        cpu_seconds(),
        inv.nodes.len(),
        inv.pods.len(),
        inv.pdbs.len(),
        inv.workloads.len(),
        status_mib("VmHWM:")
    );
}

//! The fuzz campaign over the readers of untrusted text (see `fuzz/harness.rs`):
//!
//! ```sh
//! nice cargo run --release -p stepstone-apis --example fuzz_readers -- 600 [SEED]
//! ```
//!
//! runs for that many seconds, prints executions per reader, and writes every input that made
//! a reader panic to `target/fuzz-findings/` (exit 1 when there is one).

#[path = "../fuzz/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(60, |s| s.parse().expect("seconds: a whole number"));
    let seed: u64 = args.next().map_or(0x5eed_f022, |s| s.parse().expect("seed: a whole number"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seeds = harness::repository_seeds(&root);
    // The default hook would print every caught panic; the report lists them instead.
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let report = harness::run(&seeds, seed, Duration::from_secs(seconds), u64::MAX);
    let elapsed = start.elapsed();
    println!(
        "seed {seed}, {:.0} s, {} executions ({:.0}/s)",
        elapsed.as_secs_f64(),
        report.total(),
        report.total() as f64 / elapsed.as_secs_f64()
    );
    for (target, n) in &report.executions {
        println!("  {target:<9} {n:>10} executions, {:>9} accepted", report.accepted.get(target).copied().unwrap_or(0));
    }
    println!("findings: {}", report.findings.len());
    if report.findings.is_empty() {
        return;
    }
    let dir = root.join("target/fuzz-findings");
    std::fs::create_dir_all(&dir).expect("create target/fuzz-findings");
    for (i, f) in report.findings.iter().enumerate() {
        let path = dir.join(format!("{i:04}-{:?}.txt", f.target));
        std::fs::write(&path, &f.input).expect("write a finding");
        println!("  {:?}: {} ({})", f.target, f.message, path.display());
    }
    std::process::exit(1);
}

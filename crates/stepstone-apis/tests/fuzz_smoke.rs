//! A short run of the readers' fuzz campaign (`examples/fuzz_readers.rs` runs the long one):
//! a fixed number of mutated inputs, none of which may make a reader panic.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::time::Duration;

#[test]
fn mutated_inputs_never_panic_a_reader() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seeds = harness::repository_seeds(&root);
    let report = harness::run(&seeds, 17, Duration::MAX, 3_000);
    assert_eq!(report.total(), 3_000);
    let shown: Vec<String> = report
        .findings
        .iter()
        .take(3)
        .map(|f| format!("{:?} panicked ({}) on {:?}", f.target, f.message, f.input))
        .collect();
    assert!(report.findings.is_empty(), "{} findings, first: {shown:#?}", report.findings.len());
    // The mutations reach past the first check: every reader accepted some of them.
    for target in harness::TARGETS {
        let key = format!("{target:?}");
        assert!(report.accepted.get(&key).copied().unwrap_or(0) > 0, "{key} accepted nothing: {report:?}");
    }
}

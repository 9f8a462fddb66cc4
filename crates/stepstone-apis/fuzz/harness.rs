//! A mutation fuzzer for the readers of untrusted text, run in-process: the snapshot reader,
//! the manifest reader (YAML and JSON), version, version-request and quantity parsing, and
//! label selectors. Seeds are real inputs (the example fleets, the manifest fixtures, valid
//! versions, quantities and selectors); each execution mutates one (byte flips, truncation,
//! splices of other seeds, JSON-significant tokens, deep nesting, huge numbers) and feeds it to
//! its reader under `catch_unwind`. A reader may refuse anything; it must not panic, and the
//! process must not abort (a stack overflow ends the run, which is a finding too).
//!
//! cargo-fuzz needs a nightly toolchain; this runs on stable, deterministically from a seed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use stepstone_core::dice::Dice;
use stepstone_core::quantity::{parse_bytes, parse_cpu_millis};
use stepstone_core::selector::Selector;
use stepstone_core::snapshot::{SnapshotOptions, load_str};
use stepstone_core::version::{KubeVersion, VersionRequest};

/// Which reader an input goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Snapshot,
    Manifest,
    Version,
    Quantity,
    Selector,
}

pub const TARGETS: [Target; 5] =
    [Target::Snapshot, Target::Manifest, Target::Version, Target::Quantity, Target::Selector];

/// An input that made a reader panic.
#[derive(Debug, Clone)]
pub struct Finding {
    pub target: Target,
    pub input: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Executions per target.
    pub executions: std::collections::BTreeMap<String, u64>,
    /// Inputs each reader accepted (proof the mutations do not all miss).
    pub accepted: std::collections::BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn total(&self) -> u64 {
        self.executions.values().sum()
    }
}

/// The seeds per target.
pub struct Seeds {
    pub snapshot: Vec<String>,
    pub manifest: Vec<String>,
}

const VERSIONS: &[&str] =
    &["v1.35", "v1.35.3", "1.34.6", "v1.36.0-rc.1", "v1.30.4+k3s1", "v1.29.1-eks-5e0fdde", "v1.0"];
const QUANTITIES: &[&str] = &["500m", "2", "1.5", "32Gi", "1e3", "100Ki", "0.1", "1E", "12M", "7Ei"];
const SELECTORS: &[&str] =
    &["app=web", "app!=db", "env in (prod,staging)", "tier notin (a)", "!canary", "a==b,c", "example.com/x=y"];
/// Tokens that change a JSON or YAML document's shape.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "17",
    "-3",
    "true",
    "\"\"",
    "1e308",
    "-1e308",
    "99999999999999999999999Ei",
    "\n",
    "- ",
    "---\n",
    "&a ",
    "*a",
    "!!binary ",
    "\\u0000",
    "{{ .Values.x }}",
    "\t",
    "#",
    "'",
    "|\n  ",
    "? ",
];

fn mutate(rng: &mut Dice, seed: &str, others: &[&str]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(8) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let cut = rng.below(bytes.len());
                bytes.truncate(cut);
            }
            2 => {
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, rng.pick(TOKENS).bytes());
            }
            3 if !bytes.is_empty() => {
                let from = rng.below(bytes.len());
                let to = (from + 1 + rng.below(64)).min(bytes.len());
                bytes.drain(from..to);
            }
            4 => {
                let other = rng.pick(others).as_bytes();
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let to = (from + 1 + rng.below(256)).min(other.len());
                    let at = rng.below(bytes.len() + 1);
                    bytes.splice(at..at, other[from..to].iter().copied());
                }
            }
            5 => {
                // Deep nesting: past serde_json's recursion limit, and the YAML parser's.
                let depth = 1 + rng.below(5000);
                let (open, close) = if rng.below(2) == 0 { ("[", "]") } else { ("{\"a\":", "}") };
                let at = rng.below(bytes.len() + 1);
                let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                bytes.splice(at..at, nested.bytes());
            }
            6 if !bytes.is_empty() => {
                // Repeat a span: long keys, long values, many items.
                let from = rng.below(bytes.len());
                let to = (from + 1 + rng.below(32)).min(bytes.len());
                let span = bytes[from..to].to_vec();
                for _ in 0..rng.below(50) {
                    bytes.splice(from..from, span.iter().copied());
                }
            }
            _ => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, (rng.next_u64() & 0xff) as u8);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Feed `input` to `target`'s reader: `Ok(accepted)`, or the panic message.
pub fn execute(target: Target, input: &str) -> Result<bool, String> {
    let run = || match target {
        Target::Snapshot => load_str("fuzz.json", input, &SnapshotOptions::default()).is_ok(),
        Target::Manifest => {
            let scan = stepstone_apis::manifest::scan_text("fuzz.yaml", input);
            scan.problems.is_empty()
        }
        Target::Version => {
            let a = input.parse::<KubeVersion>().map(|v| v.to_string()).is_ok();
            let b = input.parse::<VersionRequest>().map(|r| r.minor()).is_ok();
            a || b
        }
        Target::Quantity => parse_cpu_millis(input).is_ok() | parse_bytes(input).is_ok(),
        Target::Selector => Selector::parse(input).is_ok(),
    };
    catch_unwind(AssertUnwindSafe(run)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string())
    })
}

/// Run until `budget` passes or `max_executions` inputs ran, from `seed`.
pub fn run(seeds: &Seeds, seed: u64, budget: Duration, max_executions: u64) -> Report {
    let mut rng = Dice::new(seed);
    let mut report = Report::default();
    let start = Instant::now();
    let versions: Vec<&str> = VERSIONS.to_vec();
    let quantities: Vec<&str> = QUANTITIES.to_vec();
    let selectors: Vec<&str> = SELECTORS.to_vec();
    let snapshots: Vec<&str> = seeds.snapshot.iter().map(String::as_str).collect();
    let manifests: Vec<&str> = seeds.manifest.iter().map(String::as_str).collect();
    let mut n = 0u64;
    while n < max_executions && start.elapsed() < budget {
        let target = TARGETS[(n % TARGETS.len() as u64) as usize];
        let pool: &[&str] = match target {
            Target::Snapshot => &snapshots,
            Target::Manifest => &manifests,
            Target::Version => &versions,
            Target::Quantity => &quantities,
            Target::Selector => &selectors,
        };
        let base = rng_pick(&mut rng, pool);
        let input = mutate(&mut rng, base, pool);
        let key = format!("{target:?}");
        *report.executions.entry(key.clone()).or_default() += 1;
        match execute(target, &input) {
            Ok(true) => *report.accepted.entry(key).or_default() += 1,
            Ok(false) => {}
            Err(message) => report.findings.push(Finding { target, input, message }),
        }
        n += 1;
    }
    report
}

fn rng_pick<'a>(rng: &mut Dice, pool: &[&'a str]) -> &'a str {
    pool[rng.below(pool.len())]
}

/// The seeds from the repository: the example fleets and the manifest fixtures.
pub fn repository_seeds(root: &std::path::Path) -> Seeds {
    let read = |p: std::path::PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let snapshot =
        ["examples/small.json", "examples/three-generations.json"].iter().map(|p| read(root.join(p))).collect();
    let mut manifest = Vec::new();
    let fixtures = root.join("crates/stepstone-apis/tests/fixtures");
    let mut stack = vec![fixtures];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
                manifest.push(read(path));
            }
        }
    }
    assert!(!manifest.is_empty(), "no manifest fixtures found");
    Seeds { snapshot, manifest }
}

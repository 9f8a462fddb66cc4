//! Helpers shared by the document tests.
#![allow(dead_code)] // each test binary uses its own part of these helpers

use std::io::Write;
use std::process::{Command, Stdio};

use stepstone_core::inventory::Inventory;
use stepstone_core::plan::Plan;

/// Every ```bash / ```sh block of a Markdown document, with the line it starts on.
pub fn shell_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```bash" || line.trim_start() == "```sh" => {
                current = Some((i + 1, String::new()))
            }
            Some(_) if line.trim_start() == "```" => blocks.push(current.take().unwrap()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "a shell block is not closed");
    blocks
}

/// `bash -n` over every shell block: each must parse on its own, as it is copied.
pub fn assert_blocks_parse(name: &str, markdown: &str) {
    let blocks = shell_blocks(markdown);
    assert!(!blocks.is_empty(), "{name} has no shell blocks");
    for (line, block) in blocks {
        let mut child = Command::new("bash")
            .arg("-n")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs (install the Debian package bash)");
        child.stdin.take().unwrap().write_all(block.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{name}: the block at line {line} does not parse: {}\n{block}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The payload every hostile name carries: a program that, if any part of a name is ever run
/// as a command, leaves a mark. It is the only program on PATH when the documents run.
pub const PWNED: &str = "pwned";

/// Names built to escape every kind of quoting a generator could get wrong.
pub const PAYLOADS: &[&str] = &[
    ";pwned",
    "$(pwned)",
    "`pwned`",
    "|pwned",
    "&&pwned",
    "&pwned&",
    "'$(pwned)'",
    "\"$(pwned)\"",
    "';pwned;'",
    "\";pwned;\"",
    "\\';pwned #",
    " -oProxyCommand=pwned",
    "-oProxyCommand=pwned",
    "${IFS}pwned",
    ")|pwned|(",
    "}$(pwned){",
    "*$(pwned)?",
    "\\$(pwned)",
];

/// Run every shell block of `markdown` with `pwned` as the only program on PATH, in a
/// restricted bash (no redirection, no command with a slash: the documents' own commands are
/// simply not found, and nothing on this machine is touched). Returns how often `pwned` ran.
pub fn run_with_stubs(markdown: &str) -> usize {
    let blocks: Vec<String> = shell_blocks(markdown).into_iter().map(|(_, b)| b).collect();
    run_script_with_stubs(&blocks.join("\n"))
}

/// As [`run_with_stubs`], for a plain shell script.
pub fn run_script_with_stubs(script: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let marker = dir.path().join("marker");
    let stub = bin.join(PWNED);
    std::fs::write(&stub, format!("#!/bin/sh\necho ran >> '{}'\n", marker.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // Found on this process's PATH: the child's PATH holds only the stub.
    let bash = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("bash")).find(|b| b.is_file()))
        .expect("bash is on PATH (install the Debian package bash)");
    let mut child = Command::new(bash)
        .arg("-r")
        .arg("-s")
        .current_dir(&work)
        .env_clear()
        .env("PATH", &bin)
        .env("HOME", &work)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash runs (install the Debian package bash)");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait().unwrap();
    std::fs::read_to_string(&marker).map(|s| s.lines().count()).unwrap_or(0)
}

/// The hand-written two-hop plan in `tests/fixtures/plan.json`.
pub fn fixture_plan() -> Plan {
    serde_json::from_str(include_str!("../fixtures/plan.json")).expect("fixtures/plan.json is a Plan")
}

/// The mixed Ubuntu/Rocky fleet of three hardware generations in `tests/fixtures/fleet.json`.
pub fn fixture_inventory() -> Inventory {
    stepstone_core::snapshot::load_str(
        "fixtures/fleet.json",
        include_str!("../fixtures/fleet.json"),
        &Default::default(),
    )
    .expect("fixtures/fleet.json loads")
}

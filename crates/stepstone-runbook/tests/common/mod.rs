//! Helpers shared by the document tests.

use std::io::Write;
use std::process::{Command, Stdio};

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

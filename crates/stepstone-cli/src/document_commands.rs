//! Every `stepstone ...` command that a generated document tells the operator to run must be
//! accepted by this binary's own argument parser: a runbook that prints a command the tool
//! rejects fails in the middle of an upgrade window.
//!
//! The documents are generated here exactly as the commands write them (runbook, rollback
//! runbook, staging design, HTML report, etcd restore plan, print backend), every command line
//! in their code is extracted and parsed with `Cli::try_parse_from`.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use stepstone_core::inventory::Inventory;
use stepstone_core::plan::{PlanRequest, make_plan};
use stepstone_core::releases::ReleaseData;
use stepstone_host::etcd::restore::{RestoreMember, RestoreOptions, restore_plan};
use stepstone_host::etcd::{self, RemoteEtcdctl, SnapshotMetadata};
use stepstone_host::node::NodeTarget;
use stepstone_host::print::PrintNodeOps;
use stepstone_host::ssh::SshOptions;
use stepstone_runbook::{
    Distro, DistroChoice, RunbookOptions, Templates, html_report, rollback_markdown, staging_design, staging_markdown,
    upgrade_markdown,
};

use crate::Cli;
use crate::source::EXAMPLES;

/// Split one shell command into words: quotes and backslashes as the shell reads them, and
/// the command ends at an unquoted `;`, `|`, `&`, `)`, `>`, `<`, backtick or `#` comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            ';' | '|' | '&' | ')' | '>' | '<' | '`' => break,
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The command lines of a document's code: shell blocks of Markdown, inline code spans,
/// `<code>`/`<pre>` of HTML, or (for plain text) every line.
fn code_fragments(text: &str, plain: bool) -> Vec<String> {
    if plain {
        return text.lines().map(str::to_string).collect();
    }
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            out.push(line.to_string());
            continue;
        }
        // Inline code spans: the text between pairs of backticks.
        let spans: Vec<&str> = line.split('`').collect();
        out.extend(spans.iter().skip(1).step_by(2).map(|s| s.to_string()));
        for tag in ["<code>", "<pre>"] {
            let close = tag.replace('<', "</");
            for part in line.split(tag).skip(1) {
                out.push(part.split(close.as_str()).next().unwrap_or("").to_string());
            }
        }
    }
    out
}

/// Every `stepstone` invocation in the fragments: the word in command position (start of the
/// fragment, or after `$(`, `|`, `;`, `&&`, `||`), with its arguments.
fn stepstone_commands(fragments: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for f in fragments {
        let mut rest = f.as_str();
        while let Some(at) = rest.find("stepstone ") {
            let before = rest[..at].trim_end();
            let command_position =
                before.is_empty() || ["$(", "|", ";", "&&", "||", "("].iter().any(|p| before.ends_with(p));
            let tail = &rest[at..];
            // `stepstone-net-srv` and the like are pod names, not the program.
            if command_position {
                found.push(tail.to_string());
            }
            rest = &rest[at + "stepstone ".len()..];
        }
    }
    found
}

fn documents() -> Vec<(String, String, bool)> {
    let start: jiff::Timestamp = "2026-09-01T08:00:00Z".parse().unwrap();
    let mut docs = Vec::new();
    let templates = Templates::embedded();
    for (name, text) in EXAMPLES {
        let inv: Inventory =
            stepstone_core::snapshot::load_str(name, text, &Default::default()).expect("example fleet loads");
        for to in ["v1.35", "v1.34"] {
            let request = PlanRequest::new(to.parse().unwrap(), start);
            let Ok(plan) = make_plan(&inv, &request, ReleaseData::embedded()) else { continue };
            for distro in [DistroChoice::Auto, DistroChoice::Fixed(Distro::Dnf), DistroChoice::Fixed(Distro::Zypper)] {
                let opts = RunbookOptions { distro, ..RunbookOptions::default() };
                let label = format!("{name} to {to} ({distro:?})");
                docs.push((
                    format!("runbook {label}"),
                    upgrade_markdown(&plan, Some(&inv), &opts, &templates).unwrap(),
                    false,
                ));
                docs.push((
                    format!("rollback {label}"),
                    rollback_markdown(&plan, Some(&inv), &opts, &templates).unwrap(),
                    false,
                ));
            }
            docs.push((format!("report {name} to {to}"), html_report(&plan, Some(&inv), &templates).unwrap(), false));
            // The external-etcd variants print other commands (etcd backup --endpoint, restore-plan).
            let mut external = inv.clone();
            external.components.retain(|c| c.component != stepstone_core::inventory::Component::Etcd);
            let opts = RunbookOptions::default();
            docs.push((
                format!("runbook {name} to {to} (external etcd)"),
                upgrade_markdown(&plan, Some(&external), &opts, &templates).unwrap(),
                false,
            ));
            docs.push((
                format!("rollback {name} to {to} (external etcd)"),
                rollback_markdown(&plan, Some(&external), &opts, &templates).unwrap(),
                false,
            ));
            let design = staging_design(&inv, &plan.to);
            docs.push((format!("staging {name} to {to}"), staging_markdown(&design, &templates).unwrap(), false));
        }
    }
    let meta: SnapshotMetadata = serde_json::from_value(serde_json::json!({
        "apiVersion": stepstone_core::API_VERSION, "kind": etcd::METADATA_KIND,
        "file": "etcd-prod-20260901T080000Z.db", "cluster": "prod", "sha256": "ab".repeat(32),
        "sizeBytes": 20480, "revision": 7, "totalKeys": 9, "hash": 1, "etcdVersion": "3.5.16",
        "endpoint": "https://10.0.0.1:2379", "method": "grpc", "takenAt": "2026-09-01T08:00:00Z"
    }))
    .unwrap();
    let members = [RestoreMember::kubeadm("cp-1", "10.0.0.1"), RestoreMember::kubeadm("cp-2", "10.0.0.2")];
    let plan = restore_plan(&meta, "/backup/etcd-prod-20260901T080000Z.db", &members, &RestoreOptions::default());
    docs.push(("restore plan".into(), plan.to_text(), true));
    let steps: Vec<String> = plan.steps.iter().flat_map(|s| s.commands.clone()).collect();
    docs.push(("restore plan commands".into(), steps.join("\n"), true));

    let ops = PrintNodeOps::new(SshOptions::default());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime
        .block_on(etcd::snapshot_via_ssh(
            &ops,
            &NodeTarget::new("cp-1", "10.0.0.1"),
            &RemoteEtcdctl::default(),
            Path::new("/backup"),
            "prod",
            start,
            Duration::from_secs(5),
        ))
        .unwrap();
    docs.push(("print backend".into(), ops.take_lines().join("\n"), true));
    docs
}

#[test]
fn shell_words_follow_the_shell() {
    assert_eq!(
        shell_words(r#"stepstone etcd verify "$SNAPSHOT" --max-age 1h"#),
        ["stepstone", "etcd", "verify", "$SNAPSHOT", "--max-age", "1h"]
    );
    assert_eq!(shell_words("stepstone drain 'a b' ; rm -rf x"), ["stepstone", "drain", "a b"]);
    assert_eq!(shell_words("stepstone plan --to v1.35)"), ["stepstone", "plan", "--to", "v1.35"]);
    assert_eq!(
        stepstone_commands(&["SNAPSHOT=$(stepstone etcd backup --dir /x)".into()]),
        ["stepstone etcd backup --dir /x)"]
    );
    assert!(
        stepstone_commands(&["kubectl run stepstone-net-srv".into(), "Written by stepstone from".into()]).is_empty()
    );
}

#[test]
fn the_parser_rejects_what_the_bug_printed() {
    // The regression this test guards: `-o` is the output format, not the backup directory.
    let bad = shell_words("stepstone etcd backup --via-ssh cp-01 -o /var/backups/stepstone/");
    assert!(Cli::try_parse_from(&bad).is_err());
}

#[test]
fn every_stepstone_command_in_every_generated_document_parses() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (name, text, plain) in documents() {
        for command in stepstone_commands(&code_fragments(&text, plain)) {
            let words = shell_words(&command);
            checked += 1;
            if let Err(e) = Cli::try_parse_from(&words) {
                failures.push(format!("{name}: `{command}`\n{e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} commands do not parse:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 20, "only {checked} stepstone commands found: the extraction is broken");
}

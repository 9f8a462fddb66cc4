//! Hostile node names, addresses and snapshot file names through the restore plan and the print
//! backend: the commands still parse, and running them with a marker program as the only thing
//! on PATH never runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use proptest::prelude::*;
use stepstone_host::etcd::restore::{RestoreMember, RestoreOptions, restore_plan};
use stepstone_host::etcd::{self, RemoteEtcdctl, SnapshotMetadata};
use stepstone_host::node::{NodeOps, NodeTarget, RemoteCommand};
use stepstone_host::print::PrintNodeOps;
use stepstone_host::ssh::SshOptions;

const PAYLOADS: &[&str] = &[
    ";pwned",
    "$(pwned)",
    "`pwned`",
    "|pwned",
    "&&pwned",
    "'$(pwned)'",
    "\"$(pwned)\"",
    "';pwned;'",
    "\\';pwned #",
    "\npwned\n",
    "\n# \npwned",
    "-oProxyCommand=pwned",
    "${IFS}pwned",
    ")|pwned|(",
];

fn bash() -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("bash")).find(|b| b.is_file()))
        .expect("bash is on PATH (install the Debian package bash)")
}

fn parses(script: &str) -> Result<(), String> {
    let mut child = Command::new(bash()).arg("-n").stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// Run `script` in a restricted bash whose PATH holds only `pwned` (no redirection, no command
/// with a slash, so nothing else on this machine runs); how often `pwned` ran.
fn pwned_runs(script: &str) -> usize {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let marker = dir.path().join("marker");
    std::fs::write(bin.join("pwned"), format!("#!/bin/sh\necho ran >> '{}'\n", marker.display())).unwrap();
    std::fs::set_permissions(bin.join("pwned"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(bash())
        .args(["-r", "-s"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", &bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait().unwrap();
    std::fs::read_to_string(&marker).map(|s| s.lines().count()).unwrap_or(0)
}

fn meta(file: &str) -> SnapshotMetadata {
    serde_json::from_value(serde_json::json!({
        "apiVersion": stepstone_core::API_VERSION, "kind": etcd::METADATA_KIND, "file": file,
        "cluster": "prod", "sha256": "ab".repeat(32), "sizeBytes": 20480, "revision": 7, "totalKeys": 9,
        "hash": 1, "etcdVersion": "3.5.16", "endpoint": "https://10.0.0.1:2379", "method": "grpc",
        "takenAt": "2026-09-01T08:00:00Z"
    }))
    .unwrap()
}

fn print_lines(name: &str, address: &str) -> String {
    let ops = PrintNodeOps::new(SshOptions::default());
    let node = NodeTarget::new(name, address);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        ops.run(&node, &RemoteCommand::argv(["cat", "--", name]), Duration::from_secs(1)).await.unwrap();
        ops.run(
            &node,
            &RemoteCommand::script(format!("echo {}", stepstone_host::node::shell_quote(name))),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        etcd::snapshot_via_ssh(
            &ops,
            &node,
            &RemoteEtcdctl::default(),
            Path::new("/backup"),
            name,
            "2026-09-01T08:00:00Z".parse().unwrap(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    });
    ops.take_lines().join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn hostile_names_never_run(a in 0..PAYLOADS.len(), b in 0..PAYLOADS.len(), junk in "[ -~]{0,6}") {
        let name = format!("cp-1{}{junk}", PAYLOADS[a]);
        let ip = format!("10.0.0.1{}", PAYLOADS[b]);
        let members = [RestoreMember::kubeadm(&name, &ip), RestoreMember::kubeadm("cp-2", "10.0.0.2")];
        let snapshot = format!("/backup/etcd{}.db", PAYLOADS[b]);
        let plan = restore_plan(&meta(&format!("etcd{}.db", PAYLOADS[a])), &snapshot, &members, &RestoreOptions::default());
        let script = plan.steps.iter().flat_map(|s| s.commands.iter().cloned()).collect::<Vec<_>>().join("\n");
        prop_assert!(parses(&script).is_ok(), "{:?}\n{script}", parses(&script));
        prop_assert_eq!(pwned_runs(&script), 0, "restore plan ran a hostile name:\n{}", script);

        let printed = print_lines(&name, &ip);
        prop_assert!(parses(&printed).is_ok(), "{:?}\n{printed}", parses(&printed));
        prop_assert_eq!(pwned_runs(&printed), 0, "print backend output ran a hostile name:\n{}", printed);
        for line in printed.lines().filter(|l| l.starts_with("ssh ")) {
            prop_assert!(line.contains(" -- "), "no -- before the host: {}", line);
        }
    }
}

#[test]
fn the_harness_sees_an_injection_and_a_comment_break_out() {
    assert_eq!(pwned_runs("echo x; pwned\n# a comment\npwned"), 2);
    // What the print backend wrote before names in comments were made single-line.
    assert_eq!(pwned_runs("# cp-1\npwned\nssh -T -- 10.0.0.1 true"), 1);
}

//! Snapshots against Debian's real etcd: write keys, take a snapshot with stepstone, verify it
//! (our reader and etcdctl agree), restore it with etcdctl into a new data dir, start a second
//! etcd on it and read the keys back. Damaged copies must fail verification clearly.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Etcd, require};
use stepstone_host::etcd::restore::{RestoreMember, restore_command, restore_tool};
use stepstone_host::etcd::{self, CheckStatus, GrpcSnapshotOptions, SnapshotMetadata, VerifyOptions, VerifyReport};

const KEYS: usize = 40;

async fn client(url: &str) -> etcd_client::Client {
    etcd_client::Client::connect([url], None).await.expect("connect to the test etcd")
}

fn check<'a>(report: &'a VerifyReport, name: &str) -> &'a etcd::VerifyCheck {
    report.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no '{name}' check in {report:#?}"))
}

fn verify(path: &Path) -> VerifyReport {
    etcd::verify(
        path,
        &VerifyOptions {
            metadata: None,
            max_age: Some(Duration::from_secs(3600)),
            now: jiff::Timestamp::now(),
            external_tool: true,
            label: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_verify_restore_and_read_back() {
    require("etcdctl", "etcd-client");
    let work = tempfile::tempdir().unwrap();
    let source = Etcd::start("source", &work.path().join("source"));
    let mut c = client(&source.client_url).await;
    for i in 0..KEYS {
        c.put(format!("/registry/test/k{i:02}"), format!("value-{i}"), None).await.unwrap();
    }
    let revision = c.get("/registry/test/k00", None).await.unwrap().header().unwrap().revision();

    // Take the snapshot with stepstone.
    let backups = work.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let options = GrpcSnapshotOptions {
        endpoint: source.client_url.clone(),
        tls: None,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
    };
    let taken_at = jiff::Timestamp::now();
    let (path, meta) = etcd::snapshot_grpc(&options, &backups, "lab", taken_at).await.expect("snapshot");
    assert!(path.file_name().unwrap().to_string_lossy().starts_with("etcd-lab-"));
    assert_eq!(meta.revision, revision, "the snapshot holds the newest revision");
    assert_eq!(meta.etcd_version.as_deref().map(|v| v.starts_with("3.")), Some(true));
    assert_eq!(meta.size_bytes, std::fs::metadata(&path).unwrap().len());
    let on_disk = etcd::read_metadata(&SnapshotMetadata::path_for(&path)).unwrap();
    assert_eq!(on_disk, meta);

    // A write after the snapshot is what a restore loses.
    c.put("/registry/test/after-snapshot", "lost", None).await.unwrap();

    let report = verify(&path);
    assert!(report.ok, "{report:#?}");
    assert_eq!(check(&report, "etcd-tool").status, CheckStatus::Pass, "etcdctl must agree: {report:#?}");
    assert!(check(&report, "structure").detail.contains("SHA-256 trailer matches"));

    // Restore into a new data dir with the command the restore plan prints, start etcd on it
    // (restored again if the peer port it names was taken before etcd bound it).
    let restored_dir = work.path().join("restored");
    let restored = Etcd::start_prepared("restored", &restored_dir, |peer_url| {
        let member = RestoreMember { name: "restored".into(), peer_url: peer_url.to_string() };
        let argv = restore_command(
            restore_tool(meta.etcd_version.as_deref()),
            &path.display().to_string(),
            &member,
            std::slice::from_ref(&member),
            "etcd-restore-test",
            &restored_dir.display().to_string(),
        );
        assert_eq!(argv[0], "etcdctl", "Debian's etcd 3.4 restores with etcdctl");
        let out =
            Command::new(require("etcdctl", "etcd-client")).args(&argv[1..]).env("ETCDCTL_API", "3").output().unwrap();
        assert!(out.status.success(), "etcdctl snapshot restore: {}", String::from_utf8_lossy(&out.stderr));
    });
    let mut r = client(&restored.client_url).await;
    let got = r.get("/registry/test/", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    let mut keys: Vec<(String, String)> =
        got.kvs().iter().map(|kv| (kv.key_str().unwrap().to_string(), kv.value_str().unwrap().to_string())).collect();
    keys.sort();
    assert_eq!(keys.len(), KEYS, "every key written before the snapshot is back, the later one is not");
    assert_eq!(keys[7], ("/registry/test/k07".to_string(), "value-7".to_string()));
    drop(source);

    // A corrupted copy: a few bytes flipped in the middle.
    let corrupted = backups.join("corrupted.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&corrupted, &bytes).unwrap();
    std::fs::copy(SnapshotMetadata::path_for(&path), SnapshotMetadata::path_for(&corrupted)).unwrap();
    let report = verify(&corrupted);
    assert!(!report.ok);
    assert_eq!(check(&report, "sha256").status, CheckStatus::Fail);
    assert!(check(&report, "sha256").detail.contains("the file changed after it was taken"), "{report:#?}");
    assert_eq!(check(&report, "structure").status, CheckStatus::Fail);

    // A truncated copy: the first half only.
    let truncated = backups.join("truncated.db");
    std::fs::write(&truncated, &std::fs::read(&path).unwrap()[..mid]).unwrap();
    std::fs::copy(SnapshotMetadata::path_for(&path), SnapshotMetadata::path_for(&truncated)).unwrap();
    let report = verify(&truncated);
    assert!(!report.ok);
    assert!(check(&report, "size").detail.contains("truncated or replaced"), "{report:#?}");
    let structure = check(&report, "structure");
    assert_eq!(structure.status, CheckStatus::Fail);
    assert!(structure.detail.contains("truncated: the database needs"), "{}", structure.detail);

    // The freshness gate: fine now, refused once the snapshot is older than the limit.
    assert!(etcd::freshness_gate(&meta, jiff::Timestamp::now(), Duration::from_secs(3600)).is_ok());
    let later = taken_at + jiff::SignedDuration::from_secs(7200);
    assert!(etcd::freshness_gate(&meta, later, Duration::from_secs(3600)).is_err());
}

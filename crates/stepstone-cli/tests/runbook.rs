//! `stepstone runbook` and `stepstone staging` end to end: the binary, real files, and the HTML
//! report opened by headless Chromium (Debian package `chromium`).

mod common;

use std::path::{Path, PathBuf};

use common::{chromium, console_errors, run, stderr, stdout};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stepstone-runbook/tests/fixtures")
}

fn plan_arg() -> String {
    fixtures().join("plan.json").display().to_string()
}

fn fleet_arg() -> String {
    fixtures().join("fleet.json").display().to_string()
}

#[test]
fn markdown_runbook_from_a_plan_file() {
    let out = run(&["runbook", "--plan", &plan_arg(), "--snapshot", &fleet_arg()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.starts_with("# Upgrade runbook: snapshot fleet.json, v1.33.4 to v1.35.3"));
    assert!(md.contains("kubeadm upgrade apply v1.34.6") && md.contains("kubeadm upgrade apply v1.35.3"));
    assert!(md.contains("dnf install -y --disableexcludes=kubernetes kubeadm-'1.34.6-*'"), "Rocky nodes use dnf");

    let out = run(&["runbook", "--plan", &plan_arg(), "--distro", "apt", "--rollback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("# Rollback runbook:"));
}

#[test]
fn drain_lines_follow_the_consent_given_to_runbook_and_to_plan() {
    let drains =
        |md: &str| md.lines().filter(|l| l.starts_with("kubectl drain ")).map(str::to_string).collect::<Vec<_>>();
    let out = run(&["runbook", "--example", "small", "--to", "v1.35"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = drains(&stdout(&out));
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| !l.contains("--delete-emptydir-data")), "{lines:?}");

    let out = run(&["runbook", "--example", "small", "--to", "v1.35", "--delete-emptydir-data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = drains(&stdout(&out));
    assert!(lines.iter().all(|l| l.contains(" --ignore-daemonsets --delete-emptydir-data --timeout=")), "{lines:?}");

    // A plan file carries its consents; the runbook flag would contradict it.
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let out = run(&["plan", "--example", "small", "--to", "v1.35", "--delete-emptydir-data", "-o", "json"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    std::fs::write(&plan, &out.stdout).unwrap();
    let out = run(&["runbook", "--plan", plan.to_str().unwrap(), "--example", "small", "--rollback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = drains(&stdout(&out));
    assert!(!lines.is_empty() && lines.iter().all(|l| l.contains("--delete-emptydir-data")), "{lines:?}");
    let out = run(&["runbook", "--plan", plan.to_str().unwrap(), "--delete-emptydir-data"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_package_index_pins_the_exact_build() {
    let index = fixtures().join("package-index/Packages-v1.28");
    let dir = tempfile::tempdir().unwrap();
    // The repository index lists the builds of v1.28.14; a plan to it pins them exactly.
    let plan = std::fs::read_to_string(plan_arg()).unwrap().replace("1.35.3", "1.28.14");
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, plan).unwrap();
    let out = run(&[
        "runbook",
        "--plan",
        plan_path.to_str().unwrap(),
        "--distro",
        "apt",
        "--package-index",
        index.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.contains("apt-get install -y kubeadm='1.28.14-2.1'"), "{md}");
    assert!(!md.contains("kubeadm='1.28.14-*'"), "{md}");

    let out = run(&["runbook", "--plan", &plan_arg(), "--distro", "apt", "--package-index", &fleet_arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is neither a deb `Packages` index"), "{}", stderr(&out));
}

#[test]
fn bad_input_names_the_fix() {
    let out = run(&["runbook", "--plan", &plan_arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--distro apt"), "{}", stderr(&out));

    let out = run(&["runbook", "--plan", &fleet_arg(), "--distro", "apt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("holds a List, not a Plan"), "{}", stderr(&out));

    let out = run(&["runbook", "--plan", &plan_arg(), "--distro", "apt", "--rollback", "--format", "html"]);
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["runbook"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--plan plan.json"), "{}", stderr(&out));
}

#[test]
fn template_dir_replaces_the_hooks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.md"),
        "{% macro notify_start(r) %}- [ ] Post to #ops: {{ r.cluster }} upgrade starts{% endmacro %}\n\
         {% macro before_hop(r, hop) %}{% endmacro %}\n{% macro notify_finish(r) %}- [ ] Post to #ops: done{% endmacro %}\n",
    )
    .unwrap();
    let out = run(&[
        "runbook",
        "--plan",
        &plan_arg(),
        "--distro",
        "dnf",
        "--template-dir",
        &dir.path().display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.contains("- [ ] Post to #ops: snapshot fleet.json upgrade starts"));
    assert!(md.contains("- [ ] Post to #ops: done"));
}

#[test]
fn staging_design_in_every_format() {
    let out = run(&["staging", "--snapshot", &fleet_arg(), "--to", "v1.34", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["apiVersion"], "stepstone/v1alpha1");
    assert_eq!(doc["kind"], "StagingDesign");
    assert_eq!(doc["controlPlane"]["count"], 3);
    assert_eq!(doc["workers"].as_array().unwrap().len(), 3);
    assert_eq!(doc["tests"].as_array().unwrap().len(), 8);

    let out = run(&["staging", "--snapshot", &fleet_arg()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("stg-dell-r640-k5.4-containerd-1.6") && table.contains("TEST MATRIX"), "{table}");
    assert!(table.contains("-> v1.34."), "default target is the next minor: {table}");

    let out = run(&["staging", "--snapshot", &fleet_arg(), "-o", "markdown"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("## Test matrix"));

    let out = run(&["staging", "--snapshot", &fleet_arg(), "-o", "yaml"]);
    assert!(out.status.success() && stdout(&out).contains("kind: StagingDesign"));
}

#[test]
fn html_report_renders_in_chromium() {
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/runbook-report");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out_dir = out_dir.canonicalize().unwrap();
    let report = out_dir.join("report.html");
    let out = run(&[
        "runbook",
        "--plan",
        &plan_arg(),
        "--snapshot",
        &fleet_arg(),
        "--format",
        "html",
        "-o",
        &report.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let url = format!("file://{}", report.display());

    let shot = out_dir.join("shot.png");
    let _ = std::fs::remove_file(&shot);
    let run = chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1400,2000"], &url);
    let log = stderr(&run);
    assert!(run.status.success(), "chromium failed: {log}");
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a real screenshot ({} bytes)", png.len());
    assert_eq!(console_errors(&log), Vec::<String>::new());

    let run = chromium(&["--dump-dom"], &url);
    let dom = stdout(&run);
    assert!(run.status.success(), "chromium failed: {}", stderr(&run));
    assert_eq!(console_errors(&stderr(&run)), Vec::<String>::new());
    let plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(plan_arg()).unwrap()).unwrap();
    let count = |h: &serde_json::Value, key: &str| h[key].as_array().map_or(0, Vec::len);
    let waves: usize =
        plan["hops"].as_array().unwrap().iter().map(|h| count(h, "waves") + count(h, "beforeControlPlane")).sum();
    assert!(dom.contains("<svg"), "the timeline SVG is in the rendered DOM");
    assert_eq!(dom.matches("<rect class=\"bar wave\"").count(), waves, "one bar per wave in the rendered DOM");
    assert!(dom.contains("Blockers and their fixes"));
}

#[test]
fn the_console_check_catches_a_broken_page() {
    // The detector above must be able to fail: a page with a script error trips it.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body><script>noSuchFunction();</script></body></html>").unwrap();
    let run = chromium(&["--dump-dom"], &format!("file://{}", page.display()));
    let errors = console_errors(&stderr(&run));
    assert!(!errors.is_empty(), "no console error seen in: {}", stderr(&run));
}

/// A package repository on 127.0.0.1 laid out like pkgs.k8s.io: `/core:/stable:/v1.NN/deb/Packages`
/// (v1.34's redirects to a CDN path, as the real one does), the rpm `repodata/repomd.xml` and
/// its gzip primary index for v1.34, nothing for v1.33 and v1.35 (404), and an HTML page
/// where a mirror's index should be. Served by a thread for as long as the test runs.
fn serve_repository() -> String {
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    use std::io::Write;
    let deb = "Package: cri-tools\nVersion: 1.34.0-1.1\n\nPackage: kubeadm\nVersion: 1.34.6-1.1\n\n\
               Package: kubelet\nVersion: 1.34.6-1.1\n\nPackage: kubelet\nVersion: 1.34.6-2.1\n\n\
               Package: kubectl\nVersion: 1.34.6-1.1\n\nPackage: kubeadm\nVersion: 1.34.5-1.1\n";
    let primary = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" packages="3">
<package type="rpm"><name>kubeadm</name><version epoch="0" ver="1.34.6" rel="150500.1.1"/></package>
<package type="rpm"><name>kubelet</name><version epoch="0" ver="1.34.6" rel="150500.1.1"/></package>
<package type="rpm"><name>kubectl</name><version epoch="0" ver="1.34.6" rel="150500.1.1"/></package>
</metadata>"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(primary.as_bytes()).unwrap();
    let primary_gz = gz.finish().unwrap();
    let repomd = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo">
  <data type="primary"><location href="repodata/0a1b-primary.xml.gz"/></data>
</repomd>"#;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().fallback(move |uri: Uri| {
                let primary_gz = primary_gz.clone();
                async move {
                    match uri.path() {
                        "/core:/stable:/v1.34/deb/Packages" => {
                            (StatusCode::FOUND, [(header::LOCATION, "/cdn/isv:/kubernetes:/v1.34/deb/Packages")])
                                .into_response()
                        }
                        "/cdn/isv:/kubernetes:/v1.34/deb/Packages" => deb.into_response(),
                        "/core:/stable:/v1.34/rpm/repodata/repomd.xml" => repomd.into_response(),
                        "/core:/stable:/v1.34/rpm/repodata/0a1b-primary.xml.gz" => primary_gz.into_response(),
                        "/captive/Packages" => "<html>Sign in to the guest network</html>".into_response(),
                        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
                    }
                }
            });
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}

#[test]
fn a_package_index_url_pins_the_builds_the_repository_has_and_an_unreachable_one_falls_back() {
    let repo = serve_repository();
    let root = format!("{repo}/core:/stable:");
    // plan.json goes v1.33.4 -> v1.34.6 -> v1.35.3; the repository has an index for v1.34 only.
    let out = run(&["runbook", "--plan", &plan_arg(), "--distro", "apt", "--package-index", &root]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.contains("apt-get install -y kubeadm='1.34.6-1.1'"), "{md}");
    assert!(md.contains("apt-get install -y kubelet='1.34.6-2.1' kubectl='1.34.6-1.1'"), "the newest build: {md}");
    assert!(md.contains("apt-get install -y kubeadm='1.35.3-*'"), "{md}");
    let notes = stderr(&out);
    assert!(notes.contains(&format!("note: package index {root}/v1.35/deb/Packages not read (HTTP 404")), "{notes}");
    assert!(notes.contains("deb packages of v1.35 are pinned as '1.35.z-*'"), "{notes}");
    assert!(!notes.contains("rpm"), "--distro apt reads no rpm index: {notes}");

    // rpm: repomd.xml names the gzip primary index.
    let out = run(&["runbook", "--plan", &plan_arg(), "--distro", "dnf", "--package-index", &root, "--rollback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.contains("kubeadm-'1.34.6-150500.1.1' kubelet-'1.34.6-150500.1.1'"), "{md}");

    // One index by its own URL.
    let one = format!("{root}/v1.34/deb/Packages");
    let out = run(&["runbook", "--plan", &plan_arg(), "--distro", "apt", "--package-index", &one]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("kubeadm='1.34.6-1.1'"));

    // Nothing listens on this port: the runbook is the one without an index, with a note. The
    // port stays bound (never listened on) until the end, so no other process can take it.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let gone = format!("http://{}/core:/stable:", closed.local_addr().unwrap());
    let without = run(&["runbook", "--plan", &plan_arg(), "--distro", "apt"]);
    let out = run(&["runbook", "--plan", &plan_arg(), "--distro", "apt", "--package-index", &gone]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), stdout(&without), "an unreachable index changes no line");
    let notes = stderr(&out);
    assert_eq!(notes.matches("note: package index").count(), 3, "one per minor: {notes}");
    assert!(notes.contains("deb packages of v1.34 are pinned as '1.34.z-*'"), "{notes}");

    // A page that is not an index is bad input, named with the fix.
    let out = run(&[
        "runbook",
        "--plan",
        &plan_arg(),
        "--distro",
        "apt",
        "--package-index",
        &format!("{repo}/captive/Packages"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("/captive/Packages is neither a deb `Packages` index"), "{}", stderr(&out));
}

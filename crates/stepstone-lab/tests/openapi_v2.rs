//! The lab's `/openapi/v2`, which kubectl reads (as protobuf) when a manifest's group/version is
//! missing from the v3 index: negotiated like the apiserver (JSON by default, the gnostic protobuf
//! for client-go's media type, 406 otherwise), consistent with the v3 documents, and enough for
//! the real `kubectl create -f` of a `policy/v1beta1` PodDisruptionBudget after the upgrade to
//! 1.25 to fail with upstream's `no matches for kind` (not with a validation error).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::*;
use serde_json::{Value, json};
use stepstone_lab::{Package, UpgradeOptions};

/// A v1 List: kubectl always validates its items on the client, against `/openapi/v2`.
const LIST: &str = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: listed, namespace: shop}
  data: {a: \"1\"}
- apiVersion: policy/v1
  kind: PodDisruptionBudget
  metadata: {name: listed, namespace: shop}
  spec: {maxUnavailable: 1, selector: {matchLabels: {app: web}}}
";

const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const PROTOBUF_DOTTED: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// One HTTP/1.1 GET with the given headers: status, lower-cased response headers and body.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn v2_is_negotiated_like_the_apiservers_openapi_handler() {
    let (lab, _dir, kc) = start_lab(fleet_1_24(), 20.0);
    let doc: Value = serde_json::from_str(&kubectl_ok(&kc, &["get", "--raw", "/openapi/v2"])).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    let pdb = &doc["definitions"]["io.k8s.api.policy.v1beta1.PodDisruptionBudget"];
    assert_eq!(
        pdb["x-kubernetes-group-version-kind"],
        json!([{"group": "policy", "kind": "PodDisruptionBudget", "version": "v1beta1"}]),
        "{doc}"
    );
    // The same paths as the v3 documents, with the same group/version/kind.
    let v3: Value =
        serde_json::from_str(&kubectl_ok(&kc, &["get", "--raw", "/openapi/v3/apis/policy/v1beta1"])).unwrap();
    for (path, item) in v3["paths"].as_object().unwrap() {
        assert_eq!(
            doc["paths"][path]["patch"]["x-kubernetes-group-version-kind"],
            item["patch"]["x-kubernetes-group-version-kind"],
            "{path}"
        );
    }

    let (status, headers, body) = get(lab.addr, "/openapi/v2", &[("Accept", PROTOBUF)]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some(PROTOBUF_DOTTED));
    assert_eq!(header(&headers, "vary"), Some("Accept"));
    assert_eq!(&body[..5], b"\x0a\x032.0", "field 1 (swagger) first");
    let etag = header(&headers, "etag").expect("an ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let (status, _, body) = get(lab.addr, "/openapi/v2", &[("Accept", PROTOBUF), ("If-None-Match", &etag)]);
    assert_eq!((status, body.len()), (304, 0));

    let (status, headers, _) = get(lab.addr, "/openapi/v2", &[]);
    assert_eq!((status, header(&headers, "content-type")), (200, Some("application/json")));
    let (status, headers, body) = get(lab.addr, "/openapi/v2", &[("Accept", "text/html")]);
    assert_eq!((status, body.len()), (406, 0));
    assert_eq!(header(&headers, "vary"), Some("Accept"));
}

#[test]
fn kubectl_reports_no_matches_for_a_removed_version_after_the_upgrade() {
    let (lab, dir, kc) = start_lab(fleet_1_24(), 20.0);
    let manifest = dir.path().join("pdb-v1beta1.yaml");
    std::fs::write(&manifest, PDB_V1BETA1).unwrap();
    let manifest = manifest.to_str().unwrap();
    let list = dir.path().join("list.yaml");
    std::fs::write(&list, LIST).unwrap();

    // Items of a v1 List are validated on the client against the v2 definitions.
    let out = kubectl_fresh(&kc, &dir.path().join("cache-list"), &["create", "-f", list.to_str().unwrap()], None);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("configmap/listed created"), "{stdout}");
    assert!(stdout.contains("poddisruptionbudget.policy/listed created"), "{stdout}");

    let ops = lab.nodes();
    ops.configure_repository("cp1", "v1.25").unwrap();
    ops.install_package("cp1", Package::Kubeadm, "1.25.16-1.1").unwrap();
    ops.kubeadm_upgrade_apply("cp1", "v1.25.16", &UpgradeOptions::default()).unwrap();

    let doc: Value = serde_json::from_str(&kubectl_ok(&kc, &["get", "--raw", "/openapi/v2"])).unwrap();
    assert!(doc["definitions"].get("io.k8s.api.policy.v1beta1.PodDisruptionBudget").is_none());
    assert!(doc["definitions"].get("io.k8s.api.policy.v1.PodDisruptionBudget").is_some());

    // Default (strict) validation: not in the v3 index, so kubectl falls back to the v2 document
    // (asking for protobuf), finds no definition, and then no mapping.
    let out = kubectl_fresh(&kc, &dir.path().join("cache-1.25"), &["create", "-f", manifest, "-v=6"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        // `GET URL 200 OK` from kubectl 1.32, `"Response" verb="GET" url="URL" status="200 OK"` from
        // 1.37 (what a fresh machine gets from PyPI).
        stderr.lines().any(|l| (l.contains("GET ") || l.contains("verb=\"GET\""))
            && l.contains("/openapi/v2?")
            && (l.contains(" 200 OK") || l.contains("status=\"200 OK\""))),
        "kubectl read the v2 document: {stderr}"
    );
    assert!(!stderr.contains("error validating"), "{stderr}");
    assert!(
        stderr.contains(r#"no matches for kind "PodDisruptionBudget" in version "policy/v1beta1""#),
        "as against a real 1.25 apiserver: {stderr}"
    );
    assert!(lab.get("poddisruptionbudgets", "shop", "legacy").is_none());
}

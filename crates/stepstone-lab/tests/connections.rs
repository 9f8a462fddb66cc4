//! The lab's connection limits over raw TCP: a client that sends half a request head, nothing
//! at all, or leaves a keep-alive connection idle is disconnected after the header timeout, as
//! the apiserver does; a watch, a response being streamed, is not cut by it.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use stepstone_lab::{Lab, LabHandle, LabOptions};

/// Short enough for a test; the default is the apiserver's 32 seconds.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a test waits for the server to act before calling it hung.
const PATIENCE: Duration = Duration::from_secs(30);

fn lab() -> LabHandle {
    let fleet = list(vec![node("w1", false, "v2")]);
    Lab::start_blocking(fleet, LabOptions { header_timeout: HEADER_TIMEOUT, ..Default::default() }).expect("lab starts")
}

fn connect(lab: &LabHandle) -> TcpStream {
    let tcp = TcpStream::connect(lab.addr).expect("connect to the lab");
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp
}

/// Read until the server closes the connection; what it sent before, and how long it took.
/// Panics if it keeps the connection open past [`PATIENCE`].
fn until_closed(tcp: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the lab kept the connection open for {:?}: {e}", start.elapsed()),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

#[test]
fn half_a_request_line_is_disconnected_after_the_header_timeout() {
    let lab = lab();
    let mut tcp = connect(&lab);
    tcp.write_all(b"GET /api/v1/nodes HT").unwrap();
    let (_, waited) = until_closed(&mut tcp);
    assert!(waited >= HEADER_TIMEOUT / 2, "closed after {waited:?}, before the client had its time");
}

#[test]
fn headers_without_their_end_are_disconnected() {
    let lab = lab();
    let mut tcp = connect(&lab);
    tcp.write_all(b"GET /api/v1/nodes HTTP/1.1\r\nHost: lab\r\nX-Slow: 1\r\n").unwrap();
    until_closed(&mut tcp);
}

#[test]
fn a_connection_that_sends_nothing_is_disconnected() {
    let lab = lab();
    let mut tcp = connect(&lab);
    until_closed(&mut tcp);
}

#[test]
fn a_prefix_of_the_http2_preface_is_disconnected() {
    let lab = lab();
    let mut tcp = connect(&lab);
    tcp.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    until_closed(&mut tcp);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_its_response() {
    let lab = lab();
    let mut tcp = connect(&lab);
    tcp.write_all(b"GET /version HTTP/1.1\r\nHost: lab\r\n\r\n").unwrap();
    let (answer, _) = until_closed(&mut tcp);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("gitVersion"), "{answer}");
}

#[test]
fn a_watch_streams_past_the_header_timeout() {
    let lab = lab();
    let mut watch = connect(&lab);
    watch
        .write_all(
            b"GET /api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=60 HTTP/1.1\r\nHost: lab\r\n\r\n",
        )
        .unwrap();
    // Quiet for several header timeouts, then a change the watch must still deliver.
    std::thread::sleep(HEADER_TIMEOUT * 3);
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after-the-timeout"},"data":{"k":"v"}}"#;
    let mut create = connect(&lab);
    write!(
        create,
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let (created, _) = until_closed(&mut create);
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");

    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("after-the-timeout") {
        assert!(start.elapsed() < PATIENCE, "no event: {}", String::from_utf8_lossy(&got));
        match watch.read(&mut buf) {
            Ok(0) => panic!("the watch was closed: {}", String::from_utf8_lossy(&got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the watch broke: {e}; got {}", String::from_utf8_lossy(&got)),
        }
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains(r#""type":"ADDED""#), "{got}");
}

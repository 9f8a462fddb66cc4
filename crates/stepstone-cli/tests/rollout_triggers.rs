//! Rollback triggers and notices end to end, through the `stepstone` binary on the lab: a webhook
//! receiver (a small HTTP server in the test) gets Slack-compatible JSON on start, halt, each hop
//! and completion; a failing `--smoke` command halts with its output; pods stuck in
//! ContainerCreating on an upgraded node, and a rise of CrashLoopBackOff above the threshold,
//! halt the rollout and roll the node they blame back. The faults are the lab's own (`stepstone lab faults`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::sync::{Arc, Mutex};

use common::{CONSENT, Harness, TestLab, cordoned, kubelet, name, text};
use serde_json::Value;

impl Harness {
    fn start() -> Harness {
        let lab = TestLab::small(300.0, |_| {});
        // The one budget that allows no disruption, fixed as `stepstone blockers` advises.
        lab.scale_redis();
        Harness(lab)
    }

    /// `stepstone rollout --to v1.35 --node-ops lab --yes` with no soak or batch wait, plus
    /// `extra`; `rollout resume` when `extra` starts with `resume`.
    fn rollout(&self, extra: &[&str]) -> Output {
        let (journal, snapshots, report) = (self.path("journal.json"), self.path("snapshots"), self.path("report.md"));
        let mut args = vec!["rollout"];
        let extra = match extra.split_first() {
            Some((&"resume", rest)) => {
                args.push("resume");
                rest
            }
            _ => {
                args.extend(["--to", "v1.35", "--yes", "--canary-soak", "0", "--batch-wait", "0"]);
                args.extend(CONSENT);
                extra
            }
        };
        args.extend(["--node-ops", "lab", "--journal", &journal, "--snapshot-dir", &snapshots, "--report", &report]);
        args.extend(extra);
        self.run(&args)
    }

    /// The canary of the oldest generation in the plan the rollout would run.
    fn first_canary(&self) -> String {
        let mut args = vec!["plan", "--to", "v1.35", "-o", "json", "--canary-soak", "0", "--batch-wait", "0"];
        args.extend(CONSENT);
        let plan = self.run(&args);
        let plan: Value = serde_json::from_slice(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&plan)));
        plan.pointer("/hops/0/waves/0/nodes/0").and_then(Value::as_str).expect("a first wave").to_string()
    }
}

/// A Slack-compatible incoming webhook: every POST's path and JSON body, answered `200 ok`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/services/T000/B000/XXXXSECRET", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, &seen));
            }
        });
        Receiver { url, got }
    }

    fn texts(&self) -> Vec<String> {
        self.got.lock().unwrap().iter().map(|(_, b)| b["text"].as_str().unwrap_or("").to_string()).collect()
    }
}

/// HTTP/1.1 requests on one connection, until the client closes it.
fn serve(stream: TcpStream, seen: &Mutex<Vec<(String, Value)>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let path = request.split(' ').nth(1).unwrap_or("").to_string();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.lock().unwrap().push((format!("{} {path}", request.split(' ').next().unwrap_or("")), body));
        let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok");
    }
}

#[test]
fn the_webhook_hears_start_hop_halt_and_completion_and_a_failing_smoke_halts_with_its_output() {
    let h = Harness::start();
    let hook = Receiver::start();
    let smoke = "echo 'checkout answered 503 Service Unavailable'; exit 3";
    let halted = h.rollout(&["--webhook", &hook.url, "--smoke", smoke]);
    let halted_text = text(&halted);
    assert_eq!(halted.status.code(), Some(1), "the smoke command halts: {halted_text}");
    assert!(halted_text.contains("exit 3") && halted_text.contains("checkout answered 503"), "{halted_text}");
    let journal = h.journal();
    let reason = journal.pointer("/state/reason").and_then(Value::as_str).unwrap_or_default().to_string();
    assert!(reason.contains("checkout answered 503"), "the halt keeps the command's output: {journal:#}");
    assert!(!halted_text.contains("XXXXSECRET"), "the webhook's secret path is never printed");

    let resumed = h.rollout(&["resume", "--webhook", &hook.url, "--smoke", "true"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    for n in h.lab.list("nodes", None) {
        assert!(kubelet(&n) == "v1.35.8" && !cordoned(&n), "{} upgraded and uncordoned", name(&n));
    }
    assert_eq!(kubelet(&h.node("cp-01")), "v1.35.8");
    let report = std::fs::read_to_string(h.path("report.md")).expect("the report");
    assert!(report.contains("checkout answered 503"), "the report shows the smoke failure:\n{report}");

    let got = hook.got.lock().unwrap().clone();
    for (request, body) in &got {
        assert_eq!(request, "POST /services/T000/B000/XXXXSECRET", "{request}");
        let keys: Vec<&String> = body.as_object().expect("a JSON object").keys().collect();
        assert_eq!(keys, ["text"], "Slack's incoming-webhook shape: {body}");
    }
    let texts = hook.texts();
    let position = |what: &str| {
        texts.iter().position(|t| t.contains(what)).unwrap_or_else(|| panic!("a notice with `{what}`: {texts:#?}"))
    };
    let started = position("started");
    let hop = position("hop 1 of 1");
    let halt = position("HALTED");
    let done = position("-> v1.35.8 done");
    let complete = position("complete");
    assert!(started < hop && hop < halt && halt < done && done < complete, "in order: {texts:#?}");
    assert!(texts[halt].contains("checkout answered 503"), "{}", texts[halt]);
}

#[test]
fn pods_stuck_in_container_creating_on_an_upgraded_node_halt_and_roll_it_back() {
    let h = Harness::start();
    let canary = h.first_canary();
    let out = h.run(&["lab", "faults", "--stuck-creating", &format!("node:{canary}")]);
    assert!(out.status.success(), "{}", text(&out));
    let halted = h.rollout(&[]);
    let halted_text = text(&halted);
    assert_eq!(halted.status.code(), Some(1), "{halted_text}");
    assert!(
        halted_text.contains(&format!("pods stuck in ContainerCreating on upgraded node {canary}")),
        "{halted_text}"
    );
    assert!(halted_text.contains(&format!("ROLLED BACK {canary}")), "{halted_text}");
    let node = h.node(&canary);
    assert!(cordoned(&node) && kubelet(&node) == "v1.34.6", "rolled back and held: {node:#}");
    let journal = h.journal();
    let reason = journal.pointer("/state/reason").and_then(Value::as_str).unwrap_or_default();
    assert!(reason.contains("ContainerCreating") && reason.contains(&canary), "{journal:#}");
    let held = journal["holds"][canary.as_str()].as_str().unwrap_or_default();
    assert!(held.contains("ContainerCreating"), "the reason is kept with the hold: {journal:#}");
}

#[test]
fn a_crash_loop_rise_above_the_threshold_halts_and_rolls_the_node_back() {
    let h = Harness::start();
    let canary = h.first_canary();
    // The canary's four DaemonSet pods crash-loop after its kubelet restarts: 4 of 138 pods,
    // about 2.9%, above a 2% threshold.
    let out = h.run(&["lab", "faults", "--crash-loop", &format!("node:{canary}")]);
    assert!(out.status.success(), "{}", text(&out));
    let halted = h.rollout(&["--crash-loop-percent", "2"]);
    let halted_text = text(&halted);
    assert_eq!(halted.status.code(), Some(1), "{halted_text}");
    assert!(halted_text.contains("newly in CrashLoopBackOff"), "{halted_text}");
    assert!(halted_text.contains(&format!("ROLLED BACK {canary}")), "{halted_text}");
    let node = h.node(&canary);
    assert!(cordoned(&node) && kubelet(&node) == "v1.34.6", "rolled back and held: {node:#}");
    let journal = h.journal();
    let reason = journal.pointer("/state/reason").and_then(Value::as_str).unwrap_or_default();
    assert!(reason.contains("CrashLoopBackOff"), "{journal:#}");
}

//! Where the lab must answer as a real API server does, driven by the real `kubectl`: every
//! mutating verb honours `dryRun=All` (the would-be object comes back, nothing changes), and bad
//! input gets the apiserver's status code and message.

mod common;

use common::*;
use serde_json::Value;

fn object(kc: &std::path::Path, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(kc, &full)).expect("kubectl prints JSON")
}

#[test]
fn server_side_dry_run_changes_nothing_for_any_mutating_verb() {
    let (_lab, dir, kc) = start_lab(drain_fleet(), 1.0);
    // Until its pods are Ready the deployment controller keeps writing status, and the replace
    // below would then carry a stale resourceVersion and get a (correct) Conflict.
    kubectl_ok(&kc, &["rollout", "status", "deploy/web", "-n", "shop", "--timeout=120s"]);
    let deploy_before = object(&kc, &["get", "deploy", "web", "-n", "shop"]);
    let node_before = object(&kc, &["get", "node", "w1"]);

    // Each verb answers with the object it would store...
    let scaled = kubectl_ok(&kc, &["scale", "deploy/web", "-n", "shop", "--replicas=7", "--dry-run=server"]);
    assert!(scaled.contains("scaled (server dry run)"), "{scaled}");
    let scale = dir.path().join("scale.json");
    let body = r#"{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","namespace":"shop"},"spec":{"replicas":7}}"#;
    std::fs::write(&scale, body).unwrap();
    let raw = "/apis/apps/v1/namespaces/shop/deployments/web/scale?dryRun=All";
    let scaled: Value =
        serde_json::from_str(&kubectl_ok(&kc, &["replace", "--raw", raw, "-f", scale.to_str().unwrap()])).unwrap();
    assert_eq!(scaled["spec"]["replicas"], 7, "{scaled}");
    let labelled = object(&kc, &["label", "deploy/web", "-n", "shop", "tier=front", "--dry-run=server"]);
    assert_eq!(labelled["metadata"]["labels"]["tier"], "front", "{labelled}");
    let annotated = object(&kc, &["annotate", "deploy/web", "-n", "shop", "note=x", "--dry-run=server"]);
    assert_eq!(annotated["metadata"]["annotations"]["note"], "x", "{annotated}");
    let patched = object(
        &kc,
        &["patch", "deploy/web", "-n", "shop", "-p", r#"{"spec":{"minReadySeconds":9}}"#, "--dry-run=server"],
    );
    assert_eq!(patched["spec"]["minReadySeconds"], 9, "{patched}");
    // The replacement names no resourceVersion: the one read above is several kubectl runs old,
    // and a controller may write the Deployment meanwhile (a real apiserver then answers 409
    // Conflict, as the lab does). Without one, `kubectl replace` and `kubectl diff` each send the
    // version they have just read themselves.
    let mut replacement = deploy_before.clone();
    replacement["spec"]["replicas"] = 5.into();
    replacement["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    let file = dir.path().join("web.json");
    std::fs::write(&file, replacement.to_string()).unwrap();
    let replaced = object(&kc, &["replace", "-f", file.to_str().unwrap(), "--dry-run=server"]);
    assert_eq!(replaced["spec"]["replicas"], 5, "{replaced}");
    let cordon = kubectl_ok(&kc, &["cordon", "w1", "--dry-run=server"]);
    assert!(cordon.contains("cordoned (server dry run)"), "{cordon}");

    // `kubectl diff` is a dry-run patch: it shows the change (exit 1) and stores nothing.
    let out = kubectl(&kc, &["diff", "-f", file.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "diff found the change: {shown}{}", String::from_utf8_lossy(&out.stderr));
    assert!(shown.contains("+  replicas: 5"), "{shown}");

    // ...and nothing changed.
    let deploy_after = object(&kc, &["get", "deploy", "web", "-n", "shop"]);
    // (Controllers write status meanwhile, so the resourceVersion may move; generation may not.)
    assert_eq!(deploy_after["metadata"]["generation"], deploy_before["metadata"]["generation"]);
    assert_eq!(deploy_after["spec"], deploy_before["spec"]);
    assert_eq!(deploy_after["metadata"]["labels"], deploy_before["metadata"]["labels"]);
    assert_eq!(deploy_after["metadata"]["annotations"], deploy_before["metadata"]["annotations"]);
    let node_after = object(&kc, &["get", "node", "w1"]);
    assert_eq!(node_after["spec"].get("unschedulable"), None, "{node_after}");
    assert_eq!(node_after["spec"], node_before["spec"]);

    // The same verbs without the flag do change the object, so the checks above can fail.
    kubectl_ok(&kc, &["scale", "deploy/web", "-n", "shop", "--replicas=3"]);
    assert_eq!(object(&kc, &["get", "deploy", "web", "-n", "shop"])["spec"]["replicas"], 3);
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn numbers_and_quantities_the_decoder_refuses_get_the_apiservers_answer() {
    let (_lab, dir, kc) = start_lab(drain_fleet(), 1.0);
    // A scale beyond int32: kubectl sends a merge patch of the Scale; the patched Scale does not
    // decode, so the apiserver answers 422 naming the Go field.
    let out = kubectl(&kc, &["scale", "deploy/web", "-n", "shop", "--replicas=2147483648"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("is invalid: patch: Invalid value:"), "{err}");
    assert!(
        err.contains(
            "json: cannot unmarshal number 2147483648 into Go struct field ScaleSpec.spec.replicas of type int32"
        ),
        "{err}"
    );
    assert_eq!(object(&kc, &["get", "deploy", "web", "-n", "shop"])["spec"]["replicas"], 2);

    // The same number in a created object: 400, "cannot be handled as".
    let huge = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"huge","namespace":"shop"},
        "spec":{"replicas":2147483648,"selector":{"matchLabels":{"app":"huge"}},
        "template":{"metadata":{"labels":{"app":"huge"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}}"#;
    let file = dir.path().join("huge.json");
    std::fs::write(&file, huge).unwrap();
    let out = kubectl(&kc, &["create", "-f", file.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert!(err.contains("Error from server (BadRequest)"), "{err}");
    assert!(
        err.contains("Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas of type int32"),
        "{err}"
    );

    // Negative quantities fail validation (422); quantities that do not parse fail decoding (400).
    let pod = |name: &str, cpu: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"shop"}},
            "spec":{{"containers":[{{"name":"c","image":"x","resources":{{"requests":{{"cpu":"{cpu}"}}}}}}]}}}}"#
        )
    };
    let file = dir.path().join("negative.json");
    std::fs::write(&file, pod("negative", "-1")).unwrap();
    let err = stderr_of(&kubectl(&kc, &["create", "-f", file.to_str().unwrap()]));
    assert!(
        err.contains(
            "Pod \"negative\" is invalid: spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
        ),
        "{err}"
    );
    std::fs::write(&file, pod("absurd", "lots")).unwrap();
    let err = stderr_of(&kubectl(&kc, &["create", "-f", file.to_str().unwrap()]));
    assert!(
        err.contains("Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression"),
        "{err}"
    );
    let pods = kubectl_ok(&kc, &["get", "pods", "-n", "shop", "-o", "name"]);
    assert!(!pods.contains("negative") && !pods.contains("absurd"), "{pods}");
    let deploys = kubectl_ok(&kc, &["get", "deploy", "-n", "shop", "-o", "name"]);
    assert!(!deploys.contains("huge"), "{deploys}");
}

#[test]
fn list_and_watch_parameters_are_read_as_the_apiserver_reads_them() {
    let (_lab, _dir, kc) = start_lab(drain_fleet(), 1.0);
    let fails = |args: &[&str], expected: &str| {
        let out = kubectl(&kc, args);
        let err = stderr_of(&out);
        assert!(!out.status.success() && err.contains(expected), "kubectl {args:?}: {err}");
    };
    fails(
        &["get", "--raw", "/api/v1/pods?resourceVersion=abc"],
        "invalid resource version: resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax",
    );
    fails(
        &["get", "--raw", "/api/v1/pods?watch=1&timeoutSeconds=soon"],
        "strconv.ParseInt: parsing \"soon\": invalid syntax",
    );
    fails(&["get", "--raw", "/api/v1/pods?limit=ten"], "strconv.ParseInt: parsing \"ten\": invalid syntax");
    fails(
        &["get", "pods", "-A", "-l", "app=-web"],
        "unable to parse requirement: values[0][app]: Invalid value: \"-web\": a valid label must be an empty string",
    );
    fails(
        &["get", "pods", "-A", "--selector=-app=x"],
        "unable to parse requirement: key: Invalid value: \"-app\": name part must",
    );
    // Only `0` and `false` are false for a boolean parameter: `watch=maybe` is a watch, which
    // ends after its timeout with the current pods as ADDED events.
    let stream = kubectl_ok(&kc, &["get", "--raw", "/api/v1/namespaces/shop/pods?watch=maybe&timeoutSeconds=1"]);
    assert!(stream.lines().count() >= 2 && stream.lines().all(|l| l.starts_with("{\"type\":\"ADDED\"")), "{stream}");
    let list = kubectl_ok(&kc, &["get", "--raw", "/api/v1/namespaces/shop/pods?watch=false"]);
    assert!(list.starts_with("{\"kind\":\"PodList\""), "{list}");
}

#[test]
fn kubectl_auth_logs_and_exec_get_clear_answers() {
    let (_lab, _dir, kc) = start_lab(drain_fleet(), 1.0);
    // No RBAC in the lab: every access review is allowed, as for a cluster admin.
    assert_eq!(kubectl_ok(&kc, &["auth", "can-i", "delete", "pods", "-n", "shop"]).trim(), "yes");
    assert_eq!(kubectl_ok(&kc, &["auth", "can-i", "create", "pods/eviction", "-A"]).trim(), "yes");
    let whoami = kubectl_ok(&kc, &["auth", "whoami", "-o", "json"]);
    assert!(whoami.contains("\"username\": \"stepstone-lab\""), "{whoami}");
    let list = kubectl_ok(&kc, &["auth", "can-i", "--list", "-n", "shop"]);
    assert!(list.lines().any(|l| l.starts_with("*.*")), "{list}");

    // logs and exec: a 4xx saying why, not a 404 for a pod that exists.
    let pod = "web-5d8f7c9b6-p0";
    let out = kubectl(&kc, &["logs", "-n", "shop", pod]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("Error from server (BadRequest)") && err.contains("runs no containers"), "{err}");
    assert!(err.contains("no container logs to read"), "{err}");
    let out = kubectl(&kc, &["exec", "-n", "shop", pod, "--", "true"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("runs no containers") || err.contains("400 Bad Request"), "{err}");
    let err = stderr_of(&kubectl(&kc, &["logs", "-n", "shop", "nope"]));
    assert!(err.contains("pods \"nope\" not found"), "{err}");
}

#[test]
fn malformed_list_options_are_refused_with_the_apiservers_messages() {
    let (_lab, _dir, kc) = start_lab(drain_fleet(), 1.0);
    for (path, says) in [
        ("/api/v1/pods?timeoutSeconds=abc", r#"strconv.ParseInt: parsing "abc": invalid syntax"#),
        ("/api/v1/pods?resourceVersion=abc", "invalid resource version"),
        ("/api/v1/pods?labelSelector=app%3Dweb%2C", "found '', expected: identifier after ','"),
        ("/api/v1/pods?labelSelector=app%3Dweb%2C%2Ctier", "found ',', expected: identifier after ','"),
    ] {
        let out = kubectl(&kc, &["get", "--raw", path]);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{path} was accepted: {stdout}");
        assert!(stderr.contains("BadRequest") || stderr.contains("Bad Request"), "{path}: {stderr}");
        assert!(stderr.contains(says), "{path}: {says:?} missing from {stderr}");
    }
    // A well-formed selector with a set still lists.
    let out = kubectl_ok(&kc, &["get", "--raw", "/api/v1/pods?labelSelector=app+in+(web%2Cdb)"]);
    assert!(out.contains("PodList"), "{out}");
}

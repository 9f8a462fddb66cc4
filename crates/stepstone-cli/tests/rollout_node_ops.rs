//! `stepstone rollout --node-ops ssh` against Debian's real sshd, with the lab as the cluster.
//!
//! The design, and what is real: the Kubernetes side is a lab (`examples/small.json`) whose
//! control plane is already on the target, so the rollout's work is the workers. Every worker's
//! InternalIP is mapped, in the ssh config given with `--ssh-config`, to one throwaway sshd on
//! 127.0.0.1 with its own host key and strict host-key checking; the client sends the worker's
//! name along (`SetEnv LAB_NODE=…`, accepted by that sshd), so one server can stand for twelve.
//! The commands go over real ssh as the rollout sends them and run in a real `sh` as root. The
//! sshd runs in a mount namespace of its own with a scratch directory over `/etc/apt`, so the
//! repository switch really writes its keyring and `.list` file there, not on this machine.
//! On its PATH, recording stand-ins take the place of what cannot run here: the package manager
//! (`apt-get`, `apt-mark`), `kubeadm`, `systemctl`, and `curl` (the repository key lives on
//! pkgs.k8s.io, which tests do not reach; the stand-in prints a key file that the real `gpg
//! --dearmor` then writes). Each appends its node and argv to a log and does on the lab node
//! what the real tool does on a server, through `stepstone lab node`: `apt-get install
//! kubelet='1.35.8-*'` installs that package, `kubeadm upgrade node` upgrades the node's
//! configuration, `systemctl restart kubelet` restarts the kubelet, which then reports the new
//! version to the lab's API, where the rollout sees it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{CONSENT, TestLab, control_plane, cordoned, kubelet, name, real, text};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

const TARGET: &str = "v1.35.8";

fn is_worker(n: &Value) -> bool {
    n.pointer("/metadata/labels").and_then(Value::as_object).is_some() && !control_plane(n)
}

fn internal_ip(n: &Value) -> String {
    n.pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .expect("every node of the fleet has an InternalIP")
        .to_string()
}

/// The stand-ins: recording, and doing on the lab node what the real tool does on a server.
const STAND_INS: &[(&str, &str)] = &[
    (
        "apt-get",
        r#"record apt-get "$@"
case "$1" in
  update)
    # The lab offers the packages of the repository kubernetes.list names, as apt's index would.
    repo=$(sed -n 's|.*pkgs\.k8s\.io/core:/stable:/\(v[0-9][0-9.]*\)/deb/.*|\1|p' /etc/apt/sources.list.d/kubernetes.list 2>/dev/null | head -n 1)
    [ -z "$repo" ] || lab repo "$repo" >/dev/null || exit 100
    echo "Reading package lists... Done"; exit 0 ;;
  install) shift ;;
  *) echo "E: the stand-in knows update and install, not $1" >&2; exit 100 ;;
esac
specs=""
for a in "$@"; do
  case "$a" in
    -y|--allow-downgrades) ;;
    *=*) specs="$specs ${a%%=*}=${a#*=}" ;;
    *) echo "E: Version not pinned: $a" >&2; exit 100 ;;
  esac
done
# The lab's repository resolves VERSION-* as apt does; no pathname expansion of the globs here.
set -f
lab install $specs"#,
    ),
    ("apt-mark", r#"record apt-mark "$@"; for p in $(echo "$@" | cut -d' ' -f2-); do echo "$p set to $1."; done"#),
    (
        "kubeadm",
        r#"record kubeadm "$@"
if [ -e "$STANDIN_DIR/fail-kubeadm-$LAB_NODE" ]; then
  echo "[upgrade] FATAL: couldn't upgrade control plane: timed out waiting for the condition" >&2
  exit 1
fi
case "$*" in
  "upgrade node") lab kubeadm upgrade node ;;
  "upgrade apply -y "*) lab kubeadm upgrade apply "$4" -y ;;
  *) echo "kubeadm stand-in: unexpected arguments: $*" >&2; exit 1 ;;
esac"#,
    ),
    (
        "systemctl",
        r#"record systemctl "$@"
case "$*" in
  daemon-reload) ;;
  "restart kubelet") lab restart-kubelet ;;
  *) echo "systemctl stand-in: unexpected arguments: $*" >&2; exit 1 ;;
esac"#,
    ),
    ("curl", r#"record curl "$@"; cat "$STANDIN_DIR/Release.key""#),
];

/// The lab, its plan to the target made while everything ran v1.34.6, and then its control
/// plane moved to the target by hand (`stepstone lab node`), so that what the rollout does is the
/// workers. (A plan made now would have nothing to do: the control plane is on the target.)
struct Cluster(TestLab);

impl std::ops::Deref for Cluster {
    type Target = TestLab;
    fn deref(&self) -> &TestLab {
        &self.0
    }
}

impl Cluster {
    fn start() -> Cluster {
        let lab = TestLab::small(300.0, |_| {});
        lab.scale_redis();
        let mut args = vec!["plan", "--to", TARGET, "-o", "json", "--max-unavailable", "3"];
        args.extend(["--canary-soak", "0", "--batch-wait", "0"]);
        args.extend(CONSENT);
        let plan = lab.run(&args);
        assert!(matches!(plan.status.code(), Some(0 | 1)), "{}", text(&plan));
        std::fs::write(lab.dir.path().join("plan.json"), &plan.stdout).unwrap();
        let cluster = Cluster(lab);
        for (node, kubeadm) in
            [("cp-01", vec!["apply", TARGET, "-y"]), ("cp-02", vec!["node"]), ("cp-03", vec!["node"])]
        {
            let mut steps = vec![vec!["kubeadm".to_string(), "upgrade".into()]];
            steps[0].extend(kubeadm.iter().map(|a| a.to_string()));
            cluster.upgrade_by_hand(node, steps.remove(0));
        }
        cluster
    }

    /// The small fleet on v1.34.6 as it is, with `edit` applied to its fleet first.
    fn fresh(edit: impl FnOnce(&mut Value)) -> Cluster {
        let lab = TestLab::small(300.0, edit);
        lab.scale_redis();
        Cluster(lab)
    }

    /// What an operator runs on `node`, as the lab's node operations.
    fn upgrade_by_hand(&self, node: &str, kubeadm: Vec<String>) {
        let bare = &TARGET[1..];
        let minor = TARGET.rsplit_once('.').expect("vX.Y.Z").0;
        let steps: Vec<Vec<String>> = vec![
            vec!["repo".into(), minor.into()],
            vec!["install".into(), format!("kubeadm={bare}-1.1")],
            kubeadm,
            vec!["install".into(), format!("kubelet={bare}-1.1"), format!("kubectl={bare}-1.1")],
            vec!["restart-kubelet".into()],
        ];
        for step in steps {
            let mut args = vec!["lab", "node", node];
            args.extend(step.iter().map(String::as_str));
            let out = self.run(&args);
            assert!(out.status.success(), "{args:?}: {}", text(&out));
        }
    }

    /// `stepstone rollout ARGS` on this lab with its files in the test's directory.
    fn rollout(&self, args: &[&str]) -> Command {
        let mut cmd = common::stepstone();
        cmd.arg("rollout").args(args).arg("--kubeconfig").arg(&self.kubeconfig);
        cmd.args(["--journal", &self.path("journal.json")]);
        cmd.args(["--snapshot-dir", &self.path("snapshots"), "--report", &self.path("report.md")]);
        cmd
    }

    fn workers(&self) -> Vec<String> {
        self.nodes().iter().filter(|n| is_worker(n)).map(|n| name(n).to_string()).collect()
    }
}

/// [`Cluster`], its workers reached over ssh: the sshd and the stand-ins.
struct Setup {
    cluster: Cluster,
    /// The scratch directory the sessions see as /etc/apt.
    etc_apt: PathBuf,
    ssh_config: PathBuf,
    _sshd: real::Sshd,
}

impl std::ops::Deref for Setup {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Setup {
    fn start() -> Setup {
        Setup::on(Cluster::start())
    }

    /// `cluster`, every node (control plane too) reached over ssh.
    fn on(cluster: Cluster) -> Setup {
        let (dir, kubeconfig) = (&cluster.dir, &cluster.kubeconfig);
        let d = dir.path();
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let prelude = "#!/bin/sh\nrecord() { echo \"$LAB_NODE\t$*\" >> \"$STANDIN_DIR/node-commands.log\"; }\n\
             lab() { \"$STEPSTONE\" lab node \"$LAB_NODE\" \"$@\" --kubeconfig \"$LAB_KUBECONFIG\"; }\n\
             [ -n \"$LAB_NODE\" ] || { echo \"no LAB_NODE: the ssh config maps each node\" >&2; exit 1; }\n";
        for (program, body) in STAND_INS {
            let path = bin.join(program);
            std::fs::write(&path, format!("{prelude}{body}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(d.join("Release.key.bin"), "the pkgs.k8s.io v1.35 release key\n").unwrap();
        let gpg = real::require("gpg", "gpg");
        let armored = Command::new(gpg)
            .args(["--batch", "--enarmor"])
            .stdin(std::fs::File::open(d.join("Release.key.bin")).unwrap())
            .output()
            .unwrap();
        assert!(armored.status.success(), "gpg --enarmor: {}", text(&armored));
        std::fs::write(d.join("Release.key"), &armored.stdout).unwrap();
        let etc_apt = d.join("etc-apt");
        std::fs::create_dir_all(etc_apt.join("sources.list.d")).unwrap();
        std::fs::create_dir(d.join("gnupg")).unwrap();

        let sshd = real::Sshd::start_with(
            &format!(
                "AcceptEnv LAB_NODE\nSetEnv PATH={}:/usr/sbin:/usr/bin:/sbin:/bin STANDIN_DIR={} STEPSTONE={} LAB_KUBECONFIG={} GNUPGHOME={}\n",
                bin.display(),
                d.display(),
                common::stepstone_bin().display(),
                kubeconfig.display(),
                d.join("gnupg").display()
            ),
            &[(&etc_apt, "/etc/apt")],
        );
        // One connection per node, shared by its commands (ControlMaster, keyed by the name
        // the rollout dials: %n), as many sites configure for fleets.
        let mut hosts = String::new();
        for n in cluster.nodes().iter().filter(|n| n.pointer("/status/addresses").is_some()) {
            hosts.push_str(&format!("Host {}\n  HostName 127.0.0.1\n  SetEnv LAB_NODE={}\n", internal_ip(n), name(n)));
        }
        hosts.push_str(&format!(
            "Host *\n  ControlMaster auto\n  ControlPersist 60\n  ControlPath {}/cm-%n\n",
            d.display()
        ));
        let ssh_config = sshd.client_config_with(&sshd.path("known_hosts"), &hosts);
        Setup { cluster, etc_apt, ssh_config, _sshd: sshd }
    }

    fn rollout(&self, args: &[&str]) -> Output {
        let mut cmd = self.cluster.rollout(args);
        cmd.args(["--ssh-config", &self.ssh_config.display().to_string(), "--log-dir", &self.path("ssh-logs")]);
        cmd.output().unwrap()
    }

    /// What each node's stand-ins were asked to do, in order.
    fn recorded(&self) -> BTreeMap<String, Vec<String>> {
        let log = std::fs::read_to_string(self.dir.path().join("node-commands.log")).unwrap_or_default();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in log.lines() {
            let (node, argv) = line.split_once('\t').expect("node<TAB>argv");
            out.entry(node.to_string()).or_default().push(argv.to_string());
        }
        out
    }
}

/// The argv a worker's stand-ins see for its upgrade to `v`, as a shell splits the runbook's lines.
fn upgrade_argv(v: &str) -> Vec<String> {
    let minor: String = v.split('.').take(2).collect::<Vec<_>>().join(".");
    [
        format!("curl -fsSL https://pkgs.k8s.io/core:/stable:/{minor}/deb/Release.key"),
        "apt-get update".into(),
        "apt-mark unhold kubeadm".into(),
        format!("apt-get install -y kubeadm={}-*", &v[1..]),
        "apt-mark hold kubeadm".into(),
        "kubeadm upgrade node".into(),
        "apt-mark unhold kubelet kubectl".into(),
        format!("apt-get install -y kubelet={0}-* kubectl={0}-*", &v[1..]),
        "apt-mark hold kubelet kubectl".into(),
        "systemctl daemon-reload".into(),
        "systemctl restart kubelet".into(),
    ]
    .into()
}

#[test]
fn workers_upgrade_over_real_ssh_and_a_failing_kubeadm_is_rolled_back() {
    let s = Setup::start();
    let workers = s.workers();
    assert_eq!(workers.len(), 12);
    // The oldest generation's canary: kubeadm fails there on the first try.
    std::fs::write(s.dir.path().join("fail-kubeadm-r650-01"), "").unwrap();
    let plan = s.path("plan.json");
    let mut args = vec!["--plan", &plan, "--node-ops", "ssh", "--yes"];
    args.extend(CONSENT);

    let halted = s.rollout(&args);
    let halted_text = text(&halted);
    assert_eq!(halted.status.code(), Some(1), "the failed kubeadm halts the rollout: {halted_text}");
    assert!(halted_text.contains("ROLLED BACK r650-01"), "{halted_text}");
    let canary = s.nodes().into_iter().find(|n| name(n) == "r650-01").unwrap();
    assert!(cordoned(&canary), "the rolled-back node is left cordoned");
    assert_eq!(kubelet(&canary), "v1.34.6", "and runs its old kubelet");
    let journal: Value = serde_json::from_str(&std::fs::read_to_string(s.path("journal.json")).unwrap()).unwrap();
    let reason = journal["holds"]["r650-01"].as_str().unwrap_or_else(|| panic!("r650-01 is held: {journal:#}"));
    assert!(reason.contains("kubeadm upgrade node") && reason.contains("exit 1"), "{reason}");
    assert!(reason.contains("FATAL: couldn't upgrade control plane"), "the node's own message: {reason}");
    let recorded = s.recorded();
    let mut expected: Vec<String> = upgrade_argv(TARGET).into_iter().take(6).collect();
    expected.extend([
        "curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key".to_string(),
        "apt-get update".into(),
        "apt-mark unhold kubeadm kubelet kubectl".into(),
        "apt-get install -y --allow-downgrades kubeadm=1.34.6-* kubelet=1.34.6-* kubectl=1.34.6-*".into(),
        "apt-mark hold kubeadm kubelet kubectl".into(),
        "systemctl daemon-reload".into(),
        "systemctl restart kubelet".into(),
    ]);
    assert_eq!(recorded["r650-01"], expected, "upgrade up to the failing kubeadm, then the rollback");
    for other in workers.iter().filter(|w| w.starts_with("r650-") && *w != "r650-01") {
        assert!(!recorded.contains_key(other), "{other} of the failed canary's generation was not touched");
    }

    std::fs::remove_file(s.dir.path().join("fail-kubeadm-r650-01")).unwrap();
    let resumed = s.rollout(&["resume"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    for n in s.nodes() {
        assert_eq!(kubelet(&n), TARGET, "{} reached the target", name(&n));
        assert!(!cordoned(&n), "{} is not left cordoned", name(&n));
    }
    let recorded = s.recorded();
    for w in &workers {
        let mine = &recorded[w];
        let upgrade = &mine[mine.len() - 11..];
        assert_eq!(upgrade, upgrade_argv(TARGET), "{w}'s upgrade, in order");
    }
    assert_eq!(recorded["r650-01"].len(), 6 + 7 + 11, "the canary: failed try, rollback, second try");
    assert!(!recorded.contains_key("cp-01"), "the control plane was already on {TARGET}");

    // The repository switch really ran on the node: its keyring and .list file.
    let list = std::fs::read_to_string(s.etc_apt.join("sources.list.d/kubernetes.list")).unwrap();
    assert_eq!(
        list,
        "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.35/deb/ /\n"
    );
    let key = std::fs::read(s.etc_apt.join("keyrings/kubernetes-apt-keyring.gpg")).unwrap();
    assert_eq!(key, std::fs::read(s.dir.path().join("Release.key.bin")).unwrap(), "gpg --dearmor wrote the key");
    assert!(
        !Path::new("/etc/apt/sources.list.d/kubernetes.list").exists()
            || std::fs::read_to_string("/etc/apt/sources.list.d/kubernetes.list").unwrap() != list,
        "this machine's own apt was not touched"
    );

    // The lines sent over ssh are the runbook's for the same plan.
    std::fs::write(s.path("plan.json"), journal["plan"].to_string()).unwrap();
    let runbook = common::run(&["runbook", "--plan", &s.path("plan.json"), "--distro", "apt"]);
    assert!(runbook.status.success(), "{}", text(&runbook));
    let runbook = String::from_utf8_lossy(&runbook.stdout);
    let log = std::fs::read_to_string(s.dir.path().join("ssh-logs/r660-01.log")).expect("the node's ssh log");
    for line in [
        "curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.35/deb/Release.key | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg",
        "apt-get install -y kubeadm='1.35.8-*'",
        "kubeadm upgrade node",
        "apt-get install -y kubelet='1.35.8-*' kubectl='1.35.8-*'",
        "systemctl restart kubelet",
    ] {
        assert!(log.contains(line), "sent over ssh: {line}\n{log}");
        assert!(runbook.contains(line), "the runbook prints: {line}");
    }
}

/// A pkgs.k8s.io look-alike on 127.0.0.1 (an ephemeral port): the v1.35 deb repository's
/// `Packages` index with the builds of 1.35.7 and 1.35.8, nothing for other minors. Returns the
/// repository root URL and the paths it was asked for.
fn serve_package_index() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::{StatusCode, Uri};
    use axum::response::IntoResponse;
    let packages = "Package: kubeadm\nVersion: 1.35.7-1.1\n\nPackage: kubeadm\nVersion: 1.35.8-1.1\n\n\
                    Package: kubelet\nVersion: 1.35.8-1.1\n\nPackage: kubectl\nVersion: 1.35.8-1.1\n\n\
                    Package: cri-tools\nVersion: 1.35.0-1.1\n";
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/core:/stable:", listener.local_addr().unwrap());
    let log = asked.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().fallback(move |uri: Uri| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(uri.path().to_string());
                    match uri.path() {
                        "/core:/stable:/v1.35/deb/Packages" => packages.into_response(),
                        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
                    }
                }
            });
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (url, asked)
}

#[test]
fn over_real_ssh_the_workers_install_the_exact_builds_the_repositorys_index_lists() {
    let s = Setup::start();
    let (repository, asked) = serve_package_index();
    let plan = s.path("plan.json");
    let mut args = vec!["--plan", &plan, "--node-ops", "ssh", "--yes", "--distro", "apt"];
    args.extend(["--package-index", &repository]);
    args.extend(CONSENT);
    let out = s.rollout(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        asked.lock().unwrap().iter().any(|p| p == "/core:/stable:/v1.35/deb/Packages"),
        "the index of the target's repository was read: {:?}",
        asked.lock().unwrap()
    );

    // Each worker's package manager got the builds the index lists, not `1.35.8-*`.
    let pinned: Vec<String> = upgrade_argv(TARGET)
        .into_iter()
        .map(|a| a.replace("kubeadm=1.35.8-*", "kubeadm=1.35.8-1.1"))
        .map(|a| a.replace("kubelet=1.35.8-* kubectl=1.35.8-*", "kubelet=1.35.8-1.1 kubectl=1.35.8-1.1"))
        .collect();
    assert_ne!(pinned, upgrade_argv(TARGET));
    let recorded = s.recorded();
    for w in s.workers() {
        assert_eq!(recorded[&w], pinned, "{w}: the upgrade with the index's builds");
    }
    for n in s.nodes() {
        assert_eq!(kubelet(&n), TARGET, "{} reached the target", name(&n));
    }
    // The lines as sent over ssh, quoted as the runbook prints them with the same index.
    let log = std::fs::read_to_string(s.dir.path().join("ssh-logs/r660-01.log")).expect("the node's ssh log");
    let runbook = common::run(&["runbook", "--plan", &plan, "--distro", "apt", "--package-index", &repository]);
    assert!(runbook.status.success(), "{}", text(&runbook));
    let runbook = String::from_utf8_lossy(&runbook.stdout);
    for line in
        ["apt-get install -y kubeadm='1.35.8-1.1'", "apt-get install -y kubelet='1.35.8-1.1' kubectl='1.35.8-1.1'"]
    {
        assert!(log.contains(line), "sent over ssh: {line}\n{log}");
        assert!(runbook.contains(line), "the runbook prints: {line}");
    }
    assert!(!log.contains("1.35.8-*"), "no glob once the index is read:\n{log}");
}

#[test]
fn the_control_plane_hops_etcd_snapshot_is_taken_over_ssh_by_etcdctl_and_a_failed_one_halts_first() {
    real::require("etcdctl", "etcd-client");
    let work = tempfile::tempdir().unwrap();
    // A real etcd on 127.0.0.1 (an ephemeral port) stands for cp-01's member, with some keys.
    let etcd = real::Etcd::start("cp-01", &work.path().join("etcd"));
    for i in 0..5 {
        let out = Command::new("etcdctl")
            .args([&format!("--endpoints={}", etcd.client_url), "put", &format!("/registry/k{i}"), "v"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    // cp-01's etcd static pod says where its member listens and where its data lives: the
    // rollout reads both from there. The node-side directory does not exist yet.
    let node_side = work.path().join("node-side");
    let command = serde_json::json!([
        "etcd",
        format!("--listen-client-urls={}", etcd.client_url),
        format!("--advertise-client-urls={}", etcd.client_url),
        format!("--data-dir={}", node_side.display()),
    ]);
    let cluster = Cluster::fresh(|fleet| {
        for item in fleet["items"].as_array_mut().unwrap() {
            if item["kind"] == "Pod" && item["metadata"]["name"] == "etcd-cp-01" {
                item["spec"]["containers"][0]["command"] = command.clone();
            }
        }
    });
    let s = Setup::on(cluster);
    // kubeadm fails on cp-01, so the run stops right after the snapshot, at the control plane.
    std::fs::write(s.dir.path().join("fail-kubeadm-cp-01"), "").unwrap();
    let mut args = vec!["--to", TARGET, "--node-ops", "ssh", "--yes", "--canary-soak", "0", "--batch-wait", "0"];
    args.extend(CONSENT);

    // etcdctl cannot write its copy on the node: no snapshot, so no kubeadm anywhere.
    let halted = s.rollout(&args);
    let halted_text = text(&halted);
    assert_eq!(halted.status.code(), Some(1), "{halted_text}");
    assert!(halted_text.contains("no etcd snapshot, so no control-plane step"), "{halted_text}");
    assert!(halted_text.contains(&node_side.display().to_string()), "the node's path is named: {halted_text}");
    let recorded = s.recorded();
    assert!(recorded.values().flatten().all(|c| !c.starts_with("kubeadm")), "{recorded:?}");
    assert!(s.nodes().iter().all(|n| !cordoned(n) && kubelet(n) == "v1.34.6"), "nothing was touched");

    // With the directory there, the resume takes the snapshot, then goes on to cp-01's kubeadm.
    std::fs::create_dir(&node_side).unwrap();
    let resumed = s.rollout(&["resume"]);
    let resumed_text = text(&resumed);
    assert_eq!(resumed.status.code(), Some(1), "kubeadm fails on cp-01: {resumed_text}");
    assert!(resumed_text.contains("control-plane node cp-01"), "{resumed_text}");
    let journal: Value = serde_json::from_str(&std::fs::read_to_string(s.path("journal.json")).unwrap()).unwrap();
    let snap = &journal["snapshots"]["0"];
    let path = PathBuf::from(snap["path"].as_str().unwrap_or_else(|| panic!("a snapshot for hop 1: {journal:#}")));
    assert!(path.starts_with(s.path("snapshots")), "{path:?}");
    assert_eq!(snap["metadata"]["method"], "ssh-etcdctl");
    assert_eq!(snap["metadata"]["endpoint"].as_str().map(|e| e.contains(&etcd.client_url)), Some(true), "{snap}");
    assert!(snap["metadata"]["revision"].as_i64().unwrap() >= 6, "the five keys are in it: {snap}");
    for file in [path.clone(), PathBuf::from(format!("{}.json", path.display()))] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    assert!(std::fs::read_dir(&node_side).unwrap().next().is_none(), "the node's copy is removed");
    // The freshness gate accepts it, as `stepstone etcd verify` does.
    let verify =
        common::run(&["etcd", "verify", &path.display().to_string(), "--max-age", "1h", "--label", "before-hop1"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let cp01 = &s.recorded()["cp-01"];
    assert!(cp01.last().is_some_and(|c| c.starts_with("kubeadm upgrade apply")), "{cp01:?}");
}

/// One node's block from `--node-ops manual`: its name and its command lines.
fn manual_blocks(lines: &mut impl Iterator<Item = String>, seen: &mut Vec<String>) -> Option<(String, String)> {
    let header = lines.find(|l| {
        seen.push(l.clone());
        l.starts_with("run on ")
    })?;
    let node = header.trim_start_matches("run on ").split(' ').next().unwrap().to_string();
    let mut commands = String::new();
    for l in lines.by_ref() {
        seen.push(l.clone());
        match l.strip_prefix("    ") {
            Some(c) => {
                commands.push_str(c);
                commands.push('\n');
            }
            None => break,
        }
    }
    Some((node, commands))
}

#[test]
fn manual_prints_each_nodes_commands_and_waits_until_the_node_reports_the_target() {
    use std::io::BufRead;
    let c = Cluster::start();
    let workers = c.workers();
    let plan = c.path("plan.json");
    let mut args = vec!["--plan", &plan, "--node-ops", "manual", "--yes", "--manual-wait", "30m"];
    args.extend(CONSENT);
    let mut child = c.rollout(&args).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    let mut seen = Vec::new();
    let mut done = Vec::new();
    let bash = Command::new("bash").arg("--version").output();
    assert!(bash.is_ok_and(|o| o.status.success()), "bash is installed (Debian package bash)");
    while let Some((node, commands)) = manual_blocks(&mut lines, &mut seen) {
        // Parseable as one shell script, the package pins quoted against the shell's globbing.
        let parsed = Command::new("bash").args(["-n", "-c", &commands]).output().unwrap();
        assert!(parsed.status.success(), "{node}'s commands parse: {}\n{commands}", text(&parsed));
        for line in ["apt-get install -y kubeadm='1.35.8-*'", "kubeadm upgrade node", "systemctl restart kubelet"] {
            assert!(commands.lines().any(|l| l == line), "{node}: `{line}` in\n{commands}");
        }
        // The rollout drained the node and waits for it: still cordoned, still on v1.34.6.
        let n = c.nodes().into_iter().find(|n| name(n) == node).unwrap_or_else(|| panic!("{node} is a node"));
        assert!(cordoned(&n) && kubelet(&n) == "v1.34.6", "{node} waits for the operator: {n:#}");
        assert!(child.try_wait().unwrap().is_none(), "the rollout waits for {node}");
        c.upgrade_by_hand(&node, vec!["kubeadm".into(), "upgrade".into(), "node".into()]);
        done.push(node);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the rollout continued to the end:\n{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l.starts_with("rollout complete")), "{}", seen.join("\n"));
    done.sort();
    assert_eq!(done, workers, "one block per worker");
    for n in c.nodes() {
        assert_eq!(kubelet(&n), TARGET, "{}", name(&n));
        assert!(!cordoned(&n), "{} is uncordoned", name(&n));
    }
}

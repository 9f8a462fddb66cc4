//! Real parts for the integration tests: Debian's `etcd` and `sshd`, started on free loopback
//! ports in temporary directories and stopped when dropped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fail (never skip) when a binary the test needs is missing, naming the Debian package.
pub fn require(binary: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(binary);
        if p.is_file() {
            return p;
        }
    }
    if let Some(p) = stepstone_host::etcd::find_on_path(binary) {
        return p;
    }
    panic!("`{binary}` is not installed: install the Debian package {package} (apt-get install -y {package})");
}

/// A loopback port the kernel has just handed out and taken back. Nothing holds it: another
/// test may take it before the caller binds it, so whoever binds it must try again with a
/// fresh one when it is taken (as [`Etcd::start`] does).
fn fresh_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local addr").port()
}

/// How an etcd start ended.
enum Started {
    Serving,
    /// etcd could not bind a port: someone took it after it was picked.
    PortTaken,
}

/// Wait until the etcd on `client_url` reports itself healthy (it has a leader), or fail with its
/// log. Asking etcd's `/health`, not only connecting, so a port another process took is never
/// mistaken for this etcd.
fn wait_until_serving(client: u16, child: &mut Child, log: &Path) -> Started {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("address already in use") {
                return Started::PortTaken;
            }
            panic!("etcd exited with {status}: {text}");
        }
        if etcd_healthy(client) {
            return Started::Serving;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("etcd did not serve on 127.0.0.1:{client} within 20s: {}", std::fs::read_to_string(log).unwrap_or_default());
}

fn etcd_healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    if conn.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

/// A running etcd member; killed on drop.
pub struct Etcd {
    child: Child,
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    pub data_dir: PathBuf,
}

impl Etcd {
    /// Start a new etcd as member `name` on `data_dir`, on fresh ports.
    pub fn start(name: &str, data_dir: &Path) -> Etcd {
        Etcd::start_prepared(name, data_dir, |_| {})
    }

    /// Start etcd as member `name` on fresh ports, on the `data_dir` that `prepare` writes for a
    /// member advertising the peer URL it is given (an `etcdctl snapshot restore`, which records
    /// that URL in the data). A port can be taken between picking it and etcd binding it (tests
    /// run in parallel, and other programs open connections): etcd then exits, and the start is
    /// tried again from `prepare` on new ports.
    pub fn start_prepared(name: &str, data_dir: &Path, mut prepare: impl FnMut(&str)) -> Etcd {
        let etcd = require("etcd", "etcd-server");
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 && data_dir.exists() {
                std::fs::remove_dir_all(data_dir).expect("remove the data dir of a start that could not bind");
            }
            let (client, peer) = (fresh_port(), fresh_port());
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            prepare(&peer_url);
            let log = data_dir.with_extension("log");
            let log_file = std::fs::File::create(&log).expect("etcd log");
            let child = Command::new(&etcd)
                .args([
                    "--name",
                    name,
                    "--data-dir",
                    &data_dir.display().to_string(),
                    "--listen-client-urls",
                    &client_url,
                    "--advertise-client-urls",
                    &client_url,
                    "--listen-peer-urls",
                    &peer_url,
                    "--initial-advertise-peer-urls",
                    &peer_url,
                    "--initial-cluster",
                    &format!("{name}={peer_url}"),
                ])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("etcd log"))
                .stderr(log_file)
                .spawn()
                .expect("etcd starts");
            let mut e = Etcd { child, name: name.into(), client_url, peer_url, data_dir: data_dir.to_path_buf() };
            match wait_until_serving(client, &mut e.child, &log) {
                Started::Serving => return e,
                Started::PortTaken => continue,
            }
        }
        panic!(
            "etcd could not bind fresh loopback ports in {ATTEMPTS} attempts: see {}",
            data_dir.with_extension("log").display()
        );
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An sshd on 127.0.0.1 with its own host key, a user key and a client config that points at
/// both; stopped on drop.
///
/// The test holds the listening socket itself and starts one `sshd -i` (inetd mode) per
/// connection on it. Picking a free port and handing its number to a daemon would leave the
/// port unbound in between, and on a busy machine another test's listener or outgoing
/// connection can take it: sshd then fails to bind, or the client reaches someone else.
pub struct Sshd {
    listener: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    sessions: Arc<Mutex<Vec<Child>>>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

fn keygen(path: &Path) {
    let keygen = require("ssh-keygen", "openssh-client");
    let out = Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "stepstone-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with("", &[])
    }

    /// As [`Sshd::start`], with `extra` lines in sshd_config and, in a mount namespace of its
    /// own (util-linux `unshare`), each `(directory, path)` bind-mounted over `path`: the
    /// sessions see the directory there, the rest of the machine does not.
    pub fn start_with(extra: &str, mount_over: &[(&Path, &str)]) -> Sshd {
        let sshd = require("sshd", "openssh-server");
        require("ssh", "openssh-client");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for sshd");
        let port = socket.local_addr().expect("local addr").port();
        let config = format!(
            "HostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nUsePAM no\nLogLevel VERBOSE\n{extra}",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        // sshd reads its configuration at the start of each session: check it once now, so a
        // bad one fails here with sshd's own message rather than as refused connections.
        let check = Command::new(&sshd).arg("-t").arg("-f").arg(d.join("sshd_config")).output().expect("sshd -t");
        assert!(check.status.success(), "sshd -t: {}", String::from_utf8_lossy(&check.stderr));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(d.join("sshd.log")).expect("sshd log");
        let session = {
            let config = d.join("sshd_config");
            let mounts: Vec<(PathBuf, String)> =
                mount_over.iter().map(|(dir, p)| (dir.to_path_buf(), p.to_string())).collect();
            move || -> Command {
                if mounts.is_empty() {
                    let mut c = Command::new(&sshd);
                    c.args(["-i", "-e", "-f"]).arg(&config);
                    return c;
                }
                let mut c = Command::new(require("unshare", "util-linux"));
                c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                    .arg("sshd=$0 config=$1; shift; while [ $# -gt 1 ]; do mount --bind \"$1\" \"$2\" || exit 1; shift 2; done; exec \"$sshd\" -i -e -f \"$config\"")
                    .arg(&sshd)
                    .arg(&config);
                for (dir, path) in &mounts {
                    c.arg(dir).arg(path);
                }
                c
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let listener = std::thread::spawn({
            let (stop, sessions) = (stop.clone(), sessions.clone());
            move || {
                for conn in socket.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (Ok(input), Ok(errors)) = (conn.try_clone(), log.try_clone()) else { continue };
                    let child = session()
                        .stdin(Stdio::from(std::os::fd::OwnedFd::from(input)))
                        .stdout(Stdio::from(std::os::fd::OwnedFd::from(conn)))
                        .stderr(errors)
                        .spawn()
                        .expect("sshd -i starts");
                    let mut running = sessions.lock().unwrap();
                    running.retain_mut(|c: &mut Child| matches!(c.try_wait(), Ok(None)));
                    running.push(child);
                }
            }
        });
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {}\n", key.join(" "))).expect("known_hosts");
        Sshd { listener: Some(listener), stop, sessions, port, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A client config for every host: this server's port, the user key, the temp known_hosts.
    pub fn client_config(&self, known_hosts: &Path) -> PathBuf {
        self.client_config_with(known_hosts, "")
    }

    /// The same, with `extra` host blocks first (ssh uses the first value it finds).
    pub fn client_config_with(&self, known_hosts: &Path, extra: &str) -> PathBuf {
        let path = self.path(&format!("ssh_config-{}", known_hosts.file_name().unwrap().to_string_lossy()));
        std::fs::write(
            &path,
            format!(
                "{extra}Host *\n  Port {}\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n",
                self.port,
                self.path("user_key").display(),
                known_hosts.display()
            ),
        )
        .expect("client config");
        path
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Stop accepting (the listener wakes for one last connection and returns), then end the
        // sessions still open (a client's shared master connection outlives its commands).
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
        for mut child in self.sessions.lock().unwrap().drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP port that accepts connections and never says a word: an SSH server that hangs.
pub fn silent_listener(ip: &str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind a silent port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

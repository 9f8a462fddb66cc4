//! Real parts for the integration tests: Debian's `etcd` and `sshd`, started on free loopback
//! ports in temporary directories and stopped when dropped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local addr").port()
}

fn wait_for_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status}: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on 127.0.0.1:{port} within 20s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
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
    /// Start etcd on `data_dir` (new, or restored) as member `name` on fresh ports, or on the
    /// given peer port when restoring a member that advertised it.
    pub fn start(name: &str, data_dir: &Path, peer_port: Option<u16>) -> Etcd {
        let etcd = require("etcd", "etcd-server");
        let (client, peer) = (free_port(), peer_port.unwrap_or_else(free_port));
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = data_dir.with_extension("log");
        let log_file = std::fs::File::create(&log).expect("etcd log");
        let child = Command::new(etcd)
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
        wait_for_port(client, "etcd", &mut e.child, &log);
        e
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running sshd on 127.0.0.1 with its own host key, a user key and a client config that
/// points at both; killed on drop.
pub struct Sshd {
    child: Child,
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
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             UsePAM no\nLogLevel VERBOSE\n{extra}",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        let log = d.join("sshd.log");
        let mut command = if mount_over.is_empty() {
            let mut c = Command::new(sshd);
            c.args(["-D", "-e", "-f"]).arg(d.join("sshd_config"));
            c
        } else {
            let mut c = Command::new(require("unshare", "util-linux"));
            c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg("sshd=$0 config=$1; shift; while [ $# -gt 1 ]; do mount --bind \"$1\" \"$2\" || exit 1; shift 2; done; exec \"$sshd\" -D -e -f \"$config\"")
                .arg(sshd)
                .arg(d.join("sshd_config"));
            for (dir, path) in mount_over {
                c.arg(dir).arg(path);
            }
            c
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("sshd log"))
            .spawn()
            .expect("sshd starts");
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {}\n", key.join(" "))).expect("known_hosts");
        let mut s = Sshd { child, port, dir };
        wait_for_port(port, "sshd", &mut s.child, &log);
        s
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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

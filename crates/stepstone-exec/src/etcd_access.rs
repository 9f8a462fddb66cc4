//! Where a control-plane node's etcd snapshot is taken from over SSH, read from the cluster's own
//! static pods, the way the runbook tells kubeadm's two topologies apart. Stacked etcd (an etcd
//! static pod on the node): the member's loopback client URL, its own CA, certificate and key,
//! and its data directory for the snapshot's node-side copy (kubeadm mounts it into the etcd
//! container, so the `crictl exec` fallback can write there too). External etcd (no etcd pods):
//! the apiserver's `--etcd-servers` and its client certificate. What the pods do not say falls
//! back to kubeadm's defaults. The values come from the cluster: the script that carries them
//! shell-quotes every one ([`RemoteEtcdctl::script`]).

use stepstone_host::etcd::RemoteEtcdctl;

/// One control-plane static pod as the cluster shows it: its node, its `component` label, and its
/// first container's command followed by its args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticPod {
    pub node: String,
    pub component: String,
    pub command: Vec<String>,
}

/// The value of `--name=value` in a command line, when given and not empty.
fn flag<'a>(command: &'a [String], name: &str) -> Option<&'a str> {
    command.iter().find_map(|a| a.strip_prefix(name)?.strip_prefix('=')).filter(|v| !v.is_empty())
}

/// From a comma-separated URL list, the one the node itself dials best: loopback first, else
/// the first; never one with an unexpanded `$(VAR)`.
fn local_url(list: &str) -> Option<String> {
    let urls: Vec<&str> = list.split(',').map(str::trim).filter(|u| !u.is_empty() && !u.contains("$(")).collect();
    let loopback = ["://127.0.0.1", "://localhost", "://[::1]"];
    urls.iter().find(|u| loopback.iter().any(|l| u.contains(l))).or(urls.first()).map(|u| u.to_string())
}

/// How `etcdctl` on `node` reaches etcd, from the static pods of the cluster.
pub fn remote_etcdctl(pods: &[StaticPod], node: &str) -> RemoteEtcdctl {
    let default = RemoteEtcdctl::default();
    let on_node = |component: &str| pods.iter().find(|p| p.node == node && p.component == component);
    let or = |v: Option<&str>, d: &str| v.map_or_else(|| d.to_string(), str::to_string);
    if let Some(etcd) = on_node("etcd") {
        let c = &etcd.command;
        let endpoint = flag(c, "--listen-client-urls")
            .and_then(local_url)
            .or_else(|| flag(c, "--advertise-client-urls").and_then(local_url));
        return RemoteEtcdctl {
            endpoint: endpoint.unwrap_or(default.endpoint),
            cacert: or(flag(c, "--trusted-ca-file"), &default.cacert),
            cert: or(flag(c, "--cert-file"), &default.cert),
            key: or(flag(c, "--key-file"), &default.key),
            remote_dir: or(flag(c, "--data-dir"), &default.remote_dir),
        };
    }
    let external = !pods.iter().any(|p| p.component == "etcd");
    let apiserver = on_node("kube-apiserver").or_else(|| pods.iter().find(|p| p.component == "kube-apiserver"));
    match apiserver {
        Some(api) if external => {
            let c = &api.command;
            RemoteEtcdctl {
                endpoint: flag(c, "--etcd-servers").and_then(local_url).unwrap_or(default.endpoint),
                cacert: or(flag(c, "--etcd-cafile"), &default.cacert),
                cert: or(flag(c, "--etcd-certfile"), "/etc/kubernetes/pki/apiserver-etcd-client.crt"),
                key: or(flag(c, "--etcd-keyfile"), "/etc/kubernetes/pki/apiserver-etcd-client.key"),
                // No etcd data directory on an external-etcd control-plane node.
                remote_dir: "/var/tmp".to_string(),
            }
        }
        _ => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: &str, component: &str, command: &[&str]) -> StaticPod {
        StaticPod {
            node: node.into(),
            component: component.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_stacked_member_is_reached_on_loopback_with_its_own_certificates() {
        let pods = vec![
            pod(
                "cp-01",
                "etcd",
                &[
                    "etcd",
                    "--advertise-client-urls=https://10.0.0.11:2379",
                    "--listen-client-urls=https://10.0.0.11:2379,https://127.0.0.1:2379",
                    "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
                    "--key-file=/etc/kubernetes/pki/etcd/server.key",
                    "--trusted-ca-file=/srv/pki/etcd-ca.crt",
                    "--data-dir=/data/etcd",
                ],
            ),
            pod("cp-01", "kube-apiserver", &["kube-apiserver", "--etcd-servers=https://127.0.0.1:2379"]),
            pod("cp-02", "etcd", &["etcd", "--listen-client-urls=https://127.0.0.1:2379,https://$(HOST_IP):2379"]),
        ];
        let r = remote_etcdctl(&pods, "cp-01");
        assert_eq!(r.endpoint, "https://127.0.0.1:2379");
        assert_eq!(
            (r.cacert.as_str(), r.cert.as_str()),
            ("/srv/pki/etcd-ca.crt", "/etc/kubernetes/pki/etcd/server.crt")
        );
        assert_eq!(r.remote_dir, "/data/etcd");
        // What a member's pod does not say is kubeadm's default; `$(HOST_IP)` is never dialled.
        let r = remote_etcdctl(&pods, "cp-02");
        assert_eq!(r, RemoteEtcdctl::default());
        // A control-plane node without a member of a stacked cluster: kubeadm's defaults.
        assert_eq!(remote_etcdctl(&pods, "cp-09"), RemoteEtcdctl::default());
    }

    #[test]
    fn an_external_etcd_is_reached_as_the_apiserver_reaches_it() {
        let pods = vec![pod(
            "cp-01",
            "kube-apiserver",
            &[
                "kube-apiserver",
                "--etcd-servers=https://10.0.0.50:2379,https://10.0.0.51:2379",
                "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
            ],
        )];
        let r = remote_etcdctl(&pods, "cp-01");
        assert_eq!(r.endpoint, "https://10.0.0.50:2379");
        assert_eq!(r.cacert, "/etc/kubernetes/pki/etcd/ca.crt");
        assert_eq!(r.cert, "/etc/kubernetes/pki/apiserver-etcd-client.crt");
        assert_eq!(r.key, "/etc/kubernetes/pki/apiserver-etcd-client.key");
        assert_eq!(r.remote_dir, "/var/tmp");
        // Another control-plane node reads the same apiserver flags.
        assert_eq!(remote_etcdctl(&pods, "cp-02").endpoint, "https://10.0.0.50:2379");
        // Nothing known: kubeadm's stacked defaults.
        assert_eq!(remote_etcdctl(&[], "cp-01"), RemoteEtcdctl::default());
    }
}

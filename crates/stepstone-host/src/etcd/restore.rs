//! The etcd restore procedure for a kubeadm cluster with stacked etcd, built for this cluster's
//! control-plane nodes: every member is restored from the same snapshot into a fresh data
//! directory with a new cluster token, so no member can rejoin the old cluster by mistake.

use serde::Serialize;

use super::SnapshotMetadata;
use crate::node::shell_quote;

/// One etcd member to restore: the node's name (kubeadm names members after nodes) and the
/// peer URL the member advertises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreMember {
    pub name: String,
    pub peer_url: String,
}

impl RestoreMember {
    /// kubeadm's defaults: member name = node name, peer URL `https://<InternalIP>:2380`.
    pub fn kubeadm(node: &str, ip: &str) -> Self {
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
        RestoreMember { name: node.to_string(), peer_url: format!("https://{host}:2380") }
    }
}

/// `etcdutl` from etcd 3.5 on (`etcdctl snapshot restore` is gone in 3.6), `etcdctl` for 3.4.
pub fn restore_tool(etcd_version: Option<&str>) -> &'static str {
    let minor = etcd_version
        .and_then(|v| v.trim_start_matches('v').split('.').nth(1).map(String::from))
        .and_then(|m| m.parse::<u32>().ok());
    match (etcd_version.and_then(|v| v.trim_start_matches('v').split('.').next()), minor) {
        (Some("3"), Some(m)) if m <= 4 => "etcdctl",
        _ => "etcdutl",
    }
}

/// The argv that restores `snapshot` as `member` of `members` into `data_dir`.
pub fn restore_command(
    tool: &str,
    snapshot: &str,
    member: &RestoreMember,
    members: &[RestoreMember],
    token: &str,
    data_dir: &str,
) -> Vec<String> {
    let initial_cluster = members.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect::<Vec<_>>().join(",");
    vec![
        tool.to_string(),
        "snapshot".into(),
        "restore".into(),
        snapshot.to_string(),
        format!("--name={}", member.name),
        format!("--initial-cluster={initial_cluster}"),
        format!("--initial-cluster-token={token}"),
        format!("--initial-advertise-peer-urls={}", member.peer_url),
        format!("--data-dir={data_dir}"),
    ]
}

/// Who runs a step's commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "on", content = "node")]
pub enum RunOn {
    /// The operator's workstation (where the snapshot is).
    Workstation,
    /// Every control-plane node, the same commands.
    EachControlPlane,
    /// One node, commands specific to it.
    Node(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStep {
    pub title: String,
    pub why: String,
    pub run_on: RunOn,
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    pub snapshot: String,
    pub sha256: String,
    pub revision: i64,
    pub taken_at: jiff::Timestamp,
    pub tool: String,
    pub members: Vec<RestoreMember>,
    pub steps: Vec<RestoreStep>,
    /// What a restore throws away.
    pub lost: Vec<String>,
}

/// Where things go on the nodes.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Directory on each node the snapshot is copied to.
    pub node_snapshot_dir: String,
    pub data_dir: String,
    pub manifests_dir: String,
    pub pki_dir: String,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            node_snapshot_dir: "/var/lib/etcd-restore".into(),
            data_dir: "/var/lib/etcd".into(),
            manifests_dir: "/etc/kubernetes/manifests".into(),
            pki_dir: "/etc/kubernetes/pki/etcd".into(),
        }
    }
}

/// Build the procedure. `members` are the control-plane nodes, in the order to bring them back.
pub fn restore_plan(
    meta: &SnapshotMetadata,
    snapshot_path: &str,
    members: &[RestoreMember],
    options: &RestoreOptions,
) -> RestorePlan {
    let tool = restore_tool(meta.etcd_version.as_deref());
    let stamp = meta.taken_at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let token = format!("etcd-restore-{stamp}");
    let node_file = format!("{}/{}", options.node_snapshot_dir, meta.file);
    let restored = format!("{}-restored-{stamp}", options.data_dir);
    let before = format!("{}-before-restore-{stamp}", options.data_dir);
    let stopped = format!("{}-stopped", options.manifests_dir);
    let q = |s: &str| shell_quote(s);
    let pki = &options.pki_dir;
    let etcdctl_tls =
        [format!("--cacert={pki}/ca.crt"), format!("--cert={pki}/server.crt"), format!("--key={pki}/server.key")]
            .iter()
            .map(|f| q(f))
            .collect::<Vec<_>>()
            .join(" ");

    let mut steps = vec![
        RestoreStep {
            title: "Verify the snapshot".into(),
            why: "Restoring a damaged snapshot turns an outage into data loss.".into(),
            run_on: RunOn::Workstation,
            commands: vec![
                format!("stepstone etcd verify {}", q(snapshot_path)),
                format!("echo {} | sha256sum -c -", q(&format!("{}  {}", meta.sha256, snapshot_path))),
            ],
        },
        RestoreStep {
            title: "Copy the snapshot to every control-plane node".into(),
            why: "Every member is restored from the same file.".into(),
            run_on: RunOn::Workstation,
            commands: members
                .iter()
                .flat_map(|m| {
                    [
                        format!("ssh -- {} {}", q(&m.name), q(&format!("install -d -m 700 {}", q(&options.node_snapshot_dir)))),
                        format!("scp -- {} {}", q(snapshot_path), q(&format!("{}:{}", m.name, node_file))),
                        format!(
                            "ssh -- {} {}",
                            q(&m.name),
                            q(&format!("echo {} | sha256sum -c -", q(&format!("{}  {}", meta.sha256, node_file))))
                        ),
                    ]
                })
                .collect(),
        },
        RestoreStep {
            title: "Stop the API servers and etcd on every control-plane node".into(),
            why: "Moving the static pod manifests away makes the kubelet stop them, so nothing writes to etcd while it is replaced."
                .into(),
            run_on: RunOn::EachControlPlane,
            commands: vec![
                format!("mkdir -p {}", q(&stopped)),
                format!("mv {}/*.yaml {}/", q(&options.manifests_dir), q(&stopped)),
                "while crictl ps -q --name 'kube-apiserver|etcd' | grep -q .; do sleep 2; done".into(),
            ],
        },
    ];
    for m in members {
        steps.push(RestoreStep {
            title: format!("Restore member {} into a new data directory", m.name),
            why: "Each member gets its own name and peer URL; the new cluster token keeps it from talking to any old member."
                .into(),
            run_on: RunOn::Node(m.name.clone()),
            commands: vec![
                restore_command(tool, &node_file, m, members, &token, &restored)
                    .iter()
                    .map(|a| q(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            ],
        });
    }
    steps.extend([
        RestoreStep {
            title: "Swap the data directories".into(),
            why: "The old data stays on disk until the restored cluster is confirmed healthy.".into(),
            run_on: RunOn::EachControlPlane,
            commands: vec![
                format!("mv {} {}", q(&options.data_dir), q(&before)),
                format!("mv {} {}", q(&restored), q(&options.data_dir)),
            ],
        },
        RestoreStep {
            title: "Start etcd on every control-plane node and wait for quorum".into(),
            why: "The API servers must only start against a healthy etcd. If this restore undoes a kubeadm upgrade, \
                  first put back the previous manifests from /etc/kubernetes/tmp/kubeadm-backup-manifests-*/ \
                  and downgrade kubeadm/kubelet."
                .into(),
            run_on: RunOn::EachControlPlane,
            commands: vec![
                format!("mv {}/etcd.yaml {}/", q(&stopped), q(&options.manifests_dir)),
                "systemctl restart kubelet".into(),
                format!("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 {etcdctl_tls} endpoint health --cluster"),
            ],
        },
        RestoreStep {
            title: "Start the rest of the control plane".into(),
            why: "kube-apiserver, kube-controller-manager and kube-scheduler come back on the restored state.".into(),
            run_on: RunOn::EachControlPlane,
            commands: vec![
                format!("mv {}/*.yaml {}/", q(&stopped), q(&options.manifests_dir)),
                "systemctl restart kubelet".into(),
            ],
        },
        RestoreStep {
            title: "Check the cluster".into(),
            why: "Confirm every member, node and system pod before reopening the cluster to users.".into(),
            run_on: RunOn::Workstation,
            commands: vec![
                "kubectl get --raw='/readyz?verbose'".into(),
                "kubectl get nodes -o wide".into(),
                "kubectl -n kube-system get pods -o wide".into(),
                format!(
                    "ssh -- {} {}",
                    q(members.first().map(|m| m.name.as_str()).unwrap_or("<control-plane node>")),
                    q(&format!("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 {etcdctl_tls} endpoint status --cluster -w table"))
                ),
                format!("# when all is well, on each control-plane node: rm -rf {}", q(&before)),
            ],
        },
    ]);
    RestorePlan {
        snapshot: snapshot_path.to_string(),
        sha256: meta.sha256.clone(),
        revision: meta.revision,
        taken_at: meta.taken_at,
        tool: tool.to_string(),
        members: members.to_vec(),
        steps,
        lost: vec![
            format!(
                "every change written to the cluster after {} (revision {}): objects created, changed or deleted since are back to their state at that moment",
                meta.taken_at, meta.revision
            ),
            "pods the restored state does not know are stopped by their kubelets; controllers recreate what the restored objects ask for"
                .into(),
            "leases and node heartbeats restart, so nodes may show NotReady briefly and leader elections re-run".into(),
            "the cluster's history (old revisions, watches) restarts: clients with watches re-list".into(),
        ],
    }
}

impl RestorePlan {
    /// The procedure as numbered text for a terminal or a runbook.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "etcd restore procedure\n  snapshot  {}\n  sha256    {}\n  taken at  {} (revision {})\n  members   {}\n  tool      {}\n\n",
            self.snapshot,
            self.sha256,
            self.taken_at,
            self.revision,
            self.members.iter().map(|m| format!("{} ({})", m.name, m.peer_url)).collect::<Vec<_>>().join(", "),
            self.tool
        );
        for (i, step) in self.steps.iter().enumerate() {
            let on = match &step.run_on {
                RunOn::Workstation => "on your workstation".to_string(),
                RunOn::EachControlPlane => "on every control-plane node".to_string(),
                RunOn::Node(n) => format!("on {n}"),
            };
            out.push_str(&format!("{}. {} ({on})\n   {}\n", i + 1, step.title, step.why));
            for c in &step.commands {
                out.push_str(&format!("     {c}\n"));
            }
            out.push('\n');
        }
        out.push_str("What is lost:\n");
        for l in &self.lost {
            out.push_str(&format!("  - {l}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: Option<&str>) -> SnapshotMetadata {
        SnapshotMetadata {
            api_version: stepstone_core::API_VERSION.into(),
            kind: super::super::METADATA_KIND.into(),
            file: "etcd-prod-20260822T100000Z.db".into(),
            cluster: "prod".into(),
            sha256: "ab".repeat(32),
            size_bytes: 20512,
            revision: 4242,
            total_keys: 900,
            hash: 7,
            etcd_version: version.map(String::from),
            endpoint: "https://10.0.0.1:2379".into(),
            method: "grpc".into(),
            taken_at: "2026-08-22T10:00:00Z".parse().unwrap(),
            label: None,
        }
    }

    #[test]
    fn the_tool_follows_the_etcd_version() {
        assert_eq!(restore_tool(Some("3.4.23")), "etcdctl");
        assert_eq!(restore_tool(Some("3.5.16")), "etcdutl");
        assert_eq!(restore_tool(Some("3.6.4")), "etcdutl");
        assert_eq!(restore_tool(None), "etcdutl");
    }

    #[test]
    fn three_member_plan() {
        let members = vec![
            RestoreMember::kubeadm("cp-1", "10.0.0.1"),
            RestoreMember::kubeadm("cp-2", "10.0.0.2"),
            RestoreMember::kubeadm("cp-3", "fd00::3"),
        ];
        let plan = restore_plan(
            &meta(Some("3.5.16")),
            "/backup/etcd-prod-20260822T100000Z.db",
            &members,
            &RestoreOptions::default(),
        );
        insta::assert_snapshot!(plan.to_text());
    }
}

//! `stepstone inventory`: the node table and a summary per hardware generation.

use std::collections::BTreeSet;
use std::process::ExitCode;

use stepstone_core::inventory::{CgroupVersion, Inventory, Node};

use crate::output::{OutputArgs, OutputFormat, Table, emit, emit_json_split};
use crate::source::SourceArgs;

/// Show the nodes of a cluster: versions, OS, kernel, runtime, resources, conditions, and a
/// summary per hardware generation.
///
/// `-o json|yaml` prints the whole inventory (nodes, pods, PDBs, workload controllers,
/// control-plane components), the document every other command reads.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone inventory --snapshot cluster.json
  stepstone inventory --kubeconfig admin.conf --context prod
  stepstone inventory --example small -o json
  kubectl get nodes,pods,pdb,deploy,rs,sts,ds,pv,pvc -A -o json > cluster.json && stepstone inventory --snapshot cluster.json")]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut inv = args.source.load()?;
    if args.output.output == OutputFormat::Json {
        // The pods are nearly all of the document: serialised on every core.
        let pods = std::mem::take(&mut inv.pods);
        emit_json_split(std::io::stdout().lock(), "Inventory", &inv, "pods", &pods)?;
        inv.pods = pods;
    } else {
        emit(args.output.output, "Inventory", &inv, || render(&inv))?;
    }
    // The process ends right after this: freeing a large inventory object by object (hundreds
    // of thousands of strings and maps at 5,000 nodes) would only delay the exit, the kernel
    // takes the memory back at once.
    std::mem::forget(inv);
    Ok(ExitCode::SUCCESS)
}

/// Memory for people: GiB with one decimal.
fn gib(bytes: u64) -> String {
    format!("{:.1}Gi", bytes as f64 / f64::from(1u32 << 30))
}

fn cpu(millis: u64) -> String {
    stepstone_core::quantity::format_cpu(millis)
}

fn cgroup(c: Option<CgroupVersion>) -> &'static str {
    match c {
        Some(CgroupVersion::V1) => "v1",
        Some(CgroupVersion::V2) => "v2",
        None => "?",
    }
}

/// Conditions as kubectl summarises them: Ready or NotReady, then any pressure condition that
/// is true, then SchedulingDisabled for a cordoned node.
fn conditions(n: &Node) -> String {
    let mut out = vec![if n.ready { "Ready".to_string() } else { "NotReady".to_string() }];
    for c in &n.conditions {
        if c.kind != "Ready" && c.status == "True" {
            out.push(c.kind.clone());
        }
    }
    if n.unschedulable {
        out.push("SchedulingDisabled".to_string());
    }
    out.join(",")
}

fn runtime(n: &Node) -> String {
    n.container_runtime.replace("://", " ")
}

fn joined<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let set: BTreeSet<&str> = values.filter(|v| !v.is_empty()).collect();
    if set.is_empty() { "-".to_string() } else { set.into_iter().collect::<Vec<_>>().join(", ") }
}

fn render(inv: &Inventory) -> String {
    let mut out = format!("Cluster: {}\n", inv.source);
    if let Some(cp) = inv.control_plane_version() {
        out.push_str(&format!("Control plane: {cp}\n"));
    }
    out.push('\n');
    let mut t = Table::new([
        "NAME",
        "ROLE",
        "GENERATION",
        "KUBELET",
        "KUBE-PROXY",
        "OS",
        "KERNEL",
        "RUNTIME",
        "ARCH",
        "CGROUP",
        "CPU",
        "MEMORY",
        "CONDITIONS",
    ]);
    for n in &inv.nodes {
        t.row([
            n.name.clone(),
            n.role.to_string(),
            n.generation.clone(),
            n.kubelet_version.to_string(),
            n.kube_proxy_version.as_ref().map_or("-".to_string(), ToString::to_string),
            n.os_image.clone(),
            n.kernel_version.clone(),
            runtime(n),
            n.architecture.clone(),
            cgroup(n.cgroup).to_string(),
            cpu(n.allocatable.cpu_millis),
            gib(n.allocatable.memory_bytes),
            conditions(n),
        ]);
    }
    out.push_str(&t.render());
    out.push('\n');

    let mut g = Table::new([
        "GENERATION",
        "NODES",
        "CONTROL-PLANE",
        "READY",
        "KUBELET",
        "KERNEL",
        "OS",
        "RUNTIME",
        "CGROUP",
        "CPU",
        "MEMORY",
    ]);
    for (generation, nodes) in inv.generations() {
        let cpu_total: u64 = nodes.iter().map(|n| n.allocatable.cpu_millis).sum();
        let mem_total: u64 = nodes.iter().map(|n| n.allocatable.memory_bytes).sum();
        let kubelets: BTreeSet<_> = nodes.iter().map(|n| n.kubelet_version.clone()).collect();
        let runtimes: Vec<String> = nodes.iter().map(|n| runtime(n)).collect();
        g.row([
            generation.to_string(),
            nodes.len().to_string(),
            nodes.iter().filter(|n| n.is_control_plane()).count().to_string(),
            nodes.iter().filter(|n| n.ready).count().to_string(),
            kubelets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            joined(nodes.iter().map(|n| n.kernel_version.as_str())),
            joined(nodes.iter().map(|n| n.os_image.as_str())),
            joined(runtimes.iter().map(String::as_str)),
            joined(nodes.iter().map(|n| cgroup(n.cgroup))),
            cpu(cpu_total),
            gib(mem_total),
        ]);
    }
    out.push_str(&g.render());
    out.push_str(&format!(
        "\n{} nodes, {} pods, {} PodDisruptionBudgets, {} workload controllers\n",
        inv.nodes.len(),
        inv.pods.len(),
        inv.pdbs.len(),
        inv.workloads.len()
    ));
    out
}

//! `stepstone lab`: run a virtual bare-metal cluster on 127.0.0.1 that real `kubectl` can drive
//! (`lab up`), generate fleets to run it with (`lab generate`), and operate its nodes as over
//! SSH (`lab nodes`, `lab node`, `lab faults`, in [`super::lab_node`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use stepstone_fleet::{FleetSpec, write_pretty_json};
use stepstone_lab::{FaultConfig, Lab, LabClient, LabOptions};

use super::{lab_life, lab_node};
use crate::output::{OutputArgs, emit};

/// A virtual bare-metal cluster that speaks the Kubernetes API, for rehearsing upgrades.
///
/// `lab up` loads a fleet (a `kubectl get … -o json` List such as examples/three-generations.json,
/// a snapshot of your own cluster, or the output of `lab generate`) and serves it on 127.0.0.1
/// with simulated kubelets, scheduler and controllers, so `kubectl get/cordon/drain/scale` and
/// stepstone itself behave as against a real cluster. `lab generate` writes a synthetic fleet.
/// `lab nodes`, `lab node NODE ...` and `lab faults` do on a running lab what you would do over
/// SSH on the servers: read node facts, install packages, run `kubeadm upgrade`, restart kubelets.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab up --fleet examples/three-generations.json --kubeconfig ./lab.kubeconfig
  kubectl --kubeconfig ./lab.kubeconfig get nodes -o wide
  stepstone lab nodes --kubeconfig ./lab.kubeconfig
  stepstone lab node cp-01 repo v1.35
  stepstone lab node cp-01 install kubeadm=1.35.0-1.1
  stepstone lab node cp-01 kubeadm upgrade apply v1.35.0
  stepstone lab node cp-01 restart-kubelet --wait
  stepstone lab faults --error-rate 0.05
  stepstone lab generate --nodes 500 --generations 3 --utilization 0.8 > fleet.json")]
pub struct Args {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    Up(UpArgs),
    Status(lab_life::StatusArgs),
    Down(lab_life::DownArgs),
    Generate(GenerateArgs),
    Nodes(lab_node::NodesArgs),
    Node(lab_node::NodeArgs),
    Faults(lab_node::FaultsArgs),
}

/// Serve a fleet on 127.0.0.1 until Ctrl-C (or in the background with -d, until `lab down`).
///
/// Writes a kubeconfig pointing at the lab (plain HTTP on loopback, no credentials) and prints the
/// address. Each lab has a name (--name, default `lab`) and a state directory
/// (`$XDG_RUNTIME_DIR/stepstone/labs/NAME`, else `~/.local/state/stepstone/labs/NAME`) where it
/// records itself while it serves; `lab status` lists the labs and `lab down --name NAME` stops
/// one. Durations run --speed times faster than the wall clock (pod start-up, grace periods,
/// kubelet restarts, reboots) while timestamps stay on it, so kubectl's ages read true. Node operations (package installs,
/// `kubeadm upgrade`, kubelet restarts) and fault injection are served under /lab/v1/.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab up --fleet examples/small.json
  stepstone lab up -d --fleet examples/small.json --name staging
  stepstone lab up --fleet cluster.json --port 6443 --speed 60 --kubeconfig ./lab.kubeconfig
  stepstone lab up --fleet fleet.json --error-rate 0.05 --latency-ms 20")]
pub struct UpArgs {
    /// The fleet to load: a kubectl List in JSON.
    #[arg(long, value_name = "FILE")]
    pub fleet: PathBuf,

    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Lab seconds per wall-clock second: at 60 a 30 s grace period lasts half a second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,

    /// Where to write the kubeconfig for the lab (default: ./lab.kubeconfig for the lab named
    /// `lab`, which the other `lab` commands read by default; the lab's state directory for any
    /// other name). Never over the kubeconfig of a lab that is still running, nor over another
    /// cluster's; KUBECONFIG is not read here, so `lab up` cannot replace your own kubeconfig.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The lab's name, so several labs can run side by side.
    #[arg(long, default_value = lab_life::DEFAULT_NAME)]
    pub name: String,

    /// Run in the background: return once the lab is ready; `lab down` stops it.
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Seed for generated names, UIDs and fault dice.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,

    /// Share of API requests answered 500 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,

    /// Share of API requests answered 429 throttling (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,

    /// Milliseconds added to every API request.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Share of watches cut mid-stream within a second of starting (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub drop_watch_rate: f64,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Write a synthetic fleet (nodes, pods, PDBs and workloads as a kubectl List) to stdout.
///
/// Nodes are split evenly over hardware generations (the oldest on cgroup v1), about 30 pods per
/// node at the requested CPU utilization, with Deployments, StatefulSets, DaemonSets and PDBs.
/// The same arguments always give the same file.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone lab generate --nodes 500 --generations 3 --utilization 0.8 > fleet.json
  stepstone lab generate --nodes 1000 --seed 7 --out fleet-1000.json")]
pub struct GenerateArgs {
    /// Total nodes, control plane included (3 control-plane nodes when there are enough).
    #[arg(long, default_value_t = 50)]
    pub nodes: usize,

    /// Hardware generations.
    #[arg(long, default_value_t = 3)]
    pub generations: usize,

    /// Share of worker CPU requested by pods, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.7)]
    pub utilization: f64,

    /// Seed for names and placement (default: derived from --nodes).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        LabCommand::Up(a) => up(a),
        LabCommand::Status(a) => lab_life::status(a),
        LabCommand::Down(a) => lab_life::down(a),
        LabCommand::Generate(a) => generate_fleet(a),
        LabCommand::Nodes(a) => lab_node::nodes(a),
        LabCommand::Node(a) => lab_node::node(a),
        LabCommand::Faults(a) => lab_node::faults(a),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Started {
    url: String,
    kubeconfig: PathBuf,
    speed: f64,
    loaded: std::collections::BTreeMap<String, usize>,
    skipped: std::collections::BTreeMap<String, usize>,
}

fn up(a: UpArgs) -> anyhow::Result<ExitCode> {
    if !stepstone_lab::SPEED_RANGE.contains(&a.speed) {
        return Err(crate::exit::usage(format!(
            "--speed {} must be between {} and {} (1 = real time, 60 = a minute per second)",
            a.speed,
            stepstone_lab::SPEED_RANGE.start(),
            stepstone_lab::SPEED_RANGE.end()
        )));
    }
    lab_node::check_latency(a.latency_ms)?;
    lab_life::check_name(&a.name)?;
    if a.detach {
        return lab_life::detach(&a.name, &a.output);
    }
    let state_dir = lab_life::state_dir(&a.name)?;
    let kubeconfig = match &a.kubeconfig {
        Some(k) => k.clone(),
        None if a.name == lab_life::DEFAULT_NAME => PathBuf::from("./lab.kubeconfig"),
        None => state_dir.join("kubeconfig"),
    };
    if let Some(parent) = kubeconfig.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| crate::exit::usage(format!("--kubeconfig {}: {e}", kubeconfig.display())))?;
    }
    // Opened here so that a missing fleet is named before anything else; the lab reads it item
    // by item as it loads (a large fleet's text or tree is never held whole).
    std::fs::File::open(&a.fleet)
        .map_err(|e| crate::exit::usage(format!("cannot read --fleet {}: {e}", a.fleet.display())))?;
    refuse_to_overwrite(&kubeconfig)?;
    if let Some(r) = lab_life::read_record(&state_dir).filter(|r| lab_life::alive(r.pid)) {
        return Err(crate::exit::usage(format!(
            "a lab named {} is already running (pid {}, {}); stop it with `stepstone lab down --name {}`, or start this one with another --name",
            a.name, r.pid, r.url, a.name
        )));
    }
    let faults = FaultConfig {
        error_rate: a.error_rate,
        throttle_rate: a.throttle_rate,
        latency_ms: a.latency_ms,
        drop_watch_rate: a.drop_watch_rate,
        ..Default::default()
    };
    faults
        .validate()
        .map_err(|e| crate::exit::usage(format!("fault flags: {}", e.message_with(lab_node::fault_flag))))?;
    let opts = LabOptions {
        port: a.port,
        speed: a.speed,
        kubeconfig: Some(kubeconfig.clone()),
        faults,
        seed: a.seed,
        ..Default::default()
    };
    let fleet_name = a.fleet.display().to_string();
    let format = a.output.output;
    let name = a.name.clone();
    crate::exit::block_on(async move {
        let lab = Lab::start(stepstone_lab::Fleet::File(a.fleet.clone()), opts).await.map_err(|e| match e {
            stepstone_lab::LabError::Faults(why) => {
                crate::exit::usage(format!("fault flags: {}", why.message_with(lab_node::fault_flag)))
            }
            stepstone_lab::LabError::Bind { .. }
            | stepstone_lab::LabError::Kubeconfig { .. }
            | stepstone_lab::LabError::Runtime(_) => anyhow::Error::new(e),
            stepstone_lab::LabError::Read { source, .. } => {
                crate::exit::usage(format!("cannot read --fleet {fleet_name}: {source}"))
            }
            other => crate::exit::usage(format!("--fleet {fleet_name}: {other}")),
        })?;
        let started = Started {
            url: lab.url(),
            kubeconfig: kubeconfig.clone(),
            speed: a.speed,
            loaded: lab.load.loaded.clone(),
            skipped: lab.load.skipped.clone(),
        };
        emit(format, "LabStarted", &started, || {
            let count = |k: &str| started.loaded.get(k).copied().unwrap_or(0);
            let mut text = format!(
                "lab serving {} ({} nodes, {} pods, {} PDBs; speed x{})\n",
                started.url,
                count("Node"),
                count("Pod"),
                count("PodDisruptionBudget"),
                started.speed
            );
            for (kind, n) in &started.skipped {
                text.push_str(&format!("skipped {n} {kind} (not served by the lab)\n"));
            }
            text.push_str(&format!("kubeconfig written to {}\n", started.kubeconfig.display()));
            text.push_str(&format!("  kubectl --kubeconfig {} get nodes -o wide\n", started.kubeconfig.display()));
            text.push_str(&format!(
                "  stepstone lab nodes --kubeconfig {}   (node operations; Ctrl-C stops the lab)\n",
                started.kubeconfig.display()
            ));
            text.push_str(&format!("lab {name} ready\n"));
            text
        })?;
        std::io::stdout().flush()?;
        let absolute = std::path::absolute(&kubeconfig).unwrap_or_else(|_| kubeconfig.clone());
        let record = lab_life::LabRecord {
            name: name.clone(),
            pid: std::process::id(),
            url: lab.url(),
            port: lab.addr.port(),
            kubeconfig: absolute,
            nodes: started.loaded.get("Node").copied().unwrap_or(0),
            speed: started.speed,
            fleet: fleet_name.clone(),
        };
        lab_life::write_record(&state_dir, &record)?;
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        let why = tokio::select! {
            r = tokio::signal::ctrl_c() => { r.context("waiting for Ctrl-C")?; "Ctrl-C" }
            _ = terminate.recv() => "SIGTERM",
        };
        eprintln!("{why}: stopping lab {name}");
        lab.shutdown().await;
        lab_life::remove_record(&state_dir, record.pid);
        eprintln!("lab {name} stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `lab up` writes its kubeconfig where there is none, or over a lab's whose lab has stopped:
/// never over the kubeconfig of a lab that still answers (its users would lose it), nor over
/// any other cluster's kubeconfig.
fn refuse_to_overwrite(path: &std::path::Path) -> anyhow::Result<()> {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => t,
        _ => return Ok(()),
    };
    if !text.contains("current-context: stepstone-lab") {
        return Err(crate::exit::usage(format!(
            "--kubeconfig {shown} exists and is not a lab's kubeconfig; `lab up` does not overwrite it: pass another --kubeconfig FILE"
        )));
    }
    let running = crate::exit::block_on(async {
        let client = LabClient::from_kubeconfig(path, None).await.ok()?;
        let client = client.with_timeout(std::time::Duration::from_secs(3));
        client.clock().await.ok().map(|_| client.url().to_string())
    });
    match running {
        Some(url) => Err(crate::exit::usage(format!(
            "--kubeconfig {shown} belongs to the lab still running at {url}; stop that lab first (Ctrl-C where it runs), or start this one with another --kubeconfig FILE"
        ))),
        None => Ok(()),
    }
}

/// The largest fleet `lab generate` writes: 20,000 nodes are some 600,000 pods, several GB of
/// JSON, well past what the lab (or a laptop) serves.
pub const MAX_GENERATED_NODES: usize = 20_000;
/// More hardware generations than any site has; the generator names them from a catalogue.
const MAX_GENERATIONS: usize = 64;

fn generate_fleet(a: GenerateArgs) -> anyhow::Result<ExitCode> {
    if !(1..=MAX_GENERATED_NODES).contains(&a.nodes) {
        return Err(crate::exit::usage(format!(
            "--nodes {} must be between 1 and {MAX_GENERATED_NODES} (about 30 pods each)",
            a.nodes
        )));
    }
    if a.generations == 0 || a.generations > MAX_GENERATIONS {
        return Err(crate::exit::usage(format!("--generations must be between 1 and {MAX_GENERATIONS}")));
    }
    if !(0.0..=1.0).contains(&a.utilization) {
        return Err(crate::exit::usage(format!(
            "--utilization {} must be between 0.0 and 1.0 (0.8 = 80% of CPU requested)",
            a.utilization
        )));
    }
    let mut spec = FleetSpec::synthetic(a.nodes, a.generations, a.utilization);
    if let Some(seed) = a.seed {
        spec.seed = seed;
    }
    // Written object by object: a 5,000-node fleet is 700 MB of text, never held whole.
    match &a.out {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            write_pretty_json(&spec, &mut out)
                .and_then(|()| out.flush())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            write_pretty_json(&spec, &mut out).and_then(|()| out.flush())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

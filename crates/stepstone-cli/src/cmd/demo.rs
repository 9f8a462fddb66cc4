//! `stepstone demo`: the whole story in one command, without a cluster. An embedded lab runs
//! the three-generation example fleet at high speed; the rollout takes it to v1.35; the oldest
//! generation's canary fails on 1.35 (cgroup v1), is rolled back and held; the demo then does
//! what the operator would (that generation's servers moved to cgroup v2) and resumes to the end.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use stepstone_core::drain::DrainOptions;
use stepstone_core::plan::{self, PlanRequest};
use stepstone_core::releases::ReleaseData;
use stepstone_exec::cluster::{ClusterApi, KubeCluster};
use stepstone_exec::engine::{Engine, EngineConfig, Outcome};
use stepstone_exec::events::{Clock, RolloutEvent, SystemClock};
use stepstone_exec::journal::{Journal, JournalFile};
use stepstone_exec::lab::LabBackend;
use stepstone_exec::lease::Identity;
use stepstone_kube::drain::DrainConfig;
use stepstone_lab::{Lab, LabOptions};

const FLEET: &str = include_str!("../../../../examples/three-generations.json");

/// Run the whole upgrade of the bundled three-generation fleet on an embedded lab, with a
/// canary failure, its automatic rollback, the operator's fix and the resumed rollout.
///
/// Needs no cluster and no arguments; finishes in a few minutes. Everything it writes (the
/// lab's kubeconfig, journal, etcd snapshots, report) goes to a fresh directory under the
/// system's temporary directory, printed at the start.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stepstone demo
  stepstone demo --speed 1200      # faster, on a fast machine")]
pub struct Args {
    /// Lab seconds per wall-clock second in the embedded lab (how much faster its durations pass).
    #[arg(long, default_value_t = 600.0)]
    pub speed: f64,
}

fn say(text: &str) {
    println!("\n==> {text}");
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed >= 1.0) {
        return Err(crate::exit::usage(format!("--speed {} must be a number of at least 1", args.speed)));
    }
    crate::exit::block_on(demo(args.speed))
}

async fn demo(speed: f64) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let dir = std::env::temp_dir().join(format!("stepstone-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("lab.kubeconfig");
    say(&format!("starting an embedded lab: examples/three-generations.json at x{speed} (files in {})", dir.display()));
    let fleet: serde_json::Value = serde_json::from_str(FLEET)?;
    let lab =
        Lab::start(fleet, LabOptions { speed, kubeconfig: Some(kubeconfig.clone()), ..Default::default() }).await?;
    println!("lab serving {} (kubectl --kubeconfig {} get nodes)", lab.url(), kubeconfig.display());

    let conn = stepstone_kube::connect(Some(&kubeconfig), None).await?;
    let cluster = KubeCluster { drain_client: conn.unretried.clone(), conn };

    say("the operator's fixes for the blockers `stepstone blockers` names");
    let deployments: Api<Deployment> = Api::namespaced(cluster.conn.client.clone(), "prod");
    deployments.patch("redis", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}}))).await?;
    println!("kubectl scale -n prod deploy/redis --replicas=3     (prod/redis-pdb allowed no disruption)");
    println!(
        "--delete-emptydir-data --delete-unmanaged-pods --allow-local-storage-loss (caches, a debug pod, kafka and loki data that waits for its node)"
    );
    let drain = DrainOptions {
        delete_emptydir_data: true,
        delete_unmanaged: true,
        allow_local_storage_loss: true,
        ..DrainOptions::default()
    };

    let inv = cluster.inventory().await?;
    let now = jiff::Timestamp::now();
    let mut request = PlanRequest::new("v1.35".parse()?, now.round(jiff::Unit::Minute)?);
    request.drain = drain.clone();
    let plan =
        plan::make_plan(&inv, &request, ReleaseData::embedded()).map_err(|e| crate::exit::usage(e.to_string()))?;
    say(&format!(
        "plan: {} -> {} in {} hops; canary soak {}m, batch wait {}m (lab time)",
        plan.from,
        plan.to,
        plan.hops.len(),
        plan.policy.canary_soak_minutes,
        plan.policy.batch_wait_minutes
    ));

    let backend = Arc::new(LabBackend::new(&lab.url()).await?);
    let engine = Engine {
        cluster: Arc::new(cluster),
        backend: backend.clone(),
        // As `rollout` against a lab: soaks and batch waits last their lab minutes, compressed
        // by the lab's speed; timestamps are the wall clock's on both sides.
        clock: Arc::new(SystemClock { speed: lab.speed() }) as Arc<dyn Clock>,
        notifier: None,
        sink: Arc::new(|e: &RolloutEvent| println!("{}", e.text())),
        file: JournalFile::new(dir.join("stepstone-rollout.json")),
        config: EngineConfig {
            snapshot_dir: dir.join("etcd-snapshots"),
            drain: DrainConfig { rules: drain.clone(), wait_replacements: false, ..EngineConfig::default().drain },
            poll: Duration::from_secs_f64((0.05 * speed).max(5.0)),
            report: Some(dir.join("stepstone-rollout-report.md")),
            ..EngineConfig::default()
        },
        identity: Identity::current(),
    };
    let id = format!("demo-{}", now.strftime("%Y%m%dT%H%M%SZ"));
    let mut journal = Journal::new(id, inv.source.clone(), "lab".into(), plan, now);
    journal.drain_options = Some(drain);
    say("stepstone rollout --to v1.35 --node-ops lab --yes");
    let first = engine.run(&mut journal, false).await?;
    let held: Vec<String> = journal.holds.keys().cloned().collect();
    if let Outcome::Halted(reason) = &first {
        say(&format!("the rollout halted: {reason}"));
    }
    if held.is_empty() {
        say(&format!("ended without a rolled-back canary: {first:?}"));
        return finish(&engine, &journal, began, &lab.url());
    }
    // The operator's fix: the failed canary's generation runs cgroup v1, which kubelet 1.35
    // refuses. Their servers get an OS release on cgroup v2 and a reboot.
    let inv = engine.cluster.inventory().await?;
    let generation = inv.node(&held[0]).map(|n| n.generation.clone()).unwrap_or_default();
    let servers: Vec<String> =
        inv.nodes.iter().filter(|n| n.generation == generation).map(|n| n.name.clone()).collect();
    say(&format!(
        "the operator's fix: {} servers ({}) move to an OS release on cgroup v2 and reboot",
        generation,
        servers.len()
    ));
    let refresh = stepstone_lab::OsRefresh { cgroup_version: Some("v2".into()), ..Default::default() };
    // One server at a time, each back Ready before the next reboots, as an operator would.
    for n in &servers {
        backend.client().os_refresh(n, &refresh).await?;
        println!("stepstone lab node {n} os refresh --cgroup v2 --wait");
        wait_ready(&*engine.cluster, n).await?;
    }
    journal.holds.clear();
    say("stepstone rollout resume");
    let second = engine.run(&mut journal, true).await?;
    if second != Outcome::Complete {
        say(&format!("the resumed rollout did not complete: {second:?}"));
        return Ok(ExitCode::from(crate::exit::FINDINGS));
    }
    finish(&engine, &journal, began, &lab.url())
}

/// Until `node` reports Ready again after its reboot (a minute of real time at most).
async fn wait_ready(cluster: &dyn ClusterApi, node: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.node_status(node).await?.ready {
        if Instant::now() > deadline {
            anyhow::bail!("{node} did not come back Ready within a minute after its OS refresh");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn finish(engine: &Engine, journal: &Journal, began: Instant, url: &str) -> anyhow::Result<ExitCode> {
    let drains = journal.drains_per_node();
    say(&format!(
        "done in {:.0}s: {} -> {} on {} nodes ({} drains), lab {url}",
        began.elapsed().as_secs_f64(),
        journal.plan.from,
        journal.plan.to,
        drains.len(),
        drains.values().sum::<usize>()
    ));
    if let Some(report) = &engine.config.report {
        println!("report: {}", report.display());
    }
    Ok(if journal.state == stepstone_exec::RolloutState::Complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FINDINGS)
    })
}

//! Where the inventory comes from: snapshot files, a live cluster, or the bundled example.

use std::path::PathBuf;

use anyhow::Context;
use stepstone_core::inventory::Inventory;
use stepstone_core::snapshot::{self, SnapshotOptions};

use crate::exit::usage;

/// The bundled example fleets, embedded so the first command works without a cluster.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("three-generations", include_str!("../../../examples/three-generations.json")),
    ("small", include_str!("../../../examples/small.json")),
];

/// Flags that choose the cluster to read, shared by every command that needs an inventory.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Snapshot file(s) or directories (kubectl `-o json` output or `stepstone snapshot`).
    /// Repeatable. Without --snapshot and --kubeconfig, the bundled example fleet is used.
    #[arg(long, value_name = "FILE|DIR")]
    pub snapshot: Vec<PathBuf>,

    /// Read a live cluster through this kubeconfig.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Use a bundled example fleet instead of a cluster: three-generations or small.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["snapshot", "kubeconfig"])]
    pub example: Option<String>,

    /// Node label keys that name the hardware generation, tried in order.
    /// Default: node.kubernetes.io/instance-type, then stepstone.io/hardware-generation.
    #[arg(long = "generation-label", value_name = "KEY")]
    pub generation_labels: Vec<String>,
}

impl SourceArgs {
    pub fn options(&self) -> SnapshotOptions {
        let mut opts = SnapshotOptions::default();
        if !self.generation_labels.is_empty() {
            opts.generation_labels = self.generation_labels.clone();
        }
        opts
    }

    /// Load the inventory from whichever source was chosen.
    pub fn load(&self) -> anyhow::Result<Inventory> {
        let opts = self.options();
        if !self.snapshot.is_empty() {
            return snapshot::load_paths(&self.snapshot, &opts).map_err(|e| usage(e.to_string()));
        }
        if let Some(kubeconfig) = &self.kubeconfig
            && self.example.is_none()
        {
            return crate::exit::block_on(stepstone_kube::collect::collect_inventory(
                Some(kubeconfig.as_path()),
                self.context.as_deref(),
                &opts,
            ))
            .with_context(|| format!("reading the cluster through {}", kubeconfig.display()));
        }
        let name = self.example.as_deref().unwrap_or("three-generations");
        let (_, text) = EXAMPLES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| usage(format!("unknown example '{name}': choose one of three-generations, small")))?;
        if self.example.is_none() {
            eprintln!("note: no --snapshot or --kubeconfig given; using the bundled example fleet '{name}'");
        }
        snapshot::load_str(&format!("examples/{name}.json"), text, &opts).map_err(|e| usage(e.to_string()))
    }
}

//! `stepstone drain`: not built yet.

use std::process::ExitCode;

/// (not available yet)
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(crate::exit::usage("'stepstone drain' is not available in this build"))
}

/// (not available yet)
#[derive(Debug, clap::Args)]
pub struct UncordonArgs {}

pub fn run_uncordon(_args: UncordonArgs) -> anyhow::Result<ExitCode> {
    Err(crate::exit::usage("'stepstone uncordon' is not available in this build"))
}

//! `stepstone staging`: not built yet.

use std::process::ExitCode;

/// (not available yet)
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(crate::exit::usage("'stepstone staging' is not available in this build"))
}

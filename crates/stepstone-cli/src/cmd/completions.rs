//! `stepstone completions`: shell completion scripts generated from the same definitions as `--help`.

use std::process::ExitCode;

/// Print a shell completion script.
///
/// Example: `stepstone completions bash > /etc/bash_completion.d/stepstone`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: Args, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    clap_complete::generate(args.shell, &mut command, "stepstone", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

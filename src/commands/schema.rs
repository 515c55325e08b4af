//! `schema` and `completions`: what editors and shells need to know about creem-batch.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::Outcome;

/// Prints the campaign file's JSON Schema (committed as `campaigns/campaign.schema.json`).
pub fn schema() -> anyhow::Result<Outcome> {
    let text = serde_json::to_string_pretty(&crate::campaign::json_schema())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(Outcome::Success)
}

/// Prints the completion script for one shell.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, name, &mut stdout);
    stdout.flush()?;
    Ok(Outcome::Success)
}

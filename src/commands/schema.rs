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
    let script = completion_script(args.shell);
    // Written here rather than by clap_complete, which panics on a closed stdout.
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(script.as_bytes())?;
    stdout.flush()?;
    Ok(Outcome::Success)
}

/// The script clap_complete generates, repaired for a binary name with a hyphen.
pub fn completion_script(shell: clap_complete::Shell) -> String {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name.clone(), &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    if shell != clap_complete::Shell::Bash {
        return script;
    }
    // clap_complete's bash script sets `cmd` from the name with `-` as `__`
    // (`creem__batch__subcmd__run`) but labels the cases with `-` as `__subcmd__`
    // (`creem__subcmd__batch__subcmd__run`): no case matches, and no subcommand option is
    // ever offered. Labelling the cases like `cmd` repairs it; once clap fixes this upstream
    // the wrong form no longer appears and this changes nothing.
    let wrong = name.replace('-', "__subcmd__");
    let right = name.replace('-', "__");
    script.replace(&wrong, &right)
}

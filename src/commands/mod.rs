//! One module per command; `dispatch` routes the parsed command line to them.

use crate::cli::{Cli, Command};
use crate::exit::Outcome;

mod check;
mod export;
mod init;
mod reconcile;
mod report;
mod run;
mod run_preflight;
mod run_summary;
mod sandbox;
mod schema;
mod shared;
mod status;
mod verify_redirect;

pub fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Sandbox(args) => sandbox::run(args),
        Command::VerifyRedirect(args) => verify_redirect::run(args),
        Command::Init(args) => init::run(args),
        Command::Schema => schema::schema(),
        Command::Completions(args) => schema::completions(args),
        Command::Check(args) => {
            shared::not_customers_file(&args.campaign, "check")?;
            check::run(args)
        }
        Command::Run(args) => {
            shared::not_customers_file(&args.campaign, "run")?;
            run::run(args)
        }
        Command::Export(args) => export::run(args),
        Command::Status(args) => status::run(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Report(args) => report::run(args),
    }
}

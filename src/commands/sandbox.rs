use crate::cli::SandboxArgs;
use crate::exit::Outcome;

pub fn run(_args: SandboxArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("not implemented yet")
}

use crate::cli::VerifyRedirectArgs;
use crate::exit::Outcome;

pub fn run(_args: VerifyRedirectArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("not implemented yet")
}

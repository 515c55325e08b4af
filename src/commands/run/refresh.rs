//! `run --reissue expired`'s first step: which checkouts expired is Creem's to say.

use std::path::PathBuf;

use crate::campaign::SendSettings;
use crate::cli::{RunArgs, StatusArgs};
use crate::commands::status::fetch::{apply, fetch};
use crate::conversion::is_final;
use crate::ledger::{self, Status};

/// `run --reissue expired`'s first step: the open checkouts' statuses fetched into the ledger
/// (as a plain `status` would), so the rows that expired since are known. Stops the run when
/// the key is rejected, the pass was interrupted, or nothing could be fetched.
pub(super) async fn refresh(
    run: &RunArgs,
    output: PathBuf,
    settings: SendSettings,
) -> anyhow::Result<()> {
    let args = StatusArgs {
        target: output.clone(),
        by: None,
        all: false,
        offline: false,
        only_open: false,
        quiet: run.quiet,
        json: false,
        host: run.host.clone(),
        key: run.key.clone(),
        send: run.send.clone(),
    };
    let _lock = ledger::Lock::acquire(&output)?;
    ledger::take_rescued(&output)?; // checkouts an earlier run could not write
    let mut records = ledger::read_all(&output)?;
    let to_fetch: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.status == Status::Created
                && !r.checkout_id.is_empty()
                && !is_final(&r.checkout_status)
        })
        .map(|(i, _)| i)
        .collect();
    if to_fetch.is_empty() {
        return Ok(());
    }
    let pass = fetch(&args, &settings, &output, &records, &to_fetch).await?;
    if let Some(reason) = pass.abort {
        anyhow::bail!("refreshing the statuses before re-issuing: {reason}; nothing was sent");
    }
    if pass.interrupted {
        anyhow::bail!("interrupted while refreshing the statuses; nothing was sent");
    }
    let applied = apply(&mut records, pass.deliveries);
    if applied.fetched == 0 {
        anyhow::bail!(
            "no checkout status could be fetched from {} (first error: {}); nothing was sent (--no-refresh uses the ledger's)",
            pass.target,
            applied.errors.first().map_or("none", |(_, e)| e.as_str())
        );
    }
    if applied.changed {
        ledger::write_all(&output, &records)?;
    }
    let expired = records
        .iter()
        .filter(|r| r.status == Status::Created && r.checkout_status == "expired")
        .count();
    eprintln!(
        "refreshed {} of {} open checkout(s) from {}: {expired} expired in all",
        applied.fetched,
        to_fetch.len(),
        pass.target
    );
    Ok(())
}

//! `creem-batch sandbox`: serve the local Creem stand-in until Ctrl-C or SIGTERM.

use std::io::Write;

use anyhow::Context;

use crate::cli::SandboxArgs;
use crate::exit::Outcome;
use crate::sandbox::{MerchantConfig, Sandbox, SandboxConfig};

pub fn run(args: SandboxArgs) -> anyhow::Result<Outcome> {
    if !args.listen.ip().is_loopback() && !args.public {
        anyhow::bail!(
            "refusing to listen on {}: not a loopback address (pass --public to expose the \
             sandbox to the network)",
            args.listen
        );
    }
    let config = SandboxConfig::try_from(&args)?;
    let merchant = MerchantConfig::try_from(&args)?;
    let webhook_url = merchant.webhook.as_ref().map(|hook| hook.url.clone());
    let threads = args
        .threads
        .map_or_else(crate::sandbox::default_threads, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let sandbox = Sandbox::start_with(args.listen, config, merchant)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let stop = stop_signal()?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "creem sandbox listening on {}", sandbox.base_url())?;
        if let Some(url) = webhook_url {
            writeln!(stdout, "webhooks: checkout.completed events go to {url}")?;
        }
        stdout.flush()?;
        stop.await;
        let stats = sandbox.stats();
        sandbox.shutdown().await;
        let duplicates = stats
            .created_per_request_id
            .values()
            .filter(|&&n| n > 1)
            .count();
        eprintln!(
            "creem sandbox stopped: {} requests, {} checkouts created, {} request_ids created more \
             than once, {} throttled, {} failed, {} dropped, {} webhooks delivered, {} given up",
            stats.requests,
            stats.created,
            duplicates,
            stats.throttled,
            stats.failed,
            stats.dropped + stats.dropped_after_create,
            stats.webhooks_delivered,
            stats.webhooks_given_up,
        );
        Ok(Outcome::Success)
    })
}

/// Resolves on Ctrl-C or SIGTERM. Built before the "listening" line is printed, so a script
/// that signals as soon as it reads that line is never met by the default (abrupt) handler.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut signals = crate::platform::StopSignals::install()?;
    Ok(async move { signals.recv().await })
}

//! Pieces every command that talks to Creem uses the same way (`run`, `status`): the runtime,
//! the `--rate/--concurrency/...` overrides, and Ctrl-C handling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::campaign::{parse_duration, parse_max_rate, parse_rate, SendSettings};
use crate::cli::SendArgs;

/// The async runtime of one command.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    // One thread drives every request: HTTP on loopback or to Creem is cheap next to the
    // cross-thread wake-ups a multi-threaded runtime pays per request.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Command-line flags win over the campaign's `send:` section.
pub fn apply_send_flags(send: &mut SendSettings, flags: &SendArgs) -> anyhow::Result<()> {
    let usage = |e: String| anyhow::anyhow!(e);
    if let Some(rate) = &flags.rate {
        send.rate = parse_rate(rate).map_err(usage)?;
    }
    if let Some(max_rate) = &flags.max_rate {
        send.max_rate = parse_max_rate(max_rate).map_err(|e| anyhow::anyhow!("--max-rate: {e}"))?;
    }
    if let Some(burst) = flags.burst {
        anyhow::ensure!(burst >= 1, "--burst must be at least 1");
        send.burst = burst;
    }
    if let Some(concurrency) = flags.concurrency {
        anyhow::ensure!(concurrency >= 1, "--concurrency must be at least 1");
        send.concurrency = concurrency;
    }
    if let Some(attempts) = flags.max_attempts {
        anyhow::ensure!(attempts >= 1, "--max-attempts must be at least 1");
        send.max_attempts = attempts;
    }
    if let Some(timeout) = &flags.timeout {
        send.timeout = parse_duration(timeout).map_err(usage)?;
    }
    Ok(())
}

/// First Ctrl-C or SIGTERM: stop starting requests and finish cleanly. Second: exit now.
///
/// The handlers are installed here, before any request starts, and each stream lives for the
/// whole run: a signal that comes before the task first runs, or between the first and the
/// second, is then still seen (instead of killing the process or being lost).
pub fn watch_signals(
    stop: tokio_util::sync::CancellationToken,
    interrupted: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut signals = crate::platform::StopSignals::install()?;
    tokio::spawn(async move {
        for round in 0..2 {
            signals.recv().await;
            if round == 0 {
                interrupted.store(true, Ordering::SeqCst);
                stop.cancel();
                eprintln!("\ninterrupted: finishing the requests in flight and writing the output (Ctrl-C again to quit at once)");
            }
        }
        eprintln!("quitting at once; the output file keeps every row finished so far");
        std::process::exit(130);
    });
    Ok(())
}

/// Is `path` a campaign file (rather than an output CSV)?
pub fn is_campaign_file(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// `text` as one shell word, quoted only when it needs to be (for resume commands).
pub fn shell_word(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:@=".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `run x.csv` (or `check x.csv`) is the most common first mistake: the customers file given
/// where the campaign belongs. Say what to do instead of a YAML error about CSV text.
pub fn not_customers_file(path: &std::path::Path, command: &str) -> anyhow::Result<()> {
    const DATA: [&str; 6] = ["csv", "tsv", "txt", "xlsx", "xls", "ods"];
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let Some(extension) = extension.filter(|e| DATA.contains(&e.as_str())) else {
        return Ok(());
    };
    let kind = if extension == "csv" || extension == "tsv" || extension == "txt" {
        "a CSV"
    } else {
        "a workbook"
    };
    let campaign = path.with_extension("yaml");
    let file = shell_word(&path.display().to_string());
    if campaign.is_file() {
        anyhow::bail!(
            "{} is {kind}, the customers file; `{command}` takes the campaign YAML: \
             did you mean `creem-batch {command} {}`?",
            path.display(),
            shell_word(&campaign.display().to_string())
        );
    }
    anyhow::bail!(
        "{} is {kind}, the customers file; `{command}` takes a campaign YAML: \
         did you mean `creem-batch init {file}`? (it writes one beside the file)",
        path.display()
    )
}

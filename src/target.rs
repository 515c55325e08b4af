//! Which Creem host a run talks to, with which key, and the checks that make the wrong
//! combination impossible: a test key never reaches the live host, a live key never the test
//! host, and plain http only stays on this machine.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::api_key::{load_api_key, ApiKey, KeyKind};
use crate::cli::{HostArgs, KeyArgs};
use crate::sandbox::{MerchantConfig, Sandbox, SandboxConfig};

pub const LIVE_HOST: &str = "https://api.creem.io";
pub const TEST_HOST: &str = "https://test-api.creem.io";

/// The host, the key, and the in-process sandbox when `--sandbox` started one.
pub struct Target {
    pub base_url: String,
    pub key: ApiKey,
    pub live: bool,
    pub sandbox: Option<Sandbox>,
}

impl Target {
    /// A short name for messages: "the sandbox", "the test host", "LIVE https://api.creem.io".
    /// Credentials in the URL (`user:pass@`) are shown as `***`, like the key.
    pub fn describe(&self) -> String {
        let url = redact_url(&self.base_url);
        if self.sandbox.is_some() {
            format!("the built-in sandbox at {url}")
        } else if self.live {
            format!("LIVE {url}")
        } else {
            format!("test host {url}")
        }
    }
}

impl Target {
    /// What the ledger records as this target: `sandbox` for any sandbox on this machine
    /// (its port changes from run to run), else `test:HOST` or `live:HOST`.
    pub fn label(&self) -> String {
        label_of(&self.base_url, self.sandbox.is_some(), self.live)
    }
}

fn label_of(base_url: &str, sandbox: bool, live: bool) -> String {
    if sandbox || is_loopback(base_url) {
        return "sandbox".to_owned();
    }
    let host = url::Url::parse(base_url).ok().and_then(|url| {
        let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    });
    let host = host.unwrap_or_else(|| redact_url(base_url));
    format!("{}:{host}", if live { "live" } else { "test" })
}

/// The target a ledger holds checkouts of: its recorded `target`, else `sandbox` for an older
/// ledger whose checkout links point to this machine; `None` when it cannot tell.
pub fn of_ledger(recorded: Option<&str>, first_checkout_url: Option<&str>) -> Option<String> {
    match (recorded, first_checkout_url) {
        (Some(target), _) if !target.is_empty() => Some(target.to_owned()),
        (_, Some(url)) if is_loopback(url) => Some("sandbox".to_owned()),
        _ => None,
    }
}

/// Refuses to mix targets in one ledger: links from a sandbox that is gone, or test
/// checkouts, must never be taken for live ones (or be skipped as "already created").
/// `remedy` says what to do instead, and what was not done.
pub fn refuse_mixed(
    ledger: &Path,
    recorded: Option<&str>,
    target: &str,
    remedy: &str,
) -> anyhow::Result<()> {
    match recorded {
        Some(recorded) if recorded != target => anyhow::bail!(
            "{} holds checkouts of {}, not of {}: one output file holds one target's checkouts; {remedy}",
            ledger.display(),
            crate::escape::escape_control(&describe_label(recorded)),
            describe_label(target),
        ),
        _ => Ok(()),
    }
}

/// `sandbox` -> "the sandbox"; `live:api.creem.io` -> "LIVE api.creem.io"; `test:h` -> "test host h".
pub fn describe_label(label: &str) -> String {
    match label.split_once(':') {
        _ if label == "sandbox" => "the sandbox (sandbox)".to_owned(),
        Some(("live", host)) => format!("LIVE {host} ({label})"),
        Some(("test", host)) => format!("test host {host} ({label})"),
        _ => format!("`{label}`"),
    }
}

/// Where `run --sandbox` writes by default: beside the real output, so that a rehearsal never
/// occupies it. `spring.results.csv` -> `spring.sandbox.results.csv`, `x.csv` -> `x.sandbox.csv`.
pub fn sandbox_output(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sandboxed = if let Some(stem) = name.strip_suffix(".results.csv") {
        format!("{stem}.sandbox.results.csv")
    } else if let Some((stem, ext)) = name.rsplit_once('.').filter(|(stem, _)| !stem.is_empty()) {
        format!("{stem}.sandbox.{ext}")
    } else {
        format!("{name}.sandbox")
    };
    output.with_file_name(sandboxed)
}

/// Resolves the host and key; starts the sandbox for `--sandbox` (no key needed then).
pub async fn resolve(host: &HostArgs, key: &KeyArgs) -> anyhow::Result<Target> {
    let loaded = load_api_key(key)?;
    if host.sandbox {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        // Strict about bodies, as Creem is, but knowing the campaign's own products and codes:
        // a rehearsal of the user's campaign must not stop on ids no catalogue here holds.
        let sandbox =
            Sandbox::start_with(addr, SandboxConfig::default(), MerchantConfig::rehearsal())
                .await?;
        return Ok(Target {
            base_url: sandbox.base_url(),
            key: loaded.unwrap_or_else(|| ApiKey::new("creem_test_sandbox")),
            live: false,
            sandbox: Some(sandbox),
        });
    }
    let base_url = match &host.base_url {
        Some(url) => check_base_url(url)?,
        None if host.live => LIVE_HOST.to_owned(),
        None => TEST_HOST.to_owned(),
    };
    let Some(key) = loaded else {
        anyhow::bail!(
            "no API key: set CREEM_API_KEY or pass --api-key-file FILE (or use --sandbox or --dry-run, which need none)"
        );
    };
    check_pairing(&base_url, &key, host.live)?;
    Ok(Target {
        base_url,
        key,
        live: host.live,
        sandbox: None,
    })
}

/// Refuses a key of the wrong kind for the host, and the live host without `--live`.
fn check_pairing(base_url: &str, key: &ApiKey, live: bool) -> anyhow::Result<()> {
    let kind = key.kind();
    if let Some(message) = kind.not_creem_message() {
        anyhow::bail!(message);
    }
    if live && kind == KeyKind::Test {
        anyhow::bail!(
            "--live needs a live API key, but the key is a test key ({key}); nothing was sent"
        );
    }
    if !live && kind == KeyKind::Live {
        anyhow::bail!(
            "the key is not a test key but a live key ({key}), and the target is the test host; add --live to use a live key; nothing was sent"
        );
    }
    if !live && is_live_host(base_url) {
        anyhow::bail!(
            "{} is the live host ({LIVE_HOST}): add --live to send there; nothing was sent",
            redact_url(base_url)
        );
    }
    if live && is_same_host(base_url, TEST_HOST) {
        anyhow::bail!(
            "--live was given but {} is the test host ({TEST_HOST}); drop --base-url or --live; nothing was sent",
            redact_url(base_url)
        );
    }
    Ok(())
}

/// True when `base_url` is Creem's live host, however it is written (case, a trailing dot,
/// the default port): a string comparison let `https://API.creem.io` past the guard.
pub fn is_live_host(base_url: &str) -> bool {
    is_same_host(base_url, LIVE_HOST)
}

fn is_same_host(a: &str, b: &str) -> bool {
    match (origin(a), origin(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Scheme, host and port of a URL, normalised: lowercase, no trailing dot, the scheme's
/// default port made explicit.
fn origin(text: &str) -> Option<(String, String, u16)> {
    let url = url::Url::parse(text.trim()).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    Some((url.scheme().to_owned(), host, url.port_or_known_default()?))
}

/// `text` with any `user:pass@` before the host replaced by `***@`. Works on text that is
/// not a valid URL too, since that is when it ends up in an error message.
pub fn redact_url(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let rest = &text[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &rest[at..]),
        None => text.to_owned(),
    }
}

/// True when `base_url` names this machine.
pub fn is_loopback(base_url: &str) -> bool {
    let Ok(url) = url::Url::parse(base_url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Accepts https anywhere and http only on loopback (a key must not cross a network in clear).
/// Returns the URL without a trailing `/` or `/v1`: Creem's docs write the base URL with
/// `/v1`, and the paths this tool adds start with `/v1` themselves.
pub fn check_base_url(text: &str) -> anyhow::Result<String> {
    let shown = redact_url(text);
    let url = url::Url::parse(text.trim())
        .map_err(|e| anyhow::anyhow!("base URL `{shown}` is not a URL: {e}"))?;
    let loopback = is_loopback(text.trim());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => anyhow::bail!(
            "base URL `{shown}` uses plain http to another machine; the API key would travel unencrypted (http is accepted for loopback only)"
        ),
        other => anyhow::bail!("base URL `{shown}` has scheme `{other}`; use https"),
    }
    if url.query().is_some() || url.fragment().is_some() {
        anyhow::bail!("base URL `{shown}` has a query or a fragment; give only the host (and a path prefix, if any)");
    }
    let trimmed = text.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    Ok(trimmed.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests;

//! Which Creem host a run talks to, with which key, and the checks that make the wrong
//! combination impossible: a test key never reaches the live host, a live key never the test
//! host, and plain http only stays on this machine.

use std::net::{IpAddr, SocketAddr};

use crate::api_key::{load_api_key, ApiKey};
use crate::cli::{HostArgs, KeyArgs};
use crate::sandbox::{Sandbox, SandboxConfig};

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
    pub fn describe(&self) -> String {
        if self.sandbox.is_some() {
            format!("the built-in sandbox at {}", self.base_url)
        } else if self.live {
            format!("LIVE {}", self.base_url)
        } else {
            format!("test host {}", self.base_url)
        }
    }
}

/// Resolves the host and key; starts the sandbox for `--sandbox` (no key needed then).
pub async fn resolve(host: &HostArgs, key: &KeyArgs) -> anyhow::Result<Target> {
    let loaded = load_api_key(key)?;
    if host.sandbox {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        let sandbox = Sandbox::start(addr, SandboxConfig::default()).await?;
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
    if host.live && key.is_test() {
        anyhow::bail!(
            "--live needs a live API key, but the key is a test key ({key}); nothing was sent"
        );
    }
    if !host.live && !key.is_test() {
        anyhow::bail!(
            "the key is not a test key ({key}) but the target is the test host; add --live to use a live key; nothing was sent"
        );
    }
    if !host.live && base_url == LIVE_HOST {
        anyhow::bail!("{LIVE_HOST} is the live host: add --live to send there");
    }
    Ok(Target {
        base_url,
        key,
        live: host.live,
        sandbox: None,
    })
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
pub fn check_base_url(text: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(text)
        .map_err(|e| anyhow::anyhow!("base URL `{text}` is not a URL: {e}"))?;
    let loopback = is_loopback(text);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => anyhow::bail!(
            "base URL `{text}` uses plain http to another machine; the API key would travel unencrypted (http is accepted for loopback only)"
        ),
        other => anyhow::bail!("base URL `{text}` has scheme `{other}`; use https"),
    }
    Ok(text.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_on_loopback() {
        assert!(check_base_url("http://127.0.0.1:8787").is_ok());
        assert!(check_base_url("http://localhost:1").is_ok());
        assert!(check_base_url("http://[::1]:1").is_ok());
        assert!(check_base_url("https://api.example.com").is_ok());
        assert!(check_base_url("http://10.0.0.1").is_err());
        assert!(check_base_url("ftp://x").is_err());
    }
}

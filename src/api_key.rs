//! Loading the Creem API key, and a type that keeps it out of logs.
//!
//! The key only ever comes from the environment or a file (see [`crate::cli::KeyArgs`]), and
//! the only way to read it back is [`ApiKey::expose`], so that every place that sends it
//! somewhere is easy to find. `Debug` and `Display` are redacted so that printing an error, a
//! config struct or a panic message cannot leak it.

use std::fmt;
use std::path::Path;

use anyhow::Context;

use crate::cli::KeyArgs;

/// The environment variable the key is read from when no file is given.
pub const API_KEY_ENV: &str = "CREEM_API_KEY";

const TEST_PREFIX: &str = "creem_test_";
const LIVE_PREFIX: &str = "creem_";

/// A Creem API key. Prints as `creem_test_***` / `creem_***` / `***`, never in full.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key as is (no trimming or checks; [`load_api_key`] does those).
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for the `x-api-key` header or a signature. Nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Test keys work only on the test host; knowing which kind we hold lets the caller pick
    /// the host or refuse a mismatch before Creem answers 401.
    pub fn is_test(&self) -> bool {
        self.0.starts_with(TEST_PREFIX)
    }

    /// Which kind of key this is, from its documented prefix.
    pub fn kind(&self) -> KeyKind {
        if self.is_test() {
            KeyKind::Test
        } else if self.0.starts_with(LIVE_PREFIX) {
            KeyKind::Live
        } else {
            KeyKind::NotCreem(foreign_kind(&self.0))
        }
    }
}

/// What a key's prefix says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `creem_test_...`: the test host only.
    Test,
    /// `creem_...`: the live host only.
    Live,
    /// Not a Creem key at all; the text says what it looks like instead.
    NotCreem(&'static str),
}

/// Names the usual mix-ups by their public prefixes only (nothing secret): a key copied from
/// the wrong dashboard would otherwise surface as a bare 401, or as advice to add `--live`.
fn foreign_kind(key: &str) -> &'static str {
    const KNOWN: [(&str, &str); 6] = [
        ("sk_test_", "a Stripe test secret key (sk_test_...)"),
        ("sk_live_", "a Stripe live secret key (sk_live_...)"),
        ("rk_", "a Stripe restricted key (rk_...)"),
        ("pk_", "a Stripe publishable key (pk_...)"),
        ("whsec_", "a webhook signing secret (whsec_...)"),
        ("sk-", "an API key of another service (sk-...)"),
    ];
    KNOWN
        .iter()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map_or("not a Creem API key", |(_, what)| what)
}

impl KeyKind {
    /// The refusal for a key that is not a Creem key, or `None` for a Creem key.
    pub fn not_creem_message(self) -> Option<String> {
        match self {
            KeyKind::NotCreem(what) => Some(format!(
                "the API key is {what}, not a Creem API key: Creem keys start with creem_test_ (test mode) or creem_ (live); copy it from Creem's dashboard, Developers > API keys; nothing was sent"
            )),
            _ => None,
        }
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the documented prefix is shown: it says which kind of key is in use, which is
        // what a user needs to debug a 401, and reveals nothing secret.
        if self.is_test() {
            write!(f, "{TEST_PREFIX}***")
        } else if self.0.starts_with(LIVE_PREFIX) {
            write!(f, "{LIVE_PREFIX}***")
        } else {
            f.write_str("***")
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({self})")
    }
}

/// The key from `--api-key-file` if given, else from `CREEM_API_KEY`; `None` when neither is
/// set (an empty `CREEM_API_KEY` counts as unset). Commands that need a key turn `None` into
/// their own error; those that do not (dry runs, the sandbox) just go on.
///
/// A file that cannot be read, is empty, or holds more than one token is an error: the user
/// pointed at it explicitly, so silently falling back to the environment would hide a mistake.
pub fn load_api_key(args: &KeyArgs) -> anyhow::Result<Option<ApiKey>> {
    load_from(args, std::env::var_os(API_KEY_ENV))
}

fn load_from(args: &KeyArgs, env: Option<std::ffi::OsString>) -> anyhow::Result<Option<ApiKey>> {
    if let Some(path) = &args.api_key_file {
        return read_key_file(path).map(Some);
    }
    let Some(raw) = env else {
        return Ok(None);
    };
    let Some(raw) = raw.to_str() else {
        anyhow::bail!("{API_KEY_ENV} is not valid UTF-8");
    };
    if raw.trim().is_empty() {
        return Ok(None);
    }
    clean(raw)
        .map(Some)
        .with_context(|| format!("{API_KEY_ENV} is not usable"))
}

fn read_key_file(path: &Path) -> anyhow::Result<ApiKey> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the API key file {}", path.display()))?;
    // The contents are deliberately not quoted in any of these errors.
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the API key file {} is not UTF-8 text", path.display()))?;
    if text.trim().is_empty() {
        anyhow::bail!("the API key file {} is empty", path.display());
    }
    clean(&text).with_context(|| format!("the API key file {} is not usable", path.display()))
}

/// Trims the trailing newline editors and `echo` add (and any surrounding blanks) and the
/// byte-order mark Windows editors put first (kept, it would make a test key look like a
/// live one); refuses anything else that is not visible ASCII, which would never be a valid
/// key and would break the HTTP header it goes into.
fn clean(raw: &str) -> anyhow::Result<ApiKey> {
    let key = raw.trim().trim_start_matches('\u{feff}').trim();
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!("the key contains spaces, line breaks or control characters");
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        anyhow::bail!(
            "the key contains characters that are not in any API key (non-ASCII or invisible ones, e.g. from a copy out of a document)"
        );
    }
    Ok(ApiKey(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn redaction() {
        let test = ApiKey::new("creem_test_SECRET123");
        assert_eq!(test.to_string(), "creem_test_***");
        assert_eq!(format!("{test:?}"), "ApiKey(creem_test_***)");
        assert!(test.is_test());
        assert_eq!(test.expose(), "creem_test_SECRET123");

        let live = ApiKey::new("creem_SECRET123");
        assert_eq!(live.to_string(), "creem_***");
        assert!(!live.is_test());
        assert_eq!(ApiKey::new("SECRET").to_string(), "***");
    }

    #[test]
    fn env_is_used_without_file_and_empty_env_is_none() {
        let none = KeyArgs::default();
        assert_eq!(load_from(&none, None).unwrap(), None);
        assert_eq!(load_from(&none, Some(OsString::from("  "))).unwrap(), None);
        let key = load_from(&none, Some(OsString::from("creem_test_A\n")))
            .unwrap()
            .unwrap();
        assert_eq!(key.expose(), "creem_test_A");
    }

    #[test]
    fn file_wins_over_env_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "creem_test_FROMFILE\r\n").unwrap();
        let args = KeyArgs {
            api_key_file: Some(path.clone()),
        };
        let key = load_from(&args, Some(OsString::from("creem_test_ENV")))
            .unwrap()
            .unwrap();
        assert_eq!(key.expose(), "creem_test_FROMFILE");

        std::fs::write(&path, "\n").unwrap();
        assert!(load_from(&args, None).is_err());

        std::fs::write(&path, "creem_test_A creem_test_B").unwrap();
        let err = load_from(&args, None).unwrap_err();
        assert!(!format!("{err:#}").contains("creem_test_A"));
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "\u{feff}creem_test_BOM\r\n").unwrap();
        let args = KeyArgs {
            api_key_file: Some(path),
        };
        let key = load_from(&args, None).unwrap().unwrap();
        assert_eq!(key.expose(), "creem_test_BOM");
        assert_eq!(key.kind(), KeyKind::Test);
        let env = load_from(&KeyArgs::default(), Some(OsString::from("\u{feff}creem_X")));
        assert_eq!(env.unwrap().unwrap().kind(), KeyKind::Live);
    }

    #[test]
    fn invisible_or_non_ascii_characters_are_refused() {
        for raw in [
            "creem_test_A\u{200b}B",
            "creem_test_é",
            "creem_test_A\u{feff}",
        ] {
            let err = clean(raw).unwrap_err().to_string();
            assert!(err.contains("non-ASCII or invisible"), "{raw:?}: {err}");
            assert!(!err.contains("creem_test_A"));
        }
    }

    #[test]
    fn keys_of_other_services_are_named_without_being_shown() {
        let stripe = ApiKey::new("sk_test_51SECRETSECRET");
        assert_eq!(
            stripe.kind(),
            KeyKind::NotCreem("a Stripe test secret key (sk_test_...)")
        );
        let message = stripe.kind().not_creem_message().unwrap();
        assert!(message.contains("not a Creem API key"), "{message}");
        assert!(!message.contains("SECRET"));
        assert_eq!(
            ApiKey::new("whatever").kind(),
            KeyKind::NotCreem("not a Creem API key")
        );
        assert_eq!(ApiKey::new("creem_test_x").kind().not_creem_message(), None);
        assert_eq!(ApiKey::new("creem_x").kind().not_creem_message(), None);
    }

    #[test]
    fn missing_file_is_an_error() {
        let args = KeyArgs {
            api_key_file: Some("/nonexistent/creem-key".into()),
        };
        assert!(load_from(&args, Some(OsString::from("creem_test_ENV"))).is_err());
    }
}

//! `verify-redirect URL`: is this success_url redirect really from Creem?
//!
//! stdout gets the verdict, the rule that matched, and which parameters the signature covers
//! (for people and scripts); stderr gets hints. Parameter names come from the URL, so they are
//! escaped before they reach the terminal. Exit 0 valid, 1 invalid, 2 when the URL cannot be checked or there is no key.

use std::io::Write;

use crate::api_key::load_api_key;
use crate::cli::VerifyRedirectArgs;
use crate::escape::escape_control;
use crate::exit::Outcome;
use crate::signature::{verify_redirect, RedirectVerification};

pub fn run(args: VerifyRedirectArgs) -> anyhow::Result<Outcome> {
    let key = load_api_key(&args.key)?.ok_or_else(|| {
        anyhow::anyhow!("no API key: set CREEM_API_KEY or pass --api-key-file FILE")
    })?;
    let verification = verify_redirect(&args.url, key.expose())?;

    let mut out = std::io::stdout().lock();
    out.write_all(report(&verification).as_bytes())?;
    out.flush()?;

    if verification.valid {
        Ok(Outcome::Success)
    } else {
        // `key` prints redacted: only its kind, which is the usual cause of a mismatch.
        eprintln!(
            "hint: checked with a {key} key. Creem signs with the key of the mode the checkout \
             was made in (test or live), and any change to the URL (a value, the order of the \
             parameters, an added parameter) breaks the signature."
        );
        Ok(Outcome::Partial)
    }
}

fn report(v: &RedirectVerification) -> String {
    let mut s = String::new();
    s.push_str(if v.valid {
        "valid signature\n"
    } else {
        "invalid signature\n"
    });
    if let Some(rule) = v.rule {
        s.push_str(&format!("rule: {}\n", rule.describe()));
    }
    let covered = if v.covered.is_empty() {
        "(none)".to_string()
    } else {
        escape_control(&v.covered.join(", ")).into_owned()
    };
    s.push_str(&format!("covered: {covered}\n"));
    if !v.not_covered.is_empty() {
        s.push_str(&format!(
            "not covered (anyone may have changed these): {}\n",
            escape_control(&v.not_covered.join(", "))
        ));
    }
    if !v.skipped.is_empty() {
        s.push_str(&format!(
            "skipped (empty or null, not signed): {}\n",
            escape_control(&v.skipped.join(", "))
        ));
    }
    // Ids are only worth repeating once they are vouched for.
    if v.valid {
        if let Some(id) = &v.checkout_id {
            s.push_str(&format!("checkout_id: {}\n", escape_control(id)));
        }
        if let Some(id) = &v.request_id {
            s.push_str(&format!("request_id: {}\n", escape_control(id)));
        }
    }
    s
}

//! Verifying what Creem sends back: redirect signatures and webhook signatures.
//!
//! Both checks exist because the data arrives through a channel anyone can write to: a
//! success_url is just a link a customer can edit and replay, and a webhook endpoint is a
//! public URL. Only the signature ties the data to Creem (and to the merchant's key or secret).
//!
//! Nothing here ever puts the API key or the webhook secret into an error, a `Debug` output or
//! a returned value: they are only fed to the hash.

use subtle::ConstantTimeEq;

mod redirect;
mod webhook;

pub use redirect::{
    redirect_signature, verify_redirect, verify_redirect_query, RedirectError,
    RedirectVerification, SignatureRule, CREEM_REDIRECT_PARAMS, SIGNATURE_PARAM,
};
pub(crate) use webhook::id_of;
pub use webhook::{
    parse_webhook_event, verify_webhook, webhook_signature, CheckoutCompleted, WebhookEvent,
    CHECKOUT_COMPLETED, WEBHOOK_SIGNATURE_HEADER,
};

/// Compares a digest with a hex string from the outside world without leaking, through
/// timing, how many leading bytes matched: an early-exit comparison would let an attacker
/// guess a valid signature byte by byte. Case and surrounding whitespace are tolerated; a
/// wrong length or a non-hex character is simply a mismatch.
pub(crate) fn digest_matches_hex(expected: &[u8; 32], given: &str) -> bool {
    let given = given.trim();
    let mut decoded = [0u8; 32];
    if given.len() != 64 || hex::decode_to_slice(given, &mut decoded).is_err() {
        return false;
    }
    expected.ct_eq(&decoded).into()
}

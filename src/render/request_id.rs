//! The request_id rule: the default id from the campaign and the customer's key.

use sha2::{Digest, Sha256};

/// The byte that separates the campaign and key values in the default request_id's hash.
/// A unit separator cannot appear in a normal CSV value, so `a,b` + `c` never equals `a` + `b,c`.
pub(super) const KEY_SEPARATOR: u8 = 0x1F;

/// Computes the default request_id: `<campaign>-<first 16 hex of SHA-256(campaign \x1F
/// value1 \x1F value2 ...)>`, values trimmed and a column named `email` lowercased.
/// Public so a merchant's backend (or a test) can derive the same id.
pub fn default_request_id(campaign: &str, key_values: &[(&str, &str)]) -> String {
    let digest = key_digest(campaign, key_values.iter().copied());
    let mut id = format!("{campaign}-");
    push_hex(&digest[..8], &mut id);
    id
}

/// Feeds a key value to a hasher the way the request_id rule says: trimmed, and lowercased
/// for a column named `email` (without allocating for the usual ASCII address).
pub(super) fn feed_key_value(column: &str, value: &str, mut feed: impl FnMut(&[u8])) {
    let value = value.trim();
    if column != "email" {
        feed(value.as_bytes());
    } else if value.is_ascii() {
        let mut buffer = [0u8; 64];
        for chunk in value.as_bytes().chunks(buffer.len()) {
            let lowered = &mut buffer[..chunk.len()];
            lowered.copy_from_slice(chunk);
            lowered.make_ascii_lowercase();
            feed(lowered);
        }
    } else {
        feed(value.to_lowercase().as_bytes());
    }
}

/// Appends `bytes` as lowercase hex.
pub fn push_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    push_hex(&Sha256::digest(bytes), &mut out);
    out
}

pub(super) fn key_digest<'a>(
    campaign: &str,
    key_values: impl Iterator<Item = (&'a str, &'a str)>,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(campaign.as_bytes());
    for (column, value) in key_values {
        hasher.update([KEY_SEPARATOR]);
        feed_key_value(column, value, |bytes| hasher.update(bytes));
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_request_id_normalises_email() {
        let a = default_request_id("spring", &[("email", " Ana@Example.COM ")]);
        let b = default_request_id("spring", &[("email", "ana@example.com")]);
        assert_eq!(a, b);
        // Independent: sha256("spring\x1Fana@example.com"), first 16 hex digits.
        let expected = hex::encode(&Sha256::digest(b"spring\x1Fana@example.com")[..8]);
        assert_eq!(a, format!("spring-{expected}"));
    }

    #[test]
    fn non_email_key_columns_keep_their_case() {
        let a = default_request_id("c", &[("user_id", "AB")]);
        let b = default_request_id("c", &[("user_id", "ab")]);
        assert_ne!(a, b);
    }
}

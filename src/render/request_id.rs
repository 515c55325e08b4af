//! The request_id rule: the default id from the campaign and the customer's key.

use sha2::{Digest, Sha256};

/// The byte that separates the campaign and key values in the default request_id's hash.
/// A unit separator cannot appear in a normal CSV value, so `a,b` + `c` never equals `a` + `b,c`.
pub(super) const KEY_SEPARATOR: u8 = 0x1F;

/// Computes the default request_id: `<campaign>-<first 16 hex of SHA-256(campaign \x1F
/// value1 \x1F value2 ...)>`, each value trimmed, and an email column's value (see
/// [`is_email_column`]) also lowercased. Public so a merchant's backend (or a test) can derive
/// the same id; when the email column has another name but feeds `customer.email`, use
/// [`default_request_id_of`].
pub fn default_request_id(campaign: &str, key_values: &[(&str, &str)]) -> String {
    let values: Vec<(&str, bool)> = key_values
        .iter()
        .map(|&(column, value)| (value, is_email_column(column)))
        .collect();
    default_request_id_of(campaign, &values)
}

/// [`default_request_id`] over `(value, is_email)` pairs: `is_email` is true for the key column
/// that `customer.email` reads, or whose name is an email column's.
pub fn default_request_id_of(campaign: &str, key_values: &[(&str, bool)]) -> String {
    let digest = key_digest(campaign, key_values.iter().copied());
    let mut id = format!("{campaign}-");
    push_hex(&digest[..8], &mut id);
    id
}

/// True for a column name that holds the customer's email, whatever the export calls it:
/// lowercased and without spaces, `-` and `_`, it is `email` or `emailaddress` (`email`,
/// `Email`, `E-Mail`, `Email Address`, `email_address`).
pub fn is_email_column(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    folded == "email" || folded == "emailaddress"
}

/// Feeds a key value to a hasher the way the request_id rule says: trimmed, and lowercased
/// for an email (without allocating for the usual ASCII address).
pub(super) fn feed_key_value(is_email: bool, value: &str, mut feed: impl FnMut(&[u8])) {
    let value = value.trim();
    if !is_email {
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
    key_values: impl Iterator<Item = (&'a str, bool)>,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(campaign.as_bytes());
    for (value, is_email) in key_values {
        hasher.update([KEY_SEPARATOR]);
        feed_key_value(is_email, value, |bytes| hasher.update(bytes));
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
    fn email_columns_are_known_whatever_the_export_calls_them() {
        for name in [
            "email",
            "Email",
            "E-Mail",
            "Email Address",
            "email_address",
            " EMAIL ",
        ] {
            assert!(is_email_column(name), "{name}");
        }
        for name in ["emails", "Contact", "Email Opt-In", "mail"] {
            assert!(!is_email_column(name), "{name}");
        }
    }

    #[test]
    fn non_email_key_columns_keep_their_case() {
        let a = default_request_id("c", &[("user_id", "AB")]);
        let b = default_request_id("c", &[("user_id", "ab")]);
        assert_ne!(a, b);
    }
}

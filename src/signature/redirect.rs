//! Redirect signatures: is this success_url redirect really from Creem, and which of its
//! parameters does the signature vouch for?

use sha2::{Digest, Sha256};

use super::digest_matches_hex;

/// The query parameter that carries the redirect signature.
pub const SIGNATURE_PARAM: &str = "signature";

/// Why a redirect URL could not be checked at all (as opposed to being checked and found
/// invalid, which is a [`RedirectVerification`] with `valid == false`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedirectError {
    /// The text is not an absolute URL. The parser's reason is kept; the URL itself is not
    /// repeated, since the caller already has it.
    #[error("not a valid URL: {0}")]
    MalformedUrl(String),
    /// No (non-empty) `signature` query parameter: this is not a signed Creem redirect.
    #[error("the URL has no `signature` query parameter (is this the URL Creem redirected to?)")]
    MissingSignature,
    /// Two `signature` parameters: there is no honest reason for this, and picking one would
    /// let whoever added the other decide what gets checked.
    #[error("the URL has more than one `signature` query parameter")]
    DuplicateSignature,
}

/// The parameters Creem adds to a success_url redirect. Its documented snippets sign only
/// these, so a merchant's own parameters (`?utm_campaign=spring`) stay outside the signature.
pub const CREEM_REDIRECT_PARAMS: [&str; 6] = [
    "checkout_id",
    "order_id",
    "customer_id",
    "subscription_id",
    "product_id",
    "request_id",
];

/// Which parameters a valid signature was found to cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureRule {
    /// Creem's own parameters ([`CREEM_REDIRECT_PARAMS`]), in URL order: what Creem's
    /// documented snippets sign. Tried first.
    CreemParameters,
    /// Every parameter but `signature`, in URL order: the rule of the first SPEC, accepted as
    /// a fallback so that redirects signed that way still verify.
    AllParameters,
}

impl SignatureRule {
    /// How the rule is named in `verify-redirect`'s output.
    pub fn describe(self) -> &'static str {
        match self {
            SignatureRule::CreemParameters => "Creem's parameters only, in URL order",
            SignatureRule::AllParameters => "all parameters, in URL order (fallback rule)",
        }
    }
}

/// The result of checking a redirect whose signature could be read.
///
/// `checkout_id` and `request_id` are copied out for convenience; they are attacker-controlled
/// unless `valid` is true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectVerification {
    /// Whether the signature matches the parameters and the key under one of the rules.
    pub valid: bool,
    /// The rule that matched (`None` when the signature is invalid).
    pub rule: Option<SignatureRule>,
    /// Names of the parameters that went into the signed string, in URL order. Only these are
    /// vouched for by a valid signature. (When invalid: those Creem's rule would sign.)
    pub covered: Vec<String>,
    /// Names of the parameters with a value that the signature does not cover, e.g. the
    /// merchant's own: anyone may have changed them.
    pub not_covered: Vec<String>,
    /// Names of the parameters left out because their value was empty or `null`.
    pub skipped: Vec<String>,
    /// The first non-empty `checkout_id` parameter, if any.
    pub checkout_id: Option<String>,
    /// The first non-empty `request_id` parameter, if any.
    pub request_id: Option<String>,
}

/// Checks the signature of a success_url redirect, given the full URL.
///
/// Parameter values are percent-decoded (form-urlencoded rules, so `+` is a space) before they
/// are signed: Creem's own examples sign the values a web framework hands over (Express
/// `req.query`, `URLSearchParams`, Python `parse_qs`), which are the decoded ones.
pub fn verify_redirect(url: &str, api_key: &str) -> Result<RedirectVerification, RedirectError> {
    let parsed =
        url::Url::parse(url.trim()).map_err(|e| RedirectError::MalformedUrl(e.to_string()))?;
    verify_redirect_query(parsed.query().unwrap_or(""), api_key)
}

/// Checks the signature of a redirect given only its raw query string (without the leading
/// `?`), which is what a web handler usually has.
///
/// Pass the raw string, not a map of parameters: the signature depends on the order the
/// parameters arrived in, which a map throws away.
pub fn verify_redirect_query(
    query: &str,
    api_key: &str,
) -> Result<RedirectVerification, RedirectError> {
    let pairs: Vec<(String, String)> = form_pairs(query);

    let mut signatures = pairs
        .iter()
        .filter(|(k, _)| k == SIGNATURE_PARAM)
        .map(|(_, v)| v.as_str());
    let given = match (signatures.next(), signatures.next()) {
        (_, Some(_)) => return Err(RedirectError::DuplicateSignature),
        (Some(sig), None) if !sig.trim().is_empty() => sig.trim(),
        _ => return Err(RedirectError::MissingSignature),
    };

    let all: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, v)| k != SIGNATURE_PARAM && is_signed_value(v))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let creem: Vec<(&str, &str)> = all
        .iter()
        .copied()
        .filter(|(k, _)| CREEM_REDIRECT_PARAMS.contains(k))
        .collect();
    // Both comparisons always run, so the time taken does not tell which rule matched.
    let creem_ok = digest_matches_hex(&signature_digest(&creem, api_key), given);
    let all_ok = digest_matches_hex(&signature_digest(&all, api_key), given);
    let rule = if creem_ok {
        Some(SignatureRule::CreemParameters)
    } else if all_ok {
        Some(SignatureRule::AllParameters)
    } else {
        None
    };
    let signed = if rule == Some(SignatureRule::AllParameters) {
        &all
    } else {
        &creem
    };
    let covered: Vec<String> = signed.iter().map(|(k, _)| (*k).to_string()).collect();
    let not_covered: Vec<String> = all
        .iter()
        .filter(|(k, _)| !signed.iter().any(|(s, _)| s == k))
        .map(|(k, _)| (*k).to_string())
        .collect();
    let skipped = pairs
        .iter()
        .filter(|(k, v)| k != SIGNATURE_PARAM && !is_signed_value(v))
        .map(|(k, _)| k.clone())
        .collect();
    let first = |name: &str| {
        signed
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_string())
    };
    Ok(RedirectVerification {
        valid: rule.is_some(),
        rule,
        checkout_id: first("checkout_id"),
        request_id: first("request_id"),
        covered,
        not_covered,
        skipped,
    })
}

/// The signature Creem puts on a redirect with these parameters (lowercase hex).
///
/// `params` are decoded names and values in URL order; a `signature` entry and entries whose
/// value is empty or `null` are left out, as Creem does. Useful to build signed redirects for
/// tests and the sandbox.
pub fn redirect_signature(params: &[(&str, &str)], api_key: &str) -> String {
    hex::encode(signature_digest(params, api_key))
}

/// Empty and `null` values are left out of the signed string: Creem builds it from an object
/// whose absent fields are `null`, and drops those rather than signing them.
fn is_signed_value(value: &str) -> bool {
    !value.is_empty() && value != "null"
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// SHA-256 of `k=v|k=v|...|salt=<key>`. The parameters stay in arrival order because that is
/// the order Creem signs them in (the order it wrote them into the URL), not sorted.
fn signature_digest(params: &[(&str, &str)], api_key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (k, v) in params {
        if *k == SIGNATURE_PARAM || !is_signed_value(v) {
            continue;
        }
        hasher.update(k.as_bytes());
        hasher.update(b"=");
        hasher.update(v.as_bytes());
        hasher.update(b"|");
    }
    hasher.update(b"salt=");
    hasher.update(api_key.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "creem_test_EXAMPLEKEY";
    const SPEC_SIG: &str = "5669161bda068ffb691845d1768fe6935deb510f2cb47b76b23167b33d68b0c2";
    const SPEC_PARAMS: [(&str, &str); 5] = [
        ("checkout_id", "ch_1QyIQDw9cbFWdA1ry5Qc6I"),
        ("order_id", "ord_4ucZ7Ts3r7EhSrl5yQE4G6"),
        ("customer_id", "cust_2KaCAtu6l3tpjIr8Nr9XOp"),
        ("subscription_id", "sub_ILWMTY6uBim4EB0uxK6WE"),
        ("product_id", "prod_6tW66i0oZM7w1qXReHJrwg"),
    ];

    fn spec_url(sig: &str) -> String {
        let q: Vec<String> = SPEC_PARAMS
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "https://yourdomain.com/success?{}&signature={sig}",
            q.join("&")
        )
    }

    #[test]
    fn spec_vector_signature() {
        assert_eq!(redirect_signature(&SPEC_PARAMS, KEY), SPEC_SIG);
    }

    #[test]
    fn spec_vector_verifies() {
        let v = verify_redirect(&spec_url(SPEC_SIG), KEY).unwrap();
        assert!(v.valid);
        assert_eq!(
            v.covered,
            [
                "checkout_id",
                "order_id",
                "customer_id",
                "subscription_id",
                "product_id"
            ]
        );
        assert!(v.skipped.is_empty());
        assert_eq!(v.checkout_id.as_deref(), Some("ch_1QyIQDw9cbFWdA1ry5Qc6I"));
        assert_eq!(v.request_id, None);
    }

    #[test]
    fn spec_vector_matches_creem_rule() {
        let v = verify_redirect(&spec_url(SPEC_SIG), KEY).unwrap();
        assert_eq!(v.rule, Some(SignatureRule::CreemParameters));
        assert!(v.not_covered.is_empty());
    }

    /// The success_url's own parameters come first, Creem's after, and only Creem's are signed.
    #[test]
    fn merchant_parameters_are_outside_the_creem_rule() {
        let url = format!(
            "https://shop.test/thanks?utm_campaign=spring&ref=mail&{}&signature={SPEC_SIG}",
            SPEC_PARAMS
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        let v = verify_redirect(&url, KEY).unwrap();
        assert!(v.valid);
        assert_eq!(v.rule, Some(SignatureRule::CreemParameters));
        assert_eq!(v.covered.len(), 5);
        assert_eq!(v.not_covered, ["utm_campaign", "ref"]);
        assert_eq!(v.checkout_id.as_deref(), Some("ch_1QyIQDw9cbFWdA1ry5Qc6I"));
    }

    #[test]
    fn the_all_parameters_rule_is_a_fallback() {
        let mut params = vec![("utm_campaign", "spring")];
        params.extend(SPEC_PARAMS);
        let sig = redirect_signature(&params, KEY);
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = format!("https://shop.test/t?{}&signature={sig}", query.join("&"));
        let v = verify_redirect(&url, KEY).unwrap();
        assert!(v.valid);
        assert_eq!(v.rule, Some(SignatureRule::AllParameters));
        assert_eq!(v.covered[0], "utm_campaign");
        assert!(v.not_covered.is_empty());

        // The merchant's parameter moved: the order the signature was made in is lost.
        let moved = url.replacen("utm_campaign=spring&", "", 1).replacen(
            "&signature",
            "&utm_campaign=spring&signature",
            1,
        );
        assert!(!verify_redirect(&moved, KEY).unwrap().valid);
    }

    #[test]
    fn a_changed_creem_parameter_is_invalid_under_both_rules() {
        let url = format!("{}&utm=x", spec_url(SPEC_SIG)).replace("ord_4u", "ord_5u");
        let v = verify_redirect(&url, KEY).unwrap();
        assert!(!v.valid);
        assert_eq!(v.rule, None);
        assert_eq!(v.not_covered, ["utm"]);
        assert_eq!(v.checkout_id.as_deref(), Some("ch_1QyIQDw9cbFWdA1ry5Qc6I"));
    }

    #[test]
    fn uppercase_signature_is_accepted() {
        let v = verify_redirect(&spec_url(&SPEC_SIG.to_uppercase()), KEY).unwrap();
        assert!(v.valid);
    }

    #[test]
    fn wrong_key_or_garbage_signature_is_invalid() {
        assert!(
            !verify_redirect(&spec_url(SPEC_SIG), "creem_test_OTHER")
                .unwrap()
                .valid
        );
        assert!(!verify_redirect(&spec_url("zz"), KEY).unwrap().valid);
        assert!(
            !verify_redirect(&spec_url(&SPEC_SIG[..62]), KEY)
                .unwrap()
                .valid
        );
    }

    #[test]
    fn signature_param_anywhere_is_excluded() {
        let url = format!(
            "https://x.test/s?signature={SPEC_SIG}&{}",
            SPEC_PARAMS
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        assert!(verify_redirect(&url, KEY).unwrap().valid);
    }

    #[test]
    fn null_and_empty_values_are_skipped() {
        let mut params = SPEC_PARAMS.to_vec();
        params.insert(0, ("request_id", "null"));
        params.push(("subscription_id_2", ""));
        assert_eq!(redirect_signature(&params, KEY), SPEC_SIG);
        let url = "https://x.test/s?request_id=null&checkout_id=ch_1QyIQDw9cbFWdA1ry5Qc6I\
            &order_id=ord_4ucZ7Ts3r7EhSrl5yQE4G6&customer_id=cust_2KaCAtu6l3tpjIr8Nr9XOp\
            &subscription_id=sub_ILWMTY6uBim4EB0uxK6WE&product_id=prod_6tW66i0oZM7w1qXReHJrwg\
            &extra=&signature=5669161bda068ffb691845d1768fe6935deb510f2cb47b76b23167b33d68b0c2";
        let v = verify_redirect(url, KEY).unwrap();
        assert!(v.valid);
        assert_eq!(v.skipped, ["request_id", "extra"]);
        assert_eq!(v.request_id, None);
    }

    #[test]
    fn values_are_percent_decoded_before_signing() {
        let params = [("checkout_id", "ch_1"), ("request_id", "spring sale/1")];
        let sig = redirect_signature(&params, KEY);
        let url = format!(
            "https://x.test/s?checkout_id=ch_1&request_id=spring%20sale%2F1&signature={sig}"
        );
        let v = verify_redirect(&url, KEY).unwrap();
        assert!(v.valid);
        assert_eq!(v.request_id.as_deref(), Some("spring sale/1"));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            verify_redirect("not a url", KEY),
            Err(RedirectError::MalformedUrl(_))
        ));
        assert_eq!(
            verify_redirect("https://x.test/s?checkout_id=ch_1", KEY),
            Err(RedirectError::MissingSignature)
        );
        assert_eq!(
            verify_redirect("https://x.test/s?checkout_id=ch_1&signature=", KEY),
            Err(RedirectError::MissingSignature)
        );
        assert_eq!(
            verify_redirect("https://x.test/s?signature=ab&signature=cd", KEY),
            Err(RedirectError::DuplicateSignature)
        );
    }

    #[test]
    fn errors_never_mention_the_key() {
        for url in [
            "not a url",
            "https://x.test/",
            "https://x.test/?signature=a&signature=b",
        ] {
            let err = verify_redirect(url, KEY).unwrap_err();
            assert!(!format!("{err} {err:?}").contains("EXAMPLEKEY"));
        }
    }
}

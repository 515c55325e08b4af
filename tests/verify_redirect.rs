//! `creem-batch verify-redirect` through the real binary. Expected signatures are computed here
//! with `sha2` directly, not with the library, so a bug there cannot hide itself.

use sha2::{Digest, Sha256};

use crate::common::{Run, TestEnv};

/// The key of SPEC.md's test vector (the salt of [`SPEC_SIG`]).
const SPEC_KEY: &str = "creem_test_EXAMPLEKEY";
/// From SPEC.md ("Redirect signature").
const SPEC_SIG: &str = "5669161bda068ffb691845d1768fe6935deb510f2cb47b76b23167b33d68b0c2";
const SPEC_PARAMS: [(&str, &str); 5] = [
    ("checkout_id", "ch_1QyIQDw9cbFWdA1ry5Qc6I"),
    ("order_id", "ord_4ucZ7Ts3r7EhSrl5yQE4G6"),
    ("customer_id", "cust_2KaCAtu6l3tpjIr8Nr9XOp"),
    ("subscription_id", "sub_ILWMTY6uBim4EB0uxK6WE"),
    ("product_id", "prod_6tW66i0oZM7w1qXReHJrwg"),
];

fn url(params: &[(&str, &str)], sig: &str) -> String {
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "https://yourdomain.com/success?{}&signature={sig}",
        q.join("&")
    )
}

/// Runs `creem-batch verify-redirect <args>` with `key` (if any) in CREEM_API_KEY.
fn verify(key: Option<&str>, args: &[&str]) -> Run {
    let mut all = vec!["verify-redirect"];
    all.extend_from_slice(args);
    TestEnv::new().key(key).run(&all)
}

#[track_caller]
fn assert_no_key(o: &Run, key: &str) {
    // The redacted `creem_test_***` is fine; anything after the prefix is not.
    o.lacks(key.trim_start_matches("creem_test_"));
}

#[test]
fn spec_vector_is_valid() {
    let o = verify(Some(SPEC_KEY), &[&url(&SPEC_PARAMS, SPEC_SIG)]);
    o.assert_exit(0);
    let out = &o.stdout;
    assert!(out.starts_with("valid signature\n"), "{out}");
    assert!(
        out.contains("covered: checkout_id, order_id, customer_id, subscription_id, product_id\n"),
        "{out}"
    );
    assert_no_key(&o, SPEC_KEY);
}

#[test]
fn tampered_value_is_invalid() {
    let mut params = SPEC_PARAMS;
    params[1].1 = "ord_4ucZ7Ts3r7EhSrl5yQE4G7";
    let o = verify(Some(SPEC_KEY), &[&url(&params, SPEC_SIG)]);
    o.assert_exit(1);
    let out = &o.stdout;
    assert!(out.starts_with("invalid signature\n"), "{out}");
    assert!(out.contains("covered: checkout_id, order_id,"), "{out}");
    assert_no_key(&o, SPEC_KEY);
}

#[test]
fn reordered_parameters_are_invalid() {
    let mut params = SPEC_PARAMS;
    params.swap(0, 1);
    let o = verify(Some(SPEC_KEY), &[&url(&params, SPEC_SIG)]);
    o.assert_exit(1);
    assert!(o.stdout.contains("covered: order_id, checkout_id,"));
}

#[test]
fn added_parameter_is_invalid() {
    let mut params = SPEC_PARAMS.to_vec();
    params.push(("request_id", "order-42"));
    let o = verify(Some(SPEC_KEY), &[&url(&params, SPEC_SIG)]);
    o.assert_exit(1);
}

#[test]
fn wrong_key_is_invalid() {
    let o = verify(
        Some("creem_test_SOMEOTHERKEY"),
        &[&url(&SPEC_PARAMS, SPEC_SIG)],
    );
    o.assert_exit(1);
    assert_no_key(&o, "creem_test_SOMEOTHERKEY");
}

#[test]
fn missing_signature_is_a_usage_error() {
    let q: Vec<String> = SPEC_PARAMS
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let u = format!("https://yourdomain.com/success?{}", q.join("&"));
    let o = verify(Some(SPEC_KEY), &[&u]);
    o.assert_exit(2);
    assert!(o.stderr.contains("signature"), "{}", o.stderr);
    assert!(o.stdout.is_empty());
    assert_no_key(&o, SPEC_KEY);
}

#[test]
fn malformed_url_is_a_usage_error() {
    let o = verify(Some(SPEC_KEY), &["checkout_id=ch_1&signature=abc"]);
    o.assert_exit(2);
    assert!(o.stderr.contains("not a valid URL"), "{}", o.stderr);
    assert!(o.stdout.is_empty());
    assert_no_key(&o, SPEC_KEY);
}

#[test]
fn null_and_empty_values_are_skipped() {
    // Independent computation of what Creem signs: only the non-empty, non-null values.
    let signed = "checkout_id=ch_9|order_id=ord_9|product_id=prod_9|salt=creem_test_EXAMPLEKEY";
    let sig = hex::encode(Sha256::digest(signed.as_bytes()));
    let params = [
        ("checkout_id", "ch_9"),
        ("order_id", "ord_9"),
        ("customer_id", ""),
        ("subscription_id", "null"),
        ("product_id", "prod_9"),
        ("request_id", ""),
    ];
    let o = verify(Some(SPEC_KEY), &[&url(&params, &sig)]);
    o.assert_exit(0);
    let out = &o.stdout;
    assert!(
        out.contains("covered: checkout_id, order_id, product_id\n"),
        "{out}"
    );
    assert!(
        out.contains("customer_id, subscription_id, request_id"),
        "{out}"
    );
}

#[test]
fn percent_encoded_values_are_decoded_before_signing() {
    let signed = "checkout_id=ch_9|request_id=spring sale/row 1|salt=creem_test_EXAMPLEKEY";
    let sig = hex::encode(Sha256::digest(signed.as_bytes()));
    let u = format!(
        "https://yourdomain.com/success?checkout_id=ch_9&request_id=spring%20sale%2Frow+1&signature={sig}"
    );
    let o = verify(Some(SPEC_KEY), &[&u]);
    o.assert_exit(0);
    assert!(o.stdout.contains("request_id: spring sale/row 1\n"));
}

#[test]
fn api_key_file_is_used_instead_of_env() {
    let env = TestEnv::new();
    let path = env.write("creem.key", format!("{SPEC_KEY}\n"));
    let o = verify(
        Some("creem_test_WRONGENVKEY"),
        &[
            "--api-key-file",
            path.to_str().unwrap(),
            &url(&SPEC_PARAMS, SPEC_SIG),
        ],
    );
    o.assert_exit(0);
    assert_no_key(&o, SPEC_KEY);
}

#[test]
fn unreadable_key_file_is_a_usage_error() {
    let o = verify(
        Some(SPEC_KEY),
        &[
            "--api-key-file",
            "/nonexistent/creem.key",
            &url(&SPEC_PARAMS, SPEC_SIG),
        ],
    );
    o.assert_exit(2);
    assert!(o.stderr.contains("/nonexistent/creem.key"));
}

#[test]
fn no_key_is_a_usage_error() {
    let o = verify(None, &[&url(&SPEC_PARAMS, SPEC_SIG)]);
    o.assert_exit(2);
    assert!(
        o.stderr
            .contains("no API key: set CREEM_API_KEY or pass --api-key-file FILE"),
        "{}",
        o.stderr
    );
    assert!(o.stdout.is_empty());
}

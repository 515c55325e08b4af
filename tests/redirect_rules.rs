//! `verify-redirect` on a success_url that carries the merchant's own parameters: Creem signs
//! only its own, so those are checked, the all-parameters rule is the fallback, and the output
//! says which rule matched and what the signature does not cover. Expected signatures are
//! computed here with `sha2`, not with the library.

use std::process::Command;

use sha2::{Digest, Sha256};

const KEY: &str = "creem_test_EXAMPLEKEY";
const CREEM: &str = "checkout_id=ch_1QyIQDw9cbFWdA1ry5Qc6I&order_id=ord_4ucZ7Ts3r7EhSrl5yQE4G6\
&customer_id=cust_2KaCAtu6l3tpjIr8Nr9XOp&subscription_id=sub_ILWMTY6uBim4EB0uxK6WE\
&product_id=prod_6tW66i0oZM7w1qXReHJrwg";
/// From SPEC.md: the signature over [`CREEM`]'s parameters.
const SPEC_SIG: &str = "5669161bda068ffb691845d1768fe6935deb510f2cb47b76b23167b33d68b0c2";

fn verify(url: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_creem-batch"))
        .args(["verify-redirect", url])
        .env("CREEM_API_KEY", KEY)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[test]
fn the_merchants_own_parameters_are_listed_as_not_covered() {
    let url = format!(
        "https://shop.example/thanks?utm_campaign=spring&ref=mail&{CREEM}&signature={SPEC_SIG}"
    );
    let (code, out, err) = verify(&url);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "valid signature\n\
         rule: Creem's parameters only, in URL order\n\
         covered: checkout_id, order_id, customer_id, subscription_id, product_id\n\
         not covered (anyone may have changed these): utm_campaign, ref\n\
         checkout_id: ch_1QyIQDw9cbFWdA1ry5Qc6I\n"
    );
}

#[test]
fn a_signature_over_every_parameter_is_accepted_as_the_fallback() {
    let signed = "utm_campaign=spring|checkout_id=ch_9|request_id=r-1|salt=creem_test_EXAMPLEKEY";
    let url = format!(
        "https://shop.example/t?utm_campaign=spring&checkout_id=ch_9&request_id=r-1&signature={}",
        sha(signed)
    );
    let (code, out, err) = verify(&url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("rule: all parameters, in URL order (fallback rule)\n"),
        "{out}"
    );
    assert!(
        out.contains("covered: utm_campaign, checkout_id, request_id\n"),
        "{out}"
    );
    assert!(!out.contains("not covered"), "{out}");
}

#[test]
fn a_changed_merchant_parameter_still_verifies_but_a_changed_creem_one_does_not() {
    // Signed by Creem's rule: utm is outside it, so changing it keeps the signature valid
    // (and the output says so); changing the order id breaks it.
    let url = format!("https://shop.example/t?utm=evil&{CREEM}&signature={SPEC_SIG}");
    let (code, out, _) = verify(&url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not covered (anyone may have changed these): utm\n"));
    let tampered = url.replace("ord_4u", "ord_5u");
    let (code, out, _) = verify(&tampered);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("invalid signature\ncovered: checkout_id,"),
        "{out}"
    );
    assert!(!out.contains("rule:"), "{out}");
}

#[test]
fn control_characters_from_the_url_are_escaped() {
    let url = format!("https://shop.example/t?x%1B%5B2J=1&{CREEM}&signature={SPEC_SIG}");
    let (code, out, _) = verify(&url);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(out.contains(r"x\u{1b}[2J"), "{out}");
}

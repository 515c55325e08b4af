//! Tests of `target`.

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

#[test]
fn a_trailing_v1_is_the_same_base_url() {
    for given in [
        "https://test-api.creem.io/v1",
        "https://test-api.creem.io/v1/",
        "https://test-api.creem.io/",
        " https://test-api.creem.io ",
    ] {
        assert_eq!(check_base_url(given).unwrap(), TEST_HOST, "{given}");
    }
    assert_eq!(
        check_base_url("https://gw.example.com/creem/v1").unwrap(),
        "https://gw.example.com/creem"
    );
    assert_eq!(
        check_base_url("https://gw.example.com/v10").unwrap(),
        "https://gw.example.com/v10"
    );
}

#[test]
fn the_live_host_is_recognised_however_it_is_written() {
    for given in [
        LIVE_HOST,
        "https://API.creem.io",
        "https://api.creem.io.",
        "https://api.creem.io:443",
        "https://Api.Creem.IO.:443/v1",
    ] {
        assert!(is_live_host(given), "{given}");
    }
    for other in [
        TEST_HOST,
        "https://api.creem.io:8443",
        "https://api.creem.io.evil.example",
        "https://127.0.0.1:443",
    ] {
        assert!(!is_live_host(other), "{other}");
    }
}

#[test]
fn the_live_host_needs_live_and_keys_match_their_host() {
    let test_key = ApiKey::new("creem_test_K");
    let live_key = ApiKey::new("creem_K");
    let err = check_pairing("https://API.creem.io.:443", &test_key, false).unwrap_err();
    assert!(err.to_string().contains("add --live"), "{err}");
    assert!(check_pairing(TEST_HOST, &test_key, false).is_ok());
    assert!(check_pairing(LIVE_HOST, &live_key, true).is_ok());
    assert!(check_pairing(LIVE_HOST, &test_key, true).is_err());
    assert!(check_pairing(TEST_HOST, &live_key, false).is_err());
    let err = check_pairing("https://Test-Api.creem.io", &live_key, true).unwrap_err();
    assert!(err.to_string().contains("is the test host"), "{err}");
    let err = check_pairing(TEST_HOST, &ApiKey::new("sk_test_ABCDEF"), false).unwrap_err();
    assert!(err.to_string().contains("Stripe test secret key"), "{err}");
    assert!(!err.to_string().contains("ABCDEF"));
}

#[test]
fn labels_name_the_kind_and_the_host() {
    assert_eq!(label_of("http://127.0.0.1:4000", false, false), "sandbox");
    assert_eq!(label_of(TEST_HOST, false, false), "test:test-api.creem.io");
    assert_eq!(label_of(LIVE_HOST, false, true), "live:api.creem.io");
    assert_eq!(
        label_of("https://GW.example.com.:8443/creem", false, false),
        "test:gw.example.com:8443"
    );
    assert_eq!(
        label_of("https://u:p@gw.example.com", false, false),
        "test:gw.example.com"
    );
}

#[test]
fn an_older_ledger_with_loopback_links_is_the_sandboxs() {
    assert_eq!(
        of_ledger(Some("live:api.creem.io"), None).as_deref(),
        Some("live:api.creem.io")
    );
    let local = Some("http://127.0.0.1:41234/checkout/ch_1");
    assert_eq!(of_ledger(None, local).as_deref(), Some("sandbox"));
    assert_eq!(of_ledger(Some(""), local).as_deref(), Some("sandbox"));
    assert_eq!(
        of_ledger(None, Some("https://checkout.creem.io/ch_1")),
        None
    );
    assert_eq!(of_ledger(None, None), None);
}

#[test]
fn mixing_targets_is_refused_naming_both() {
    let out = Path::new("spring.results.csv");
    let remedy = "give --out a new file";
    assert!(refuse_mixed(out, None, "live:api.creem.io", remedy).is_ok());
    assert!(refuse_mixed(out, Some("sandbox"), "sandbox", remedy).is_ok());
    let err = refuse_mixed(out, Some("sandbox"), "test:test-api.creem.io", remedy)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the sandbox (sandbox)"), "{err}");
    assert!(err.contains("test host test-api.creem.io"), "{err}");
    assert!(err.contains("--out"), "{err}");
    let err = refuse_mixed(out, Some("x\u{1b}[2J"), "sandbox", remedy)
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\u{1b}'), "{err}");
}

#[test]
fn the_sandbox_writes_beside_the_real_output() {
    assert_eq!(
        sandbox_output(Path::new("dir/spring.results.csv")),
        Path::new("dir/spring.sandbox.results.csv")
    );
    assert_eq!(
        sandbox_output(Path::new("out.csv")),
        Path::new("out.sandbox.csv")
    );
    assert_eq!(
        sandbox_output(Path::new("ledger")),
        Path::new("ledger.sandbox")
    );
}

#[test]
fn credentials_in_a_url_are_redacted() {
    assert_eq!(
        redact_url("https://user:pa55@proxy.example.com:8443/v1"),
        "https://***@proxy.example.com:8443/v1"
    );
    assert_eq!(redact_url("https://a@b@host/x@y"), "https://***@host/x@y");
    assert_eq!(
        redact_url("https://host/path?q=a@b"),
        "https://host/path?q=a@b"
    );
    assert_eq!(redact_url("user:pw@host"), "***@host");
    let err = check_base_url("http://user:pa55@10.0.0.1").unwrap_err();
    assert!(!err.to_string().contains("pa55"), "{err}");
    let err = check_base_url("https://user:pa55@host:notaport").unwrap_err();
    assert!(!err.to_string().contains("pa55"), "{err}");
    let target = Target {
        base_url: "https://user:pa55@gw.example.com".into(),
        key: ApiKey::new("creem_test_K"),
        live: false,
        sandbox: None,
    };
    assert_eq!(target.describe(), "test host https://***@gw.example.com");
}

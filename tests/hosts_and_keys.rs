//! Which host a run may talk to with which key, and what is printed about them: the live-host
//! guard on normalised hosts, `--base-url .../v1`, credentials in the base URL redacted, a key
//! file with a byte-order mark, and keys that are not Creem keys.

use std::path::Path;

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn write_campaign(dir: &Path) {
    std::fs::write(
        dir.join("campaign.yaml"),
        "campaign: hosts\ncustomers: customers.csv\ncheckout:\n  product_id: prod_h\n  customer:\n    email: \"{{ email }}\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("customers.csv"),
        "email\na@example.com\nb@example.com\n",
    )
    .unwrap();
}

/// Runs the binary in `dir` with `key` in CREEM_API_KEY (unless `None`).
async fn creem_batch(dir: &Path, key: Option<&str>, args: &[&str]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_creem-batch"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CREEM_API_KEY")
        .env_remove("CREEM_API_BASE");
    if let Some(key) = key {
        cmd.env("CREEM_API_KEY", key);
    }
    crate::common::process::exit_and_text(cmd).await
}

#[tokio::test]
async fn the_live_host_needs_live_however_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path());
    for url in [
        "https://API.creem.io",
        "https://api.creem.io.",
        "https://api.creem.io:443/v1",
    ] {
        let (code, text) = creem_batch(
            dir.path(),
            Some("creem_test_GUARD"),
            &["run", "campaign.yaml", "--base-url", url],
        )
        .await;
        assert_eq!(code, 2, "{url}: {text}");
        assert!(text.contains("is the live host"), "{url}: {text}");
        assert!(text.contains("add --live"), "{url}: {text}");
        assert!(!dir.path().join("hosts.results.csv").exists());
    }
}

#[tokio::test]
async fn a_key_of_another_service_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path());
    let (code, text) = creem_batch(
        dir.path(),
        Some("sk_test_51HiddenStripeSecret"),
        &["run", "campaign.yaml"],
    )
    .await;
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("a Stripe test secret key (sk_test_...), not a Creem API key"),
        "{text}"
    );
    assert!(!text.contains("add --live"), "{text}");
    assert!(!text.contains("HiddenStripeSecret"), "{text}");
}

/// A key file saved by a Windows editor starts with a byte-order mark: it is read as the key
/// (the header carries the key without it), not refused as "not a test key".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_with_a_byte_order_mark_works_and_v1_in_the_base_url_is_accepted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/products/prod_h"))
        .and(header("x-api-key", "creem_test_BOMKEY"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "prod_h", "mode": "test", "object": "product"})))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path());
    let key_file = dir.path().join("creem.key");
    std::fs::write(&key_file, "\u{feff}creem_test_BOMKEY\r\n").unwrap();
    let base = format!("{}/v1/", server.uri());
    let (code, text) = creem_batch(
        dir.path(),
        None,
        &[
            "check",
            "campaign.yaml",
            "--online",
            "--base-url",
            &base,
            "--api-key-file",
            key_file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("1 product(s) and 0 discount code(s) looked up"),
        "{text}"
    );
    assert!(!text.contains("BOMKEY"), "{text}");
}

/// `user:pass@` in the base URL is shown as `***@` in the summary and the resume command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_base_url_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path());
    // Port 9 (discard) on loopback refuses the connection: each row fails at once.
    let (code, text) = creem_batch(
        dir.path(),
        Some("creem_test_REDACT"),
        &[
            "run",
            "campaign.yaml",
            "--quiet",
            "--max-attempts",
            "1",
            "--base-url",
            "http://gwuser:pa55word@127.0.0.1:9/v1",
        ],
    )
    .await;
    assert_eq!(code, 1, "{text}");
    assert!(!text.contains("pa55word"), "{text}");
    assert!(!text.contains("gwuser"), "{text}");
    assert!(text.contains("***@127.0.0.1:9"), "{text}");
    let ledger = std::fs::read_to_string(dir.path().join("hosts.results.csv")).unwrap();
    assert!(!ledger.contains("pa55word"), "{ledger}");
}

//! A real browser clicks through a campaign: headless Chromium (driven over WebDriver by
//! chromedriver) opens a link from a `run` against the sandbox, clicks Pay, and lands on a
//! local success_url server; the redirect's signature and the webhook are then checked.
//! Without Chromium and chromedriver the test says "skipped: no browser" and passes
//! (`.ci/run` installs both).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use creem_batch::sandbox::{MerchantConfig, Sandbox, SandboxConfig, Webhook};
use creem_batch::signature::{parse_webhook_event, verify_redirect, verify_webhook};
use fantoccini::{ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, BufReader};

const KEY: &str = "creem_test_BROWSERKEY";
const SECRET: &str = "whsec_browser";

/// `CHROMIUM` / `CHROMEDRIVER` override the Debian paths.
pub(crate) fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, default: &str| {
        let path = PathBuf::from(std::env::var_os(var).unwrap_or_else(|| default.into()));
        path.is_file().then_some(path)
    };
    Some((
        find("CHROMIUM", "/usr/bin/chromium")?,
        find("CHROMEDRIVER", "/usr/bin/chromedriver")?,
    ))
}

/// Starts chromedriver on a free port and returns once it says it listens.
pub(crate) async fn chromedriver(driver: &Path) -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next_line().await.unwrap() {
            Some(line) if line.contains("started successfully") => break,
            Some(_) => {}
            None => panic!("chromedriver exited before it listened"),
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

/// A WebDriver session with a headless Chromium using `profile` as its user data.
pub(crate) async fn headless(chromium: &Path, port: u16, profile: &Path) -> fantoccini::Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromedriver session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_pays_a_link_and_lands_on_a_signed_success_url() {
    let Some((chromium, driver)) = browser() else {
        eprintln!("skipped: no browser (install chromium and chromium-driver, or set CHROMIUM and CHROMEDRIVER)");
        return;
    };

    // The merchant: a success page and a webhook endpoint.
    let landed: Arc<Mutex<Option<String>>> = Arc::default();
    let (hook_tx, mut hooks) = tokio::sync::mpsc::unbounded_channel::<(String, Bytes)>();
    let seen = landed.clone();
    let app = axum::Router::new()
        .route(
            "/welcome",
            axum::routing::get(move |RawQuery(query): RawQuery| {
                let seen = seen.clone();
                async move {
                    *seen.lock().unwrap() = query;
                    Html("<!doctype html><title>Welcome</title><p id=\"thanks\">Thanks for your payment!</p>")
                }
            }),
        )
        .route(
            "/webhook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let tx = hook_tx.clone();
                async move {
                    let signature = crate::common::http::webhook_signature(&headers);
                    let _ = tx.send((signature, body));
                    StatusCode::OK
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sandbox = Sandbox::start_with(
        "127.0.0.1:0".parse().unwrap(),
        SandboxConfig::default(),
        MerchantConfig {
            webhook: Some(Webhook {
                url: format!("{shop}/webhook"),
                secret: SECRET.into(),
            }),
            webhook_backoff: Duration::from_millis(5),
            ..MerchantConfig::default()
        },
    )
    .await
    .unwrap();

    // A one-row campaign sent to the sandbox by the binary.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("customers.csv"),
        "email\nbrowser@example.com\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("campaign.yaml"),
        format!(
            "campaign: browser\ncustomers: customers.csv\noutput: out/results.csv\ncheckout:\n  \
             product_id: prod_6tW66i0oZM7w1qXReHJrwg\n  discount_code: SPRING2026\n  \
             success_url: {shop}/welcome\n  customer:\n    email: \"{{{{ email }}}}\"\n"
        ),
    )
    .unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_creem-batch"))
        .args([
            "run",
            "campaign.yaml",
            "--base-url",
            &sandbox.base_url(),
            "--quiet",
        ])
        .current_dir(dir.path())
        .env("CREEM_API_KEY", KEY)
        .env_remove("CREEM_API_BASE")
        .output()
        .await
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut ledger = csv::Reader::from_path(dir.path().join("out/results.csv")).unwrap();
    let headers = ledger.headers().unwrap().clone();
    let row = ledger.records().next().unwrap().unwrap();
    let column = |name: &str| row[headers.iter().position(|h| h == name).unwrap()].to_owned();
    let link = column("checkout_url");

    let (_driver, port) = chromedriver(&driver).await;
    let profile = tempfile::tempdir().unwrap();
    let client = headless(&chromium, port, profile.path()).await;

    let outcome = async {
        client.goto(&link).await?;
        let banner = client.find(Locator::Css(".banner")).await?.text().await?;
        assert_eq!(banner, "SANDBOX: no real payment");
        let email = client.find(Locator::Id("email")).await?.text().await?;
        assert_eq!(email, "browser@example.com");
        client.find(Locator::Id("pay")).await?.click().await?;
        let thanks = client.wait().for_element(Locator::Id("thanks")).await?;
        assert_eq!(thanks.text().await?, "Thanks for your payment!");
        client.current_url().await
    }
    .await;
    let _ = client.close().await;
    let url = outcome.expect("the browser clicked through");

    assert!(
        url.as_str().starts_with(&format!("{shop}/welcome?")),
        "{url}"
    );
    assert!(
        landed.lock().unwrap().is_some(),
        "the success page was served"
    );
    let verified = verify_redirect(url.as_str(), KEY).unwrap();
    assert!(verified.valid, "{url}");
    assert_eq!(verified.request_id.unwrap(), column("request_id"));

    sandbox.webhooks_idle().await;
    let (signature, body) = hooks.try_recv().expect("a webhook was received");
    assert!(verify_webhook(&body, &signature, SECRET));
    let event = parse_webhook_event(&body).unwrap();
    assert_eq!(
        event.checkout_completed().unwrap().checkout_id,
        column("checkout_id")
    );
}

//! The customer's whole journey, offline, through the real binary: `run` makes links on the
//! sandbox, three customers click Pay (one lets it expire), the success_url server checks the
//! signed redirects, `verify-redirect` agrees, the webhook receiver saves the signed events,
//! `reconcile --events` marks exactly those rows completed, and `status` agrees.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use creem_batch::sandbox::{MerchantConfig, Sandbox, SandboxConfig, Webhook};
use creem_batch::signature::{parse_webhook_event, verify_redirect_query, verify_webhook};

const KEY: &str = "creem_test_JOURNEYKEY";
const SECRET: &str = "whsec_journey";

/// A merchant backend like examples/verify_handler.rs: `/success` checks the redirect
/// signature, `/webhook` checks `creem-signature` and appends the raw body to `events`.
struct Merchant {
    base: String,
    redirects: Arc<Mutex<Vec<(String, bool)>>>,
}

async fn merchant(events: PathBuf) -> Merchant {
    let redirects = Arc::new(Mutex::new(Vec::new()));
    let seen = redirects.clone();
    let app = axum::Router::new()
        .route(
            "/success",
            axum::routing::get(move |RawQuery(query): RawQuery| {
                let seen = seen.clone();
                async move {
                    let query = query.unwrap_or_default();
                    let valid = verify_redirect_query(&query, KEY).is_ok_and(|v| v.valid);
                    seen.lock().unwrap().push((query, valid));
                    if valid {
                        (StatusCode::OK, "Thanks for your payment!")
                    } else {
                        (StatusCode::FORBIDDEN, "invalid signature")
                    }
                }
            }),
        )
        .route(
            "/webhook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let events = events.clone();
                async move {
                    let signature = headers
                        .get("creem-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !verify_webhook(&body, signature, SECRET) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&events)
                        .unwrap();
                    file.write_all(&body).unwrap();
                    file.write_all(b"\n").unwrap();
                    StatusCode::OK
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Merchant { base, redirects }
}

async fn creem_batch(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_creem-batch"))
        .args(args)
        .current_dir(dir)
        .env("CREEM_API_KEY", KEY)
        .env_remove("CREEM_API_BASE")
        .env_remove("CREEM_WEBHOOK_SECRET")
        .output()
        .await
        .expect("run creem-batch")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ledger(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("the ledger exists");
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            headers
                .iter()
                .zip(r.unwrap().iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_three_links_then_reconcile_and_status_agree() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let shop = merchant(events.clone()).await;
    let sandbox = Sandbox::start_with(
        "127.0.0.1:0".parse().unwrap(),
        SandboxConfig::default(),
        MerchantConfig {
            webhook: Some(Webhook {
                url: format!("{}/webhook", shop.base),
                secret: SECRET.into(),
            }),
            webhook_backoff: Duration::from_millis(5),
            ..MerchantConfig::default()
        },
    )
    .await
    .unwrap();

    let mut csv = String::from("email,name\n");
    for i in 1..=5 {
        csv.push_str(&format!("buyer{i}@example.com,Buyer {i}\n"));
    }
    std::fs::write(dir.path().join("customers.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("campaign.yaml"),
        format!(
            "campaign: journey\ncustomers: customers.csv\noutput: out/results.csv\ncheckout:\n  \
             product_id: prod_6tW66i0oZM7w1qXReHJrwg\n  success_url: {}/success\n  customer:\n    \
             email: \"{{{{ email }}}}\"\n  metadata:\n    name: \"{{{{ name }}}}\"\nsend:\n  rate: unlimited\n",
            shop.base
        ),
    )
    .unwrap();

    let run = creem_batch(
        dir.path(),
        &[
            "run",
            "campaign.yaml",
            "--base-url",
            &sandbox.base_url(),
            "--quiet",
        ],
    )
    .await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let ledger_path = dir.path().join("out/results.csv");
    let rows = ledger(&ledger_path);
    assert_eq!(rows.len(), 5);

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut redirect_urls = Vec::new();
    for row in &rows[..3] {
        let page = browser.get(&row["checkout_url"]).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let pay_url = format!("{}/pay", row["checkout_url"]);
        let paid = browser.post(pay_url).send().await.unwrap();
        assert_eq!(paid.status(), StatusCode::SEE_OTHER);
        let location = paid.headers()["location"].to_str().unwrap().to_owned();
        // The browser follows the redirect to the merchant's success page.
        let landed = browser.get(&location).send().await.unwrap();
        assert_eq!(landed.status(), 200, "{location}");
        redirect_urls.push(location);
    }
    let expire_url = format!("{}/expire", rows[3]["checkout_url"]);
    assert_eq!(browser.post(expire_url).send().await.unwrap().status(), 200);
    assert!(shop
        .redirects
        .lock()
        .unwrap()
        .iter()
        .all(|(_, valid)| *valid));

    // `verify-redirect` accepts each redirect and refuses a tampered one.
    for url in &redirect_urls {
        let out = creem_batch(dir.path(), &["verify-redirect", url]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("valid signature"), "{}", text(&out));
    }
    let tampered = redirect_urls[0].replacen("order_id=ord_", "order_id=ord_X", 1);
    let out = creem_batch(dir.path(), &["verify-redirect", &tampered]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Every saved event passed the receiver's signature check; there is one per payment.
    sandbox.webhooks_idle().await;
    let saved = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<&str> = saved.lines().collect();
    assert_eq!(lines.len(), 3, "{saved}");
    let mut paid_request_ids: Vec<String> = lines
        .iter()
        .map(|line| {
            let event = parse_webhook_event(line.as_bytes()).unwrap();
            event.checkout_completed().unwrap().request_id.unwrap()
        })
        .collect();
    paid_request_ids.sort();
    let mut expected: Vec<String> = rows[..3].iter().map(|r| r["request_id"].clone()).collect();
    expected.sort();
    assert_eq!(paid_request_ids, expected);

    let reconcile = creem_batch(
        dir.path(),
        &["reconcile", "out/results.csv", "--events", "events.jsonl"],
    )
    .await;
    assert_eq!(reconcile.status.code(), Some(0), "{}", text(&reconcile));
    assert!(
        text(&reconcile).contains("marked completed: 3"),
        "{}",
        text(&reconcile)
    );
    let reconciled = ledger(&ledger_path);
    for (i, row) in reconciled.iter().enumerate() {
        let expected = if i < 3 { "completed" } else { "pending" };
        assert_eq!(row["checkout_status"], expected, "row {}", i + 1);
        assert_eq!(row["order_id"].starts_with("ord_"), i < 3, "row {}", i + 1);
    }

    let status = creem_batch(
        dir.path(),
        &[
            "status",
            "out/results.csv",
            "--base-url",
            &sandbox.base_url(),
            "--quiet",
        ],
    )
    .await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let after = ledger(&ledger_path);
    for (i, (before, now)) in reconciled.iter().zip(&after).enumerate() {
        let expected = match i {
            0..=2 => "completed",
            3 => "expired",
            _ => "pending",
        };
        assert_eq!(now["checkout_status"], expected, "row {}", i + 1);
        if i < 3 {
            assert_eq!(
                now["order_id"], before["order_id"],
                "status and the webhook name the same order"
            );
        }
    }
}

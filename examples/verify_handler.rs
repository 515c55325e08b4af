//! A minimal merchant backend that checks what Creem sends back, using `creem_batch::signature`.
//!
//! Run it (it listens on 127.0.0.1:3000, or on `LISTEN`):
//!
//! ```text
//! CREEM_API_KEY=creem_test_... CREEM_WEBHOOK_SECRET=whsec_... cargo run --example verify_handler
//! ```
//!
//! Every webhook whose signature checks out is appended, one per line, to
//! `webhook-events.jsonl` (or `EVENTS_FILE`): the file `creem-batch reconcile --events` reads.
//! With the sandbox as Creem (see docs/GUIDE.md, "Click through your campaign in the sandbox"):
//!
//! ```text
//! CREEM_WEBHOOK_SECRET=whsec_... creem-batch sandbox --webhook-url http://127.0.0.1:3000/webhook
//! ```
//!
//! Try the redirect check with the SPEC test vector (valid with `CREEM_API_KEY=creem_test_EXAMPLEKEY`):
//!
//! ```text
//! curl 'http://127.0.0.1:3000/success?checkout_id=ch_1QyIQDw9cbFWdA1ry5Qc6I&order_id=ord_4ucZ7Ts3r7EhSrl5yQE4G6&customer_id=cust_2KaCAtu6l3tpjIr8Nr9XOp&subscription_id=sub_ILWMTY6uBim4EB0uxK6WE&product_id=prod_6tW66i0oZM7w1qXReHJrwg&signature=5669161bda068ffb691845d1768fe6935deb510f2cb47b76b23167b33d68b0c2'
//! ```
//!
//! Try the webhook check by signing a body yourself with the same secret:
//!
//! ```text
//! BODY='{"id":"evt_1","eventType":"checkout.completed","created_at":1728734325927,"object":{"id":"ch_1","request_id":"order-42","order":{"id":"ord_1"},"metadata":{"userId":"u_1"}}}'
//! SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$CREEM_WEBHOOK_SECRET" | sed 's/^.* //')
//! curl -X POST http://127.0.0.1:3000/webhook -H "creem-signature: $SIG" --data-raw "$BODY"
//! ```

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use creem_batch::signature::{
    parse_webhook_event, verify_redirect_query, verify_webhook, WEBHOOK_SIGNATURE_HEADER,
};

/// Secrets live here and are never logged or echoed in a response.
struct Secrets {
    api_key: String,
    webhook_secret: String,
    /// Where verified events are saved for `creem-batch reconcile --events`.
    events_file: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secrets = Arc::new(Secrets {
        api_key: required_env("CREEM_API_KEY")?,
        webhook_secret: required_env("CREEM_WEBHOOK_SECRET")?,
        events_file: std::env::var_os("EVENTS_FILE")
            .unwrap_or_else(|| "webhook-events.jsonl".into())
            .into(),
    });
    let app = Router::new()
        .route("/success", get(success))
        .route("/webhook", post(webhook))
        .with_state(secrets);

    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_string());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

fn required_env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| anyhow::anyhow!("set {name}"))
}

/// The customer's browser lands here after paying. `RawQuery` rather than `Query<HashMap<..>>`:
/// the signature depends on the parameters' order, which a map loses.
async fn success(
    State(secrets): State<Arc<Secrets>>,
    RawQuery(query): RawQuery,
) -> (StatusCode, String) {
    match verify_redirect_query(query.as_deref().unwrap_or(""), &secrets.api_key) {
        Ok(v) if v.valid => {
            eprintln!(
                "redirect ok: checkout_id={:?} request_id={:?} covered={:?}",
                v.checkout_id, v.request_id, v.covered
            );
            (StatusCode::OK, "Thanks for your payment!\n".to_string())
        }
        // A bad signature means someone edited or forged the link: do not grant anything.
        Ok(_) => (StatusCode::FORBIDDEN, "invalid signature\n".to_string()),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

/// Creem posts events here. The body is taken as raw bytes because the HMAC covers exactly
/// those bytes; parsing happens only after the signature checks out.
async fn webhook(
    State(secrets): State<Arc<Secrets>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get(WEBHOOK_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !verify_webhook(&body, signature, &secrets.webhook_secret) {
        eprintln!("webhook rejected: bad or missing {WEBHOOK_SIGNATURE_HEADER}");
        return StatusCode::UNAUTHORIZED;
    }
    let event = match parse_webhook_event(&body) {
        Ok(event) => event,
        Err(e) => {
            eprintln!("webhook rejected: not a Creem event: {e}");
            return StatusCode::BAD_REQUEST;
        }
    };
    match event.checkout_completed() {
        Some(c) => eprintln!(
            "checkout.completed {}: checkout_id={} request_id={:?} order_id={:?} metadata={:?}",
            event.id, c.checkout_id, c.request_id, c.order_id, c.metadata
        ),
        None => eprintln!("ignored event {} ({})", event.id, event.event_type),
    }
    if let Err(e) = save_event(&secrets.events_file, &body) {
        // Not saved: answer 500 so that Creem delivers it again.
        eprintln!(
            "cannot save the event to {}: {e}",
            secrets.events_file.display()
        );
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    // Answer 200 to anything signed, so Creem does not retry events we chose to ignore.
    StatusCode::OK
}

/// One event per line, as `reconcile --events` reads them. A body that spans lines is written
/// compactly (its signature was already checked, so its exact bytes no longer matter).
fn save_event(path: &std::path::Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let line = if body.contains(&b'\n') {
        serde_json::from_slice::<serde_json::Value>(body)
            .map(|v| v.to_string().into_bytes())
            .map_err(std::io::Error::other)?
    } else {
        body.to_vec()
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(&[line.as_slice(), b"\n"].concat())
}

//! TLS as companies run it: a checkout API served over HTTPS with a certificate authority made
//! in the test (as a company's HTTPS-inspecting proxy has), trusted through SSL_CERT_FILE, and
//! reached through HTTPS_PROXY. Self-contained: its own small HTTPS server and CONNECT proxy.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// An HTTPS stand-in for `POST /v1/checkouts`, and the PEM of the CA that signed its
/// certificate (for `localhost`, `127.0.0.1` and `creem.test`).
struct HttpsServer {
    addr: SocketAddr,
    ca_pem: String,
    /// Requests answered (a failed handshake never gets this far).
    requests: Arc<AtomicUsize>,
    /// Connections accepted, handshakes that failed included.
    connections: Arc<AtomicUsize>,
}

async fn https_server() -> HttpsServer {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "creem-batch test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let names = vec!["localhost".into(), "127.0.0.1".into(), "creem.test".into()];
    let leaf = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &*ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_checkouts(tls, counter).await;
                }
            });
        }
    });
    HttpsServer {
        addr,
        ca_pem: ca.pem(),
        requests,
        connections,
    }
}

/// Answers HTTP/1.1 requests on one connection: a checkout for every POST, the product for
/// the pre-flight's lookup, 404 otherwise.
async fn serve_checkouts(mut conn: impl AsyncRead + AsyncWrite + Unpin, counter: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: serde_json::Value =
            serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or_default();
        buf.drain(..head_end + length);
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let (status, answer) = if head.starts_with("post /v1/checkouts ") {
            (
                "200 OK",
                serde_json::json!({
                    "id": format!("ch_tls{n}"),
                    "object": "checkout",
                    "mode": "test",
                    "status": "pending",
                    "checkout_url": format!("https://checkout.creem.test/ch_tls{n}"),
                    "request_id": body["request_id"],
                    "product": body["product_id"],
                }),
            )
        } else if head.starts_with("get /v1/products/prod_tls ") {
            // The run's pre-flight looks the product up first.
            (
                "200 OK",
                serde_json::json!({"id": "prod_tls", "object": "product", "mode": "test"}),
            )
        } else {
            (
                "404 Not Found",
                serde_json::json!({"status": 404, "message": ["Not Found"]}),
            )
        };
        let answer = answer.to_string();
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if conn.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A CONNECT proxy that sends every tunnel to `upstream`, whatever host was asked for, and
/// records the hosts asked for.
async fn connect_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                record.lock().unwrap().push(line);
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, seen)
}

const ROWS: usize = 3;

fn write_campaign(dir: &Path) {
    std::fs::write(
        dir.join("campaign.yaml"),
        "campaign: tls\ncustomers: customers.csv\ncheckout:\n  product_id: prod_tls\n  customer:\n    email: \"{{ email }}\"\n",
    )
    .unwrap();
    let mut csv = String::from("email\n");
    for i in 0..ROWS {
        csv.push_str(&format!("u{i}@example.com\n"));
    }
    std::fs::write(dir.join("customers.csv"), csv).unwrap();
}

/// Runs `creem-batch run campaign.yaml --base-url URL` with a test key and no inherited
/// certificate or proxy settings, plus `env`.
async fn run(dir: &Path, base_url: &str, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_creem-batch"));
    cmd.args(["run", "campaign.yaml", "--quiet", "--base-url", base_url])
        .current_dir(dir)
        .env("CREEM_API_KEY", "creem_test_TLSKEY");
    for var in [
        "CREEM_API_BASE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    crate::common::process::exit_and_text(cmd).await
}

fn created_rows(dir: &Path) -> usize {
    let ledger = std::fs::read_to_string(dir.join("tls.results.csv")).unwrap_or_default();
    ledger.lines().filter(|l| l.contains(",created,")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_trusts_the_ca_named_by_ssl_cert_file() {
    let server = https_server().await;
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path());
    let ca = dir.path().join("company-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let url = format!("https://localhost:{}", server.addr.port());
    let (code, text) = run(dir.path(), &url, &[("SSL_CERT_FILE", ca.to_str().unwrap())]).await;
    assert_eq!(code, 0, "{text}");
    assert_eq!(created_rows(dir.path()), ROWS, "{text}");
    // The rows, and the pre-flight's one product lookup.
    assert_eq!(server.requests.load(Ordering::SeqCst), ROWS + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_stops_the_run_at_once() {
    let server = https_server().await;
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path());
    let url = format!("https://localhost:{}", server.addr.port());
    let (code, text) = run(dir.path(), &url, &[]).await;
    assert_eq!(code, 3, "{text}");
    for part in [
        "TLS connection to localhost failed",
        "signed by an authority this machine does not trust",
        "SSL_CERT_FILE",
        "not retried",
    ] {
        assert!(text.contains(part), "lacks {part:?}:\n{text}");
    }
    assert!(!text.contains("InvalidCertificate"), "Debug text:\n{text}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
    // No retry: at most one attempt per row (those already started when the first failed).
    let connections = server.connections.load(Ordering::SeqCst);
    assert!(
        (1..=ROWS).contains(&connections),
        "{connections} connections"
    );
    assert_eq!(created_rows(dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_ssl_cert_file_is_named_before_anything_is_sent() {
    let server = https_server().await;
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path());
    let url = format!("https://localhost:{}", server.addr.port());
    let (code, text) = run(
        dir.path(),
        &url,
        &[("SSL_CERT_FILE", "/nonexistent/ca.pem")],
    )
    .await;
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("SSL_CERT_FILE=/nonexistent/ca.pem cannot be read"),
        "{text}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

/// `creem.test` resolves nowhere: the run reaches the server only through the proxy, which
/// gets the host name in its CONNECT line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_carries_the_requests() {
    let server = https_server().await;
    let (proxy, seen) = connect_proxy(server.addr).await;
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path());
    let ca = dir.path().join("company-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let proxy_url = format!("http://{proxy}");
    let (code, text) = run(
        dir.path(),
        "https://creem.test",
        &[
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ("HTTPS_PROXY", &proxy_url),
        ],
    )
    .await;
    assert_eq!(code, 0, "{text}");
    assert_eq!(created_rows(dir.path()), ROWS);
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|line| line.starts_with("CONNECT creem.test:443 ")),
        "{seen:?}"
    );
}

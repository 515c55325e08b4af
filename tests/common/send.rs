//! Helpers for sending tests: a campaign in a temp dir, the binary pointed at a local server.

use std::path::{Path, PathBuf};
use std::process::Output;

pub const KEY: &str = "creem_test_SECRETKEY123456";

/// A campaign of `rows` customers in a fresh temp dir; returns the dir and the YAML path.
pub fn campaign(rows: usize, send: &str) -> (tempfile::TempDir, PathBuf) {
    let mut csv = String::from("email,name,seats\n");
    for i in 1..=rows {
        csv.push_str(&format!("user{i}@example.com,User {i},{}\n", i % 3 + 1));
    }
    campaign_with_csv(&csv, send)
}

/// The same campaign over a CSV of your own (it needs `email`, `name` and `seats` columns).
pub fn campaign_with_csv(csv: &str, send: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("customers.csv"), csv).unwrap();
    let yaml = format!(
        "campaign: test-run\ncustomers: customers.csv\noutput: out/results.csv\ncheckout:\n  product_id: prod_TEST\n  units: \"{{{{ seats }}}}\"\n  discount_code: SPRING\n  customer:\n    email: \"{{{{ email }}}}\"\n  metadata:\n    name: \"{{{{ name }}}}\"\nsend:\n{send}"
    );
    let path = dir.path().join("campaign.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

/// Runs `creem-batch run` against `base_url` with the test key, without blocking the runtime.
pub async fn run(dir: &Path, base_url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "campaign.yaml", "--base-url", base_url];
    args.extend_from_slice(extra);
    creem_batch(dir, &args, KEY).await
}

/// Runs `creem-batch ARGS` in `dir` with `key` as CREEM_API_KEY, without blocking the runtime.
pub async fn creem_batch(dir: &Path, args: &[&str], key: &str) -> Output {
    tokio::process::Command::new(super::bin())
        .args(args)
        .current_dir(dir)
        .env("CREEM_API_KEY", key)
        .env_remove("CREEM_API_BASE")
        .output()
        .await
        .expect("run creem-batch")
}

/// The output ledger as (header, rows of fields).
pub fn ledger(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(dir.join("out/results.csv")).expect("ledger exists");
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// Checks the exit code and that stdout + stderr hold every one of `parts`.
#[track_caller]
pub fn assert_output(output: &Output, code: i32, parts: &[&str]) {
    let all = text(output);
    assert_eq!(output.status.code(), Some(code), "{all}");
    for part in parts {
        assert!(all.contains(part), "{part}\n{all}");
    }
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The ledger's path in a [`campaign`] dir.
pub fn ledger_path(dir: &Path) -> PathBuf {
    dir.join("out/results.csv")
}

/// Starts `creem-batch run` in the background (stdout and stderr piped, killed if dropped).
pub fn spawn(dir: &Path, base_url: &str, extra: &[&str]) -> tokio::process::Child {
    let mut args = vec!["run", "campaign.yaml", "--base-url", base_url];
    args.extend_from_slice(extra);
    tokio::process::Command::new(super::bin())
        .args(&args)
        .current_dir(dir)
        .env("CREEM_API_KEY", KEY)
        .env_remove("CREEM_API_BASE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn creem-batch")
}

/// Polls `condition` every millisecond until it holds; fails the test after 30 s.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Sends a signal (`libc::SIGINT`, `SIGTERM`, ...) to a running child.
pub fn signal(child: &tokio::process::Child, signal: i32) {
    let pid = child.id().expect("the child is running") as libc::pid_t;
    // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// A ledger as a crash may leave it: the file parsed strictly with the csv crate (every
/// record as many fields as the header), except a torn last line, returned apart.
pub struct CrashedLedger {
    pub rows: Vec<std::collections::HashMap<String, String>>,
    pub torn_tail: Option<String>,
}

impl CrashedLedger {
    pub fn read(dir: &Path) -> CrashedLedger {
        let bytes = std::fs::read(ledger_path(dir)).expect("ledger exists");
        let (whole, torn_tail) = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) if last + 1 < bytes.len() => (
                &bytes[..=last],
                Some(String::from_utf8_lossy(&bytes[last + 1..]).into_owned()),
            ),
            Some(_) => (&bytes[..], None),
            None => panic!("not even a header: {bytes:?}"),
        };
        let mut reader = csv::Reader::from_reader(whole);
        let headers = reader.headers().expect("header").clone();
        let rows = reader
            .records()
            .map(|r| {
                let r = r.unwrap_or_else(|e| panic!("a whole record does not parse: {e}"));
                assert_eq!(r.len(), headers.len(), "{r:?}");
                headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| (h.to_owned(), v.to_owned()))
                    .collect()
            })
            .collect();
        CrashedLedger { rows, torn_tail }
    }

    /// request_ids recorded as created.
    pub fn created(&self) -> std::collections::HashSet<String> {
        self.rows
            .iter()
            .filter(|r| r["status"] == "created")
            .map(|r| r["request_id"].clone())
            .collect()
    }
}

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

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

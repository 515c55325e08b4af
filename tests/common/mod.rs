//! The one test context: [`TestEnv`] (a temp dir, optionally an in-process sandbox, the key),
//! running the binary into a [`Run`], reading the ledger back, and the redactions that make
//! whole outputs comparable as snapshots.
#![allow(dead_code)]

pub mod campaign;
pub mod http;
pub mod ledger;
pub mod process;

use std::path::{Path, PathBuf};

use creem_batch::sandbox::{Discount, MerchantConfig, Product, Sandbox, SandboxConfig};

pub use campaign::{expected_request_id, Campaign, CAMPAIGN_FILE, CUSTOMERS_FILE, MINIMAL_YAML};
pub use ledger::{CrashedLedger, Row};
pub use process::{signal, wait_until, Run};

/// The test API key every test sends with (and checks is never printed or written).
pub const KEY: &str = "creem_test_SECRETKEY123456";

/// The `send:` section of most sending tests: no rate limit, four requests in flight.
pub const FAST: &str = "  rate: unlimited\n  concurrency: 4\n";

/// Every subcommand, for the tests that go through each one's `--help`.
pub const COMMANDS: [&str; 11] = [
    "init",
    "check",
    "run",
    "status",
    "verify-redirect",
    "reconcile",
    "sandbox",
    "schema",
    "completions",
    "export",
    "report",
];

/// The ledger's path inside a campaign written by [`Campaign::sending`].
pub const OUTPUT: &str = "out/results.csv";

/// Products the tests' campaigns name, known to every [`TestEnv`] sandbox besides the
/// examples' (an unknown one, such as `prod_typo`, gets Creem's 404 as it would from Creem).
pub const TEST_PRODUCTS: &[&str] = &[
    "prod_1",
    "prod_a",
    "prod_b",
    "prod_A",
    "prod_A1",
    "prod_B2",
    "prod_TEST",
    "prod_0",
    "prod_9",
    "prod_x",
    "prod_h",
    "prod_tls",
    "prod_other",
    "prod_d1AY2Sadk9YAvLI0pj97f",
];

/// Discount codes the tests' campaigns use, active, known to every [`TestEnv`] sandbox.
pub const TEST_DISCOUNTS: &[&str] = &["SPRING", "SUMMER", "NEWUSER20", "X"];

/// The merchant every test sandbox plays: the default (strict, the examples' catalogue) plus
/// [`TEST_PRODUCTS`] and [`TEST_DISCOUNTS`].
pub fn test_merchant() -> MerchantConfig {
    let mut merchant = MerchantConfig::default();
    merchant
        .products
        .extend(TEST_PRODUCTS.iter().map(|id| Product::new(id)));
    merchant
        .discounts
        .extend(TEST_DISCOUNTS.iter().map(|code| Discount::new(code)));
    merchant
}

/// The compiled `creem-batch` binary, built by cargo for the integration tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_creem-batch"))
}

/// The repository's root (the examples and the committed schema live there).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One test's world: its own temp dir, where runs happen, and optionally a sandbox (or any
/// base URL, e.g. wiremock's) and an API key they are given.
pub struct TestEnv {
    dir: tempfile::TempDir,
    server: Option<Sandbox>,
    base_url: Option<String>,
    key: Option<String>,
}

impl TestEnv {
    /// A temp dir; runs get no key and no base URL (nothing inherited from the shell).
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
            server: None,
            base_url: None,
            key: None,
        }
    }

    /// A temp dir and a default in-process sandbox on 127.0.0.1 port 0; runs get [`KEY`].
    pub async fn sandbox() -> TestEnv {
        TestEnv::sandbox_with(SandboxConfig::default()).await
    }

    /// As [`TestEnv::sandbox`], with faults or a key of its own.
    pub async fn sandbox_with(config: SandboxConfig) -> TestEnv {
        let server = TestEnv::start_sandbox(config).await;
        let mut env = TestEnv::new().key(Some(KEY));
        env.base_url = Some(server.base_url());
        env.server = Some(server);
        env
    }

    /// As [`TestEnv::sandbox`], playing `merchant` (a catalogue of its own).
    pub async fn sandbox_merchant(merchant: MerchantConfig) -> TestEnv {
        let server = Sandbox::start_with(
            "127.0.0.1:0".parse().expect("address"),
            SandboxConfig::default(),
            merchant,
        )
        .await
        .expect("sandbox starts");
        let mut env = TestEnv::new().key(Some(KEY));
        env.base_url = Some(server.base_url());
        env.server = Some(server);
        env
    }

    /// The one way tests start an in-process sandbox: on 127.0.0.1, port 0, as strict as
    /// Creem, knowing the example campaigns' products and [`TEST_PRODUCTS`].
    pub async fn start_sandbox(config: SandboxConfig) -> Sandbox {
        Sandbox::start_with(
            "127.0.0.1:0".parse().expect("address"),
            config,
            test_merchant(),
        )
        .await
        .expect("sandbox starts")
    }

    /// Sends to `url` (wiremock, a closed port, ...) with [`KEY`].
    pub fn at(url: impl Into<String>) -> TestEnv {
        let mut env = TestEnv::new().key(Some(KEY));
        env.base_url = Some(url.into());
        env
    }

    /// Sets (or, with `None`, removes) the key runs get in `CREEM_API_KEY`.
    pub fn key(mut self, key: Option<&str>) -> TestEnv {
        self.key = key.map(str::to_owned);
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The in-process sandbox.
    #[track_caller]
    pub fn server(&self) -> &Sandbox {
        self.server.as_ref().expect("a TestEnv::sandbox()")
    }

    /// Where sends go.
    #[track_caller]
    pub fn base_url(&self) -> String {
        self.base_url.clone().expect("a TestEnv with a server")
    }

    /// Writes `campaign.yaml` and `customers.csv` (raw bytes: BOMs and bad UTF-8 welcome);
    /// returns the campaign's path.
    pub fn campaign(&self, yaml: &str, csv: impl AsRef<[u8]>) -> PathBuf {
        self.write(CUSTOMERS_FILE, csv);
        self.yaml(yaml)
    }

    /// Writes only `campaign.yaml`; returns its path.
    pub fn yaml(&self, yaml: &str) -> PathBuf {
        self.write(CAMPAIGN_FILE, yaml)
    }

    /// Writes `contents` to `name` inside the dir; returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the folder");
        }
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// [`Campaign::sending`] over `rows` customers `user{i}@example.com`, `User {i}`, seats
    /// `i % 3 + 1`; returns the campaign's path.
    pub fn send_campaign(&self, rows: usize, send: &str) -> PathBuf {
        self.send_campaign_csv(&campaign::customers(rows), send)
    }

    /// [`Campaign::sending`] over a CSV of your own (with `email`, `name` and `seats`).
    pub fn send_campaign_csv(&self, csv: &str, send: &str) -> PathBuf {
        self.campaign(&Campaign::sending(send).build(), csv)
    }

    /// `creem-batch ARGS` in the dir, blocking (for plain `#[test]`s).
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_at(self.path(), args)
    }

    /// `creem-batch ARGS` in `dir` (a sub-folder, the repository), blocking.
    pub fn run_at(&self, dir: &Path, args: &[&str]) -> Run {
        let mut command = self.command(args);
        command.current_dir(dir);
        Run::from_output(command.output().expect("run creem-batch"))
    }

    /// `creem-batch ARGS` set up like every run here, for a test that spawns it itself (to
    /// read its output as it comes, or close a pipe early).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(bin());
        self.prepare(&mut command, args);
        command
    }

    /// `creem-batch ARGS` in the repository, no key (the examples, the schema).
    pub fn in_repo(args: &[&str]) -> Run {
        let env = TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
            server: None,
            base_url: None,
            key: None,
        };
        env.run_at(repo(), args)
    }

    /// `creem-batch ARGS` in the dir, without blocking the runtime the sandbox answers on.
    pub async fn run_async(&self, args: &[&str]) -> Run {
        self.run_async_with_key(self.key.as_deref(), args).await
    }

    /// [`TestEnv::run_async`] with another key (a wrong one, a live one) or none.
    pub async fn run_async_with_key(&self, key: Option<&str>, args: &[&str]) -> Run {
        let mut command = tokio::process::Command::new(bin());
        self.prepare(command.as_std_mut(), args);
        command.env_remove("CREEM_API_KEY");
        if let Some(key) = key {
            command.env("CREEM_API_KEY", key);
        }
        Run::from_output(command.output().await.expect("run creem-batch"))
    }

    /// `creem-batch run campaign.yaml --base-url <server> EXTRA`.
    pub async fn send(&self, extra: &[&str]) -> Run {
        let base = self.base_url();
        let mut args = vec!["run", CAMPAIGN_FILE, "--base-url", &base];
        args.extend_from_slice(extra);
        self.run_async(&args).await
    }

    /// `creem-batch run campaign.yaml --base-url URL EXTRA`: a second server, a closed port.
    pub async fn send_to(&self, url: &str, extra: &[&str]) -> Run {
        let mut args = vec!["run", CAMPAIGN_FILE, "--base-url", url];
        args.extend_from_slice(extra);
        self.run_async(&args).await
    }

    /// `creem-batch COMMAND ARGS --base-url <server>` (status, reconcile, ...).
    pub async fn command_at_server(&self, args: &[&str]) -> Run {
        let base = self.base_url();
        let mut all = args.to_vec();
        all.extend_from_slice(&["--base-url", &base]);
        self.run_async(&all).await
    }

    /// Moves each `(row, status)` checkout of `rows` (1-based rows of the ledger) to that
    /// status in the sandbox, as a customer would, then runs `status` to read them back.
    pub async fn move_checkouts_and_refresh(&self, rows: &[Row], moves: &[(usize, &str)]) {
        for &(row, status) in moves {
            assert!(self
                .server()
                .set_checkout_status(&rows[row - 1]["checkout_id"], status));
        }
        self.command_at_server(&["status", CAMPAIGN_FILE, "-q"])
            .await
            .assert_exit(0);
    }

    /// `creem-batch check campaign.yaml`.
    pub fn check(&self) -> Run {
        self.run(&["check", CAMPAIGN_FILE])
    }

    /// `creem-batch run --dry-run campaign.yaml`.
    pub fn dry_run(&self) -> Run {
        self.run(&["run", "--dry-run", CAMPAIGN_FILE])
    }

    /// Starts [`TestEnv::send`] in the background (output piped, killed if dropped).
    pub fn spawn_send(&self, extra: &[&str]) -> tokio::process::Child {
        let base = self.base_url();
        let mut args = vec!["run", CAMPAIGN_FILE, "--base-url", &base];
        args.extend_from_slice(extra);
        let mut command = tokio::process::Command::new(bin());
        self.prepare(command.as_std_mut(), &args);
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn creem-batch")
    }

    fn prepare(&self, command: &mut std::process::Command, args: &[&str]) {
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("CREEM_API_KEY")
            .env_remove("CREEM_API_BASE")
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            // `--help` wraps to COLUMNS when it is set: whole outputs must not depend on it.
            .env_remove("COLUMNS");
        if let Some(key) = &self.key {
            command.env("CREEM_API_KEY", key);
        }
    }

    /// The ledger at [`OUTPUT`].
    pub fn ledger_path(&self) -> PathBuf {
        self.path().join(OUTPUT)
    }

    /// The ledger at [`OUTPUT`], parsed: one map per record.
    #[track_caller]
    pub fn ledger(&self) -> Vec<Row> {
        ledger::read(&self.ledger_path())
    }

    /// The ledger at [`OUTPUT`] as a crash may leave it.
    #[track_caller]
    pub fn crashed_ledger(&self) -> CrashedLedger {
        CrashedLedger::read(&self.ledger_path())
    }

    /// A run as one redacted text, exit code, stdout and stderr together: what snapshot tests
    /// compare. After an intended change of wording, `INSTA_UPDATE=always cargo test` and
    /// review the diff of `tests/snapshots/`.
    pub fn snapshot(&self, run: &Run) -> String {
        self.redact(&run.to_string())
    }

    /// [`TestEnv::snapshot`] with timings and rates replaced too (the summaries of sends).
    pub fn snapshot_timed(&self, run: &Run) -> String {
        redact_timings(&self.snapshot(run))
    }

    /// `text` with what differs from test to test replaced: this dir, the server's address, any
    /// other loopback port, and trace_ids. Snapshot tests compare through this (and, for the summaries of
    /// real sends, [`redact_timings`] as well).
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        // Canonicalised too: macOS-style /tmp symlinks print either way.
        if let Ok(real) = self.path().canonicalize() {
            text = text.replace(&*real.to_string_lossy(), "[DIR]");
        }
        text = text.replace(&*self.path().to_string_lossy(), "[DIR]");
        if let Some(base) = &self.base_url {
            text = text.replace(base.as_str(), "[SERVER]");
        }
        replace_all(
            &text,
            &[
                (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
                // The sandbox's trace_ids, new for every answer.
                (
                    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                    "[TRACE_ID]",
                ),
            ],
        )
    }
}

impl Default for TestEnv {
    fn default() -> TestEnv {
        TestEnv::new()
    }
}

/// Replaces durations and rates, which change from run to run.
pub fn redact_timings(text: &str) -> String {
    replace_all(
        text,
        &[
            (r"\b\d+(\.\d+)? req/s", "[RATE] req/s"),
            (r"\b\d+(\.\d+)?/s\b", "[RATE]/s"),
            (r"\b\d+(\.\d+)?(ms|µs|s)\b", "[TIME]"),
        ],
    )
}

fn replace_all(text: &str, patterns: &[(&str, &str)]) -> String {
    let mut text = text.to_owned();
    for (pattern, with) in patterns {
        let re = regex::Regex::new(pattern).expect("a valid pattern");
        text = re.replace_all(&text, *with).into_owned();
    }
    text
}

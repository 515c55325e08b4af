//! Helpers shared by the integration tests: temp dirs, running the binary.
#![allow(dead_code)]

pub mod sandbox;
pub mod send;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The compiled `creem-batch` binary, built by cargo for the integration tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_creem-batch"))
}

/// Runs the binary with `args` in `dir`, without any inherited Creem variables.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("CREEM_API_KEY")
        .env_remove("CREEM_API_BASE")
        .output()
        .expect("run creem-batch")
}

/// The file names [`write_campaign`] uses inside a test directory.
pub const CAMPAIGN_FILE: &str = "campaign.yaml";
pub const CUSTOMERS_FILE: &str = "customers.csv";

/// The smallest useful campaign: campaign `spring`, customers by `{{ email }}`.
pub const MINIMAL_YAML: &str = "\
campaign: spring
customers: customers.csv
checkout:
  product_id: prod_1
  customer:
    email: \"{{ email }}\"
";

/// Builds a campaign YAML from [`MINIMAL_YAML`]'s parts, adding lines where needed.
#[derive(Debug, Clone)]
pub struct CampaignYaml {
    name: String,
    top: Vec<String>,
    checkout: Vec<String>,
    customer: Option<String>,
}

impl Default for CampaignYaml {
    fn default() -> CampaignYaml {
        CampaignYaml::new()
    }
}

impl CampaignYaml {
    /// The same campaign as [`MINIMAL_YAML`].
    pub fn new() -> CampaignYaml {
        CampaignYaml {
            name: "spring".to_owned(),
            top: Vec::new(),
            checkout: Vec::new(),
            customer: Some("email: \"{{ email }}\"".to_owned()),
        }
    }

    pub fn name(mut self, name: &str) -> CampaignYaml {
        self.name = name.to_owned();
        self
    }

    /// Adds top-level YAML (e.g. `"key: [email, user_id]"`, or a whole `csv:` section).
    pub fn top(mut self, yaml: &str) -> CampaignYaml {
        self.top.push(yaml.trim_end().to_owned());
        self
    }

    /// Adds lines under `checkout:`, written without indentation (it is added).
    pub fn checkout(mut self, yaml: &str) -> CampaignYaml {
        for line in yaml.trim_end().lines() {
            self.checkout.push(format!("  {line}"));
        }
        self
    }

    /// Replaces the `customer:` section's lines (without indentation); `None` leaves it out.
    pub fn customer(mut self, yaml: Option<&str>) -> CampaignYaml {
        self.customer = yaml.map(str::to_owned);
        self
    }

    pub fn build(&self) -> String {
        let mut yaml = format!("campaign: {}\ncustomers: {CUSTOMERS_FILE}\n", self.name);
        for top in &self.top {
            yaml.push_str(top);
            yaml.push('\n');
        }
        yaml.push_str("checkout:\n  product_id: prod_1\n");
        if let Some(customer) = &self.customer {
            yaml.push_str("  customer:\n");
            for line in customer.lines() {
                yaml.push_str(&format!("    {line}\n"));
            }
        }
        for line in &self.checkout {
            yaml.push_str(line);
            yaml.push('\n');
        }
        yaml
    }
}

/// Writes `campaign.yaml` and `customers.csv` (raw bytes: BOMs and bad UTF-8 welcome) into
/// `dir`; returns the campaign's path.
pub fn write_campaign(dir: &Path, yaml: &str, csv: impl AsRef<[u8]>) -> PathBuf {
    std::fs::write(dir.join(CUSTOMERS_FILE), csv).expect("write customers.csv");
    write_yaml(dir, yaml)
}

/// Writes only `campaign.yaml` into `dir`; returns its path.
pub fn write_yaml(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join(CAMPAIGN_FILE);
    std::fs::write(&path, yaml).expect("write campaign.yaml");
    path
}

/// A finished run of the binary, with its output as text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit code\n{self}");
        self
    }

    /// Asserts stdout contains every one of `parts`.
    #[track_caller]
    pub fn stdout_has(&self, parts: &[&str]) -> &Run {
        for part in parts {
            assert!(self.stdout.contains(part), "stdout lacks {part:?}\n{self}");
        }
        self
    }

    /// Asserts stderr contains every one of `parts`.
    #[track_caller]
    pub fn stderr_has(&self, parts: &[&str]) -> &Run {
        for part in parts {
            assert!(self.stderr.contains(part), "stderr lacks {part:?}\n{self}");
        }
        self
    }

    /// The dry-run lines on stdout, parsed.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{self}"))
            })
            .collect()
    }

    /// The dry-run line of data row `row`, if it would be sent.
    pub fn line_for_row(&self, row: u64) -> Option<serde_json::Value> {
        self.json_lines()
            .into_iter()
            .find(|line| line["row"].as_u64() == Some(row))
    }

    /// The rows that would be sent, in output order.
    pub fn sent_rows(&self) -> Vec<u64> {
        self.json_lines()
            .iter()
            .map(|line| line["row"].as_u64().expect("row is an integer"))
            .collect()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `creem-batch check campaign.yaml` in `dir`.
pub fn check(dir: &Path) -> Run {
    Run::from_output(run_in(dir, &["check", CAMPAIGN_FILE]))
}

/// `creem-batch run --dry-run campaign.yaml` in `dir`.
pub fn dry_run(dir: &Path) -> Run {
    Run::from_output(run_in(dir, &["run", "--dry-run", CAMPAIGN_FILE]))
}

/// A fresh temporary directory for one test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The default request_id, computed here from the spec (not with the crate's code):
/// `<campaign>-` + the first 16 hex digits of SHA-256(`campaign\x1Fvalue1\x1Fvalue2...`),
/// values trimmed, the `email` column lowercased.
pub fn expected_request_id(campaign: &str, key: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut text = campaign.as_bytes().to_vec();
    for (column, value) in key {
        text.push(0x1F);
        let value = value.trim();
        let value = if *column == "email" {
            value.to_lowercase()
        } else {
            value.to_owned()
        };
        text.extend_from_slice(value.as_bytes());
    }
    let hex = hex::encode(Sha256::digest(&text));
    format!("{campaign}-{}", &hex[..16])
}

//! Command-line surface. Flags only describe what the user asked for; the commands decide.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// What `--version` prints: the version and the commit built from (build.rs; "unknown"
/// without git), which a support request needs.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CREEM_BATCH_COMMIT"),
    ")"
);

/// Turn a campaign YAML and a customers CSV into one Creem checkout link per customer.
#[derive(Debug, Parser)]
#[command(name = "creem-batch", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented campaign YAML for a customers CSV, wired to its columns.
    Init(InitArgs),
    /// Validate the campaign and every CSV row without sending anything.
    Check(CheckArgs),
    /// Send the batch (test host unless --live), or preview it with --dry-run.
    Run(RunArgs),
    /// Fetch every created checkout's current status into the output CSV.
    Status(StatusArgs),
    /// Check the signature of a success_url redirect (exit 0 valid, 1 invalid).
    VerifyRedirect(VerifyRedirectArgs),
    /// Mark rows completed from saved webhook events, without any API call.
    Reconcile(ReconcileArgs),
    /// Run a local stand-in for the Creem checkout API, with optional faults.
    Sandbox(SandboxArgs),
    /// Print the JSON Schema of the campaign file, for editors.
    Schema,
    /// Print a shell completion script, e.g. `creem-batch completions bash`.
    Completions(CompletionsArgs),
}

/// Where the API key comes from. Never a flag value: flags end up in shell history and `ps`.
#[derive(Debug, Args, Clone, Default)]
pub struct KeyArgs {
    /// Read the API key from this file instead of CREEM_API_KEY.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

/// Which Creem host to talk to.
#[derive(Debug, Args, Clone, Default)]
pub struct HostArgs {
    /// Talk to the live host https://api.creem.io instead of the test host.
    #[arg(long)]
    pub live: bool,
    /// Override the API host (http:// only for loopback addresses).
    #[arg(long, env = "CREEM_API_BASE", value_name = "URL")]
    pub base_url: Option<String>,
    /// Start the built-in sandbox in-process and talk to it (no key needed).
    #[arg(long, conflicts_with = "live")]
    pub sandbox: bool,
}

/// Overrides for the campaign's `send:` section.
#[derive(Debug, Args, Clone, Default)]
pub struct SendArgs {
    /// Ceiling on requests started, e.g. 10/s or 300/min (`unlimited` for none).
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// How many requests may start back to back.
    #[arg(long, value_name = "N")]
    pub burst: Option<u32>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Attempts per row, first try included.
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Per-request timeout, e.g. 30s or 1500ms.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The customers CSV; the campaign is written beside it as <name>.yaml.
    pub customers: PathBuf,
    /// The Creem product to sell (prod_...), or a template such as "{{ product }}".
    #[arg(long, value_name = "PRODUCT_ID")]
    pub product: Option<String>,
    /// Campaign name; default: the CSV's file name, made safe ([A-Za-z0-9_-]).
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Overwrite the campaign file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The campaign YAML file.
    pub campaign: PathBuf,
    /// Print one JSON summary object on stdout at the end.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The campaign YAML file.
    pub campaign: PathBuf,
    /// Print the request bodies that would be sent (one JSON line per row); send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output CSV (the ledger); default from the campaign.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Send at most N new rows (a canary); the rest stay `pending`.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Create new checkouts for created rows whose body changed since.
    #[arg(long)]
    pub recreate_changed: bool,
    /// Use an output file that belongs to another campaign anyway.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation with --live.
    #[arg(long)]
    pub yes: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print one JSON summary object on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// Threads to send from (default: one per core when the rate is unlimited and 32 or
    /// more requests may be in flight, half as many when the server is on this machine).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The output CSV, or the campaign YAML (its output is used).
    pub target: PathBuf,
    /// Break counts and conversion down by this column: one of the customers CSV (when given
    /// the campaign YAML; it wins on a name clash) or of the ledger.
    #[arg(long, value_name = "COLUMN")]
    pub by: Option<String>,
    /// Skip rows already completed or expired.
    #[arg(long)]
    pub only_open: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print one JSON summary object on stdout at the end.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Args)]
pub struct VerifyRedirectArgs {
    /// The full redirect URL Creem sent the customer to.
    pub url: String,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The output CSV (ledger) to update.
    pub output: PathBuf,
    /// Webhook events, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Allow a non-loopback listen address.
    #[arg(long)]
    pub public: bool,
    /// Accept only this exact API key (default: any non-empty key).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Seed for the random faults, so a rehearsal can be repeated.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of requests answered 500 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Share of requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Retry-After seconds sent with 429 answers.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// Answer 429 beyond this many requests per second (bursts of up to N pass).
    #[arg(long, value_name = "N")]
    pub max_rps: Option<u32>,
    /// Added latency per request, e.g. 20ms, or a range 5ms..50ms.
    #[arg(long, value_name = "DURATION")]
    pub latency: Option<String>,
    /// Share of connections closed before answering (nothing created).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share of connections closed after the checkout was created (the ambiguous case).
    #[arg(long, default_value_t = 0.0)]
    pub drop_after_create_rate: f64,
    /// Answer every POST with the same 400 (a systematic failure).
    #[arg(long)]
    pub reject_all: bool,
    /// Threads to answer from (default: half the cores, leaving the rest to the client that
    /// runs on the same machine).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
}

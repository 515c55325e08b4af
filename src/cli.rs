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
#[command(after_help = examples::TOP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented campaign YAML for a customers CSV, wired to its columns.
    #[command(after_help = examples::INIT)]
    Init(InitArgs),
    /// Validate the campaign and every CSV row without sending anything.
    #[command(after_help = examples::CHECK)]
    Check(CheckArgs),
    /// Send the batch (test host unless --live), or preview it with --dry-run.
    #[command(after_help = examples::RUN)]
    Run(RunArgs),
    /// Fetch the status of checkouts that can still change into the output CSV, and count.
    #[command(after_help = examples::STATUS)]
    Status(StatusArgs),
    /// Write one self-contained HTML page: outcomes, statuses, conversion, completions.
    #[command(after_help = examples::REPORT)]
    Report(ReportArgs),
    /// Write the checkout links as a file for an email tool (Mailchimp, HubSpot).
    #[command(after_help = examples::EXPORT)]
    Export(ExportArgs),
    /// Check the signature of a success_url redirect (exit 0 valid, 1 invalid).
    #[command(after_help = examples::VERIFY_REDIRECT)]
    VerifyRedirect(VerifyRedirectArgs),
    /// Mark rows completed from saved webhook events, without any API call.
    #[command(after_help = examples::RECONCILE)]
    Reconcile(ReconcileArgs),
    /// Run a local stand-in for the Creem checkout API, with optional faults.
    #[command(after_help = examples::SANDBOX)]
    Sandbox(SandboxArgs),
    /// Print the JSON Schema of the campaign file, for editors.
    #[command(after_help = examples::SCHEMA)]
    Schema,
    /// Print a shell completion script, e.g. `creem-batch completions bash`.
    #[command(after_help = examples::COMPLETIONS)]
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
    /// Requests started per unit of time: `auto` (adapts to what Creem takes), a fixed
    /// ceiling such as 10/s or 300/min, or `unlimited`.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// The most `--rate auto` may reach, e.g. 100/s.
    #[arg(long, value_name = "RATE")]
    pub max_rate: Option<String>,
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
pub struct ExportArgs {
    /// The campaign YAML (its customers file gives --columns), or an output CSV (the ledger).
    pub target: PathBuf,
    /// Customers-file columns to add between the email and the link, e.g. "First Name,Company".
    #[arg(long, value_name = "NAMES")]
    pub columns: Option<String>,
    /// Name the columns as this email tool's import expects.
    #[arg(long = "for", value_enum, value_name = "TOOL")]
    pub tool: Option<crate::export::Tool>,
    /// File format; default: from --out's extension, else csv (UTF-8 with a BOM).
    #[arg(long, value_enum)]
    pub format: Option<crate::export::Format>,
    /// Where to write; default beside the ledger, e.g. <ledger>.export.csv.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The ledger to read, when the run wrote it elsewhere (run --out).
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
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
    /// Also look up every product and discount code with Creem (the run's pre-flight; needs
    /// the key; sends no checkout).
    #[arg(long)]
    pub online: bool,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub key: KeyArgs,
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
    /// Give these rows a new checkout, under request_id `<request_id>-r<N>` (N: the row's
    /// re-issue count); every other row stays as it is.
    #[arg(long, value_name = "ROWS", conflicts_with = "recreate_changed")]
    pub reissue: Option<ReissueRows>,
    /// With --reissue expired: use the ledger's checkout statuses instead of fetching them.
    #[arg(long, requires = "reissue")]
    pub no_refresh: bool,
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
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub send: SendArgs,
}

/// The rows `run --reissue` gives a new checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReissueRows {
    // Plain comments: doc comments would turn `run --help` into the long layout.
    // Created rows whose checkout expired.
    Expired,
    // Rows Creem refused with a 4xx (not 401, 403 or 429), once the campaign is fixed.
    FailedPermanently,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The output CSV, or the campaign YAML (its output is used).
    pub target: PathBuf,
    /// Break counts and conversion down by this column: one of the customers CSV (when given
    /// the campaign YAML; it wins on a name clash), of the ledger, or a rendered body field
    /// (`discount_code`, `metadata.segment`).
    #[arg(long, value_name = "COLUMN")]
    pub by: Option<String>,
    /// Fetch every created checkout, completed and expired ones too (by default those are
    /// skipped: they never change).
    #[arg(long, conflicts_with = "offline")]
    pub all: bool,
    /// Fetch nothing: count the ledger as it is (no API key needed).
    #[arg(long)]
    pub offline: bool,
    /// Kept for scripts: skipping completed and expired rows is now the default.
    #[arg(long, hide = true)]
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
pub struct ReportArgs {
    /// The campaign YAML (its output is used), or the output CSV.
    pub target: PathBuf,
    /// Show conversion per value of this column: of the customers CSV (with the campaign
    /// YAML), of the ledger, or a rendered body field (`metadata.segment`).
    #[arg(long, value_name = "COLUMN")]
    pub by: Option<String>,
    /// Where to write the page (default: next to the output CSV, `NAME.report.html`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
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
    /// Serve at most K API requests at once, each taking --latency; the rest wait in line (a
    /// server whose latency grows with the load).
    #[arg(long, value_name = "K", requires = "latency")]
    pub workers: Option<u32>,
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
    /// POST a signed `checkout.completed` event here when a checkout is paid.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Secret the webhook events are signed with (`creem-signature`).
    #[arg(
        long,
        env = "CREEM_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub webhook_secret: Option<String>,
    /// A product the sandbox knows: ID[,name=TEXT][,price=CENTS][,currency=EUR]. Repeat for
    /// more; replaces the default catalogue (the example campaigns' products).
    #[arg(long, value_name = "ID[,OPTION=VALUE...]")]
    pub product: Vec<String>,
    /// A discount code the sandbox knows: CODE[,status=active|expired|draft|...]
    /// [,expires=RFC3339][,products=prod_a+prod_b][,max=N][,redeemed=N][,percent=N]. Repeat
    /// for more; replaces the default catalogue (the example campaigns' codes).
    #[arg(long, value_name = "CODE[,OPTION=VALUE...]")]
    pub discount: Vec<String>,
    /// Accept unknown top-level properties (Creem, and by default the sandbox, answer 400
    /// `property X should not exist`).
    #[arg(long)]
    pub allow_unknown_properties: bool,
    /// Accept checkouts for products not in the catalogue (Creem, and by default the
    /// sandbox, answer 404 `Product not found`).
    #[arg(long)]
    pub allow_unknown_products: bool,
    /// Both of the above: more lenient than Creem.
    #[arg(long)]
    pub lenient: bool,
}

/// The examples that end each command's `--help`: a new user copies these first.
mod examples {
    pub const TOP: &str = "\
Start with `creem-batch init CUSTOMERS.csv`: it writes a campaign beside the file.

Examples:
  creem-batch init customers.csv --product prod_123   # write customers.yaml
  creem-batch run --dry-run customers.yaml            # preview every request body
  creem-batch run customers.yaml --sandbox            # a rehearsal against a local Creem
  creem-batch export customers.yaml --for mailchimp   # the links, for your email tool";
    pub const INIT: &str = "\
Examples:
  creem-batch init customers.csv
  creem-batch init 'Spring list.csv' --product prod_123 --campaign spring-2026
  creem-batch init customers.csv --force               # write customers.yaml again";
    pub const CHECK: &str = "\
Examples:
  creem-batch check customers.yaml
  creem-batch check customers.yaml --json              # one summary object, for CI
  creem-batch check customers.yaml --online            # look up products and codes too";
    pub const RUN: &str = "\
Examples:
  creem-batch run --dry-run customers.yaml             # send nothing; print the bodies
  creem-batch run customers.yaml --limit 10            # a canary on the test host
  creem-batch run customers.yaml --live                # the real thing (asks first)";
    pub const STATUS: &str = "\
Examples:
  creem-batch status customers.yaml
  creem-batch status customers.yaml --by plan          # conversion per plan
  creem-batch status out/results.csv --offline --json";
    pub const REPORT: &str = "\
Examples:
  creem-batch status customers.yaml && creem-batch report customers.yaml
  creem-batch report customers.yaml --by segment --out spring.html";
    pub const VERIFY_REDIRECT: &str = "\
Examples:
  creem-batch verify-redirect 'https://shop.example/thanks?checkout_id=ch_1&signature=...'
  CREEM_API_KEY=creem_test_... creem-batch verify-redirect \"$URL\"";
    pub const RECONCILE: &str = "\
Examples:
  creem-batch reconcile out/results.csv --events webhooks.jsonl
  creem-batch reconcile customers.results.csv --events saved-events.jsonl";
    pub const SANDBOX: &str = "\
Examples:
  creem-batch sandbox                                  # a local Creem on 127.0.0.1:8787
  creem-batch sandbox --fail-rate 0.1 --throttle-rate 0.05   # a rehearsal with faults
  creem-batch sandbox --max-rps 50 --latency 5ms..50ms   # like a busy server";
    pub const SCHEMA: &str = "\
Examples:
  creem-batch schema > campaign.schema.json            # editors then check campaign files
  creem-batch schema | jq .definitions.Checkout";
    pub const COMPLETIONS: &str = "\
Examples:
  creem-batch completions bash > ~/.local/share/bash-completion/completions/creem-batch
  creem-batch completions zsh > ~/.zfunc/_creem-batch
  creem-batch completions fish > ~/.config/fish/completions/creem-batch.fish";
    pub const EXPORT: &str = "\
Examples:
  creem-batch export customers.yaml --for mailchimp --columns \"First Name,Last Name\"
  creem-batch export customers.yaml --for hubspot --out links.xlsx
  creem-batch export out/results.csv                   # email and link only";
}

//! `init CUSTOMERS.csv`: write a commented campaign beside the CSV, wired to its columns.
//!
//! The header (and the first rows) tell which column is the email, or the Creem customer id,
//! and which could give the product, the seats, the locale and a discount code. Id columns
//! become metadata entries; every other column is written as a commented-out metadata line
//! the user opts into, so personal data (addresses, phones, IPs in a Mailchimp export) is not
//! sent by default, and no column is left unmentioned. The file written is checked with the
//! same code as `check` before it is written, so a scaffold never starts with an error.
//!
//! Workbooks: the customers file is read through [`CustomerCsv`], so `init list.xlsx` works
//! once it reads workbooks; [`is_workbook`] already leaves the `csv:` delimiter lines out.

mod columns;
mod scaffold;

use std::path::{Component, Path};

use anyhow::{bail, Context};

use crate::campaign::Campaign;
use crate::cli::InitArgs;
use crate::customers::{is_workbook, CsvRow, CustomerCsv};
use crate::exit::Outcome;
use crate::render::Renderer;
use columns::Columns;
use scaffold::Scaffold;

use crate::escape::escape_control;

/// Data rows read to guess what the columns hold.
const SAMPLE_ROWS: u64 = 20;

/// Written when no product is known yet; `check` accepts it, Creem will not.
const PRODUCT_PLACEHOLDER: &str = "prod_REPLACE_ME";

const SCHEMA_FILE: &str = "campaign.schema.json";

/// Where the `#` comments start, so they line up.
const COMMENT_COLUMN: usize = 38;

pub fn run(args: InitArgs) -> anyhow::Result<Outcome> {
    let csv_path = &args.customers;
    let mut csv = CustomerCsv::open(csv_path, None)?;
    let headers = csv.headers().to_vec();
    let rows = sample(&mut csv)?;
    let columns = Columns::guess(&headers, &rows);

    let stem = csv_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match &args.campaign {
        Some(name) if valid_name(name) => name.clone(),
        Some(name) => bail!(
            "--campaign `{name}` must be 1 to 64 characters of A-Z a-z 0-9 _ - \
             (it is part of every request_id)"
        ),
        None => campaign_name(&stem),
    };
    let product = args.product.as_deref().map(str::trim);
    if product.is_some_and(str::is_empty) {
        bail!("--product must not be empty");
    }
    if let Some(product) = product {
        if !product.starts_with("prod_") && !product.contains("{{") {
            eprintln!(
                "warning: `{product}` does not look like a Creem product id (prod_...) \
                 or a template"
            );
        }
    }

    let target = csv_path.with_file_name(format!("{stem}.yaml"));
    if target == *csv_path {
        bail!(
            "{} is the customers file itself: name the CSV *.csv",
            csv_path.display()
        );
    }
    if target.exists() && !args.force {
        bail!(
            "{} already exists: not overwriting it (pass --force to replace it)",
            target.display()
        );
    }
    let schema = schema_reference(&target);
    let csv_file = csv_path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = Scaffold {
        name: &name,
        csv_file: &csv_file,
        yaml_file: &target,
        headers: &headers,
        columns: &columns,
        product,
        delimiter: csv.delimiter(),
        workbook: is_workbook(csv_path),
        schema: &schema,
    }
    .write();

    // The scaffold must pass the same checks as `check`; anything else is a bug here.
    let campaign = Campaign::parse(&target, text.clone())
        .map_err(|d| anyhow::anyhow!("internal error: the campaign written is invalid:\n{d}"))?;
    Renderer::new(&campaign, &headers)
        .map_err(|d| anyhow::anyhow!("internal error: the campaign written is invalid:\n{d}"))?;

    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options
        .open(&target)
        .with_context(|| format!("cannot write {}", target.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("cannot write {}", target.display()))?;

    print_summary(&target, &name, &headers, &columns, product, &schema);
    Ok(Outcome::Success)
}

/// The first [`SAMPLE_ROWS`] readable rows, as text.
fn sample(csv: &mut CustomerCsv) -> anyhow::Result<Vec<Vec<String>>> {
    let mut record = CsvRow::default();
    let mut rows = Vec::new();
    while record.row < SAMPLE_ROWS && csv.read(&mut record)? {
        if let Ok(fields) = csv.fields(&record) {
            rows.push(fields.iter().map(|f| f.trim().to_owned()).collect());
        }
    }
    Ok(rows)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The CSV's file name made into a campaign name: other characters become `-`.
fn campaign_name(stem: &str) -> String {
    let mut name = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_matches('-').chars().take(64).collect();
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        "campaign".to_owned()
    } else {
        name.to_owned()
    }
}

/// The `$schema` reference for a campaign written at `target`: the nearest
/// `campaign.schema.json` (beside it, or in a `campaigns/` folder of it or of a parent),
/// relative to it; else the bare file name, which `creem-batch schema` can write there.
struct SchemaRef {
    reference: String,
    found: bool,
}

fn schema_reference(target: &Path) -> SchemaRef {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let found = std::fs::canonicalize(dir).ok().and_then(|dir| {
        dir.ancestors()
            .flat_map(|a| [a.join(SCHEMA_FILE), a.join("campaigns").join(SCHEMA_FILE)])
            .find(|p| p.is_file())
            .map(|p| relative(&dir, &p))
    });
    match found {
        Some(reference) => SchemaRef {
            reference,
            found: true,
        },
        None => SchemaRef {
            reference: SCHEMA_FILE.to_owned(),
            found: false,
        },
    }
}

/// `to` relative to the folder `from` (both absolute), with `/` separators.
fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// `word` as one shell word (single-quoted when it holds anything unusual).
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:@+=".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn print_summary(
    target: &Path,
    name: &str,
    headers: &[String],
    columns: &Columns,
    product: Option<&str>,
    schema: &SchemaRef,
) {
    let column = |i: usize| format!("`{}`", escape_control(&headers[i]));
    println!("wrote {} (campaign `{name}`)", target.display());
    match (columns.email, columns.customer_id) {
        (Some(i), _) => println!("  customer email: column {}", column(i)),
        (None, Some(i)) => println!("  customer id: column {}", column(i)),
        (None, None) => println!(
            "  customer: no email column found; edit `customer:` in the file (it is commented out)"
        ),
    }
    println!("  key: column {}", column(columns.key()));
    for (what, index) in [
        ("product_id", columns.product.filter(|_| product.is_none())),
        ("units", columns.units),
        ("locale", columns.locale),
        ("discount_code", columns.discount),
    ] {
        if let Some(i) = index {
            println!("  {what}: column {}", column(i));
        }
    }
    if !columns.ids.is_empty() {
        let ids: Vec<String> = columns.ids.iter().map(|&i| column(i)).collect();
        println!("  metadata: {} (ids)", ids.join(", "));
    }
    let wired = columns.wired();
    let others = (0..headers.len())
        .filter(|i| !wired.contains(i) && !columns.ids.contains(i))
        .count();
    if others > 0 {
        println!(
            "  {others} other column{} commented out under metadata: not sent unless you opt in",
            if others == 1 { "" } else { "s" }
        );
    }
    if product.is_none() && columns.product.is_none() {
        println!(
            "  product_id: {PRODUCT_PLACEHOLDER}: set your Creem product in the file \
             (or init again with --product prod_... --force)"
        );
    }
    if !schema.found {
        println!(
            "  editor checks: creem-batch schema > {}",
            shell_word(&target.with_file_name(SCHEMA_FILE).display().to_string())
        );
    }
    println!(
        "next: creem-batch check {}",
        shell_word(&target.display().to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::columns::looks_like_locale;
    use super::scaffold::{metadata_key, yaml_string};
    use super::*;

    #[test]
    fn campaign_names_from_file_names() {
        assert_eq!(campaign_name("spring-sale-2026"), "spring-sale-2026");
        assert_eq!(campaign_name("Spring Sale (final)"), "Spring-Sale-final");
        assert_eq!(campaign_name("клиенты"), "campaign");
        assert_eq!(campaign_name(&"a".repeat(80)).len(), 64);
    }

    #[test]
    fn metadata_keys_and_yaml_strings() {
        assert_eq!(metadata_key("First Name"), "first_name");
        assert_eq!(metadata_key("2FA enabled?"), "c_2fa_enabled");
        assert_eq!(metadata_key("名前"), "");
        assert_eq!(yaml_string("email"), "email");
        assert_eq!(yaml_string("yes"), "\"yes\"");
        assert_eq!(yaml_string("E-Mail Address"), "\"E-Mail Address\"");
        assert_eq!(yaml_string("{{ email }}"), "\"{{ email }}\"");
    }

    #[test]
    fn locales_and_relative_paths() {
        assert!(looks_like_locale("zh-CN") && looks_like_locale("es-419"));
        assert!(!looks_like_locale("English"));
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/campaigns/x.json")),
            "../../campaigns/x.json"
        );
        assert_eq!(relative(Path::new("/a"), Path::new("/a/x.json")), "x.json");
    }

    #[test]
    fn email_column_by_name_then_by_values() {
        let h = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let rows = |values: &[&[&str]]| {
            values
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect::<Vec<Vec<String>>>()
        };
        let sample = rows(&[&["Ana", "ana@example.com"]]);
        assert_eq!(
            Columns::guess(&h(&["name", "E-Mail"]), &sample).email,
            Some(1)
        );
        assert_eq!(
            Columns::guess(&h(&["name", "contact"]), &sample).email,
            Some(1)
        );
        assert_eq!(
            Columns::guess(&h(&["name", "x"]), &rows(&[&["a", "b"]])).email,
            None
        );
        // A column named email wins even when its values are bad.
        assert_eq!(
            Columns::guess(&h(&["n", "Email"]), &rows(&[&["a", "b"]])).email,
            Some(1)
        );
        let ids = rows(&[&["cust_1", "x"]]);
        let c = Columns::guess(&h(&["creem_customer_id", "name"]), &ids);
        assert_eq!((c.email, c.customer_id, c.key()), (None, Some(0), 0));
    }
}

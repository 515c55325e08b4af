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

use std::fmt::Write as _;
use std::path::{Component, Path};

use anyhow::{bail, Context};

use crate::campaign::Campaign;
use crate::cli::InitArgs;
use crate::customers::{CustomerCsv, Record};
use crate::exit::Outcome;
use crate::render::{check_email, Renderer};
use crate::template::{column_reference, is_identifier};

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
    let mut record = Record::default();
    let mut rows = Vec::new();
    while record.row < SAMPLE_ROWS && csv.read(&mut record)? {
        if let Ok(fields) = csv.fields(&record) {
            rows.push(fields.iter().map(|f| f.trim().to_owned()).collect());
        }
    }
    Ok(rows)
}

/// What init found in the CSV's columns (indexes into the header).
#[derive(Debug, Default)]
struct Columns {
    email: Option<usize>,
    customer_id: Option<usize>,
    product: Option<usize>,
    units: Option<usize>,
    locale: Option<usize>,
    discount: Option<usize>,
    /// Id columns (a record or user id): sent as metadata, to find the customer again.
    ids: Vec<usize>,
}

impl Columns {
    fn guess(headers: &[String], rows: &[Vec<String>]) -> Columns {
        let usable = |i: usize| column_reference(&headers[i], headers).is_some();
        // By the whole name, or its last word (`metadata.seats`, `Preferred Locale`).
        let named = |i: usize, names: &[&str]| {
            names.contains(&normalise(&headers[i]).as_str())
                || last_word(&headers[i]).is_some_and(|w| names.contains(&w.as_str()))
        };
        // Share of the sampled non-empty values that pass `test`; `None` with no values.
        let share = |i: usize, test: &dyn Fn(&str) -> bool| -> Option<f64> {
            let values: Vec<&str> = rows
                .iter()
                .map(|r| r[i].as_str())
                .filter(|v| !v.is_empty())
                .collect();
            let good = values.iter().filter(|v| test(v)).count();
            (!values.is_empty()).then(|| good as f64 / values.len() as f64)
        };
        let all = |i: usize, test: &dyn Fn(&str) -> bool| share(i, test) == Some(1.0);
        let indexes = || (0..headers.len()).filter(|&i| usable(i));
        let is_email = |v: &str| check_email(v).is_ok();

        // The email column: by its name (when its values do not contradict it), then by its
        // values, then by its name alone (`check` will show the bad values).
        let tier = |i: usize| {
            let n = normalise(&headers[i]);
            if n == "email" {
                Some(0)
            } else if EMAIL_NAMES.contains(&n.as_str()) {
                Some(1)
            } else if n.contains("email") {
                Some(2)
            } else {
                None
            }
        };
        let mostly_emails = |i: usize| share(i, &is_email).is_none_or(|s| s >= 0.5);
        let email = indexes()
            .filter(|&i| tier(i).is_some() && mostly_emails(i))
            .min_by_key(|&i| (tier(i), i))
            .or_else(|| indexes().find(|&i| all(i, &is_email)))
            .or_else(|| {
                indexes()
                    .filter(|&i| tier(i).is_some_and(|t| t < 2))
                    .min_by_key(|&i| (tier(i), i))
            });
        let customer_id = match email {
            Some(_) => None,
            None => indexes().find(|&i| all(i, &|v| v.starts_with("cust_"))),
        };
        let product =
            indexes().find(|&i| named(i, PRODUCT_NAMES) && all(i, &|v| v.starts_with("prod_")));
        let units = indexes().find(|&i| {
            named(i, UNITS_NAMES) && all(i, &|v| v.parse::<u64>().is_ok_and(|n| n >= 1))
        });
        let locale = indexes().find(|&i| named(i, LOCALE_NAMES) && all(i, &looks_like_locale));
        let is_code = |v: &str| v.len() <= 64 && !v.contains(char::is_whitespace);
        let discount = indexes().find(|&i| {
            DISCOUNT_NAMES.contains(&normalise(&headers[i]).as_str())
                && share(i, &is_code).is_none_or(|s| s == 1.0)
        });
        let mut columns = Columns {
            email,
            customer_id,
            product,
            units,
            locale,
            discount,
            ids: Vec::new(),
        };
        let wired = columns.wired();
        columns.ids = indexes()
            .filter(|&i| !wired.contains(&i) && is_id_column(&headers[i]))
            .collect();
        columns
    }

    /// The columns wired to a checkout field (the others go to metadata).
    fn wired(&self) -> Vec<usize> {
        [
            self.email,
            self.customer_id,
            self.product,
            self.units,
            self.locale,
            self.discount,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The key columns: the email or customer id column, else the first column.
    fn key(&self) -> usize {
        self.email.or(self.customer_id).unwrap_or(0)
    }
}

/// Email column names besides `email`, compared lowercase without spaces or punctuation
/// (so `E-Mail Address` is `emailaddress`).
const EMAIL_NAMES: &[&str] = &[
    "emailaddress",
    "mail",
    "mailaddress",
    "emailadresse",
    "courriel",
    "correo",
    "correoelectronico",
    "epost",
    "邮箱",
    "电子邮件",
    "メール",
    "メールアドレス",
];
const PRODUCT_NAMES: &[&str] = &["productid", "product", "creemproductid"];
const UNITS_NAMES: &[&str] = &["units", "seats", "quantity", "qty", "licenses", "licences"];
const LOCALE_NAMES: &[&str] = &[
    "locale",
    "language",
    "lang",
    "locales",
    "preferredlocale",
    "preferredlocales",
];
const DISCOUNT_NAMES: &[&str] = &[
    "discount",
    "discountcode",
    "coupon",
    "couponcode",
    "promo",
    "promocode",
    "promotioncode",
    "voucher",
    "vouchercode",
    "rabattcode",
    "gutschein",
    "gutscheincode",
];
/// Id columns whose last word is not `id` (Mailchimp's member ids).
const ID_NAMES: &[&str] = &[
    "leid",
    "euid",
    "uuid",
    "guid",
    "userid",
    "customerid",
    "memberid",
];

/// The last word of a column name, lowercase (`metadata.seats` -> `seats`, `userId` -> `id`).
fn last_word(name: &str) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            previous_lower = false;
            words.push(String::new());
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(String::new());
        }
        previous_lower = c.is_lowercase();
        match words.last_mut() {
            Some(word) => word.extend(c.to_lowercase()),
            None => words.push(c.to_lowercase().collect()),
        }
    }
    words.into_iter().rev().find(|w| !w.is_empty())
}

/// A column that identifies a record (`Record ID`, `user_id`, `LEID`), not a person's data.
/// Tax and card ids are the customer's own data, not a record's: they stay opt-in.
fn is_id_column(name: &str) -> bool {
    let normal = normalise(name);
    let personal = ["vat", "tax", "card", "passport", "national", "ssn"];
    if personal.iter().any(|p| normal.contains(p)) {
        return false;
    }
    ID_NAMES.contains(&normal.as_str())
        || last_word(name).is_some_and(|w| matches!(w.as_str(), "id" | "uuid" | "guid"))
}

/// Personal data a Mailchimp, HubSpot or Shopify export carries: marked as such in the file.
fn is_personal(name: &str) -> bool {
    let normal = normalise(name);
    let words = [
        "name",
        "address",
        "street",
        "city",
        "zip",
        "postal",
        "postcode",
        "phone",
        "mobile",
        "birth",
        "latitude",
        "longitude",
        "company",
        "vat",
        "tax",
        "note",
    ];
    words.iter().any(|w| normal.contains(w))
        || last_word(name).is_some_and(|w| matches!(w.as_str(), "ip" | "tel" | "dob" | "cc"))
}

/// Lowercase, letters and digits only.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// `en`, `fr`, `zh-CN`, `pt_BR`, `es-419`.
fn looks_like_locale(value: &str) -> bool {
    let (language, region) = match value.split_once(['-', '_']) {
        Some((l, r)) => (l, Some(r)),
        None => (value, None),
    };
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && region.is_none_or(|r| {
            (2..=4).contains(&r.len()) && r.chars().all(|c| c.is_ascii_alphanumeric())
        })
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

/// Everything the campaign text is made from.
struct Scaffold<'a> {
    name: &'a str,
    csv_file: &'a str,
    yaml_file: &'a Path,
    headers: &'a [String],
    columns: &'a Columns,
    product: Option<&'a str>,
    delimiter: u8,
    workbook: bool,
    schema: &'a SchemaRef,
}

impl Scaffold<'_> {
    fn write(&self) -> String {
        let mut y = Yaml::default();
        let headers = self.headers;
        let c = self.columns;
        let template = |i: usize| {
            // Only columns a template can name are wired (`usable` in `Columns::guess`).
            let reference = column_reference(&headers[i], headers).unwrap_or_default();
            format!("{{{{ {reference} }}}}")
        };
        y.raw(&format!(
            "# yaml-language-server: $schema={}",
            self.schema.reference
        ));
        if !self.schema.found {
            y.raw("# (for editor checks, write the schema beside this file: creem-batch schema > campaign.schema.json)");
        }
        y.raw(&format!(
            "# A campaign for {}, written by `creem-batch init`: one Creem checkout link per row.",
            self.csv_file
        ));
        y.raw("# Every string under checkout: is a template: \"{{ column }}\" is the row's value in that");
        y.raw("# CSV column, {{ campaign }} the campaign name, {{ row }} the data row number.");
        let yaml_name = self.yaml_file.file_name().unwrap_or_default();
        y.raw(&format!(
            "# Next: creem-batch check {}",
            shell_word(&yaml_name.to_string_lossy())
        ));
        y.blank();
        y.line(
            &format!("campaign: {}", self.name),
            "name, 1-64 of A-Z a-z 0-9 _ -; part of every request_id",
        );
        y.line(
            &format!("customers: {}", yaml_string(self.csv_file)),
            "the customers CSV, relative to this file",
        );
        y.line(
            &format!(
                "# output: {}",
                yaml_string(&format!("{}.results.csv", self.name))
            ),
            "the results CSV (the ledger); this is the default",
        );
        let key = &headers[c.key()];
        let key_note = if c.email.is_some() {
            "identifies a customer: one checkout per email address".to_owned()
        } else if c.customer_id.is_some() {
            "identifies a customer: request_ids derive from it".to_owned()
        } else {
            "TODO: the column(s) that identify a customer (first column for now)".to_owned()
        };
        y.line(&format!("key: [{}]", yaml_string(key)), &key_note);
        y.line(
            "# request_id: \"order-{{ order_id }}\"",
            "per-row id; default <campaign>-<hash of the key>",
        );
        y.blank();

        y.raw("checkout:");
        match (self.product, c.product) {
            (Some(product), _) => y.line(
                &format!("  product_id: {}", yaml_string(product)),
                "the Creem product sold (prod_...)",
            ),
            (None, Some(i)) => y.line(
                &format!("  product_id: {}", yaml_string(&template(i))),
                &format!(
                    "the Creem product (prod_...), per row from `{}`",
                    headers[i]
                ),
            ),
            (None, None) => y.line(
                &format!("  product_id: {PRODUCT_PLACEHOLDER}"),
                "TODO: your Creem product id (prod_...), or a template like \"{{ product }}\"",
            ),
        }
        match c.units {
            Some(i) => y.line(
                &format!("  units: {}", yaml_string(&template(i))),
                &format!("seats per checkout (integer >= 1), from `{}`", headers[i]),
            ),
            None => y.line(
                "  units: 1",
                "seats per checkout: an integer >= 1, or a template",
            ),
        }
        match c.discount {
            Some(i) => y.line(
                &format!("  discount_code: {}", yaml_string(&template(i))),
                &format!(
                    "a Creem discount code, from `{}` (empty: none)",
                    printable(&headers[i])
                ),
            ),
            None => y.line(
                "  # discount_code: SPRING2026",
                "a Creem discount code applied at checkout",
            ),
        }
        match c.locale {
            Some(i) => y.line(
                &format!("  locale: {}", yaml_string(&template(i))),
                &format!(
                    "checkout page language (en, fr, zh-CN...), from `{}`",
                    headers[i]
                ),
            ),
            None => y.line(
                "  # locale: en",
                "checkout page language: en, fr, es, zh-CN...",
            ),
        }
        y.line(
            "  # plan_type: team_annual",
            "a marker for your own system, sent as metadata.plan_type",
        );
        y.line(
            "  # success_url: https://yourdomain.com/success",
            "where Creem sends the customer after payment",
        );
        match (c.email, c.customer_id) {
            (Some(i), _) => {
                y.line(
                    "  customer:",
                    "who the checkout is for: email or id, not both",
                );
                y.line(
                    &format!("    email: {}", yaml_string(&template(i))),
                    &format!(
                        "the customer's email, from `{}`; checked before sending",
                        headers[i]
                    ),
                );
            }
            (None, Some(i)) => {
                y.line(
                    "  customer:",
                    "who the checkout is for: email or id, not both",
                );
                y.line(
                    &format!("    id: {}", yaml_string(&template(i))),
                    &format!(
                        "an existing Creem customer (cust_...), from `{}`",
                        headers[i]
                    ),
                );
            }
            (None, None) => {
                y.raw(&format!(
                    "  # TODO: no email column found in {}: name the one that holds emails below and",
                    self.csv_file
                ));
                y.raw("  # remove the #s (or use id: \"{{ creem_customer_id }}\" for existing Creem customers).");
                y.line(
                    "  # customer:",
                    "who the checkout is for: email or id, not both",
                );
                y.line(
                    "  #   email: \"{{ email }}\"",
                    "the customer's email column",
                );
            }
        }
        self.metadata(&mut y);
        y.blank();

        if self.workbook {
            // A workbook has no delimiter; `csv.sheet:` picks a sheet (the first by default).
        } else if self.delimiter == b',' {
            y.line("# csv:", "how to read the customers CSV");
            y.line(
                "#   delimiter: \";\"",
                ", ; | or tab; default: detected from the header",
            );
        } else {
            let delimiter = match self.delimiter {
                b'\t' => "tab".to_owned(),
                d => yaml_string(&(d as char).to_string()),
            };
            y.line("csv:", "how to read the customers CSV");
            y.line(
                &format!("  delimiter: {delimiter}"),
                ", ; | or tab; found in the header (detected anyway)",
            );
        }
        y.blank();

        y.line(
            "send:",
            "how fast and how hard to send; `run` flags override these",
        );
        y.line("  rate: 10/s", "ceiling on requests started: N/s or N/min");
        y.line("  burst: 1", "how many requests may start back to back");
        y.line("  concurrency: 8", "requests in flight at once");
        y.line("  max_attempts: 5", "attempts per row, first try included");
        y.line("  timeout: 30s", "per request");
        y.text
    }

    /// `metadata:` with the campaign name and the id columns; every other column not wired
    /// elsewhere as a commented-out line to opt into (personal data stays home by default).
    fn metadata(&self, y: &mut Yaml) {
        let headers = self.headers;
        let c = self.columns;
        let wired = c.wired();
        // `campaign` first, so that no column's key can clash with it once uncommented.
        let mut keys: Vec<String> = vec!["campaign".to_owned()];
        let mut ids = Vec::new();
        let mut others = Vec::new();
        let mut unusable = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            if wired.contains(&i) {
                continue;
            }
            let Some(reference) = column_reference(header, headers) else {
                unusable.push(printable(header));
                continue;
            };
            let mut key = metadata_key(header);
            if key.is_empty() || keys.contains(&key) || key == "plan_type" || key == "locale" {
                key = format!("column_{}", i + 1);
            }
            keys.push(key.clone());
            let entry = (key, format!("{{{{ {reference} }}}}"), header.as_str());
            if c.ids.contains(&i) {
                ids.push(entry);
            } else {
                others.push(entry);
            }
        }
        y.line(
            "  metadata:",
            "strings stored on the checkout, back in webhooks",
        );
        y.line("    campaign: \"{{ campaign }}\"", "the campaign name");
        for (key, value, header) in ids {
            let code = format!("    {}: {}", yaml_string(&key), yaml_string(&value));
            y.line(
                &code,
                &format!(
                    "column `{}`: an id, to find the customer again",
                    printable(header)
                ),
            );
        }
        if !others.is_empty() {
            y.raw("    # The other columns are not sent: Creem keeps metadata and returns it in webhooks,");
            y.raw("    # so send only what you need. Remove the # of a line to send that column.");
        }
        for (key, value, header) in others {
            let code = format!("    # {}: {}", yaml_string(&key), yaml_string(&value));
            let note = if is_personal(header) {
                format!("column `{}` (personal data)", printable(header))
            } else {
                format!("column `{}`", printable(header))
            };
            y.line(&code, &note);
        }
        if !unusable.is_empty() {
            // Only a CSV with its own `columns` column hides the others from templates.
            y.raw(&format!(
                "    # Not usable in a template, because the CSV has a column named `columns` \
                 (rename it to use them): {}",
                unusable.join(", ")
            ));
        }
    }
}

/// A column name for a comment or the terminal: control characters escaped.
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// True for a spreadsheet workbook rather than a text file.
fn is_workbook(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["xlsx", "xls", "xlsm", "ods"].contains(&e.to_ascii_lowercase().as_str()))
}

/// A metadata key for a column: the name in snake_case ASCII (`First Name` -> `first_name`).
fn metadata_key(header: &str) -> String {
    if is_identifier(header) {
        return header.to_owned();
    }
    let mut key = String::new();
    for c in header.chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_lowercase());
        } else if !key.ends_with('_') && !key.is_empty() {
            key.push('_');
        }
    }
    let key = key.trim_end_matches('_');
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        format!("c_{key}")
    } else {
        key.to_owned()
    }
}

/// The campaign text being written, with comments lined up.
#[derive(Default)]
struct Yaml {
    text: String,
}

impl Yaml {
    fn raw(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    /// `code`, then `# comment` at [`COMMENT_COLUMN`] (or two spaces after a long line).
    fn line(&mut self, code: &str, comment: &str) {
        let width = code.chars().count();
        let pad = if width + 2 <= COMMENT_COLUMN {
            COMMENT_COLUMN - width
        } else {
            2
        };
        // A column name could hold a line break; a comment must stay on its line.
        let comment = comment.replace(|c: char| c.is_control(), " ");
        let _ = writeln!(self.text, "{code}{:pad$}# {comment}", "");
    }
}

/// `text` as a YAML scalar: plain when that is unambiguous, else double-quoted.
fn yaml_string(text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(text).expect("a string serialises")
    }
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
    let column = |i: usize| format!("`{}`", printable(&headers[i]));
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

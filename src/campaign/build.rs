//! Validation: the raw file becomes a [`Campaign`], with every problem collected.

use std::path::{Path, PathBuf};

use super::raw::{text, KeySpec, RawCampaign, RawCheckout, RawSend, Text};
use super::send::{parse_duration, parse_max_rate, parse_rate, SendSettings};
use super::{is_template, Campaign, Checkout, Located};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::escape::escape_control;

/// Collects semantic problems while turning the raw file into a [`Campaign`].
pub(super) struct Builder<'a> {
    pub(super) path: &'a Path,
    pub(super) source: &'a str,
    pub(super) problems: Vec<Diagnostic>,
}

impl Builder<'_> {
    /// A value as the user typed it, for messages: YAML reads a plain `99999999999999999999999`
    /// as a float, which would be echoed as `1e23`. Control characters are escaped.
    fn typed(&self, value: &Located<String>) -> String {
        let line = (value.line as usize)
            .checked_sub(1)
            .and_then(|i| self.source.lines().nth(i));
        let rest: Option<String> = line.map(|l| {
            l.chars()
                .skip((value.column as usize).saturating_sub(1))
                .collect()
        });
        let plain = rest.as_deref().and_then(|rest| {
            let quoted_or_block = rest.starts_with(['"', '\'', '|', '>']);
            let text = rest.split(" #").next().unwrap_or_default().trim();
            (!quoted_or_block && !text.is_empty()).then_some(text)
        });
        escape_control(plain.unwrap_or(&value.value)).into_owned()
    }

    pub(super) fn problem<T>(&mut self, at: &Located<T>, message: impl Into<String>) {
        self.problems.push(Diagnostic::at(
            self.path,
            self.source,
            at.line,
            at.column,
            message,
        ));
    }

    pub(super) fn build(mut self, raw: RawCampaign, source: &str) -> Result<Campaign, Diagnostics> {
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let name = text(raw.campaign);
        if !valid_campaign_name(&name.value) {
            self.problem(
                &name,
                format!(
                    "campaign name `{}` must be 1 to 64 characters of A-Z a-z 0-9 _ -",
                    name.value
                ),
            );
        }
        let customers = text(raw.customers);
        if customers.value.trim().is_empty() {
            self.problem(&customers, "`customers` must name the customers CSV file");
        }
        let output = match raw.output.map(text) {
            Some(out) if out.value.trim().is_empty() => {
                self.problem(&out, "`output` must not be empty");
                PathBuf::new()
            }
            Some(out) => dir.join(&out.value),
            None => dir.join(format!("{}.results.csv", name.value)),
        };
        let mut key_at = None;
        let key = match raw.key {
            None => vec!["email".to_owned()],
            Some(at) => {
                key_at = Some(Located {
                    value: (),
                    line: at.line,
                    column: at.column,
                });
                let key = match &at.value {
                    KeySpec::One(one) => vec![one.clone()],
                    KeySpec::Many(many) => many.clone(),
                };
                if key.is_empty() || key.iter().any(|k| k.trim().is_empty()) {
                    self.problem(&at, "`key` must list one or more column names");
                }
                key
            }
        };
        let exclude = match raw.exclude {
            None => Vec::new(),
            Some(at) => {
                let files = match &at.value {
                    KeySpec::One(one) => vec![one.clone()],
                    KeySpec::Many(many) => many.clone(),
                };
                if files.is_empty() || files.iter().any(|f| f.trim().is_empty()) {
                    self.problem(&at, "`exclude` must name one or more earlier output files");
                }
                files.iter().map(|f| dir.join(f.trim())).collect()
            }
        };
        let where_ = raw.where_.map(text);
        if let Some(condition) = where_.as_ref().filter(|w| w.value.trim().is_empty()) {
            self.problem(
                condition,
                "`where` must be a condition, e.g. \"{{ accepts_email_marketing == 'yes' }}\"",
            );
        }
        let checkout = self.checkout(raw.checkout);
        let (csv_delimiter, csv_encoding, csv_sheet) = match raw.csv {
            None => (None, None, None),
            Some(csv) => {
                let delimiter = csv.delimiter.map(text).and_then(|d| self.delimiter(&d));
                let encoding = csv.encoding.map(text).and_then(|e| {
                    let found = crate::customers::encoding_for_label(&e.value);
                    if found.is_none() {
                        self.problem(
                            &e,
                            format!(
                                "csv encoding `{}` is not one this tool knows (utf-8, utf-16le, \
                                 utf-16be, windows-1252, latin1, iso-8859-15, ...)",
                                e.value
                            ),
                        );
                    }
                    found
                });
                let sheet = csv.sheet.map(text).map(|s| s.value);
                (delimiter, encoding, sheet)
            }
        };
        let send = self.send(raw.send);
        if !self.problems.is_empty() {
            return Err(Diagnostics(self.problems));
        }
        Ok(Campaign {
            path: self.path.to_path_buf(),
            source: source.to_owned(),
            name: name.value,
            customers: dir.join(customers.value),
            output,
            key,
            key_at,
            request_id: raw.request_id.map(text),
            exclude,
            where_,
            checkout,
            csv_delimiter,
            csv_encoding,
            csv_sheet,
            send,
        })
    }

    fn checkout(&mut self, section: Located<RawCheckout>) -> Checkout {
        let at = Located {
            value: (),
            line: section.line,
            column: section.column,
        };
        let raw = section.value;
        let product_id = match raw.product_id.map(text) {
            Some(p) if !p.value.trim().is_empty() => p,
            Some(p) => {
                self.problem(&p, "`checkout.product_id` must not be empty");
                p
            }
            None => {
                self.problems.push(
                    Diagnostic::at(
                        self.path,
                        self.source,
                        at.line,
                        at.column,
                        "`checkout.product_id` is required",
                    )
                    .with_help("add `product_id: prod_...` to the `checkout:` section"),
                );
                Located {
                    value: String::new(),
                    line: at.line,
                    column: at.column,
                }
            }
        };
        let units = raw.units.map(text);
        if let Some(units) = &units {
            if !is_template(&units.value) {
                match units.value.trim().parse::<u64>() {
                    Ok(n) if n >= 1 => {}
                    _ => self.problem(
                        units,
                        format!(
                            "`units` must be an integer >= 1, not `{}`",
                            self.typed(units)
                        ),
                    ),
                }
            }
        }
        let custom_price = raw.custom_price.map(text);
        if let Some(price) = &custom_price {
            if !is_template(&price.value) && price.value.trim().parse::<u64>().is_err() {
                self.problem(
                    price,
                    format!(
                        "`custom_price` must be an integer >= 0 in minor units (cents), not `{}`",
                        self.typed(price)
                    ),
                );
            }
        }
        let custom_fields = self.custom_fields(raw.custom_fields);
        let (customer_email, customer_id) = match raw.customer {
            None => (None, None),
            Some(customer) => {
                let Located {
                    value,
                    line,
                    column,
                } = customer;
                let email = value.email.map(text);
                let id = value.id.map(text);
                if email.is_none() && id.is_none() {
                    let at = Located {
                        value: (),
                        line,
                        column,
                    };
                    self.problem(&at, "`checkout.customer` needs `email` or `id`");
                }
                (email, id)
            }
        };
        let metadata = raw
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, text(v)))
            .collect::<Vec<_>>();
        // These two are sent inside metadata, so a metadata key of the same name would collide.
        for (name, set) in [
            ("plan_type", raw.plan_type.is_some()),
            ("locale", raw.locale.is_some()),
        ] {
            if let Some((_, at)) = metadata.iter().find(|(k, _)| k == name).filter(|_| set) {
                let at = at.clone();
                self.problem(
                    &at,
                    format!(
                        "`metadata.{name}` and `checkout.{name}` both set: keep one \
                         (`checkout.{name}` is sent as `metadata.{name}`)"
                    ),
                );
            }
        }
        Checkout {
            product_id,
            units,
            custom_price,
            discount_code: raw.discount_code.map(text),
            affiliate_code: raw.affiliate_code.map(text),
            custom_fields,
            locale: raw.locale.map(text),
            plan_type: raw.plan_type.map(text),
            success_url: raw.success_url.map(text),
            customer_email,
            customer_id,
            metadata,
        }
    }

    fn delimiter(&mut self, d: &Located<String>) -> Option<u8> {
        match d.value.as_str() {
            "," => Some(b','),
            ";" => Some(b';'),
            "|" => Some(b'|'),
            "\t" | "tab" | "\\t" => Some(b'\t'),
            other => {
                self.problem(
                    d,
                    format!("csv delimiter `{other}` is not one of , ; | tab"),
                );
                None
            }
        }
    }

    fn send(&mut self, raw: Option<RawSend>) -> SendSettings {
        let mut send = SendSettings::default();
        let Some(raw) = raw else { return send };
        if let Some(rate) = raw.rate.map(text) {
            match parse_rate(&rate.value) {
                Ok(r) => send.rate = r,
                Err(e) => self.problem(&rate, e),
            }
        }
        if let Some(max_rate) = raw.max_rate.map(text) {
            match parse_max_rate(&max_rate.value) {
                Ok(r) => send.max_rate = r,
                Err(e) => self.problem(&max_rate, e),
            }
        }
        if let Some(v) = self.positive(raw.burst, "burst") {
            send.burst = v;
        }
        if let Some(v) = self.positive(raw.concurrency, "concurrency") {
            send.concurrency = v as usize;
        }
        if let Some(v) = self.positive(raw.max_attempts, "max_attempts") {
            send.max_attempts = v;
        }
        if let Some(timeout) = raw.timeout.map(text) {
            match parse_duration(&timeout.value) {
                Ok(d) => send.timeout = d,
                Err(e) => self.problem(&timeout, e),
            }
        }
        send
    }

    fn positive(&mut self, raw: Text, name: &str) -> Option<u32> {
        let value = raw.map(text)?;
        match value.value.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.problem(
                    &value,
                    format!(
                        "`send.{name}` must be an integer >= 1, not `{}`",
                        self.typed(&value)
                    ),
                );
                None
            }
        }
    }
}

fn valid_campaign_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

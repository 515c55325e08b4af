//! Compiling a campaign against the CSV's header: every template, the key columns, and
//! the digest of what every body is made from.

use sha2::{Digest, Sha256};

use super::checks::check_url;
use super::{is_email_column, CustomFieldTemplates, Integer, Renderer, REQUEST_ID_RULE};
use crate::campaign::{Campaign, Located};
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use crate::template::{TemplateError, TemplateId, TemplateSet};

impl Renderer {
    /// Compiles every template against the CSV's columns; a template naming a missing
    /// column, or a key column the CSV lacks, is reported here, before any row is read.
    pub fn new(campaign: &Campaign, headers: &[String]) -> Result<Renderer, Diagnostics> {
        let mut problems = Vec::new();
        let mut templates = TemplateSet::new(headers);
        let columns_help = format!("the CSV's columns: {}", headers.join(", "));
        let mut compile = |name: &str, at: &Located<String>| -> Option<TemplateId> {
            match templates.compile(&at.value) {
                Ok(id) => Some(id),
                Err(e) => {
                    let message = match &e {
                        TemplateError::MissingColumns { .. } => format!("template `{name}` {e}"),
                        TemplateError::Syntax(_) => format!("template `{name}`: {e}"),
                    };
                    let mut d = campaign.diagnostic_at(at, message);
                    if let TemplateError::MissingColumns { missing } = &e {
                        for column in missing {
                            if let Some(close) = similar_column(column, headers) {
                                d = d.with_help(format!("did you mean `{close}`?"));
                            }
                        }
                        d = d.with_help(columns_help.clone());
                    }
                    problems.push(d);
                    None
                }
            }
        };
        let c = &campaign.checkout;
        let request_id = campaign
            .request_id
            .as_ref()
            .and_then(|t| compile("request_id", t));
        let condition = campaign.where_.as_ref().and_then(|t| compile("where", t));
        let product_id = compile("checkout.product_id", &c.product_id);
        let mut integer = |name: &str, t: &Option<Located<String>>| {
            t.as_ref()
                .and_then(|t| match t.value.trim().parse::<u64>() {
                    Ok(n) => Some(Integer::Fixed(n)),
                    Err(_) => compile(name, t).map(Integer::Template),
                })
        };
        let units = integer("checkout.units", &c.units);
        let custom_price = integer("checkout.custom_price", &c.custom_price);
        let mut optional =
            |name: &str, t: &Option<Located<String>>| t.as_ref().and_then(|t| compile(name, t));
        let discount_code = optional("checkout.discount_code", &c.discount_code);
        let affiliate_code = optional("checkout.affiliate_code", &c.affiliate_code);
        let locale = optional("checkout.locale", &c.locale);
        let success_url = optional("checkout.success_url", &c.success_url);
        let customer_email = optional("checkout.customer.email", &c.customer_email);
        let customer_id = optional("checkout.customer.id", &c.customer_id);
        let plan_type = optional("checkout.plan_type", &c.plan_type);
        let mut custom_fields = Vec::new();
        for (i, field) in c.custom_fields.iter().enumerate() {
            let name = format!("checkout.custom_fields[{i}]");
            let key = compile(&format!("{name}.key"), &field.key);
            let label = compile(&format!("{name}.label"), &field.label);
            let checkbox_label = field
                .checkbox_label
                .as_ref()
                .and_then(|t| compile(&format!("{name}.checkbox.label"), t));
            if let (Some(key), Some(label)) = (key, label) {
                custom_fields.push(CustomFieldTemplates {
                    kind: field.kind,
                    key,
                    label,
                    optional: field.optional,
                    min_length: field.min_length,
                    max_length: field.max_length,
                    checkbox_label,
                });
            }
        }
        let metadata = c
            .metadata
            .iter()
            .filter_map(|(key, t)| {
                compile(&format!("checkout.metadata.{key}"), t).map(|id| (key.clone(), id))
            })
            .collect();
        // A constant success_url is checked here once, not on every row.
        let mut success_url_is_constant = false;
        if let (Some(id), Some(at)) = (success_url, &c.success_url) {
            if let Some(url) = templates.constant(id) {
                success_url_is_constant = true;
                if let Err(e) = check_url(url.trim()) {
                    problems.push(campaign.diagnostic_at(at, format!("success_url `{url}` {e}")));
                }
            }
        }
        let mut key_columns = Vec::new();
        let email_source = c
            .customer_email
            .as_ref()
            .and_then(|t| single_column(&t.value, headers));
        for column in &campaign.key {
            match headers.iter().position(|h| h == column) {
                Some(index) => {
                    let is_email = is_email_column(column) || email_source == Some(column.as_str());
                    key_columns.push((index, column.clone(), is_email));
                }
                None => {
                    let message = format!(
                        "key column `{column}` is not in {}",
                        campaign.customers.display()
                    );
                    let mut d = match &campaign.key_at {
                        Some(at) => campaign.diagnostic_at(at, message),
                        None => Diagnostic::file(&campaign.path, message).with_help(
                            "without `key:`, customers are identified by an `email` column; \
                             set `key:` to the columns that identify a customer",
                        ),
                    };
                    if let Some(close) = similar_column(column, headers) {
                        d = d.with_help(format!("did you mean `{close}`?"));
                    }
                    problems.push(d.with_help(columns_help.clone()));
                }
            }
        }
        if !problems.is_empty() {
            return Err(Diagnostics(problems));
        }
        Ok(Renderer {
            campaign: campaign.name.clone(),
            templates,
            key_columns,
            email_column: email_source
                .and_then(|name| headers.iter().position(|h| h == name))
                .or_else(|| headers.iter().position(|h| is_email_column(h))),
            request_id,
            condition,
            product_id: product_id.ok_or_else(|| Diagnostics(Vec::new()))?,
            units,
            custom_price,
            discount_code,
            affiliate_code,
            custom_fields,
            locale,
            success_url,
            customer_email,
            customer_id,
            plan_type,
            metadata,
            hash_bodies: true,
            success_url_is_constant,
            input_seed: input_seed(campaign, headers),
        })
    }
}

/// The part of [`Renderer::input_hash`] that is the same for every row. Only values go in
/// (not their places in the file), so moving things around in the campaign file, or changing
/// the `send:` settings, keeps the digests; anything left out here could make a changed body
/// look unchanged, so when in doubt a value belongs in it.
fn input_seed(campaign: &Campaign, headers: &[String]) -> Sha256 {
    // Taken apart field by field, so that a field added to the checkout section cannot be
    // forgotten here: this stops compiling until it is added.
    let crate::campaign::Checkout {
        product_id,
        units,
        custom_price,
        discount_code,
        affiliate_code,
        custom_fields,
        locale,
        plan_type,
        success_url,
        customer_email,
        customer_id,
        metadata,
    } = &campaign.checkout;
    let value = |t: &Option<Located<String>>| t.as_ref().map(|t| t.value.clone());
    let description = format!(
        "{:?}",
        (
            env!("CARGO_PKG_VERSION"),
            // The request_id rule's edition: a ledger from an earlier rule is rendered again
            // (and matched by its earlier ids), not taken as unchanged.
            REQUEST_ID_RULE,
            &campaign.name,
            &campaign.key,
            campaign.request_id.as_ref().map(|t| &t.value),
            headers,
            (
                &product_id.value,
                value(units),
                value(discount_code),
                value(locale),
                value(plan_type),
                value(success_url),
                value(customer_email),
                value(customer_id),
                value(custom_price),
                value(affiliate_code),
                format!("{custom_fields:?}"),
                metadata
                    .iter()
                    .map(|(key, t)| (key, &t.value))
                    .collect::<Vec<_>>(),
            ),
        )
    );
    let mut hasher = Sha256::new();
    hasher.update((description.len() as u64).to_le_bytes());
    hasher.update(description.as_bytes());
    hasher
}

/// The one CSV column a template is made of, like `{{ Email }}`, `{{ columns['Email Address']
/// }}` or `{{ email | lower }}`; None for anything else.
fn single_column<'h>(template: &str, headers: &'h [String]) -> Option<&'h str> {
    let inner = template.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let expression = inner.split('|').next()?.trim();
    let name = match expression.strip_prefix("columns") {
        Some(index) if !headers.iter().any(|h| h == "columns") => {
            let quoted = index.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
            let quote = quoted.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            quoted.strip_prefix(quote)?.strip_suffix(quote)?
        }
        _ => expression,
    };
    headers.iter().find(|h| *h == name).map(String::as_str)
}

/// The CSV column a missing name was probably meant to be (a typo or a case difference).
fn similar_column<'h>(name: &str, headers: &'h [String]) -> Option<&'h str> {
    let lower = name.to_lowercase();
    if let Some(same) = headers.iter().find(|h| h.to_lowercase() == lower) {
        return Some(same);
    }
    let candidates: Vec<&str> = headers.iter().map(String::as_str).collect();
    did_you_mean(name, &candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_of_one_column_names_it() {
        let headers: Vec<String> = ["Contact", "columns x"].map(String::from).to_vec();
        assert_eq!(single_column("{{ Contact }}", &headers), Some("Contact"));
        assert_eq!(
            single_column("{{ Contact | trim | lower }}", &headers),
            Some("Contact")
        );
        assert_eq!(
            single_column("{{ columns['Contact'] }}", &headers),
            Some("Contact")
        );
        assert_eq!(single_column("x{{ Contact }}", &headers), None);
        assert_eq!(single_column("{{ Other }}", &headers), None);
    }
}

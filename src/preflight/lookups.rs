//! The lookups themselves and the rules that judge their answers.

use indexmap::IndexMap;

use super::{Answer, AuthRejected, Demand, Finding, Lookup, Report, Severity, MAX_LOOKUPS};

/// Which product route the host has. Creem's current SDK reads `/v1/products/{id}`; the
/// April 2026 OpenAPI file documents `/v1/products?product_id=`. The first product tells.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Unknown,
    Path,
    Query,
}

/// How one answer reads.
enum Verdict {
    Found(Vec<u8>),
    NotFound(String),
    Failed(String),
}

pub(super) async fn run(
    demand: &Demand,
    lookup: &dyn Lookup,
    now: jiff::Timestamp,
) -> Result<Report, AuthRejected> {
    let mut report = Report::default();
    let products = by_rows(&demand.products);
    let discounts = by_rows(&demand.discounts);
    let mut route = Route::Unknown;
    let mut failure = None;

    for &(id, rows) in products.iter().take(MAX_LOOKUPS) {
        match product(lookup, id, &mut route).await? {
            Verdict::Found(_) => {}
            Verdict::NotFound(detail) => report.findings.push(Finding {
                severity: Severity::Stop,
                what: format!("product `{id}`"),
                reason: format!(
                    "Creem does not know this product ({detail}); test-mode and live products are separate, so check which mode it was made in"
                ),
                rows,
            }),
            Verdict::Failed(error) => {
                failure = Some(format!("product `{id}`: {error}"));
                break;
            }
        }
        report.products_checked += 1;
    }
    if failure.is_none() {
        for &(code, rows) in discounts.iter().take(MAX_LOOKUPS) {
            let answer = lookup
                .get(&["v1", "discounts"], &[("discount_code", code)])
                .await;
            match verdict(answer)? {
                Verdict::Found(body) => {
                    judge_discount(&body, code, rows, demand, now, &mut report.findings)
                }
                Verdict::NotFound(detail) => report.findings.push(Finding {
                    severity: Severity::Stop,
                    what: format!("discount code `{code}`"),
                    reason: format!("Creem does not know this discount code ({detail})"),
                    rows,
                }),
                Verdict::Failed(error) => {
                    failure = Some(format!("discount code `{code}`: {error}"));
                    break;
                }
            }
            report.discounts_checked += 1;
        }
    }

    let unchecked_products = &products[report.products_checked..];
    let unchecked_discounts = &discounts[report.discounts_checked..];
    let unchecked_rows: u64 = unchecked_products
        .iter()
        .chain(unchecked_discounts)
        .map(|(_, rows)| rows)
        .sum::<u64>()
        + demand.untracked_rows;
    if let Some(error) = &failure {
        report.findings.push(Finding {
            severity: Severity::Warning,
            what: "pre-flight".to_owned(),
            reason: format!(
                "could not finish ({error}); {} product(s) and {} discount code(s) were not checked, and the run goes on without them",
                unchecked_products.len(),
                unchecked_discounts.len()
            ),
            rows: unchecked_rows,
        });
    }
    if !unchecked_products.is_empty()
        || !unchecked_discounts.is_empty()
        || demand.untracked_rows > 0
    {
        report.capped = Some(format!(
            "{} product(s) and {} discount code(s){} were not looked up ({}at most {MAX_LOOKUPS} of each, those carried by the most rows first); {unchecked_rows} row(s) carry them",
            unchecked_products.len(),
            unchecked_discounts.len(),
            if demand.untracked_rows > 0 {
                ", and values beyond the first 10,000 distinct ones,"
            } else {
                ""
            },
            if failure.is_some() {
                "the pre-flight stopped early; "
            } else {
                ""
            },
        ));
    }
    Ok(report)
}

/// The values carried by the most rows first (the first seen first among equals).
fn by_rows(map: &IndexMap<String, u64>) -> Vec<(&str, u64)> {
    let mut values: Vec<(&str, u64)> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.1));
    values
}

/// One product, by whichever route the host has. Until a route has answered, a 404 on the
/// path form is checked once more with the query form: a host without the path route answers
/// 404 for every product, and that must not read as "unknown product".
async fn product(
    lookup: &dyn Lookup,
    id: &str,
    route: &mut Route,
) -> Result<Verdict, AuthRejected> {
    if *route != Route::Query {
        let answer = lookup.get(&["v1", "products", id], &[]).await;
        let missing_route = answer.as_ref().is_ok_and(route_missing);
        match verdict(answer)? {
            Verdict::Found(body) => {
                *route = Route::Path;
                return Ok(Verdict::Found(body));
            }
            Verdict::NotFound(detail) if *route == Route::Path && !missing_route => {
                return Ok(Verdict::NotFound(detail));
            }
            Verdict::Failed(error) if !missing_route => return Ok(Verdict::Failed(error)),
            _ if missing_route => *route = Route::Query,
            _ => {}
        }
    }
    let answer = lookup.get(&["v1", "products"], &[("product_id", id)]).await;
    let verdict = verdict(answer)?;
    if matches!(verdict, Verdict::Found(_)) {
        *route = Route::Query;
    }
    Ok(verdict)
}

/// A web framework's answer for a path it has no route for (NestJS: 404 "Cannot GET /..."),
/// or a 404 that is not Creem's error shape (a gateway, a stand-in without the route).
fn route_missing(answer: &Answer) -> bool {
    answer.status == 405
        || (answer.status == 404
            && (String::from_utf8_lossy(&answer.body).contains("Cannot GET")
                || !creem_error(answer)))
}

/// Creem answers every error with a JSON object carrying `message` (and `error`): a 404
/// without one did not come from Creem's lookup, so it says nothing about the value.
fn creem_error(answer: &Answer) -> bool {
    serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .is_some_and(|v| v.get("message").is_some() || v.get("error").is_some())
}

fn verdict(answer: Result<Answer, String>) -> Result<Verdict, AuthRejected> {
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => return Ok(Verdict::Failed(error)),
    };
    Ok(match answer.status {
        200..=299 => Verdict::Found(answer.body),
        401 | 403 => {
            return Err(AuthRejected {
                status: answer.status,
            })
        }
        404 if creem_error(&answer) => Verdict::NotFound(describe(&answer)),
        404 => Verdict::Failed(format!(
            "{}, not Creem's error answer: the host has no such lookup",
            describe(&answer)
        )),
        _ => Verdict::Failed(describe(&answer)),
    })
}

/// "HTTP 404 Not Found: Product not found (trace_id ...)", as the sender words errors.
fn describe(answer: &Answer) -> String {
    crate::sender::api_error(answer.status, &answer.body, None).to_string()
}

/// A `DiscountEntity`'s fields that decide whether the rows can use it. Read field by field
/// from a JSON value: an odd type in one field must not hide the others.
fn judge_discount(
    body: &[u8],
    code: &str,
    rows: u64,
    demand: &Demand,
    now: jiff::Timestamp,
    findings: &mut Vec<Finding>,
) {
    let what = format!("discount code `{code}`");
    let stop = |findings: &mut Vec<Finding>, reason: String, rows: u64, what: String| {
        findings.push(Finding {
            severity: Severity::Stop,
            what,
            reason,
            rows,
        })
    };
    let Ok(discount) = serde_json::from_slice::<serde_json::Value>(body) else {
        findings.push(Finding {
            severity: Severity::Warning,
            what,
            reason: "Creem's answer is not JSON, so the code was not checked".to_owned(),
            rows,
        });
        return;
    };
    let status = discount.get("status").and_then(|s| s.as_str());
    if let Some(status) = status.filter(|s| *s != "active") {
        stop(
            findings,
            format!("its status is `{status}`, not `active`: Creem would refuse it"),
            rows,
            what.clone(),
        );
    }
    let expiry = discount.get("expiry_date").and_then(|s| s.as_str());
    if let Some(expiry) = expiry {
        match expiry.parse::<jiff::Timestamp>() {
            Ok(at) if at <= now => stop(
                findings,
                format!("it expired on {at} (expiry_date)"),
                rows,
                what.clone(),
            ),
            Ok(_) => {}
            Err(_) => findings.push(Finding {
                severity: Severity::Warning,
                what: what.clone(),
                reason: format!(
                    "its expiry_date `{expiry}` could not be read, so it was not checked"
                ),
                rows,
            }),
        }
    }
    if let Some(products) = discount
        .get("applies_to_products")
        .and_then(|p| p.as_array())
        .filter(|p| !p.is_empty())
    {
        let allowed: Vec<&str> = products.iter().filter_map(|p| p.as_str()).collect();
        let mut excluded: Vec<(&str, u64)> = demand
            .pairs
            .iter()
            .filter(|((c, p), _)| c == code && !allowed.contains(&p.as_str()))
            .map(|((_, p), n)| (p.as_str(), *n))
            .collect();
        excluded.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (product, n) in excluded {
            stop(
                findings,
                format!(
                    "it does not apply to product `{product}` (applies_to_products: {})",
                    allowed.join(", ")
                ),
                n,
                format!("discount code `{code}` with product `{product}`"),
            );
        }
    }
    let number = |field: &str| discount.get(field).and_then(|n| n.as_f64());
    if let Some(max) = number("max_redemptions") {
        let redeemed = number("redeem_count").unwrap_or(0.0);
        let left = (max - redeemed).max(0.0);
        if left < rows as f64 {
            findings.push(Finding {
                severity: Severity::Warning,
                what,
                reason: format!(
                    "only {left} redemption(s) left (max_redemptions {max}, redeem_count {redeemed}), fewer than the rows carrying it: later customers may be refused the discount"
                ),
                rows,
            });
        }
    }
}
